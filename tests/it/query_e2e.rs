//! The query node against real ClickHouse and Kafka: who may ask what, that every answer is
//! audited before it leaves (and refused queries are not), hostile input, the track itself
//! in JSON, GeoJSON and PNG, and `camtrail audit verify` catching a tampered row after the
//! sink loaded the audit topic.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use camtrail_clickhouse::rows::DetectionRow;
use camtrail_clickhouse::{ClickhouseConfig, migrate};
use camtrail_kafka::{KafkaConfig, ensure_topics};
use camtrail_model::audit::AuditRecord;
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};
use camtrail_proto::v1;
use camtrail_proto::v1::query_client::QueryClient;
use camtrail_query::auth::{Role, UsersFile, issue};
use camtrail_query::client::{ClientError, get};
use camtrail_query::node::QueryConfig;
use camtrail_sink::{SinkConfig, SinkNode};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

use crate::query_node::with_token;

/// 2025-11-26 12:00 UTC.
const T0: i64 = 1_764_158_400_000;
const MIN: i64 = 60_000;

/// Cameras in three districts, a few km apart.
const CAMERAS: &[(&str, &str, f64, f64)] = &[
    ("44030000001310000001", "Futian", 22.540, 114.050),
    ("44030000001310000002", "Futian", 22.545, 114.060),
    ("44030000001310000003", "Luohu", 22.550, 114.110),
    ("44030000001310000004", "Luohu", 22.555, 114.120),
    ("44030000001310000005", "Nanshan", 22.530, 113.930),
];

struct Setup {
    url: String,
    grpc: String,
    investigator: String,
    supervisor: String,
    operator: String,
    kafka: KafkaConfig,
    clickhouse: ClickhouseConfig,
    dir: tempfile::TempDir,
    stop: tokio::sync::oneshot::Sender<()>,
}

fn detection(n: u8, camera: usize, at_ms: i64, plate: &str) -> Detection {
    Detection {
        event_id: EventId([n; 16]),
        camera_id: CAMERAS[camera].0.into(),
        captured_at_ms: at_ms,
        object_class: ObjectClass::Vehicle,
        plate: plate.into(),
        plate_confidence: 0.9,
        subject_key: camtrail_model::plate::normalize(plate),
        attributes: VehicleAttributes {
            color: 1,
            kind: 1,
            ..VehicleAttributes::default()
        },
        plate_char_confidence: Vec::new(),
        bbox: [1, 2, 3, 4],
        thumbnail_jpeg: (n == 1).then(|| vec![0xFF, 0xD8, 0xFF, 0xD9]),
        gateway_id: "gw-001".into(),
        received_at_ms: at_ms + 500,
    }
}

/// The stored sightings: 粤B12345 drives Futian → Luohu → Futian, is misread once as
/// 粤B1Z345 on the way, and is seen twice (a re-delivery) at one camera; 粤B99999 and
/// 粤B12346 are other cars.
fn stored() -> Vec<Detection> {
    let mut events = vec![
        detection(1, 0, T0, "粤B·12345"),
        detection(2, 1, T0 + 3 * MIN, "粤B·12345"),
        detection(3, 2, T0 + 9 * MIN, "粤B·1Z345"),
        detection(4, 3, T0 + 12 * MIN, "粤B·12345"),
        detection(5, 1, T0 + 25 * MIN, "粤B12345"),
        detection(6, 4, T0 + 5 * MIN, "粤B·99999"),
        detection(7, 0, T0 + 40 * MIN, "粤B·12346"),
    ];
    events.push(events[3].clone()); // delivered twice
    // Two cars with every attribute classified (the others have colour and type only).
    events[1].attributes = VehicleAttributes {
        color: 6,
        kind: 2,
        plate_color: 1,
        direction: 3,
        speed_kmh: 48.5,
        brand: "大众".into(),
    };
    events[1].plate_char_confidence = vec![90, 91, 92, 93, 94, 95, 96];
    events[5].attributes = VehicleAttributes {
        color: 2,
        kind: 5,
        plate_color: 2,
        direction: 7,
        speed_kmh: 30.0,
        brand: "比亚迪".into(),
    };
    events
}

async fn setup(test: &str) -> Setup {
    setup_with(test, |_| None).await
}

async fn setup_with(
    test: &str,
    tls: impl FnOnce(&std::path::Path) -> Option<camtrail_common::tls::TlsConfig>,
) -> Setup {
    let brokers = camtrail_testkit::require_kafka();
    let clickhouse = camtrail_testkit::clickhouse(test).await;
    migrate(&clickhouse, 1).await.expect("migrate");
    let cases = camtrail_clickhouse::ClickhouseStore::new(&clickhouse);
    for case in ["CASE-1", "C1", "CASE-A"] {
        camtrail_storage::testsuite::open_case(&cases, case, &["ivy"]).await;
    }
    let prefix = camtrail_testkit::unique_name(test);
    let kafka = KafkaConfig {
        brokers,
        detections_topic: format!("{prefix}.detections.v1"),
        dead_letter_topic: format!("{prefix}.dlq.v1"),
        audit_topic: format!("{prefix}.audit.v1"),
        alerts_topic: format!("{prefix}.alerts.v1"),
        detections_partitions: 1,
        ..KafkaConfig::default()
    };
    ensure_topics(&kafka, Duration::from_secs(30))
        .await
        .expect("topics");

    let mut insert = clickhouse
        .client()
        .insert::<DetectionRow>("detections")
        .await
        .expect("insert");
    let mut snapshots = Vec::new();
    for event in stored() {
        let (row, snapshot) = DetectionRow::from_detection(event);
        insert.write(&row).await.expect("row");
        snapshots.extend(snapshot);
    }
    insert.end().await.expect("end");
    let mut insert = clickhouse
        .client()
        .insert::<camtrail_clickhouse::rows::SnapshotRow>("snapshots")
        .await
        .expect("insert");
    for row in &snapshots {
        insert.write(row).await.expect("row");
    }
    insert.end().await.expect("end");

    let dir = tempfile::tempdir().expect("tempdir");
    let registry = dir.path().join("cameras.csv");
    let mut csv = String::from("camera_id,district,lat,lon,heading_deg,road,gateway_id\n");
    for (id, district, lat, lon) in CAMERAS {
        csv.push_str(&format!(
            "{id},{district},{lat},{lon},90,Shennan Rd,gw-001\n"
        ));
    }
    std::fs::write(&registry, csv).expect("registry");
    let (investigator, supervisor, operator) = (
        issue("ivy", Role::Investigator),
        issue("sam", Role::Supervisor),
        issue("otto", Role::Operator),
    );
    let users: PathBuf = dir.path().join("users.toml");
    let file = UsersFile {
        user: vec![
            investigator.entry.clone(),
            supervisor.entry.clone(),
            operator.entry.clone(),
        ],
    };
    std::fs::write(&users, toml::to_string(&file).expect("toml")).expect("users");
    let tls = tls(dir.path());
    let config = QueryConfig {
        tls,
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        node_name: "query-test".into(),
        registry_path: registry,
        users_path: users,
        // The fixed test instants lie in the past; keep them inside the ordinary bound.
        limits: camtrail_query::service::QueryLimits {
            supervisor_track_age_ms: 100 * 365 * 24 * 3_600_000,
            ..Default::default()
        },
        ..QueryConfig::default()
    };
    let node = camtrail_serve::distributed::bind_query(&camtrail_serve::Config {
        query: config,
        kafka: kafka.clone(),
        clickhouse: clickhouse.clone(),
        ..camtrail_serve::Config::default()
    })
    .await
    .expect("bind query node");
    let addr: SocketAddr = node.http_addr().expect("addr");
    let grpc_addr: SocketAddr = node.grpc_addr().expect("grpc addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    Setup {
        url: format!("http://{addr}"),
        grpc: format!("http://{grpc_addr}"),
        investigator: investigator.token,
        supervisor: supervisor.token,
        operator: operator.token,
        kafka,
        clickhouse,
        dir,
        stop,
    }
}

fn track_path(plate: &str, extra: &str) -> String {
    format!(
        "/v1/track?plate={plate}&from={}&to={}&case=CASE-1&reason=test{extra}",
        T0 - MIN,
        T0 + 60 * MIN
    )
}

async fn refused(setup: &Setup, path: &str, token: &str) -> (u16, String) {
    match get(&setup.url, path, token).await {
        Err(ClientError::Refused { status, code, .. }) => (status, code),
        Ok(body) => panic!("{path} was answered: {}", String::from_utf8_lossy(&body)),
        Err(other) => panic!("{path}: {other}"),
    }
}

async fn json(setup: &Setup, path: &str, token: &str) -> serde_json::Value {
    let body = get(&setup.url, path, token).await.expect(path);
    serde_json::from_slice(&body).expect("json")
}

/// Every record on the audit topic (waits briefly for stragglers).
fn audit_topic(kafka: &KafkaConfig) -> Vec<AuditRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", camtrail_testkit::unique_name("audit_reader"))
        .create()
        .expect("consumer");
    let metadata = consumer
        .fetch_metadata(Some(&kafka.audit_topic), Duration::from_secs(10))
        .expect("metadata");
    let mut assignment = TopicPartitionList::new();
    for partition in metadata.topics()[0].partitions() {
        assignment
            .add_partition_offset(&kafka.audit_topic, partition.id(), Offset::Beginning)
            .expect("offset");
    }
    consumer.assign(&assignment).expect("assign");
    let mut records = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            let message = message.expect("message");
            records.push(
                camtrail_proto::record::decode_audit(message.payload().expect("payload"))
                    .expect("audit record"),
            );
        }
    }
    records.sort_by_key(|r| r.seq);
    records
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_rules_hostile_input_and_one_audit_record_per_answer() {
    let setup = setup("query_access").await;
    let plate = "%E7%B2%A4B12345"; // 粤B12345
    let path = track_path(plate, "");

    // Refusals: no token 401, operator 403, no case / no reason 400, bad windows 400.
    assert_eq!(
        refused(&setup, &path, "").await,
        (401, "unauthenticated".into())
    );
    assert_eq!(
        refused(&setup, &path, "ct_not_a_token").await,
        (401, "unauthenticated".into())
    );
    assert_eq!(
        refused(&setup, &path, &setup.operator).await,
        (403, "forbidden".into())
    );
    let no_case = format!("/v1/track?plate={plate}&from={T0}&to={}&reason=x", T0 + MIN);
    assert_eq!(
        refused(&setup, &no_case, &setup.investigator).await,
        (400, "missing_case".into())
    );
    let no_reason = format!("/v1/track?plate={plate}&from={T0}&to={}&case=C1", T0 + MIN);
    assert_eq!(
        refused(&setup, &no_reason, &setup.investigator).await,
        (400, "missing_reason".into())
    );
    let huge = format!(
        "/v1/track?plate={plate}&from=0&to={}&case=C1&reason=x",
        i64::MAX
    );
    assert_eq!(
        refused(&setup, &huge, &setup.investigator).await,
        (400, "window_too_long".into())
    );
    let invalid_utf8 = format!(
        "/v1/track?plate=%FF%FE&from={T0}&to={}&case=C1&reason=x",
        T0 + MIN
    );
    assert_eq!(
        refused(&setup, &invalid_utf8, &setup.investigator).await,
        (400, "invalid_query".into())
    );
    let hostile_case =
        track_path(plate, "").replace("CASE-1", "x%27%3B%20DROP%20TABLE%20audit_log");
    assert_eq!(
        refused(&setup, &hostile_case, &setup.investigator).await,
        (400, "invalid_case".into())
    );
    let wide_passes = format!(
        "/v1/passes?cameras={},{}&from={T0}&to={}&case=C1&reason=x",
        CAMERAS[0].0,
        CAMERAS[2].0,
        T0 + MIN
    );
    assert_eq!(
        refused(&setup, &wide_passes, &setup.investigator).await,
        (403, "forbidden".into())
    );
    assert!(
        audit_topic(&setup.kafka).is_empty(),
        "a refused query left an audit record"
    );

    // A plate made of quotes and SQL is bound as a value: it is simply not found.
    let sql = track_path("%27)%20OR%201%3D1%20--", "");
    let answer = json(&setup, &sql, &setup.investigator).await;
    assert_eq!(answer["sightings"].as_array().map(Vec::len), Some(0));

    // The track: exact sightings in order, the re-delivery once, the misread only with fuzzy.
    let answer = json(&setup, &path, &setup.investigator).await;
    let sightings = answer["sightings"].as_array().expect("sightings");
    let times: Vec<i64> = sightings
        .iter()
        .map(|s| s["captured_at_ms"].as_i64().expect("ms"))
        .collect();
    assert_eq!(times, vec![T0, T0 + 3 * MIN, T0 + 12 * MIN, T0 + 25 * MIN]);
    let districts: Vec<&str> = sightings
        .iter()
        .map(|s| s["district"].as_str().expect("district"))
        .collect();
    assert_eq!(districts, vec!["Futian", "Futian", "Luohu", "Futian"]);
    assert_eq!(answer["transitions"].as_array().map(Vec::len), Some(2));
    assert_eq!(sightings[0]["time"], "2025-11-26 20:00:00", "Asia/Shanghai");

    let fuzzy = json(
        &setup,
        &track_path(plate, "&fuzzy=true"),
        &setup.investigator,
    )
    .await;
    let kinds: Vec<&str> = fuzzy["sightings"]
        .as_array()
        .expect("sightings")
        .iter()
        .map(|s| s["match_kind"].as_str().expect("kind"))
        .collect();
    assert_eq!(kinds, vec!["exact", "exact", "fuzzy", "exact", "exact"]);

    let geojson = json(
        &setup,
        &track_path(plate, "").replace("/v1/track?", "/v1/track.geojson?"),
        &setup.investigator,
    )
    .await;
    assert_eq!(geojson["type"], "FeatureCollection");
    assert_eq!(geojson["features"].as_array().map(Vec::len), Some(4 + 3));
    let png = get(
        &setup.url,
        &track_path(plate, "").replace("/v1/track?", "/v1/track.png?"),
        &setup.investigator,
    )
    .await
    .expect("png");
    // Kept for a look: target/tmp/query_e2e_track.png.
    let _ = std::fs::write(
        std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("query_e2e_track.png"),
        &png,
    );
    let image = image::load_from_memory(&png).expect("a PNG");
    assert!(image.width() >= 900 && image.height() >= 900);

    let snapshot = get(
        &setup.url,
        &format!(
            "/v1/snapshots/{}.jpg?case=CASE-1&reason=test",
            EventId([1; 16])
        ),
        &setup.investigator,
    )
    .await
    .expect("snapshot");
    assert_eq!(snapshot, vec![0xFF, 0xD8, 0xFF, 0xD9]);

    let passes = json(
        &setup,
        &format!(
            "/v1/passes?district=Futian&from={T0}&to={}&case=CASE-1&reason=test&limit=2",
            T0 + 60 * MIN
        ),
        &setup.investigator,
    )
    .await;
    assert_eq!(passes["passes"].as_array().map(Vec::len), Some(2));
    let next = passes["next"].as_str().expect("a second page").to_string();
    let page2 = json(
        &setup,
        &format!(
            "/v1/passes?district=Futian&from={T0}&to={}&case=CASE-1&reason=test&limit=2&after={next}",
            T0 + 60 * MIN
        ),
        &setup.investigator,
    )
    .await;
    let page2_times: Vec<i64> = page2["passes"]
        .as_array()
        .expect("passes")
        .iter()
        .map(|p| p["captured_at_ms"].as_i64().expect("ms"))
        .collect();
    assert_eq!(page2_times, vec![T0 + 25 * MIN, T0 + 40 * MIN]);

    // A supervisor may run the multi-district search.
    let wide = json(&setup, &wide_passes, &setup.supervisor).await;
    assert!(wide["passes"].is_array());

    // The same service over gRPC: no token refused, a track answered (and audited).
    let mut grpc = QueryClient::connect(setup.grpc.clone())
        .await
        .expect("grpc");
    let track_request = || v1::TrackRequest {
        subject: Some(v1::track_request::Subject::Plate("粤B12345".into())),
        from_ms: T0 - MIN,
        to_ms: T0 + 60 * MIN,
        fuzzy: false,
        justification: Some(v1::Justification {
            case_id: "CASE-1".into(),
            reason: "test".into(),
        }),
        stop_min_ms: 0,
    };
    let refused = grpc
        .track(tonic::Request::new(track_request()))
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let answer = grpc
        .track(with_token(&setup.investigator, track_request()))
        .await
        .expect("grpc track")
        .into_inner();
    assert_eq!(answer.sightings.len(), 4);
    assert!(
        answer.audit_id.starts_with("query-test/"),
        "{}",
        answer.audit_id
    );

    // The investigator's CLI: a readable table, and the PNG map written to a file.
    let cli = |format: &str, out: Option<&std::path::Path>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_camtrail"));
        command
            .args([
                "track",
                "--plate",
                "粤B·12345",
                "--case",
                "CASE-1",
                "--reason",
                "test",
            ])
            .args([
                "--from",
                "2025-11-26T19:59:00+08:00",
                "--to",
                "2025-11-26T21:00:00+08:00",
            ])
            .args(["--format", format, "--url", &setup.url])
            .env("CAMTRAIL_TOKEN", &setup.investigator);
        if let Some(out) = out {
            command.arg("--out").arg(out);
        }
        let output = command.output().expect("run camtrail track");
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let table = cli("table", None);
    assert!(
        table.contains("4 sightings, 1 trips, 0 stops, 2 district changes"),
        "{table}"
    );
    assert!(
        table.contains("2025-11-26 20:12:00") && table.contains("→ Luohu"),
        "{table}"
    );
    let png_path = setup.dir.path().join("track.png");
    cli("png", Some(&png_path));
    image::open(&png_path).expect("the CLI wrote a PNG");

    // Exactly one audit record per answered query, chained, with who/why/what.
    let records = audit_topic(&setup.kafka);
    let kinds: Vec<&str> = records.iter().map(|r| r.entry.kind.as_str()).collect();
    assert_eq!(
        kinds,
        vec![
            "track", "track", "track", "track", "track", "snapshot", "passes", "passes", "passes",
            "track", "track", "track"
        ]
    );
    assert_eq!(camtrail_model::audit::verify_chain(&records), Ok(12));
    assert_eq!(records[1].entry.user, "ivy");
    assert_eq!(records[1].entry.case_id, "CASE-1");
    assert_eq!(records[1].entry.result_count, 4);
    assert!(records[1].entry.client_addr.starts_with("127.0.0.1:"));
    assert_eq!(records[8].entry.role, "supervisor");

    // The sink loads the topic; verify passes; a tampered row makes it fail at that row.
    let group = camtrail_testkit::unique_name("query_sink");
    let sink = SinkNode::bind(
        SinkConfig {
            group_id: group.clone(),
            max_batch_age_ms: 200,
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            ..SinkConfig::default()
        },
        &setup.kafka,
        &setup.clickhouse,
    )
    .await
    .expect("sink");
    let (sink_stop, sink_stopped) = tokio::sync::oneshot::channel::<()>();
    let sink = tokio::spawn(sink.run_until_stopped(async move {
        let _ = sink_stopped.await;
    }));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored: u64 = setup
            .clickhouse
            .client()
            .query("SELECT count() FROM audit_log")
            .fetch_one()
            .await
            .expect("count");
        if stored >= 12 {
            break;
        }
        assert!(Instant::now() < deadline, "audit records not loaded");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let _ = sink_stop.send(());
    sink.await.expect("join").expect("sink");

    let verify = |expect_ok: bool| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_camtrail"))
            .args(["audit", "verify"])
            .env("CAMTRAIL_CLICKHOUSE__URL", &setup.clickhouse.url)
            .env("CAMTRAIL_CLICKHOUSE__DATABASE", &setup.clickhouse.database)
            .output()
            .expect("run audit verify");
        let stdout = String::from_utf8_lossy(&output.stdout).to_string();
        assert_eq!(output.status.success(), expect_ok, "{stdout}");
        stdout
    };
    // Supervisors list audit records by case; investigators may not.
    let listed = grpc
        .list_audit(with_token(
            &setup.supervisor,
            v1::ListAuditRequest {
                case_id: "CASE-1".into(),
                ..Default::default()
            },
        ))
        .await
        .expect("list audit")
        .into_inner();
    assert_eq!(
        listed.records.len(),
        11,
        "CASE-1 records (the wide search was C1)"
    );
    let denied = grpc
        .list_audit(with_token(
            &setup.investigator,
            v1::ListAuditRequest {
                case_id: "CASE-1".into(),
                ..Default::default()
            },
        ))
        .await
        .expect_err("investigator");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);

    let intact = verify(true);
    assert!(intact.contains("audit log intact: 1 chains"), "{intact}");

    let tamper = "ALTER TABLE audit_log UPDATE reason = 'nothing to see' WHERE seq = 4";
    setup
        .clickhouse
        .client()
        .query(tamper)
        .execute()
        .await
        .expect("tamper");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let pending: u64 = setup
            .clickhouse
            .client()
            .query("SELECT count() FROM system.mutations WHERE database = ? AND is_done = 0")
            .bind(&setup.clickhouse.database)
            .fetch_one()
            .await
            .expect("mutations");
        if pending == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "mutation did not finish");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let broken = verify(false);
    assert!(broken.contains("broken at seq 4"), "{broken}");
    assert!(broken.contains("altered"), "{broken}");

    let _ = setup.stop.send(());
    drop(setup.dir);
    camtrail_testkit::drop_database(&setup.clickhouse).await;
}

/// A CA and a server certificate for `localhost`, written to `dir`; returns the CA PEM.
fn make_pki(dir: &std::path::Path) -> String {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, &ca_key);
    let key = KeyPair::generate().expect("key");
    let cert = CertificateParams::new(vec!["localhost".into()])
        .expect("params")
        .signed_by(&key, &issuer)
        .expect("sign");
    std::fs::write(dir.join("server.pem"), cert.pem()).expect("write");
    std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write");
    ca_cert.pem()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_tls_configured_both_http_and_grpc_speak_only_tls() {
    let ca_pem = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let ca_slot = std::sync::Arc::clone(&ca_pem);
    let setup = setup_with("query_tls", move |dir| {
        *ca_slot.lock().expect("lock") = make_pki(dir);
        Some(camtrail_common::tls::TlsConfig {
            cert_path: dir.join("server.pem"),
            key_path: dir.join("server.key"),
            client_ca_path: None,
        })
    })
    .await;
    let ca_pem = ca_pem.lock().expect("lock").clone();

    // gRPC over TLS, trusting the test CA.
    let grpc_port = setup.grpc.rsplit(':').next().expect("port").to_string();
    let channel = tonic::transport::Channel::from_shared(format!("https://localhost:{grpc_port}"))
        .expect("uri")
        .tls_config(
            tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(&ca_pem)),
        )
        .expect("tls")
        .connect()
        .await
        .expect("TLS connect");
    let mut grpc = QueryClient::new(channel);
    let camera = grpc
        .get_camera(with_token(
            &setup.investigator,
            v1::GetCameraRequest {
                camera_id: CAMERAS[0].0.into(),
            },
        ))
        .await
        .expect("camera over TLS")
        .into_inner();
    assert_eq!(camera.district, "Futian");

    // HTTPS with rustls, trusting the test CA.
    let http_port = setup.url.rsplit(':').next().expect("port").to_string();
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::pem::PemObject::from_pem_slice(ca_pem.as_bytes()).expect("ca der"))
        .expect("root");
    let client_config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client_config));
    let tcp = tokio::net::TcpStream::connect(format!("127.0.0.1:{http_port}"))
        .await
        .expect("tcp");
    let tls = connector
        .connect(
            rustls::pki_types::ServerName::try_from("localhost").expect("name"),
            tcp,
        )
        .await
        .expect("TLS handshake");
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .expect("http handshake");
    tokio::spawn(connection);
    let response = sender
        .send_request(
            hyper::Request::get(format!("/v1/cameras/{}", CAMERAS[0].0))
                .header("host", "localhost")
                .header("authorization", format!("Bearer {}", setup.investigator))
                .body(http_body_util::Empty::<hyper::body::Bytes>::new())
                .expect("request"),
        )
        .await
        .expect("response");
    assert_eq!(response.status(), 200);

    // Plain HTTP to the TLS port gets no answer.
    assert!(
        get(&setup.url, "/healthz", &setup.investigator)
            .await
            .is_err(),
        "plain HTTP was answered on a TLS port"
    );
    let _ = setup.stop.send(());
    camtrail_testkit::drop_database(&setup.clickhouse).await;
}

/// Vehicle attributes over ClickHouse: every sighting of a track and of passes carries them
/// (names in JSON, enum numbers over gRPC, null / UNSPECIFIED when unknown), Passes filters by
/// them in storage, unknown names are `invalid_class`, and the filters are audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_and_tracks_carry_vehicle_attributes_and_filter_by_them() {
    let setup = setup("query_attributes").await;
    let passes_path = |extra: &str| {
        format!(
            "/v1/passes?cameras={},{}&from={T0}&to={}&case=CASE-A&reason=test{extra}",
            CAMERAS[1].0,
            CAMERAS[4].0,
            T0 + 60 * MIN
        )
    };
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["passes"]
            .as_array()
            .expect("passes")
            .iter()
            .map(|p| p["event_id"].as_str().expect("id")[..2].to_string())
            .collect()
    };
    let all = json(&setup, &passes_path(""), &setup.supervisor).await;
    assert_eq!(ids(&all), ["02", "06", "05"]);
    let pass = &all["passes"][0];
    assert_eq!(pass["vehicle_color"], "blue");
    assert_eq!(pass["vehicle_type"], "suv");
    assert_eq!(pass["plate_color"], "blue");
    assert_eq!(pass["direction"], "east");
    assert_eq!(pass["vehicle_brand"], "大众");
    assert_eq!(pass["speed_kmh"], 48.5);
    assert_eq!(
        pass["plate_char_confidence"],
        serde_json::json!([90, 91, 92, 93, 94, 95, 96])
    );
    let plain = &all["passes"][2];
    assert_eq!(plain["vehicle_color"], "white");
    for unknown in [
        "plate_color",
        "direction",
        "vehicle_brand",
        "speed_kmh",
        "plate_char_confidence",
    ] {
        assert!(plain[unknown].is_null(), "{unknown}: {plain}");
    }

    let blue = json(&setup, &passes_path("&plate_color=blue"), &setup.supervisor).await;
    assert_eq!(ids(&blue), ["02"]);
    // Brand in UTF-8, percent-encoded; together with a direction.
    let byd = json(
        &setup,
        &passes_path("&direction=west&vehicle_brand=%E6%AF%94%E4%BA%9A%E8%BF%AA"),
        &setup.supervisor,
    )
    .await;
    assert_eq!(ids(&byd), ["06"]);
    let white_cars = json(
        &setup,
        &passes_path("&vehicle_color=white&vehicle_type=car&limit=1"),
        &setup.supervisor,
    )
    .await;
    assert_eq!(
        ids(&white_cars),
        ["05"],
        "the filter is applied before the page is cut"
    );
    assert_eq!(
        refused(
            &setup,
            &passes_path("&plate_color=purple"),
            &setup.supervisor
        )
        .await,
        (400, "invalid_class".to_string())
    );
    assert_eq!(
        refused(&setup, &passes_path("&direction=East"), &setup.supervisor).await,
        (400, "invalid_class".to_string())
    );

    // A track's sightings carry them too, in JSON and GeoJSON.
    let track = json(&setup, &track_path("粤B12345", ""), &setup.investigator).await;
    let second = &track["sightings"][1];
    assert_eq!(second["event_id"].as_str().map(|id| &id[..2]), Some("02"));
    assert_eq!(
        (second["plate_color"].as_str(), second["direction"].as_str()),
        (Some("blue"), Some("east"))
    );
    assert!(track["sightings"][0]["plate_color"].is_null());
    let geojson = json(
        &setup,
        &track_path("粤B12345", "").replacen("/v1/track", "/v1/track.geojson", 1),
        &setup.investigator,
    )
    .await;
    let brands: Vec<&serde_json::Value> = geojson["features"]
        .as_array()
        .expect("features")
        .iter()
        .filter(|f| f["properties"]["kind"] == "sighting")
        .map(|f| &f["properties"]["vehicle_brand"])
        .collect();
    assert!(brands.contains(&&serde_json::json!("大众")), "{brands:?}");

    // gRPC: the enum numbers, the filter, and an unknown number refused.
    let mut grpc = QueryClient::connect(setup.grpc.clone())
        .await
        .expect("grpc");
    let ask = |plate_color: v1::PlateColor, direction: i32| v1::PassesRequest {
        camera_ids: vec![CAMERAS[1].0.into(), CAMERAS[4].0.into()],
        from_ms: T0,
        to_ms: T0 + 60 * MIN,
        plate_color: plate_color as i32,
        direction,
        justification: Some(v1::Justification {
            case_id: "CASE-A".into(),
            reason: "test".into(),
        }),
        ..Default::default()
    };
    let mut stream = grpc
        .passes(with_token(
            &setup.supervisor,
            ask(v1::PlateColor::Yellow, 0),
        ))
        .await
        .expect("passes")
        .into_inner();
    let mut yellow = Vec::new();
    while let Some(sighting) = stream.message().await.expect("stream") {
        yellow.push(sighting);
    }
    assert_eq!(yellow.len(), 1);
    assert_eq!(yellow[0].event_id, vec![6; 16]);
    assert_eq!(yellow[0].vehicle_type, v1::VehicleType::Truck as i32);
    assert_eq!(yellow[0].direction, v1::Direction::West as i32);
    assert_eq!(yellow[0].vehicle_brand, "比亚迪");
    assert_eq!(yellow[0].speed_kmh, 30.0);
    let unknown = grpc
        .passes(with_token(
            &setup.supervisor,
            ask(v1::PlateColor::Unspecified, 9),
        ))
        .await
        .expect_err("direction 9 is refused");
    assert_eq!(unknown.code(), tonic::Code::InvalidArgument);
    assert!(
        unknown.message().starts_with("invalid_class"),
        "{}",
        unknown.message()
    );

    // Each answered Passes call is audited with its filters (before its answer left), the
    // refused ones are not.
    let audited: Vec<serde_json::Value> = audit_topic(&setup.kafka)
        .iter()
        .filter(|r| r.entry.kind == "passes")
        .map(|r| serde_json::from_str(&r.entry.parameters_json).expect("parameters"))
        .collect();
    assert_eq!(audited.len(), 5, "{audited:?}");
    assert!(audited.iter().any(|p| p["plate_color"] == "blue"));
    assert!(
        audited
            .iter()
            .any(|p| p["direction"] == "west" && p["vehicle_brand"] == "比亚迪")
    );
    assert!(audited.iter().any(|p| p["plate_color"] == "yellow"));
    assert!(
        audited
            .iter()
            .any(|p| p["plate_color"] == "all" && p["vehicle_brand"].is_null())
    );
    let _ = setup.stop.send(());
    camtrail_testkit::drop_database(&setup.clickhouse).await;
}
