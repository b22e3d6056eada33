//! A batch: the rows of `detections` and `snapshots` decoded from a run of records, with the
//! offsets they came from. The sink keeps the batch (its own copy of the rows) until the
//! insert succeeded, so a failed insert is retried with exactly the same rows.

use std::time::{Duration, Instant};

use camtrail_model::Detection;
use camtrail_model::audit::AuditRecord;
use serde::{Serialize, Serializer};

use super::offsets::BatchOffsets;

/// One row of `detections` (deploy/clickhouse/001_detections.sql). Sent as RowBinary with
/// the column names listed in the INSERT, so the field names must match the columns;
/// the MATERIALIZED `day` column is computed by the server.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct DetectionRow {
    /// Normalised lookup key.
    pub subject_key: String,
    /// Capture instant, unix ms.
    pub captured_at_ms: i64,
    /// `FixedString(16)`: RowBinary writes a `[u8; 16]` (a serde tuple) as its 16 bytes.
    pub event_id: [u8; 16],
    /// Camera id.
    pub camera_id: String,
    /// `ObjectClass::code`.
    pub object_class: u8,
    /// Plate as read.
    pub plate: String,
    /// Reader confidence.
    pub plate_confidence: f32,
    /// `VehicleColor` number.
    pub vehicle_color: u8,
    /// `VehicleType` number.
    pub vehicle_type: u8,
    /// Bounding box x.
    pub bbox_x: u32,
    /// Bounding box y.
    pub bbox_y: u32,
    /// Bounding box width.
    pub bbox_width: u32,
    /// Bounding box height.
    pub bbox_height: u32,
    /// 1 when a thumbnail is in `snapshots`.
    pub has_snapshot: u8,
    /// Publishing gateway.
    pub gateway_id: String,
    /// When the ingest node accepted it, unix ms.
    pub received_at_ms: i64,
}

/// One row of `snapshots` (deploy/clickhouse/005_snapshots.sql).
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct SnapshotRow {
    /// Event the thumbnail belongs to.
    pub event_id: [u8; 16],
    /// Capture instant, unix ms (the partition key).
    pub captured_at_ms: i64,
    /// JPEG bytes, sent as a `String` column.
    #[serde(serialize_with = "as_bytes")]
    pub jpeg: Vec<u8>,
}

/// One row of `audit_log` (deploy/clickhouse/006_audit_log.sql), from `camtrail.audit.v1`.
#[derive(Debug, Clone, PartialEq, clickhouse::Row, Serialize)]
pub struct AuditRow {
    /// Writing node (its chain).
    pub node_id: String,
    /// Position in the chain.
    pub seq: u64,
    /// When, unix ms.
    pub at_ms: i64,
    /// Who.
    pub user: String,
    /// Their role.
    pub role: String,
    /// Case id.
    pub case_id: String,
    /// Reason.
    pub reason: String,
    /// Query kind.
    pub kind: String,
    /// Parameters, canonical JSON.
    pub parameters_json: String,
    /// Results returned.
    pub result_count: u64,
    /// Client address.
    pub client_addr: String,
    /// Previous record's hash.
    pub prev_hash: String,
    /// This record's hash.
    pub hash: String,
}

impl From<AuditRecord> for AuditRow {
    fn from(record: AuditRecord) -> Self {
        let entry = record.entry;
        Self {
            node_id: record.node_id,
            seq: record.seq,
            at_ms: entry.at_ms,
            user: entry.user,
            role: entry.role,
            case_id: entry.case_id,
            reason: entry.reason,
            kind: entry.kind,
            parameters_json: entry.parameters_json,
            result_count: entry.result_count,
            client_addr: entry.client_addr,
            prev_hash: record.prev_hash,
            hash: record.hash,
        }
    }
}

/// Serialize bytes as one length-prefixed blob (a `Vec<u8>` would go byte by byte).
fn as_bytes<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_bytes(bytes)
}

/// Rough in-memory size of a detection row: fixed fields plus strings.
fn detection_row_bytes(row: &DetectionRow) -> usize {
    64 + row.subject_key.len() + row.camera_id.len() + row.plate.len() + row.gateway_id.len()
}

impl DetectionRow {
    /// Split a decoded detection into its `detections` row and, if it has a thumbnail, its
    /// `snapshots` row.
    pub fn from_detection(detection: Detection) -> (Self, Option<SnapshotRow>) {
        let event_id = *detection.event_id.as_bytes();
        let snapshot = detection.thumbnail_jpeg.map(|jpeg| SnapshotRow {
            event_id,
            captured_at_ms: detection.captured_at_ms,
            jpeg,
        });
        let row = Self {
            subject_key: detection.subject_key,
            captured_at_ms: detection.captured_at_ms,
            event_id,
            camera_id: detection.camera_id,
            object_class: detection.object_class.code(),
            plate: detection.plate,
            plate_confidence: detection.plate_confidence,
            vehicle_color: detection.attributes.color,
            vehicle_type: detection.attributes.kind,
            bbox_x: detection.bbox[0],
            bbox_y: detection.bbox[1],
            bbox_width: detection.bbox[2],
            bbox_height: detection.bbox[3],
            has_snapshot: u8::from(snapshot.is_some()),
            gateway_id: detection.gateway_id,
            received_at_ms: detection.received_at_ms,
        };
        (row, snapshot)
    }
}

/// Rows waiting for one insert, and the offsets they cover.
#[derive(Debug, Default)]
pub struct Batch {
    /// Rows for `detections`.
    pub detections: Vec<DetectionRow>,
    /// Rows for `snapshots`.
    pub snapshots: Vec<SnapshotRow>,
    /// Rows for `audit_log`.
    pub audit: Vec<AuditRow>,
    /// Offsets of every record in the batch, including dead-lettered ones.
    pub offsets: BatchOffsets,
    /// Approximate bytes held.
    pub bytes: usize,
    /// When the first record arrived.
    pub started: Option<Instant>,
}

impl Batch {
    /// Add a decoded detection from `topic`/`partition`/`offset`.
    pub fn push(&mut self, detection: Detection, topic: &str, partition: i32, offset: i64) {
        let (row, snapshot) = DetectionRow::from_detection(detection);
        self.bytes += detection_row_bytes(&row);
        self.detections.push(row);
        if let Some(snapshot) = snapshot {
            self.bytes += 32 + snapshot.jpeg.len();
            self.snapshots.push(snapshot);
        }
        self.mark_done(topic, partition, offset);
    }

    /// Add a decoded audit record from `topic`/`partition`/`offset`.
    pub fn push_audit(&mut self, record: AuditRecord, topic: &str, partition: i32, offset: i64) {
        let row = AuditRow::from(record);
        self.bytes += 256 + row.parameters_json.len() + row.reason.len();
        self.audit.push(row);
        self.mark_done(topic, partition, offset);
    }

    /// Count a record that needs no row (it went to the dead-letter topic) as part of the
    /// batch, so its offset is committed with the batch.
    pub fn mark_done(&mut self, topic: &str, partition: i32, offset: i64) {
        self.started.get_or_insert_with(Instant::now);
        self.offsets.record(topic, partition, offset);
    }

    /// Whether the batch covers no record.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Whether the batch must be inserted now: full (rows or bytes) or old enough.
    pub fn is_due(&self, max_rows: usize, max_bytes: usize, max_age: Duration) -> bool {
        self.detections.len() + self.audit.len() >= max_rows
            || self.bytes >= max_bytes
            || self
                .started
                .is_some_and(|started| started.elapsed() >= max_age)
    }

    /// Empty the batch for reuse (keeps the allocations).
    pub fn clear(&mut self) {
        self.detections.clear();
        self.snapshots.clear();
        self.audit.clear();
        self.offsets.clear();
        self.bytes = 0;
        self.started = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::{EventId, ObjectClass, VehicleAttributes};

    pub(crate) fn detection(n: u8, thumbnail: bool) -> Detection {
        Detection {
            event_id: EventId([n.max(1); 16]),
            camera_id: "44030000001310000001".into(),
            captured_at_ms: 1_700_000_000_000 + i64::from(n),
            object_class: ObjectClass::Vehicle,
            plate: "粤S·12345".into(),
            plate_confidence: 0.9,
            subject_key: "粤S12345".into(),
            attributes: VehicleAttributes { color: 2, kind: 3 },
            bbox: [1, 2, 3, 4],
            thumbnail_jpeg: thumbnail.then(|| vec![0xFF, 0xD8, 0xFF, 0xD9]),
            gateway_id: "gw-a".into(),
            received_at_ms: 1_700_000_000_500,
        }
    }

    #[test]
    fn rows_carry_every_field_and_thumbnails_split_off() {
        let (row, snapshot) = DetectionRow::from_detection(detection(7, true));
        assert_eq!(row.event_id, [7; 16]);
        assert_eq!(row.object_class, ObjectClass::Vehicle.code());
        assert_eq!((row.vehicle_color, row.vehicle_type), (2, 3));
        assert_eq!(
            [row.bbox_x, row.bbox_y, row.bbox_width, row.bbox_height],
            [1, 2, 3, 4]
        );
        assert_eq!(row.has_snapshot, 1);
        let snapshot = snapshot.expect("snapshot");
        assert_eq!(snapshot.event_id, [7; 16]);
        assert_eq!(snapshot.captured_at_ms, row.captured_at_ms);
        let (plain, none) = DetectionRow::from_detection(detection(8, false));
        assert_eq!(plain.has_snapshot, 0);
        assert!(none.is_none());
    }

    #[test]
    fn a_batch_is_due_when_full_or_old() {
        let mut batch = Batch::default();
        assert!(!batch.is_due(2, 1 << 20, Duration::from_secs(60)));
        batch.push(detection(1, true), "t", 0, 5);
        assert!(!batch.is_due(2, 1 << 20, Duration::from_secs(60)));
        batch.mark_done("t", 0, 6); // dead-lettered: no row, but its offset counts
        assert_eq!(batch.detections.len(), 1);
        assert_eq!(batch.snapshots.len(), 1);
        batch.push(detection(2, false), "t", 0, 7);
        assert!(batch.is_due(2, 1 << 20, Duration::from_secs(60)));
        assert!(batch.is_due(100, 10, Duration::from_secs(60)));
        assert!(batch.is_due(100, 1 << 20, Duration::ZERO));
        batch.clear();
        assert!(batch.is_empty());
        assert!(!batch.is_due(1, 1, Duration::ZERO));
    }
}
