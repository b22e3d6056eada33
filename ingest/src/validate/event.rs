//! The checks of one event, in order: identity, camera, time, classification, text,
//! confidence, subject key, snapshot (the costly one last, so a bad event never costs a
//! decode). The first failure is the event's rejection.

use camtrail_model::ErrorCode;
use camtrail_model::plate::normalize;
use camtrail_model::{
    CameraEntry, CameraRegistry, Detection, EventId, GatewayRef, ObjectClass, VehicleAttributes,
};
use camtrail_proto::convert::object_class_from_wire;
use camtrail_proto::v1::{Direction, PlateColor, VehicleColor, VehicleType};
use camtrail_proto::wire::RawDetectionEvent;

use super::snapshot::make_thumbnail;
use super::{EventRejection, ValidationLimits, text};

/// The registry entry of an event's raw `camera_id`, looked up before the event is checked
/// (`None`: not in the registry, or not text: the checks then say which).
pub(super) fn camera_entry(registry: &CameraRegistry, camera_id: &[u8]) -> Option<CameraEntry> {
    std::str::from_utf8(camera_id)
        .ok()
        .and_then(|id| registry.entry(id))
}

/// Validate one event and build the detection to store. `camera` is
/// [`camera_entry`] of its `camera_id`; `gateway` is `gateway_id`'s number in the registry
/// (`None`: it owns no camera).
pub(super) fn validate_event(
    limits: &ValidationLimits,
    camera: Option<CameraEntry>,
    (gateway_id, gateway): (&str, Option<GatewayRef>),
    event: RawDetectionEvent,
    now_ms: i64,
) -> Result<Detection, EventRejection> {
    let event_id = check_event_id(&event.event_id)?;
    let camera_id = check_camera(camera, gateway, &event.camera_id)?;
    check_captured_at(limits, event.captured_at_ms, now_ms)?;
    let object_class = object_class_from_wire(event.object_class).ok_or_else(|| {
        EventRejection::new(
            ErrorCode::InvalidClass,
            format!(
                "object_class {} is unspecified or unknown",
                event.object_class
            ),
        )
    })?;
    let mut attributes = check_attributes(&event)?;
    let plate = text::free_text("plate", &event.plate, limits.max_plate_bytes)?;
    attributes.brand =
        text::free_text("vehicle_brand", &event.vehicle_brand, MAX_BRAND_BYTES)?.to_owned();
    let plate_char_confidence = check_char_confidence(&event.plate_char_confidence)?;
    let upstream_key = text::free_text(
        "subject_key",
        &event.subject_key,
        limits.max_subject_key_bytes,
    )?;
    check_confidence(event.plate_confidence)?;
    let subject_key = subject_key(object_class, plate, upstream_key)?;
    let thumbnail_jpeg = if event.snapshot.is_empty() {
        None
    } else {
        Some(make_thumbnail(&event.snapshot, limits)?)
    };
    let bbox = event.bbox.map_or([0; 4], |b| [b.x, b.y, b.width, b.height]);
    Ok(Detection {
        event_id,
        camera_id: camera_id.to_owned(),
        captured_at_ms: event.captured_at_ms,
        object_class,
        plate: plate.to_owned(),
        plate_confidence: event.plate_confidence,
        subject_key,
        attributes,
        plate_char_confidence,
        bbox,
        thumbnail_jpeg,
        gateway_id: gateway_id.to_owned(),
        received_at_ms: now_ms,
    })
}

fn check_event_id(bytes: &[u8]) -> Result<EventId, EventRejection> {
    EventId::from_slice(bytes).ok_or_else(|| {
        let message = if bytes.len() == 16 {
            "event_id is all zeros".to_string()
        } else {
            format!("event_id must be 16 bytes, got {}", bytes.len())
        };
        EventRejection::new(ErrorCode::InvalidEventId, message)
    })
}

/// The camera must be registered and assigned to the publishing gateway. The message names
/// the camera (not personal data) but never the gateway that owns it.
fn check_camera(
    camera: Option<CameraEntry>,
    gateway: Option<GatewayRef>,
    bytes: &[u8],
) -> Result<&str, EventRejection> {
    let camera_id = text::camera_id(bytes)?;
    let Some(camera) = camera else {
        return Err(EventRejection::new(
            ErrorCode::UnknownCamera,
            format!("camera {camera_id:?} is not in the registry"),
        ));
    };
    if Some(camera.gateway) != gateway {
        return Err(EventRejection::new(
            ErrorCode::CameraNotOwned,
            format!("camera {camera_id:?} is assigned to another gateway"),
        ));
    }
    Ok(camera_id)
}

fn check_captured_at(
    limits: &ValidationLimits,
    captured_at_ms: i64,
    now_ms: i64,
) -> Result<(), EventRejection> {
    if captured_at_ms > now_ms.saturating_add(limits.max_future_skew_ms) {
        return Err(EventRejection::new(
            ErrorCode::TimestampInFuture,
            format!(
                "captured_at_ms is {} ms ahead of the node clock, allowed skew {} ms",
                captured_at_ms.saturating_sub(now_ms),
                limits.max_future_skew_ms
            ),
        ));
    }
    if captured_at_ms < now_ms.saturating_sub(limits.max_age_ms) {
        return Err(EventRejection::new(
            ErrorCode::TimestampTooOld,
            format!(
                "captured_at_ms is {} ms old, accepted age {} ms",
                now_ms.saturating_sub(captured_at_ms),
                limits.max_age_ms
            ),
        ));
    }
    Ok(())
}

/// Longest `vehicle_brand`, in bytes.
pub const MAX_BRAND_BYTES: usize = 32;
/// Fastest plausible `speed_kmh`.
pub const MAX_SPEED_KMH: f32 = 400.0;
/// Most `plate_char_confidence` values (the longest plates have 8 characters; room to spare).
pub const MAX_CHAR_CONFIDENCES: usize = 16;

/// Vehicle colour, type, plate colour and direction: UNSPECIFIED (0) is fine, a number this
/// build does not know is `INVALID_CLASS` (the proto doc: "another enum field holds an
/// unknown value"); a speed outside 0–400 km/h is `INVALID_FIELD`. The brand is checked
/// with the other text.
fn check_attributes(event: &RawDetectionEvent) -> Result<VehicleAttributes, EventRejection> {
    let unknown = |field: &str, value: i32| {
        EventRejection::new(
            ErrorCode::InvalidClass,
            format!("{field} {value} is not a known value"),
        )
    };
    let known = |field: &str, value: i32, ok: bool| {
        // Known enum numbers are 0–15, so they fit the domain's u8 codes.
        ok.then(|| u8::try_from(value).unwrap_or(0))
            .ok_or_else(|| unknown(field, value))
    };
    let color = known(
        "vehicle_color",
        event.vehicle_color,
        VehicleColor::try_from(event.vehicle_color).is_ok(),
    )?;
    let kind = known(
        "vehicle_type",
        event.vehicle_type,
        VehicleType::try_from(event.vehicle_type).is_ok(),
    )?;
    let plate_color = known(
        "plate_color",
        event.plate_color,
        PlateColor::try_from(event.plate_color).is_ok(),
    )?;
    let direction = known(
        "direction",
        event.direction,
        Direction::try_from(event.direction).is_ok(),
    )?;
    if !(0.0..=MAX_SPEED_KMH).contains(&event.speed_kmh) {
        let message = if event.speed_kmh.is_nan() {
            format!("speed_kmh is nan, must be a number in 0–{MAX_SPEED_KMH}")
        } else {
            format!("speed_kmh {} is outside 0–{MAX_SPEED_KMH}", event.speed_kmh)
        };
        return Err(EventRejection::new(ErrorCode::InvalidField, message));
    }
    Ok(VehicleAttributes {
        color,
        kind,
        plate_color,
        direction,
        speed_kmh: event.speed_kmh,
        brand: String::new(),
    })
}

/// Per-character confidences: at most [`MAX_CHAR_CONFIDENCES`], each 0–100.
fn check_char_confidence(values: &[u8]) -> Result<Vec<u8>, EventRejection> {
    if values.len() > MAX_CHAR_CONFIDENCES {
        return Err(EventRejection::new(
            ErrorCode::InvalidField,
            format!(
                "plate_char_confidence holds {} values, at most {MAX_CHAR_CONFIDENCES}",
                values.len()
            ),
        ));
    }
    if let Some(value) = values.iter().find(|&&v| v > 100) {
        return Err(EventRejection::new(
            ErrorCode::InvalidField,
            format!("plate_char_confidence value {value} is above 100"),
        ));
    }
    Ok(values.to_vec())
}

fn check_confidence(confidence: f32) -> Result<(), EventRejection> {
    if (0.0..=1.0).contains(&confidence) {
        return Ok(());
    }
    let message = if confidence.is_nan() {
        "plate_confidence is nan, must be a number in 0.0–1.0".to_string()
    } else {
        format!("plate_confidence {confidence} is outside 0.0–1.0")
    };
    Err(EventRejection::new(ErrorCode::InvalidConfidence, message))
}

/// The stored lookup key: the upstream `subject_key` (trimmed) when set, else the normalised
/// plate. Only a vehicle must have one; see the module doc of [`super`] for persons and
/// non-motor vehicles.
fn subject_key(
    object_class: ObjectClass,
    plate: &str,
    upstream_key: &str,
) -> Result<String, EventRejection> {
    let upstream_key = upstream_key.trim();
    let key = if upstream_key.is_empty() {
        normalize(plate)
    } else {
        upstream_key.to_owned()
    };
    if key.is_empty() && object_class == ObjectClass::Vehicle {
        return Err(EventRejection::new(
            ErrorCode::MissingPlate,
            "vehicle event has neither a readable plate nor a subject_key",
        ));
    }
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::fixtures::{self, GATEWAY, NOW_MS, OTHER_CAMERA, bomb_jpeg, jpeg, png};
    use ErrorCode::*;
    use std::collections::BTreeSet;

    type Mutation = fn(&mut RawDetectionEvent);

    /// Every rejection code with at least one event that earns it: (case, change to a
    /// valid event, expected code).
    #[rustfmt::skip]
    const BAD_INPUTS: &[(&str, Mutation, ErrorCode)] = &[
        ("unregistered camera",       |e| e.camera_id = b"44039999999999990".to_vec(),   UnknownCamera),
        ("empty camera id",           |e| e.camera_id.clear(),                           UnknownCamera),
        ("camera of another gateway", |e| e.camera_id = OTHER_CAMERA.into(),             CameraNotOwned),
        ("beyond the skew",           |e| e.captured_at_ms = NOW_MS + 300_001,           TimestampInFuture),
        ("far future",                |e| e.captured_at_ms = i64::MAX,                   TimestampInFuture),
        ("eight days old",            |e| e.captured_at_ms = NOW_MS - 8 * 86_400_000,    TimestampTooOld),
        ("before the epoch",          |e| e.captured_at_ms = i64::MIN,                   TimestampTooOld),
        ("no event id",               |e| e.event_id.clear(),                            InvalidEventId),
        ("15-byte event id",          |e| e.event_id.truncate(15),                       InvalidEventId),
        ("zero event id",             |e| e.event_id = vec![0; 16],                      InvalidEventId),
        ("vehicle without plate",     |e| e.plate.clear(),                               MissingPlate),
        ("plate of separators only",  |e| e.plate = "·- ".into(),                        MissingPlate),
        ("blank key, no plate", |e| { e.plate.clear(); e.subject_key = b"  ".to_vec() }, MissingPlate),
        ("plate not utf-8",           |e| e.plate = vec![0xE7, 0xB2, b'S'],              InvalidUtf8),
        ("subject key not utf-8",     |e| e.subject_key = vec![0xFF],                    InvalidUtf8),
        ("camera id not utf-8",       |e| e.camera_id = vec![b'4', 0xC0],                InvalidUtf8),
        ("plate too long",            |e| e.plate = vec![b'A'; 33],                      InvalidText),
        ("plate with a newline",      |e| e.plate = b"AB\n123".to_vec(),                 InvalidText),
        ("subject key too long",      |e| e.subject_key = vec![b'k'; 65],                InvalidText),
        ("camera id with a space",    |e| e.camera_id = b"4403 0001".to_vec(),           InvalidText),
        ("camera id too long",        |e| e.camera_id = vec![b'4'; 65],                  InvalidText),
        ("snapshot over 512 KiB",     |e| e.snapshot = vec![0xFF; 512 * 1024 + 1],       SnapshotTooLarge),
        ("png snapshot",              |e| e.snapshot = png(16, 16),                      SnapshotNotJpeg),
        ("text snapshot",             |e| e.snapshot = b"not an image".to_vec(),         SnapshotNotJpeg),
        ("4097 px wide",              |e| e.snapshot = jpeg(4097, 4),                    SnapshotTooBigDecoded),
        ("decompression bomb",        |e| e.snapshot = bomb_jpeg(60_000, 60_000),        SnapshotTooBigDecoded),
        ("jpeg signature, garbage",   |e| e.snapshot = garbage_after_signature(),        SnapshotUndecodable),
        ("unspecified class",         |e| e.object_class = 0,                            InvalidClass),
        ("unknown class",             |e| e.object_class = 9,                            InvalidClass),
        ("unknown colour",            |e| e.vehicle_color = 10,                          InvalidClass),
        ("unknown vehicle type",      |e| e.vehicle_type = -1,                           InvalidClass),
        ("confidence above one",      |e| e.plate_confidence = 1.01,                     InvalidConfidence),
        ("negative confidence",       |e| e.plate_confidence = -0.1,                     InvalidConfidence),
        ("nan confidence",            |e| e.plate_confidence = f32::NAN,                 InvalidConfidence),
        ("infinite confidence",       |e| e.plate_confidence = f32::INFINITY,            InvalidConfidence),
        ("unknown plate colour",      |e| e.plate_color = 7,                             InvalidClass),
        ("unknown direction",         |e| e.direction = 9,                               InvalidClass),
        ("negative speed",            |e| e.speed_kmh = -1.0,                            InvalidField),
        ("speed of a jet",            |e| e.speed_kmh = 900.0,                           InvalidField),
        ("nan speed",                 |e| e.speed_kmh = f32::NAN,                        InvalidField),
        ("17 char confidences",       |e| e.plate_char_confidence = vec![90; 17],        InvalidField),
        ("char confidence above 100", |e| e.plate_char_confidence = vec![90, 101],       InvalidField),
        ("brand too long",            |e| e.vehicle_brand = vec![b'b'; 33],              InvalidText),
        ("brand not utf-8",           |e| e.vehicle_brand = vec![0xFF],                  InvalidUtf8),
    ];

    /// A JPEG signature, then an APP0 segment whose length runs past the end.
    fn garbage_after_signature() -> Vec<u8> {
        [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[0x5A; 300]].concat()
    }

    fn validate(event: RawDetectionEvent) -> Result<Detection, EventRejection> {
        let registry = fixtures::registry();
        let gateway = (GATEWAY, registry.gateway(GATEWAY));
        validate_event(
            &ValidationLimits::default(),
            camera_entry(&registry, &event.camera_id),
            gateway,
            event,
            NOW_MS,
        )
    }

    #[test]
    fn every_bad_input_gets_its_rejection_code() {
        let mut covered = BTreeSet::new();
        for (name, mutate, expected) in BAD_INPUTS {
            let mut event = fixtures::vehicle_event(1);
            mutate(&mut event);
            let rejection = validate(event).expect_err(name);
            assert_eq!(rejection.code, *expected, "{name}: {}", rejection.message);
            assert!(!rejection.message.is_empty(), "{name}");
            assert_eq!(
                rejection.message,
                rejection.message.to_lowercase(),
                "{name}"
            );
            assert!(!rejection.message.contains("12345"), "{name}: plate leaked");
            covered.insert(*expected);
        }
        let per_event: BTreeSet<ErrorCode> = ErrorCode::ALL
            .iter()
            .copied()
            .filter(|code| camtrail_proto::convert::rejection_code(*code).is_some())
            .collect();
        assert_eq!(
            covered, per_event,
            "every per-event code (every RejectionCode but UNSPECIFIED) is exercised; a new \
             code needs a row in BAD_INPUTS"
        );
    }

    #[test]
    fn window_edges_are_inclusive() {
        for captured_at_ms in [NOW_MS + 300_000, NOW_MS - 7 * 86_400_000] {
            let event = RawDetectionEvent {
                captured_at_ms,
                ..fixtures::vehicle_event(1)
            };
            assert!(validate(event).is_ok(), "{captured_at_ms}");
        }
    }

    #[test]
    fn subject_key_rules() {
        let vehicle = ObjectClass::Vehicle;
        assert_eq!(
            subject_key(vehicle, "粤s·12345", "").expect("plate"),
            "粤S12345"
        );
        assert_eq!(
            subject_key(vehicle, "粤s·12345", " reid-7 ").expect("key"),
            "reid-7"
        );
        assert_eq!(
            subject_key(vehicle, "", "reid-7").expect("key only"),
            "reid-7"
        );
        assert_eq!(
            subject_key(ObjectClass::Person, "", "").expect("person"),
            ""
        );
        assert_eq!(
            subject_key(ObjectClass::NonMotor, "", "").expect("bicycle"),
            ""
        );
        assert_eq!(
            subject_key(ObjectClass::NonMotor, "ｂ１２３", "").expect("e-bike"),
            "B123"
        );
    }
}
