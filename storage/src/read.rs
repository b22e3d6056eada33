//! What the query service reads, as a trait with one implementation per backend
//! (ARCHITECTURE.md, "Two ways to run"): `camtrail_clickhouse::ClickhouseStore` for the
//! distributed mode, `camtrail_sqlite::SqliteStore` (bundled SQLite, which also takes
//! writes and the audit chain) for the embedded mode. The `testsuite` module runs one set
//! of tests against both. The track logic never sees which backend answered.
//!
//! Every read is one primary-key range (or a short list of them): sightings by
//! `(subject_key, captured_at_ms)`, passes by `(camera_id, captured_at_ms)`, keys by
//! `(subject_key, day)` in the small per-day key table, a snapshot by `event_id`. Values are
//! bound as parameters, never spliced into SQL text.

use std::future::Future;

use camtrail_model::audit::AuditRecord;
use camtrail_model::{EventId, ObjectClass};

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
        }
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

/// Which audit records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only this case.
    pub case_id: Option<String>,
    /// Only this user.
    pub user: Option<String>,
    /// At most this many (all when `None`).
    pub limit: Option<usize>,
}

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

    /// Detections at `cameras` in `[from_ms, to_ms)` after `after`, each `event_id` once,
    /// ordered by `(captured_at_ms, event_id)`, at most `limit`.
    fn passes(
        &self,
        cameras: &[String],
        from_ms: i64,
        to_ms: i64,
        after: Option<PassCursor>,
        limit: usize,
    ) -> impl Future<Output = Result<Vec<StoredSighting>, StorageError>> + Send;

    /// Audit records, every stored copy (duplicates from re-deliveries included), ordered by
    /// `(node_id, seq)`; only those of `case_id` / `user` when given, at most `limit`.
    fn audit_records(
        &self,
        filter: AuditFilter,
    ) -> impl Future<Output = Result<Vec<AuditRecord>, StorageError>> + Send;

    /// The thumbnail of `event_id`, if one is stored.
    fn snapshot(
        &self,
        event_id: EventId,
    ) -> impl Future<Output = Result<Option<Vec<u8>>, StorageError>> + Send;
}
