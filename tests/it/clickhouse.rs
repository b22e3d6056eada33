//! Integration tests against the real ClickHouse server (started by
//! `deploy/local/services.sh up`). Each test gets its own database.

use camtrail_clickhouse::{MIGRATIONS, load_cameras, migrate};
use camtrail_model::{Camera, CameraRegistry};

const TABLES: &[&str] = &[
    "audit_log",
    "cameras",
    "cases",
    "detections",
    "detections_by_hour",
    "detections_by_hour_mv",
    "legal_holds",
    "schema_migrations",
    "snapshots",
    "subject_keys_daily",
    "subject_keys_daily_mv",
    "watchlist_entries",
    "watchlist_hits",
];

#[tokio::test]
async fn migrate_creates_every_table_and_second_run_changes_nothing() {
    let config = camtrail_testkit::clickhouse("migrate_twice").await;
    let first = migrate(&config, 1).await.expect("first migration");
    let all: Vec<u32> = MIGRATIONS.iter().map(|m| m.version).collect();
    assert_eq!(first.applied, all);
    assert!(first.already_applied.is_empty());

    let second = migrate(&config, 2).await.expect("second migration");
    assert!(second.applied.is_empty());
    assert_eq!(second.already_applied, all);

    let client = config.client();
    let mut tables: Vec<String> = client
        .query("SELECT name FROM system.tables WHERE database = ? ORDER BY name")
        .bind(&config.database)
        .fetch_all()
        .await
        .expect("list tables");
    tables.sort();
    assert_eq!(tables, TABLES);
    let recorded: u64 = client
        .query("SELECT count() FROM schema_migrations FINAL")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(recorded, MIGRATIONS.len() as u64);
    camtrail_testkit::drop_database(&config).await;
}

#[tokio::test]
async fn views_feed_camera_and_key_tables_with_weekly_partitions() {
    let config = camtrail_testkit::clickhouse("views").await;
    migrate(&config, 1).await.expect("migrate");
    let client = config.client();
    // 2025-11-26 (a Wednesday) 12:00 UTC; its week starts Monday 2025-11-24.
    let insert = "INSERT INTO detections (subject_key, captured_at_ms, event_id, camera_id, \
        object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, \
        bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms) VALUES \
        ('粤S12345', 1764158400000, toFixedString(unhex('0102030405060708090a0b0c0d0e0f10'), 16), \
        'cam-1', 1, '粤S·12345', 0.9, 1, 1, 0, 0, 10, 10, 0, 'gw-1', 1764158400100)";
    for _ in 0..2 {
        client.query(insert).execute().await.expect("insert");
    }
    let distinct: u64 = client
        .query("SELECT uniqExact(event_id) FROM detections_by_hour WHERE camera_id = ?")
        .bind("cam-1")
        .fetch_one()
        .await
        .expect("by camera");
    assert_eq!(distinct, 1);
    let sightings: u64 = client
        .query("SELECT sum(sightings) FROM subject_keys_daily WHERE subject_key = ?")
        .bind("粤S12345")
        .fetch_one()
        .await
        .expect("keys");
    assert_eq!(
        sightings, 2,
        "the key table counts deliveries; reads dedup by event_id"
    );
    let partitions: Vec<String> = client
        .query("SELECT DISTINCT partition FROM system.parts WHERE database = ? AND table = 'detections' AND active")
        .bind(&config.database)
        .fetch_all()
        .await
        .expect("parts");
    assert_eq!(partitions, vec!["2025-11-24".to_string()]);
    camtrail_testkit::drop_database(&config).await;
}

#[tokio::test]
async fn camera_registry_is_replaced_as_a_whole() {
    let config = camtrail_testkit::clickhouse("cameras").await;
    migrate(&config, 1).await.expect("migrate");
    let camera = |id: &str, district: &str| Camera {
        camera_id: id.into(),
        district: district.into(),
        lat: 22.5,
        lon: 114.0,
        heading_deg: 90.0,
        road: "Shennan Rd".into(),
        gateway_id: "gw-1".into(),
    };
    let first =
        CameraRegistry::new(vec![camera("a", "Futian"), camera("b", "Futian")]).expect("registry");
    assert_eq!(load_cameras(&config, &first).await.expect("load"), 2);
    let second = CameraRegistry::new(vec![camera("c", "Nanshan")]).expect("registry");
    assert_eq!(load_cameras(&config, &second).await.expect("reload"), 1);
    let ids: Vec<String> = config
        .client()
        .query("SELECT camera_id FROM cameras ORDER BY camera_id")
        .fetch_all()
        .await
        .expect("read");
    assert_eq!(ids, vec!["c".to_string()]);

    // A load stopped between the swap's two renames: the next load puts the previous
    // registry back first, then replaces it.
    config
        .client()
        .query("RENAME TABLE cameras TO cameras_previous")
        .execute()
        .await
        .expect("half a swap");
    assert_eq!(load_cameras(&config, &first).await.expect("recover"), 2);
    let count: u64 = config
        .client()
        .query("SELECT count() FROM cameras")
        .fetch_one()
        .await
        .expect("read");
    assert_eq!(count, 2);
    // ... and with neither table left, it creates the table again.
    config
        .client()
        .query("DROP TABLE cameras")
        .execute()
        .await
        .expect("drop");
    assert_eq!(load_cameras(&config, &second).await.expect("recreate"), 1);
    camtrail_testkit::drop_database(&config).await;
}

/// Retention of 7 days as of Wednesday 2025-11-26 12:00 UTC: cutoff Wednesday 2025-11-19
/// 12:00 UTC. Week 2025-11-10 lies wholly before it, week 2025-11-17 straddles it, week
/// 2025-11-24 is recent.
#[tokio::test]
async fn retention_drops_old_weeks_deletes_straddling_rows_and_is_idempotent() {
    use camtrail_clickhouse::{RETENTION_TABLES, RetentionAction, apply_retention, plan_retention};
    use std::time::Duration;

    const DAY: i64 = 86_400_000;
    const CUTOFF: i64 = 1_763_553_600_000; // 2025-11-19 12:00 UTC
    const NOW: i64 = CUTOFF + 7 * DAY;
    let config = camtrail_testkit::clickhouse("retention").await;
    migrate(&config, 1).await.expect("migrate");
    let client = config.client();

    // (captured_at_ms, before the cutoff?)
    let events: &[(i64, bool)] = &[
        (CUTOFF - 7 * DAY, true),         // 2025-11-12, old week
        (CUTOFF - DAY - 7_200_000, true), // 2025-11-18 10:00, straddling week
        (CUTOFF - 1_000, true),           // 2025-11-19 11:59:59, cutoff's day
        (CUTOFF, false),                  // exactly at the cutoff
        (CUTOFF + 2 * DAY, false),        // 2025-11-21, straddling week
        (NOW - 3_600_000, false),         // 2025-11-26, recent week
    ];
    let mut detections = Vec::new();
    let mut snapshots = Vec::new();
    for (i, (at, _)) in events.iter().enumerate() {
        let id = format!("toFixedString(unhex('{i:032x}'), 16)");
        detections.push(format!(
            "('key-{i}', {at}, {id}, 'cam-1', 1, 'P{i}', 0.9, 1, 1, 0, 0, 10, 10, 1, 'gw-1', {at})"
        ));
        snapshots.push(format!("({id}, {at}, 'jpeg-{i}')"));
    }
    let insert = format!(
        "INSERT INTO detections (subject_key, captured_at_ms, event_id, camera_id, \
         object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, \
         bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms) VALUES {}",
        detections.join(", ")
    );
    client
        .query(&insert)
        .execute()
        .await
        .expect("insert detections");
    let insert = format!(
        "INSERT INTO snapshots (event_id, captured_at_ms, jpeg) VALUES {}",
        snapshots.join(", ")
    );
    client
        .query(&insert)
        .execute()
        .await
        .expect("insert snapshots");
    let old = CUTOFF - 30 * DAY;
    let insert = format!(
        "INSERT INTO audit_log (node_id, seq, at_ms, user, role, case_id, reason, kind, \
         parameters_json, result_count, client_addr, prev_hash, hash) VALUES \
         ('node-1', 1, {old}, 'alice', 'investigator', 'case-1', 'r', 'track', '{{}}', 0, \
         '127.0.0.1', '', 'h1')"
    );
    client.query(&insert).execute().await.expect("insert audit");

    let count = |sql: String| {
        let client = config.client();
        async move { client.query(&sql).fetch_one::<u64>().await.expect("count") }
    };
    let snapshot_counts = || async {
        let mut out = Vec::new();
        for table in RETENTION_TABLES {
            out.push(count(format!("SELECT count() FROM {table}")).await);
        }
        out.push(count("SELECT count() FROM audit_log".into()).await);
        out
    };
    let before = snapshot_counts().await;

    // Dry run: the plan, and nothing changes.
    let plan = plan_retention(&config, NOW - 7 * DAY, &Default::default())
        .await
        .expect("plan");
    assert_eq!(plan.cutoff_ms, CUTOFF);
    for table in RETENTION_TABLES {
        let actions: Vec<&RetentionAction> = plan
            .actions
            .iter()
            .filter(|a| a.table() == *table)
            .collect();
        assert_eq!(actions.len(), 2, "{table}: {actions:?}");
        assert!(
            matches!(actions[0], RetentionAction::DropPartition { partition, rows: 1, .. }
                if partition == "2025-11-10"),
            "{table}: {:?}",
            actions[0]
        );
        let expected_before = if *table == "subject_keys_daily" { 1 } else { 2 };
        assert!(
            matches!(actions[1], RetentionAction::DeleteBefore {
                partition, cutoff_ms: CUTOFF, rows_before_cutoff, ..
            } if partition == "2025-11-17" && *rows_before_cutoff == expected_before),
            "{table}: {:?}",
            actions[1]
        );
    }
    assert!(plan.actions.iter().all(|a| a.partition() != "2025-11-24"));
    assert_eq!(snapshot_counts().await, before, "planning changes nothing");

    // Apply.
    let report = apply_retention(&config, &plan, Duration::from_secs(60))
        .await
        .expect("apply");
    assert_eq!(report.applied, plan.actions);
    assert_eq!(report.partitions_dropped, 4);
    for table in ["detections", "detections_by_hour", "snapshots"] {
        let old = count(format!(
            "SELECT count() FROM {table} WHERE captured_at_ms < {CUTOFF}"
        ))
        .await;
        assert_eq!(old, 0, "{table}: nothing before the cutoff remains");
        let kept = count(format!(
            "SELECT count() FROM {table} WHERE captured_at_ms >= {CUTOFF}"
        ))
        .await;
        assert_eq!(
            kept, 3,
            "{table}: everything at or after the cutoff remains"
        );
    }
    let old_days =
        count("SELECT count() FROM subject_keys_daily WHERE day < toDate('2025-11-19')".into())
            .await;
    assert_eq!(old_days, 0);
    // key-2 (11:59:59 on the cutoff's day) stays with its day; keys 3, 4, 5 stay.
    let kept_keys = count(
        "SELECT count() FROM subject_keys_daily WHERE subject_key IN \
         ('key-2', 'key-3', 'key-4', 'key-5')"
            .into(),
    )
    .await;
    assert_eq!(kept_keys, 4);
    assert_eq!(count("SELECT count() FROM audit_log".into()).await, 1);

    // Idempotent: nothing left to do.
    let again = plan_retention(&config, NOW - 7 * DAY, &Default::default())
        .await
        .expect("plan again");
    assert!(again.actions.is_empty(), "{:?}", again.actions);
    let report = apply_retention(&config, &again, Duration::from_secs(60))
        .await
        .expect("apply again");
    assert!(report.applied.is_empty());
    camtrail_testkit::drop_database(&config).await;
}

/// Migrations 007 and 008 on a database that already holds rows: the old rows read the new
/// attributes as unknown, new rows keep theirs in both tables, and a run interrupted
/// before its record (here: the whole record table lost) finishes without error, though
/// 18.16 cannot `ADD COLUMN IF NOT EXISTS`.
#[tokio::test]
async fn attribute_columns_are_added_to_a_database_with_rows_and_reruns_are_harmless() {
    use camtrail_clickhouse::ClickhouseStore;
    use camtrail_clickhouse::rows::DetectionRow;
    use camtrail_clickhouse::writer::TableWriter;
    use camtrail_model::VehicleAttributes;
    use camtrail_storage::testsuite::{CAMERA, T0, detection};
    use camtrail_storage::{PassFilter, SightingStore, StoredSighting};

    let config = camtrail_testkit::clickhouse("migrate_attributes").await;
    let client = config.client();
    // The schema of the previous release, with one row in it.
    config
        .server_client()
        .query(&format!(
            "CREATE DATABASE IF NOT EXISTS {}",
            config.database
        ))
        .execute()
        .await
        .expect("database");
    for migration in MIGRATIONS.iter().filter(|m| m.version < 7) {
        for statement in migration.statements() {
            client
                .query(&statement)
                .execute()
                .await
                .expect("old schema");
        }
    }
    client
        .query(
            "INSERT INTO detections (subject_key, captured_at_ms, event_id, camera_id, \
             object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, \
             bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms) VALUES \
             ('粤B00001', ?, toFixedString(unhex(?), 16), ?, 1, '粤B00001', 0.5, 5, 2, 0, 0, 1, 1, \
             0, 'gw-001', ?)",
        )
        .bind(T0)
        .bind("01".repeat(16))
        .bind(CAMERA)
        .bind(T0)
        .execute()
        .await
        .expect("old row");

    let report = migrate(&config, 1).await.expect("migrate");
    assert!(report.applied.contains(&7));
    let new = detection(2, "粤B00002", T0 + 1_000, CAMERA);
    let (row, _) = DetectionRow::from_detection(new.clone());
    TableWriter::new(client.clone(), std::time::Duration::from_secs(30))
        .insert_rows("detections", &[row], None)
        .await
        .expect("insert a new row");

    let store = ClickhouseStore::new(&config);
    let (camera, no_filter) = ([CAMERA.to_string()], PassFilter::default());
    let first_minute = || store.passes(&camera, T0, T0 + 60_000, &no_filter, None, 10);
    let passes = first_minute().await.expect("passes");
    assert_eq!(passes.len(), 2, "{passes:?}");
    // A row stored before the migrations: the attributes it did not have read as unknown;
    // detections_by_hour was copied from detections (migration 008), which always had the
    // colour and type.
    assert_eq!(
        passes[0].attributes,
        VehicleAttributes {
            color: 5,
            kind: 2,
            ..VehicleAttributes::default()
        }
    );
    assert!(passes[0].plate_char_confidence.is_empty());
    assert_eq!(passes[1], StoredSighting::from_detection(&new));
    let by_key = store
        .sightings(&["粤B00001".to_string()], T0, T0 + 60_000, 10)
        .await
        .expect("sightings");
    assert_eq!(
        by_key[0].attributes,
        VehicleAttributes {
            color: 5,
            kind: 2,
            ..VehicleAttributes::default()
        }
    );

    // Every statement again, as after a run cut short before its record.
    client
        .query("DROP TABLE schema_migrations")
        .execute()
        .await
        .expect("forget the records");
    let again = migrate(&config, 2).await.expect("re-run");
    assert_eq!(again.applied.len(), MIGRATIONS.len());
    let views: Vec<String> = client
        .query(
            "SELECT name FROM system.tables WHERE database = ? AND name LIKE '%_mv%' ORDER BY name",
        )
        .bind(&config.database)
        .fetch_all()
        .await
        .expect("views");
    assert_eq!(views, ["detections_by_hour_mv", "subject_keys_daily_mv"]);
    TableWriter::new(client.clone(), std::time::Duration::from_secs(30))
        .insert_rows(
            "detections",
            &[DetectionRow::from_detection(detection(3, "粤B00003", T0 + 2_000, CAMERA)).0],
            None,
        )
        .await
        .expect("insert after the re-run");
    let by_hour: u64 = client
        .query(
            "SELECT count() FROM detections_by_hour WHERE event_id = toFixedString(unhex(?), 16)",
        )
        .bind("03".repeat(16))
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(by_hour, 1, "exactly one view feeds detections_by_hour");
    // The re-run copied the stored rows again (migration 008's backfill): readers see each
    // sighting once.
    let after_rerun = first_minute().await.expect("passes after the re-run");
    let ids: Vec<_> = after_rerun.iter().map(|s| s.event_id).collect();
    assert_eq!(ids.len(), 3, "{ids:?}");
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(distinct, ids);
    camtrail_testkit::drop_database(&config).await;
}
