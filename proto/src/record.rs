//! The Kafka record for an accepted detection (`StoredDetection`, topic
//! `camtrail.detections.v1`): the ingest node encodes it, the sink decodes it. Both go
//! through this module, so the two sides cannot drift apart. Audit records
//! (`camtrail.audit.v1`) likewise go through [`encode_audit`] and [`decode_audit`].

use camtrail_model::audit::{AuditEntry, AuditRecord};
use camtrail_model::{Detection, EventId, VehicleAttributes};
use prost::Message;

use crate::convert::{object_class_from_wire, object_class_to_wire};
use crate::v1;

/// Layout version written by this build. Readers reject any other version.
pub const RECORD_VERSION: u32 = 1;

/// Why a record could not be decoded. Such records go to the dead-letter topic.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RecordError {
    /// Not a protobuf `StoredDetection`.
    #[error("record is not a valid StoredDetection: {0}")]
    Decode(String),
    /// A version this build does not know.
    #[error("unsupported record version {0} (this build reads {RECORD_VERSION})")]
    Version(u32),
    /// Decoded, but a field breaks an invariant the ingest node guarantees.
    #[error("invalid record field {field}: {message}")]
    Field {
        /// Field name.
        field: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Encode an accepted detection as its Kafka record value.
pub fn encode(detection: &Detection) -> Vec<u8> {
    let mut buffer = Vec::new();
    encode_into(detection, &mut buffer);
    buffer
}

/// Append the record value of `detection` to `buffer` (reuse one buffer per batch).
pub fn encode_into(detection: &Detection, buffer: &mut Vec<u8>) {
    let event = v1::DetectionEvent {
        event_id: detection.event_id.as_bytes().to_vec(),
        camera_id: detection.camera_id.clone(),
        captured_at_ms: detection.captured_at_ms,
        object_class: object_class_to_wire(detection.object_class) as i32,
        plate: detection.plate.clone(),
        plate_confidence: detection.plate_confidence,
        subject_key: String::new(),
        vehicle_color: i32::from(detection.attributes.color),
        vehicle_type: i32::from(detection.attributes.kind),
        bbox: Some(v1::BoundingBox {
            x: detection.bbox[0],
            y: detection.bbox[1],
            width: detection.bbox[2],
            height: detection.bbox[3],
        }),
        snapshot: detection.thumbnail_jpeg.clone().unwrap_or_default(),
        plate_color: i32::from(detection.attributes.plate_color),
        vehicle_brand: detection.attributes.brand.clone(),
        direction: i32::from(detection.attributes.direction),
        speed_kmh: detection.attributes.speed_kmh,
        plate_char_confidence: detection.plate_char_confidence.clone(),
    };
    let record = v1::StoredDetection {
        record_version: RECORD_VERSION,
        event: Some(event),
        gateway_id: detection.gateway_id.clone(),
        received_at_ms: detection.received_at_ms,
        subject_key: detection.subject_key.clone(),
    };
    buffer.reserve(record.encoded_len());
    // Encoding into a Vec cannot fail: it grows as needed.
    let _ = record.encode(buffer);
}

/// Decode a Kafka record value into a detection.
pub fn decode(bytes: &[u8]) -> Result<Detection, RecordError> {
    let record =
        v1::StoredDetection::decode(bytes).map_err(|e| RecordError::Decode(e.to_string()))?;
    if record.record_version != RECORD_VERSION {
        return Err(RecordError::Version(record.record_version));
    }
    let event = record.event.ok_or_else(|| field("event", "missing"))?;
    let event_id =
        EventId::from_slice(&event.event_id).ok_or_else(|| field("event_id", "not 16 bytes"))?;
    let object_class = object_class_from_wire(event.object_class)
        .ok_or_else(|| field("object_class", "unknown value"))?;
    if event.camera_id.is_empty() {
        return Err(field("camera_id", "empty"));
    }
    let bbox = event.bbox.unwrap_or_default();
    Ok(Detection {
        event_id,
        camera_id: event.camera_id,
        captured_at_ms: event.captured_at_ms,
        object_class,
        plate: event.plate,
        plate_confidence: event.plate_confidence,
        subject_key: record.subject_key,
        attributes: VehicleAttributes {
            color: u8::try_from(event.vehicle_color).unwrap_or(0),
            kind: u8::try_from(event.vehicle_type).unwrap_or(0),
            plate_color: u8::try_from(event.plate_color).unwrap_or(0),
            direction: u8::try_from(event.direction).unwrap_or(0),
            speed_kmh: event.speed_kmh,
            brand: event.vehicle_brand,
        },
        plate_char_confidence: event.plate_char_confidence,
        bbox: [bbox.x, bbox.y, bbox.width, bbox.height],
        thumbnail_jpeg: (!event.snapshot.is_empty()).then_some(event.snapshot),
        gateway_id: record.gateway_id,
        received_at_ms: record.received_at_ms,
    })
}

/// Encode an audit record as its `camtrail.audit.v1` record value (protobuf `AuditRecord`).
pub fn encode_audit(record: &AuditRecord) -> Vec<u8> {
    let entry = &record.entry;
    v1::AuditRecord {
        node_id: record.node_id.clone(),
        seq: record.seq,
        at_ms: entry.at_ms,
        user: entry.user.clone(),
        role: entry.role.clone(),
        case_id: entry.case_id.clone(),
        reason: entry.reason.clone(),
        kind: entry.kind.clone(),
        parameters_json: entry.parameters_json.clone(),
        result_count: entry.result_count,
        client_addr: entry.client_addr.clone(),
        prev_hash: record.prev_hash.clone(),
        hash: record.hash.clone(),
    }
    .encode_to_vec()
}

/// Decode a `camtrail.audit.v1` record value. The chain is not checked here (the sink
/// stores what was written, tampered or not; `camtrail audit verify` judges it), only
/// that the record names its chain, its position and a SHA-256 hex hash.
pub fn decode_audit(bytes: &[u8]) -> Result<AuditRecord, RecordError> {
    let wire = v1::AuditRecord::decode(bytes).map_err(|e| RecordError::Decode(e.to_string()))?;
    if wire.node_id.is_empty() {
        return Err(field("node_id", "empty"));
    }
    if wire.seq == 0 {
        return Err(field("seq", "must start at 1"));
    }
    let is_sha256_hex = |h: &str| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit());
    if !is_sha256_hex(&wire.hash) || !is_sha256_hex(&wire.prev_hash) {
        return Err(field("hash", "not a hex SHA-256"));
    }
    Ok(AuditRecord {
        node_id: wire.node_id,
        seq: wire.seq,
        entry: AuditEntry {
            at_ms: wire.at_ms,
            user: wire.user,
            role: wire.role,
            case_id: wire.case_id,
            reason: wire.reason,
            kind: wire.kind,
            parameters_json: wire.parameters_json,
            result_count: wire.result_count,
            client_addr: wire.client_addr,
        },
        prev_hash: wire.prev_hash,
        hash: wire.hash,
    })
}

fn field(field: &'static str, message: &str) -> RecordError {
    RecordError::Field {
        field,
        message: message.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::ObjectClass;
    use proptest::prelude::*;

    fn sample() -> Detection {
        Detection {
            event_id: EventId([7; 16]),
            camera_id: "44030000001310000001".into(),
            captured_at_ms: 1_764_000_000_123,
            object_class: ObjectClass::Vehicle,
            plate: "粤S·12345".into(),
            plate_confidence: 0.93,
            subject_key: "粤S12345".into(),
            attributes: VehicleAttributes {
                color: 2,
                kind: 1,
                plate_color: 1,
                direction: 7,
                speed_kmh: 52.5,
                brand: "比亚迪".into(),
            },
            plate_char_confidence: vec![88, 95, 99, 97, 99, 60, 99],
            bbox: [10, 20, 300, 200],
            thumbnail_jpeg: Some(vec![0xff, 0xd8, 0xff]),
            gateway_id: "gw-001".into(),
            received_at_ms: 1_764_000_000_456,
        }
    }

    #[test]
    fn audit_records_round_trip_and_bad_ones_are_refused() {
        let chain = camtrail_model::audit::AuditChain::new("query-1");
        let record = chain.seal(AuditEntry {
            at_ms: 5,
            user: "alice".into(),
            case_id: "C-1".into(),
            kind: "track".into(),
            ..AuditEntry::default()
        });
        assert_eq!(decode_audit(&encode_audit(&record)), Ok(record.clone()));
        let mut no_node = record.clone();
        no_node.node_id.clear();
        assert!(decode_audit(&encode_audit(&no_node)).is_err());
        let mut bad_hash = record;
        bad_hash.hash = "xyz".into();
        assert!(decode_audit(&encode_audit(&bad_hash)).is_err());
        assert!(decode_audit(b"\xff\xff\xff").is_err());
    }

    #[test]
    fn round_trips() {
        let detection = sample();
        assert_eq!(decode(&encode(&detection)), Ok(detection));
    }

    #[test]
    fn rejects_other_versions_and_bad_fields() {
        let mut record = v1::StoredDetection::decode(encode(&sample()).as_slice()).expect("ok");
        record.record_version = 2;
        assert_eq!(
            decode(&record.encode_to_vec()),
            Err(RecordError::Version(2))
        );
        record.record_version = RECORD_VERSION;
        if let Some(event) = record.event.as_mut() {
            event.event_id = vec![1; 3];
        }
        assert!(matches!(
            decode(&record.encode_to_vec()),
            Err(RecordError::Field {
                field: "event_id",
                ..
            })
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
        }
    }
}
