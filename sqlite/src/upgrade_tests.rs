//! A database written before the vehicle attributes were stored (staging tables and part
//! files without their columns) opens, read-only and read-write, and reads those rows with
//! the attributes unknown; new rows keep theirs, also after a merge with an old part.

use camtrail_model::{EventId, VehicleAttributes};
use camtrail_storage::testsuite::{self, CAMERA, T0};
use camtrail_storage::{PassFilter, SightingStore, StoredSighting};
use rusqlite::{Connection, params};

use crate::schema::SCHEMA;
use crate::{SqliteStore, Tuning};

/// The detection columns of the first release.
const OLD_DEFS: &str = "subject_key TEXT NOT NULL, captured_at_ms INTEGER NOT NULL, \
    event_id BLOB NOT NULL, camera_id TEXT NOT NULL, object_class INTEGER NOT NULL, \
    plate TEXT NOT NULL, plate_confidence REAL NOT NULL, vehicle_color INTEGER NOT NULL, \
    vehicle_type INTEGER NOT NULL, bbox_x INTEGER NOT NULL, bbox_y INTEGER NOT NULL, \
    bbox_width INTEGER NOT NULL, bbox_height INTEGER NOT NULL, has_snapshot INTEGER NOT NULL, \
    gateway_id TEXT NOT NULL, received_at_ms INTEGER NOT NULL";

fn old_row(connection: &Connection, table: &str, n: u8, at_ms: i64) {
    connection
        .execute(
            &format!(
                "INSERT INTO {table} VALUES (?1, ?2, ?3, ?4, 1, ?1, 0.5, 5, 2, 0, 0, 1, 1, 0, \
                 'gw-001', ?2)"
            ),
            params![format!("粤B0000{n}"), at_ms, vec![n; 16], CAMERA],
        )
        .expect("old row");
}

/// An old database: event 1 in a part file, event 2 in a staging table, both of the old
/// layout.
fn old_database(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("camtrail.db");
    let main = Connection::open(&path).expect("main");
    main.execute_batch(SCHEMA).expect("schema");
    main.execute_batch(&format!("CREATE TABLE staging_1 ({OLD_DEFS})"))
        .expect("staging");
    old_row(&main, "staging_1", 2, T0 + 2_000);
    let parts = dir.join("camtrail.db.parts");
    std::fs::create_dir(&parts).expect("parts dir");
    let part = Connection::open(parts.join("part_1.db")).expect("part");
    part.execute_batch(&format!(
        "CREATE TABLE part ({OLD_DEFS}, PRIMARY KEY (subject_key, captured_at_ms, event_id)) \
         WITHOUT ROWID; CREATE INDEX part_by_camera ON part (camera_id, captured_at_ms, event_id);"
    ))
    .expect("part table");
    old_row(&part, "part", 1, T0 + 1_000);
    main.execute(
        "INSERT INTO parts (id, rows, min_ms, max_ms) VALUES (1, 1, ?1, ?1)",
        params![T0 + 1_000],
    )
    .expect("manifest");
    path
}

fn old_attributes() -> VehicleAttributes {
    VehicleAttributes {
        color: 5,
        kind: 2,
        ..VehicleAttributes::default()
    }
}

async fn passes(store: &SqliteStore) -> Vec<StoredSighting> {
    store
        .passes(
            &[CAMERA.to_string()],
            T0,
            T0 + 60_000,
            &PassFilter::default(),
            None,
            100,
        )
        .await
        .expect("passes")
}

#[tokio::test]
async fn an_old_database_opens_and_reads_its_rows_with_unknown_attributes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = old_database(dir.path());

    let read_only = SqliteStore::open_read_only(&path).expect("read-only open");
    let old = passes(&read_only).await;
    assert_eq!(
        old.iter().map(|s| s.event_id).collect::<Vec<_>>(),
        vec![EventId([1; 16]), EventId([2; 16])]
    );
    for sighting in &old {
        assert_eq!(sighting.attributes, old_attributes());
        assert!(sighting.plate_char_confidence.is_empty());
    }
    drop(read_only);

    // Read-write, with parts so small that the new row's part merges with the old one.
    let tiny = Tuning {
        max_group_rows: 1,
        flush_rows: 2,
        max_parts: 1,
        merge_fan_in: 2,
        max_staged_rows: 1_000,
    };
    let store = SqliteStore::open_with(&path, tiny).expect("open");
    assert_eq!(passes(&store).await, old, "the same rows after the upgrade");
    let new = testsuite::detection(3, "粤B00003", T0 + 3_000, CAMERA);
    store.write(vec![new.clone()]).await.expect("write");
    store.maintenance_idle().await.expect("flush and merge");
    let all = passes(&store).await;
    assert_eq!(all.len(), 3);
    assert_eq!(all[..2], old[..]);
    assert_eq!(all[2], StoredSighting::from_detection(&new));
    let by_key = store
        .sightings(&["粤B00001".to_string()], T0, T0 + 60_000, 10)
        .await
        .expect("sightings");
    assert_eq!(by_key, old[..1]);
    drop(store);

    // And once more, after the writer's tables and parts are all of the new layout.
    let reopened = SqliteStore::open_read_only(&path).expect("reopen");
    assert_eq!(passes(&reopened).await, all);
}
