//! The embedded mode end to end: `camtrail serve` driven by the load generator and killed
//! with SIGKILL mid-run (no acked event may be lost), `camtrail demo`, and the embedded
//! variants of `camtrail audit verify` and `camtrail retention apply` on the database a demo
//! leaves behind. Needs neither Kafka nor ClickHouse.

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camtrail_common::now_ms;

use camtrail_city::traffic::{Traffic, TrafficConfig};
use camtrail_city::{City, CityConfig};
use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_loadgen::{LoadgenConfig, RunHooks, Throttle};
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};
use camtrail_query::auth::{Role, UsersFile, issue as issue_user};
use camtrail_query::client::{TrackFormat, TrackQueryArgs, get, track_path};
use camtrail_sqlite::{SqliteStore, Tuning};
use tokio_util::sync::CancellationToken;

fn camtrail() -> Command {
    Command::new(env!("CARGO_BIN_EXE_camtrail"))
}

use camtrail_testkit::free_port;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn log_text(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_else(|e| format!("(no log {}: {e})", log.display()))
}

/// The addresses one `camtrail serve` process listens on.
#[derive(Clone, Copy)]
struct ServeAddrs {
    ingest_grpc: SocketAddr,
    ingest_http: SocketAddr,
    query_http: SocketAddr,
    query_grpc: SocketAddr,
}

impl ServeAddrs {
    fn free() -> Self {
        let local = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            ingest_grpc: local(free_port()),
            ingest_http: local(free_port()),
            query_http: local(free_port()),
            query_grpc: local(free_port()),
        }
    }
}

/// A spawned process, SIGKILLed and reaped when dropped (so a failing test leaves none).
struct Running(Child);

impl std::ops::Deref for Running {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Running {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// How to start `camtrail serve` over one directory's files and database.
struct ServeProcess {
    env: Vec<(String, String)>,
    addrs: ServeAddrs,
}

impl ServeProcess {
    fn spawn(&self, log: &Path) -> Running {
        self.spawn_with(log, &[])
    }

    fn spawn_with(&self, log: &Path, extra_env: &[(&str, &str)]) -> Running {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log");
        Running(
            camtrail()
                .arg("serve")
                .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
                .envs(extra_env.iter().copied())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn camtrail serve"),
        )
    }

    /// Wait (bounded) until both HTTP ports answer `/healthz` with 200 and the ingest gRPC
    /// port accepts connections. Panics with the log if the process exits or never gets there.
    async fn wait_ready(&self, child: &mut Running, log: &Path) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                panic!(
                    "camtrail serve exited with {status} before it was ready:\n{}",
                    log_text(log)
                );
            }
            if self.ready().await {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "camtrail serve not ready within 60 s:\n{}",
                log_text(log)
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn ready(&self) -> bool {
        let a = self.addrs;
        for addr in [a.ingest_grpc, a.query_grpc, a.ingest_http, a.query_http] {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
                return false;
            }
        }
        for addr in [a.ingest_http, a.query_http] {
            let response = tokio::time::timeout(
                Duration::from_secs(5),
                camtrail_testkit::http_get(addr, "/healthz"),
            )
            .await;
            match response {
                Ok(response) if response.starts_with("HTTP/1.0 200") => {}
                Ok(response) if response.starts_with("HTTP/1.1 200") => {}
                _ => return false,
            }
        }
        true
    }
}

/// A small city, its gateway tokens, one investigator and the env of a serve process over
/// a database in a temporary directory.
struct Setup {
    dir: tempfile::TempDir,
    city: City,
    tokens: Vec<IssuedToken>,
    investigator_token: String,
    supervisor_token: String,
    database: PathBuf,
    process: ServeProcess,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let city = City::generate(&CityConfig {
            seed: 11,
            cameras: 2_000,
            districts: 6,
            gateways: 10,
        });
        city.write_to_dir(dir.path()).expect("write cameras.csv");
        let tokens: Vec<IssuedToken> = city
            .gateways
            .iter()
            .map(|g| IssuedToken::mint(&g.id))
            .collect();
        let (_, hashes) = render_token_files(&tokens);
        let hashes_path = dir.path().join("gateway_token_hashes.csv");
        std::fs::write(&hashes_path, hashes).expect("write token hashes");
        let investigator = issue_user("e2e-investigator", Role::Investigator);
        let supervisor = issue_user("e2e-supervisor", Role::Supervisor);
        let users = UsersFile {
            user: vec![investigator.entry, supervisor.entry],
        };
        let users_path = dir.path().join("users.toml");
        std::fs::write(
            &users_path,
            toml::to_string_pretty(&users).expect("users toml"),
        )
        .expect("write users.toml");
        let database = dir.path().join("camtrail.db");
        let registry = dir.path().join("cameras.csv").display().to_string();
        let addrs = ServeAddrs::free();
        let env = vec![
            (
                "CAMTRAIL_SERVE__DATABASE_PATH".to_string(),
                database.display().to_string(),
            ),
            (
                "CAMTRAIL_INGEST__GRPC_ADDR".into(),
                addrs.ingest_grpc.to_string(),
            ),
            (
                "CAMTRAIL_INGEST__HTTP_ADDR".into(),
                addrs.ingest_http.to_string(),
            ),
            ("CAMTRAIL_INGEST__REGISTRY_PATH".into(), registry.clone()),
            (
                "CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH".into(),
                hashes_path.display().to_string(),
            ),
            (
                "CAMTRAIL_QUERY__HTTP_ADDR".into(),
                addrs.query_http.to_string(),
            ),
            (
                "CAMTRAIL_QUERY__GRPC_ADDR".into(),
                addrs.query_grpc.to_string(),
            ),
            ("CAMTRAIL_QUERY__REGISTRY_PATH".into(), registry),
            (
                "CAMTRAIL_QUERY__USERS_PATH".into(),
                users_path.display().to_string(),
            ),
        ];
        Self {
            dir,
            city,
            tokens,
            investigator_token: investigator.token,
            supervisor_token: supervisor.token,
            database,
            process: ServeProcess { env, addrs },
        }
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("serve.log")
    }

    /// Open `cases` (the investigator assigned) in the database before a node owns it: what
    /// a supervisor's `camtrail cases open` does.
    async fn open_cases(&self, cases: &[&str]) {
        let store = SqliteStore::open(&self.database).expect("open");
        for case in cases {
            camtrail_storage::testsuite::open_case(&store, case, &["e2e-investigator"]).await;
        }
        drop(store);
    }

    fn loadgen_config(&self, throttle: Throttle, events: u64) -> LoadgenConfig {
        LoadgenConfig {
            target: format!("http://{}", self.process.addrs.ingest_grpc),
            throttle,
            max_events: Some(events),
            batch_size: 200,
            ack_timeout: Duration::from_secs(5),
            tokens: self
                .tokens
                .iter()
                .map(|t| (t.gateway_id.clone(), t.token.clone()))
                .collect(),
            give_up_after: Duration::from_secs(30),
            // How long the last acks may take after the last send. A node restarted after
            // kill -9 recovers its database and applies retention before its first commit;
            // on a loaded machine that took more than 3 s once (0 of 2,000 acked in time).
            drain_timeout: Duration::from_secs(15),
            ..LoadgenConfig::default()
        }
    }

    fn traffic(&self, seed: u64) -> TrafficConfig {
        let now_ms = camtrail_common::now_ms();
        TrafficConfig {
            seed,
            start_ms: now_ms - 3_600_000,
            span_ms: 3_600_000,
            vehicles: usize::MAX,
            ..TrafficConfig::default()
        }
    }
}

/// Every acked event id (with how often it was acked) and every rejected id.
#[derive(Default)]
struct Observed {
    acked: HashMap<[u8; 16], usize>,
    rejected: HashSet<[u8; 16]>,
}

fn observe(observed: &Arc<Mutex<Observed>>, shutdown: CancellationToken) -> RunHooks {
    let recorder = Arc::clone(observed);
    RunHooks {
        shutdown,
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
async fn kill_9_of_serve_mid_run_loses_no_acked_event() {
    let started = Instant::now();
    let setup = Arc::new(Setup::new());
    setup.open_cases(&["E2E-KILL-9"]).await;
    let log = setup.log();
    let mut child = setup.process.spawn(&log);
    setup.process.wait_ready(&mut child, &log).await;

    // Open throttle: every gateway keeps its window of unacked batches full, so when the
    // node dies there are batches it has read and not yet acked.
    let observed: Arc<Mutex<Observed>> = Arc::default();
    let hooks = observe(&observed, CancellationToken::new());
    let shutdown = hooks.shutdown.clone();
    let plates: Arc<Mutex<HashMap<[u8; 16], String>>> = Arc::default();
    let plate_recorder = Arc::clone(&plates);
    let config = setup.loadgen_config(Throttle::Open, 2_000_000);
    let traffic = setup.traffic(11);
    let runner = Arc::clone(&setup);
    let run = tokio::spawn(async move {
        let events = Traffic::new(&runner.city, traffic).inspect(move |event| {
            if event.object_class == ObjectClass::Vehicle && !event.plate.is_empty() {
                plate_recorder
                    .lock()
                    .expect("lock")
                    .insert(event.event_id, event.plate.clone());
            }
        });
        camtrail_loadgen::run(config, &runner.city.registry, events, hooks).await
    });

    // Let enough events be acked that the store has flushed its staging table into at least
    // one sorted part and is staging again, then SIGKILL the node mid-stream: acked events
    // must survive in both places.
    let wanted = Tuning::default().flush_rows + 50_000;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let acked = observed.lock().expect("lock").acked.len();
        if acked >= wanted {
            break;
        }
        assert!(
            !run.is_finished(),
            "the load run ended before {wanted} acks ({acked}); see {}",
            log_text(&log)
        );
        assert!(
            Instant::now() < deadline,
            "only {acked} of {wanted} events acked within 60 s; see {}",
            log_text(&log)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let acked_before_kill = observed.lock().expect("lock").acked.len();
    assert!(
        !run.is_finished(),
        "the load must still be running when the node is killed"
    );
    child.kill().expect("kill -9");
    let killed = child.wait().expect("reap");
    assert!(!killed.success(), "SIGKILL: {killed}");
    let killed_at = started.elapsed();

    // Stop offering; the gateways cannot reconnect, so after the short drain timeout the
    // report counts what was sent and never acked.
    tokio::time::sleep(Duration::from_millis(500)).await;
    shutdown.cancel();
    let report = tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("load run ends by itself after the kill")
        .expect("join")
        .expect("load run");
    let observed = std::mem::take(&mut *observed.lock().expect("lock"));
    let acked: HashSet<[u8; 16]> = observed.acked.keys().copied().collect();
    eprintln!(
        "killed after {:.1} s with {acked_before_kill} acked; report: sent {} acked {} \
         unacked {} resends {} offered {}",
        killed_at.as_secs_f64(),
        report.sent,
        report.acked,
        report.unacked,
        report.resends,
        report.offered
    );
    assert!(
        report.unacked > 0,
        "the node was killed with no batch outstanding, so the test proves little: {report:?}"
    );
    assert!(report.offered < 2_000_000, "the run was cut short");
    assert_eq!(report.rejected, 0, "every camera is known: {report:?}");
    assert!(observed.rejected.is_empty());
    assert!(acked.len() >= acked_before_kill);
    assert_eq!(
        observed.acked.values().sum::<usize>() as u64,
        report.acked,
        "hook and report agree"
    );

    // Every acked event is in the database the killed process left behind.
    let (stored, stored_count) = {
        let store = SqliteStore::open(&setup.database).expect("open the killed node's database");
        let stored: HashSet<[u8; 16]> = store
            .event_ids()
            .await
            .expect("event ids")
            .into_iter()
            .map(|EventId(bytes)| bytes)
            .collect();
        let missing = acked.iter().filter(|id| !stored.contains(*id)).count();
        assert_eq!(
            missing,
            0,
            "{missing} of {} acked events are not in the database after kill -9",
            acked.len()
        );
        let stored_count = store.detection_count().await.expect("count");
        assert_eq!(stored_count, stored.len() as u64, "event ids are unique");
        assert!(
            stored_count <= report.sent,
            "more rows ({stored_count}) than events sent ({})",
            report.sent
        );
        (stored, stored_count)
    };

    // The node comes back on the same database: it takes new load and answers an
    // authenticated track query for a vehicle whose events were acked before the kill.
    // This time with a retention policy: the node applies it at start (audited first).
    let mut restarted = setup
        .process
        .spawn_with(&log, &[("CAMTRAIL_SERVE__RETENTION_DAYS", "30")]);
    setup.process.wait_ready(&mut restarted, &log).await;
    let second_observed: Arc<Mutex<Observed>> = Arc::default();
    let second_hooks = observe(&second_observed, CancellationToken::new());
    let second = camtrail_loadgen::run(
        setup.loadgen_config(Throttle::EventsPerSecond(4_000.0), 2_000),
        &setup.city.registry,
        Traffic::new(&setup.city, setup.traffic(12)),
        second_hooks,
    )
    .await
    .expect("load run against the restarted node");
    assert_eq!(second.sent, 2_000, "{second:?}");
    assert_eq!(second.acked, 2_000, "{second:?}");
    assert_eq!(second.unacked, 0, "{second:?}");
    let second_acked: HashSet<[u8; 16]> = second_observed
        .lock()
        .expect("lock")
        .acked
        .keys()
        .copied()
        .collect();
    assert_eq!(second_acked.len(), 2_000);

    // The plate with the most acked events; exact matching, so every stored event under its
    // key is either a sighting of the answer or accounted for in `dropped` (bursts).
    let (plate, acked_with_key) = {
        let plates = plates.lock().expect("lock");
        let mut per_key: HashMap<String, (String, Vec<[u8; 16]>)> = HashMap::new();
        for (id, plate) in plates.iter().filter(|(id, _)| acked.contains(*id)) {
            per_key
                .entry(camtrail_model::plate::normalize(plate))
                .or_insert_with(|| (plate.clone(), Vec::new()))
                .1
                .push(*id);
        }
        per_key
            .into_values()
            .max_by_key(|(plate, ids)| (ids.len(), plate.clone()))
            .expect("some acked event carried a plate")
    };
    let base = format!("http://{}", setup.process.addrs.query_http);
    let query = TrackQueryArgs {
        plate: plate.clone(),
        from: (now_ms() - 3 * 3_600_000).to_string(),
        to: (now_ms() + 600_000).to_string(),
        case_id: "E2E-KILL-9".into(),
        reason: "serve_e2e: the track survives kill -9".into(),
        fuzzy: false,
    };
    let body = get(
        &base,
        &track_path(&query, TrackFormat::Json),
        &setup.investigator_token,
    )
    .await
    .unwrap_or_else(|e| panic!("track query failed: {e}\n{}", log_text(&log)));
    let answer: serde_json::Value = serde_json::from_slice(&body).expect("track answer is JSON");
    let mut sightings = answer["sightings"]
        .as_array()
        .expect("sightings array")
        .clone();
    // The load generator draws plates at random, so some are carried by two cars driving at
    // the same time, as a cloned plate is; the most-seen plate often is one. Its track comes
    // back as two vehicles, and both hold acked events.
    if let Some(second) = answer["second_vehicle"]["sightings"].as_array() {
        sightings.extend(second.iter().cloned());
    }
    let dropped = answer["dropped"].as_array().expect("dropped list").len();
    assert!(
        sightings.len() + dropped >= acked_with_key.len(),
        "{} events of {plate} were acked before the kill, the track accounts for {} + {dropped} \
         dropped: {answer}",
        acked_with_key.len(),
        sightings.len()
    );
    eprintln!(
        "track of {plate}: {} acked before the kill, {} sightings + {dropped} dropped",
        acked_with_key.len(),
        sightings.len()
    );
    let known: HashSet<String> = stored
        .iter()
        .chain(second_acked.iter())
        .map(|id| EventId(*id).to_string())
        .collect();
    for sighting in &sightings {
        let id = sighting["event_id"].as_str().expect("event_id");
        assert!(
            known.contains(id),
            "the track returned an event never stored: {id}"
        );
    }
    assert!(
        answer["audit"]["node_id"]
            .as_str()
            .is_some_and(|node| !node.is_empty()),
        "the answer names its audit record: {answer}"
    );
    // Without a token the same query is refused.
    let refused = get(&base, &track_path(&query, TrackFormat::Json), "ct_wrong").await;
    assert!(
        matches!(
            refused,
            Err(camtrail_query::client::ClientError::Refused { status: 401, .. })
        ),
        "a wrong token must get 401: {refused:?}"
    );

    // The store's own figures are on the query node's /metrics.
    let metrics = camtrail_testkit::http_get(setup.process.addrs.query_http, "/metrics").await;
    for name in [
        "camtrail_embedded_commits_total",
        "camtrail_embedded_flushes_total",
        "camtrail_embedded_parts",
        "camtrail_embedded_staged_rows",
    ] {
        assert!(metrics.contains(name), "/metrics lacks {name}:\n{metrics}");
    }

    // The running node owns its database: retention from another process is refused (it
    // would act on a stale view of the parts), while the audit chain can be read beside it.
    let refused = camtrail()
        .args(["retention", "apply", "--embedded", "--days", "1"])
        .env("CAMTRAIL_SERVE__DATABASE_PATH", &setup.database)
        .output()
        .expect("run camtrail retention");
    assert!(
        !refused.status.success() && text(&refused.stderr).contains("in use"),
        "retention beside a running serve must be refused: {}",
        text(&refused.stderr)
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    let verify = loop {
        let verify = embedded(&setup.database, &["audit", "verify", "--embedded"]);
        if chain_records(&verify, "retention").is_some() || Instant::now() > deadline {
            break verify;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(verify.contains("audit log intact"), "{verify}");
    assert_eq!(
        chain_records(&verify, "retention"),
        Some(1),
        "the node's scheduled retention run is audited: {verify}"
    );

    // SIGTERM: the restarted node stops in order.
    let status = Command::new("kill")
        .args(["-TERM", &restarted.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = restarted.try_wait().expect("try_wait") {
            break exit;
        }
        if Instant::now() > deadline {
            panic!(
                "serve did not stop within 30 s of SIGTERM:\n{}",
                log_text(&log)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        exit.success(),
        "serve exited with {exit}:\n{}",
        log_text(&log)
    );
    let store = SqliteStore::open(&setup.database).expect("reopen");
    let final_count = store.detection_count().await.expect("count");
    assert_eq!(
        final_count,
        stored_count + 2_000,
        "the second run's 2,000 new events were stored"
    );
    eprintln!(
        "kill_9_of_serve_mid_run_loses_no_acked_event: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// The gRPC health status of `service` at `addr` (`None` when the call itself fails).
async fn grpc_health(addr: SocketAddr, service: &str) -> Option<i32> {
    use tonic_health::pb::HealthCheckRequest;
    use tonic_health::pb::health_client::HealthClient;

    let call = async {
        let channel = tonic::transport::Channel::from_shared(format!("http://{addr}"))
            .ok()?
            .connect()
            .await
            .ok()?;
        let mut client = HealthClient::new(channel);
        let answer = client
            .check(HealthCheckRequest {
                service: service.to_string(),
            })
            .await
            .ok()?;
        Some(answer.into_inner().status)
    };
    tokio::time::timeout(Duration::from_secs(2), call)
        .await
        .ok()
        .flatten()
}

/// The status line's code of `GET /healthz` (`None` when nothing answered).
async fn healthz(addr: SocketAddr) -> Option<u16> {
    let response = tokio::time::timeout(
        Duration::from_secs(2),
        camtrail_testkit::try_http_get(addr, "/healthz"),
    )
    .await
    .ok()?
    .ok()?;
    response.split_whitespace().nth(1)?.parse().ok()
}

/// SIGTERM turns every health signal of both nodes off (`/healthz` 503, gRPC health
/// NOT_SERVING) while their listeners still answer, for `shutdown_delay_ms`; only then do
/// they drain and exit 0. Before, the query node never left SERVING / 200 and the ingest
/// node's gRPC health changed only once its listener had closed, so a load balancer kept
/// sending work to a stopping node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_turns_health_off_before_the_listeners_close() {
    use tonic_health::pb::health_check_response::ServingStatus;

    let setup = Setup::new();
    let log = setup.log();
    let delay = [
        ("CAMTRAIL_INGEST__SHUTDOWN_DELAY_MS", "4000"),
        ("CAMTRAIL_QUERY__SHUTDOWN_DELAY_MS", "4000"),
    ];
    let mut child = setup.process.spawn_with(&log, &delay);
    setup.process.wait_ready(&mut child, &log).await;
    let addrs = setup.process.addrs;
    let grpc = [
        (addrs.ingest_grpc, "camtrail.v1.Ingest"),
        (addrs.query_grpc, "camtrail.v1.Query"),
    ];
    for (addr, service) in grpc {
        for name in [service, ""] {
            assert_eq!(
                grpc_health(addr, name).await,
                Some(ServingStatus::Serving as i32),
                "{service} ({name:?}) before SIGTERM"
            );
        }
    }

    let signalled = Instant::now();
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    // Every signal must turn within the delay, answered by listeners that are still open.
    let mut off = false;
    while !off && signalled.elapsed() < Duration::from_millis(3_500) {
        let mut all = true;
        for addr in [addrs.ingest_http, addrs.query_http] {
            all &= healthz(addr).await == Some(503);
        }
        for (addr, service) in grpc {
            for name in [service, ""] {
                all &= grpc_health(addr, name).await == Some(ServingStatus::NotServing as i32);
            }
        }
        off = all;
        if !off {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    assert!(
        off,
        "health still on {:?} after SIGTERM:\n{}",
        signalled.elapsed(),
        log_text(&log)
    );

    let deadline = Instant::now() + Duration::from_secs(30);
    let exit = loop {
        if let Some(exit) = child.try_wait().expect("try_wait") {
            break exit;
        }
        assert!(
            Instant::now() < deadline,
            "serve did not stop within 30 s of SIGTERM:\n{}",
            log_text(&log)
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        exit.success(),
        "serve exited with {exit}:\n{}",
        log_text(&log)
    );
    assert!(
        signalled.elapsed() >= Duration::from_secs(4),
        "the node kept serving for its shutdown delay ({:?})",
        signalled.elapsed()
    );
    for addr in [addrs.ingest_http, addrs.query_http] {
        assert_eq!(healthz(addr).await, None, "{addr} closed after exit");
    }
}

/// The demo's arguments on a small city, short (every demo test uses them).
const SMALL_DEMO: [&str; 7] = [
    "--duration",
    "3",
    "--cameras",
    "5000",
    "--gateways",
    "40",
    "--quiet",
];

/// Run `camtrail demo` into `out` on a small city; the process output.
fn run_demo(out: &Path) -> Output {
    run_demo_with(out, &[])
}

/// [`run_demo`] with more environment (configuration) for the demo's node.
fn run_demo_with(out: &Path, env: &[(&str, &std::ffi::OsStr)]) -> Output {
    let output = camtrail()
        .args(["demo", "--out"])
        .arg(out)
        .args(SMALL_DEMO)
        .envs(env.iter().copied())
        .output()
        .expect("run camtrail demo");
    assert!(
        output.status.success(),
        "camtrail demo failed ({}):\n{}\n{}",
        output.status,
        text(&output.stdout),
        text(&output.stderr)
    );
    output
}

#[test]
fn demo_runs_end_to_end_and_leaves_a_readable_map() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let output = run_demo(&out);
    let stdout = text(&output.stdout);
    let canonical = std::fs::canonicalize(&out).expect("demo created --out");
    assert!(
        stdout.contains(&canonical.display().to_string()),
        "stdout does not name the output folder {}:\n{stdout}",
        canonical.display()
    );
    assert!(stdout.contains("[5/5] track of"), "{stdout}");

    let map = image::open(out.join("track.png")).expect("track.png decodes");
    assert!(
        map.width() > 600 && map.height() > 400,
        "track.png is only {}x{}",
        map.width(),
        map.height()
    );

    let geojson: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("track.geojson")).expect("track.geojson"))
            .expect("track.geojson is JSON");
    assert_eq!(geojson["type"], "FeatureCollection", "{geojson}");
    let features = geojson["features"].as_array().expect("features array");
    assert!(!features.is_empty(), "no features: {geojson}");

    let track: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("track.json")).expect("track.json"))
            .expect("track.json is JSON");
    assert!(
        track["sightings"].as_array().is_some_and(|s| !s.is_empty()),
        "the demo's track has no sightings: {track}"
    );

    let report: serde_json::Value = serde_json::from_slice(
        &std::fs::read(out.join("load-report.json")).expect("load-report.json"),
    )
    .expect("load-report.json is JSON");
    let acked = report["acked"].as_u64().expect("acked");
    assert!(acked > 0, "{report}");
    assert_eq!(report["unacked"].as_u64(), Some(0), "{report}");
    for file in ["load-chart.png", "cameras.csv", "camtrail.db"] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    // A newcomer's terminal: steps, not log lines (those are in the folder's demo.log);
    // secrets and the folder owner-only; commands printed as they can be pasted.
    use std::os::unix::fs::PermissionsExt;
    let mode = |path: &Path| {
        std::fs::metadata(path)
            .expect("metadata")
            .permissions()
            .mode()
            & 0o777
    };
    assert!(
        !stdout.contains(" INFO ") && !stdout.contains(" WARN "),
        "{stdout}"
    );
    assert!(stdout.contains("demo.log"), "{stdout}");
    assert!(
        std::fs::metadata(out.join("demo.log")).is_ok_and(|m| m.len() > 0),
        "empty log"
    );
    assert_eq!(mode(&out), 0o700);
    for secret in ["demo.log", "gateway_tokens.csv", "users.toml", "track.json"] {
        assert_eq!(mode(&out.join(secret)), 0o600, "{secret}");
    }
    assert!(
        stdout.contains("audit verify --embedded")
            && stdout.contains("CAMTRAIL_SERVE__DATABASE_PATH="),
        "{stdout}"
    );
    assert!(
        stdout.contains("events/s for 3 s"),
        "a steady rate by default: {stdout}"
    );
    eprintln!(
        "demo_runs_end_to_end_and_leaves_a_readable_map: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `camtrail demo --keep`: after the scripted run the node keeps serving; the track command
/// it prints works when pasted into a shell; Ctrl-C (SIGINT) stops it cleanly.
#[test]
fn demo_keep_serves_until_interrupted_and_prints_a_command_that_works() {
    use std::io::BufRead;
    /// Kills and reaps the demo however the test ends.
    struct Demo(Child);
    impl Drop for Demo {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let mut demo = Demo(
        camtrail()
            .args(["demo", "--keep", "--out"])
            .arg(&out)
            .args(SMALL_DEMO)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("run camtrail demo --keep"),
    );
    // Lines on a thread, so a stalled demo fails the test at the deadline instead of
    // hanging it.
    let stdout = demo.0.stdout.take().expect("stdout");
    let (sender, lines) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(120);
    let next = || {
        let left = deadline.saturating_duration_since(Instant::now());
        lines.recv_timeout(left).ok()
    };
    let mut printed = Vec::new();
    // The command is the two lines after "ask for the track again:".
    let mut command = String::new();
    while let Some(line) = next() {
        printed.push(line.clone());
        if line.contains("ask for the track again:") {
            for _ in 0..2 {
                command.push_str(&next().expect("the command's lines"));
                command.push('\n');
            }
            break;
        }
    }
    let log = std::fs::read_to_string(out.join("demo.log")).unwrap_or_default();
    assert!(
        !command.is_empty(),
        "no command printed within 2 minutes:\n{}\nlog:\n{log}",
        printed.join("\n")
    );
    assert!(
        printed.iter().any(|l| l.contains("Ctrl-C stops it")),
        "{printed:?}"
    );
    assert!(
        !command.contains("--token"),
        "the token belongs in the environment: {command}"
    );
    let pasted = Command::new("sh")
        .args(["-c", &command])
        .output()
        .expect("sh");
    assert!(
        pasted.status.success(),
        "the printed command failed:\n{command}\n{}",
        text(&pasted.stderr)
    );
    assert!(
        text(&pasted.stdout).contains("sightings"),
        "{}",
        text(&pasted.stdout)
    );
    check_workspace(&printed);
    let interrupted = Command::new("kill")
        .args(["-INT", &demo.0.id().to_string()])
        .status()
        .expect("kill -INT");
    assert!(interrupted.success());
    let status = demo.0.wait().expect("wait");
    assert!(status.success(), "the demo did not stop cleanly: {status}");
}

/// `curl -sS <args>`'s stdout (asserting curl succeeded).
fn curl(args: &[&str]) -> String {
    let output = Command::new("curl")
        .arg("-sS")
        .args(args)
        .output()
        .expect("curl");
    assert!(
        output.status.success(),
        "curl {args:?}: {}",
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// The workspace the demo printed: its page comes with a strict policy and no secret; the
/// base map and `whoami` need the token the demo printed.
fn check_workspace(printed: &[String]) {
    let field = |marker: &str| {
        printed
            .iter()
            .find_map(|line| {
                line.split_once(marker)
                    .map(|(_, rest)| rest.trim().to_string())
            })
            .unwrap_or_else(|| panic!("no {marker:?} in {printed:?}"))
    };
    let url = field("workspace")
        .split_whitespace()
        .next()
        .map(str::to_string);
    let url = url.expect("workspace URL");
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    let token = field("the demo investigator's token (a secret; this run's only):");
    let page = curl(&["-D", "-", &url]);
    let lower = page.to_ascii_lowercase();
    assert!(lower.starts_with("http/1.1 200"), "{page}");
    assert!(
        lower.contains("content-security-policy: default-src 'none'; script-src 'self';"),
        "{page}"
    );
    assert!(
        page.contains("assets/app.js") && !page.contains("<script>"),
        "{page}"
    );
    let refused = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        &format!("{url}v1/basemap"),
    ]);
    assert_eq!(refused, "401");
    let bearer = format!("Authorization: Bearer {token}");
    let basemap = curl(&["--compressed", "-H", &bearer, &format!("{url}v1/basemap")]);
    let basemap: serde_json::Value = serde_json::from_str(&basemap).expect("basemap JSON");
    assert_eq!(
        basemap["cameras"]["ids"].as_array().map(Vec::len),
        Some(5_000)
    );
    assert_eq!(basemap["districts"].as_array().map(Vec::len), Some(30));
    assert!(basemap["roads"].as_array().is_some_and(|r| r.len() > 10));
    let me = curl(&["-H", &bearer, &format!("{url}v1/whoami")]);
    let me: serde_json::Value = serde_json::from_str(&me).expect("whoami JSON");
    assert_eq!(me["user"], "demo-investigator");
    assert_eq!(me["role"], "investigator");
    assert_eq!(me["time_zone"], "Asia/Shanghai");
}

/// `camtrail <args>` with the embedded database; asserts success and returns stdout.
fn embedded(database: &Path, args: &[&str]) -> String {
    let output = camtrail()
        .args(args)
        .env("CAMTRAIL_SERVE__DATABASE_PATH", database)
        .output()
        .expect("run camtrail");
    let stdout = text(&output.stdout);
    assert!(
        output.status.success(),
        "camtrail {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        text(&output.stderr)
    );
    stdout
}

/// A demo run in a new temporary directory: (the directory, the demo's output folder, its
/// database).
async fn demo_in_tempdir() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = dir.path().join("demo");
    let demo_out = out.clone();
    tokio::task::spawn_blocking(move || run_demo(&demo_out))
        .await
        .expect("demo");
    let database = out.join("camtrail.db");
    (dir, out, database)
}

/// The record count of chain `node` in `audit verify` output.
fn chain_records(verify: &str, node: &str) -> Option<u64> {
    let prefix = format!("chain {node}: ");
    verify
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_audit_verify_and_retention() {
    let started = Instant::now();
    let (dir, out, database) = demo_in_tempdir().await;

    // Three detections captured three days ago, beside the demo's recent ones: retention
    // with --days 1 must remove exactly these.
    let now = now_ms();
    let old_ids: Vec<EventId> = (1..=3u8)
        .map(|i| EventId([0xee, 0xee, 0xee, i, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]))
        .collect();
    let store = SqliteStore::open(&database).expect("open the demo's database");
    let demo_count = store.detection_count().await.expect("count");
    assert!(demo_count > 0, "the demo stored nothing");
    let camera_id = std::fs::read_to_string(out.join("cameras.csv"))
        .expect("cameras.csv")
        .lines()
        .nth(1)
        .and_then(|line| line.split(',').next())
        .expect("a camera")
        .to_string();
    let old: Vec<Detection> = old_ids
        .iter()
        .enumerate()
        .map(|(i, id)| Detection {
            event_id: *id,
            camera_id: camera_id.clone(),
            captured_at_ms: now - 3 * 86_400_000 + i as i64 * 1_000,
            object_class: ObjectClass::Vehicle,
            plate: "粤B·0LD00".into(),
            plate_confidence: 0.9,
            subject_key: camtrail_model::plate::normalize("粤B·0LD00"),
            attributes: VehicleAttributes::default(),
            plate_char_confidence: Vec::new(),
            bbox: [10, 10, 100, 60],
            thumbnail_jpeg: None,
            gateway_id: "gw-old".into(),
            received_at_ms: now - 3 * 86_400_000 + i as i64 * 1_000,
        })
        .collect();
    let written = store.write(old).await.expect("write old detections");
    assert_eq!(written, 3);
    let before = store.detection_count().await.expect("count");
    assert_eq!(before, demo_count + 3);
    drop(store);

    let run = |args: &'static [&'static str]| {
        let database = database.clone();
        async move {
            tokio::task::spawn_blocking(move || embedded(&database, args))
                .await
                .expect("join")
        }
    };

    // The demo's queries left an intact chain.
    let verify = run(&["audit", "verify", "--embedded"]).await;
    assert!(verify.contains("audit log intact"), "{verify}");
    let query_records = chain_records(&verify, "query").unwrap_or_else(|| panic!("{verify}"));
    assert!(
        query_records >= 3,
        "the demo asked at least 3 questions: {verify}"
    );
    assert_eq!(chain_records(&verify, "retention"), None, "{verify}");

    // Dry run: the plan names the 3 old rows, nothing changes, nothing is audited.
    let dry = run(&[
        "retention",
        "apply",
        "--embedded",
        "--days",
        "1",
        "--dry-run",
    ])
    .await;
    assert!(
        dry.contains("3 detections and 0 snapshots captured before it"),
        "{dry}"
    );
    assert!(dry.contains("dry run: nothing changed"), "{dry}");
    let store = SqliteStore::open(&database).expect("open");
    assert_eq!(store.detection_count().await.expect("count"), before);
    drop(store);

    // The real run: audited first, then exactly the old rows go.
    let applied = run(&[
        "retention",
        "apply",
        "--embedded",
        "--days",
        "1",
        "--operator",
        "t",
        "--case",
        "T-1",
        "--reason",
        "test",
    ])
    .await;
    assert!(applied.contains("audited as retention seq"), "{applied}");
    assert!(applied.contains("removed 3 rows"), "{applied}");
    let store = SqliteStore::open(&database).expect("open");
    assert_eq!(
        store.detection_count().await.expect("count"),
        demo_count,
        "only the three old detections were removed"
    );
    let ids = store.event_ids().await.expect("ids");
    assert!(old_ids.iter().all(|id| !ids.contains(id)));
    drop(store);

    let verify = run(&["audit", "verify", "--embedded"]).await;
    assert!(verify.contains("audit log intact"), "{verify}");
    assert_eq!(chain_records(&verify, "retention"), Some(1), "{verify}");
    assert_eq!(chain_records(&verify, "query"), Some(query_records));

    // A second run continues the same retention chain, which stays intact.
    let again = run(&[
        "retention",
        "apply",
        "--embedded",
        "--days",
        "1",
        "--operator",
        "t",
        "--case",
        "T-2",
        "--reason",
        "test again",
    ])
    .await;
    assert!(again.contains("removed 0 rows"), "{again}");
    let verify = run(&["audit", "verify", "--embedded"]).await;
    assert!(verify.contains("audit log intact"), "{verify}");
    assert_eq!(chain_records(&verify, "retention"), Some(2), "{verify}");

    // A database that does not exist is an error, not a new empty database.
    let missing = dir.path().join("nowhere.db");
    let output = camtrail()
        .args(["audit", "verify", "--embedded"])
        .env("CAMTRAIL_SERVE__DATABASE_PATH", &missing)
        .output()
        .expect("run camtrail");
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("does not exist"),
        "{}",
        text(&output.stderr)
    );
    assert!(!missing.exists());
    eprintln!(
        "embedded_audit_verify_and_retention: {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Issue 21's anchored audit, end to end on the embedded node: a key from `camtrail audit
/// keygen`, the demo's query node signing checkpoints (every 2 records and at shutdown),
/// `audit verify --checkpoints` honouring them; then the newest record removed from the
/// database: the hash chain alone still verifies, the checkpoints do not.
#[test]
fn embedded_audit_checkpoints_reveal_a_cut_tail() {
    use std::os::unix::fs::PermissionsExt;

    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("checkpoint.key");
    let public = dir.path().join("checkpoint.key.pub");
    let checkpoints = dir.path().join("checkpoints.jsonl");
    let keygen = |expect_ok: bool| {
        let output = camtrail()
            .args(["audit", "keygen", "--out"])
            .arg(&key)
            .output()
            .expect("run keygen");
        assert_eq!(
            output.status.success(),
            expect_ok,
            "{}",
            text(&output.stderr)
        );
        text(&output.stdout)
    };
    assert!(keygen(true).starts_with("key "));
    let mode = std::fs::metadata(&key).expect("key").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the private key is the owner's only");
    assert!(public.exists());
    keygen(false); // never overwritten

    let out = dir.path().join("demo");
    run_demo_with(
        &out,
        &[
            (
                "CAMTRAIL_QUERY__AUDIT_CHECKPOINTS__KEY_PATH",
                key.as_os_str(),
            ),
            (
                "CAMTRAIL_QUERY__AUDIT_CHECKPOINTS__PATH",
                checkpoints.as_os_str(),
            ),
            (
                "CAMTRAIL_QUERY__AUDIT_CHECKPOINTS__EVERY_RECORDS",
                std::ffi::OsStr::new("2"),
            ),
        ],
    );
    let database = out.join("camtrail.db");
    let lines = std::fs::read_to_string(&checkpoints).expect("checkpoints written");
    assert!(lines.lines().count() >= 2, "{lines}");

    let verify = || {
        let output = camtrail()
            .args(["audit", "verify", "--embedded", "--checkpoints"])
            .arg(&checkpoints)
            .arg("--public-key")
            .arg(&public)
            .env("CAMTRAIL_SERVE__DATABASE_PATH", &database)
            .output()
            .expect("run audit verify");
        (output.status.success(), text(&output.stdout))
    };
    let (ok, honoured) = verify();
    assert!(ok, "{honoured}");
    assert!(honoured.contains("audit log intact"), "{honoured}");
    let records = chain_records(&honoured, "query").unwrap_or_else(|| panic!("{honoured}"));
    assert!(
        honoured.contains(&format!(
            "chain query: records 1..={records} match a signed checkpoint"
        )),
        "the shutdown checkpoint covers every record: {honoured}"
    );

    // Cut the tail: the newest record of the chain goes.
    let connection = rusqlite::Connection::open(&database).expect("open the database");
    let removed = connection
        .execute(
            "DELETE FROM audit_log WHERE node_id = 'query' AND seq = ?1",
            [records as i64],
        )
        .expect("delete");
    assert_eq!(removed, 1);
    drop(connection);
    let (ok, cut) = verify();
    assert!(!ok, "{cut}");
    assert!(
        cut.contains("audit log intact"),
        "the chain alone sees nothing: {cut}"
    );
    assert!(
        cut.contains(&format!(
            "CHECKPOINT NOT HONOURED: checkpoint {} (chain query, {records} records): the log \
             ends at record {} of this chain: record {records} removed",
            lines.lines().count(),
            records - 1
        )),
        "{cut}"
    );
}

/// Issue 21's transparency report: over a database holding the demo's searches and a known
/// mix written for the test, the report's counts are the audit log's, the public files carry
/// no names, and the supervisors' page is the owner's only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transparency_report_counts_match_the_audit_log() {
    use camtrail_model::audit::AuditEntry;
    use camtrail_storage::{AuditLog as _, SightingStore as _};
    use std::os::unix::fs::PermissionsExt;

    let (dir, out, database) = demo_in_tempdir().await;

    // A known mix, ten days ahead, on a chain of its own.
    let day = now_ms() + 10 * 86_400_000;
    let store = SqliteStore::open(&database).expect("open");
    let audit = store.audit_log("report-test").await.expect("chain");
    let mix = [
        ("ann", "investigator", "track", 4u64),
        ("ann", "investigator", "track", 0),
        ("ann", "investigator", "track", 9),
        ("ann", "investigator", "scene", 40),
        ("bob", "supervisor", "passes", 7),
        ("bob", "supervisor", "passes", 1),
        ("bob", "supervisor", "audit_read", 3),
    ];
    for (i, (user, role, kind, results)) in mix.iter().enumerate() {
        audit
            .append(AuditEntry {
                at_ms: day + i as i64 * 60_000,
                user: user.to_string(),
                role: role.to_string(),
                case_id: "T-1".into(),
                reason: "test".into(),
                kind: kind.to_string(),
                parameters_json: "{}".into(),
                result_count: *results,
                client_addr: "test".into(),
            })
            .await
            .expect("append");
    }
    let stored = store.detection_count().await.expect("count");
    let all = store.all_audit_records().await.expect("records");
    drop(audit);
    drop(store);

    let report = |from: i64, to: i64, name: &str| {
        let dir = dir.path().join(name);
        let output = camtrail()
            .args(["transparency", "report", "--embedded", "--from"])
            .arg(from.to_string())
            .arg("--to")
            .arg(to.to_string())
            .arg("--out")
            .arg(&dir)
            .env("CAMTRAIL_SERVE__DATABASE_PATH", &database)
            .env("CAMTRAIL_QUERY__REGISTRY_PATH", out.join("cameras.csv"))
            .env("CAMTRAIL_QUERY__USERS_PATH", out.join("users.toml"))
            .output()
            .expect("run transparency report");
        assert!(
            output.status.success(),
            "{}\n{}",
            text(&output.stdout),
            text(&output.stderr)
        );
        let json: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("transparency.json")).expect("transparency.json"),
        )
        .expect("json");
        (dir, json)
    };

    // The known mix alone.
    let (files, json) = report(day, day + 86_400_000, "mix");
    assert_eq!(json["searches"], 6, "{json}");
    assert_eq!(json["audit_records"], 7, "{json}");
    assert_eq!(json["cameras"], 5000, "{json}");
    assert_eq!(json["detections_stored"], stored, "{json}");
    let kinds: Vec<(String, u64, u64)> = json["by_kind"]
        .as_array()
        .expect("by_kind")
        .iter()
        .map(|k| {
            (
                k["kind"].as_str().unwrap_or_default().to_string(),
                k["count"].as_u64().unwrap_or_default(),
                k["results"].as_u64().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        [
            ("audit_read".to_string(), 1, 3),
            ("passes".into(), 2, 8),
            ("scene".into(), 1, 40),
            ("track".into(), 3, 13)
        ]
    );
    assert_eq!(json["searching_users_by_role"]["investigator"], 1, "{json}");
    assert_eq!(json["searching_users_by_role"]["supervisor"], 1, "{json}");
    for public in ["transparency.json", "transparency.html"] {
        let body = std::fs::read_to_string(files.join(public)).expect("public file");
        assert!(
            !body.contains("ann") && !body.contains("T-1"),
            "{public} names a user or a case"
        );
    }
    for private in ["anomalies.json", "anomalies.html"] {
        let mode = std::fs::metadata(files.join(private))
            .expect("anomaly file")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{private}");
    }
    let anomalies = std::fs::read_to_string(files.join("anomalies.json")).expect("anomalies");
    assert!(anomalies.contains("\"ann\""), "{anomalies}");

    // Everything up to now: the demo's searches too, as the log holds them.
    let (_, json) = report(0, day, "all");
    let searches = all
        .iter()
        .filter(|r| {
            r.entry.at_ms < day
                && ["track", "passes", "scene", "series", "cotravel"]
                    .contains(&r.entry.kind.as_str())
        })
        .count();
    assert!(searches >= 3, "the demo searched");
    assert_eq!(json["searches"], searches as u64, "{json}");
    assert_eq!(
        json["audit_records"],
        all.iter().filter(|r| r.entry.at_ms < day).count() as u64
    );
}

/// Issue 21's evidence export: a supervisor's audited track search over stored detections
/// with snapshots, exported by `camtrail export` (re-asked under the case, audited), verified
/// offline by `camtrail export verify`; one changed byte of one snapshot is named.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_package_verifies_and_names_a_changed_file() {
    use std::os::unix::fs::PermissionsExt;

    let setup = Setup::new();
    let camera_ids: Vec<String> = std::fs::read_to_string(setup.dir.path().join("cameras.csv"))
        .expect("cameras.csv")
        .lines()
        .skip(1)
        .take(3)
        .filter_map(|line| line.split(',').next().map(str::to_string))
        .collect();
    let mut jpeg = std::io::Cursor::new(Vec::new());
    image::RgbImage::from_pixel(64, 48, image::Rgb([90, 120, 200]))
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .expect("jpeg");
    let jpeg = jpeg.into_inner();
    let now = now_ms();
    let detections: Vec<Detection> = camera_ids
        .iter()
        .enumerate()
        .map(|(i, camera_id)| Detection {
            event_id: EventId([
                0xab, 0xcd, i as u8, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,
            ]),
            camera_id: camera_id.clone(),
            captured_at_ms: now - 3_600_000 + i as i64 * 60_000,
            object_class: ObjectClass::Vehicle,
            plate: "粤B·EXP01".into(),
            plate_confidence: 0.95,
            subject_key: camtrail_model::plate::normalize("粤B·EXP01"),
            attributes: VehicleAttributes::default(),
            plate_char_confidence: Vec::new(),
            bbox: [10, 10, 100, 60],
            thumbnail_jpeg: (i < 2).then(|| jpeg.clone()),
            gateway_id: "gw-export".into(),
            received_at_ms: now - 3_600_000 + i as i64 * 60_000,
        })
        .collect();
    let store = SqliteStore::open(&setup.database).expect("open");
    assert_eq!(store.write(detections).await.expect("write"), 3);
    drop(store);

    let log = setup.log();
    let mut child = setup.process.spawn(&log);
    setup.process.wait_ready(&mut child, &log).await;
    let url = format!("http://{}", setup.process.addrs.query_http);
    let cli = |args: Vec<String>| {
        let url = url.clone();
        let token = setup.supervisor_token.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                camtrail()
                    .args(&args)
                    .env("CAMTRAIL_QUERY_URL", url)
                    .env("CAMTRAIL_TOKEN", token)
                    .output()
                    .expect("run camtrail")
            })
            .await
            .expect("join")
        }
    };
    let strings = |args: &[&str]| args.iter().map(|a| a.to_string()).collect::<Vec<_>>();
    let (from, to) = ((now - 7_200_000).to_string(), now.to_string());
    // The supervisor opens the case the export belongs to, from the command line.
    let opened = cli(strings(&[
        "cases",
        "open",
        "--case",
        "EXP-1",
        "--title",
        "robbery on Shennan Road",
        "--category",
        "robbery",
        "--ends",
        "30d",
        "--reason",
        "court file 7",
    ]))
    .await;
    assert!(opened.status.success(), "{}", text(&opened.stderr));
    assert!(
        text(&opened.stdout).contains("EXP-1"),
        "{}",
        text(&opened.stdout)
    );
    let listed = cli(strings(&["cases", "list", "--status", "open"])).await;
    assert!(
        text(&listed.stdout).contains("EXP-1") && text(&listed.stdout).contains("robbery"),
        "{}",
        text(&listed.stdout)
    );
    let track = cli(strings(&[
        "track",
        "--plate",
        "粤B·EXP01",
        "--from",
        &from,
        "--to",
        &to,
        "--case",
        "EXP-1",
        "--reason",
        "robbery on Shennan Road",
        "--format",
        "json",
    ]))
    .await;
    assert!(track.status.success(), "{}", text(&track.stderr));
    let answer: serde_json::Value = serde_json::from_slice(&track.stdout).expect("track json");
    assert_eq!(
        answer["sightings"].as_array().map(Vec::len),
        Some(3),
        "{answer}"
    );
    let audit_id = format!(
        "{}/{}",
        answer["audit"]["node_id"].as_str().expect("node"),
        answer["audit"]["seq"]
    );

    let package = setup.dir.path().join("package");
    let package_arg = package.display().to_string();
    let export = cli(strings(&[
        "export",
        "--case",
        "EXP-1",
        "--audit-id",
        &audit_id,
        "--reason",
        "court file 7",
        "--out",
        &package_arg,
    ]))
    .await;
    assert!(
        export.status.success(),
        "{}\n{}",
        text(&export.stdout),
        text(&export.stderr)
    );
    // The exported sightings are held for the case; an extension needs a reason.
    let ids: Vec<String> = answer["sightings"]
        .as_array()
        .expect("sightings")
        .iter()
        .map(|s| s["event_id"].as_str().expect("event id").to_string())
        .collect();
    let held = cli(strings(&[
        "holds",
        "place",
        "--case",
        "EXP-1",
        "--event",
        &ids.join(","),
        "--reason",
        "exported for court file 7",
    ]))
    .await;
    assert!(held.status.success(), "{}", text(&held.stderr));
    let listed = cli(strings(&["holds", "list", "--case", "EXP-1"])).await;
    assert_eq!(
        text(&listed.stdout)
            .lines()
            .filter(|l| l.starts_with("EXP-1"))
            .count(),
        3,
        "{}",
        text(&listed.stdout)
    );
    let unexplained = cli(strings(&[
        "cases", "extend", "--case", "EXP-1", "--ends", "60d", "--reason", "",
    ]))
    .await;
    assert!(!unexplained.status.success());
    assert!(
        text(&unexplained.stderr).contains("missing_reason"),
        "{}",
        text(&unexplained.stderr)
    );
    let snapshot = |id: u8| {
        package.join(format!(
            "snapshots/abcd{id:02x}0102030405060708090a0b0c0d.jpg"
        ))
    };
    for file in [
        "track.json",
        "track.geojson",
        "track.png",
        "audit.json",
        "manifest.json",
    ] {
        let mode = std::fs::metadata(package.join(file))
            .unwrap_or_else(|e| panic!("{file}: {e}"))
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    assert!(snapshot(0).exists() && snapshot(1).exists() && !snapshot(2).exists());
    let records: Vec<camtrail_model::audit::AuditRecord> =
        serde_json::from_slice(&std::fs::read(package.join("audit.json")).expect("audit.json"))
            .expect("records");
    // The original search, the three formats and the two snapshots the export asked for.
    assert_eq!(records.len(), 6, "{records:?}");
    assert!(
        records
            .iter()
            .skip(1)
            .all(|r| r.entry.reason == format!("export of {audit_id}: court file 7"))
    );
    assert!(records.iter().all(|r| r.compute_hash() == r.hash));

    let verify = || {
        camtrail()
            .args(["export", "verify"])
            .arg(&package)
            .output()
            .expect("run export verify")
    };
    let ok = verify();
    assert!(ok.status.success(), "{}", text(&ok.stderr));
    assert!(
        text(&ok.stdout).contains("6 files match manifest.json"),
        "{}",
        text(&ok.stdout)
    );

    let mut bytes = std::fs::read(snapshot(1)).expect("snapshot");
    let last = bytes.len() - 3;
    bytes[last] ^= 0x01;
    std::fs::write(snapshot(1), &bytes).expect("tamper");
    let tampered = verify();
    assert!(!tampered.status.success());
    assert!(
        text(&tampered.stderr).contains(
            "snapshots/abcd010102030405060708090a0b0c0d.jpg: does not match manifest.json"
        ),
        "{}",
        text(&tampered.stderr)
    );
}
