//! Sorted parts: each one a SQLite file of its own (`<database>.parts/part_<id>.db`) holding
//! one `WITHOUT ROWID` table `part` keyed `(subject_key, captured_at_ms, event_id)` and an
//! index `(camera_id, captured_at_ms, event_id)`. A part is written once, by the
//! maintenance thread, in key order (each page once, no journal), fsynced, and only then
//! listed in the main database's `parts` table; after that it is only read, until a merge or
//! retention replaces it with a new file. Because a part is its own file, building one
//! never holds the main database's write lock: acks go on while parts are built.
//!
//! Each part file also holds a Bloom filter of its subject keys (`key_filter`), loaded when
//! the part is opened: reads by key skip the keys (and parts) it rules out.

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};

use rusqlite::{Connection, OpenFlags, params};

use super::key_filter::{FORMAT, KeyFilter, key_hash};
use super::read::sighting;
use super::schema::{Columns, DETECTION_COLUMNS, DETECTION_DEFS, SIGHTING_COLUMNS};
use camtrail_storage::sql::{SqlValue, pass_filter_conditions};
use camtrail_storage::{PassCursor, PassFilter, StoredSighting};

/// A part's entry in the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Part {
    pub(super) id: i64,
    pub(super) rows: i64,
    pub(super) min_ms: i64,
    pub(super) max_ms: i64,
}

/// The file of part `id`.
pub(super) fn part_path(dir: &Path, id: i64) -> PathBuf {
    dir.join(format!("part_{id}.db"))
}

/// An open part: its manifest entry and read connections.
pub(super) struct PartHandle {
    pub(super) part: Part,
    pub(super) path: PathBuf,
    readers: Vec<Mutex<Connection>>,
    /// The part's subject keys, if its file has a filter in [`FORMAT`].
    filter: Option<KeyFilter>,
    /// The columns its file has (one written by an older version lacks the newer ones).
    columns: Columns,
    /// [`SIGHTING_COLUMNS`] as this part's select list.
    select: String,
}

/// Read connections per part.
const PART_READERS: usize = 2;

impl std::fmt::Debug for PartHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PartHandle")
            .field("part", &self.part)
            .finish()
    }
}

impl PartHandle {
    pub(super) fn open(dir: &Path, part: Part) -> rusqlite::Result<Self> {
        let path = part_path(dir, part.id);
        let mut readers = Vec::with_capacity(PART_READERS);
        for _ in 0..PART_READERS {
            let reader = Connection::open_with_flags(
                &path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            reader.execute_batch(
                "PRAGMA cache_size=-8192; PRAGMA mmap_size=268435456; PRAGMA query_only=1;",
            )?;
            reader.set_prepared_statement_cache_capacity(16);
            readers.push(Mutex::new(reader));
        }
        let (filter, columns) = {
            let first = readers[0].lock().unwrap_or_else(PoisonError::into_inner);
            (load_filter(&first), Columns::of(&first, "main", "part")?)
        };
        if !columns.complete() {
            tracing::debug!(
                part = part.id,
                "part written by an older version: its missing columns read as defaults"
            );
        }
        let select = columns.select(SIGHTING_COLUMNS);
        if filter.is_none() {
            tracing::debug!(
                part = part.id,
                "part has no key filter: every key is probed"
            );
        }
        Ok(Self {
            part,
            path,
            readers,
            filter,
            columns,
            select,
        })
    }

    /// Those of `keys` the part may hold (all of them without a filter).
    fn may_hold<'k>(&self, keys: &'k [String]) -> Vec<&'k String> {
        keys.iter()
            .filter(|key| self.filter.as_ref().is_none_or(|f| f.may_contain(key)))
            .collect()
    }

    /// A free read connection (or the first, waiting).
    fn connection(&self) -> MutexGuard<'_, Connection> {
        for reader in &self.readers {
            if let Ok(guard) = reader.try_lock() {
                return guard;
            }
        }
        self.readers[0]
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the part holds rows captured in `[from_ms, to_ms)` at all.
    pub(super) fn overlaps(&self, from_ms: i64, to_ms: i64) -> bool {
        self.part.min_ms < to_ms && self.part.max_ms >= from_ms
    }

    fn query(
        &self,
        sql: &str,
        values: Vec<rusqlite::types::Value>,
    ) -> rusqlite::Result<Vec<StoredSighting>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(values), sighting)?;
        rows.collect()
    }

    fn strings(
        &self,
        sql: &str,
        values: Vec<rusqlite::types::Value>,
    ) -> rusqlite::Result<Vec<String>> {
        let connection = self.connection();
        let mut statement = connection.prepare_cached(sql)?;
        let rows = statement.query_map(rusqlite::params_from_iter(values), |row| row.get(0))?;
        rows.collect()
    }

    /// Which of `keys` have a row in `[from_ms, to_ms)`.
    pub(super) fn keys_seen(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> rusqlite::Result<Vec<String>> {
        let keys = self.may_hold(keys);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT subject_key FROM part WHERE subject_key IN ({}) \
             AND captured_at_ms >= ? AND captured_at_ms < ?",
            camtrail_storage::sql::placeholders(keys.len())
        );
        let mut values: Vec<rusqlite::types::Value> =
            keys.into_iter().cloned().map(Into::into).collect();
        values.extend([from_ms.into(), to_ms.into()]);
        self.strings(&sql, values)
    }

    /// Keys in `[prefix, prefix_end)` matching `like` with a row in the window.
    pub(super) fn keys_like(
        &self,
        prefix: &str,
        prefix_end: &str,
        like: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> rusqlite::Result<Vec<String>> {
        self.strings(
            "SELECT DISTINCT subject_key FROM part WHERE subject_key >= ? AND subject_key < ? \
             AND subject_key LIKE ? ESCAPE '\\' AND captured_at_ms >= ? AND captured_at_ms < ? \
             LIMIT ?",
            vec![
                prefix.to_string().into(),
                prefix_end.to_string().into(),
                like.to_string().into(),
                from_ms.into(),
                to_ms.into(),
                (limit as i64).into(),
            ],
        )
    }

    /// The first `limit` rows of `keys` in the window, by `(captured_at_ms, event_id)`.
    pub(super) fn sightings(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> rusqlite::Result<Vec<StoredSighting>> {
        let keys = self.may_hold(keys);
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT {} FROM part WHERE subject_key IN ({}) \
             AND captured_at_ms >= ? AND captured_at_ms < ? \
             ORDER BY captured_at_ms, event_id LIMIT ?",
            self.select,
            camtrail_storage::sql::placeholders(keys.len())
        );
        let mut values: Vec<rusqlite::types::Value> =
            keys.into_iter().cloned().map(Into::into).collect();
        values.extend([from_ms.into(), to_ms.into(), (limit as i64).into()]);
        self.query(&sql, values)
    }

    /// The first `limit` rows at `cameras` in the window after `after`.
    pub(super) fn passes(
        &self,
        cameras: &[String],
        from_ms: i64,
        to_ms: i64,
        filter: &PassFilter,
        after: PassCursor,
        limit: usize,
    ) -> rusqlite::Result<Vec<StoredSighting>> {
        // The filter is part of the range scan of `part_by_camera`, before the LIMIT; an
        // older part compares its defaults in place of the columns it lacks.
        let (conditions, filter_values) =
            pass_filter_conditions(filter, |name| self.columns.expr(name));
        let sql = format!(
            "SELECT {} FROM part INDEXED BY part_by_camera \
             WHERE camera_id IN ({}) AND captured_at_ms >= ? AND captured_at_ms < ? \
             AND (captured_at_ms > ? OR (captured_at_ms = ? AND event_id > ?)){conditions} \
             ORDER BY captured_at_ms, event_id LIMIT ?",
            self.select,
            camtrail_storage::sql::placeholders(cameras.len())
        );
        let mut values: Vec<rusqlite::types::Value> =
            cameras.iter().cloned().map(Into::into).collect();
        values.extend([
            from_ms.into(),
            to_ms.into(),
            after.captured_at_ms.into(),
            after.captured_at_ms.into(),
            after.event_id.as_bytes().to_vec().into(),
        ]);
        values.extend(filter_values.into_iter().map(|value| match value {
            SqlValue::Text(text) => rusqlite::types::Value::from(text),
            SqlValue::Int(int) => int.into(),
            SqlValue::UInt(uint) => i64::try_from(uint).unwrap_or(i64::MAX).into(),
        }));
        values.push((limit as i64).into());
        self.query(&sql, values)
    }

    /// Rows retention would remove.
    pub(super) fn count_removed(&self, keep: &Keep) -> rusqlite::Result<i64> {
        self.connection().query_row(
            &format!("SELECT count(*) FROM part WHERE {}", keep.removed_sql()),
            [],
            |row| row.get(0),
        )
    }

    /// Every event id.
    pub(super) fn event_ids(&self) -> rusqlite::Result<Vec<Vec<u8>>> {
        let connection = self.connection();
        let mut statement = connection.prepare("SELECT event_id FROM part")?;
        let rows = statement.query_map([], |row| row.get(0))?;
        rows.collect()
    }
}

/// Where a new part's rows come from.
pub(super) enum Source {
    /// A staging table of the main database.
    Staging { database: PathBuf, table: String },
    /// Existing part files.
    Parts(Vec<PathBuf>),
}

/// Rows retention would remove from the part file at `path` (a connection of its own).
pub(super) fn count_removed_in(path: &Path, keep: &Keep) -> rusqlite::Result<i64> {
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    connection.query_row(
        &format!("SELECT count(*) FROM part WHERE {}", keep.removed_sql()),
        [],
        |row| row.get(0),
    )
}

/// What retention keeps of the rows it looks at: those captured at or after `from_ms`,
/// and the held event ids (legal holds) whenever they were captured.
#[derive(Debug, Clone)]
pub(super) struct Keep {
    pub(super) from_ms: i64,
    pub(super) held: std::sync::Arc<std::collections::BTreeSet<[u8; 16]>>,
}

impl Keep {
    /// Whether a staged row stays.
    pub(super) fn keeps(&self, captured_at_ms: i64, event_id: &[u8; 16]) -> bool {
        captured_at_ms >= self.from_ms || self.held.contains(event_id)
    }

    /// The SQL condition selecting the rows that go (a table with `captured_at_ms` and a
    /// BLOB `event_id`); every value in it is formatted here from numbers and bytes.
    pub(super) fn removed_sql(&self) -> String {
        if self.held.is_empty() {
            return format!("captured_at_ms < {}", self.from_ms);
        }
        let mut list = String::with_capacity(self.held.len() * 36);
        for (i, id) in self.held.iter().enumerate() {
            if i > 0 {
                list.push(',');
            }
            list.push_str("X'");
            for byte in id {
                list.push_str(&format!("{byte:02x}"));
            }
            list.push('\'');
        }
        format!(
            "(captured_at_ms < {} AND event_id NOT IN ({list}))",
            self.from_ms
        )
    }
}

/// Write part `id` into `dir` from `source` (with `keep`, only the rows it keeps),
/// sorted by key, duplicates of an event collapsed, indexed, fsynced. Returns its entry, or
/// `None` (and no file) when no row qualifies.
pub(super) fn build_part(
    dir: &Path,
    id: i64,
    source: &Source,
    keep: Option<&Keep>,
) -> rusqlite::Result<Option<Part>> {
    let path = part_path(dir, id);
    let _ = std::fs::remove_file(&path);
    // Detections: owner-only (0600) before SQLite creates it with its default mode.
    camtrail_storage::private::touch(&path)
        .map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let connection = Connection::open(&path)?;
    // Not visible to anyone until listed in the manifest, after the fsync below: no journal.
    connection.execute_batch(
        "PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA temp_store=MEMORY; \
         PRAGMA cache_size=-131072;",
    )?;
    let selects: Vec<String> = match source {
        Source::Staging { database, table } => {
            connection.execute(
                "ATTACH DATABASE ?1 AS src0",
                params![database.display().to_string()],
            )?;
            let columns = Columns::of(&connection, "src0", table)?;
            vec![format!(
                "SELECT {} FROM src0.{table}",
                columns.select(DETECTION_COLUMNS)
            )]
        }
        Source::Parts(paths) => {
            let mut selects = Vec::with_capacity(paths.len());
            for (i, file) in paths.iter().enumerate() {
                connection.execute(
                    &format!("ATTACH DATABASE ?1 AS src{i}"),
                    params![file.display().to_string()],
                )?;
                // A part of an older version gives the defaults for the columns it lacks.
                let columns = Columns::of(&connection, &format!("src{i}"), "part")?;
                selects.push(format!(
                    "SELECT {} FROM src{i}.part",
                    columns.select(DETECTION_COLUMNS)
                ));
            }
            selects
        }
    };
    let filter = keep.map_or(String::new(), |keep| {
        format!("WHERE NOT {}", keep.removed_sql())
    });
    connection.execute_batch(&format!(
        "CREATE TABLE part ({DETECTION_DEFS}, \
             PRIMARY KEY (subject_key, captured_at_ms, event_id)) WITHOUT ROWID;
         INSERT OR IGNORE INTO part ({DETECTION_COLUMNS}) SELECT * FROM ({}) {filter} \
             ORDER BY subject_key, captured_at_ms, event_id;
         CREATE INDEX part_by_camera ON part (camera_id, captured_at_ms, event_id);",
        selects.join(" UNION ALL ")
    ))?;
    for i in 0..selects.len() {
        connection.execute_batch(&format!("DETACH DATABASE src{i}"))?;
    }
    store_filter(&connection)?;
    let (rows, min_ms, max_ms): (i64, Option<i64>, Option<i64>) = connection.query_row(
        "SELECT count(*), min(captured_at_ms), max(captured_at_ms) FROM part",
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    drop(connection);
    if rows == 0 {
        let _ = std::fs::remove_file(&path);
        return Ok(None);
    }
    sync(&path).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    Ok(Some(Part {
        id,
        rows,
        min_ms: min_ms.unwrap_or(0),
        max_ms: max_ms.unwrap_or(-1),
    }))
}

/// Build the part's key filter (one pass over the keys in key order) and store it in the
/// file.
fn store_filter(connection: &Connection) -> rusqlite::Result<()> {
    let mut hashes: Vec<u64> = Vec::new();
    {
        let mut statement = connection.prepare("SELECT DISTINCT subject_key FROM part")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            hashes.push(key_hash(row.get_ref(0)?.as_str()?));
        }
    }
    let filter = KeyFilter::from_key_hashes(&hashes);
    connection.execute_batch(
        "CREATE TABLE key_filter (format TEXT NOT NULL, hashes INTEGER NOT NULL, bits BLOB NOT NULL)",
    )?;
    connection.execute(
        "INSERT INTO key_filter VALUES (?1, ?2, ?3)",
        params![FORMAT, filter.hashes(), filter.to_bytes()],
    )?;
    Ok(())
}

/// The part's key filter, if its file holds one in [`FORMAT`] (a part built before filters,
/// or in another format, has none and is probed key by key).
fn load_filter(connection: &Connection) -> Option<KeyFilter> {
    let (format, hashes, bits): (String, i64, Vec<u8>) = connection
        .query_row("SELECT format, hashes, bits FROM key_filter", [], |row| {
            Ok((row.get(0)?, row.get(1)?, row.get(2)?))
        })
        .ok()?;
    (format == FORMAT).then(|| KeyFilter::from_bytes(hashes, &bits))?
}

/// fsync a new file and its directory entry.
fn sync(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()?;
    if let Some(dir) = path.parent() {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The columns of the first release (the others have defaults).
    const OLD_COLUMNS: &str = "subject_key, captured_at_ms, event_id, camera_id, \
        object_class, plate, plate_confidence, vehicle_color, vehicle_type, bbox_x, bbox_y, \
        bbox_width, bbox_height, has_snapshot, gateway_id, received_at_ms";

    /// A staging table of `rows` detections: key `K<i % keys>`, captured at `i` ms.
    fn staging(dir: &Path, rows: i64, keys: i64) -> Source {
        let database = dir.join("main.db");
        let connection = Connection::open(&database).expect("main db");
        connection
            .execute_batch(&format!("CREATE TABLE staging_1 ({DETECTION_DEFS})"))
            .expect("staging table");
        for i in 0..rows {
            connection
                .execute(
                    &format!(
                        "INSERT INTO staging_1 ({OLD_COLUMNS}) VALUES \
                         (?1, ?2, ?3, 'cam-1', 1, ?1, 0.9, 0, 0, 0, 0, 0, 0, 0, 'gw', ?2)"
                    ),
                    params![format!("K{}", i % keys), i, i.to_le_bytes().to_vec()],
                )
                .expect("row");
        }
        Source::Staging {
            database,
            table: "staging_1".into(),
        }
    }

    #[test]
    fn a_part_carries_a_key_filter_and_reads_alike_without_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = staging(dir.path(), 2_000, 500);
        let part = build_part(dir.path(), 1, &source, None)
            .expect("build")
            .expect("rows");
        let asked: Vec<String> = (0..2_000).map(|i| format!("K{i}")).collect();

        let with = PartHandle::open(dir.path(), part.clone()).expect("open");
        assert!(with.filter.is_some(), "a new part has a filter");
        let seen_with = with.keys_seen(&asked, 0, 2_000).expect("keys_seen");
        let rows_with = with.sightings(&asked[..3], 0, 2_000, 100).expect("rows");
        let none_with = with
            .sightings(&asked[600..700], 0, 2_000, 100)
            .expect("absent keys");

        // A part built before filters existed: the same answers by probing every key.
        Connection::open(part_path(dir.path(), 1))
            .and_then(|c| c.execute_batch("DROP TABLE key_filter"))
            .expect("drop filter");
        let without = PartHandle::open(dir.path(), part).expect("open");
        assert!(without.filter.is_none());
        assert_eq!(seen_with.len(), 500);
        assert_eq!(
            seen_with,
            without.keys_seen(&asked, 0, 2_000).expect("keys_seen")
        );
        assert_eq!(rows_with.len(), 12);
        assert_eq!(
            rows_with,
            without.sightings(&asked[..3], 0, 2_000, 100).expect("rows")
        );
        assert!(none_with.is_empty());
        // The window still applies to keys the filter lets through.
        assert_eq!(with.keys_seen(&asked, 0, 100).expect("window").len(), 100);
    }
}
