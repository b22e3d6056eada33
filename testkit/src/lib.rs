//! Integration-test support. Tests talk to the real services that
//! `deploy/local/services.sh up` starts (the README's test command does that):
//!
//! - [`clickhouse`] gives each test its own freshly created database;
//! - [`kafka_brokers`] and [`unique_name`] give each test its own topics and groups;
//!
//! - [`PrivateClickhouse`] starts a server of the test's own for tests that stop it;
//!
//! so tests run in parallel and never see each other's data. A service that cannot be
//! reached fails the test with a message naming the service and the command that starts it;
//! it never silently skips.

mod private_clickhouse;

use std::time::Duration;

pub use private_clickhouse::PrivateClickhouse;

use camtrail_clickhouse::ClickhouseConfig;
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

const START_HINT: &str = "start it with `deploy/local/services.sh up` (or run the whole suite \
    with `deploy/local/test.sh`)";

/// A local TCP port free right now (bound, then released): for a process a test starts.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .map(|addr| addr.port())
        .expect("a free local port")
}

/// A name unique to this test run: `{prefix}_{12 hex digits}`. Valid as a ClickHouse
/// database name and as a Kafka topic or group name.
pub fn unique_name(prefix: &str) -> String {
    let random = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &random[..12])
}

/// Kafka bootstrap servers: `CAMTRAIL_KAFKA__BROKERS`, default `127.0.0.1:9092`.
pub fn kafka_brokers() -> String {
    std::env::var("CAMTRAIL_KAFKA__BROKERS").unwrap_or_else(|_| "127.0.0.1:9092".into())
}

/// ClickHouse HTTP URL: `CAMTRAIL_CLICKHOUSE__URL`, default `http://127.0.0.1:8123`.
pub fn clickhouse_url() -> String {
    std::env::var("CAMTRAIL_CLICKHOUSE__URL").unwrap_or_else(|_| "http://127.0.0.1:8123".into())
}

/// A ClickHouse config pointing at a new, empty database named after `test_name`.
/// Panics (failing the test) when ClickHouse cannot be reached.
pub async fn clickhouse(test_name: &str) -> ClickhouseConfig {
    let config = ClickhouseConfig {
        url: clickhouse_url(),
        database: unique_name(&format!("t_{test_name}")),
        ..ClickhouseConfig::default()
    };
    let ping = config.server_client().query("SELECT 1").fetch_one::<u8>();
    match tokio::time::timeout(Duration::from_secs(10), ping).await {
        Ok(Ok(1)) => {}
        Ok(Ok(other)) => panic!(
            "ClickHouse at {} answered SELECT 1 with {other}",
            config.url
        ),
        Ok(Err(error)) => panic!(
            "ClickHouse is not reachable at {} ({error}); {START_HINT}",
            config.url
        ),
        Err(_) => panic!(
            "ClickHouse at {} did not answer within 10 s; {START_HINT}",
            config.url
        ),
    }
    config
}

/// Fail the test unless a Kafka broker answers a metadata request within 10 s.
pub fn require_kafka() -> String {
    let brokers = kafka_brokers();
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &brokers)
        .create()
        .unwrap_or_else(|e| panic!("cannot create a Kafka client for {brokers}: {e}"));
    if let Err(error) = consumer.fetch_metadata(None, Duration::from_secs(10)) {
        panic!("Kafka is not reachable at {brokers} ({error}); {START_HINT}");
    }
    brokers
}

/// Read every record of `topic` (all `partitions`) from the beginning, decoding each as a
/// `StoredDetection`, until at least `expected` arrived or `timeout` passed; records already
/// in the topic beyond `expected` are returned too. Panics on an undecodable record.
pub fn read_detections(
    brokers: &str,
    topic: &str,
    partitions: i32,
    expected: usize,
    timeout: Duration,
) -> Vec<camtrail_model::Detection> {
    use rdkafka::{Message, Offset, TopicPartitionList};

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", unique_name("reader"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("create Kafka consumer");
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions {
        assignment
            .add_partition_offset(topic, partition, Offset::Beginning)
            .expect("partition offset");
    }
    consumer.assign(&assignment).expect("assign partitions");
    let decode = |message: rdkafka::message::BorrowedMessage<'_>| {
        let payload = message.payload().expect("record has a payload");
        camtrail_proto::record::decode(payload).expect("decode StoredDetection")
    };
    let deadline = std::time::Instant::now() + timeout;
    let mut records = Vec::new();
    while records.len() < expected && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            records.push(decode(message.expect("Kafka message")));
        }
    }
    while let Some(Ok(message)) = consumer.poll(Duration::from_millis(500)) {
        records.push(decode(message));
    }
    records
}

/// Drop a database made by [`clickhouse`] at the end of a test. ClickHouse 18.16 sometimes
/// refuses while a background merge still holds a part of a table being dropped; that is
/// retried a few times, then left as a warning (the name is unique, nothing else reads it).
pub async fn drop_database(config: &ClickhouseConfig) {
    let sql = format!("DROP DATABASE IF EXISTS {}", config.database);
    let mut last_error = None;
    for _ in 0..10 {
        match config.server_client().query(&sql).execute().await {
            Ok(()) => return,
            Err(error) => last_error = Some(error),
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    eprintln!(
        "warning: could not drop test database {}: {last_error:?}",
        config.database
    );
}

/// `GET path` over HTTP/1.0 from a node's HTTP port; the whole response, headers included.
/// Panics (failing the test) when nothing answers.
pub async fn http_get(addr: std::net::SocketAddr, path: &str) -> String {
    try_http_get(addr, path)
        .await
        .unwrap_or_else(|error| panic!("GET {path} from {addr}: {error}"))
}

/// Like [`http_get`], but a port that is closed or hangs up is an error, not a panic.
pub async fn try_http_get(addr: std::net::SocketAddr, path: &str) -> std::io::Result<String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    Ok(response)
}

/// Records of `topics` (every partition) that consumer group `group_id` has not committed.
/// Blocking (librdkafka calls); run it with `spawn_blocking` from async tests.
pub fn group_lag(brokers: &str, group_id: &str, topics: &[&str]) -> i64 {
    use rdkafka::{Offset, TopicPartitionList};

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", group_id)
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(10);
    let mut list = TopicPartitionList::new();
    for topic in topics {
        let metadata = consumer
            .fetch_metadata(Some(topic), timeout)
            .expect("metadata");
        for partition in metadata.topics()[0].partitions() {
            list.add_partition(topic, partition.id());
        }
    }
    let committed = consumer
        .committed_offsets(list, timeout)
        .expect("committed offsets");
    let mut lag = 0;
    for element in committed.elements() {
        let (_, high) = consumer
            .fetch_watermarks(element.topic(), element.partition(), timeout)
            .expect("watermarks");
        let done = match element.offset() {
            Offset::Offset(offset) => offset,
            _ => 0,
        };
        lag += high - done;
    }
    lag
}
