//! The write side: detections handed to the writer thread (the ingest node's
//! [`Publisher`]), retention handed to the maintenance thread (a [`RetentionTarget`]),
//! and waiting for both.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use camtrail_model::Detection;
use camtrail_storage::{PublishFuture, Publisher, RetentionPlan, RetentionTarget, StorageError};
use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot};

use super::builder::Job;
use super::parts::Keep;
use super::writer::{Request, Work};
use super::{BACKEND, QUEUE_FULL_WAIT, SqliteStore};

impl SqliteStore {
    /// Hand `work` to the writer (waiting up to `queue_wait` for room) and wait until the
    /// transaction holding it has committed.
    pub(crate) async fn submit(
        &self,
        work: Work,
        queue_wait: Duration,
    ) -> Result<usize, StorageError> {
        let rows = work.rows() as i64;
        if matches!(work, Work::Detections(_)) {
            self.wait_for_room(queue_wait).await?;
        }
        let (reply, answer) = oneshot::channel();
        self.counters.queued_rows.fetch_add(rows, Ordering::Relaxed);
        let sent = self
            .writer
            .send_timeout(Request { work, reply }, queue_wait)
            .await;
        let result = match sent {
            Ok(()) => match answer.await {
                Ok(result) => result.map_err(|error| StorageError::unavailable(BACKEND, error)),
                Err(_) => Err(writer_stopped()),
            },
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(StorageError::Overloaded {
                backend: BACKEND,
                waited_ms: queue_wait.as_millis() as u64,
            }),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => Err(writer_stopped()),
        };
        self.counters.queued_rows.fetch_sub(rows, Ordering::Relaxed);
        result
    }

    /// Wait (up to `wait`) while more rows are staged in memory than the tuning allows.
    async fn wait_for_room(&self, wait: Duration) -> Result<(), StorageError> {
        let limit = self.tuning.max_staged_rows as i64;
        let started = tokio::time::Instant::now();
        while self.counters.staged_rows.load(Ordering::Relaxed) > limit {
            if started.elapsed() >= wait {
                return Err(StorageError::Overloaded {
                    backend: BACKEND,
                    waited_ms: wait.as_millis() as u64,
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        Ok(())
    }

    /// Store validated detections; resends are harmless (see the module docs). Returns how
    /// many rows were written. Durable when it returns: the group transaction holding them
    /// has committed, and readers see them.
    pub async fn write(&self, detections: Vec<Detection>) -> Result<usize, StorageError> {
        self.submit(Work::Detections(detections), QUEUE_FULL_WAIT)
            .await
    }

    /// Retention: remove detections and snapshots captured before `cutoff_ms` (parts wholly
    /// before it are deleted, straddling ones rewritten without the older rows). Returns
    /// the number of rows removed. The audit log is never touched.
    pub async fn delete_before(
        &self,
        cutoff_ms: i64,
        held: &BTreeSet<String>,
    ) -> Result<u64, StorageError> {
        let (reply, answer) = oneshot::channel();
        let keep = keep(cutoff_ms, held);
        self.jobs
            .send(Job::Retention { keep, reply })
            .map_err(|_| read_only())?;
        answer
            .await
            .map_err(|_| maintenance_stopped())?
            .map_err(|error| StorageError::unavailable(BACKEND, error))
    }

    /// Wait until the maintenance thread has finished every job queued so far (flushes,
    /// merges, retention); for tests and orderly measurements.
    pub async fn maintenance_idle(&self) -> Result<(), StorageError> {
        let (reply, answer) = oneshot::channel();
        self.jobs.send(Job::Idle(reply)).map_err(|_| read_only())?;
        answer.await.map_err(|_| maintenance_stopped())
    }

    /// Wait (blocking, up to `timeout`) until every write queued so far has committed.
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), StorageError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .blocking_send(Request {
                work: Work::Barrier,
                reply,
            })
            .map_err(|_| writer_stopped())?;
        let deadline = std::time::Instant::now() + timeout;
        let mut answer = answer;
        loop {
            match answer.try_recv() {
                Ok(result) => {
                    return result
                        .map(|_| ())
                        .map_err(|error| StorageError::unavailable(BACKEND, error));
                }
                Err(oneshot::error::TryRecvError::Closed) => return Err(writer_stopped()),
                Err(oneshot::error::TryRecvError::Empty)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(oneshot::error::TryRecvError::Empty) => {
                    return Err(StorageError::unavailable(
                        BACKEND,
                        format_args!("writes not committed within {timeout:?}"),
                    ));
                }
            }
        }
    }
}

fn writer_stopped() -> StorageError {
    StorageError::unavailable(BACKEND, "the SQLite writer stopped")
}

fn maintenance_stopped() -> StorageError {
    StorageError::unavailable(BACKEND, "the maintenance thread stopped")
}

fn read_only() -> StorageError {
    StorageError::refused(BACKEND, "the store is read-only or closed")
}

impl Publisher for SqliteStore {
    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn publish(&self, detections: Vec<Detection>) -> PublishFuture<'_> {
        Box::pin(async move {
            self.submit(Work::Detections(detections), QUEUE_FULL_WAIT)
                .await
                .map(|_| ())
        })
    }

    fn in_flight(&self) -> i64 {
        self.counters.queued_rows.load(Ordering::Relaxed)
    }

    fn flush(&self, timeout: Duration) -> Result<(), StorageError> {
        self.flush_blocking(timeout)
    }
}

/// What a retention run on the embedded database would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteRetentionPlan {
    /// The database file.
    pub database: String,
    /// Everything captured before this goes, unix ms.
    pub cutoff_ms: i64,
    /// Detections captured before the cutoff.
    pub detections: u64,
    /// Snapshots captured before the cutoff.
    pub snapshots: u64,
    /// Event ids kept whenever captured (legal holds).
    pub held: BTreeSet<String>,
}

/// What a run with `cutoff_ms` and `held` keeps (held ids that are not 32 hex digits cannot
/// name a stored event and are left out).
pub(crate) fn keep(cutoff_ms: i64, held: &BTreeSet<String>) -> Keep {
    Keep {
        from_ms: cutoff_ms,
        held: Arc::new(
            held.iter()
                .filter_map(|id| camtrail_model::EventId::parse_hex(id))
                .map(|id| id.0)
                .collect(),
        ),
    }
}

impl RetentionPlan for SqliteRetentionPlan {
    fn parameters(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        fields.insert("database".into(), self.database.clone().into());
        fields.insert("detections".into(), self.detections.into());
        fields.insert("snapshots".into(), self.snapshots.into());
        fields
    }

    fn rows(&self) -> u64 {
        self.detections + self.snapshots
    }
}

/// Retention on the embedded database: parts wholly before the cutoff are dropped (or, when
/// they hold held events, rewritten without the rest), the older unheld rows of the others
/// deleted; the report is the number of rows removed.
impl RetentionTarget for SqliteStore {
    type Plan = SqliteRetentionPlan;
    type Report = u64;

    async fn plan(
        &self,
        cutoff_ms: i64,
        held: &BTreeSet<String>,
    ) -> Result<SqliteRetentionPlan, StorageError> {
        let (detections, snapshots) = self.count_before(cutoff_ms, held).await?;
        Ok(SqliteRetentionPlan {
            database: self.path().display().to_string(),
            cutoff_ms,
            detections,
            snapshots,
            held: held.clone(),
        })
    }

    async fn apply(&self, plan: &SqliteRetentionPlan) -> Result<u64, StorageError> {
        self.delete_before(plan.cutoff_ms, &plan.held).await
    }
}
