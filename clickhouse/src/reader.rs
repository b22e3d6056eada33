//! [`ClickhouseStore`]: the read side over `detections`, `detections_by_hour`,
//! `subject_keys_daily` and `snapshots` (`migrations/`). Works on 18.16 and current
//! releases: lists are bound one `?` per value (18.16 has no array-typed `IN`), and every
//! query also bounds the partition key (`day`) so only the weeks of the window are opened.

use camtrail_model::audit::{AuditEntry, AuditRecord};
use camtrail_model::{EventId, ObjectClass, VehicleAttributes};
use camtrail_storage::sql::{
    SqlValue, audit_page_conditions, pass_filter_conditions, placeholders, prefix_end,
};
use camtrail_storage::{
    AuditCursor, AuditFilter, CameraWindow, PassCursor, PassFilter, SightingStore, StorageError,
    StoredSighting, StoredSnapshot,
};
use clickhouse::Client;
use serde::Deserialize;

use crate::ClickhouseConfig;
use crate::retention::format_date;

/// `YYYY-MM-DD` (UTC) of a unix-ms instant, for `Date` columns.
pub fn utc_day(ms: i64) -> String {
    format_date(ms.div_euclid(86_400_000))
}

/// The `hour` column of `detections_by_hour` for a unix-ms instant:
/// `intDiv(captured_at_ms, 3600000)`, which truncates toward zero as Rust's `/` does (so the
/// bounds `hour_of(from) ..= hour_of(to - 1)` hold every row of `[from, to)`, before 1970 too).
fn hour_of(ms: i64) -> i64 {
    ms / 3_600_000
}

/// `query` with `values` bound in order.
fn bind_all(
    mut query: clickhouse::query::Query,
    values: Vec<SqlValue>,
) -> clickhouse::query::Query {
    for value in values {
        query = match value {
            SqlValue::Text(text) => query.bind(text),
            SqlValue::Int(int) => query.bind(int),
            SqlValue::UInt(uint) => query.bind(uint),
        };
    }
    query
}

/// Reads from one ClickHouse database.
#[derive(Clone)]
pub struct ClickhouseStore {
    client: Client,
}

impl ClickhouseStore {
    /// The client reads and the case registry's writes go through.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// A store on `config`'s database. Answers are small (a track is tens of rows), so they
    /// come uncompressed: LZ4 would cost both ends more than it saves.
    pub fn new(config: &ClickhouseConfig) -> Self {
        Self {
            client: config
                .client()
                .with_compression(clickhouse::Compression::None),
        }
    }
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct SightingRow {
    event_id: [u8; 16],
    camera_id: String,
    captured_at_ms: i64,
    subject_key: String,
    plate: String,
    plate_confidence: f32,
    object_class: u8,
    has_snapshot: u8,
    vehicle_color: u8,
    vehicle_type: u8,
    plate_color: u8,
    vehicle_brand: String,
    direction: u8,
    speed_kmh: f32,
    plate_char_confidence: Vec<u8>,
}

impl From<SightingRow> for StoredSighting {
    fn from(row: SightingRow) -> Self {
        Self {
            event_id: EventId(row.event_id),
            camera_id: row.camera_id,
            captured_at_ms: row.captured_at_ms,
            subject_key: row.subject_key,
            plate: row.plate,
            plate_confidence: row.plate_confidence,
            // The sink stores only codes it decoded; anything else would be a vehicle-less row.
            object_class: ObjectClass::from_code(row.object_class).unwrap_or(ObjectClass::Vehicle),
            has_snapshot: row.has_snapshot != 0,
            attributes: VehicleAttributes {
                color: row.vehicle_color,
                kind: row.vehicle_type,
                plate_color: row.plate_color,
                direction: row.direction,
                speed_kmh: row.speed_kmh,
                brand: row.vehicle_brand,
            },
            plate_char_confidence: row.plate_char_confidence,
        }
    }
}

fn failed(error: clickhouse::error::Error) -> StorageError {
    StorageError::unavailable("clickhouse", error)
}

/// The columns of a [`SightingRow`], in its order; both `detections` and
/// `detections_by_hour` have them (`migrations/007_vehicle_attributes.sql`).
const SIGHTING_COLUMNS: &str = "event_id, camera_id, captured_at_ms, subject_key, plate, \
    plate_confidence, object_class, has_snapshot, vehicle_color, vehicle_type, plate_color, \
    vehicle_brand, direction, speed_kmh, plate_char_confidence";

const AUDIT_COLUMNS: &str = "node_id, seq, at_ms, user, role, case_id, reason, kind, \
    parameters_json, result_count, client_addr, prev_hash, hash";

/// An `audit_log` row selected with [`AUDIT_COLUMNS`].
#[derive(clickhouse::Row, Deserialize)]
struct AuditLogRow {
    node_id: String,
    seq: u64,
    at_ms: i64,
    user: String,
    role: String,
    case_id: String,
    reason: String,
    kind: String,
    parameters_json: String,
    result_count: u64,
    client_addr: String,
    prev_hash: String,
    hash: String,
}

impl From<AuditLogRow> for AuditRecord {
    fn from(row: AuditLogRow) -> Self {
        Self {
            node_id: row.node_id,
            seq: row.seq,
            entry: AuditEntry {
                at_ms: row.at_ms,
                user: row.user,
                role: row.role,
                case_id: row.case_id,
                reason: row.reason,
                kind: row.kind,
                parameters_json: row.parameters_json,
                result_count: row.result_count,
                client_addr: row.client_addr,
            },
            prev_hash: row.prev_hash,
            hash: row.hash,
        }
    }
}

impl SightingStore for ClickhouseStore {
    async fn keys_seen(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<String>, StorageError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT DISTINCT subject_key FROM subject_keys_daily \
             WHERE subject_key IN ({}) AND day >= toDate(?) AND day <= toDate(?)",
            placeholders(keys.len())
        );
        let mut query = self.client.query(&sql);
        for key in keys {
            query = query.bind(key);
        }
        query
            .bind(utc_day(from_ms))
            .bind(utc_day(to_ms))
            .fetch_all::<String>()
            .await
            .map_err(failed)
    }

    async fn keys_like(
        &self,
        prefix: &str,
        like: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<String>, StorageError> {
        // The prefix turns the LIKE into a primary-key range: keys >= prefix and below the
        // first string that no longer starts with it.
        let sql = "SELECT DISTINCT subject_key FROM subject_keys_daily \
             WHERE subject_key >= ? AND subject_key < ? AND subject_key LIKE ? \
             AND day >= toDate(?) AND day <= toDate(?) LIMIT ?";
        self.client
            .query(sql)
            .bind(prefix)
            .bind(prefix_end(prefix))
            .bind(like)
            .bind(utc_day(from_ms))
            .bind(utc_day(to_ms))
            .bind(limit as u64)
            .fetch_all::<String>()
            .await
            .map_err(failed)
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
        let sql = format!(
            "SELECT {SIGHTING_COLUMNS} FROM detections \
             WHERE subject_key IN ({}) AND captured_at_ms >= ? AND captured_at_ms < ? \
             AND day >= toDate(?) AND day <= toDate(?) \
             ORDER BY captured_at_ms, event_id LIMIT 1 BY event_id LIMIT ?",
            placeholders(keys.len())
        );
        let mut query = self.client.query(&sql);
        for key in keys {
            query = query.bind(key);
        }
        let rows = query
            .bind(from_ms)
            .bind(to_ms)
            .bind(utc_day(from_ms))
            .bind(utc_day(to_ms))
            .bind(limit as u64)
            .fetch_all::<SightingRow>()
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().map(StoredSighting::from).collect())
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
        let (after_ms, after_id) = after
            .map(|cursor| (cursor.captured_at_ms, cursor.event_id))
            .unwrap_or((i64::MIN, EventId([0; 16])));
        // The filter's conditions sit beside the range, so the page is cut after them.
        let (conditions, values) = pass_filter_conditions(filter, str::to_string);
        let sql = format!(
            "SELECT {SIGHTING_COLUMNS} FROM detections_by_hour \
             WHERE hour >= ? AND hour <= ? AND camera_id IN ({}) \
             AND captured_at_ms >= ? AND captured_at_ms < ? \
             AND day >= toDate(?) AND day <= toDate(?) \
             AND (captured_at_ms > ? OR (captured_at_ms = ? AND hex(event_id) > ?)){conditions} \
             ORDER BY captured_at_ms, event_id LIMIT 1 BY event_id LIMIT ?",
            placeholders(cameras.len()),
        );
        // A later page starts at its cursor's hour: the hours already paged are not read.
        let mut query = self
            .client
            .query(&sql)
            .bind(hour_of(from_ms.max(after_ms)))
            .bind(hour_of(to_ms.saturating_sub(1)));
        for camera in cameras {
            query = query.bind(camera);
        }
        query = query
            .bind(from_ms)
            .bind(to_ms)
            .bind(utc_day(from_ms))
            .bind(utc_day(to_ms))
            .bind(after_ms)
            .bind(after_ms)
            .bind(after_id.to_string().to_uppercase());
        query = bind_all(query, values);
        let rows = query
            .bind(limit as u64)
            .fetch_all::<SightingRow>()
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().map(StoredSighting::from).collect())
    }

    async fn passes_in(
        &self,
        windows: &[CameraWindow],
        filter: &PassFilter,
        limit: usize,
    ) -> Result<Vec<StoredSighting>, StorageError> {
        let windows: Vec<&CameraWindow> = windows
            .iter()
            .filter(|w| !w.cameras.is_empty() && w.from_ms < w.to_ms)
            .collect();
        if windows.is_empty() {
            return Ok(Vec::new());
        }
        // One query, one `(hour, camera_id, captured_at_ms)` range per window OR-ed together:
        // the primary-key analysis turns the disjunction into a set of mark ranges (18.16
        // too), so sixty one-camera windows around a target's sightings cost one round trip,
        // and five scenes on five days read only their own hours. The OR is evaluated on
        // every row read, which the hour-first key keeps few (BENCHMARKS.md, issue 17).
        let ranges = windows
            .iter()
            .map(|w| {
                format!(
                    "(hour >= ? AND hour <= ? AND camera_id IN ({}) \
                     AND captured_at_ms >= ? AND captured_at_ms < ? \
                     AND day >= toDate(?) AND day <= toDate(?))",
                    placeholders(w.cameras.len())
                )
            })
            .collect::<Vec<_>>()
            .join(" OR ");
        let (conditions, values) = pass_filter_conditions(filter, str::to_string);
        let sql = format!(
            "SELECT {SIGHTING_COLUMNS} FROM detections_by_hour WHERE ({ranges}){conditions} \
             ORDER BY captured_at_ms, event_id LIMIT 1 BY event_id LIMIT ?"
        );
        let mut query = self.client.query(&sql);
        for window in &windows {
            query = query
                .bind(hour_of(window.from_ms))
                .bind(hour_of(window.to_ms.saturating_sub(1)));
            for camera in &window.cameras {
                query = query.bind(camera);
            }
            query = query
                .bind(window.from_ms)
                .bind(window.to_ms)
                .bind(utc_day(window.from_ms))
                .bind(utc_day(window.to_ms));
        }
        query = bind_all(query, values);
        let rows = query
            .bind(limit as u64)
            .fetch_all::<SightingRow>()
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().map(StoredSighting::from).collect())
    }

    async fn audit_records(
        &self,
        filter: &AuditFilter,
        after: Option<&AuditCursor>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StorageError> {
        let (conditions, values) = audit_page_conditions(filter, after);
        // A record the sink delivered twice is stored twice until the parts merge: listed
        // once (the copies share the sort key, so a page boundary cannot split them).
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE 1{conditions} \
             ORDER BY at_ms DESC, node_id DESC, seq DESC LIMIT 1 BY node_id, seq LIMIT ?"
        );
        let mut query = self.client.query(&sql);
        query = bind_all(query, values);
        let rows = query
            .bind(limit as u64)
            .fetch_all::<AuditLogRow>()
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    async fn all_audit_records(&self) -> Result<Vec<AuditRecord>, StorageError> {
        let rows = self
            .client
            .query(&format!(
                "SELECT {AUDIT_COLUMNS} FROM audit_log ORDER BY node_id, seq"
            ))
            .fetch_all::<AuditLogRow>()
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().map(AuditRecord::from).collect())
    }

    async fn snapshot(&self, event_id: EventId) -> Result<Option<StoredSnapshot>, StorageError> {
        #[derive(clickhouse::Row, Deserialize)]
        struct Jpeg {
            #[serde(with = "serde_bytes_compat")]
            jpeg: Vec<u8>,
            captured_at_ms: i64,
        }
        let rows = self
            .client
            .query(
                "SELECT jpeg, captured_at_ms FROM snapshots \
                 WHERE event_id = toFixedString(unhex(?), 16) LIMIT 1",
            )
            .bind(event_id.to_string())
            .fetch_all::<Jpeg>()
            .await
            .map_err(failed)?;
        Ok(rows.into_iter().next().map(|row| StoredSnapshot {
            jpeg: row.jpeg,
            captured_at_ms: row.captured_at_ms,
        }))
    }
}

/// RowBinary `String` → `Vec<u8>`: the bytes as one blob (not a sequence of numbers).
mod serde_bytes_compat {
    use serde::{Deserializer, de::Visitor};

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        struct Bytes;
        impl Visitor<'_> for Bytes {
            type Value = Vec<u8>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
                Ok(v.to_vec())
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Vec<u8>, E> {
                Ok(v)
            }
            fn visit_str<E>(self, v: &str) -> Result<Vec<u8>, E> {
                Ok(v.as_bytes().to_vec())
            }
        }
        deserializer.deserialize_bytes(Bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_days() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_764_158_400_000), "2025-11-26");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(-1), "1969-12-31");
    }

    #[test]
    fn hours_match_clickhouse_int_div() {
        // `SELECT intDiv(toInt64(-1), 3600000), intDiv(toInt64(-3600001), 3600000)` is
        // `0, -1` on 18.16 and current releases.
        assert_eq!(hour_of(-1), 0);
        assert_eq!(hour_of(-3_600_001), -1);
        assert_eq!(hour_of(3_599_999), 0);
        assert_eq!(hour_of(1_764_158_400_000), 490_044);
    }
}
