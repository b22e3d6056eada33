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
    for subcommand in [
        "migrate", "config", "serve", "demo", "ingest", "sink", "query",
    ] {
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
    assert!(
        first.contains("applied [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"),
        "{first}"
    );
    assert!(
        first.contains(&format!("kafka topic {prefix}.detections.v1: created")),
        "{first}"
    );
    let second = run(&["--cameras", registry.to_str().expect("utf-8 path")]);
    assert!(
        second.contains("applied [], already applied [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"),
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

#[tokio::test]
async fn retention_is_audited_before_it_removes_anything() {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

    let clickhouse = camtrail_testkit::clickhouse("cli_retention").await;
    camtrail_clickhouse::migrate(&clickhouse, 1)
        .await
        .expect("migrate");
    let brokers = camtrail_testkit::require_kafka();
    let audit_topic = camtrail_testkit::unique_name("cli_retention_audit");
    let kafka = camtrail_kafka::KafkaConfig {
        brokers: brokers.clone(),
        audit_topic: audit_topic.clone(),
        ..Default::default()
    };
    camtrail_kafka::ensure_topics(&kafka, std::time::Duration::from_secs(30))
        .await
        .expect("topics");
    let now_ms = camtrail_common::now_ms();
    let day = 86_400_000;
    let rows: Vec<String> = [now_ms - 60 * day, now_ms - 45 * day, now_ms - day]
        .iter()
        .enumerate()
        .map(|(i, at)| {
            format!(
                "('key-{i}', {at}, toFixedString(unhex('{i:032x}'), 16), 'cam-1', 1, 'P{i}', \
                 0.9, 1, 1, 0, 0, 10, 10, 0, 'gw-1', {at})"
            )
        })
        .collect();
    let insert = format!(
        "INSERT INTO detections (subject_key, captured_at_ms, event_id, camera_id, \
         object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, \
         bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms) VALUES {}",
        rows.join(", ")
    );
    clickhouse
        .client()
        .query(&insert)
        .execute()
        .await
        .expect("insert");
    let run = |extra: &[&str]| {
        let output = camtrail()
            .args(["retention", "apply", "--days", "30"])
            .args(extra)
            .env("CAMTRAIL_CLICKHOUSE__URL", &clickhouse.url)
            .env("CAMTRAIL_CLICKHOUSE__DATABASE", &clickhouse.database)
            .env("CAMTRAIL_KAFKA__BROKERS", &brokers)
            .env("CAMTRAIL_KAFKA__AUDIT_TOPIC", &audit_topic)
            .output()
            .expect("run camtrail retention");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        let stderr = String::from_utf8_lossy(&output.stderr).to_string();
        (output.status.success(), stdout, stderr)
    };

    // With the audit topic unreachable, nothing is removed.
    let refused = camtrail()
        .args(["retention", "apply", "--days", "30"])
        .env("CAMTRAIL_CLICKHOUSE__URL", &clickhouse.url)
        .env("CAMTRAIL_CLICKHOUSE__DATABASE", &clickhouse.database)
        .env("CAMTRAIL_KAFKA__BROKERS", "127.0.0.1:1")
        .env("CAMTRAIL_KAFKA__AUDIT_TOPIC", &audit_topic)
        .env("CAMTRAIL_RETENTION_AUDIT_TIMEOUT_MS", "2000")
        .output()
        .expect("run camtrail retention");
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("audit record could not be written"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let count = || async {
        clickhouse
            .client()
            .query("SELECT count() FROM detections")
            .fetch_one::<u64>()
            .await
            .expect("count")
    };
    assert_eq!(count().await, 3, "a refused run removed rows");

    let (ok, stdout, stderr) = run(&["--dry-run"]);
    assert!(ok, "{stdout}\n{stderr}");
    assert!(stdout.contains("dry run: nothing changed"), "{stdout}");
    let (ok, stdout, stderr) = run(&["--case", "OPS-42", "--reason", "daily policy"]);
    assert!(ok, "{stdout}\n{stderr}");
    // Two old detections, each also in detections_by_hour and subject_keys_daily.
    assert!(stdout.contains("removed 6 rows"), "{stdout}");
    assert!(stdout.contains("audited as retention/"), "{stdout}");
    assert_eq!(count().await, 1);

    // Exactly one audit record: the real run (not the dry run, not the refused one).
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .set("group.id", camtrail_testkit::unique_name("audit_reader"))
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&audit_topic, 0, Offset::Beginning)
        .expect("offset");
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(std::time::Duration::from_millis(200)) {
            let message = message.expect("message");
            let value = message.payload().expect("payload");
            records.push(camtrail_proto::record::decode_audit(value).expect("audit record"));
        }
    }
    assert_eq!(records.len(), 1, "{records:?}");
    let record = &records[0];
    assert_eq!(record.entry.kind, "retention");
    assert_eq!(record.entry.case_id, "OPS-42");
    assert_eq!(record.entry.reason, "daily policy");
    assert_eq!(record.entry.result_count, 6);
    assert!(record.entry.parameters_json.contains("\"days\":30"));
    assert_eq!(camtrail_model::audit::verify_chain(&records), Ok(1));
    camtrail_testkit::drop_database(&clickhouse).await;
}

/// Issue 13, fault 7: the files the CLI writes holding secrets are owner-only (0600), and
/// an existing users file left 0644 by an older version is narrowed when rewritten.
#[cfg(unix)]
#[test]
fn credential_files_are_owner_only() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path).expect("stat").permissions().mode() & 0o777
    };
    let dir = tempfile::tempdir().expect("tempdir");
    let city = dir.path().join("city");
    let ran = camtrail()
        .args([
            "city",
            "--seed",
            "3",
            "--cameras",
            "200",
            "--gateways",
            "40",
            "--out",
        ])
        .arg(&city)
        .output()
        .expect("run camtrail city");
    assert!(ran.status.success(), "{ran:?}");
    let tokens = dir.path().join("tokens");
    let ran = camtrail()
        .args(["gateways", "issue", "--registry"])
        .arg(city.join("cameras.csv"))
        .arg("--out")
        .arg(&tokens)
        .output()
        .expect("run camtrail gateways issue");
    assert!(ran.status.success(), "{ran:?}");
    for file in ["gateway_tokens.csv", "gateway_token_hashes.csv"] {
        assert_eq!(mode(&tokens.join(file)), 0o600, "{file}");
    }
    let users = dir.path().join("users.toml");
    std::fs::write(&users, "").expect("an old users file");
    std::fs::set_permissions(&users, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let ran = camtrail()
        .args([
            "users",
            "issue",
            "--name",
            "ada",
            "--role",
            "investigator",
            "--users",
        ])
        .arg(&users)
        .output()
        .expect("run camtrail users issue");
    assert!(ran.status.success(), "{ran:?}");
    assert_eq!(mode(&users), 0o600);
    assert!(
        std::fs::read_to_string(&users)
            .expect("read")
            .contains("ada")
    );
}
