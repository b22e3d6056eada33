//! `camtrail sink` against the real Kafka broker and ClickHouse server: per-test topics,
//! consumer group and database; every wait is bounded.

use std::time::{Duration, Instant};

use camtrail_clickhouse::{ClickhouseConfig, migrate};
use camtrail_kafka::{KafkaConfig, ensure_topics};
use camtrail_model::audit::{AuditChain, AuditEntry, AuditRecord};
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};
use camtrail_proto::v1;
use camtrail_sink::{SinkConfig, SinkNode, SinkReport};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Headers;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::ingest::support::{self, TestNode};

const WAIT: Duration = Duration::from_secs(60);

/// A sink running in this process.
struct RunningSink {
    http: std::net::SocketAddr,
    stop: oneshot::Sender<()>,
    task: JoinHandle<anyhow::Result<SinkReport>>,
}

impl RunningSink {
    async fn start(config: SinkConfig, kafka: &KafkaConfig, clickhouse: &ClickhouseConfig) -> Self {
        let node = SinkNode::bind(config, kafka, clickhouse)
            .await
            .expect("bind sink");
        let http = node.http_addr().expect("http addr");
        let (stop, stop_rx) = oneshot::channel();
        let task = tokio::spawn(node.run_until_stopped(async move {
            let _ = stop_rx.await;
        }));
        Self { http, stop, task }
    }

    /// The `/metrics` text.
    async fn metrics(&self) -> String {
        camtrail_testkit::http_get(self.http, "/metrics").await
    }

    async fn stop(self) -> SinkReport {
        let _ = self.stop.send(());
        tokio::time::timeout(WAIT, self.task)
            .await
            .expect("sink stops in time")
            .expect("join")
            .expect("sink ran cleanly")
    }
}

fn sink_config(group_id: &str) -> SinkConfig {
    SinkConfig {
        group_id: group_id.into(),
        max_batch_age_ms: 200,
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        retry_initial_backoff_ms: 50,
        retry_max_backoff_ms: 500,
        ..SinkConfig::default()
    }
}

async fn database(test: &str) -> ClickhouseConfig {
    let config = camtrail_testkit::clickhouse(test).await;
    migrate(&config, 1).await.expect("migrate");
    config
}

/// Records of the detections and audit topics the group has not committed yet.
fn group_lag(kafka: &KafkaConfig, group_id: &str) -> i64 {
    camtrail_testkit::group_lag(
        &kafka.brokers,
        group_id,
        &[&kafka.detections_topic, &kafka.audit_topic],
    )
}

/// Wait until the group has committed everything in the topic.
async fn wait_caught_up(kafka: &KafkaConfig, group_id: &str) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (kafka_copy, group) = (kafka.clone(), group_id.to_string());
        let lag = tokio::task::spawn_blocking(move || group_lag(&kafka_copy, &group))
            .await
            .expect("lag");
        if lag == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "sink still {lag} records behind");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn detection(n: u8, thumbnail: bool) -> Detection {
    Detection {
        event_id: EventId([n; 16]),
        camera_id: support::CAMERA_A.into(),
        captured_at_ms: 1_764_158_400_000 + i64::from(n) * 1_000,
        object_class: ObjectClass::Vehicle,
        plate: "粤B·54321".into(),
        plate_confidence: 0.8,
        subject_key: "粤B54321".into(),
        attributes: VehicleAttributes {
            color: 1,
            kind: 2,
            ..VehicleAttributes::default()
        },
        plate_char_confidence: Vec::new(),
        bbox: [10, 20, 30, 40],
        thumbnail_jpeg: thumbnail.then(|| vec![0xFF, 0xD8, n, 0xFF, 0xD9]),
        gateway_id: support::GATEWAY_A.into(),
        received_at_ms: 1_764_158_400_500 + i64::from(n) * 1_000,
    }
}

/// Produce raw record values to partition 0 of the detections topic, in order.
async fn produce(kafka: &KafkaConfig, values: &[Vec<u8>]) {
    produce_to(kafka, |_| 0, values).await;
}

/// Produce raw record values in order, the i-th to partition `partition_of(i)`.
async fn produce_to(kafka: &KafkaConfig, partition_of: impl Fn(usize) -> i32, values: &[Vec<u8>]) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("enable.idempotence", "true")
        .set("acks", "all")
        .create()
        .expect("producer");
    for (index, value) in values.iter().enumerate() {
        let record = FutureRecord::<str, _>::to(&kafka.detections_topic)
            .partition(partition_of(index))
            .key(support::CAMERA_A)
            .payload(value);
        producer
            .send(record, Timeout::After(Duration::from_secs(10)))
            .await
            .expect("produce");
    }
}

async fn topics(test: &str) -> KafkaConfig {
    let kafka = support::kafka_config(test);
    ensure_topics(&kafka, Duration::from_secs(30))
        .await
        .expect("topics");
    kafka
}

#[tokio::test]
async fn ingested_events_reach_clickhouse_once_per_event_id_even_when_resent() {
    let node = TestNode::start("sink_ingest").await;
    let mut client = node.client().await;
    let events: Vec<v1::DetectionEvent> = (1..=10)
        .map(|i| support::event(i, support::CAMERA_A))
        .collect();
    // The gateway resends the same batch (its ack was lost): 20 records, 10 events.
    for batch_seq in [1, 2] {
        let ack = client
            .publish_batch(node.authed(v1::EventBatch {
                gateway_id: support::GATEWAY_A.into(),
                batch_seq,
                events: events.clone(),
            }))
            .await
            .expect("publish")
            .into_inner();
        assert_eq!(ack.accepted, 10);
    }
    let clickhouse = database("sink_ingest").await;
    let group = camtrail_testkit::unique_name("sink");
    let sink = RunningSink::start(sink_config(&group), &node.kafka, &clickhouse).await;
    wait_caught_up(&node.kafka, &group).await;
    let report = sink.stop().await;
    assert_eq!(report.detections_inserted, 20, "{report:?}");

    let db = clickhouse.client();
    let distinct: u64 = db
        .query("SELECT uniqExact(event_id) FROM detections")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(distinct, 10);
    // A track read: one subject's sightings, deduplicated by event_id.
    let track: Vec<String> = db
        .query(
            "SELECT hex(event_id) FROM detections WHERE subject_key = ? \
             ORDER BY captured_at_ms, event_id LIMIT 1 BY event_id",
        )
        .bind("粤S12345")
        .fetch_all()
        .await
        .expect("track");
    let mut unique = track.clone();
    unique.dedup();
    assert_eq!(track.len(), 10, "{track:?}");
    assert_eq!(unique, track, "each event once");
    node.stop().await;
    camtrail_testkit::drop_database(&clickhouse).await;
}

#[tokio::test]
async fn a_poison_record_goes_to_the_dead_letter_topic_and_the_rest_is_inserted() {
    let kafka = topics("sink_poison").await;
    let clickhouse = database("sink_poison").await;
    let poison = vec![0xFF, 0x00, 0x13, 0x37, 0xDE, 0xAD, 0xBE, 0xEF];
    let mut values: Vec<Vec<u8>> = (1..=3)
        .map(|n| camtrail_proto::record::encode(&detection(n, n == 2)))
        .collect();
    values.push(poison.clone());
    values.extend((4..=6).map(|n| camtrail_proto::record::encode(&detection(n, false))));
    produce(&kafka, &values).await;

    let group = camtrail_testkit::unique_name("sink");
    let sink = RunningSink::start(sink_config(&group), &kafka, &clickhouse).await;
    wait_caught_up(&kafka, &group).await;
    let report = sink.stop().await;
    assert_eq!(report.dead_letters, 1, "{report:?}");
    assert_eq!(report.detections_inserted, 6, "{report:?}");
    assert_eq!(report.snapshots_inserted, 1, "{report:?}");

    let db = clickhouse.client();
    let distinct: u64 = db
        .query("SELECT uniqExact(event_id) FROM detections")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(distinct, 6);
    let jpeg: Vec<String> = db
        .query("SELECT hex(jpeg) FROM snapshots WHERE hex(event_id) = ?")
        .bind(hex_id(2))
        .fetch_all()
        .await
        .expect("snapshots");
    assert_eq!(jpeg, vec!["FFD802FFD9".to_string()]);

    let kafka_copy = kafka.clone();
    let letters = tokio::task::spawn_blocking(move || read_dead_letters(&kafka_copy, 1))
        .await
        .expect("read");
    assert_eq!(letters.len(), 1);
    let (payload, headers) = &letters[0];
    assert_eq!(payload, &poison);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
            .unwrap_or_else(|| panic!("header {name} missing: {headers:?}"))
    };
    assert!(!header("error").is_empty());
    assert_eq!(header("source_topic"), kafka.detections_topic);
    assert_eq!(header("source_partition"), "0");
    assert_eq!(header("source_offset"), "3");
    camtrail_testkit::drop_database(&clickhouse).await;
}

#[tokio::test]
async fn audit_records_are_loaded_into_audit_log_once_each_and_their_chain_verifies() {
    let kafka = topics("sink_audit").await;
    let clickhouse = database("sink_audit").await;
    let mut chain = AuditChain::new("query-test");
    let records: Vec<AuditRecord> = (1..=4)
        .map(|n| {
            let record = chain.seal(AuditEntry {
                at_ms: 1_764_158_400_000 + n,
                user: "alice".into(),
                role: "investigator".into(),
                case_id: "CASE-7".into(),
                reason: "it's a \"quoted\" reason".into(),
                kind: "track".into(),
                parameters_json: r#"{"plate":"粤B54321"}"#.into(),
                result_count: n as u64,
                client_addr: "127.0.0.1:40000".into(),
            });
            chain.commit(&record);
            record
        })
        .collect();
    let mut values: Vec<Vec<u8>> = records
        .iter()
        .map(camtrail_proto::record::encode_audit)
        .collect();
    values.push(values[1].clone()); // delivered twice
    values.push(b"not an audit record".to_vec());
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("acks", "all")
        .create()
        .expect("producer");
    for value in &values {
        let record = FutureRecord::<str, _>::to(&kafka.audit_topic)
            .key("query-test")
            .payload(value);
        producer
            .send(record, Timeout::After(Duration::from_secs(10)))
            .await
            .expect("produce");
    }

    let group = camtrail_testkit::unique_name("sink");
    let sink = RunningSink::start(sink_config(&group), &kafka, &clickhouse).await;
    wait_caught_up(&kafka, &group).await;
    let report = sink.stop().await;
    assert_eq!(report.audit_inserted, 5, "{report:?}");
    assert_eq!(report.dead_letters, 1, "{report:?}");

    #[derive(clickhouse::Row, serde::Deserialize)]
    struct Stored {
        seq: u64,
        reason: String,
        hash: String,
    }
    let stored: Vec<Stored> = clickhouse
        .client()
        .query(
            "SELECT seq, reason, hash FROM audit_log WHERE node_id = ? \
             ORDER BY seq LIMIT 1 BY node_id, seq",
        )
        .bind("query-test")
        .fetch_all()
        .await
        .expect("audit rows");
    assert_eq!(stored.len(), 4);
    for (stored, record) in stored.iter().zip(&records) {
        assert_eq!(stored.seq, record.seq);
        assert_eq!(stored.reason, record.entry.reason);
        assert_eq!(stored.hash, record.hash);
    }
    assert_eq!(camtrail_model::audit::verify_chain(&records), Ok(4));
    camtrail_testkit::drop_database(&clickhouse).await;
}

fn hex_id(n: u8) -> String {
    format!("{n:02X}").repeat(16)
}

/// A dead-letter record: payload and headers (name, value).
type DeadLetterRecord = (Vec<u8>, Vec<(String, String)>);

/// Read the dead-letter topic from the beginning.
fn read_dead_letters(kafka: &KafkaConfig, expected: usize) -> Vec<DeadLetterRecord> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        .set("group.id", camtrail_testkit::unique_name("dlq_reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&kafka.dead_letter_topic, 0, Offset::Beginning)
        .expect("offset");
    consumer.assign(&assignment).expect("assign");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut letters = Vec::new();
    while letters.len() < expected && Instant::now() < deadline {
        let Some(message) = consumer.poll(Duration::from_millis(200)) else {
            continue;
        };
        let message = message.expect("message");
        let mut headers = Vec::new();
        if let Some(list) = message.headers() {
            for header in list.iter() {
                let value = String::from_utf8_lossy(header.value.unwrap_or_default());
                headers.push((header.key.to_string(), value.into_owned()));
            }
        }
        letters.push((message.payload().unwrap_or_default().to_vec(), headers));
    }
    letters
}

#[tokio::test]
async fn committed_offsets_reach_the_end_and_a_restart_inserts_only_new_records() {
    let kafka = topics("sink_offsets").await;
    let clickhouse = database("sink_offsets").await;
    let first: Vec<Vec<u8>> = (1..=5)
        .map(|n| camtrail_proto::record::encode(&detection(n, false)))
        .collect();
    produce(&kafka, &first).await;
    let group = camtrail_testkit::unique_name("sink");
    let sink = RunningSink::start(sink_config(&group), &kafka, &clickhouse).await;
    wait_caught_up(&kafka, &group).await;
    assert_eq!(sink.stop().await.detections_inserted, 5);
    let (kafka_copy, group_copy) = (kafka.clone(), group.clone());
    let lag = tokio::task::spawn_blocking(move || group_lag(&kafka_copy, &group_copy))
        .await
        .expect("lag");
    assert_eq!(lag, 0, "committed offsets equal the end offsets after stop");

    let second: Vec<Vec<u8>> = (6..=7)
        .map(|n| camtrail_proto::record::encode(&detection(n, false)))
        .collect();
    produce(&kafka, &second).await;
    let sink = RunningSink::start(sink_config(&group), &kafka, &clickhouse).await;
    wait_caught_up(&kafka, &group).await;
    let report = sink.stop().await;
    assert_eq!(
        report.detections_inserted, 2,
        "only the new records: {report:?}"
    );
    let rows: u64 = clickhouse
        .client()
        .query("SELECT count() FROM detections")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(rows, 7);
    camtrail_testkit::drop_database(&clickhouse).await;
}

#[tokio::test]
async fn failed_inserts_are_retried_with_the_same_rows_and_nothing_is_committed_meanwhile() {
    let kafka = topics("sink_retry").await;
    // The database does not exist yet: every insert fails until it is migrated.
    let clickhouse = camtrail_testkit::clickhouse("sink_retry").await;
    let values: Vec<Vec<u8>> = (1..=4)
        .map(|n| camtrail_proto::record::encode(&detection(n, n == 1)))
        .collect();
    produce(&kafka, &values).await;
    let group = camtrail_testkit::unique_name("sink");
    let sink = RunningSink::start(sink_config(&group), &kafka, &clickhouse).await;

    let deadline = Instant::now() + WAIT;
    while !sink
        .metrics()
        .await
        .contains("camtrail_sink_retries_total{")
    {
        assert!(Instant::now() < deadline, "no insert retry seen");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (kafka_copy, group_copy) = (kafka.clone(), group.clone());
    let lag = tokio::task::spawn_blocking(move || group_lag(&kafka_copy, &group_copy))
        .await
        .expect("lag");
    assert_eq!(
        lag, 4,
        "nothing may be committed before the insert succeeded"
    );

    migrate(&clickhouse, 1).await.expect("migrate");
    wait_caught_up(&kafka, &group).await;
    let text = sink.metrics().await;
    assert!(
        text.contains("camtrail_sink_rows_inserted_total{table=\"detections\"} 4"),
        "{text}"
    );
    let report = sink.stop().await;
    assert_eq!(report.detections_inserted, 4, "{report:?}");
    assert_eq!(report.snapshots_inserted, 1, "{report:?}");
    let rows: u64 = clickhouse
        .client()
        .query("SELECT uniqExact(event_id) FROM detections")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(rows, 4);
    camtrail_testkit::drop_database(&clickhouse).await;
}

#[tokio::test]
async fn a_rebalance_inserts_and_commits_the_buffered_batch_before_partitions_move() {
    let kafka = topics("sink_rebalance").await;
    let clickhouse = database("sink_rebalance").await;
    let values: Vec<Vec<u8>> = (1..=9)
        .map(|n| camtrail_proto::record::encode(&detection(n, false)))
        .collect();
    produce_to(&kafka, |index| index as i32 % 3, &values).await;
    // Batches that only a revoke (or shutdown) flushes within this test's time.
    let patient = |group: &str| SinkConfig {
        max_batch_age_ms: 120_000,
        ..sink_config(group)
    };
    let group = camtrail_testkit::unique_name("sink");
    let first = RunningSink::start(patient(&group), &kafka, &clickhouse).await;
    // Let the first member join the new group (the broker delays the first join ~3 s) and
    // buffer every record.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let second = RunningSink::start(patient(&group), &kafka, &clickhouse).await;
    // The second member's join revokes the first one's partitions: its batch must be
    // inserted and committed then, long before any batch age expires.
    wait_caught_up(&kafka, &group).await;
    let rows: u64 = clickhouse
        .client()
        .query("SELECT uniqExact(event_id) FROM detections")
        .fetch_one()
        .await
        .expect("count");
    assert_eq!(rows, 9, "committed offsets never outrun the inserted rows");
    let first_report = first.stop().await;
    let second_report = second.stop().await;
    assert_eq!(first_report.detections_inserted, 9, "{first_report:?}");
    assert_eq!(second_report.detections_inserted, 0, "{second_report:?}");
    camtrail_testkit::drop_database(&clickhouse).await;
}
