//! Investigative analytics: the questions asked before there is a plate. Pure functions over
//! what storage returned, no I/O; the service (`crate::service`) checks, bounds, reads and
//! audits around them.
//!
//! - [`area`]: a scene's place (circle, simple polygon, camera list), checked, and the
//!   registry's cameras inside it.
//! - [`scene`]: the vehicles that passed one scene, each with its sightings there.
//! - [`series`]: the vehicles seen at several scenes (area collision), ranked, with the
//!   evidence per scene and optional misread links.
//! - [`cotravel`]: the vehicles that travelled with a target (same cameras, same order,
//!   within ±Δt), ranked, with the shared sightings as evidence.
//!
//! None of these ranks the vehicles of the whole city by behaviour: each reads only the
//! cameras and windows the investigator named (README, "What camtrail will not do").

pub mod area;
pub mod cotravel;
pub mod scene;
pub mod series;

pub use area::{Area, CameraIndex, CheckedArea};
pub use cotravel::{CoTravelParams, Companion, SharedSighting};
pub use scene::{SceneVehicle, VehicleCursor};
pub use series::{LinkKind, SceneEvidence, SeriesHit, SeriesParams};

use camtrail_storage::StoredSighting;

/// The plate read most often among `sightings` (the first of equals), as the vehicle's
/// display plate.
pub(crate) fn usual_plate(sightings: &[StoredSighting]) -> String {
    let mut counts: Vec<(&str, usize)> = Vec::new();
    for sighting in sightings {
        match counts
            .iter_mut()
            .find(|(plate, _)| *plate == sighting.plate)
        {
            Some((_, count)) => *count += 1,
            None => counts.push((&sighting.plate, 1)),
        }
    }
    let mut best: Option<(&str, usize)> = None;
    for (plate, count) in counts {
        if best.is_none_or(|(_, most)| count > most) {
            best = Some((plate, count));
        }
    }
    best.map(|(plate, _)| plate.to_string()).unwrap_or_default()
}

#[cfg(test)]
pub(crate) mod test_support {
    use camtrail_model::{EventId, ObjectClass, VehicleAttributes};
    use camtrail_storage::StoredSighting;

    /// A sighting of `key` at `camera`, `at_s` seconds after an epoch, event id from `n`.
    pub fn seen(n: u32, key: &str, camera: &str, at_s: i64) -> StoredSighting {
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&n.to_be_bytes());
        id[15] = 1;
        StoredSighting {
            event_id: EventId(id),
            camera_id: camera.into(),
            captured_at_ms: 1_764_158_400_000 + at_s * 1_000,
            subject_key: key.into(),
            plate: key.into(),
            plate_confidence: 0.9,
            object_class: ObjectClass::Vehicle,
            has_snapshot: false,
            attributes: VehicleAttributes::default(),
            plate_char_confidence: Vec::new(),
        }
    }
}
