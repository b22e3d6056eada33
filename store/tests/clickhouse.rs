//! Integration tests against the real ClickHouse server (started by
//! `deploy/local/services.sh up`). Each test gets its own database.

use camtrail_model::{Camera, CameraRegistry};
use camtrail_store::clickhouse::{MIGRATIONS, load_cameras, migrate};

const TABLES: &[&str] = &[
    "audit_log",
    "cameras",
    "detections",
    "detections_by_camera",
    "detections_by_camera_mv",
    "schema_migrations",
    "snapshots",
    "subject_keys_daily",
    "subject_keys_daily_mv",
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
    drop_database(&config).await;
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
        .query("SELECT uniqExact(event_id) FROM detections_by_camera WHERE camera_id = ?")
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
    drop_database(&config).await;
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
    drop_database(&config).await;
}

async fn drop_database(config: &camtrail_store::clickhouse::ClickhouseConfig) {
    let sql = format!("DROP DATABASE IF EXISTS {}", config.database);
    config
        .server_client()
        .query(&sql)
        .execute()
        .await
        .expect("drop database");
}
