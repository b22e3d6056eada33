//! [`ClickhouseWriter`]: inserts a batch into `detections`, `snapshots` and `audit_log`, retrying the
//! same rows until ClickHouse takes them.
//!
//! The crate's `Insert` drops its buffer when it fails, so every attempt starts a fresh
//! INSERT from the batch the sink keeps. Rows go as RowBinary with the crate's default LZ4
//! compression; `insert_deduplication_token` only where the server knows it (22.2+):
//! ClickHouse 18.16 rejects settings it does not know. Retried inserts can store a row
//! twice; `detections` is a ReplacingMergeTree on `event_id` and reads dedup, so that is
//! harmless (DESIGN.md, Guarantees 3).

use std::time::{Duration, Instant};

use clickhouse::error::Error as ClickhouseError;
use clickhouse::{Client, RowOwned, RowWrite};
use tokio_util::sync::CancellationToken;

use super::batch::Batch;
use super::config::Backoff;
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
    client: Client,
    timeout: Duration,
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
            client,
            timeout,
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
            self.deduplication_token = self.server_supports_deduplication_token().await;
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
            self.insert_rows("detections", &batch.detections, token)
                .await?;
            done.detections = true;
        }
        if !done.snapshots {
            let token = self.token(batch, "snapshots");
            self.insert_rows("snapshots", &batch.snapshots, token)
                .await?;
            done.snapshots = true;
        }
        if !done.audit {
            let token = self.token(batch, "audit_log");
            self.insert_rows("audit_log", &batch.audit, token).await?;
            done.audit = true;
        }
        Ok(())
    }

    /// One RowBinary insert of `rows` into `table`; `rows` stays ours, so a failed attempt
    /// can be repeated with the same rows.
    async fn insert_rows<T: RowOwned + RowWrite>(
        &self,
        table: &str,
        rows: &[T],
        token: Option<String>,
    ) -> Result<(), ClickhouseError> {
        let mut insert = self
            .client
            .insert::<T>(table)
            .await?
            .with_timeouts(Some(self.timeout), Some(self.timeout));
        if let Some(token) = token {
            insert = insert.with_setting("insert_deduplication_token", token);
        }
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }

    /// Whether the server takes `insert_deduplication_token` (ClickHouse 22.2+); `None` when
    /// it cannot be asked now (asked again before the next batch).
    async fn server_supports_deduplication_token(&self) -> Option<bool> {
        let version: String = self
            .client
            .query("SELECT version()")
            .fetch_one()
            .await
            .ok()?;
        let supported = supports_deduplication_token(&version);
        tracing::info!(%version, supported, "ClickHouse insert_deduplication_token support");
        Some(supported)
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

/// Whether a server of `version` (e.g. `18.16.1`, `24.8.4.13`) knows the setting
/// `insert_deduplication_token` (added in 22.2).
fn supports_deduplication_token(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (22, 2)
}

/// Which tables of a batch are already stored (or have no rows).
struct TablesDone {
    detections: bool,
    snapshots: bool,
    audit: bool,
}

/// `transient` for failures that go away by themselves (network, timeouts, server errors
/// such as too many parts or memory limits), `permanent` for requests the server will keep
/// rejecting until someone changes the schema or the code. Both are retried: skipping would
/// lose data; the class tells the operator whether to wait or to act.
fn classify(error: &ClickhouseError) -> &'static str {
    match error {
        ClickhouseError::Network(_) | ClickhouseError::TimedOut => "transient",
        ClickhouseError::BadResponse(message) if is_transient_server_error(message) => "transient",
        _ => "permanent",
    }
}

/// Server error codes that clear up on their own: TOO_MANY_PARTS (252), MEMORY_LIMIT_EXCEEDED
/// (241), TOO_MANY_SIMULTANEOUS_QUERIES (202), TIMEOUT_EXCEEDED (159), and the HTTP 5xx
/// "Code: 210" network errors between servers.
fn is_transient_server_error(message: &str) -> bool {
    [
        "Code: 252",
        "Code: 241",
        "Code: 202",
        "Code: 159",
        "Code: 210",
    ]
    .iter()
    .any(|code| message.contains(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deduplication_tokens_are_sent_only_to_servers_that_know_them() {
        assert!(!supports_deduplication_token("18.16.1"));
        assert!(!supports_deduplication_token("22.1.3.7"));
        assert!(supports_deduplication_token("22.2.2.1"));
        assert!(supports_deduplication_token("26.9.2.1"));
        assert!(!supports_deduplication_token("garbage"));
    }

    #[test]
    fn network_and_overload_errors_are_transient() {
        assert_eq!(classify(&ClickhouseError::TimedOut), "transient");
        assert_eq!(
            classify(&ClickhouseError::BadResponse(
                "Code: 252, e.displayText() = DB::Exception: Too many parts".into()
            )),
            "transient"
        );
        assert_eq!(
            classify(&ClickhouseError::BadResponse(
                "Code: 16, e.displayText() = DB::Exception: No such column".into()
            )),
            "permanent"
        );
    }
}
