//! Where accepted events go before a batch is acked: the transport/storage seam of the two
//! ways to run (DESIGN.md). The distributed mode produces to Kafka with `acks=all`
//! ([`KafkaPublisher`](crate::kafka::KafkaPublisher)); the embedded mode commits a SQLite
//! transaction (`camtrail_query::store::sqlite`). Either way `publish` returns `Ok` only
//! once every event of the batch is durable, and the ingest service acks only then.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use camtrail_model::Detection;

/// Why a batch could not be made durable. Nothing of the batch may be acked.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The publisher's queue stayed full: the node is saturated; the gateway retries later.
    #[error("publish queue full for {waited_ms} ms")]
    QueueFull {
        /// How long we waited for room.
        waited_ms: u64,
    },
    /// The batch is not durable (broker or database unavailable, timeout, ...).
    #[error("{0}")]
    Failed(String),
}

/// A boxed future borrowing the publisher.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), PublishError>> + Send + 'a>>;

/// Makes batches of validated events durable.
pub trait Publisher: Send + Sync + 'static {
    /// Short name for logs and errors (`kafka`, `sqlite`).
    fn backend(&self) -> &'static str;

    /// Make every event of `detections` durable; resolves once they all are.
    fn publish(&self, detections: Vec<Detection>) -> PublishFuture<'_>;

    /// Events accepted by the publisher and not yet durable (the queue-depth metric).
    fn in_flight(&self) -> i64;

    /// Wait until everything handed over is durable or `timeout` passes. Blocking: called
    /// from `spawn_blocking` at shutdown.
    fn flush(&self, timeout: Duration) -> Result<(), String>;
}

impl Publisher for crate::kafka::KafkaPublisher {
    fn backend(&self) -> &'static str {
        "kafka"
    }

    fn publish(&self, detections: Vec<Detection>) -> PublishFuture<'_> {
        Box::pin(async move {
            crate::kafka::KafkaPublisher::publish(self, &detections)
                .await
                .map_err(|error| match error {
                    crate::kafka::PublishError::QueueFull { waited_ms } => {
                        PublishError::QueueFull { waited_ms }
                    }
                    other => PublishError::Failed(format!("Kafka {other}")),
                })
        })
    }

    fn in_flight(&self) -> i64 {
        i64::from(crate::kafka::KafkaPublisher::in_flight(self))
    }

    fn flush(&self, timeout: Duration) -> Result<(), String> {
        crate::kafka::KafkaPublisher::flush(self, timeout).map_err(|error| error.to_string())
    }
}
