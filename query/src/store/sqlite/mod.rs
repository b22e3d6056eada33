//! The embedded-mode store (DESIGN.md, "Two ways to run"): bundled SQLite in WAL mode
//! holding detections, thumbnails and the audit chain. The same read trait as ClickHouse
//! ([`SightingStore`]), a write side for validated batches ([`SqliteStore::write`], also the
//! ingest node's [`Publisher`] in `camtrail serve`), and an [`AuditLog`] whose records
//! commit in the same database.
//!
//! **Layout: staging tables and sorted part files** (the shape of ClickHouse's MergeTree).
//! Inserting each event straight into B-trees keyed by plate and by camera dirties one
//! random leaf page per row per index; every commit then rewrote most of the tree into the
//! WAL (measured: 29k events/s at 1.2M rows, falling as the file grew). So:
//! - accepted events are **appended** to the active `staging_<n>` table of the main
//!   database (a rowid table: a commit writes only its last pages) and indexed in memory
//!   ([`hot`]) for readers;
//! - at [`Tuning::flush_rows`] rows the writer seals it and starts `staging_<n+1>`; the
//!   maintenance thread ([`builder`]) copies the sealed table, sorted by `(subject_key,
//!   captured_at_ms, event_id)`, into a new file `<database>.parts/part_<id>.db`
//!   ([`parts`]: a `WITHOUT ROWID` table, a track is one range read, plus an index
//!   `(camera_id, captured_at_ms, event_id)` for passes), fsyncs it, and has the writer
//!   list it in `parts` and drop the staging table in one commit;
//! - with more than [`Tuning::max_parts`] parts, the smallest are merged into a new file
//!   the same way. Building and merging never hold the main database's write lock, so
//!   batches keep being acked meanwhile.
//!
//! Reads skip parts outside the asked window. An event id is stored once per part
//! (`INSERT OR IGNORE` on the key, which a resend repeats exactly) and once in the staged
//! rows; a resend that lands in another part is removed on read (each answer holds each
//! event id once) and for good when the parts merge. After a crash, staged tables are read
//! back at open, sealed ones are flushed again, and part files not in the manifest (a build
//! cut short) are deleted.
//!
//! **Group commit.** One writer thread owns the only write connection to the main database.
//! Every write (a batch of detections, an audit record, a manifest change, retention) is a
//! request on a bounded queue; the thread takes the first waiting request and every other
//! one queued behind it (up to [`Tuning::max_group_rows`] rows), runs each in its own
//! savepoint of one transaction, commits once (`synchronous=FULL`: the WAL is fsynced),
//! makes the changes visible to readers and only then answers each request. While one
//! group commits the next one queues, so many streams share each fsync, and an answer
//! always means "committed".
//!
//! Reads run on the blocking pool under a read lock of the in-memory state (so a part they
//! see is not deleted under them), with read-only connections (WAL readers do not wait for
//! the writer).

mod builder;
mod hot;
mod parts;
mod writer;

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use camtrail_ingest::publish::{PublishError, PublishFuture, Publisher};
use camtrail_model::audit::{AuditChain, AuditEntry, AuditRecord};
use camtrail_model::{Detection, EventId, ObjectClass};
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use tokio::sync::{mpsc, oneshot};

use super::{AuditFilter, PassCursor, SightingStore, StoreError, StoredSighting, prefix_end};
use crate::audit::{AuditError, AuditLog};
use builder::{Builder, Job};
use hot::Hot;
use parts::{Part, PartHandle};
use writer::{Request, Work, Writer};

/// Columns of the staging tables and of every part, in order.
const DETECTION_COLUMNS: &str = "subject_key, captured_at_ms, event_id, camera_id, \
    object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, \
    bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms";

const DETECTION_DEFS: &str = "subject_key TEXT NOT NULL, captured_at_ms INTEGER NOT NULL, \
    event_id BLOB NOT NULL, camera_id TEXT NOT NULL, object_class INTEGER NOT NULL, \
    plate TEXT NOT NULL, plate_confidence REAL NOT NULL, vehicle_color INTEGER NOT NULL, \
    vehicle_type INTEGER NOT NULL, bbox_x INTEGER NOT NULL, bbox_y INTEGER NOT NULL, \
    bbox_width INTEGER NOT NULL, bbox_height INTEGER NOT NULL, has_snapshot INTEGER NOT NULL, \
    gateway_id TEXT NOT NULL, received_at_ms INTEGER NOT NULL";

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS parts (
    id INTEGER PRIMARY KEY, rows INTEGER NOT NULL, min_ms INTEGER NOT NULL,
    max_ms INTEGER NOT NULL
);
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

/// Requests that may wait for the writer; beyond that `publish` waits, then reports the
/// node saturated.
const QUEUE_REQUESTS: usize = 512;
/// Read connections to the main database (audit log, snapshots).
const READERS: usize = 4;
/// How long a full write queue is waited on before a batch is refused as overload.
const QUEUE_FULL_WAIT: Duration = Duration::from_secs(2);

/// Sizes of the store's work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tuning {
    /// Most rows one group transaction takes before it commits.
    pub max_group_rows: usize,
    /// Staged rows at which the staging table is sealed and turned into a part.
    pub flush_rows: usize,
    /// Parts beyond which the smallest are merged.
    pub max_parts: usize,
    /// How many parts one merge combines (at most 9).
    pub merge_fan_in: usize,
    /// Staged rows (kept in memory until their part is built) beyond which new batches
    /// wait, and are refused as overload after a while: backpressure when part building
    /// falls behind ingest.
    pub max_staged_rows: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            max_group_rows: 20_000,
            flush_rows: 250_000,
            max_parts: 24,
            merge_fan_in: 8,
            max_staged_rows: 1_500_000,
        }
    }
}

/// What readers see besides the main database: staged rows per staging generation and the
/// open parts. Changed only by the writer, under the write lock, after its commit.
#[derive(Debug, Default)]
struct Shared {
    hot: BTreeMap<i64, Hot>,
    parts: Vec<PartHandle>,
}

fn write_lock(shared: &RwLock<Shared>) -> RwLockWriteGuard<'_, Shared> {
    shared.write().unwrap_or_else(PoisonError::into_inner)
}

fn read_lock(shared: &RwLock<Shared>) -> RwLockReadGuard<'_, Shared> {
    shared.read().unwrap_or_else(PoisonError::into_inner)
}

/// Counters shared by the writer and the maintenance thread.
#[derive(Debug, Default)]
struct Counters {
    queued_rows: AtomicI64,
    commits: AtomicI64,
    committed_requests: AtomicI64,
    flushes: AtomicI64,
    merges: AtomicI64,
    /// A sealed staging table waits for the maintenance thread.
    flush_pending: AtomicBool,
    /// Rows staged in memory now (all generations).
    staged_rows: AtomicI64,
}

/// What the writer and the maintenance thread have done so far.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterStats {
    /// Transactions committed by group commit.
    pub commits: i64,
    /// Requests (batches, audit records, ...) they held.
    pub requests: i64,
    /// Rows waiting for the writer now.
    pub queued_rows: i64,
    /// Staging tables turned into parts.
    pub flushes: i64,
    /// Part merges.
    pub merges: i64,
    /// Parts now.
    pub parts: usize,
}

/// A SQLite database shared by readers, the writer and the audit log of one process.
#[derive(Clone)]
pub struct SqliteStore {
    readers: Arc<Vec<Mutex<Connection>>>,
    next_reader: Arc<AtomicUsize>,
    shared: Arc<RwLock<Shared>>,
    writer: mpsc::Sender<Request>,
    jobs: std::sync::mpsc::Sender<Job>,
    counters: Arc<Counters>,
    tuning: Tuning,
    path: Arc<PathBuf>,
    /// Held while any handle of a writable store lives: one process owns the database.
    _owner: Option<Arc<std::fs::File>>,
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

/// Sort by `(captured_at_ms, event_id)`, keep each event id once.
fn ordered_unique(mut rows: Vec<StoredSighting>) -> Vec<StoredSighting> {
    rows.sort_by_key(|r| (r.captured_at_ms, r.event_id));
    let mut seen = HashSet::with_capacity(rows.len());
    rows.retain(|r| seen.insert(r.event_id));
    rows
}

/// The folder of a database's part files.
fn parts_dir(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.parts", path.display()))
}

impl SqliteStore {
    /// Open (or create) the database at `path` with the default [`Tuning`].
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with(path, Tuning::default())
    }

    /// Open (or create) the database at `path` and start its writer and maintenance
    /// threads: WAL mode, `synchronous=FULL` (a committed transaction survives power loss,
    /// so an answer from the writer means durable). Staged rows are indexed in memory
    /// again, sealed staging tables are queued to become parts. Must be called inside a
    /// Tokio runtime.
    ///
    /// One process owns a database: the part list and the staged rows live in its memory,
    /// so a second writer would act on a stale view. `<path>.lock` is locked exclusively
    /// for as long as a handle lives; opening a locked database fails (use
    /// [`SqliteStore::open_read_only`] to read beside a running `camtrail serve`).
    pub fn open_with(path: &Path, tuning: Tuning) -> Result<Self, StoreError> {
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let owner = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| StoreError(format!("{}: {e}", lock_path.display())))?;
        owner.try_lock().map_err(|_| {
            StoreError(format!(
                "{} is in use by another camtrail process (camtrail serve?); stop it, or let \
                 it apply retention itself (serve.retention_days)",
                path.display()
            ))
        })?;
        let connection = Connection::open(path).map_err(failed)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;
                 PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
            )
            .map_err(failed)?;
        connection.execute_batch(SCHEMA).map_err(failed)?;
        let dir = parts_dir(path);
        std::fs::create_dir_all(&dir).map_err(|e| StoreError(format!("{}: {e}", dir.display())))?;
        let mut generations = staging_generations(&connection).map_err(failed)?;
        if generations.is_empty() {
            connection
                .execute_batch(&format!("CREATE TABLE staging_1 ({DETECTION_DEFS});"))
                .map_err(failed)?;
            generations.push(1);
        }
        let shared = load_shared(&connection, &dir, &generations)?;
        remove_unlisted_parts(&dir, &shared.parts);
        let next_id = shared.parts.iter().map(|h| h.part.id).max().unwrap_or(0) + 1;
        let active = generations.last().copied().unwrap_or(1);
        let staged = shared.hot.get(&active).map_or(0, Hot::len);
        let shared = Arc::new(RwLock::new(shared));
        let (sender, requests) = mpsc::channel(QUEUE_REQUESTS);
        let (jobs, job_queue) = std::sync::mpsc::channel();
        let counters = Arc::new(Counters::default());
        let staged_total: usize = read_lock(&shared).hot.values().map(Hot::len).sum();
        counters
            .staged_rows
            .store(staged_total as i64, Ordering::Relaxed);
        for &generation in generations.iter().filter(|&&g| g != active) {
            counters.flush_pending.store(true, Ordering::Release);
            let _ = jobs.send(Job::Flush { generation });
        }
        let writer = Writer {
            connection,
            shared: Arc::clone(&shared),
            counters: Arc::clone(&counters),
            tuning,
            parts_dir: dir.clone(),
            jobs: jobs.clone(),
            active,
            staged,
        };
        let builder = Builder {
            database: path.to_path_buf(),
            dir,
            shared: Arc::clone(&shared),
            writer: sender.downgrade(),
            counters: Arc::clone(&counters),
            tuning,
            next_id: Arc::new(AtomicI64::new(next_id)),
        };
        let readers = open_readers(path)?;
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer.run(requests))
            .map_err(failed)?;
        std::thread::Builder::new()
            .name("sqlite-maintenance".into())
            .spawn(move || builder.run(job_queue))
            .map_err(failed)?;
        Ok(Self {
            readers: Arc::new(readers),
            next_reader: Arc::new(AtomicUsize::new(0)),
            shared,
            writer: sender,
            jobs,
            counters,
            tuning,
            path: Arc::new(path.to_path_buf()),
            _owner: Some(Arc::new(owner)),
        })
    }

    /// Open an existing database for reading only (no writer, no lock): what it held when
    /// opened. For `camtrail audit verify --embedded` beside a running `camtrail serve`;
    /// writes fail.
    pub fn open_read_only(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError(format!("{} does not exist", path.display())));
        }
        let readers = open_readers(path)?;
        let shared = {
            let connection = Self::lock(&readers[0]);
            let generations = staging_generations(&connection).map_err(failed)?;
            load_shared(&connection, &parts_dir(path), &generations)?
        };
        let (sender, _) = mpsc::channel(1);
        let (jobs, _) = std::sync::mpsc::channel();
        Ok(Self {
            readers: Arc::new(readers),
            next_reader: Arc::new(AtomicUsize::new(0)),
            shared: Arc::new(RwLock::new(shared)),
            writer: sender,
            jobs,
            counters: Arc::new(Counters::default()),
            tuning: Tuning::default(),
            path: Arc::new(path.to_path_buf()),
            _owner: None,
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
        connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `work` with a read connection of the main database and the in-memory state, on
    /// the blocking pool. The state stays read-locked throughout, so the parts it lists
    /// are not deleted meanwhile.
    async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Shared) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let readers = Arc::clone(&self.readers);
        let shared = Arc::clone(&self.shared);
        let index = self.next_reader.fetch_add(1, Ordering::Relaxed) % readers.len();
        tokio::task::spawn_blocking(move || {
            let shared = read_lock(&shared);
            work(&Self::lock(&readers[index]), &shared)
        })
        .await
        .map_err(failed)?
        .map_err(failed)
    }

    /// Hand `work` to the writer (waiting up to `queue_wait` for room) and wait until the
    /// transaction holding it has committed.
    async fn submit(&self, work: Work, queue_wait: Duration) -> Result<usize, PublishError> {
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

    /// Wait (up to `wait`) while more rows are staged in memory than the tuning allows.
    async fn wait_for_room(&self, wait: Duration) -> Result<(), PublishError> {
        let limit = self.tuning.max_staged_rows as i64;
        let started = tokio::time::Instant::now();
        while self.counters.staged_rows.load(Ordering::Relaxed) > limit {
            if started.elapsed() >= wait {
                return Err(PublishError::QueueFull {
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
    pub async fn write(&self, detections: Vec<Detection>) -> Result<usize, StoreError> {
        self.submit(Work::Detections(detections), QUEUE_FULL_WAIT)
            .await
            .map_err(failed)
    }

    /// Retention: remove detections and snapshots captured before `cutoff_ms` (parts wholly
    /// before it are deleted, straddling ones rewritten without the older rows). Returns
    /// the number of rows removed. The audit log is never touched.
    pub async fn delete_before(&self, cutoff_ms: i64) -> Result<u64, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Retention { cutoff_ms, reply })
            .map_err(|_| StoreError("the store is read-only or closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError("the maintenance thread stopped".into()))?
            .map_err(StoreError)
    }

    /// Wait until the maintenance thread has finished every job queued so far (flushes,
    /// merges, retention); for tests and orderly measurements.
    pub async fn maintenance_idle(&self) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.jobs
            .send(Job::Idle(reply))
            .map_err(|_| StoreError("the store is read-only or closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError("the maintenance thread stopped".into()))
    }

    /// Detections and snapshots captured before `cutoff_ms` (what
    /// [`Self::delete_before`] would remove).
    pub async fn count_before(&self, cutoff_ms: i64) -> Result<(u64, u64), StoreError> {
        self.read(move |connection, shared| {
            let mut detections = 0i64;
            for handle in &shared.parts {
                detections += if handle.part.max_ms < cutoff_ms {
                    handle.part.rows
                } else if handle.part.min_ms < cutoff_ms {
                    handle.count_before(cutoff_ms)?
                } else {
                    0
                };
            }
            detections += shared
                .hot
                .values()
                .map(|hot| hot.count_before(cutoff_ms) as i64)
                .sum::<i64>();
            let snapshots: i64 = connection.query_row(
                "SELECT count(*) FROM snapshots WHERE captured_at_ms < ?",
                params![cutoff_ms],
                |row| row.get(0),
            )?;
            Ok((detections as u64, snapshots as u64))
        })
        .await
    }

    /// Rows stored: in parts (a resend that reached two parts counts twice until they
    /// merge) plus the staged ones.
    pub async fn detection_count(&self) -> Result<u64, StoreError> {
        self.read(|_, shared| {
            let parts: i64 = shared.parts.iter().map(|h| h.part.rows).sum();
            let staged: usize = shared.hot.values().map(Hot::len).sum();
            Ok(parts as u64 + staged as u64)
        })
        .await
    }

    /// Every stored event id (for tests and checks: reads every part).
    pub async fn event_ids(&self) -> Result<HashSet<EventId>, StoreError> {
        self.read(|_, shared| {
            let mut ids: HashSet<EventId> = shared
                .hot
                .values()
                .flat_map(|hot| hot.event_ids().copied())
                .collect();
            for handle in &shared.parts {
                for id in handle.event_ids()? {
                    ids.insert(EventId::from_slice(&id).unwrap_or(EventId([0; 16])));
                }
            }
            Ok(ids)
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

    /// What the writer and the maintenance thread have done so far.
    pub fn writer_stats(&self) -> WriterStats {
        WriterStats {
            commits: self.counters.commits.load(Ordering::Relaxed),
            requests: self.counters.committed_requests.load(Ordering::Relaxed),
            queued_rows: self.counters.queued_rows.load(Ordering::Relaxed),
            flushes: self.counters.flushes.load(Ordering::Relaxed),
            merges: self.counters.merges.load(Ordering::Relaxed),
            parts: read_lock(&self.shared).parts.len(),
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

/// The pool of read-only connections to the main database.
fn open_readers(path: &Path) -> Result<Vec<Mutex<Connection>>, StoreError> {
    let mut readers = Vec::with_capacity(READERS);
    for _ in 0..READERS {
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(failed)?;
        reader
            .execute_batch("PRAGMA busy_timeout=10000; PRAGMA cache_size=-16384;")
            .map_err(failed)?;
        reader.set_prepared_statement_cache_capacity(16);
        readers.push(Mutex::new(reader));
    }
    Ok(readers)
}

/// Generations of the staging tables present, ascending.
fn staging_generations(connection: &Connection) -> rusqlite::Result<Vec<i64>> {
    let mut statement = connection.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name GLOB 'staging_[0-9]*'",
    )?;
    let names = statement.query_map([], |row| row.get::<_, String>(0))?;
    let mut generations = Vec::new();
    for name in names {
        if let Some(generation) = name?.strip_prefix("staging_").and_then(|g| g.parse().ok()) {
            generations.push(generation);
        }
    }
    generations.sort_unstable();
    Ok(generations)
}

/// The listed parts (opened) and the staged rows, read at open.
fn load_shared(
    connection: &Connection,
    dir: &Path,
    generations: &[i64],
) -> Result<Shared, StoreError> {
    let mut shared = Shared::default();
    let listed: Vec<Part> = {
        let mut statement = connection
            .prepare("SELECT id, rows, min_ms, max_ms FROM parts ORDER BY id")
            .map_err(failed)?;
        let rows = statement
            .query_map([], |row| {
                Ok(Part {
                    id: row.get(0)?,
                    rows: row.get(1)?,
                    min_ms: row.get(2)?,
                    max_ms: row.get(3)?,
                })
            })
            .map_err(failed)?;
        rows.collect::<rusqlite::Result<_>>().map_err(failed)?
    };
    for part in listed {
        let id = part.id;
        let handle = PartHandle::open(dir, part).map_err(|e| {
            StoreError(format!(
                "part {id} is listed but not readable in {}: {e}",
                dir.display()
            ))
        })?;
        shared.parts.push(handle);
    }
    for &generation in generations {
        let mut hot = Hot::default();
        let mut statement = connection
            .prepare(&format!(
                "SELECT {SIGHTING_COLUMNS} FROM staging_{generation} ORDER BY rowid"
            ))
            .map_err(failed)?;
        let rows = statement.query_map([], sighting).map_err(failed)?;
        for row in rows {
            hot.insert(row.map_err(failed)?);
        }
        shared.hot.insert(generation, hot);
    }
    Ok(shared)
}

/// Delete part files the manifest does not list (a build cut short by a crash).
fn remove_unlisted_parts(dir: &Path, parts: &[PartHandle]) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !parts.iter().any(|h| h.path == path) {
            tracing::info!(file = %path.display(), "removing a part file not in the manifest");
            let _ = std::fs::remove_file(&path);
        }
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
        self.read(move |_, shared| {
            let mut seen: HashSet<String> = HashSet::new();
            for hot in shared.hot.values() {
                seen.extend(hot.keys_seen(&keys, from_ms, to_ms));
            }
            for handle in shared.parts.iter().filter(|h| h.overlaps(from_ms, to_ms)) {
                seen.extend(handle.keys_seen(&keys, from_ms, to_ms)?);
            }
            Ok(keys.into_iter().filter(|k| seen.contains(k)).collect())
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
        self.read(move |_, shared| {
            let mut found: Vec<String> = Vec::new();
            for hot in shared.hot.values() {
                found.extend(hot.keys_like(&prefix, &like, from_ms, to_ms));
            }
            let end = prefix_end(&prefix);
            for handle in shared.parts.iter().filter(|h| h.overlaps(from_ms, to_ms)) {
                found.extend(handle.keys_like(&prefix, &end, &like, from_ms, to_ms, limit)?);
            }
            found.sort();
            found.dedup();
            found.truncate(limit);
            Ok(found)
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
        self.read(move |_, shared| {
            let mut rows = Vec::new();
            for hot in shared.hot.values() {
                rows.extend(hot.sightings(&keys, from_ms, to_ms));
            }
            // Each part holds an event once, so its first `limit` rows contain every row
            // of it that can be among the first `limit` distinct events overall.
            for handle in shared.parts.iter().filter(|h| h.overlaps(from_ms, to_ms)) {
                rows.extend(handle.sightings(&keys, from_ms, to_ms, limit)?);
            }
            let mut rows = ordered_unique(rows);
            rows.truncate(limit);
            Ok(rows)
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
        self.read(move |_, shared| {
            let cursor = after.unwrap_or(PassCursor {
                captured_at_ms: i64::MIN,
                event_id: EventId([0; 16]),
            });
            let mut rows = Vec::new();
            for hot in shared.hot.values() {
                rows.extend(hot.passes(&cameras, from_ms, to_ms, after));
            }
            for handle in shared.parts.iter().filter(|h| h.overlaps(from_ms, to_ms)) {
                rows.extend(handle.passes(&cameras, from_ms, to_ms, cursor, limit)?);
            }
            let mut rows = ordered_unique(rows);
            rows.truncate(limit);
            Ok(rows)
        })
        .await
    }

    async fn audit_records(&self, filter: AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
        self.read(move |connection, _| {
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
        self.read(move |connection, _| {
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
            .submit(
                Work::Audit(Box::new(record.clone())),
                Duration::from_secs(10),
            )
            .await
            .map_err(|error| AuditError(error.to_string()))?;
        chain.commit(&record);
        Ok(record)
    }
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

/// The store's figures for Prometheus, read at each scrape: `camtrail serve` registers it on
/// the query node's `/metrics`.
pub struct StoreMetrics(pub SqliteStore);

impl std::fmt::Debug for StoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoreMetrics").field(&self.0.path()).finish()
    }
}

impl prometheus_client::collector::Collector for StoreMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let stats = self.0.writer_stats();
        let staged = self.0.counters.staged_rows.load(Ordering::Relaxed);
        let counters = [
            (
                "camtrail_embedded_commits",
                "Group transactions committed (one fsync each)",
                stats.commits,
            ),
            (
                "camtrail_embedded_writes",
                "Writes committed: detection batches, audit records, part changes",
                stats.requests,
            ),
            (
                "camtrail_embedded_flushes",
                "Staging tables turned into part files",
                stats.flushes,
            ),
            ("camtrail_embedded_merges", "Part merges", stats.merges),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.max(0) as u64);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "camtrail_embedded_parts",
                "Part files now",
                stats.parts as i64,
            ),
            (
                "camtrail_embedded_staged_rows",
                "Rows staged in memory, waiting to become part of a part file",
                staged,
            ),
            (
                "camtrail_embedded_queued_rows",
                "Rows handed to the writer and not yet committed",
                stats.queued_rows,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
