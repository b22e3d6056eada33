//! What the query service reads, as a trait with one implementation per backend
//! (ARCHITECTURE.md, "Two ways to run"): `camtrail_clickhouse::ClickhouseStore` for the
//! distributed mode, `camtrail_sqlite::SqliteStore` (bundled SQLite, which also takes
//! writes and the audit chain) for the embedded mode. The `testsuite` module runs one set
//! of tests against both. The track logic never sees which backend answered.
//!
//! Every read is one primary-key range (or a short list of them): sightings by
//! `(subject_key, captured_at_ms)`, passes by `(camera_id, captured_at_ms)`, keys by
//! `(subject_key, day)` in the small per-day key table, a snapshot by `event_id`. The audit
//! log is the exception: it is filtered and listed newest first, a page at a time (keyset
//! pagination on `(at_ms, node_id, seq)`, never OFFSET). Values are bound as parameters,
//! never spliced into SQL text.

use std::future::Future;

use camtrail_model::audit::AuditRecord;
use camtrail_model::{EventId, ObjectClass, VehicleAttributes};

use crate::StorageError;

/// One stored detection as a track or pass list needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSighting {
    /// Idempotency key.
    pub event_id: EventId,
    /// Camera.
    pub camera_id: String,
    /// Capture instant, unix ms UTC.
    pub captured_at_ms: i64,
    /// Stored subject key.
    pub subject_key: String,
    /// Plate as read.
    pub plate: String,
    /// Reader confidence.
    pub plate_confidence: f32,
    /// What was seen.
    pub object_class: ObjectClass,
    /// Whether a thumbnail is stored.
    pub has_snapshot: bool,
    /// Vehicle attributes as the camera classified them (codes; 0 / empty when unknown;
    /// rows stored before they were kept read as unknown).
    pub attributes: VehicleAttributes,
    /// Reader's confidence per plate character, 0–100 each (empty when unknown).
    pub plate_char_confidence: Vec<u8>,
}

impl StoredSighting {
    /// The sighting of a validated detection.
    pub fn from_detection(detection: &camtrail_model::Detection) -> Self {
        Self {
            event_id: detection.event_id,
            camera_id: detection.camera_id.clone(),
            captured_at_ms: detection.captured_at_ms,
            subject_key: detection.subject_key.clone(),
            plate: detection.plate.clone(),
            plate_confidence: detection.plate_confidence,
            object_class: detection.object_class,
            has_snapshot: detection.thumbnail_jpeg.is_some(),
            attributes: detection.attributes.clone(),
            plate_char_confidence: detection.plate_char_confidence.clone(),
        }
    }
}

/// Which passes to return: every field that is set must match. Backends apply it in storage,
/// inside the `(camera_id, captured_at_ms)` range and before the page is cut, so a page is
/// short only at the end and the cursor stays keyset-correct. Codes are the proto enum
/// numbers; the brand matches exactly (bytes as stored).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PassFilter {
    /// Only this object class.
    pub object_class: Option<ObjectClass>,
    /// Only this `PlateColor` number.
    pub plate_color: Option<u8>,
    /// Only this `VehicleColor` number.
    pub vehicle_color: Option<u8>,
    /// Only this `VehicleType` number.
    pub vehicle_type: Option<u8>,
    /// Only this brand.
    pub vehicle_brand: Option<String>,
    /// Only this `Direction` number.
    pub direction: Option<u8>,
}

impl PassFilter {
    /// Only `class` (all classes when `None`), nothing else.
    pub fn class(class: Option<ObjectClass>) -> Self {
        Self {
            object_class: class,
            ..Self::default()
        }
    }

    /// Whether `sighting` passes the filter (the definition the SQL conditions follow).
    pub fn matches(&self, sighting: &StoredSighting) -> bool {
        let attributes = &sighting.attributes;
        self.object_class.is_none_or(|c| c == sighting.object_class)
            && self.plate_color.is_none_or(|c| c == attributes.plate_color)
            && self.vehicle_color.is_none_or(|c| c == attributes.color)
            && self.vehicle_type.is_none_or(|c| c == attributes.kind)
            && self.direction.is_none_or(|c| c == attributes.direction)
            && self
                .vehicle_brand
                .as_deref()
                .is_none_or(|b| b == attributes.brand)
    }
}

/// Where a page of passes ends: the next page starts after this `(captured_at_ms, event_id)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct PassCursor {
    /// Capture instant of the last pass returned.
    pub captured_at_ms: i64,
    /// Its event id.
    pub event_id: EventId,
}

/// Some cameras and one time window `[from_ms, to_ms)`: one place-and-time a broad search reads
/// (a scene's cameras over its window, or one camera around one sighting of a target).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CameraWindow {
    /// Cameras read.
    pub cameras: Vec<String>,
    /// Window start, unix ms, inclusive.
    pub from_ms: i64,
    /// Window end, unix ms, exclusive.
    pub to_ms: i64,
}

/// The thumbnail of one event, with the event's capture instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSnapshot {
    /// The JPEG thumbnail.
    pub jpeg: Vec<u8>,
    /// When its event was captured, unix ms UTC.
    pub captured_at_ms: i64,
}

/// Page size of an audit listing when none is asked for.
pub const AUDIT_PAGE_DEFAULT: usize = 1_000;
/// The largest audit listing page.
pub const AUDIT_PAGE_MAX: usize = 10_000;

/// Which audit records to list: each field that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditFilter {
    /// Only this case.
    pub case_id: Option<String>,
    /// Only this user.
    pub user: Option<String>,
    /// Only this kind (`track`, `passes`, `snapshot`, `retention`, `audit_read`, ...).
    pub kind: Option<String>,
    /// Only records written at or after this instant (`at_ms`), unix ms.
    pub from_ms: Option<i64>,
    /// Only records written before this instant, unix ms.
    pub to_ms: Option<i64>,
}

/// Where a page of the audit listing ends. The listing runs newest first, by
/// `(at_ms, node_id, seq)` descending (a total order: `(node_id, seq)` names one record);
/// the next page starts just below this key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AuditCursor {
    /// `at_ms` of the last record returned.
    pub at_ms: i64,
    /// Its chain.
    pub node_id: String,
    /// Its position in the chain.
    pub seq: u64,
}

impl AuditCursor {
    /// The cursor just below `record`.
    pub fn of(record: &AuditRecord) -> Self {
        Self {
            at_ms: record.entry.at_ms,
            node_id: record.node_id.clone(),
            seq: record.seq,
        }
    }

    /// The cursor as the opaque text handed to clients (`<at_ms>.<seq>.<node id in hex>`).
    pub fn encode(&self) -> String {
        let mut text = format!("{}.{}.", self.at_ms, self.seq);
        for byte in self.node_id.as_bytes() {
            text.push(char::from(HEX[usize::from(byte >> 4)]));
            text.push(char::from(HEX[usize::from(byte & 0x0F)]));
        }
        text
    }

    /// Parse [`AuditCursor::encode`]'s text; `None` for anything else.
    pub fn decode(text: &str) -> Option<Self> {
        let mut parts = text.splitn(3, '.');
        let at_ms = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let hex = parts.next()?.as_bytes();
        if hex.len() % 2 != 0 {
            return None;
        }
        let digit = |c: u8| HEX.iter().position(|&h| h == c.to_ascii_lowercase());
        let bytes = hex
            .chunks(2)
            .map(|pair| Some((digit(pair[0])? as u8) << 4 | digit(pair[1])? as u8))
            .collect::<Option<Vec<u8>>>()?;
        Some(Self {
            at_ms,
            node_id: String::from_utf8(bytes).ok()?,
            seq,
        })
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// The read side of storage.
pub trait SightingStore: Send + Sync + 'static {
    /// Which of `keys` were seen in `[from_ms, to_ms)` (by the per-day key table).
    fn keys_seen(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
    ) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;

    /// Distinct keys seen in `[from_ms, to_ms)` that match the SQL `LIKE` pattern `like`
    /// (escape `\`) and start with `prefix`, at most `limit`.
    fn keys_like(
        &self,
        prefix: &str,
        like: &str,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<String>, StorageError>> + Send;

    /// Sightings of `keys` in `[from_ms, to_ms)`, each `event_id` once, ordered by time, at
    /// most `limit`.
    fn sightings(
        &self,
        keys: &[String],
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredSighting>, StorageError>> + Send;

    /// Detections at `cameras` in `[from_ms, to_ms)` after `after` that match `filter`
    /// (applied before the page is cut), each `event_id` once, ordered by
    /// `(captured_at_ms, event_id)`, at most `limit`.
    fn passes(
        &self,
        cameras: &[String],
        from_ms: i64,
        to_ms: i64,
        filter: &PassFilter,
        after: Option<PassCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredSighting>, StorageError>> + Send;

    /// Detections inside any of `windows` that match `filter`, each `event_id` once, ordered
    /// by `(captured_at_ms, event_id)`, at most `limit` (a caller that gets `limit` rows
    /// knows there may be more). Every window is a `(camera_id, captured_at_ms)` range, so
    /// this reads the index, never the table. The default asks [`SightingStore::passes`] once
    /// per window; a backend that can put all ranges in one query overrides it.
    fn passes_in(
        &self,
        windows: &[CameraWindow],
        filter: &PassFilter,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredSighting>, StorageError>> + Send {
        async move {
            let mut rows = Vec::new();
            for window in windows {
                rows.extend(
                    self.passes(
                        &window.cameras,
                        window.from_ms,
                        window.to_ms,
                        filter,
                        None,
                        limit,
                    )
                    .await?,
                );
            }
            rows.sort_by(|a, b| {
                (a.captured_at_ms, a.event_id).cmp(&(b.captured_at_ms, b.event_id))
            });
            rows.dedup_by_key(|row| row.event_id);
            rows.truncate(limit);
            Ok(rows)
        }
    }

    /// One page of the audit log: the records matching `filter`, newest first (ordered by
    /// `(at_ms, node_id, seq)` descending), only those below `after` in that order, at most
    /// `limit`. A record stored twice (a re-delivery) is listed once.
    fn audit_records(
        &self,
        filter: &AuditFilter,
        after: Option<&AuditCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StorageError>> + Send;

    /// Every stored audit record, every stored copy (duplicates from re-deliveries and
    /// conflicting copies included), ordered by `(node_id, seq)`: what `camtrail audit
    /// verify` checks.
    fn all_audit_records(
        &self,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StorageError>> + Send;

    /// The thumbnail of `event_id` and its capture instant, if one is stored.
    fn snapshot(
        &self,
        event_id: EventId,
    ) -> impl Future<Output = Result<Option<StoredSnapshot>, StorageError>> + Send;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_cursors_round_trip_and_garbage_is_refused() {
        for node_id in ["query/1764158400000", "", "节点.1/..", "a\u{0}b"] {
            let cursor = AuditCursor {
                at_ms: -5,
                node_id: node_id.into(),
                seq: u64::MAX,
            };
            let text = cursor.encode();
            assert!(
                text.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-.".contains(&b))
            );
            assert_eq!(AuditCursor::decode(&text), Some(cursor));
        }
        for garbage in [
            "", "1", "1.2", "x.2.61", "1.x.61", "1.2.6", "1.2.zz", "1.2.ff",
        ] {
            assert_eq!(AuditCursor::decode(garbage), None, "{garbage}");
        }
    }
}
