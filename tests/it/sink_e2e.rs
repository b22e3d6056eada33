//! `camtrail sink` as a process, under faults, against the real Kafka broker and real
//! ClickHouse servers: `kill -9` mid-stream then restart, and ClickHouse stopped for ten
//! seconds mid-run. Both must end with every event exactly once in query results and the
//! group's lag back at zero. Every wait is bounded.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camtrail_clickhouse::{ClickhouseConfig, migrate};
use camtrail_kafka::{KafkaConfig, ensure_topics};
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};

const WAIT: Duration = Duration::from_secs(120);
/// Subjects the generated events are spread over.
const SUBJECTS: u64 = 50;

use camtrail_testkit::free_port;

fn detection(n: u64) -> Detection {
    let mut id = [0u8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[15] = 0xE2;
    Detection {
        event_id: EventId(id),
        camera_id: format!("4403000000131{:07}", n % 997),
        captured_at_ms: 1_764_158_400_000 + (n as i64) * 37,
        object_class: ObjectClass::Vehicle,
        plate: format!("粤B{:05}", n % SUBJECTS),
        plate_confidence: 0.9,
        subject_key: format!("粤B{:05}", n % SUBJECTS),
        attributes: VehicleAttributes {
            color: 1,
            kind: 1,
            ..VehicleAttributes::default()
        },
        plate_char_confidence: Vec::new(),
        bbox: [1, 2, 3, 4],
        thumbnail_jpeg: None,
        gateway_id: "gw-001".into(),
        received_at_ms: 1_764_158_400_500 + (n as i64) * 37,
    }
}

/// Produce events `range` to the detections topic (keyed by camera, like the ingest node).
async fn produce(kafka: &KafkaConfig, range: std::ops::Range<u64>) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .set("linger.ms", "20")
        .set("compression.type", "lz4")
        .create()
        .expect("producer");
    let mut pending = Vec::with_capacity(10_000);
    for n in range {
        let detection = detection(n);
        let value = camtrail_proto::record::encode(&detection);
        let record = FutureRecord::to(&kafka.detections_topic)
            .key(&detection.camera_id)
            .payload(&value);
        let delivery = producer
            .send_result(record)
            .map_err(|(error, _)| error)
            .expect("enqueue");
        pending.push(delivery);
        if pending.len() == 10_000 {
            for delivery in pending.drain(..) {
                delivery.await.expect("delivery").expect("delivered");
            }
        }
    }
    for delivery in pending {
        delivery.await.expect("delivery").expect("delivered");
    }
}

/// Per-test topics and database, and the env of a sink process.
struct Setup {
    kafka: KafkaConfig,
    clickhouse: ClickhouseConfig,
    group: String,
    http_port: u16,
    log: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl Setup {
    async fn new(test: &str, clickhouse: ClickhouseConfig) -> Self {
        let brokers = camtrail_testkit::require_kafka();
        let prefix = camtrail_testkit::unique_name(test);
        let kafka = KafkaConfig {
            brokers,
            detections_topic: format!("{prefix}.detections.v1"),
            dead_letter_topic: format!("{prefix}.dlq.v1"),
            audit_topic: format!("{prefix}.audit.v1"),
            alerts_topic: format!("{prefix}.alerts.v1"),
            detections_partitions: 4,
            ..KafkaConfig::default()
        };
        ensure_topics(&kafka, Duration::from_secs(30))
            .await
            .expect("topics");
        migrate(&clickhouse, 1).await.expect("migrate");
        let dir = tempfile::tempdir().expect("tempdir");
        Self {
            log: dir.path().join("sink.log"),
            group: format!("{prefix}.sink"),
            http_port: free_port(),
            kafka,
            clickhouse,
            _dir: dir,
        }
    }

    fn spawn_sink(&self) -> Child {
        self.spawn_sink_with(&[])
    }

    /// A sink with `extra` settings in its environment besides the test's.
    fn spawn_sink_with(&self, extra: &[(&str, &str)]) -> Child {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log");
        let kafka = &self.kafka;
        Command::new(env!("CARGO_BIN_EXE_camtrail"))
            .arg("sink")
            .env("CAMTRAIL_KAFKA__BROKERS", &kafka.brokers)
            .env("CAMTRAIL_KAFKA__DETECTIONS_TOPIC", &kafka.detections_topic)
            .env(
                "CAMTRAIL_KAFKA__DEAD_LETTER_TOPIC",
                &kafka.dead_letter_topic,
            )
            .env("CAMTRAIL_KAFKA__AUDIT_TOPIC", &kafka.audit_topic)
            .env("CAMTRAIL_CLICKHOUSE__URL", &self.clickhouse.url)
            .env("CAMTRAIL_CLICKHOUSE__DATABASE", &self.clickhouse.database)
            .env("CAMTRAIL_SINK__GROUP_ID", &self.group)
            .env("CAMTRAIL_SINK__MAX_BATCH_ROWS", "5000")
            .env("CAMTRAIL_SINK__MAX_BATCH_AGE_MS", "200")
            .env("CAMTRAIL_SINK__RETRY_INITIAL_BACKOFF_MS", "100")
            .env("CAMTRAIL_SINK__RETRY_MAX_BACKOFF_MS", "1000")
            .env("CAMTRAIL_SINK__INSERT_TIMEOUT_MS", "5000")
            .env(
                "CAMTRAIL_SINK__HTTP_ADDR",
                format!("127.0.0.1:{}", self.http_port),
            )
            .env("RUST_LOG", "info")
            .envs(extra.iter().copied())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn camtrail sink")
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    async fn lag(&self) -> i64 {
        let (brokers, group) = (self.kafka.brokers.clone(), self.group.clone());
        let topics = [
            self.kafka.detections_topic.clone(),
            self.kafka.audit_topic.clone(),
        ];
        tokio::task::spawn_blocking(move || {
            let topics: Vec<&str> = topics.iter().map(String::as_str).collect();
            camtrail_testkit::group_lag(&brokers, &group, &topics)
        })
        .await
        .expect("lag")
    }

    /// Wait until the group has committed every record.
    async fn wait_caught_up(&self) {
        let deadline = Instant::now() + WAIT;
        loop {
            let lag = self.lag().await;
            if lag == 0 {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sink still {lag} records behind; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Wait until at least `rows` detections are stored (duplicates included).
    async fn wait_rows(&self, rows: u64) {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(stored) = self.stored_rows().await
                && stored >= rows
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "fewer than {rows} rows stored in time; log:\n{}",
                self.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn stored_rows(&self) -> Result<u64, clickhouse::error::Error> {
        self.clickhouse
            .client()
            .query("SELECT count() FROM detections")
            .fetch_one()
            .await
    }

    /// The sink's consumer-lag gauges, summed (they refresh every 5 s).
    async fn metrics_lag(&self) -> Option<i64> {
        let addr = format!("127.0.0.1:{}", self.http_port)
            .parse()
            .expect("addr");
        let text = camtrail_testkit::http_get(addr, "/metrics").await;
        let lines: Vec<&str> = text
            .lines()
            .filter(|line| line.starts_with("camtrail_sink_consumer_lag{"))
            .collect();
        if lines.is_empty() {
            return None;
        }
        Some(
            lines
                .iter()
                .filter_map(|line| line.rsplit(' ').next()?.parse::<i64>().ok())
                .sum(),
        )
    }

    /// Wait until the sink's own lag metric reads zero.
    async fn wait_metrics_lag_zero(&self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if self.metrics_lag().await == Some(0) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "the sink's consumer_lag metric did not return to 0"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every event of `0..events` is in query results exactly once: the deduplicated read
    /// has exactly `events` rows, all distinct and all ours; a per-subject track query
    /// returns each of that subject's events once.
    async fn assert_exactly_once(&self, events: u64) {
        let db = self.clickhouse.client();
        let (distinct, ours): (u64, u64) = db
            .query(
                "SELECT uniqExact(event_id), \
                 countIf(reinterpretAsUInt64(reverse(substring(event_id, 1, 8))) < ?) \
                 FROM (SELECT event_id FROM detections LIMIT 1 BY event_id)",
            )
            .bind(events)
            .fetch_one()
            .await
            .expect("distinct");
        assert_eq!(distinct, events, "missing or extra events");
        assert_eq!(ours, events, "events that were never produced");
        let subject = "粤B00007";
        let track: Vec<i64> = db
            .query(
                "SELECT captured_at_ms FROM detections WHERE subject_key = ? \
                 ORDER BY captured_at_ms LIMIT 1 BY event_id",
            )
            .bind(subject)
            .fetch_all()
            .await
            .expect("track");
        let expected = (0..events).filter(|n| n % SUBJECTS == 7).count();
        assert_eq!(track.len(), expected, "the track repeats or misses events");
        assert!(track.windows(2).all(|w| w[0] < w[1]), "track not in order");
    }
}

fn kill_9(child: &mut Child) {
    child.kill().expect("kill -9");
    child.wait().expect("reap");
}

fn terminate(child: &mut Child, setup: &Setup) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success());
    let exit = child.wait().expect("wait");
    assert!(
        exit.success(),
        "sink exited with {exit}:\n{}",
        setup.log_text()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_mid_stream_then_restart_stores_every_event_exactly_once() {
    let clickhouse = camtrail_testkit::clickhouse("sink_kill9").await;
    let setup = Setup::new("sink_kill9", clickhouse).await;
    let events = 120_000;
    produce(&setup.kafka, 0..events).await;

    let mut sink = setup.spawn_sink();
    setup.wait_rows(events / 4).await;
    kill_9(&mut sink);
    let lag_after_kill = setup.lag().await;
    assert!(
        lag_after_kill > 0,
        "the sink finished before it was killed; nothing was tested"
    );

    let mut sink = setup.spawn_sink();
    setup.wait_caught_up().await;
    setup.wait_metrics_lag_zero().await;
    terminate(&mut sink, &setup);
    setup.assert_exactly_once(events).await;
    camtrail_testkit::drop_database(&setup.clickhouse).await;
}

/// Seconds from the `kill -9` of a sink, and from its restart, to the restarted sink's first
/// rows of records produced while it was down (`static_id`: its `group.instance.id`).
async fn resume_after_kill_9(test: &str, static_id: Option<&str>) -> (f64, f64) {
    let clickhouse = camtrail_testkit::clickhouse(test).await;
    let setup = Setup::new(test, clickhouse).await;
    let mut env = vec![("CAMTRAIL_SINK__SESSION_TIMEOUT_MS", "15000")];
    if let Some(id) = static_id {
        env.push(("CAMTRAIL_SINK__INSTANCE_ID", id));
    }
    let wave = 20_000;
    produce(&setup.kafka, 0..wave).await;
    let mut sink = setup.spawn_sink_with(&env);
    setup.wait_rows(wave).await;
    kill_9(&mut sink);
    let killed = Instant::now();
    produce(&setup.kafka, wave..2 * wave).await;
    let restarted = Instant::now();
    let mut sink = setup.spawn_sink_with(&env);
    setup.wait_rows(wave + 1).await;
    let resumed = (
        killed.elapsed().as_secs_f64(),
        restarted.elapsed().as_secs_f64(),
    );
    setup.wait_caught_up().await;
    kill_9(&mut sink);
    setup.assert_exactly_once(2 * wave).await;
    camtrail_testkit::drop_database(&setup.clickhouse).await;
    resumed
}

/// Static group membership (issue 19): a sink restarted after `kill -9` under its
/// `instance_id` gets its partitions back at once; a dynamic member waits for the group to
/// give up on its dead predecessor (the session timeout, 15 s here; 45 s by default).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_static_member_resumes_within_seconds_of_a_kill_9() {
    let (_, fixed) = resume_after_kill_9("sink_static", Some("sink-1")).await;
    let (stalled, dynamic) = resume_after_kill_9("sink_dynamic", None).await;
    eprintln!(
        "resumed after a restart: static member {fixed:.1} s, dynamic {dynamic:.1} s \
         ({stalled:.1} s after its kill)"
    );
    assert!(
        fixed < 8.0,
        "a static member took {fixed:.1} s to resume (dynamic: {dynamic:.1} s)"
    );
    // The group drops a dead dynamic member once its session (15 s from its last
    // heartbeat, sent at most 3 s before the kill) expires.
    assert!(
        stalled > 10.0,
        "the dynamic control resumed {stalled:.1} s after its kill: the comparison measured nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clickhouse_stopped_for_ten_seconds_mid_run_loses_and_repeats_nothing() {
    // A server of this test's own: stopping the shared one would break parallel tests.
    let mut server = camtrail_testkit::PrivateClickhouse::start().await;
    let setup = Setup::new("sink_chstop", server.config("camtrail_fault")).await;
    let per_wave = 40_000;
    produce(&setup.kafka, 0..per_wave).await;
    let mut sink = setup.spawn_sink();
    setup.wait_rows(per_wave / 4).await;

    server.stop();
    let stopped = Instant::now();
    // Records keep arriving while ClickHouse is down; the sink must hold, not skip.
    produce(&setup.kafka, per_wave..2 * per_wave).await;
    let remaining = Duration::from_secs(10).saturating_sub(stopped.elapsed());
    tokio::time::sleep(remaining).await;
    assert!(
        setup.lag().await > 0,
        "nothing was pending while ClickHouse was down"
    );
    assert!(
        sink.try_wait().expect("try_wait").is_none(),
        "the sink exited while ClickHouse was down:\n{}",
        setup.log_text()
    );
    server.resume().await;
    produce(&setup.kafka, 2 * per_wave..3 * per_wave).await;

    setup.wait_caught_up().await;
    setup.wait_metrics_lag_zero().await;
    let addr = format!("127.0.0.1:{}", setup.http_port)
        .parse()
        .expect("addr");
    let metrics = camtrail_testkit::http_get(addr, "/metrics").await;
    assert!(
        metrics.contains("camtrail_sink_retries_total{operation=\"insert\""),
        "no insert retries counted while ClickHouse was down:\n{metrics}"
    );
    terminate(&mut sink, &setup);
    assert!(
        setup
            .log_text()
            .contains("ClickHouse insert failed; retrying"),
        "{}",
        setup.log_text()
    );
    setup.assert_exactly_once(3 * per_wave).await;
    drop(server);
}
