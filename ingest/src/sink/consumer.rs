//! The sink loop: one dedicated thread polls the consumer, decodes records into the batch,
//! dead-letters undecodable ones, and inserts + commits each batch before it reads on.
//!
//! Why one thread: the rebalance callback runs inside `poll` on the polling thread, and it
//! must insert and commit what is buffered before partitions are revoked. Keeping the batch,
//! the [`ClickhouseWriter`] and a small current-thread tokio runtime (for the async
//! ClickHouse and dead-letter calls, driven with `block_on`) on that same thread makes the
//! callback a plain function call: no lock is ever contended, no batch can be in flight
//! elsewhere, and no offset can be committed out of order. While a batch is inserted (or
//! retried, ClickHouse down) nothing is polled, so memory stays bounded by one batch plus
//! librdkafka's prefetch queue (`queued.max.messages.kbytes`). The tokio runtime of the rest
//! of the process is never blocked.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, ClientContext, Message};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use super::batch::Batch;
use super::config::SinkConfig;
use super::dlq::{DeadLetter, DeadLetterProducer};
use super::metrics::SinkMetrics;
use super::writer::{Abandoned, ClickhouseWriter};

/// How often librdkafka reports statistics (the source of the lag metric), ms.
const STATISTICS_INTERVAL_MS: u32 = 5_000;

/// What one run of the sink did (also on `/metrics`; returned for tests and logs).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SinkReport {
    /// Detections inserted (duplicates from re-deliveries included).
    pub detections_inserted: u64,
    /// Thumbnails inserted.
    pub snapshots_inserted: u64,
    /// Audit records inserted.
    pub audit_inserted: u64,
    /// Records sent to the dead-letter topic.
    pub dead_letters: u64,
    /// Batches inserted.
    pub batches: u64,
}

/// Everything the polling thread owns, reachable from the rebalance callback.
pub(crate) struct SinkState {
    runtime: Runtime,
    writer: ClickhouseWriter,
    dead_letters: DeadLetterProducer,
    batch: Batch,
    metrics: SinkMetrics,
    shutdown: CancellationToken,
    report: SinkReport,
}

impl SinkState {
    /// State for a sink thread; `runtime` must be a current-thread runtime owned by it.
    pub(crate) fn new(
        runtime: Runtime,
        writer: ClickhouseWriter,
        dead_letters: DeadLetterProducer,
        metrics: SinkMetrics,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            runtime,
            writer,
            dead_letters,
            batch: Batch::default(),
            metrics,
            shutdown,
            report: SinkReport::default(),
        }
    }

    /// Insert the batch (retrying until it succeeds), then commit its offsets synchronously.
    /// On `Err` (shutdown while ClickHouse fails) the batch is dropped uncommitted: its
    /// records are delivered again to whoever owns the partitions next.
    fn flush(&mut self, consumer: &BaseConsumer<SinkContext>) -> Result<(), Abandoned> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let written = self
            .runtime
            .block_on(self.writer.write(&self.batch, &self.shutdown));
        if let Err(abandoned) = written {
            self.batch.clear();
            return Err(abandoned);
        }
        self.report.detections_inserted += self.batch.detections.len() as u64;
        self.report.snapshots_inserted += self.batch.snapshots.len() as u64;
        self.report.audit_inserted += self.batch.audit.len() as u64;
        self.report.batches += 1;
        self.metrics.batches.inc();
        self.commit(consumer);
        self.batch.clear();
        Ok(())
    }

    /// Commit the batch's offsets. A failure (group rebalanced meanwhile, broker gone) loses
    /// nothing: the rows are in ClickHouse, the records come again and collapse on event_id.
    fn commit(&self, consumer: &BaseConsumer<SinkContext>) {
        let result = self
            .batch
            .offsets
            .commit_list()
            .and_then(|list| consumer.commit(&list, CommitMode::Sync));
        if let Err(error) = result {
            self.metrics.commit_failures.inc();
            tracing::warn!(%error, "offset commit failed; these records will be re-delivered");
        }
    }

    /// Add one record to the batch (a detection, or an audit record when it comes from
    /// `audit_topic`), dead-lettering it if it does not decode.
    fn take(&mut self, message: &BorrowedMessage<'_>, audit_topic: &str) -> Result<(), Abandoned> {
        let payload = message.payload().unwrap_or_default();
        let (topic, partition, offset) = (message.topic(), message.partition(), message.offset());
        let decoded = if payload.is_empty() {
            Err("empty record".to_string())
        } else if topic == audit_topic {
            camtrail_proto::record::decode_audit(payload)
                .map(|record| self.batch.push_audit(record, topic, partition, offset))
                .map_err(|e| e.to_string())
        } else {
            camtrail_proto::record::decode(payload)
                .map(|detection| self.batch.push(detection, topic, partition, offset))
                .map_err(|e| e.to_string())
        };
        match decoded {
            Ok(()) => {}
            Err(error) => {
                let letter = DeadLetter {
                    key: message.key(),
                    payload,
                    error: &error,
                    topic,
                    partition,
                    offset,
                };
                self.runtime
                    .block_on(self.dead_letters.send(letter, &self.shutdown))?;
                self.report.dead_letters += 1;
                self.batch.mark_done(topic, partition, offset);
            }
        }
        Ok(())
    }
}

/// Consumer context: flushes the batch when partitions are revoked.
pub(crate) struct SinkContext {
    state: Mutex<SinkState>,
    metrics: SinkMetrics,
}

impl SinkContext {
    pub(crate) fn new(state: SinkState) -> Self {
        Self {
            metrics: state.metrics.clone(),
            state: Mutex::new(state),
        }
    }

    /// The state. Only the polling thread locks it (the loop between polls, the callback
    /// inside them), so the lock is never contended; a poisoned lock means a panic already
    /// ends the thread, so its data is still usable for that.
    fn state(&self) -> MutexGuard<'_, SinkState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ClientContext for SinkContext {
    /// librdkafka's statistics (every `STATISTICS_INTERVAL_MS`): per-partition lag.
    fn stats(&self, statistics: rdkafka::Statistics) {
        self.metrics.update_lag(&statistics);
    }
}

impl ConsumerContext for SinkContext {
    /// Runs inside `poll` before a revoke takes effect (eager protocol: every partition is
    /// revoked), so inserting and committing the whole batch here is exactly "finish the
    /// in-flight batch before the partitions go". Blocks the polling thread while doing it,
    /// which is what we want: nothing else may happen meanwhile.
    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        match rebalance {
            Rebalance::Revoke(partitions) => {
                tracing::info!(
                    partitions = partitions.count(),
                    "partitions revoked; flushing"
                );
                if let Err(abandoned) = self.state().flush(consumer) {
                    tracing::warn!(%abandoned, "batch dropped uncommitted at revoke");
                }
            }
            Rebalance::Assign(partitions) => {
                tracing::info!(partitions = partitions.count(), "partitions assigned");
            }
            Rebalance::Error(error) => tracing::warn!(%error, "rebalance error"),
        }
    }
}

/// Create the group member. See `kafka::KafkaConfig` for the connection settings.
pub(crate) fn create_consumer(
    brokers: &str,
    config: &SinkConfig,
    context: SinkContext,
) -> Result<BaseConsumer<SinkContext>, rdkafka::error::KafkaError> {
    ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", &config.group_id)
        // Offsets move only through our explicit commit after the insert.
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        // Never load records of aborted producer transactions.
        .set("isolation.level", "read_committed")
        .set("enable.partition.eof", "false")
        // Feeds the consumer-lag gauges (ClientContext::stats); served from `poll`.
        .set("statistics.interval.ms", STATISTICS_INTERVAL_MS.to_string())
        .create_with_context(context)
}

/// Poll until `shutdown`, batching and flushing; then flush and commit what is left.
pub(crate) fn run_loop(
    consumer: &BaseConsumer<SinkContext>,
    config: &SinkConfig,
    audit_topic: &str,
    shutdown: &CancellationToken,
) -> SinkReport {
    let max_age = Duration::from_millis(config.max_batch_age_ms);
    let poll_timeout = Duration::from_millis(100).min(max_age);
    while !shutdown.is_cancelled() {
        let polled = consumer.poll(poll_timeout);
        let mut state = consumer.context().state();
        match polled {
            None => {}
            // Broker unreachable and the like: librdkafka reconnects by itself; we keep
            // polling (and still flush by age below).
            Some(Err(error)) => tracing::warn!(%error, "Kafka consumer error"),
            Some(Ok(message)) => {
                if let Err(abandoned) = state.take(&message, audit_topic) {
                    tracing::warn!(%abandoned, "dead-letter produce abandoned at shutdown");
                    break;
                }
            }
        }
        if state
            .batch
            .is_due(config.max_batch_rows, config.max_batch_bytes, max_age)
            && let Err(abandoned) = state.flush(consumer)
        {
            tracing::warn!(%abandoned, "batch dropped uncommitted at shutdown");
            break;
        }
    }
    let mut state = consumer.context().state();
    if let Err(abandoned) = state.flush(consumer) {
        tracing::warn!(%abandoned, "last batch dropped uncommitted at shutdown");
    }
    state.report
}
