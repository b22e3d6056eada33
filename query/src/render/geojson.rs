//! The track as GeoJSON (`/v1/track.geojson`): one Point feature per sighting (numbered, with
//! time, camera, district, match kind and confidence) and one LineString feature per link
//! (distance, elapsed time, implied speed, confidence, impossible flag), each with the
//! `vehicle` it belongs to (1, or 2 for a cloned plate's second vehicle, numbered on its
//! own); and one Point feature per dropped sighting (`kind: "dropped"`, the reason and, for
//! one attributed to a look-alike, its plate; no geometry when its camera is unknown).
//! A sighting's properties also carry its vehicle attributes (`vehicle_color`,
//! `vehicle_type`, `plate_color`, `vehicle_brand`, `direction`, `speed_kmh`,
//! `plate_char_confidence`; names, `null` when unknown). Coordinates are `[lon, lat]` as
//! RFC 7946 requires.

use camtrail_model::CameraRegistry;
use serde_json::{Value, json};

use crate::attributes::AttributesJson;
use crate::track::Track;

/// The FeatureCollection of `track`; `cameras` locates dropped sightings, `time_label`
/// formats instants in the display zone.
pub fn track_geojson(
    track: &Track,
    cameras: &CameraRegistry,
    time_label: impl Fn(i64) -> String,
) -> Value {
    let mut features = Vec::with_capacity(track.sightings.len() * 2 + track.dropped.len());
    vehicle_features(track, 1, &time_label, &mut features);
    if let Some(second) = &track.second_vehicle {
        vehicle_features(second, 2, &time_label, &mut features);
    }
    for dropped in &track.dropped {
        let geometry = cameras.get(&dropped.camera_id).map_or(
            Value::Null,
            |camera| json!({ "type": "Point", "coordinates": [camera.lon, camera.lat] }),
        );
        features.push(json!({
            "type": "Feature",
            "geometry": geometry,
            "properties": {
                "kind": "dropped",
                "event_id": dropped.event_id.to_string(),
                "captured_at_ms": dropped.captured_at_ms,
                "time": time_label(dropped.captured_at_ms),
                "camera_id": dropped.camera_id,
                "reason": dropped.reason,
                "attributed_to": dropped.attributed_to,
                "merged_into": dropped.merged_into.map(|id| id.to_string()),
            }
        }));
    }
    json!({ "type": "FeatureCollection", "features": features })
}

/// The sighting and link features of one vehicle.
fn vehicle_features(
    track: &Track,
    vehicle: u8,
    time_label: &impl Fn(i64) -> String,
    features: &mut Vec<Value>,
) {
    for (index, sighting) in track.sightings.iter().enumerate() {
        let mut feature = json!({
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": [sighting.lon, sighting.lat] },
            "properties": {
                "kind": "sighting",
                "vehicle": vehicle,
                "n": index + 1,
                "event_id": sighting.event_id.to_string(),
                "captured_at_ms": sighting.captured_at_ms,
                "time": time_label(sighting.captured_at_ms),
                "camera_id": sighting.camera_id,
                "district": sighting.district,
                "road": sighting.road,
                "plate": sighting.plate,
                "match_kind": sighting.match_kind,
                "match_confidence": sighting.match_confidence,
                "burst_count": sighting.burst_count,
                "has_snapshot": sighting.has_snapshot,
            }
        });
        if let Some(Value::Object(properties)) = feature.get_mut("properties") {
            AttributesJson::new(&sighting.attributes, &sighting.plate_char_confidence)
                .insert_into(properties);
        }
        features.push(feature);
    }
    for link in &track.links {
        let (from, to) = (
            &track.sightings[link.from_index],
            &track.sightings[link.to_index],
        );
        features.push(json!({
            "type": "Feature",
            "geometry": {
                "type": "LineString",
                "coordinates": [[from.lon, from.lat], [to.lon, to.lat]],
            },
            "properties": {
                "kind": "link",
                "vehicle": vehicle,
                "from": link.from_index + 1,
                "to": link.to_index + 1,
                "distance_km": link.distance_km,
                "elapsed_ms": link.elapsed_ms,
                "implied_speed_kmh": link.implied_speed_kmh,
                "confidence": link.confidence,
                "impossible": link.impossible,
                "district_change": from.district != to.district,
            }
        }));
    }
}
