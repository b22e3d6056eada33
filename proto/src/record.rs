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

/// The normalised subject key of a `StoredDetection` record value, read in place: only the
/// record's top-level fields are walked (the event is skipped whole) and only the key is
/// checked for UTF-8. The alert role asks this of every record and reads further
/// ([`decode_for_matching`], then [`decode`]) only for the few whose key may match; where
/// [`decode`] accepts a record, both give the same key.
pub fn subject_key(bytes: &[u8]) -> Result<&str, RecordError> {
    use prost::encoding::WireType;
    let mut buf = bytes;
    let mut key = "";
    while !buf.is_empty() {
        match wire_key(&mut buf)? {
            (5, WireType::LengthDelimited) => key = wire_str(&mut buf)?,
            (5, _) => return Err(wire_type(5)),
            (tag, wire) => wire_skip(wire, tag, &mut buf)?,
        }
    }
    Ok(key)
}

/// What matching a record against the watchlist needs, read in place from its bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MatchView<'a> {
    /// Camera device id (its district decides an entry's scope).
    pub camera_id: &'a str,
    /// Normalised subject key.
    pub subject_key: &'a str,
    /// Capture instant, unix ms (an entry's window).
    pub captured_at_ms: i64,
}

/// Read the fields matching needs from a `StoredDetection` record value without decoding
/// the rest: no allocation, the strings borrowed from `bytes`. The alert role asks this of
/// the records whose key [`subject_key`] says may match (a pattern in force makes that every
/// record) and decodes in full only those that hit.
///
/// It walks every field (a truncated or mis-framed record is refused), checks the version,
/// the event's presence, a non-empty camera and UTF-8 in the two strings, and takes the last
/// occurrence of a field as protobuf does (an `event` given twice is merged field by field).
/// It does not check the fields it skips (event id, object class, plate…), so it may accept
/// a record [`decode`] refuses, never the reverse, and where both accept a record they agree:
/// a caller acting on a match confirms it with [`decode`].
pub fn decode_for_matching(bytes: &[u8]) -> Result<MatchView<'_>, RecordError> {
    use prost::encoding::WireType;
    let mut buf = bytes;
    let mut version = 0u64;
    let mut event = None::<(&str, i64)>;
    let mut subject_key = "";
    while !buf.is_empty() {
        let (tag, wire) = wire_key(&mut buf)?;
        match (tag, wire) {
            (1, WireType::Varint) => version = wire_varint(&mut buf)?,
            (2, WireType::LengthDelimited) => {
                let (mut camera, mut at) = event.unwrap_or_default();
                let mut inner = wire_delimited(&mut buf)?;
                while !inner.is_empty() {
                    let (tag, wire) = wire_key(&mut inner)?;
                    match (tag, wire) {
                        (2, WireType::LengthDelimited) => camera = wire_str(&mut inner)?,
                        // int64: the varint's two's complement, as prost reads it.
                        (3, WireType::Varint) => at = wire_varint(&mut inner)? as i64,
                        (2 | 3, _) => return Err(wire_type(tag)),
                        _ => wire_skip(wire, tag, &mut inner)?,
                    }
                }
                event = Some((camera, at));
            }
            (5, WireType::LengthDelimited) => subject_key = wire_str(&mut buf)?,
            (1 | 2 | 5, _) => return Err(wire_type(tag)),
            _ => wire_skip(wire, tag, &mut buf)?,
        }
    }
    // `decode` reads the version as a u32 (prost truncates the varint).
    if version as u32 != RECORD_VERSION {
        return Err(RecordError::Version(version as u32));
    }
    let (camera_id, captured_at_ms) = event.ok_or_else(|| field("event", "missing"))?;
    if camera_id.is_empty() {
        return Err(field("camera_id", "empty"));
    }
    Ok(MatchView {
        camera_id,
        subject_key,
        captured_at_ms,
    })
}

fn wire_error(error: prost::DecodeError) -> RecordError {
    RecordError::Decode(error.to_string())
}

fn wire_type(tag: u32) -> RecordError {
    RecordError::Decode(format!("field {tag} has the wrong wire type"))
}

fn wire_key(buf: &mut &[u8]) -> Result<(u32, prost::encoding::WireType), RecordError> {
    prost::encoding::decode_key(buf).map_err(wire_error)
}

fn wire_varint(buf: &mut &[u8]) -> Result<u64, RecordError> {
    prost::encoding::decode_varint(buf).map_err(wire_error)
}

fn wire_skip(
    wire: prost::encoding::WireType,
    tag: u32,
    buf: &mut &[u8],
) -> Result<(), RecordError> {
    prost::encoding::skip_field(wire, tag, buf, prost::encoding::DecodeContext::default())
        .map_err(wire_error)
}

fn wire_delimited<'a>(buf: &mut &'a [u8]) -> Result<&'a [u8], RecordError> {
    let len = wire_varint(buf)?;
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| len <= buf.len())
        .ok_or_else(|| RecordError::Decode("a length-delimited field runs past the end".into()))?;
    let (head, tail) = buf.split_at(len);
    *buf = tail;
    Ok(head)
}

fn wire_str<'a>(buf: &mut &'a [u8]) -> Result<&'a str, RecordError> {
    std::str::from_utf8(wire_delimited(buf)?)
        .map_err(|_| RecordError::Decode("a string field is not UTF-8".into()))
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

    #[test]
    fn the_matching_view_reads_what_decode_reads() {
        let detection = sample();
        let bytes = encode(&detection);
        let view = decode_for_matching(&bytes).expect("view");
        assert_eq!(view.camera_id, detection.camera_id);
        assert_eq!(view.subject_key, detection.subject_key);
        assert_eq!(view.captured_at_ms, detection.captured_at_ms);
        assert_eq!(subject_key(&bytes), Ok("粤S12345"));
        assert!(subject_key(&bytes[..bytes.len() - 1]).is_err());
        let mut before_1970 = detection;
        before_1970.captured_at_ms = -5;
        let bytes = encode(&before_1970);
        let view = decode_for_matching(&bytes).expect("view");
        assert_eq!(view.captured_at_ms, -5);
    }

    #[test]
    fn the_matching_view_refuses_what_decode_refuses_for_its_fields() {
        let mut record = v1::StoredDetection::decode(encode(&sample()).as_slice()).expect("ok");
        record.record_version = 2;
        assert_eq!(
            decode_for_matching(&record.encode_to_vec()),
            Err(RecordError::Version(2))
        );
        record.record_version = RECORD_VERSION;
        let event = record.event.take();
        assert!(matches!(
            decode_for_matching(&record.encode_to_vec()),
            Err(RecordError::Field { field: "event", .. })
        ));
        record.event = event;
        if let Some(event) = record.event.as_mut() {
            event.camera_id.clear();
        }
        assert!(matches!(
            decode_for_matching(&record.encode_to_vec()),
            Err(RecordError::Field {
                field: "camera_id",
                ..
            })
        ));
        let bytes = encode(&sample());
        assert!(decode_for_matching(&bytes[..bytes.len() - 1]).is_err());
        // subject_key (field 5) as a varint: the wrong wire type.
        let mut wrong = bytes.clone();
        wrong.extend_from_slice(&[5 << 3, 1]);
        assert!(decode(&wrong).is_err());
        assert!(decode_for_matching(&wrong).is_err());
    }

    #[test]
    fn an_event_given_twice_is_merged_as_protobuf_does() {
        // A second `event` carrying only a camera: protobuf merges it into the first.
        let mut bytes = encode(&sample());
        let second = v1::StoredDetection {
            event: Some(v1::DetectionEvent {
                camera_id: "44030000001310000002".into(),
                ..Default::default()
            }),
            ..Default::default()
        }
        .encode_to_vec();
        bytes.extend_from_slice(&second);
        let full = decode(&bytes).expect("decode");
        let view = decode_for_matching(&bytes).expect("view");
        assert_eq!(full.camera_id, "44030000001310000002");
        assert_eq!(view.camera_id, full.camera_id);
        assert_eq!(view.captured_at_ms, full.captured_at_ms);
    }

    fn detections() -> impl Strategy<Value = Detection> {
        (
            any::<[u8; 16]>(),
            "[0-9]{0,20}",
            any::<i64>(),
            "\\PC{0,9}",
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..8)),
            "\\PC{0,4}",
        )
            .prop_map(|(id, camera, at, key, thumbnail, gateway)| Detection {
                event_id: EventId(id),
                camera_id: camera,
                captured_at_ms: at,
                subject_key: key.clone(),
                plate: key,
                thumbnail_jpeg: thumbnail,
                gateway_id: gateway,
                ..sample()
            })
    }

    /// A byte-level edit of a record: overwrite, cut or insert at a position.
    #[derive(Debug, Clone)]
    enum Edit {
        Set(usize, u8),
        Cut(usize, usize),
        Insert(usize, Vec<u8>),
    }

    fn edits() -> impl Strategy<Value = Vec<Edit>> {
        let edit = prop_oneof![
            (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Edit::Set(at, byte)),
            (any::<usize>(), 1..8usize).prop_map(|(at, len)| Edit::Cut(at, len)),
            (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..6))
                .prop_map(|(at, bytes)| Edit::Insert(at, bytes)),
        ];
        proptest::collection::vec(edit, 0..4)
    }

    fn apply(mut bytes: Vec<u8>, edits: &[Edit]) -> Vec<u8> {
        for edit in edits {
            let at = |i: usize| {
                if bytes.is_empty() {
                    0
                } else {
                    i % (bytes.len() + 1)
                }
            };
            match edit {
                Edit::Set(i, byte) => {
                    if !bytes.is_empty() {
                        let i = i % bytes.len();
                        bytes[i] = *byte;
                    }
                }
                Edit::Cut(i, len) => {
                    let start = at(*i).min(bytes.len());
                    let end = (start + len).min(bytes.len());
                    bytes.drain(start..end);
                }
                Edit::Insert(i, more) => {
                    let start = at(*i);
                    bytes.splice(start..start, more.iter().copied());
                }
            }
        }
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode(&bytes);
            let _ = decode_for_matching(&bytes);
            let _ = subject_key(&bytes);
        }

        /// The view against the full decoder on records and damaged records: whatever
        /// `decode` accepts the view accepts with the same fields (so the alert role's
        /// matching misses nothing the sink stores).
        #[test]
        fn the_view_agrees_with_decode(detection in detections(), edits in edits()) {
            let bytes = apply(encode(&detection), &edits);
            let view = decode_for_matching(&bytes);
            if let Ok(full) = decode(&bytes) {
                let view = view.expect("decode accepted it, so must the view");
                prop_assert_eq!(view.camera_id, full.camera_id.as_str());
                prop_assert_eq!(view.subject_key, full.subject_key.as_str());
                prop_assert_eq!(view.captured_at_ms, full.captured_at_ms);
                prop_assert_eq!(subject_key(&bytes), Ok(full.subject_key.as_str()));
            } else if edits.is_empty() && detection.camera_id.is_empty() {
                // An undamaged record the decoder refuses for a field the view reads (no
                // camera): the view refuses it too.
                prop_assert!(view.is_err());
            }
        }
    }
}
