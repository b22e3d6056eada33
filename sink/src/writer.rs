//! [`ClickhouseWriter`]: inserts a batch into `detections`, `snapshots` and `audit_log`,
//! retrying the same rows until ClickHouse takes them.
//!
//! Every attempt starts a fresh INSERT from the batch the sink keeps
//! ([`TableWriter`]). `insert_deduplication_token` only where the server knows it (22.2+):
//! ClickHouse 18.16 rejects settings it does not know. Retried inserts can store a row
//! twice; `detections` is a ReplacingMergeTree on `event_id` and reads dedup, so that is
//! harmless (ARCHITECTURE.md, Guarantees 3).

use std::time::{Duration, Instant};

use camtrail_clickhouse::writer::{TableWriter, classify};
use camtrail_common::Backoff;
use clickhouse::Client;
use clickhouse::error::Error as ClickhouseError;
use tokio_util::sync::CancellationToken;

use super::batch::Batch;
use super::metrics::{SinkMetrics, TableLabel};

/// The insert was given up because shutdown began while ClickHouse kept failing. Nothing of
/// the batch is committed, so its records are delivered again after a restart.
#[derive(Debug, Clone, thiserror::Error)]
#[error("insert abandoned at shutdown after {attempts} failed attempts: {last_error}")]
pub struct Abandoned {
    /// Failed attempts.
    pub attempts: u64,
    /// The last error.
    pub last_error: String,
}

/// Writes batches to ClickHouse.
pub struct ClickhouseWriter {
    tables: TableWriter,
    /// `None` until decided (from the config, or the server version on the first insert).
    deduplication_token: Option<bool>,
    backoff: Backoff,
    metrics: SinkMetrics,
}

impl ClickhouseWriter {
    /// A writer using `client` (bound to the camtrail database, validation off). With
    /// `deduplication_token`, inserts carry `insert_deduplication_token`; `None` decides by
    /// the server's version at the first insert (22.2 and later).
    pub fn new(
        client: Client,
        timeout: Duration,
        deduplication_token: Option<bool>,
        backoff: Backoff,
        metrics: SinkMetrics,
    ) -> Self {
        Self {
            tables: TableWriter::new(client, timeout),
            deduplication_token,
            backoff,
            metrics,
        }
    }

    /// Insert the batch's rows, retrying with capped exponential backoff until it succeeds.
    /// Never skips rows; gives up only when `shutdown` is cancelled and an attempt made
    /// after that also failed.
    pub async fn write(
        &mut self,
        batch: &Batch,
        shutdown: &CancellationToken,
    ) -> Result<(), Abandoned> {
        let mut attempts = 0u64;
        if self.deduplication_token.is_none() {
            self.deduplication_token = self.tables.server_supports_deduplication_token().await;
        }
        let mut done = TablesDone {
            detections: batch.detections.is_empty(),
            snapshots: batch.snapshots.is_empty(),
            audit: batch.audit.is_empty(),
        };
        self.backoff.reset();
        loop {
            let started = Instant::now();
            let result = self.try_write(batch, &mut done).await;
            let error = match result {
                Ok(()) => {
                    self.record_success(batch, started.elapsed());
                    return Ok(());
                }
                Err(error) => error,
            };
            attempts += 1;
            let class = classify(&error);
            if shutdown.is_cancelled() {
                return Err(Abandoned {
                    attempts,
                    last_error: error.to_string(),
                });
            }
            self.metrics.retry("insert", class);
            let pause = self.backoff.next_pause();
            tracing::warn!(
                %error, class, attempts, rows = batch.detections.len(),
                pause_ms = pause.as_millis() as u64, "ClickHouse insert failed; retrying"
            );
            tokio::select! {
                () = tokio::time::sleep(pause) => {}
                () = shutdown.cancelled() => {}
            }
        }
    }

    /// One attempt: each table not yet stored by an earlier attempt (detections, snapshots,
    /// audit_log, in that order), so a retry does not insert what already went in.
    async fn try_write(&self, batch: &Batch, done: &mut TablesDone) -> Result<(), ClickhouseError> {
        if !done.detections {
            let token = self.token(batch, "detections");
            self.tables
                .insert_rows("detections", &batch.detections, token)
                .await?;
            done.detections = true;
        }
        if !done.snapshots {
            let token = self.token(batch, "snapshots");
            self.tables
                .insert_rows("snapshots", &batch.snapshots, token)
                .await?;
            done.snapshots = true;
        }
        if !done.audit {
            let token = self.token(batch, "audit_log");
            self.tables
                .insert_rows("audit_log", &batch.audit, token)
                .await?;
            done.audit = true;
        }
        Ok(())
    }

    /// The batch's deduplication token for `table`, when enabled.
    fn token(&self, batch: &Batch, table: &str) -> Option<String> {
        self.deduplication_token
            .unwrap_or(false)
            .then(|| format!("camtrail-sink:{table}:{}", batch.offsets.token()))
    }

    fn record_success(&self, batch: &Batch, elapsed: Duration) {
        let metrics = &self.metrics;
        metrics
            .rows_inserted
            .get_or_create(&TableLabel {
                table: "detections",
            })
            .inc_by(batch.detections.len() as u64);
        metrics
            .rows_inserted
            .get_or_create(&TableLabel { table: "snapshots" })
            .inc_by(batch.snapshots.len() as u64);
        metrics
            .rows_inserted
            .get_or_create(&TableLabel { table: "audit_log" })
            .inc_by(batch.audit.len() as u64);
        metrics.batch_rows.observe(batch.detections.len() as f64);
        metrics.insert_seconds.observe(elapsed.as_secs_f64());
    }
}

/// Which tables of a batch are already stored (or have no rows).
struct TablesDone {
    detections: bool,
    snapshots: bool,
    audit: bool,
}
