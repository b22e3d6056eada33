//! Opening a database: the owner lock, the schema, and what a crash may have left behind
//! (staged rows read back into memory, sealed staging tables queued to become parts again,
//! part files the manifest does not list removed).

use camtrail_storage::private;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use camtrail_storage::StorageError;
use rusqlite::Connection;
use tokio::sync::mpsc;

use super::builder::{Builder, Job};
use super::hot::Hot;
use super::parts::{Part, PartHandle};
use super::read::sighting;
use super::schema::{
    Columns, DETECTION_DEFS, SCHEMA, SIGHTING_COLUMNS, open_readers, parts_dir, staging_generations,
};
use super::writer::Writer;
use super::{BACKEND, Counters, QUEUE_REQUESTS, Shared, SqliteStore, Tuning, failed, read_lock};

/// How long opening waits for a store of this process that is still closing.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

impl SqliteStore {
    /// Open (or create) the database at `path` with the default [`Tuning`].
    pub fn open(path: &Path) -> Result<Self, StorageError> {
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
    pub fn open_with(path: &Path, tuning: Tuning) -> Result<Self, StorageError> {
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        // The database and everything beside it hold personal data: owner-only (0600;
        // SQLite gives its -wal and -shm files the database file's mode).
        let unavailable = |file: &Path, e: std::io::Error| {
            StorageError::unavailable(BACKEND, format_args!("{}: {e}", file.display()))
        };
        private::touch(&lock_path).map_err(|e| unavailable(&lock_path, e))?;
        let owner = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| {
                StorageError::unavailable(BACKEND, format_args!("{}: {e}", lock_path.display()))
            })?;
        // A store of this process dropped a moment ago may still be closing: its threads
        // hold the lock until their connections are closed (below). Wait for that briefly;
        // another process's store holds it for as long as it runs.
        let waited = std::time::Instant::now();
        while owner.try_lock().is_err() && waited.elapsed() < LOCK_WAIT {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        owner.try_lock().map_err(|_| {
            StorageError::refused(
                BACKEND,
                format_args!(
                    "{} is in use by another camtrail process (camtrail serve?); stop it, or let \
                 it apply retention itself (serve.retention_days)",
                    path.display()
                ),
            )
        })?;
        private::touch(path).map_err(|e| unavailable(path, e))?;
        for suffix in ["-wal", "-shm"] {
            let beside = PathBuf::from(format!("{}{suffix}", path.display()));
            private::restrict_if_exists(&beside).map_err(|e| unavailable(&beside, e))?;
        }
        let connection = Connection::open(path).map_err(failed)?;
        connection
            .execute_batch(
                "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA busy_timeout=10000;
                 PRAGMA cache_size=-65536; PRAGMA temp_store=MEMORY;",
            )
            .map_err(failed)?;
        connection.execute_batch(SCHEMA).map_err(failed)?;
        let dir = parts_dir(path);
        private::create_dir(&dir).map_err(|e| unavailable(&dir, e))?;
        // Part files an older version left readable by others are narrowed too.
        for entry in std::fs::read_dir(&dir).map_err(|e| unavailable(&dir, e))? {
            let file = entry.map_err(|e| unavailable(&dir, e))?.path();
            private::restrict_if_exists(&file).map_err(|e| unavailable(&file, e))?;
        }
        let mut generations = staging_generations(&connection).map_err(failed)?;
        // Staging tables of an older version get the columns added since (their rows read
        // the defaults); part files stay as they are and are read with defaults instead.
        for generation in &generations {
            let table = format!("staging_{generation}");
            Columns::of(&connection, "main", &table)
                .and_then(|columns| columns.add_missing(&connection, &table))
                .map_err(failed)?;
        }
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
        // The lock is held by every handle and by both threads: it is released only once the
        // writer and the maintenance thread have finished (their connections closed, no part
        // half-written), so the next store to open this database never overlaps them.
        let owner = Arc::new(owner);
        let (writer_owner, builder_owner) = (Arc::clone(&owner), Arc::clone(&owner));
        std::thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || {
                writer.run(requests);
                drop(writer_owner);
            })
            .map_err(failed)?;
        std::thread::Builder::new()
            .name("sqlite-maintenance".into())
            .spawn(move || {
                builder.run(job_queue);
                drop(builder_owner);
            })
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
            _owner: Some(owner),
        })
    }

    /// Open an existing database for reading only (no writer, no lock): what it held when
    /// opened. For `camtrail audit verify --embedded` beside a running `camtrail serve`;
    /// writes fail.
    pub fn open_read_only(path: &Path) -> Result<Self, StorageError> {
        if !path.exists() {
            return Err(StorageError::refused(
                BACKEND,
                format_args!("{} does not exist", path.display()),
            ));
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
}

/// The listed parts (opened) and the staged rows, read at open.
fn load_shared(
    connection: &Connection,
    dir: &Path,
    generations: &[i64],
) -> Result<Shared, StorageError> {
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
            StorageError::refused(
                BACKEND,
                format_args!(
                    "part {id} is listed but not readable in {}: {e}",
                    dir.display()
                ),
            )
        })?;
        shared.parts.push(handle);
    }
    for &generation in generations {
        let mut hot = Hot::default();
        // A read-only open cannot add columns: an older staging table reads the defaults.
        let table = format!("staging_{generation}");
        let columns = Columns::of(connection, "main", &table).map_err(failed)?;
        let mut statement = connection
            .prepare(&format!(
                "SELECT {} FROM {table} ORDER BY rowid",
                columns.select(SIGHTING_COLUMNS)
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
