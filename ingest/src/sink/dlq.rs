//! The dead-letter topic: records the sink cannot decode are copied there, with why and
//! where they came from in headers, before their offset may be committed (DESIGN.md,
//! Guarantees 2: never dropped).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use tokio_util::sync::CancellationToken;

use super::config::Backoff;
use super::metrics::SinkMetrics;
use super::writer::Abandoned;

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

/// Produces to the dead-letter topic with `acks=all` and the idempotent producer.
pub struct DeadLetterProducer {
    producer: FutureProducer,
    topic: String,
    backoff: Backoff,
    metrics: SinkMetrics,
}

impl DeadLetterProducer {
    /// Create the producer. Does not contact the broker yet.
    pub fn new(
        brokers: &str,
        topic: &str,
        backoff: Backoff,
        metrics: SinkMetrics,
    ) -> Result<Self, KafkaError> {
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
            backoff,
            metrics,
        })
    }

    /// Produce `letter` and wait for the broker's ack, retrying with capped backoff until it
    /// is acked. Gives up only when `shutdown` is cancelled and an attempt after that failed.
    pub async fn send(
        &mut self,
        letter: DeadLetter<'_>,
        shutdown: &CancellationToken,
    ) -> Result<(), Abandoned> {
        let partition = letter.partition.to_string();
        let offset = letter.offset.to_string();
        let headers = OwnedHeaders::new()
            .insert(header("error", letter.error))
            .insert(header("source_topic", letter.topic))
            .insert(header("source_partition", &partition))
            .insert(header("source_offset", &offset));
        let mut attempts = 0u64;
        self.backoff.reset();
        loop {
            let mut record = FutureRecord::to(&self.topic)
                .payload(letter.payload)
                .headers(headers.clone());
            if let Some(key) = letter.key {
                record = record.key(key);
            }
            let error = match self.producer.send(record, Timeout::Never).await {
                Ok(_) => {
                    self.metrics.dead_letter_records.inc();
                    tracing::warn!(
                        topic = letter.topic,
                        partition = letter.partition,
                        offset = letter.offset,
                        error = letter.error,
                        "undecodable record sent to the dead-letter topic"
                    );
                    return Ok(());
                }
                Err((error, _message)) => error,
            };
            attempts += 1;
            if shutdown.is_cancelled() {
                return Err(Abandoned {
                    attempts,
                    last_error: error.to_string(),
                });
            }
            self.metrics.retry("dead_letter", "transient");
            let pause = self.backoff.next_pause();
            tracing::warn!(%error, attempts, "dead-letter produce failed; retrying");
            sleep_or_shutdown(pause, shutdown).await;
        }
    }
}

fn header<'a>(key: &'a str, value: &'a str) -> Header<'a, &'a str> {
    Header {
        key,
        value: Some(value),
    }
}

async fn sleep_or_shutdown(pause: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(pause) => {}
        () = shutdown.cancelled() => {}
    }
}
