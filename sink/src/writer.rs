//! [`ClickhouseWriter`]: inserts a batch into `detections`, `snapshots` and `audit_log`,
//! retrying the same rows until ClickHouse takes them.
//!
//! Every attempt starts a fresh INSERT from the batch the sink keeps
//! ([`TableWriter`]). `insert_deduplication_token` only where the server knows it (22.2+):
//! ClickHouse 18.16 rejects settings it does not know. Retried inserts can store a row
//! twice; `detections` is a ReplacingMergeTree on `event_id` and reads dedup, so that is
//! harmless (ARCHITECTURE.md, Guarantees 3).
//!
//! On a cluster ([`ClickhouseWriter::with_shards`]) each detection goes to
//! `detections_local` on a replica of its subject's shard (and its thumbnail beside it,
//! into `snapshots_local`), the client failing over to the shard's next replica; audit
//! records go to `audit_log`, replicated on every server. Each shard's insert is retried on
//! its own: a shard that took its rows is not sent them again.

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
    /// Cluster mode: one writer per shard, in the cluster's order; empty on one server.
    shards: Vec<TableWriter>,
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
            shards: Vec::new(),
            deduplication_token,
            backoff,
            metrics,
        }
    }

    /// Write detections and thumbnails shard by shard, each shard's rows through its
    /// client (bound to the camtrail database), into the `_local` tables.
    pub fn with_shards(mut self, clients: Vec<Client>, timeout: Duration) -> Self {
        self.shards = clients
            .into_iter()
            .map(|client| TableWriter::new(client, timeout))
            .collect();
        self
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
        let routes = Routes::of(batch, self.shards.len());
        let mut done = TablesDone {
            detections: routes.detections.iter().map(Vec::is_empty).collect(),
            snapshots: routes.snapshots.iter().map(Vec::is_empty).collect(),
            audit: batch.audit.is_empty(),
        };
        self.backoff.reset();
        loop {
            let started = Instant::now();
            let result = self.try_write(batch, &routes, &mut done).await;
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

    /// One attempt: each table (and shard) not yet stored by an earlier attempt
    /// (detections, snapshots, audit_log, in that order), so a retry does not insert what
    /// already went in.
    async fn try_write(
        &self,
        batch: &Batch,
        routes: &Routes,
        done: &mut TablesDone,
    ) -> Result<(), ClickhouseError> {
        let (single, shards) = (std::slice::from_ref(&self.tables), &self.shards);
        let (targets, suffix) = if shards.is_empty() {
            (single, "")
        } else {
            (shards.as_slice(), "_local")
        };
        for (shard, target) in targets.iter().enumerate() {
            if !done.detections[shard] {
                let table = format!("detections{suffix}");
                let rows = routes.detections[shard]
                    .iter()
                    .map(|&n| &batch.detections[n]);
                let token = self.token(batch, &table, shard);
                target.insert_rows(&table, rows, token).await?;
                done.detections[shard] = true;
            }
        }
        for (shard, target) in targets.iter().enumerate() {
            if !done.snapshots[shard] {
                let table = format!("snapshots{suffix}");
                let rows = routes.snapshots[shard].iter().map(|&n| &batch.snapshots[n]);
                let token = self.token(batch, &table, shard);
                target.insert_rows(&table, rows, token).await?;
                done.snapshots[shard] = true;
            }
        }
        if !done.audit {
            let token = self.token(batch, "audit_log", 0);
            self.tables
                .insert_rows("audit_log", &batch.audit, token)
                .await?;
            done.audit = true;
        }
        Ok(())
    }

    /// The batch's deduplication token for `table` on `shard`, when enabled.
    fn token(&self, batch: &Batch, table: &str, shard: usize) -> Option<String> {
        self.deduplication_token.unwrap_or(false).then(|| {
            let shard = if self.shards.is_empty() {
                String::new()
            } else {
                format!("{shard}:")
            };
            format!("camtrail-sink:{table}:{shard}{}", batch.offsets.token())
        })
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

/// Which tables (per shard) of a batch are already stored (or have no rows).
struct TablesDone {
    detections: Vec<bool>,
    snapshots: Vec<bool>,
    audit: bool,
}

/// The rows of a batch by shard: indices into `detections` and `snapshots`. One "shard"
/// holding everything on a single server.
struct Routes {
    detections: Vec<Vec<usize>>,
    snapshots: Vec<Vec<usize>>,
}

impl Routes {
    fn of(batch: &Batch, shards: usize) -> Self {
        let shards = shards.max(1);
        let mut routes = Self {
            detections: vec![Vec::new(); shards],
            snapshots: vec![Vec::new(); shards],
        };
        if shards == 1 {
            routes.detections[0] = (0..batch.detections.len()).collect();
            routes.snapshots[0] = (0..batch.snapshots.len()).collect();
            return routes;
        }
        let mut shard_of_event = std::collections::HashMap::new();
        for (n, row) in batch.detections.iter().enumerate() {
            let shard = camtrail_clickhouse::cluster::shard_of(&row.subject_key, shards);
            routes.detections[shard].push(n);
            if row.has_snapshot != 0 {
                shard_of_event.insert(row.event_id, shard);
            }
        }
        for (n, row) in batch.snapshots.iter().enumerate() {
            // A thumbnail always comes with its detection in the same record.
            let shard = shard_of_event.get(&row.event_id).copied().unwrap_or(0);
            routes.snapshots[shard].push(n);
        }
        routes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_storage::testsuite::{CAMERA, T0};

    #[test]
    fn rows_are_routed_to_their_subjects_shard_with_their_thumbnails() {
        let mut batch = Batch::default();
        for (n, plate) in ["粤B12345", "粤B54321", "京A00001", "沪C99999"]
            .iter()
            .enumerate()
        {
            let n = n as u8 + 1;
            batch.push(
                camtrail_storage::testsuite::detection(n, plate, T0, CAMERA),
                "t",
                0,
                i64::from(n),
            );
        }
        let one = Routes::of(&batch, 0);
        assert_eq!(one.detections, [vec![0, 1, 2, 3]]);
        let two = Routes::of(&batch, 2);
        for (shard, rows) in two.detections.iter().enumerate() {
            for &n in rows {
                let key = &batch.detections[n].subject_key;
                assert_eq!(camtrail_clickhouse::cluster::shard_of(key, 2), shard);
            }
        }
        assert_eq!(two.detections.iter().map(Vec::len).sum::<usize>(), 4);
        for (shard, rows) in two.snapshots.iter().enumerate() {
            for &n in rows {
                let event = batch.snapshots[n].event_id;
                let detection = batch.detections.iter().position(|d| d.event_id == event);
                assert!(two.detections[shard].contains(&detection.expect("its detection")));
            }
        }
    }
}
