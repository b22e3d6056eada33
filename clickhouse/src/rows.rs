//! The rows of camtrail's tables as the `clickhouse` crate sends and reads them (RowBinary,
//! column names listed in each INSERT). The field names must match the columns of
//! `migrations/`; this module and those files change together.

use camtrail_model::Detection;
use camtrail_model::audit::AuditRecord;
use serde::{Serialize, Serializer};

/// One row of `detections` (`migrations/001_detections.sql`, `007_vehicle_attributes.sql`).
/// Sent as RowBinary with the column names listed in the INSERT, so the field names must
/// match the columns and their types exactly (18.16 takes RowBinary without type checks);
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
    /// `PlateColor` number (`UInt8`).
    pub plate_color: u8,
    /// Make as classified (`String`; empty: unknown).
    pub vehicle_brand: String,
    /// `Direction` number (`UInt8`).
    pub direction: u8,
    /// Measured speed, km/h (`Float32`; 0: unknown).
    pub speed_kmh: f32,
    /// Per-character reader confidence, 0–100 each (`Array(UInt8)`: RowBinary writes a
    /// sequence as its LEB128 length and the elements, as serde hands them over).
    pub plate_char_confidence: Vec<u8>,
}

/// One row of `snapshots` (`migrations/005_snapshots.sql`).
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

/// One row of `audit_log` (`migrations/006_audit_log.sql`), from `camtrail.audit.v1`.
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

impl DetectionRow {
    /// Rough in-memory size of the row: fixed fields plus strings.
    pub fn approx_bytes(&self) -> usize {
        64 + self.subject_key.len()
            + self.camera_id.len()
            + self.plate.len()
            + self.gateway_id.len()
            + self.vehicle_brand.len()
            + self.plate_char_confidence.len()
    }

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
            plate_color: detection.attributes.plate_color,
            vehicle_brand: detection.attributes.brand,
            direction: detection.attributes.direction,
            speed_kmh: detection.attributes.speed_kmh,
            plate_char_confidence: detection.plate_char_confidence,
        };
        (row, snapshot)
    }
}

#[derive(Debug, clickhouse::Row, Serialize)]
/// One row of `cameras` (`migrations/004_cameras.sql`), borrowed from the registry.
pub struct CameraRow<'a> {
    /// `camera_id`.
    pub camera_id: &'a str,
    /// `district`.
    pub district: &'a str,
    /// `lat`.
    pub lat: f64,
    /// `lon`.
    pub lon: f64,
    /// `heading_deg`.
    pub heading_deg: f32,
    /// `road`.
    pub road: &'a str,
    /// `gateway_id`.
    pub gateway_id: &'a str,
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::ObjectClass;
    use camtrail_storage::testsuite::{CAMERA, T0, detection};

    #[test]
    fn rows_carry_every_field_and_thumbnails_split_off() {
        // Event 1 of the contract fixtures carries a thumbnail, the others do not.
        let (row, snapshot) = DetectionRow::from_detection(detection(1, "粤S12345", T0, CAMERA));
        assert_eq!(row.event_id, [1; 16]);
        assert_eq!(row.object_class, ObjectClass::Vehicle.code());
        assert_eq!(row.camera_id, CAMERA);
        assert_eq!(row.received_at_ms, T0 + 100);
        assert_eq!((row.vehicle_color, row.vehicle_type), (1, 1));
        assert_eq!((row.plate_color, row.direction), (1, 3));
        assert_eq!((row.vehicle_brand.as_str(), row.speed_kmh), ("大众", 42.5));
        assert_eq!(row.plate_char_confidence, vec![90, 91, 92, 93, 94, 95, 96]);
        assert_eq!(
            [row.bbox_x, row.bbox_y, row.bbox_width, row.bbox_height],
            [1, 2, 3, 4]
        );
        assert_eq!(row.has_snapshot, 1);
        let snapshot = snapshot.expect("snapshot");
        assert_eq!(snapshot.event_id, [1; 16]);
        assert_eq!(snapshot.captured_at_ms, row.captured_at_ms);
        let (plain, none) = DetectionRow::from_detection(detection(8, "粤S12345", T0, CAMERA));
        assert_eq!(plain.has_snapshot, 0);
        assert!(none.is_none());
    }
}
