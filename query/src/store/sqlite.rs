//! The embedded-mode store (DESIGN.md, "Two ways to run"): one bundled-SQLite database in
//! WAL mode holding detections, thumbnails and the audit chain. The same read trait as
//! ClickHouse ([`SightingStore`]), a write side for validated batches ([`SqliteStore::write`],
//! one transaction per call, `INSERT OR IGNORE` on `event_id`), and an [`AuditLog`] whose
//! records commit in the same database.
//!
//! Tables are clustered for the two access paths: `detections` is a `WITHOUT ROWID` table
//! keyed `(subject_key, captured_at_ms, event_id)` (a track is one range), with a covering
//! index `(camera_id, captured_at_ms, event_id)` for passes and a unique index on
//! `event_id` for idempotency. SQLite calls run on the blocking pool.

use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use camtrail_model::audit::{AuditChain, AuditEntry, AuditRecord};
use camtrail_model::{Detection, EventId, ObjectClass};
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};

use super::{
    AuditFilter, PassCursor, SightingStore, StoreError, StoredSighting, placeholders, prefix_end,
};
use crate::audit::{AuditError, AuditLog};

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

/// A SQLite database shared by readers, the writer and the audit log of one process.
#[derive(Clone)]
pub struct SqliteStore {
    connection: Arc<Mutex<Connection>>,
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
    /// Open (or create) the database at `path`: WAL mode, `synchronous=FULL` (a committed
    /// transaction survives power loss, so an ack after commit means durable).
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let connection = Connection::open(path).map_err(failed)?;
        connection
            .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
            .map_err(failed)?;
        connection.execute_batch(SCHEMA).map_err(failed)?;
        Ok(Self {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    fn lock(connection: &Mutex<Connection>) -> MutexGuard<'_, Connection> {
        connection.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Run `work` on the connection on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StoreError> {
        let connection = Arc::clone(&self.connection);
        tokio::task::spawn_blocking(move || work(&mut Self::lock(&connection)))
            .await
            .map_err(failed)?
            .map_err(failed)
    }

    /// Store validated detections in one transaction; a stored `event_id` is ignored
    /// (resends are harmless). Returns how many were new. Durable when it returns.
    pub async fn write(&self, detections: Vec<Detection>) -> Result<usize, StoreError> {
        self.with(move |connection| {
            let transaction = connection.transaction()?;
            let mut inserted = 0;
            {
                let mut detection_row = transaction.prepare_cached(
                    "INSERT OR IGNORE INTO detections VALUES \
                     (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )?;
                let mut snapshot_row = transaction
                    .prepare_cached("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)")?;
                for d in &detections {
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
            }
            transaction.commit()?;
            Ok(inserted)
        })
        .await
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
        let row = record.clone();
        self.store
            .with(move |connection| {
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
            })
            .await
            .map_err(|error| AuditError(error.to_string()))?;
        chain.commit(&record);
        Ok(record)
    }
}
