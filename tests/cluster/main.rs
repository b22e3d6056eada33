//! Issue 19's fault test: the cluster `deploy/cluster/cluster.sh` runs (three Kafka brokers,
//! ZooKeeper, ClickHouse 2 shards × 2 replicas) with two ingest nodes, two sinks and two
//! query nodes of this build on top, under a steady load from the city's gateways (spread
//! over both ingest nodes, failing over). One process at a time is killed with `kill -9`
//! and restarted 10 s later: the Kafka broker leading most partitions, an ingest node, a
//! sink, a ClickHouse replica, ZooKeeper. Meanwhile track and passes queries go to both
//! query nodes, counted per fault window. At the end: every acked event is stored, none
//! rejected is, each appears once in the track answers of the plates checked, the sinks'
//! lag is 0, and the audit chains verify.
//!
//! Bounded: about 2 minutes of load, then at most 2 minutes of draining. Writes its table to
//! `target/cluster-faults.md` and prints it. Run alone: `cargo test --test cluster`.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camtrail_city::traffic::{Traffic, TrafficConfig};
use camtrail_city::{City, CityConfig};
use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_loadgen::{LoadgenConfig, RunHooks, Throttle};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const BROKERS: &str = "127.0.0.1:19092,127.0.0.1:19093,127.0.0.1:19094";
const CLICKHOUSE: [&str; 4] = [
    "http://127.0.0.1:18123",
    "http://127.0.0.1:18124",
    "http://127.0.0.1:18125",
    "http://127.0.0.1:18126",
];
/// Events per second offered, and for how long.
const RATE: f64 = 1_000.0;
const LOAD_SECONDS: u64 = 125;
/// Each fault lasts this long before the process is started again.
const FAULT: Duration = Duration::from_secs(10);
/// A fault window: from the kill until this long after it (the restart and recovery).
const WINDOW: Duration = Duration::from_secs(20);

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn cluster_sh(args: &[&str]) -> String {
    let output = Command::new(repo().join("deploy/cluster/cluster.sh"))
        .args(args)
        .output()
        .expect("run deploy/cluster/cluster.sh");
    assert!(
        output.status.success(),
        "deploy/cluster/cluster.sh {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// [`cluster_sh`] off the runtime's two workers (`start` waits up to ~20 s for replicas),
/// so the load and the queries go on meanwhile.
async fn cluster(args: &[&str]) -> String {
    let args: Vec<String> = args.iter().map(|a| (*a).to_string()).collect();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        cluster_sh(&args)
    })
    .await
    .expect("join")
}

/// Drops the run's database on the cluster when the test ends, passed or failed.
struct DropDatabase(String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let _ = Command::new("clickhouse-client")
            .args(["--port", "19101", "-q"])
            .arg(format!(
                "DROP DATABASE IF EXISTS {} ON CLUSTER camtrail",
                self.0
            ))
            .output();
    }
}

/// The `camtrail` binary with none of this process's `CAMTRAIL_*` settings: the test
/// command exports the single node's (`CAMTRAIL_KAFKA__BROKERS=127.0.0.1:9092`, …), and
/// the environment would win over the cluster's configuration file.
fn camtrail() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_camtrail"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CAMTRAIL_") {
            command.env_remove(key);
        }
    }
    command
}

use camtrail_testkit::free_port;

/// One camtrail process of the deployment.
struct Role {
    name: String,
    command: &'static str,
    env: Vec<(String, String)>,
    health: SocketAddr,
    log: PathBuf,
    child: Option<Child>,
}

impl Drop for Role {
    /// A failed test leaves no camtrail process behind.
    fn drop(&mut self) {
        self.kill();
    }
}

impl Role {
    fn new(name: &str, command: &'static str, dir: &Path, env: &[(&str, String)]) -> Self {
        let health: SocketAddr = env
            .iter()
            .find(|(key, _)| key.ends_with("__HTTP_ADDR"))
            .and_then(|(_, value)| value.parse().ok())
            .expect("an HTTP address");
        Self {
            name: name.into(),
            command,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.clone()))
                .collect(),
            health,
            log: dir.join(format!("{name}.log")),
            child: None,
        }
    }

    async fn start(&mut self, config: &Path) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let child = camtrail()
            .arg("--config")
            .arg(config)
            .arg(self.command)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn camtrail");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if camtrail_testkit::try_http_get(self.health, "/healthz")
                .await
                .is_ok_and(|r| r.split_whitespace().nth(1) == Some("200"))
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} did not become healthy; see {}",
                self.name,
                self.log.display()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
    }
}

/// Every acked and every rejected event id.
#[derive(Default)]
struct Observed {
    acked: HashSet<[u8; 16]>,
    rejected: HashSet<[u8; 16]>,
}

/// One query: when it was sent, whether it was answered (200), how long it took.
#[derive(Clone, Copy)]
struct Sample {
    at: Instant,
    ok: bool,
    latency: Duration,
}

/// A plain HTTP/1.1 GET with a bearer token; the status and body, or an error text.
async fn get(addr: SocketAddr, path: &str, token: &str) -> Result<(u16, String), String> {
    let exchange = async {
        let mut socket = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| e.to_string())?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Connection: close\r\n\r\n"
        );
        socket
            .write_all(request.as_bytes())
            .await
            .map_err(|e| e.to_string())?;
        let mut response = Vec::new();
        socket
            .read_to_end(&mut response)
            .await
            .map_err(|e| e.to_string())?;
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = response
            .split_once("\r\n\r\n")
            .map(|(_, body)| body.to_string())
            .unwrap_or_default();
        Ok((status, body))
    };
    tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .map_err(|_| "timed out after 10 s".to_string())?
}

/// The broker leading most partitions of `topic`.
fn busiest_leader(topic: &str) -> i32 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .create()
        .expect("metadata client");
    let metadata = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    let mut led: BTreeMap<i32, usize> = BTreeMap::new();
    for found in metadata.topics() {
        for partition in found.partitions() {
            *led.entry(partition.leader()).or_default() += 1;
        }
    }
    led.into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(broker, _)| broker)
        .expect("a leader")
}

/// Records in `topics` not yet committed by `group` (0 once the sinks caught up).
fn lag(group: &str, topics: &[&str]) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", BROKERS)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("lag client");
    let mut lag = 0;
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), Duration::from_secs(10))
            .expect("metadata");
        let mut list = rdkafka::TopicPartitionList::new();
        for found in metadata.topics() {
            for partition in found.partitions() {
                list.add_partition(topic, partition.id());
            }
        }
        let committed = consumer
            .committed_offsets(list, Duration::from_secs(10))
            .expect("committed offsets");
        for element in committed.elements() {
            let (_, high) = consumer
                .fetch_watermarks(topic, element.partition(), Duration::from_secs(10))
                .expect("watermarks");
            let done = match element.offset() {
                rdkafka::Offset::Offset(offset) => offset,
                _ => 0,
            };
            lag += (high - done).max(0);
        }
    }
    lag
}

/// A query against ClickHouse (the `Distributed` tables) as tab-separated rows.
async fn clickhouse_rows(config: &camtrail_clickhouse::ClickhouseConfig, sql: &str) -> String {
    let client = config.client();
    let mut cursor = client
        .query(sql)
        .fetch_bytes("TabSeparated")
        .expect("query");
    let bytes = cursor.collect().await.expect("rows");
    String::from_utf8_lossy(&bytes).into_owned()
}

fn p99(samples: &[Sample]) -> Duration {
    let mut latencies: Vec<Duration> = samples.iter().map(|s| s.latency).collect();
    latencies.sort();
    latencies
        .get(((latencies.len() as f64 * 0.99).ceil() as usize).saturating_sub(1))
        .copied()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_any_one_process_loses_nothing_and_stops_nothing_for_long() {
    cluster_sh(&["up"]);
    let run = camtrail_testkit::unique_name("faults");
    let _drop_database = DropDatabase(run.clone());
    let dir = tempfile::tempdir().expect("tempdir");
    let out = repo().join("target/cluster-faults");
    // The roles' logs (no secrets in them) are kept for a look after the run.
    let logs = out.join(&run);
    std::fs::create_dir_all(&logs).expect("out dir");

    // The city, gateway tokens, a supervisor for the queries.
    let city = City::generate(&CityConfig {
        seed: 19,
        cameras: 2_000,
        districts: 6,
        gateways: 8,
    });
    let registry = dir.path().join("cameras.csv");
    let mut csv = Vec::new();
    city.registry.write_csv(&mut csv).expect("csv");
    std::fs::write(&registry, csv).expect("registry");
    let tokens: Vec<IssuedToken> = city
        .gateways
        .iter()
        .map(|g| IssuedToken::mint(&g.id))
        .collect();
    let (_, hashes) = render_token_files(&tokens);
    let hashes_path = dir.path().join("hashes.csv");
    std::fs::write(&hashes_path, hashes).expect("hashes");
    let users = dir.path().join("users.toml");
    let issued = camtrail()
        .args([
            "users",
            "issue",
            "--name",
            "sam",
            "--role",
            "supervisor",
            "--users",
        ])
        .arg(&users)
        .output()
        .expect("users issue");
    assert!(issued.status.success(), "{issued:?}");
    let token = String::from_utf8_lossy(&issued.stdout).trim().to_string();

    // One configuration for every role; each overrides its own addresses.
    let config = dir.path().join("cluster.toml");
    let shards = format!(
        "[[\"{}\", \"{}\"], [\"{}\", \"{}\"]]",
        CLICKHOUSE[0], CLICKHOUSE[1], CLICKHOUSE[2], CLICKHOUSE[3]
    );
    let failover = |first: usize| {
        let rest: Vec<String> = (1..4)
            .map(|n| format!("\"{}\"", CLICKHOUSE[(first + n) % 4]))
            .collect();
        format!("[{}]", rest.join(", "))
    };
    std::fs::write(
        &config,
        format!(
            "[kafka]\nbrokers = \"{BROKERS}\"\ndetections_topic = \"{run}.detections.v1\"\n\
             dead_letter_topic = \"{run}.dlq.v1\"\naudit_topic = \"{run}.audit.v1\"\n\
             alerts_topic = \"{run}.alerts.v1\"\ndetections_partitions = 6\n\
             replication_factor = 3\n\n\
             [clickhouse]\nurl = \"{}\"\nfailover_urls = {}\ndatabase = \"{run}\"\n\
             cluster = \"camtrail\"\nshards = {shards}\n\n\
             [ingest]\nregistry_path = \"{}\"\ngateway_tokens_path = \"{}\"\n\n\
             [sink]\ngroup_id = \"{run}-sink\"\nsession_timeout_ms = 10000\n\
             max_batch_age_ms = 500\nretry_max_backoff_ms = 2000\n\n\
             [query]\nregistry_path = \"{}\"\nusers_path = \"{}\"\n",
            CLICKHOUSE[0],
            failover(0),
            registry.display(),
            hashes_path.display(),
            registry.display(),
            users.display()
        ),
    )
    .expect("config");

    let migrated = camtrail()
        .arg("--config")
        .arg(&config)
        .args(["migrate", "--cluster", "camtrail"])
        .output()
        .expect("migrate");
    assert!(
        migrated.status.success(),
        "camtrail migrate --cluster: {}",
        String::from_utf8_lossy(&migrated.stderr)
    );

    let addr = || format!("127.0.0.1:{}", free_port());
    let mut ingest: Vec<Role> = (1..=2)
        .map(|n| {
            Role::new(
                &format!("ingest-{n}"),
                "ingest",
                &logs,
                &[
                    ("CAMTRAIL_INGEST__GRPC_ADDR", addr()),
                    ("CAMTRAIL_INGEST__HTTP_ADDR", addr()),
                ],
            )
        })
        .collect();
    let mut sinks: Vec<Role> = (1..=2)
        .map(|n| {
            Role::new(
                &format!("sink-{n}"),
                "sink",
                &logs,
                &[
                    ("CAMTRAIL_SINK__HTTP_ADDR", addr()),
                    ("CAMTRAIL_SINK__INSTANCE_ID", format!("{run}-sink-{n}")),
                ],
            )
        })
        .collect();
    // The second query node prefers the second shard's first replica.
    let mut queries: Vec<Role> = [0, 2]
        .iter()
        .enumerate()
        .map(|(n, &server)| {
            Role::new(
                &format!("query-{}", n + 1),
                "query",
                &logs,
                &[
                    ("CAMTRAIL_QUERY__HTTP_ADDR", addr()),
                    ("CAMTRAIL_QUERY__GRPC_ADDR", addr()),
                    ("CAMTRAIL_QUERY__NODE_NAME", format!("query-{}", n + 1)),
                    ("CAMTRAIL_CLICKHOUSE__URL", CLICKHOUSE[server].to_string()),
                    ("CAMTRAIL_CLICKHOUSE__FAILOVER_URLS", failover(server)),
                ],
            )
        })
        .collect();
    for role in ingest.iter_mut().chain(&mut sinks).chain(&mut queries) {
        role.start(&config).await;
    }
    let query_addrs: Vec<SocketAddr> = queries.iter().map(|q| q.health).collect();

    let case = format!("FAULTS-{run}");
    let opened = camtrail()
        .args(["cases", "open", "--url"])
        .arg(format!("http://{}", query_addrs[0]))
        .args(["--token", &token, "--case", &case, "--title", "fault test"])
        .args([
            "--category",
            "robbery",
            "--ends",
            "7d",
            "--reason",
            "fault test",
        ])
        .output()
        .expect("cases open");
    assert!(
        opened.status.success(),
        "cases open: {}",
        String::from_utf8_lossy(&opened.stderr)
    );

    // The case is stored through query-1's server and replicated to the others: wait
    // until every query node can search under it.
    for addr in &query_addrs {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let now = camtrail_common::now_ms();
            let path = format!(
                "/v1/track?plate={}&from={}&to={now}&case={case}&reason=fault%20test%20ready",
                camtrail_query::client::encode("粤B12345"),
                now - 60_000
            );
            if matches!(get(*addr, &path, &token).await, Ok((200, _))) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the case never reached the query node at {addr}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    // The load: the city's gateways over both ingest nodes.
    let observed: Arc<Mutex<Observed>> = Arc::default();
    let recorder = Arc::clone(&observed);
    let hooks = RunHooks {
        on_ack: Some(Arc::new(move |batch: &camtrail_loadgen::AckedBatch| {
            let mut observed = recorder.lock().expect("lock");
            observed.acked.extend(batch.accepted.iter().copied());
            observed
                .rejected
                .extend(batch.rejected.iter().map(|(id, _)| *id));
        })),
        ..RunHooks::default()
    };
    let now_ms = camtrail_common::now_ms();
    let traffic = TrafficConfig {
        seed: 19,
        start_ms: now_ms - 3_600_000,
        span_ms: 3_600_000,
        vehicles: usize::MAX,
        ..TrafficConfig::default()
    };
    let loadgen = LoadgenConfig {
        target: ingest
            .iter()
            .map(|role| {
                let grpc = &role.env[0].1;
                format!("http://{grpc}")
            })
            .collect::<Vec<_>>()
            .join(","),
        throttle: Throttle::EventsPerSecond(RATE),
        max_events: Some((RATE * LOAD_SECONDS as f64) as u64),
        batch_size: 100,
        ack_timeout: Duration::from_secs(5),
        tokens: tokens
            .iter()
            .map(|t| (t.gateway_id.clone(), t.token.clone()))
            .collect(),
        give_up_after: Duration::from_secs(120),
        drain_timeout: Duration::from_secs(120),
        ..LoadgenConfig::default()
    };
    let city = Arc::new(city);
    let load_city = Arc::clone(&city);
    let load = tokio::spawn(async move {
        let events = Traffic::new(&load_city, traffic);
        camtrail_loadgen::run(loadgen, &load_city.registry, events, hooks).await
    });

    // Queries all along: a track (one shard) and a passes query (every shard), alternating
    // between the two query nodes, 5 a second.
    let samples: Arc<Mutex<Vec<Sample>>> = Arc::default();
    let stop_queries = tokio_util::sync::CancellationToken::new();
    let prober = {
        let (samples, stop, token, case) = (
            Arc::clone(&samples),
            stop_queries.clone(),
            token.clone(),
            case.clone(),
        );
        let camera = city.registry.cameras()[0].camera_id.clone();
        let query_addrs = query_addrs.clone();
        tokio::spawn(async move {
            let mut n = 0usize;
            let mut errors: BTreeMap<String, usize> = BTreeMap::new();
            while !stop.is_cancelled() {
                let now = camtrail_common::now_ms();
                let path = if n.is_multiple_of(2) {
                    format!(
                        "/v1/track?plate={}&from={}&to={}&case={case}&reason=fault%20test",
                        camtrail_query::client::encode("粤B12345"),
                        now - 3_600_000,
                        now + 60_000
                    )
                } else {
                    format!(
                        "/v1/passes?cameras={}&from={}&to={}&case={case}&reason=fault%20test\
                         &limit=50",
                        camtrail_query::client::encode(&camera),
                        now - 3_600_000,
                        now + 60_000
                    )
                };
                let started = Instant::now();
                let result = get(query_addrs[(n / 2) % 2], &path, &token).await;
                let ok = matches!(result, Ok((200, _)));
                if !ok {
                    let what = match result {
                        Ok((status, body)) => {
                            format!("{status} {}", body.chars().take(160).collect::<String>())
                        }
                        Err(error) => error,
                    };
                    *errors.entry(what).or_default() += 1;
                }
                samples.lock().expect("lock").push(Sample {
                    at: started,
                    ok,
                    latency: started.elapsed(),
                });
                n += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            errors
        })
    };

    // The faults, one at a time, after 10 s of steady load.
    let topic = format!("{run}.detections.v1");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut windows: Vec<(String, Instant)> = Vec::new();
    let leader = {
        let topic = topic.clone();
        tokio::task::spawn_blocking(move || busiest_leader(&topic))
            .await
            .expect("join")
    };
    let broker = format!("kafka-{leader}");
    windows.push((
        format!("Kafka broker {leader} (leads most partitions)"),
        Instant::now(),
    ));
    cluster(&["kill", &broker]).await;
    tokio::time::sleep(FAULT).await;
    cluster(&["start", &broker]).await;
    tokio::time::sleep(WINDOW - FAULT).await;

    windows.push(("ingest node 1".into(), Instant::now()));
    ingest[0].kill();
    tokio::time::sleep(FAULT).await;
    ingest[0].start(&config).await;
    tokio::time::sleep(WINDOW.saturating_sub(windows[1].1.elapsed())).await;

    windows.push(("sink 1".into(), Instant::now()));
    sinks[0].kill();
    tokio::time::sleep(FAULT).await;
    sinks[0].start(&config).await;
    tokio::time::sleep(WINDOW.saturating_sub(windows[2].1.elapsed())).await;

    windows.push(("ClickHouse replica ch-1-1".into(), Instant::now()));
    cluster(&["kill", "ch-1-1"]).await;
    tokio::time::sleep(FAULT).await;
    cluster(&["start", "ch-1-1"]).await;
    tokio::time::sleep(WINDOW.saturating_sub(windows[3].1.elapsed())).await;

    windows.push(("ZooKeeper".into(), Instant::now()));
    cluster(&["kill", "zookeeper"]).await;
    tokio::time::sleep(FAULT).await;
    cluster(&["start", "zookeeper"]).await;
    tokio::time::sleep(WINDOW.saturating_sub(windows[4].1.elapsed())).await;

    let report = load.await.expect("join").expect("load run");
    stop_queries.cancel();
    let errors = prober.await.expect("join prober");
    eprintln!("load under faults:\n{}", report.summary());
    assert_eq!(
        report.unacked, 0,
        "every batch acked in the end: {report:?}"
    );

    // Drained: the sinks committed everything.
    let audit_topic = format!("{run}.audit.v1");
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut left = lag(&format!("{run}-sink"), &[&topic, &audit_topic]);
    while left > 0 {
        assert!(
            Instant::now() < deadline,
            "the sinks still lag by {left} records after 2 minutes; see {}",
            logs.display()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
        left = lag(&format!("{run}-sink"), &[&topic, &audit_topic]);
    }

    // The sinks' inserts are on one replica of each shard; the check reads any: wait until
    // every replica has fetched what its shard holds.
    for url in CLICKHOUSE {
        let server = camtrail_clickhouse::ClickhouseConfig {
            url: url.into(),
            database: run.clone(),
            ..Default::default()
        };
        for table in ["detections_local", "detections_by_hour_local", "audit_log"] {
            server
                .client()
                .query(&format!("SYSTEM SYNC REPLICA {run}.{table}"))
                .execute()
                .await
                .unwrap_or_else(|e| panic!("SYSTEM SYNC REPLICA {table} on {url}: {e}"));
        }
    }

    // Every acked event stored, no rejected one.
    let (acked, rejected) = {
        let observed = observed.lock().expect("lock");
        (observed.acked.clone(), observed.rejected.clone())
    };
    let clickhouse = camtrail_clickhouse::ClickhouseConfig {
        url: CLICKHOUSE[1].into(),
        database: run.clone(),
        ..Default::default()
    };
    let stored = clickhouse_rows(
        &clickhouse,
        "SELECT hex(event_id), any(plate) FROM detections GROUP BY event_id",
    )
    .await;
    let mut plate_of: HashMap<[u8; 16], String> = HashMap::new();
    for line in stored.lines() {
        let (id, plate) = line.split_once('\t').expect("two columns");
        let id: [u8; 16] = hex::decode(id)
            .ok()
            .and_then(|b| b.try_into().ok())
            .expect("event id");
        plate_of.insert(id, plate.to_string());
    }
    let missing = acked
        .iter()
        .filter(|id| !plate_of.contains_key(*id))
        .count();
    let extra = plate_of.keys().filter(|id| !acked.contains(*id)).count();
    let stored_rejected = rejected
        .iter()
        .filter(|id| plate_of.contains_key(*id))
        .count();

    // Each appears once in query answers: the tracks of up to 40 plates, through both nodes.
    let mut by_plate: BTreeMap<&str, HashSet<[u8; 16]>> = BTreeMap::new();
    for (id, plate) in &plate_of {
        if !plate.is_empty() {
            by_plate.entry(plate.as_str()).or_default().insert(*id);
        }
    }
    let mut duplicates = 0usize;
    let mut not_answered = 0usize;
    let mut checked = 0usize;
    for (n, (plate, ids)) in by_plate.iter().step_by(by_plate.len() / 40 + 1).enumerate() {
        let now = camtrail_common::now_ms();
        let path = format!(
            "/v1/track?plate={}&from={}&to={}&case={case}&reason=fault%20test%20check",
            camtrail_query::client::encode(plate),
            now - 2 * 3_600_000,
            now + 60_000
        );
        let (status, body) = get(query_addrs[n % 2], &path, &token)
            .await
            .expect("track answer");
        assert_eq!(status, 200, "{body}");
        let answer: Value = serde_json::from_str(&body).expect("track JSON");
        let (mut shown, mut left_out) = (Vec::new(), Vec::new());
        collect_sightings(&answer, &mut shown, &mut left_out);
        let unique: HashSet<&String> = shown.iter().collect();
        duplicates += shown.len() - unique.len();
        let answered: HashSet<&String> = shown.iter().chain(&left_out).collect();
        for id in ids {
            if !answered.contains(&hex::encode(id)) {
                not_answered += 1;
            }
        }
        checked += ids.len();
    }

    // The audit chains (the query nodes' searches) verify.
    let verified = camtrail()
        .arg("--config")
        .arg(&config)
        .args(["audit", "verify"])
        .output()
        .expect("audit verify");

    // The table, per fault window.
    let samples = samples.lock().expect("lock").clone();
    let mut table = String::from(
        "| fault (kill -9, restarted after 10 s) | queries answered / sent | p99 (ms) | max (ms) |\n\
         |---|---|---|---|\n",
    );
    let first = windows[0].1;
    let steady: Vec<Sample> = samples.iter().filter(|s| s.at < first).copied().collect();
    let row = |name: &str, in_window: &[Sample]| {
        format!(
            "| {name} | {} / {} | {:.0} | {:.0} |\n",
            in_window.iter().filter(|s| s.ok).count(),
            in_window.len(),
            p99(in_window).as_secs_f64() * 1e3,
            in_window
                .iter()
                .map(|s| s.latency)
                .max()
                .unwrap_or_default()
                .as_secs_f64()
                * 1e3
        )
    };
    table.push_str(&row("none (the 10 s before the first)", &steady));
    for (name, start) in &windows {
        let in_window: Vec<Sample> = samples
            .iter()
            .filter(|s| s.at >= *start && s.at < *start + WINDOW)
            .copied()
            .collect();
        table.push_str(&row(name, &in_window));
    }
    let summary = format!(
        "{table}\nload: {} events offered, {} acked ({} resends), {} rejected, {} failovers; \
         stored: {} distinct events, {missing} acked not stored, {extra} stored not acked, \
         {stored_rejected} rejected stored; track answers for {checked} events of \
         {} plates: {duplicates} duplicates, {not_answered} missing; sink lag 0; \
         audit verify: {}\nquery errors: {errors:?}\n",
        report.offered,
        acked.len(),
        report.resends,
        rejected.len(),
        report.failovers,
        plate_of.len(),
        by_plate.len().min(40),
        if verified.status.success() {
            "ok"
        } else {
            "FAILED"
        },
    );
    eprintln!("{summary}");
    std::fs::File::create(out.join("faults.md"))
        .and_then(|mut f| f.write_all(summary.as_bytes()))
        .expect("write the table");

    for role in ingest.iter_mut().chain(&mut sinks).chain(&mut queries) {
        role.terminate();
    }
    assert_eq!(missing, 0, "acked events lost");
    assert_eq!(extra, 0, "stored events nobody acked");
    assert_eq!(stored_rejected, 0, "rejected events stored");
    assert_eq!(duplicates, 0, "an event twice in one answer");
    assert_eq!(
        not_answered, 0,
        "stored events missing from their plate's track"
    );
    assert!(checked > 0, "no plate checked");
    assert!(
        verified.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&verified.stdout),
        String::from_utf8_lossy(&verified.stderr)
    );
    // Queries kept answering: most of every window, all of the steady one.
    assert!(steady.iter().all(|s| s.ok), "queries failed with no fault");
    for (name, start) in &windows {
        let in_window: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.at >= *start && s.at < *start + WINDOW)
            .collect();
        let answered = in_window.iter().filter(|s| s.ok).count();
        assert!(!in_window.is_empty(), "{name}: no query was sent");
        assert!(
            answered * 2 >= in_window.len(),
            "{name}: only {answered} of {} queries answered",
            in_window.len()
        );
    }
}

/// The event ids of a track answer's sightings (and its second vehicle's), duplicates kept,
/// and those it lists as left out (merged into a burst, attributed to a look-alike, …).
fn collect_sightings(answer: &Value, shown: &mut Vec<String>, left_out: &mut Vec<String>) {
    let ids = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| s["event_id"].as_str().map(str::to_ascii_lowercase))
            .collect()
    };
    shown.extend(ids(&answer["sightings"]));
    left_out.extend(ids(&answer["dropped"]));
    if answer["second_vehicle"].is_object() {
        collect_sightings(&answer["second_vehicle"], shown, left_out);
    }
}
