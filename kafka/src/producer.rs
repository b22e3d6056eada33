//! The ingest node's Kafka producer: idempotent, `acks=all`, LZ4, tuned batching.
//!
//! A gateway batch is acked only after every accepted event of it has been delivered
//! ([`KafkaPublisher::publish`] resolves after the last delivery report). A delivery failure
//! fails the whole batch; the gateway resends it and event ids make that harmless.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use camtrail_model::Detection;
use camtrail_storage::{PublishFuture, Publisher, StorageError};
use rdkafka::ClientConfig;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;

/// Producer tuning. Defaults favour throughput with bounded latency.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProducerConfig {
    /// How long librdkafka waits to fill a batch (`linger.ms`).
    pub linger_ms: u32,
    /// Maximum bytes in one partition batch (`batch.size`).
    pub batch_bytes: u32,
    /// `compression.type`: none, gzip, snappy, lz4, zstd.
    pub compression: String,
    /// Bound of the local queue, messages (`queue.buffering.max.messages`).
    pub queue_max_messages: u32,
    /// Bound of the local queue, KiB (`queue.buffering.max.kbytes`).
    pub queue_max_kbytes: u32,
    /// How long a record may wait for delivery before the batch fails (`message.timeout.ms`).
    pub delivery_timeout_ms: u32,
    /// How long `publish` waits for room in a full local queue before answering
    /// RESOURCE_EXHAUSTED.
    pub queue_full_wait_ms: u64,
}

impl Default for ProducerConfig {
    fn default() -> Self {
        Self {
            linger_ms: 5,
            batch_bytes: 1_000_000,
            compression: "lz4".into(),
            queue_max_messages: 500_000,
            queue_max_kbytes: 512 * 1024,
            delivery_timeout_ms: 30_000,
            queue_full_wait_ms: 2_000,
        }
    }
}

/// Why a batch could not be published.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The local producer queue stayed full: the node is saturated; retry later.
    #[error("producer queue full for {waited_ms} ms")]
    QueueFull {
        /// How long we waited for room.
        waited_ms: u64,
    },
    /// A record was not delivered (broker down, timeout, ...). Nothing of the batch may be
    /// considered durable.
    #[error("delivery failed: {0}")]
    Delivery(KafkaError),
}

/// The delivery reports of one batch: a count of records still unreported and the first
/// failure. One per batch, shared by its records as their delivery opaque, so a record
/// costs a reference count rather than a channel of its own (a `FutureProducer` allocates
/// a oneshot channel per record and wakes a task per report).
#[derive(Debug, Default)]
struct BatchDelivery {
    unreported: AtomicUsize,
    failure: Mutex<Option<KafkaError>>,
    reported: Notify,
}

impl BatchDelivery {
    fn report(&self, result: Result<(), KafkaError>) {
        if let Err(error) = result {
            self.failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .get_or_insert(error);
        }
        if self.unreported.fetch_sub(1, Ordering::AcqRel) == 1 {
            // `notify_one` keeps a permit when nobody waits yet, so the wake is not lost.
            self.reported.notify_one();
        }
    }
}

/// Routes each delivery report to its batch (called on the producer's polling thread).
struct DeliveryContext;

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = Arc<BatchDelivery>;

    fn delivery(&self, result: &DeliveryResult<'_>, batch: Arc<BatchDelivery>) {
        batch.report(
            result
                .as_ref()
                .map(|_| ())
                .map_err(|(error, _)| error.clone()),
        );
    }
}

/// Produces accepted detections to the detections topic.
pub struct KafkaPublisher {
    producer: ThreadedProducer<DeliveryContext>,
    topic: String,
    queue_full_wait: Duration,
}

impl KafkaPublisher {
    /// Create the producer. Does not contact the broker yet.
    pub fn new(brokers: &str, topic: &str, config: &ProducerConfig) -> Result<Self, KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            // Durability: every in-sync replica has the record before it counts as delivered,
            // and retries never reorder or duplicate within a partition.
            // https://github.com/confluentinc/librdkafka/blob/master/INTRODUCTION.md#idempotent-producer
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("compression.type", &config.compression)
            .set("linger.ms", config.linger_ms.to_string())
            .set("batch.size", config.batch_bytes.to_string())
            .set(
                "queue.buffering.max.messages",
                config.queue_max_messages.to_string(),
            )
            .set(
                "queue.buffering.max.kbytes",
                config.queue_max_kbytes.to_string(),
            )
            .set("message.timeout.ms", config.delivery_timeout_ms.to_string())
            .create_with_context(DeliveryContext)?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
            queue_full_wait: Duration::from_millis(config.queue_full_wait_ms),
        })
    }

    /// Produce every detection (keyed by camera id) and wait until all are delivered.
    pub async fn publish(&self, detections: &[Detection]) -> Result<(), PublishError> {
        if detections.is_empty() {
            return Ok(());
        }
        let batch = Arc::new(BatchDelivery {
            unreported: AtomicUsize::new(detections.len()),
            ..BatchDelivery::default()
        });
        let mut payload = Vec::new();
        for detection in detections {
            payload.clear();
            camtrail_proto::record::encode_into(detection, &mut payload);
            // On an error the records already queued still report to `batch`; nobody
            // waits for them, and the gateway resends the whole batch.
            self.enqueue(&detection.camera_id, &payload, &batch).await?;
        }
        batch.reported.notified().await;
        match batch
            .failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            Some(error) => Err(PublishError::Delivery(error)),
            None => Ok(()),
        }
    }

    /// Put one record in the local queue, waiting (bounded) while the queue is full.
    async fn enqueue(
        &self,
        key: &str,
        payload: &[u8],
        batch: &Arc<BatchDelivery>,
    ) -> Result<(), PublishError> {
        let started = Instant::now();
        let mut pause = Duration::from_millis(1);
        loop {
            let record = BaseRecord::with_opaque_to(&self.topic, Arc::clone(batch))
                .key(key)
                .payload(payload);
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), _)) => {
                    if started.elapsed() >= self.queue_full_wait {
                        return Err(PublishError::QueueFull {
                            waited_ms: started.elapsed().as_millis() as u64,
                        });
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err((error, _)) => return Err(PublishError::Delivery(error)),
            }
        }
    }

    /// Records queued locally or in flight to the broker (for the queue-depth metric).
    pub fn in_flight(&self) -> i32 {
        self.producer.in_flight_count()
    }

    /// Wait until every queued record is delivered or `timeout` passes. Blocking: call from
    /// `spawn_blocking` or at the very end of shutdown.
    pub fn flush(&self, timeout: Duration) -> Result<(), KafkaError> {
        self.producer.flush(timeout)
    }
}

impl From<PublishError> for StorageError {
    fn from(error: PublishError) -> Self {
        match error {
            PublishError::QueueFull { waited_ms } => StorageError::Overloaded {
                backend: "kafka",
                waited_ms,
            },
            other => StorageError::unavailable("kafka", other),
        }
    }
}

impl Publisher for KafkaPublisher {
    fn backend(&self) -> &'static str {
        "kafka"
    }

    fn publish(&self, detections: Vec<Detection>) -> PublishFuture<'_> {
        Box::pin(async move {
            KafkaPublisher::publish(self, &detections)
                .await
                .map_err(StorageError::from)
        })
    }

    fn in_flight(&self) -> i64 {
        i64::from(KafkaPublisher::in_flight(self))
    }

    fn flush(&self, timeout: Duration) -> Result<(), StorageError> {
        KafkaPublisher::flush(self, timeout)
            .map_err(|error| StorageError::unavailable("kafka", error))
    }
}
