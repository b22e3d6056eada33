//! The sink loop: one dedicated thread polls the consumer, decodes records into the batch,
//! dead-letters undecodable ones, hands full batches to the insert pipeline and commits each
//! batch's offsets when the pipeline hands it back inserted.
//!
//! Why one polling thread: the rebalance callback runs inside `poll` on the polling thread,
//! and it must get everything buffered inserted and committed before partitions are revoked.
//! Keeping the batch, the [`InsertPipeline`] handle and a small current-thread tokio runtime
//! (for the dead-letter producer, driven with `block_on`) on that same thread makes the
//! callback a plain function call: no lock is ever contended and every commit is made by
//! this thread, in batch order. Inserting happens on the pipeline's own thread, overlapping
//! with reading the next batch. When the pipeline is full (ClickHouse slow or down) the
//! partitions are paused and polling goes on without reading, so memory stays bounded by
//! three batches plus librdkafka's prefetch queue (`queued.max.messages.kbytes`) and the
//! group does not evict the member. The tokio runtime of the rest of the process is never
//! blocked.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::BorrowedMessage;
use rdkafka::{ClientConfig, ClientContext, Message};
use tokio::runtime::Runtime;
use tokio_util::sync::CancellationToken;

use super::batch::Batch;
use super::config::SinkConfig;
use super::dlq::DeadLetters;
use super::metrics::SinkMetrics;
use super::pipeline::{Completed, InsertPipeline};
use super::writer::Abandoned;
use camtrail_kafka::DeadLetter;

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
    pipeline: InsertPipeline,
    dead_letters: DeadLetters,
    batch: Batch,
    /// Emptied batches back from the pipeline, reused for their allocations.
    spare: Vec<Batch>,
    /// Whether the assigned partitions are paused (pipeline full).
    paused: bool,
    metrics: SinkMetrics,
    shutdown: CancellationToken,
    report: SinkReport,
}

impl SinkState {
    /// State for a sink thread; `runtime` must be a current-thread runtime owned by it.
    pub(crate) fn new(
        runtime: Runtime,
        pipeline: InsertPipeline,
        dead_letters: DeadLetters,
        metrics: SinkMetrics,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            runtime,
            pipeline,
            dead_letters,
            batch: Batch::default(),
            spare: Vec::new(),
            paused: false,
            metrics,
            shutdown,
            report: SinkReport::default(),
        }
    }

    /// A fresh batch to fill (a recycled one when there is one).
    fn take_batch(&mut self) -> Batch {
        let next = self.spare.pop().unwrap_or_default();
        std::mem::replace(&mut self.batch, next)
    }

    /// Hand the filling batch to the pipeline if it has room. Returns whether it did.
    fn try_hand_off(&mut self) -> bool {
        let batch = self.take_batch();
        match self.pipeline.try_send(batch) {
            Ok(()) => true,
            Err(batch) => {
                let recycled = std::mem::replace(&mut self.batch, batch);
                self.spare.push(recycled);
                false
            }
        }
    }

    /// Commit the offsets of every batch the pipeline has handed back, waiting up to `wait`
    /// for the first. `Err` when a batch was abandoned (shutdown while ClickHouse fails).
    fn collect(
        &mut self,
        consumer: &BaseConsumer<SinkContext>,
        wait: Duration,
    ) -> Result<(), Abandoned> {
        let mut wait = wait;
        while let Some(completed) = self.pipeline.next_completed(wait) {
            self.complete(consumer, completed)?;
            wait = Duration::ZERO;
        }
        Ok(())
    }

    /// Everything filled or in flight inserted and committed, in order: what a revoke and a
    /// shutdown need. On `Err` (shutdown while ClickHouse fails) nothing after the abandoned
    /// batch is committed: those records are delivered again to whoever owns them next.
    fn drain(&mut self, consumer: &BaseConsumer<SinkContext>) -> Result<(), Abandoned> {
        if !self.batch.is_empty() {
            let batch = self.take_batch();
            self.pipeline.send(batch)?;
        }
        let mut result = Ok(());
        while self.pipeline.in_flight() > 0 {
            if let Some(completed) = self.pipeline.next_completed(Duration::from_millis(100))
                && result.is_ok()
            {
                result = self.complete(consumer, completed);
            }
        }
        result
    }

    /// One batch back from the pipeline: count it and commit its offsets, or report it
    /// abandoned.
    fn complete(
        &mut self,
        consumer: &BaseConsumer<SinkContext>,
        (mut batch, result): Completed,
    ) -> Result<(), Abandoned> {
        result?;
        self.report.detections_inserted += batch.detections.len() as u64;
        self.report.snapshots_inserted += batch.snapshots.len() as u64;
        self.report.audit_inserted += batch.audit.len() as u64;
        self.report.batches += 1;
        self.metrics.batches.inc();
        self.commit(consumer, &batch);
        batch.clear();
        self.spare.push(batch);
        Ok(())
    }

    /// Commit a batch's offsets. A failure (group rebalanced meanwhile, broker gone) loses
    /// nothing: the rows are in ClickHouse, the records come again and collapse on event_id.
    fn commit(&self, consumer: &BaseConsumer<SinkContext>, batch: &Batch) {
        let result = batch
            .offsets
            .commit_list()
            .and_then(|list| consumer.commit(&list, CommitMode::Sync));
        if let Err(error) = result {
            self.metrics.commit_failures.inc();
            tracing::warn!(%error, "offset commit failed; these records will be re-delivered");
        }
    }

    /// Pause or resume every assigned partition.
    fn set_paused(&mut self, consumer: &BaseConsumer<SinkContext>, paused: bool) {
        if self.paused == paused {
            return;
        }
        let result = consumer.assignment().and_then(|assignment| {
            if paused {
                consumer.pause(&assignment)
            } else {
                consumer.resume(&assignment)
            }
        });
        match result {
            Ok(()) => self.paused = paused,
            Err(error) => tracing::warn!(%error, paused, "pausing/resuming partitions failed"),
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
                let mut state = self.state();
                if let Err(abandoned) = state.drain(consumer) {
                    tracing::warn!(%abandoned, "batches dropped uncommitted at revoke");
                }
                // A revoke ends the pause: the next assignment starts fetching afresh.
                state.paused = false;
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
    let mut client = ClientConfig::new();
    if let Some(id) = &config.instance_id {
        client.set("group.instance.id", id);
    }
    client
        .set("bootstrap.servers", brokers)
        .set("group.id", &config.group_id)
        .set("session.timeout.ms", config.session_timeout_ms.to_string())
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

/// Poll until `shutdown`, batching and handing batches to the pipeline; then insert and
/// commit what is left.
/// Records taken from librdkafka's queue between two rounds of the loop's checks.
const READY_RECORDS_PER_ROUND: usize = 256;

/// Take up to [`READY_RECORDS_PER_ROUND`] records librdkafka already holds (no waiting),
/// stopping when the batch is full.
fn take_ready(
    consumer: &BaseConsumer<SinkContext>,
    config: &SinkConfig,
    audit_topic: &str,
) -> Result<(), Abandoned> {
    for _ in 0..READY_RECORDS_PER_ROUND {
        if consumer
            .context()
            .state()
            .batch
            .is_full(config.max_batch_rows, config.max_batch_bytes)
        {
            return Ok(());
        }
        // The lock is not held across `poll`: the rebalance callback takes it.
        match consumer.poll(Duration::ZERO) {
            None => return Ok(()),
            Some(Err(error)) => {
                tracing::warn!(%error, "Kafka consumer error");
                return Ok(());
            }
            Some(Ok(message)) => consumer.context().state().take(&message, audit_topic)?,
        }
    }
    Ok(())
}

/// How a run of [`run_loop`] ended.
pub(crate) enum LoopEnd {
    /// Shutdown (or a batch abandoned at shutdown).
    Stopped,
    /// librdkafka reported a fatal error: this consumer can do nothing more (e.g. a static
    /// member fenced after the group coordinator moved to another broker). What was read
    /// and not committed is delivered again to whoever gets the partitions next.
    Fatal(String),
}

pub(crate) fn run_loop(
    consumer: &BaseConsumer<SinkContext>,
    config: &SinkConfig,
    audit_topic: &str,
    shutdown: &CancellationToken,
) -> (SinkReport, LoopEnd) {
    let mut end = LoopEnd::Stopped;
    let max_age = Duration::from_millis(config.max_batch_age_ms);
    let poll_timeout = Duration::from_millis(100).min(max_age);
    while !shutdown.is_cancelled() {
        // Asked every round, not only where an error is seen: librdkafka reports a fatal
        // error once, and `take_ready` may be the poll that swallows it.
        if let Some((_, fatal)) = consumer.client().fatal_error() {
            end = LoopEnd::Fatal(fatal);
            break;
        }
        let paused = {
            let mut state = consumer.context().state();
            // While paused there is nothing to read: wait for the pipeline instead.
            let wait = if state.paused {
                poll_timeout
            } else {
                Duration::ZERO
            };
            if let Err(abandoned) = state.collect(consumer, wait) {
                tracing::warn!(%abandoned, "batch dropped uncommitted at shutdown");
                break;
            }
            if !state.batch.is_empty()
                && state
                    .batch
                    .is_due(config.max_batch_rows, config.max_batch_bytes, max_age)
            {
                let handed_off = state.try_hand_off();
                state.set_paused(consumer, !handed_off);
            } else if state.paused {
                state.set_paused(consumer, false);
            }
            state.paused
        };
        // The lock is not held across `poll`: the rebalance callback takes it.
        let polled = consumer.poll(if paused { Duration::ZERO } else { poll_timeout });
        let mut state = consumer.context().state();
        match polled {
            None => {}
            // Broker unreachable and the like: librdkafka reconnects by itself; we keep
            // polling (and still hand off by age above); a fatal error ends the loop at the
            // top of the next round.
            Some(Err(error)) => tracing::warn!(%error, "Kafka consumer error"),
            Some(Ok(message)) => {
                if let Err(abandoned) = state.take(&message, audit_topic) {
                    tracing::warn!(%abandoned, "dead-letter produce abandoned at shutdown");
                    break;
                }
                // Take what librdkafka already holds, up to the batch's size limits, before
                // the checks above (which read the clock) run again: they cost more than
                // taking a record.
                drop(state);
                if let Err(abandoned) = take_ready(consumer, config, audit_topic) {
                    tracing::warn!(%abandoned, "dead-letter produce abandoned at shutdown");
                    break;
                }
            }
        }
    }
    let mut state = consumer.context().state();
    if let Err(abandoned) = state.drain(consumer) {
        tracing::warn!(%abandoned, "last batches dropped uncommitted at shutdown");
    }
    (state.report, end)
}
