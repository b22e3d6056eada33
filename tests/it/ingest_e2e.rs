//! The `camtrail ingest` process driven by the load generator against the real Kafka broker:
//! counts that match the load report, and durability across `kill -9` and SIGTERM.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camtrail_city::traffic::{Traffic, TrafficConfig};
use camtrail_city::{City, CityConfig};
use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_kafka::{KafkaConfig, ensure_topics};
use camtrail_loadgen::{LoadgenConfig, RunHooks, Throttle};
use camtrail_model::CameraRegistry;

use camtrail_testkit::free_port;

struct IngestProcess {
    env: Vec<(String, String)>,
}

/// Wait (at most 30 s) until the node at `addr` answers `/healthz`.
async fn wait_healthy(addr: std::net::SocketAddr) {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let healthy = |response: &String| response.split_whitespace().nth(1) == Some("200");
    while !camtrail_testkit::try_http_get(addr, "/healthz")
        .await
        .is_ok_and(|response| healthy(&response))
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the ingest node at {addr} did not become healthy"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl IngestProcess {
    /// The node's HTTP address (`/metrics`, `/healthz`).
    fn http_addr(&self) -> std::net::SocketAddr {
        self.env
            .iter()
            .find(|(key, _)| key == "CAMTRAIL_INGEST__HTTP_ADDR")
            .and_then(|(_, value)| value.parse().ok())
            .expect("an HTTP address")
    }

    /// The same node on other ports (a second node of the same deployment).
    fn on_ports(&self, grpc_port: u16, http_port: u16) -> Self {
        let env = self
            .env
            .iter()
            .map(|(key, value)| match key.as_str() {
                "CAMTRAIL_INGEST__GRPC_ADDR" => (key.clone(), format!("127.0.0.1:{grpc_port}")),
                "CAMTRAIL_INGEST__HTTP_ADDR" => (key.clone(), format!("127.0.0.1:{http_port}")),
                _ => (key.clone(), value.clone()),
            })
            .collect();
        Self { env }
    }

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

/// A small city, its gateway tokens, per-test topics and the env of an ingest process.
struct Setup {
    dir: tempfile::TempDir,
    city: City,
    kafka: KafkaConfig,
    tokens: Vec<IssuedToken>,
    grpc_port: u16,
    process: IngestProcess,
}

impl Setup {
    /// `node_cameras_share`: the share of the city's cameras the node's registry knows;
    /// events of the others are rejected with UNKNOWN_CAMERA.
    async fn new(test: &str, node_cameras_share: f64) -> Self {
        let brokers = camtrail_testkit::require_kafka();
        let prefix = camtrail_testkit::unique_name(test);
        let kafka = KafkaConfig {
            brokers: brokers.clone(),
            detections_topic: format!("{prefix}.detections.v1"),
            dead_letter_topic: format!("{prefix}.dlq.v1"),
            audit_topic: format!("{prefix}.audit.v1"),
            alerts_topic: format!("{prefix}.alerts.v1"),
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
        let kept = (city.registry.len() as f64 * node_cameras_share) as usize;
        let node_registry =
            CameraRegistry::new(city.registry.cameras()[..kept].to_vec()).expect("registry");
        let mut csv = Vec::new();
        node_registry.write_csv(&mut csv).expect("csv");
        std::fs::write(dir.path().join("cameras.csv"), csv).expect("write registry");
        let tokens: Vec<IssuedToken> = city
            .gateways
            .iter()
            .map(|g| IssuedToken::mint(&g.id))
            .collect();
        let (_, hashes) = render_token_files(&tokens);
        std::fs::write(dir.path().join("hashes.csv"), hashes).expect("write hashes");
        let grpc_port = free_port();
        let process = IngestProcess {
            env: vec![
                ("CAMTRAIL_KAFKA__BROKERS".into(), brokers),
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
        Self {
            dir,
            city,
            kafka,
            tokens,
            grpc_port,
            process,
        }
    }

    fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("ingest.log")
    }

    fn loadgen_config(&self, rate: f64, events: u64) -> LoadgenConfig {
        LoadgenConfig {
            target: format!("http://127.0.0.1:{}", self.grpc_port),
            throttle: Throttle::EventsPerSecond(rate),
            max_events: Some(events),
            batch_size: 200,
            ack_timeout: Duration::from_secs(2),
            tokens: self
                .tokens
                .iter()
                .map(|t| (t.gateway_id.clone(), t.token.clone()))
                .collect(),
            give_up_after: Duration::from_secs(60),
            drain_timeout: Duration::from_secs(60),
            ..LoadgenConfig::default()
        }
    }

    fn traffic(&self) -> TrafficConfig {
        let now_ms = camtrail_common::now_ms();
        TrafficConfig {
            seed: 11,
            start_ms: now_ms - 3_600_000,
            span_ms: 3_600_000,
            vehicles: usize::MAX,
            ..TrafficConfig::default()
        }
    }

    fn read_topic(&self, expected: usize) -> Vec<camtrail_model::Detection> {
        camtrail_testkit::read_detections(
            &self.kafka.brokers,
            &self.kafka.detections_topic,
            self.kafka.detections_partitions,
            expected,
            Duration::from_secs(30),
        )
    }
}

/// A load run under way.
type Run =
    tokio::task::JoinHandle<Result<camtrail_loadgen::LoadReport, camtrail_loadgen::LoadgenError>>;

/// A load run of `config` over the setup's traffic, in the background, observed.
fn start_run(setup: Setup, config: LoadgenConfig) -> (Arc<Setup>, Arc<Mutex<Observed>>, Run) {
    let observed: Arc<Mutex<Observed>> = Arc::default();
    let hooks = observe(&observed);
    let traffic = setup.traffic();
    let setup = Arc::new(setup);
    let runner = Arc::clone(&setup);
    let run = tokio::spawn(async move {
        let events = Traffic::new(&runner.city, traffic);
        camtrail_loadgen::run(config, &runner.city.registry, events, hooks).await
    });
    (setup, observed, run)
}

/// Let acks flow for 3 s; how many events were acked by then (some must be).
async fn acked_after_3_s(observed: &Mutex<Observed>, log: &Path) -> usize {
    tokio::time::sleep(Duration::from_secs(3)).await;
    let acked = observed.lock().expect("lock").acked.len();
    assert!(
        acked > 0,
        "nothing acked in the first 3 s; see {}",
        log.display()
    );
    acked
}

/// More events were acked than `acked_before`, and every acked one is in the topic.
fn assert_acked_are_in_kafka(setup: &Setup, observed: &Mutex<Observed>, acked_before: usize) {
    let acked: HashSet<[u8; 16]> = observed
        .lock()
        .expect("lock")
        .acked
        .keys()
        .copied()
        .collect();
    assert!(acked.len() > acked_before);
    let records = setup.read_topic(acked.len());
    let stored: HashSet<[u8; 16]> = records.iter().map(|d| *d.event_id.as_bytes()).collect();
    let missing = acked.iter().filter(|id| !stored.contains(*id)).count();
    assert_eq!(
        missing,
        0,
        "{missing} of {} acked events are not in Kafka",
        acked.len()
    );
}

/// Every acked event id with how often it was acked, and every rejected id.
#[derive(Default)]
struct Observed {
    acked: HashMap<[u8; 16], usize>,
    rejected: HashSet<[u8; 16]>,
}

fn observe(observed: &Arc<Mutex<Observed>>) -> RunHooks {
    let recorder = Arc::clone(observed);
    RunHooks {
        on_ack: Some(Arc::new(move |batch: &camtrail_loadgen::AckedBatch| {
            let mut observed = recorder.lock().expect("lock");
            for id in &batch.accepted {
                *observed.acked.entry(*id).or_default() += 1;
            }
            observed
                .rejected
                .extend(batch.rejected.iter().map(|(id, _)| *id));
        })),
        ..RunHooks::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acked_events_are_in_the_topic_as_often_as_acked_and_rejected_ones_are_not() {
    let setup = Setup::new("counts", 0.9).await;
    let mut child = setup.process.spawn(&setup.log());
    let observed: Arc<Mutex<Observed>> = Arc::default();
    let events = Traffic::new(&setup.city, setup.traffic());
    let report = camtrail_loadgen::run(
        setup.loadgen_config(5_000.0, 10_000),
        &setup.city.registry,
        events,
        observe(&observed),
    )
    .await
    .expect("load run");
    let _ = child.kill();
    let _ = child.wait();

    let observed = observed.lock().expect("lock");
    assert_eq!(report.sent, 10_000);
    assert_eq!(report.unacked, 0, "{report:?}");
    assert_eq!(report.acked + report.rejected, report.sent);
    assert!(
        report.rejected > 0,
        "unknown cameras should be rejected: {report:?}"
    );
    assert_eq!(
        report.rejected_by_code.get("REJECTION_CODE_UNKNOWN_CAMERA"),
        Some(&report.rejected)
    );
    let acked_total: usize = observed.acked.values().sum();
    assert_eq!(acked_total as u64, report.acked, "hook and report agree");
    assert_eq!(observed.rejected.len() as u64, report.rejected);

    let records = setup.read_topic(acked_total);
    let mut stored: HashMap<[u8; 16], usize> = HashMap::new();
    for detection in &records {
        *stored.entry(*detection.event_id.as_bytes()).or_default() += 1;
    }
    assert_eq!(report.resends, 0, "no faults, so every batch was sent once");
    assert_eq!(
        stored, observed.acked,
        "each acked event is in Kafka exactly as often as acked"
    );
    assert!(
        observed.rejected.iter().all(|id| !stored.contains_key(id)),
        "a rejected event was stored"
    );
}

/// How the node is stopped in the middle of a run.
#[derive(Clone, Copy, PartialEq)]
enum Interrupt {
    /// SIGKILL: no chance to drain or flush.
    Kill,
    /// SIGTERM: the node must drain in-flight batches, flush and exit 0.
    Terminate,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_run_loses_no_acked_event() {
    interrupted_run_loses_no_acked_event("durability", Interrupt::Kill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_run_drains_exits_cleanly_and_loses_nothing() {
    interrupted_run_loses_no_acked_event("sigterm", Interrupt::Terminate).await;
}

/// Issue 19, gateways that fail over: the load generator spreads its gateways' streams over
/// two ingest nodes; one is killed with `kill -9` mid-run and not restarted. Its streams
/// move to the other node, resend what was unacked, and every acked event is in Kafka.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gateways_fail_over_to_the_other_node_and_lose_no_acked_event() {
    let setup = Setup::new("failover", 1.0).await;
    let log = setup.log();
    let second_port = free_port();
    let second = setup.process.on_ports(second_port, free_port());
    let mut first = setup.process.spawn(&log);
    let mut survivor = second.spawn(&log);
    // Both nodes up before the gateways start, so half of them begin on the first.
    let first_http = setup.process.http_addr();
    for addr in [first_http, second.http_addr()] {
        wait_healthy(addr).await;
    }
    let mut config = setup.loadgen_config(4_000.0, 24_000);
    config.target = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{second_port}",
        setup.grpc_port
    );
    let (setup, observed, run) = start_run(setup, config);
    let acked_before = acked_after_3_s(&observed, &log).await;
    let served = camtrail_testkit::http_get(first_http, "/metrics").await;
    let accepted_by_first: u64 = served
        .lines()
        .find_map(|line| line.strip_prefix("camtrail_ingest_events_accepted_total "))
        .and_then(|value| value.trim().parse().ok())
        .expect("the first node's accepted count");
    assert!(
        accepted_by_first > 0,
        "no gateway was on the first node: killing it would test nothing"
    );
    first.kill().expect("kill -9");
    first.wait().expect("reap");

    let report = run.await.expect("join").expect("load run");
    let _ = survivor.kill();
    let _ = survivor.wait();
    eprintln!("after the first node's kill -9:\n{}", report.summary());
    assert!(
        report.failovers > 0,
        "no stream moved to the other node: {report:?}"
    );
    assert_eq!(
        report.unacked, 0,
        "every batch is acked in the end, by the surviving node: {report:?}"
    );
    assert_acked_are_in_kafka(&setup, &observed, acked_before);
}

async fn interrupted_run_loses_no_acked_event(test: &str, interrupt: Interrupt) {
    let setup = Setup::new(test, 1.0).await;
    let log = setup.log();
    let mut child = setup.process.spawn(&log);
    let config = setup.loadgen_config(4_000.0, 24_000);
    let (setup, observed, run) = start_run(setup, config);
    // Let acks flow, then stop the node mid-stream.
    let acked_before = acked_after_3_s(&observed, &log).await;
    match interrupt {
        Interrupt::Kill => {
            child.kill().expect("kill -9");
            child.wait().expect("reap");
        }
        Interrupt::Terminate => {
            let status = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("run kill");
            assert!(status.success());
            let exit = child.wait().expect("wait for graceful exit");
            assert!(
                exit.success(),
                "ingest exited with {exit}; see {}",
                log.display()
            );
            let text = std::fs::read_to_string(&log).expect("log");
            assert!(
                text.contains("ingest node stopped"),
                "no orderly shutdown:\n{text}"
            );
        }
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut restarted = setup.process.spawn(&log);

    let report = run.await.expect("join").expect("load run");
    let _ = restarted.kill();
    let _ = restarted.wait();
    if interrupt == Interrupt::Kill {
        assert!(
            report.resends > 0,
            "the kill should have forced resends: {report:?}"
        );
    }
    assert_eq!(
        report.unacked, 0,
        "every batch is acked in the end: {report:?}"
    );
    assert_acked_are_in_kafka(&setup, &observed, acked_before);
}
