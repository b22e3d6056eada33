//! The dead-letter topic: records the sink cannot decode are copied there, with why and
//! where they came from in headers, before their offset may be committed (ARCHITECTURE.md,
//! Guarantees 2: never dropped).

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

/// Where an undecodable record came from and why it failed.
#[derive(Debug, Clone, Copy)]
pub struct DeadLetter<'a> {
    /// The record's key, if any.
    pub key: Option<&'a [u8]>,
    /// The record's value as read (may be empty).
    pub payload: &'a [u8],
    /// Why it could not be decoded.
    pub error: &'a str,
    /// Source topic.
    pub topic: &'a str,
    /// Source partition.
    pub partition: i32,
    /// Source offset.
    pub offset: i64,
}

/// Produces to the dead-letter topic with `acks=all` and the idempotent producer. One call
/// is one attempt; the caller (the sink) retries with its backoff until it is acked.
pub struct DeadLetterProducer {
    producer: FutureProducer,
    topic: String,
}

impl DeadLetterProducer {
    /// Create the producer. Does not contact the broker yet.
    pub fn new(brokers: &str, topic: &str) -> Result<Self, KafkaError> {
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
        })
    }

    /// Produce `letter` (with why and where it came from in the headers `error`,
    /// `source_topic`, `source_partition`, `source_offset`) and wait for the broker's ack.
    pub async fn send(&self, letter: DeadLetter<'_>) -> Result<(), KafkaError> {
        let partition = letter.partition.to_string();
        let offset = letter.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(header("error", letter.error))
            .insert(header("source_topic", letter.topic))
            .insert(header("source_partition", &partition))
            .insert(header("source_offset", &offset));
        let mut record = FutureRecord::to(&self.topic)
            .payload(letter.payload)
            .headers(headers);
        if let Some(key) = letter.key {
            record = record.key(key);
        }
        self.producer
            .send(record, Timeout::Never)
            .await
            .map(|_| ())
            .map_err(|(error, _message)| error)
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}
