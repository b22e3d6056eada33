//! Builders for test sightings and registries, shared by the unit and property tests.

use camtrail_model::{Camera, CameraRegistry, EventId, ObjectClass};

use super::sighting::{MatchKind, RawSighting, TrackSighting};

/// 2026-01-01T00:00Z, unix ms.
pub const BASE_MS: i64 = 1_767_225_600_000;

/// `seconds` after [`BASE_MS`], unix ms.
pub fn at(seconds: i64) -> i64 {
    BASE_MS + seconds * 1_000
}

/// A distinct, valid event id per `n`.
pub fn event(n: u32) -> EventId {
    let mut bytes = [0xe0; 16];
    bytes[12..].copy_from_slice(&n.to_be_bytes());
    EventId(bytes)
}

/// A camera of the registry.
pub fn camera(id: &str, district: &str, lat: f64, lon: f64) -> Camera {
    Camera {
        camera_id: id.to_string(),
        district: district.to_string(),
        lat,
        lon,
        heading_deg: 0.0,
        road: format!("road of {id}"),
        gateway_id: "gw-test".to_string(),
    }
}

/// A registry from `(id, district, lat, lon)` rows.
pub fn registry(rows: &[(&str, &str, f64, f64)]) -> CameraRegistry {
    let cameras = rows
        .iter()
        .map(|&(id, district, lat, lon)| camera(id, district, lat, lon))
        .collect();
    CameraRegistry::new(cameras).expect("valid test registry")
}

/// A raw sighting of plate 粤B12345 (exact) or a misreading (fuzzy, confidence 0.8).
pub fn raw(n: u32, camera_id: &str, captured_at_ms: i64, kind: MatchKind) -> RawSighting {
    let (key, confidence) = match kind {
        MatchKind::Fuzzy => ("粤B1Z345", 0.8),
        _ => ("粤B12345", 1.0),
    };
    RawSighting {
        event_id: event(n),
        camera_id: camera_id.to_string(),
        captured_at_ms,
        subject_key: key.to_string(),
        plate: key.to_string(),
        plate_confidence: 0.9,
        object_class: ObjectClass::Vehicle,
        has_snapshot: false,
        match_kind: kind,
        match_confidence: confidence,
        attributes: camtrail_model::VehicleAttributes::default(),
        plate_char_confidence: Vec::new(),
    }
}

/// A sighting already joined with a camera at `(lat, lon)` in district "D".
pub fn sighting(
    n: u32,
    captured_at_ms: i64,
    (lat, lon): (f64, f64),
    kind: MatchKind,
) -> TrackSighting {
    let id = format!("cam-{lat:.5}-{lon:.5}");
    let camera = camera(&id, "D", lat, lon);
    TrackSighting::new(raw(n, &id, captured_at_ms, kind), &camera)
}

/// A sighting of plate `key` already joined with a camera at `(lat, lon)` in district "D".
pub fn sighting_of(
    n: u32,
    captured_at_ms: i64,
    (lat, lon): (f64, f64),
    key: &str,
    kind: MatchKind,
) -> TrackSighting {
    let id = format!("cam-{lat:.5}-{lon:.5}");
    let camera = camera(&id, "D", lat, lon);
    let mut raw = raw(n, &id, captured_at_ms, kind);
    raw.subject_key = key.to_string();
    raw.plate = key.to_string();
    TrackSighting::new(raw, &camera)
}
