//! End-to-end tests of the `camtrail` binary against the real services.

use std::process::Command;

fn camtrail() -> Command {
    Command::new(env!("CARGO_BIN_EXE_camtrail"))
}

#[test]
fn help_explains_every_subcommand() {
    let output = camtrail()
        .arg("--help")
        .output()
        .expect("run camtrail --help");
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for subcommand in ["migrate", "config"] {
        assert!(
            text.contains(subcommand),
            "--help lacks {subcommand}:\n{text}"
        );
    }
}

#[test]
fn config_prints_environment_overrides() {
    let output = camtrail()
        .arg("config")
        .env("CAMTRAIL_KAFKA__DETECTIONS_PARTITIONS", "7")
        .output()
        .expect("run camtrail config");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("detections_partitions = 7"), "{text}");
    assert!(text.contains("url = \"http://127.0.0.1:8123\""), "{text}");
}

#[test]
fn bad_configuration_is_a_clear_error() {
    let output = camtrail()
        .arg("config")
        .env("CAMTRAIL_CLICKHOUSE__DATABASE", "x;y")
        .output()
        .expect("run camtrail config");
    assert!(!output.status.success());
    let text = String::from_utf8_lossy(&output.stderr);
    assert!(text.contains("clickhouse.database"), "{text}");
}

#[tokio::test]
async fn migrate_twice_then_load_cameras() {
    let clickhouse = camtrail_testkit::clickhouse("cli_migrate").await;
    let brokers = camtrail_testkit::require_kafka();
    let prefix = camtrail_testkit::unique_name("cli");
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = dir.path().join("cameras.csv");
    std::fs::write(
        &registry,
        "camera_id,district,lat,lon,heading_deg,road,gateway_id\n\
         44030000001310000001,Futian,22.54,114.05,90,Shennan Rd,gw-001\n",
    )
    .expect("write registry");
    let run = |extra: &[&str]| {
        let output = camtrail()
            .arg("migrate")
            .args(extra)
            .env("CAMTRAIL_CLICKHOUSE__URL", &clickhouse.url)
            .env("CAMTRAIL_CLICKHOUSE__DATABASE", &clickhouse.database)
            .env("CAMTRAIL_KAFKA__BROKERS", &brokers)
            .env(
                "CAMTRAIL_KAFKA__DETECTIONS_TOPIC",
                format!("{prefix}.detections.v1"),
            )
            .env(
                "CAMTRAIL_KAFKA__DEAD_LETTER_TOPIC",
                format!("{prefix}.dlq.v1"),
            )
            .env("CAMTRAIL_KAFKA__AUDIT_TOPIC", format!("{prefix}.audit.v1"))
            .output()
            .expect("run camtrail migrate");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert!(
            output.status.success(),
            "migrate failed:\n{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    };
    let first = run(&[]);
    assert!(first.contains("applied [1, 2, 3, 4, 5, 6]"), "{first}");
    assert!(
        first.contains(&format!("kafka topic {prefix}.detections.v1: created")),
        "{first}"
    );
    let second = run(&["--cameras", registry.to_str().expect("utf-8 path")]);
    assert!(
        second.contains("applied [], already applied [1, 2, 3, 4, 5, 6]"),
        "{second}"
    );
    assert!(
        second.contains(&format!("kafka topic {prefix}.audit.v1: exists")),
        "{second}"
    );
    assert!(second.contains("cameras: loaded 1"), "{second}");
    let sql = format!("DROP DATABASE IF EXISTS {}", clickhouse.database);
    clickhouse
        .server_client()
        .query(&sql)
        .execute()
        .await
        .expect("drop");
}
