//! Where accepted events go before a batch is acked: the transport/storage seam of the two
//! ways to run (ARCHITECTURE.md). The distributed mode produces to Kafka with `acks=all`
//! (`camtrail-kafka`); the embedded mode commits a SQLite transaction (`camtrail-sqlite`).
//! Either way `publish` returns `Ok` only once every event of the batch is durable, and
//! the ingest service acks only then.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use camtrail_model::Detection;

use crate::StorageError;

/// A boxed future borrowing the publisher.
pub type PublishFuture<'a> = Pin<Box<dyn Future<Output = Result<(), StorageError>> + Send + 'a>>;

/// Makes batches of validated events durable.
pub trait Publisher: Send + Sync + 'static {
    /// Short name for logs and errors (`kafka`, `sqlite`).
    fn backend(&self) -> &'static str;

    /// Make every event of `detections` durable; resolves once they all are. An error
    /// means none of the batch may be acked ([`StorageError::Overloaded`] when the node is
    /// saturated, else the batch is simply not durable).
    fn publish(&self, detections: Vec<Detection>) -> PublishFuture<'_>;

    /// Events accepted by the publisher and not yet durable (the queue-depth metric).
    fn in_flight(&self) -> i64;

    /// Wait until everything handed over is durable or `timeout` passes. Blocking: called
    /// from `spawn_blocking` at shutdown.
    fn flush(&self, timeout: Duration) -> Result<(), StorageError>;
}
