//! The track as GeoJSON (`/v1/track.geojson`): one Point feature per sighting (numbered, with
//! time, camera, district, match kind and confidence) and one LineString feature per link
//! (distance, elapsed time, implied speed, confidence, impossible flag). Coordinates are
//! `[lon, lat]` as RFC 7946 requires.

use serde_json::{Value, json};

use crate::track::Track;

/// The FeatureCollection of `track`; `time_label` formats instants in the display zone.
pub fn track_geojson(track: &Track, time_label: impl Fn(i64) -> String) -> Value {
    let mut features = Vec::with_capacity(track.sightings.len() * 2);
    for (index, sighting) in track.sightings.iter().enumerate() {
        features.push(json!({
            "type": "Feature",
            "geometry": { "type": "Point", "coordinates": [sighting.lon, sighting.lat] },
            "properties": {
                "kind": "sighting",
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
        }));
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
    json!({ "type": "FeatureCollection", "features": features })
}
