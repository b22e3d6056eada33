//! The embedded-mode store (DESIGN.md, "Two ways to run"): one bundled-SQLite database in
//! WAL mode holding detections, thumbnails and the audit chain. The same read trait as
//! ClickHouse ([`SightingStore`]), a write side for validated batches ([`SqliteStore::write`],
//! also the ingest node's [`Publisher`] in `camtrail serve`), and an [`AuditLog`] whose
//! records commit in the same database.
//!
//! Tables are clustered for the two access paths: `detections` is a `WITHOUT ROWID` table
//! keyed `(subject_key, captured_at_ms, event_id)` (a track is one range), with a covering
//! index `(camera_id, captured_at_ms, event_id)` for passes and a unique index on
//! `event_id` for idempotency (`INSERT OR IGNORE`: resends are harmless).
//!
//! **Group commit.** One writer thread owns the only write connection. Every write (a batch
//! of detections, an audit record, a retention step) is a request on a bounded queue; the
//! thread takes the first waiting request and every other one queued behind it (up to
//! [`MAX_GROUP_ROWS`] rows), runs each in its own savepoint of one transaction, commits
//! once (`synchronous=FULL`: the WAL is fsynced) and only then answers each request. While
//! one group commits, the next one queues, so many streams share each fsync instead of
//! paying one per batch, and an answer always means "committed". A request that fails
//! (e.g. a constraint) is rolled back alone; a failed commit fails the whole group.
//!
//! Reads use a small pool of read-only connections (WAL readers never wait for the writer).
//! SQLite calls run on the blocking pool or the writer thread, never on async workers.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use camtrail_ingest::publish::{PublishError, PublishFuture, Publisher};
use camtrail_model::audit::{AuditChain, AuditEntry, AuditRecord};
use camtrail_model::{Detection, EventId, ObjectClass};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params, params_from_iter};
use tokio::sync::{mpsc, oneshot};

use super::{
    AuditFilter, PassCursor, SightingStore, StoreError, StoredSighting, placeholders, prefix_end,
};
use crate::audit::{AuditError, AuditLog};

/// Most rows one group transaction takes before it commits (bounds the latency a large
/// group adds to the first batch in it).
pub const MAX_GROUP_ROWS: usize = 20_000;
/// Requests that may wait for the writer; beyond that `publish` waits, then reports
/// the node saturated.
const QUEUE_REQUESTS: usize = 512;
/// Read connections.
const READERS: usize = 4;
/// How long a full write queue is waited on before a batch is refused as overload.
const QUEUE_FULL_WAIT: Duration = Duration::from_secs(2);

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS detections (
    subject_key      TEXT    NOT NULL,
    captured_at_ms   INTEGER NOT NULL,
    event_id         BLOB    NOT NULL,
    camera_id        TEXT    NOT NULL,
    object_class     INTEGER NOT NULL,
    plate            TEXT    NOT NULL,
    plate_confidence REAL    NOT NULL,
    vehicle_color    INTEGER NOT NULL,
    vehicle_type     INTEGER NOT NULL,
    bbox_x INTEGER NOT NULL, bbox_y INTEGER NOT NULL,
    bbox_width INTEGER NOT NULL, bbox_height INTEGER NOT NULL,
    has_snapshot     INTEGER NOT NULL,
    gateway_id       TEXT    NOT NULL,
    received_at_ms   INTEGER NOT NULL,
    PRIMARY KEY (subject_key, captured_at_ms, event_id)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS detections_event_id ON detections (event_id);
CREATE INDEX IF NOT EXISTS detections_by_camera
    ON detections (camera_id, captured_at_ms, event_id);
CREATE TABLE IF NOT EXISTS snapshots (
    event_id       BLOB    PRIMARY KEY,
    captured_at_ms INTEGER NOT NULL,
    jpeg           BLOB    NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_log (
    node_id TEXT NOT NULL, seq INTEGER NOT NULL, at_ms INTEGER NOT NULL,
    user TEXT NOT NULL, role TEXT NOT NULL, case_id TEXT NOT NULL, reason TEXT NOT NULL,
    kind TEXT NOT NULL, parameters_json TEXT NOT NULL, result_count INTEGER NOT NULL,
    client_addr TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (node_id, seq)
) WITHOUT ROWID;
";

const SIGHTING_COLUMNS: &str = "event_id, camera_id, captured_at_ms, subject_key, plate, \
    plate_confidence, object_class, has_snapshot";

/// One write for the writer thread.
enum Work {
    /// Store detections (and their thumbnails).
    Detections(Vec<Detection>),
    /// Append one sealed audit record.
    Audit(Box<AuditRecord>),
    /// Retention: delete up to `limit` detections (and their snapshots) captured before
    /// `cutoff_ms`.
    DeleteBefore {
        /// Exclusive bound, unix ms.
        cutoff_ms: i64,
        /// Rows per step.
        limit: usize,
    },
    /// Nothing: answered once everything queued before it has committed.
    Barrier,
}

impl Work {
    fn rows(&self) -> usize {
        match self {
            Self::Detections(detections) => detections.len(),
            Self::DeleteBefore { limit, .. } => *limit,
            Self::Audit(_) | Self::Barrier => 1,
        }
    }
}

struct Request {
    work: Work,
    reply: oneshot::Sender<Result<usize, String>>,
}

/// Writer counters (read by [`Publisher::in_flight`] and [`SqliteStore::writer_stats`]).
#[derive(Debug, Default)]
struct Counters {
    queued_rows: AtomicI64,
    commits: AtomicI64,
    committed_requests: AtomicI64,
}

/// What the writer has done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed.
    pub commits: i64,
    /// Requests (batches, audit records, ...) they held.
    pub requests: i64,
    /// Rows waiting for the writer now.
    pub queued_rows: i64,
}

/// A SQLite database shared by readers, the writer and the audit log of one process.
#[derive(Clone)]
pub struct SqliteStore {
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<AtomicUsize>,
    writer: mpsc::Sender<Request>,
    counters: Arc<Counters>,
    path: Arc<PathBuf>,
}

fn failed(error: impl std::fmt::Display) -> StoreError {
    StoreError(error.to_string())
}

fn sighting(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSighting> {
    let id: Vec<u8> = row.get(0)?;
    let class: u8 = row.get(6)?;
    Ok(StoredSighting {
        event_id: EventId::from_slice(&id).unwrap_or(EventId([0; 16])),
        camera_id: row.get(1)?,
        captured_at_ms: row.get(2)?,
        subject_key: row.get(3)?,
        plate: row.get(4)?,
        plate_confidence: row.get::<_, f64>(5)? as f32,
        object_class: ObjectClass::from_code(class).unwrap_or(ObjectClass::Vehicle),
        has_snapshot: row.get::<_, i64>(7)? != 0,
    })
}

impl SqliteStore {
    /// Open (or create) the database at `path` and start its writer thread: WAL mode,
    /// `synchronous=FULL` (a committed transaction survives power loss, so an answer from
    /// the writer means durable). Must be called inside a Tokio runtime.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(failed)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;
                 PRAGMA cache_size=-524288; PRAGMA temp_store=MEMORY;
                 PRAGMA wal_autocheckpoint=10000;",
            )
            .map_err(failed)?;
        connection.execute_batch(SCHEMA).map_err(failed)?;
        let mut readers = Vec::with_capacity(READERS);
        for _ in 0..READERS {
            let reader = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(failed)?;
            reader
                .execute_batch(
                    "PRAGMA busy_timeout=10000; PRAGMA cache_size=-65536; \
                     PRAGMA mmap_size=1073741824;",
                )
                .map_err(failed)?;
            readers.push(Mutex::new(reader));
        }
        let (writer, requests) = mpsc::channel(QUEUE_REQUESTS);
        let counters = Arc::new(Counters::default());
        let thread_counters = Arc::clone(&counters);
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || write_loop(connection, requests, &thread_counters))
            .map_err(failed)?;
        Ok(Self {
            readers: Arc::new(readers),
            next_reader: Arc::new(AtomicUsize::new(0)),
            writer,
            counters,
            path: Arc::new(path.to_path_buf()),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
        connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `work` on a read connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(&self.readers);
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        tokio::task::spawn_blocking(move || work(&mut Self::lock(&readers[index])))
            .await
            .map_err(failed)?
            .map_err(failed)
    }

    /// Hand `work` to the writer (waiting up to `queue_wait` for room) and wait until the
    /// transaction holding it has committed.
    async fn submit(&self, work: Work, queue_wait: Duration) -> Result<usize, PublishError> {
        let rows = work.rows() as i64;
        let (reply, answer) = oneshot::channel();
        self.counters.queued_rows.fetch_add(rows, Ordering::Relaxed);
        let sent = self
            .writer
            .send_timeout(Request { work, reply }, queue_wait)
            .await;
        let result = match sent {
            Ok(()) => match answer.await {
                Ok(result) => result.map_err(PublishError::Failed),
                Err(_) => Err(PublishError::Failed("the SQLite writer stopped".into())),
            },
            Err(mpsc::error::SendTimeoutError::Timeout(_)) => Err(PublishError::QueueFull {
                waited_ms: queue_wait.as_millis() as u64,
            }),
            Err(mpsc::error::SendTimeoutError::Closed(_)) => {
                Err(PublishError::Failed("the SQLite writer stopped".into()))
            }
        };
        self.counters.queued_rows.fetch_sub(rows, Ordering::Relaxed);
        result
    }

    /// Store validated detections; a stored `event_id` is ignored (resends are harmless).
    /// Returns how many were new. Durable when it returns: the group transaction holding
    /// them has committed.
    pub async fn write(&self, detections: Vec<Detection>) -> Result<usize, StoreError> {
        self.submit(Work::Detections(detections), QUEUE_FULL_WAIT)
            .await
            .map_err(failed)
    }

    /// Retention: delete detections and snapshots captured before `cutoff_ms`, in steps of
    /// `step` rows (each its own writer request, so ingest keeps committing in between).
    /// Returns the number of detections and snapshots deleted. The audit table is never
    /// touched.
    pub async fn delete_before(&self, cutoff_ms: i64, step: usize) -> Result<u64, StoreError> {
        let mut total = 0u64;
        loop {
            let deleted = self
                .submit(
                    Work::DeleteBefore {
                        cutoff_ms,
                        limit: step.max(1),
                    },
                    Duration::from_secs(60),
                )
                .await
                .map_err(failed)?;
            total += deleted as u64;
            if deleted == 0 {
                return Ok(total);
            }
        }
    }

    /// Detections and snapshots captured before `cutoff_ms` (what [`Self::delete_before`]
    /// would delete).
    pub async fn count_before(&self, cutoff_ms: i64) -> Result<(u64, u64), StoreError> {
        self.with(move |connection| {
            let count = |table: &str| -> rusqlite::Result<u64> {
                connection.query_row(
                    &format!("SELECT count(*) FROM {table} WHERE captured_at_ms < ?"),
                    params![cutoff_ms],
                    |row| row.get::<_, i64>(0).map(|n| n as u64),
                )
            };
            Ok((count("detections")?, count("snapshots")?))
        })
        .await
    }

    /// Rows stored in `detections`.
    pub async fn detection_count(&self) -> Result<u64, StoreError> {
        self.with(|connection| {
            connection.query_row("SELECT count(*) FROM detections", [], |row| {
                row.get::<_, i64>(0).map(|n| n as u64)
            })
        })
        .await
    }

    /// Every stored event id (for tests and checks: reads the whole table).
    pub async fn event_ids(&self) -> Result<std::collections::HashSet<EventId>, StoreError> {
        self.with(|connection| {
            let mut statement = connection.prepare("SELECT event_id FROM detections")?;
            let rows = statement.query_map([], |row| {
                let id: Vec<u8> = row.get(0)?;
                Ok(EventId::from_slice(&id).unwrap_or(EventId([0; 16])))
            })?;
            rows.collect()
        })
        .await
    }

    /// Wait (blocking, up to `timeout`) until every write queued so far has committed.
    pub fn flush_blocking(&self, timeout: Duration) -> Result<(), String> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .blocking_send(Request {
                work: Work::Barrier,
                reply,
            })
            .map_err(|_| "the SQLite writer stopped".to_string())?;
        let deadline = std::time::Instant::now() + timeout;
        let mut answer = answer;
        loop {
            match answer.try_recv() {
                Ok(result) => return result.map(|_| ()),
                Err(oneshot::error::TryRecvError::Closed) => {
                    return Err("the SQLite writer stopped".into());
                }
                Err(oneshot::error::TryRecvError::Empty)
                    if std::time::Instant::now() < deadline =>
                {
                    std::thread::sleep(Duration::from_millis(2));
                }
                Err(oneshot::error::TryRecvError::Empty) => {
                    return Err(format!("writes not committed within {timeout:?}"));
                }
            }
        }
    }

    /// Commits and requests so far.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            requests: self.counters.committed_requests.load(Ordering::Relaxed),
            queued_rows: self.counters.queued_rows.load(Ordering::Relaxed),
        }
    }

    /// An audit log for `node_id` in this database, continuing that node's chain where it
    /// ends (one database, one writer: the chain cannot fork).
    pub async fn audit_log(&self, node_id: &str) -> Result<SqliteAuditLog, StoreError> {
        let node = node_id.to_string();
        let last = self
            .audit_records(AuditFilter::default())
            .await?
            .into_iter()
            .filter(|r| r.node_id == node)
            .max_by_key(|r| r.seq);
        let chain = match &last {
            Some(record) => AuditChain::resume(record),
            None => AuditChain::new(node),
        };
        Ok(SqliteAuditLog {
            store: self.clone(),
            chain: Arc::new(tokio::sync::Mutex::new(chain)),
        })
    }
}

/// The writer thread: group, run, commit, answer; ends when every [`SqliteStore`] clone
/// is dropped.
fn write_loop(
    mut connection: Connection,
    mut requests: mpsc::Receiver<Request>,
    counters: &Counters,
) {
    while let Some(first) = requests.blocking_recv() {
        let mut rows = first.work.rows();
        let mut group = vec![first];
        while rows < MAX_GROUP_ROWS {
            match requests.try_recv() {
                Ok(next) => {
                    rows += next.work.rows();
                    group.push(next);
                }
                Err(_) => break,
            }
        }
        let results = run_group(&mut connection, &group);
        counters.commits.fetch_add(1, Ordering::Relaxed);
        counters
            .committed_requests
            .fetch_add(group.len() as i64, Ordering::Relaxed);
        for (request, result) in group.into_iter().zip(results) {
            let _ = request.reply.send(result);
        }
    }
    tracing::debug!("SQLite writer stopped");
}

/// One transaction for the whole group, a savepoint per request.
fn run_group(connection: &mut Connection, group: &[Request]) -> Vec<Result<usize, String>> {
    let all_failed = |error: rusqlite::Error| {
        tracing::warn!(%error, requests = group.len(), "SQLite group commit failed");
        group.iter().map(|_| Err(error.to_string())).collect()
    };
    let mut transaction = match connection.transaction() {
        Ok(transaction) => transaction,
        Err(error) => return all_failed(error),
    };
    let mut results = Vec::with_capacity(group.len());
    for request in group {
        let result = transaction.savepoint().and_then(|savepoint| {
            let done = apply(&savepoint, &request.work)?;
            savepoint.commit()?;
            Ok(done)
        });
        results.push(result.map_err(|error| error.to_string()));
    }
    match transaction.commit() {
        Ok(()) => results,
        Err(error) => all_failed(error),
    }
}

fn apply(connection: &Connection, work: &Work) -> rusqlite::Result<usize> {
    match work {
        Work::Detections(detections) => insert_detections(connection, detections),
        Work::Audit(record) => insert_audit(connection, record),
        Work::DeleteBefore { cutoff_ms, limit } => {
            let deleted = connection.execute(
                "DELETE FROM detections WHERE (subject_key, captured_at_ms, event_id) IN \
                 (SELECT subject_key, captured_at_ms, event_id FROM detections \
                  WHERE captured_at_ms < ?1 LIMIT ?2)",
                params![cutoff_ms, *limit as i64],
            )?;
            let snapshots = connection.execute(
                "DELETE FROM snapshots WHERE event_id IN \
                 (SELECT event_id FROM snapshots WHERE captured_at_ms < ?1 LIMIT ?2)",
                params![cutoff_ms, *limit as i64],
            )?;
            Ok(deleted + snapshots)
        }
        Work::Barrier => Ok(0),
    }
}

fn insert_detections(connection: &Connection, detections: &[Detection]) -> rusqlite::Result<usize> {
    let mut inserted = 0;
    let mut detection_row = connection.prepare_cached(
        "INSERT OR IGNORE INTO detections VALUES \
         (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    )?;
    let mut snapshot_row =
        connection.prepare_cached("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)")?;
    for d in detections {
        let new = detection_row.execute(params![
            d.subject_key,
            d.captured_at_ms,
            d.event_id.as_bytes().as_slice(),
            d.camera_id,
            d.object_class.code(),
            d.plate,
            f64::from(d.plate_confidence),
            d.attributes.color,
            d.attributes.kind,
            d.bbox[0],
            d.bbox[1],
            d.bbox[2],
            d.bbox[3],
            d.thumbnail_jpeg.is_some(),
            d.gateway_id,
            d.received_at_ms,
        ])?;
        inserted += new;
        if let Some(jpeg) = &d.thumbnail_jpeg {
            snapshot_row.execute(params![
                d.event_id.as_bytes().as_slice(),
                d.captured_at_ms,
                jpeg
            ])?;
        }
    }
    Ok(inserted)
}

fn insert_audit(connection: &Connection, row: &AuditRecord) -> rusqlite::Result<usize> {
    let e = &row.entry;
    connection.execute(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            row.node_id,
            row.seq as i64,
            e.at_ms,
            e.user,
            e.role,
            e.case_id,
            e.reason,
            e.kind,
            e.parameters_json,
            e.result_count as i64,
            e.client_addr,
            row.prev_hash,
            row.hash
        ],
    )
}

impl Publisher for SqliteStore {
    fn backend(&self) -> &'static str {
        "sqlite"
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

    fn flush(&self, timeout: Duration) -> Result<(), String> {
        self.flush_blocking(timeout)
    }
}

impl SightingStore for SqliteStore {
    async fn keys_seen(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = keys.to_vec();
        self.with(move |connection| {
            let sql = format!(
                "SELECT DISTINCT subject_key FROM detections WHERE subject_key IN ({}) \
                 AND captured_at_ms >= ? AND captured_at_ms < ?",
                placeholders(keys.len())
            );
            let mut values: Vec<rusqlite::types::Value> =
                keys.into_iter().map(rusqlite::types::Value::from).collect();
            values.push(from_ms.into());
            values.push(to_ms.into());
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map(params_from_iter(values), |row| row.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn keys_like(
        &self,
        prefix: &str,
        like: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        let (prefix, like) = (prefix.to_string(), like.to_string());
        self.with(move |connection| {
            let end = prefix_end(&prefix);
            let mut statement = connection.prepare_cached(
                "SELECT DISTINCT subject_key FROM detections \
                 WHERE subject_key >= ? AND subject_key < ? AND subject_key LIKE ? ESCAPE '\\' \
                 AND captured_at_ms >= ? AND captured_at_ms < ? LIMIT ?",
            )?;
            let rows = statement.query_map(
                params![prefix, end, like, from_ms, to_ms, limit as i64],
                |row| row.get(0),
            )?;
            rows.collect()
        })
        .await
    }

    async fn sightings(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<StoredSighting>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let keys = keys.to_vec();
        self.with(move |connection| {
            let sql = format!(
                "SELECT {SIGHTING_COLUMNS} FROM detections WHERE subject_key IN ({}) \
                 AND captured_at_ms >= ? AND captured_at_ms < ? \
                 ORDER BY captured_at_ms, event_id LIMIT ?",
                placeholders(keys.len())
            );
            let mut values: Vec<rusqlite::types::Value> =
                keys.into_iter().map(rusqlite::types::Value::from).collect();
            values.extend([from_ms.into(), to_ms.into(), (limit as i64).into()]);
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map(params_from_iter(values), sighting)?;
            rows.collect()
        })
        .await
    }

    async fn passes(
        &self,
        cameras: &[String],
        from_ms: i64,
        to_ms: i64,
        after: Option<PassCursor>,
        limit: usize,
    ) -> Result<Vec<StoredSighting>, StoreError> {
        if cameras.is_empty() {
            return Ok(Vec::new());
        }
        let cameras = cameras.to_vec();
        self.with(move |connection| {
            let (after_ms, after_id) = after
                .map(|c| (c.captured_at_ms, c.event_id))
                .unwrap_or((i64::MIN, EventId([0; 16])));
            let sql = format!(
                "SELECT {SIGHTING_COLUMNS} FROM detections INDEXED BY detections_by_camera \
                 WHERE camera_id IN ({}) AND captured_at_ms >= ? AND captured_at_ms < ? \
                 AND (captured_at_ms > ? OR (captured_at_ms = ? AND event_id > ?)) \
                 ORDER BY captured_at_ms, event_id LIMIT ?",
                placeholders(cameras.len())
            );
            let mut values: Vec<rusqlite::types::Value> = cameras
                .into_iter()
                .map(rusqlite::types::Value::from)
                .collect();
            values.extend([
                from_ms.into(),
                to_ms.into(),
                after_ms.into(),
                after_ms.into(),
                after_id.as_bytes().to_vec().into(),
                (limit as i64).into(),
            ]);
            let mut statement = connection.prepare(&sql)?;
            let rows = statement.query_map(params_from_iter(values), sighting)?;
            rows.collect()
        })
        .await
    }

    async fn audit_records(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.with(move |connection| {
            let mut statement = connection.prepare_cached(
                "SELECT node_id, seq, at_ms, user, role, case_id, reason, kind, parameters_json, \
                 result_count, client_addr, prev_hash, hash FROM audit_log \
                 WHERE (?1 IS NULL OR case_id = ?1) AND (?2 IS NULL OR user = ?2) \
                 ORDER BY node_id, seq LIMIT ?3",
            )?;
            let limit = filter.limit.map_or(-1, |l| l as i64);
            let rows = statement.query_map(params![filter.case_id, filter.user, limit], |row| {
                Ok(AuditRecord {
                    node_id: row.get(0)?,
                    seq: row.get::<_, i64>(1)? as u64,
                    entry: AuditEntry {
                        at_ms: row.get(2)?,
                        user: row.get(3)?,
                        role: row.get(4)?,
                        case_id: row.get(5)?,
                        reason: row.get(6)?,
                        kind: row.get(7)?,
                        parameters_json: row.get(8)?,
                        result_count: row.get::<_, i64>(9)? as u64,
                        client_addr: row.get(10)?,
                    },
                    prev_hash: row.get(11)?,
                    hash: row.get(12)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn snapshot(&self, event_id: EventId) -> Result<Option<Vec<u8>>, StoreError> {
        self.with(move |connection| {
            connection
                .query_row(
                    "SELECT jpeg FROM snapshots WHERE event_id = ?",
                    params![event_id.as_bytes().as_slice()],
                    |row| row.get(0),
                )
                .optional()
        })
        .await
    }
}

/// The audit chain of one node, committed in the SQLite database.
#[derive(Clone)]
pub struct SqliteAuditLog {
    store: SqliteStore,
    chain: Arc<tokio::sync::Mutex<AuditChain>>,
}

impl AuditLog for SqliteAuditLog {
    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, AuditError> {
        let mut chain = self.chain.lock().await;
        let record = chain.seal(entry);
        self.store
            .submit(Work::Audit(Box::new(record.clone())), Duration::from_secs(10))
            .await
            .map_err(|error| AuditError(error.to_string()))?;
        chain.commit(&record);
        Ok(record)
    }
}
