//! The tables of the main database and of the part files, and the connections to it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use camtrail_storage::StorageError;
use rusqlite::{Connection, OpenFlags};

use super::{READERS, failed};

/// Columns of the staging tables and of every part, in order.
pub(crate) const DETECTION_COLUMNS: &str = "subject_key, captured_at_ms, event_id, camera_id, \
    object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, \
    bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms, plate_color, \
    vehicle_brand, direction, speed_kmh, plate_char_confidence";

pub(crate) const DETECTION_DEFS: &str = "subject_key TEXT NOT NULL, captured_at_ms INTEGER NOT NULL, \
    event_id BLOB NOT NULL, camera_id TEXT NOT NULL, object_class INTEGER NOT NULL, \
    plate TEXT NOT NULL, plate_confidence REAL NOT NULL, vehicle_color INTEGER NOT NULL, \
    vehicle_type INTEGER NOT NULL, bbox_x INTEGER NOT NULL, bbox_y INTEGER NOT NULL, \
    bbox_width INTEGER NOT NULL, bbox_height INTEGER NOT NULL, has_snapshot INTEGER NOT NULL, \
    gateway_id TEXT NOT NULL, received_at_ms INTEGER NOT NULL, \
    plate_color INTEGER NOT NULL DEFAULT 0, vehicle_brand TEXT NOT NULL DEFAULT '', \
    direction INTEGER NOT NULL DEFAULT 0, speed_kmh REAL NOT NULL DEFAULT 0, \
    plate_char_confidence BLOB NOT NULL DEFAULT x''";

/// Columns added to the detection tables after the first release: `(name, definition,
/// value of a row stored before)`. Staging tables of an older database get them at open
/// (`ALTER TABLE ... ADD COLUMN`); part files are never altered (they are immutable and may
/// be read by a read-only open), so reads and merges of an older part select the default
/// in their place ([`Columns`]).
pub(crate) const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("plate_color", "INTEGER NOT NULL DEFAULT 0", "0"),
    ("vehicle_brand", "TEXT NOT NULL DEFAULT ''", "''"),
    ("direction", "INTEGER NOT NULL DEFAULT 0", "0"),
    ("speed_kmh", "REAL NOT NULL DEFAULT 0", "0.0"),
    ("plate_char_confidence", "BLOB NOT NULL DEFAULT x''", "x''"),
];

/// Which of the [`ADDED_COLUMNS`] a staging table or part file lacks (written by an older
/// version): their expressions are the defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Columns {
    missing: Vec<&'static str>,
}

impl Columns {
    /// The columns of `schema.table` (`schema`: `main` or an attached database).
    pub(crate) fn of(connection: &Connection, schema: &str, table: &str) -> rusqlite::Result<Self> {
        let mut statement = connection.prepare("SELECT name FROM pragma_table_info(?1, ?2)")?;
        let present: Vec<String> = statement
            .query_map([table, schema], |row| row.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Self {
            missing: ADDED_COLUMNS
                .iter()
                .map(|(name, _, _)| *name)
                .filter(|name| !present.iter().any(|p| p == name))
                .collect(),
        })
    }

    /// Whether every column is there.
    pub(crate) fn complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// The expression that reads column `name`: the column, or its default when missing.
    pub(crate) fn expr(&self, name: &str) -> String {
        match ADDED_COLUMNS.iter().find(|(added, _, _)| *added == name) {
            Some((_, _, default)) if self.missing.contains(&name) => (*default).to_string(),
            _ => name.to_string(),
        }
    }

    /// `columns` (a comma-separated list of names) as a select list, a missing column as
    /// `<default> AS <name>`.
    pub(crate) fn select(&self, columns: &str) -> String {
        columns
            .split(',')
            .map(str::trim)
            .map(|name| {
                if self.missing.contains(&name) {
                    format!("{} AS {name}", self.expr(name))
                } else {
                    name.to_string()
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Add the missing columns to `table` of the main database (staging tables only).
    pub(crate) fn add_missing(&self, connection: &Connection, table: &str) -> rusqlite::Result<()> {
        for (name, definition, _) in ADDED_COLUMNS {
            if self.missing.contains(name) {
                connection.execute_batch(&format!(
                    "ALTER TABLE {table} ADD COLUMN {name} {definition}"
                ))?;
            }
        }
        Ok(())
    }
}

pub(crate) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS parts (
    id INTEGER PRIMARY KEY, rows INTEGER NOT NULL, min_ms INTEGER NOT NULL,
    max_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (
    case_id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watchlist (
    entry_id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS watchlist_hits (
    hit_id TEXT PRIMARY KEY, version INTEGER NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS legal_holds (
    case_id TEXT NOT NULL, event_id BLOB NOT NULL, placed_by TEXT NOT NULL,
    placed_at_ms INTEGER NOT NULL, PRIMARY KEY (case_id, event_id)
) WITHOUT ROWID;
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
CREATE INDEX IF NOT EXISTS audit_log_by_time ON audit_log (at_ms, node_id, seq);
";

/// What a [`crate::read::sighting`] reads, in its order.
pub(crate) const SIGHTING_COLUMNS: &str = "event_id, camera_id, captured_at_ms, subject_key, plate, \
    plate_confidence, object_class, has_snapshot, vehicle_color, vehicle_type, plate_color, \
    vehicle_brand, direction, speed_kmh, plate_char_confidence";

/// The folder of a database's part files.
pub(crate) fn parts_dir(path: &Path) -> PathBuf {
    PathBuf::from(format!("{}.parts", path.display()))
}

/// The pool of read-only connections to the main database.
pub(crate) fn open_readers(path: &Path) -> Result<Vec<Mutex<Connection>>, StorageError> {
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
pub(crate) fn staging_generations(connection: &Connection) -> rusqlite::Result<Vec<i64>> {
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
