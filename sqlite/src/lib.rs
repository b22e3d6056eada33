//! The embedded-mode store (ARCHITECTURE.md, "Two ways to run"): bundled SQLite in WAL mode
//! holding detections, thumbnails and the audit chain. The same read trait as ClickHouse
//! ([`SightingStore`]), a write side for validated batches ([`SqliteStore::write`], also the
//! ingest node's [`Publisher`] in `camtrail serve`), an [`AuditLog`] whose records commit in
//! the same database, and retention ([`RetentionTarget`]).
//!
//! Modules: `schema` (tables, columns, connections), `recovery` (opening, and what a crash
//! left behind), `read` (the read trait), `write` (publishing, retention, flushing),
//! `audit`, `metrics`; the writer thread (`writer`), the maintenance thread that builds and
//! merges part files (`builder`), the in-memory index of staged rows (`hot`), one part
//! file (`parts`) and its key filter (`key_filter`).
//!
//! **Layout: staging tables and sorted part files** (the shape of ClickHouse's MergeTree).
//! Inserting each event straight into B-trees keyed by plate and by camera dirties one
//! random leaf page per row per index; every commit then rewrote most of the tree into the
//! WAL (measured: 29k events/s at 1.2M rows, falling as the file grew). So:
//! - accepted events are **appended** to the active `staging_<n>` table of the main
//!   database (a rowid table: a commit writes only its last pages) and indexed in memory
//!   (`hot`) for readers;
//! - at [`Tuning::flush_rows`] rows the writer seals it and starts `staging_<n+1>`; the
//!   maintenance thread (`builder`) copies the sealed table, sorted by `(subject_key,
//!   captured_at_ms, event_id)`, into a new file `<database>.parts/part_<id>.db`
//!   (`parts`: a `WITHOUT ROWID` table, a track is one range read, plus an index
//!   `(camera_id, captured_at_ms, event_id)` for passes), fsyncs it, and has the writer
//!   list it in `parts` and drop the staging table in one commit;
//! - with more than [`Tuning::max_parts`] parts, the smallest are merged into a new file
//!   the same way. Building and merging never hold the main database's write lock, so
//!   batches keep being acked meanwhile.
//!
//! Reads skip parts outside the asked window, and keys a part's key filter (a Bloom filter
//! stored in the part file, `key_filter`) rules out. An event id is stored once per part
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

mod audit;
mod builder;
mod cases;
#[cfg(test)]
mod contract_tests;
#[cfg(test)]
mod file_modes_tests;
mod hot;
mod key_filter;
mod metrics;
mod parts;
mod read;
mod recovery;
mod schema;
#[cfg(test)]
mod upgrade_tests;
mod write;
mod writer;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::Duration;

use camtrail_storage::StorageError;
#[cfg(doc)]
use camtrail_storage::{AuditLog, Publisher, RetentionTarget, SightingStore};
use rusqlite::Connection;
use tokio::sync::mpsc;

use builder::Job;
use hot::Hot;
use parts::PartHandle;
use writer::Request;

pub use audit::SqliteAuditLog;
pub use metrics::StoreMetrics;
pub use write::SqliteRetentionPlan;

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

/// The backend's name in errors and logs.
const BACKEND: &str = "sqlite";

fn failed(error: impl std::fmt::Display) -> StorageError {
    StorageError::unavailable(BACKEND, error)
}

impl SqliteStore {
    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
        connection.lock().unwrap_or_else(PoisonError::into_inner)
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
}
