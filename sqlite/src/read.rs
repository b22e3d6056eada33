//! The read side: [`SightingStore`] over the staged rows (in memory) and the part files,
//! each event id once; counts for retention and checks.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;
use std::sync::atomic::Ordering;

use camtrail_model::audit::{AuditEntry, AuditRecord};
use camtrail_model::{EventId, ObjectClass, VehicleAttributes};
use camtrail_storage::sql::{SqlValue, audit_page_conditions, prefix_end};
use camtrail_storage::{
    AuditCursor, AuditFilter, PassCursor, PassFilter, SightingStore, StorageError, StoredSighting,
    StoredSnapshot,
};
use rusqlite::{Connection, OptionalExtension, params};

use super::hot::Hot;
use super::{Shared, SqliteStore, failed, read_lock};

pub(crate) fn sighting(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredSighting> {
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
        attributes: VehicleAttributes {
            color: row.get(8)?,
            kind: row.get(9)?,
            plate_color: row.get(10)?,
            direction: row.get(12)?,
            speed_kmh: row.get::<_, f64>(13)? as f32,
            brand: row.get(11)?,
        },
        plate_char_confidence: row.get(14)?,
    })
}

const AUDIT_COLUMNS: &str = "node_id, seq, at_ms, user, role, case_id, reason, kind, \
    parameters_json, result_count, client_addr, prev_hash, hash";

/// An `audit_log` row selected with [`AUDIT_COLUMNS`].
fn audit_record(row: &rusqlite::Row<'_>) -> rusqlite::Result<AuditRecord> {
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
}

/// A seq as SQLite stores it (INTEGER is signed; chains never get near `i64::MAX`).
fn seq_value(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// Sort by `(captured_at_ms, event_id)`, keep each event id once.
fn ordered_unique(mut rows: Vec<StoredSighting>) -> Vec<StoredSighting> {
    rows.sort_by_key(|r| (r.captured_at_ms, r.event_id));
    let mut seen = HashSet::with_capacity(rows.len());
    rows.retain(|r| seen.insert(r.event_id));
    rows
}

impl SqliteStore {
    /// Run `work` with a read connection of the main database and the in-memory state, on
    /// the blocking pool. The state stays read-locked throughout, so the parts it lists
    /// are not deleted meanwhile.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Connection, &Shared) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, StorageError> {
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

    /// Detections and snapshots captured before `cutoff_ms` and not held (what
    /// [`Self::delete_before`] would remove).
    pub async fn count_before(
        &self,
        cutoff_ms: i64,
        held: &BTreeSet<String>,
    ) -> Result<(u64, u64), StorageError> {
        let keep = crate::write::keep(cutoff_ms, held);
        self.read(move |connection, shared| {
            let mut detections = 0i64;
            for handle in &shared.parts {
                detections += if handle.part.max_ms < keep.from_ms && keep.held.is_empty() {
                    handle.part.rows
                } else if handle.part.min_ms < keep.from_ms {
                    handle.count_removed(&keep)?
                } else {
                    0
                };
            }
            detections += shared
                .hot
                .values()
                .map(|hot| hot.count_removed(&keep) as i64)
                .sum::<i64>();
            let snapshots: i64 = connection.query_row(
                &format!(
                    "SELECT count(*) FROM snapshots WHERE {}",
                    keep.removed_sql()
                ),
                [],
                |row| row.get(0),
            )?;
            Ok((detections as u64, snapshots as u64))
        })
        .await
    }

    /// Rows stored: in parts (a resend that reached two parts counts twice until they
    /// merge) plus the staged ones.
    pub async fn detection_count(&self) -> Result<u64, StorageError> {
        self.read(|_, shared| {
            let parts: i64 = shared.parts.iter().map(|h| h.part.rows).sum();
            let staged: usize = shared.hot.values().map(Hot::len).sum();
            Ok(parts as u64 + staged as u64)
        })
        .await
    }

    /// The last record of `node_id`'s audit chain, if it has one (a primary-key look-up).
    pub async fn last_audit_record(
        &self,
        node_id: &str,
    ) -> Result<Option<AuditRecord>, StorageError> {
        let node_id = node_id.to_string();
        self.read(move |connection, _| {
            connection
                .prepare_cached(&format!(
                    "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE node_id = ? \
                     ORDER BY seq DESC LIMIT 1"
                ))?
                .query_row(params![node_id], audit_record)
                .optional()
        })
        .await
    }

    /// Every stored event id (for tests and checks: reads every part).
    pub async fn event_ids(&self) -> Result<HashSet<EventId>, StorageError> {
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
}

impl SightingStore for SqliteStore {
    async fn keys_seen(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
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
    ) -> Result<Vec<String>, StorageError> {
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
    ) -> Result<Vec<StoredSighting>, StorageError> {
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
        filter: &PassFilter,
        after: Option<PassCursor>,
        limit: usize,
    ) -> Result<Vec<StoredSighting>, StorageError> {
        if cameras.is_empty() {
            return Ok(Vec::new());
        }
        let cameras = cameras.to_vec();
        let filter = filter.clone();
        self.read(move |_, shared| {
            let cursor = after.unwrap_or(PassCursor {
                captured_at_ms: i64::MIN,
                event_id: EventId([0; 16]),
            });
            let mut rows = Vec::new();
            for hot in shared.hot.values() {
                rows.extend(hot.passes(&cameras, from_ms, to_ms, &filter, after));
            }
            for handle in shared.parts.iter().filter(|h| h.overlaps(from_ms, to_ms)) {
                rows.extend(handle.passes(&cameras, from_ms, to_ms, &filter, cursor, limit)?);
            }
            let mut rows = ordered_unique(rows);
            rows.truncate(limit);
            Ok(rows)
        })
        .await
    }

    async fn audit_records(
        &self,
        filter: &AuditFilter,
        after: Option<&AuditCursor>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        // Only the conditions asked for, so `audit_log_by_time` serves the order and the
        // cursor's range: each page reads from where the last one ended.
        let (conditions, bound) = audit_page_conditions(filter, after);
        let mut sql = format!("SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1{conditions}");
        let mut values: Vec<rusqlite::types::Value> = bound
            .into_iter()
            .map(|value| match value {
                SqlValue::Text(text) => text.into(),
                SqlValue::Int(int) => int.into(),
                SqlValue::UInt(seq) => seq_value(seq).into(),
            })
            .collect();
        sql.push_str(" ORDER BY at_ms DESC, node_id DESC, seq DESC LIMIT ?");
        values.push(i64::try_from(limit).unwrap_or(i64::MAX).into());
        self.read(move |connection, _| {
            let mut statement = connection.prepare_cached(&sql)?;
            let rows = statement.query_map(rusqlite::params_from_iter(values), audit_record)?;
            rows.collect()
        })
        .await
    }

    async fn all_audit_records(&self) -> Result<Vec<AuditRecord>, StorageError> {
        self.read(move |connection, _| {
            let mut statement = connection.prepare_cached(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY node_id, seq"
            ))?;
            let rows = statement.query_map([], audit_record)?;
            rows.collect()
        })
        .await
    }

    async fn snapshot(&self, event_id: EventId) -> Result<Option<StoredSnapshot>, StorageError> {
        self.read(move |connection, _| {
            connection
                .query_row(
                    "SELECT jpeg, captured_at_ms FROM snapshots WHERE event_id = ?",
                    params![event_id.as_bytes().as_slice()],
                    |row| {
                        Ok(StoredSnapshot {
                            jpeg: row.get(0)?,
                            captured_at_ms: row.get(1)?,
                        })
                    },
                )
                .optional()
        })
        .await
    }
}
