//! Files that hold personal data (detections, tracks, snapshots) or secrets (tokens): readable
//! by their owner only. Each is created with mode 0600 (directories 0700) whatever the
//! umask, and a file that already exists with wider permissions is narrowed before it is
//! written, so an upgrade tightens what an older version left behind.
//!
//! Unix only, like the rest of camtrail's deployment; elsewhere these fall back to the
//! platform's defaults.

use std::io::Write;
use std::path::Path;

/// Owner read/write.
pub const FILE_MODE: u32 = 0o600;
/// Owner read/write/search.
pub const DIR_MODE: u32 = 0o700;

/// Create (or truncate) `path` with mode 0600 and write `bytes` to it, fsynced.
pub fn write(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut file = open(path, true)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Make sure `path` exists as a file only its owner can read, without changing its
/// contents (for files another library then opens, such as a SQLite database).
pub fn touch(path: &Path) -> std::io::Result<()> {
    open(path, false).map(drop)
}

/// Narrow `path` to mode 0600 if it exists (a database's `-wal` or `-shm` left by an older
/// version).
pub fn restrict_if_exists(path: &Path) -> std::io::Result<()> {
    // Gone between the two calls counts as absent: SQLite deletes a database's -wal and
    // -shm when its last connection closes, which a store being dropped can do while the
    // next one opens (seen in CI as "camtrail.db-shm: No such file or directory").
    let gone = |error: &std::io::Error| error.kind() == std::io::ErrorKind::NotFound;
    match std::fs::metadata(path).and_then(|_| set_mode(path, FILE_MODE)) {
        Err(error) if gone(&error) => Ok(()),
        other => other,
    }
}

/// Create `dir` (and missing parents) and narrow it to mode 0700.
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    set_mode(dir, DIR_MODE)
}

fn open(path: &Path, truncate: bool) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.create(true).write(true).truncate(truncate);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(FILE_MODE);
    }
    let file = options.open(path)?;
    // The mode above applies only when the file is created.
    set_mode(path, FILE_MODE)?;
    Ok(file)
}

#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> std::io::Result<()> {
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    }

    #[test]
    fn new_and_existing_files_end_up_owner_only() {
        let dir = tempfile::tempdir().expect("tempdir");
        let fresh = dir.path().join("fresh.csv");
        write(&fresh, b"secret").expect("write");
        assert_eq!(mode(&fresh), 0o600);
        assert_eq!(std::fs::read(&fresh).expect("read"), b"secret");

        let old = dir.path().join("old.db");
        std::fs::write(&old, b"rows").expect("write");
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        touch(&old).expect("touch");
        assert_eq!(mode(&old), 0o600);
        assert_eq!(
            std::fs::read(&old).expect("read"),
            b"rows",
            "touch keeps contents"
        );

        let wal = dir.path().join("old.db-wal");
        restrict_if_exists(&wal).expect("absent is fine");
        std::fs::write(&wal, b"").expect("write");
        restrict_if_exists(&wal).expect("restrict");
        assert_eq!(mode(&wal), 0o600);

        let nested = dir.path().join("a/b");
        create_dir(&nested).expect("mkdir");
        assert_eq!(mode(&nested), 0o700);
    }
}
