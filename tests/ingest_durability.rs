//! Durability of the ingest node against the real Kafka broker: `kill -9` the `camtrail
//! ingest` process in the middle of a load run, restart it, let the load generator resend
//! what was not acked, and check that every acked event is in Kafka.

use std::collections::HashSet;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camtrail_city::traffic::{Traffic, TrafficConfig};
use camtrail_city::{City, CityConfig};
use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_ingest::kafka::{KafkaConfig, ensure_topics};
use camtrail_loadgen::{LoadgenConfig, RunHooks, Throttle};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port")
        .port()
}

struct IngestProcess {
    env: Vec<(String, String)>,
}

impl IngestProcess {
    fn spawn(&self, log: &Path) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        Command::new(env!("CARGO_BIN_EXE_camtrail"))
            .arg("ingest")
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn camtrail ingest")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_no_acked_event() {
    let brokers = camtrail_testkit::require_kafka();
    let prefix = camtrail_testkit::unique_name("durability");
    let kafka = KafkaConfig {
        brokers: brokers.clone(),
        detections_topic: format!("{prefix}.detections.v1"),
        dead_letter_topic: format!("{prefix}.dlq.v1"),
        audit_topic: format!("{prefix}.audit.v1"),
        detections_partitions: 3,
        replication_factor: 1,
    };
    ensure_topics(&kafka, Duration::from_secs(30))
        .await
        .expect("topics");

    let dir = tempfile::tempdir().expect("tempdir");
    let city = City::generate(&CityConfig {
        seed: 11,
        cameras: 3_000,
        districts: 6,
        gateways: 8,
    });
    city.write_to_dir(dir.path()).expect("write city");
    let gateways: Vec<String> = city.gateways.iter().map(|g| g.id.clone()).collect();
    let tokens: Vec<IssuedToken> = gateways.iter().map(|g| IssuedToken::mint(g)).collect();
    let (_, hashes) = render_token_files(&tokens);
    std::fs::write(dir.path().join("hashes.csv"), hashes).expect("write hashes");

    let grpc_port = free_port();
    let process = IngestProcess {
        env: vec![
            ("CAMTRAIL_KAFKA__BROKERS".into(), brokers.clone()),
            (
                "CAMTRAIL_KAFKA__DETECTIONS_TOPIC".into(),
                kafka.detections_topic.clone(),
            ),
            (
                "CAMTRAIL_INGEST__GRPC_ADDR".into(),
                format!("127.0.0.1:{grpc_port}"),
            ),
            (
                "CAMTRAIL_INGEST__HTTP_ADDR".into(),
                format!("127.0.0.1:{}", free_port()),
            ),
            (
                "CAMTRAIL_INGEST__REGISTRY_PATH".into(),
                dir.path().join("cameras.csv").display().to_string(),
            ),
            (
                "CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH".into(),
                dir.path().join("hashes.csv").display().to_string(),
            ),
        ],
    };
    let log = dir.path().join("ingest.log");
    let mut child = process.spawn(&log);

    let acked: Arc<Mutex<HashSet<[u8; 16]>>> = Arc::default();
    let recorder = Arc::clone(&acked);
    let hooks = RunHooks {
        on_ack: Some(Arc::new(move |batch: &camtrail_loadgen::AckedBatch| {
            recorder
                .lock()
                .expect("lock")
                .extend(batch.accepted.iter().copied());
        })),
        ..RunHooks::default()
    };
    let config = LoadgenConfig {
        target: format!("http://127.0.0.1:{grpc_port}"),
        throttle: Throttle::EventsPerSecond(4_000.0),
        max_events: Some(24_000),
        batch_size: 200,
        ack_timeout: Duration::from_secs(2),
        tokens: tokens
            .iter()
            .map(|t| (t.gateway_id.clone(), t.token.clone()))
            .collect(),
        give_up_after: Duration::from_secs(60),
        drain_timeout: Duration::from_secs(60),
        ..LoadgenConfig::default()
    };
    let now_ms = camtrail_ingest::service::now_ms();
    let traffic = TrafficConfig {
        seed: 11,
        start_ms: now_ms - 3_600_000,
        span_ms: 3_600_000,
        vehicles: usize::MAX,
        ..TrafficConfig::default()
    };
    let registry = city.registry.clone();
    let run = tokio::spawn(async move {
        camtrail_loadgen::run(config, &registry, Traffic::new(&city, traffic), hooks).await
    });

    // Let acks flow, then kill the node without warning, mid-stream.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked_before_kill = acked.lock().expect("lock").len();
    assert!(
        acked_before_kill > 0,
        "nothing acked before the kill; see {}",
        log.display()
    );
    child.kill().expect("kill -9");
    child.wait().expect("reap");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut restarted = process.spawn(&log);

    let report = run.await.expect("join").expect("load run");
    let _ = restarted.kill();
    let _ = restarted.wait();
    assert!(
        report.resends > 0,
        "the kill should have forced resends: {report:?}"
    );
    let acked = acked.lock().expect("lock").clone();
    assert!(acked.len() > acked_before_kill);

    let records = camtrail_testkit::read_detections(
        &brokers,
        &kafka.detections_topic,
        kafka.detections_partitions,
        acked.len(),
        Duration::from_secs(30),
    );
    let stored: HashSet<[u8; 16]> = records.iter().map(|d| *d.event_id.as_bytes()).collect();
    let missing = acked.iter().filter(|id| !stored.contains(*id)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acked events are not in Kafka",
        acked.len()
    );
}
