//! [`TrackBuilder`]: from the sightings storage returned to a [`Track`].
//!
//! The pipeline, each step a function of the previous step's output only:
//!
//! 1. **dedup** by `event_id` (at-least-once delivery; a fuzzy search may also return an
//!    event twice): keep the best copy — exact before pattern before fuzzy, then the higher
//!    match confidence; the others are [`DropReason::Duplicate`];
//! 2. **join** the camera registry: unknown cameras are [`DropReason::UnknownCamera`];
//! 3. **order** by `(captured_at_ms, event_id)` — a total order, as event ids are now unique,
//!    so the result does not depend on the input order;
//! 4. **fuzzy fit** ([`super::fit`]): misread candidates that do not fit the exact track are
//!    [`DropReason::FuzzyDoesNotFit`]; for a plate search ([`TrackBuilder::build_for`]),
//!    **attribution** ([`super::attribution`]) first gives reads of the plate that a
//!    look-alike vehicle explains far better to that vehicle, and after the fit gives it its
//!    own reads back ([`DropReason::AttributedToLookAlike`]);
//! 5. **burst collapse** ([`super::burst`]): [`DropReason::MergedIntoBurst`];
//! 6. **limit** to `max_sightings`: the rest are [`DropReason::BeyondLimit`] and the track is
//!    marked truncated;
//! 7. for a plate search, **clone split** ([`super::clones`]): two simultaneous, individually
//!    consistent tracks become two vehicles ([`Track::second_vehicle`]);
//! 8. **links**, **trips** and **district transitions** over the kept sightings (of each
//!    vehicle).
//!
//! Every input sighting is accounted for: it is in `sightings` (of either vehicle) or in
//! `dropped`, exactly once (copies of one event count separately).

use std::collections::HashMap;

use camtrail_model::CameraRegistry;
use serde::Serialize;

use super::attribution::attribute;
use super::burst::collapse_bursts;
use super::clones::split_clones;
use super::fit::keep_fitting;
use super::links::{DistrictTransition, Link, district_transitions, link_sightings};
use super::params::{ParamsError, TrackParams};
use super::sighting::{
    DropReason, Dropped, RawSighting, TrackSighting, clamp_confidence, copy_preference,
};
use super::stops::{Stop, find_stops};
use super::trips::{Trip, split_trips};

/// A reconstructed track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Track {
    /// Kept sightings ordered by `(captured_at_ms, event_id)`, each possibly standing for a
    /// burst at its camera.
    pub sightings: Vec<TrackSighting>,
    /// One link per pair of consecutive sightings (`sightings.len() − 1` of them).
    pub links: Vec<Link>,
    /// The sightings cut into trips at long gaps; the trips partition `sightings` in order.
    pub trips: Vec<Trip>,
    /// Where the subject stayed at least `stop_min_ms` (a gap between sightings, or a long
    /// burst at one camera), in time order.
    pub stops: Vec<Stop>,
    /// Every change of district between consecutive sightings.
    pub transitions: Vec<DistrictTransition>,
    /// Input sightings not in `sightings`, with the reason, ordered by time then event id.
    pub dropped: Vec<Dropped>,
    /// Whether sightings were left out because of `max_sightings`.
    pub truncated: bool,
    /// When the asked plate's sightings form two simultaneous, individually consistent tracks
    /// (a cloned plate), the second vehicle's track; this track is then the first vehicle's.
    /// Its own `dropped` is empty: every dropped sighting is listed here.
    pub second_vehicle: Option<Box<Track>>,
}

impl Track {
    /// Number of links flagged impossible.
    pub fn impossible_hops(&self) -> usize {
        self.links.iter().filter(|link| link.impossible).count()
    }
}

/// Builds tracks with validated [`TrackParams`].
#[derive(Debug, Clone)]
pub struct TrackBuilder {
    params: TrackParams,
}

impl TrackBuilder {
    /// A builder with `params`, after [`TrackParams::validate`].
    pub fn new(params: TrackParams) -> Result<Self, ParamsError> {
        params.validate()?;
        Ok(Self { params })
    }

    /// The parameters in use.
    pub fn params(&self) -> &TrackParams {
        &self.params
    }

    /// Reconstruct the track from `sightings` (any order, duplicates allowed) and the camera
    /// registry. Pure: the same sightings in any order give the same track.
    pub fn build(&self, sightings: Vec<RawSighting>, cameras: &CameraRegistry) -> Track {
        self.build_for(None, sightings, cameras)
    }

    /// [`TrackBuilder::build`] for a search of the plate key `asked` (`None` for a pattern
    /// or an upstream subject key): its reads and its look-alikes' are attributed to the
    /// vehicle that explains them best ([`super::attribution`]) instead of the plain fuzzy
    /// fit, and a cloned plate's two simultaneous vehicles are split ([`super::clones`]).
    pub fn build_for(
        &self,
        asked: Option<&str>,
        sightings: Vec<RawSighting>,
        cameras: &CameraRegistry,
    ) -> Track {
        let (unique, mut dropped) = dedup_by_event(sightings);

        let mut located = Vec::with_capacity(unique.len());
        for raw in unique {
            match cameras.get(&raw.camera_id) {
                Some(camera) => located.push(TrackSighting::new(raw, camera)),
                None => dropped.push(Dropped::new(&raw, DropReason::UnknownCamera)),
            }
        }
        located.sort_by(TrackSighting::time_order);

        let (fitting, misfits) = match asked {
            Some(asked) => attribute(asked, located, &self.params, cameras.area_km2()),
            None => keep_fitting(located, &self.params),
        };
        dropped.extend(misfits);
        let (mut kept, merged) = collapse_bursts(fitting, self.params.burst_window_ms);
        dropped.extend(merged);

        let truncated = kept.len() > self.params.max_sightings;
        for beyond in kept.drain(self.params.max_sightings.min(kept.len())..) {
            dropped.push(Dropped::from_sighting(&beyond, DropReason::BeyondLimit));
        }
        dropped.sort_by(Dropped::output_order);

        let (kept, second) = match asked {
            Some(_) => split_clones(kept, &self.params),
            None => (kept, None),
        };
        let second_vehicle =
            second.map(|sightings| Box::new(self.assemble(sightings, Vec::new(), false, None)));
        self.assemble(kept, dropped, truncated, second_vehicle)
    }

    /// Links, trips and transitions over kept sightings.
    fn assemble(
        &self,
        sightings: Vec<TrackSighting>,
        dropped: Vec<Dropped>,
        truncated: bool,
        second_vehicle: Option<Box<Track>>,
    ) -> Track {
        let links = link_sightings(&sightings, &self.params);
        let trips = split_trips(&sightings, &links, self.params.trip_gap_ms);
        let stops = find_stops(&sightings, &links, self.params.stop_min_ms);
        let transitions = district_transitions(&sightings);
        Track {
            sightings,
            links,
            trips,
            stops,
            transitions,
            dropped,
            truncated,
            second_vehicle,
        }
    }
}

/// Keep the best copy of each event (see [`copy_preference`]); the other copies are
/// [`DropReason::Duplicate`]. Confidences are clamped to 0–1 first.
fn dedup_by_event(mut sightings: Vec<RawSighting>) -> (Vec<RawSighting>, Vec<Dropped>) {
    for sighting in &mut sightings {
        sighting.match_confidence = clamp_confidence(sighting.match_confidence);
        sighting.plate_confidence = clamp_confidence(sighting.plate_confidence);
    }
    let mut best: HashMap<_, RawSighting> = HashMap::with_capacity(sightings.len());
    let mut dropped = Vec::new();
    for sighting in sightings {
        let Some(current) = best.get_mut(&sighting.event_id) else {
            best.insert(sighting.event_id, sighting);
            continue;
        };
        if copy_preference(&sighting, current).is_lt() {
            let worse = std::mem::replace(current, sighting);
            dropped.push(Dropped::new(&worse, DropReason::Duplicate));
        } else {
            dropped.push(Dropped::new(&sighting, DropReason::Duplicate));
        }
    }
    (best.into_values().collect(), dropped)
}

#[cfg(test)]
mod tests;
