//! Issue 13, fault 7: the embedded database's files are owner-only.

use camtrail_storage::Publisher;
use camtrail_storage::testsuite;

use crate::{SqliteStore, Tuning};

/// The database, its WAL and shared memory, its lock and every part file
/// hold personal data and are owner-only, whatever the umask; an older database left 0644
/// is narrowed when opened.
#[cfg(unix)]
#[tokio::test]
async fn sqlite_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("camtrail.db");
    std::fs::write(&path, b"").expect("an old, empty database file");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let tiny = Tuning {
        max_group_rows: 1,
        flush_rows: 2,
        max_parts: 2,
        merge_fan_in: 2,
        max_staged_rows: 1_000,
    };
    let store = SqliteStore::open_with(&path, tiny).expect("open");
    let rows = (0..6)
        .map(|n| testsuite::detection(n, "K1", 1_000 + i64::from(n), "CAM1"))
        .collect();
    store.publish(rows).await.expect("publish");
    store.maintenance_idle().await.expect("parts built");
    let parts = dir.path().join("camtrail.db.parts");
    let part_files = std::fs::read_dir(&parts).expect("list parts").count();
    assert!(part_files >= 1, "the tiny tuning builds part files");
    let mut checked = 0;
    for entry in std::fs::read_dir(dir.path())
        .expect("list")
        .chain(std::fs::read_dir(&parts).expect("list parts"))
    {
        let path = entry.expect("entry").path();
        let expected = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(&path), expected, "{}", path.display());
        checked += 1;
    }
    assert!(
        checked >= 5 + part_files,
        "db, -wal, -shm, .lock, the parts directory and its parts"
    );
    drop(store);
}
