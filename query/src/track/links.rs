//! Links between consecutive sightings of a track — distance, elapsed time, implied speed,
//! the impossible-hop flag and a confidence — and the district transitions along them.
//!
//! ## Elapsed time
//!
//! A link runs from the end of one sighting's burst to the start of the next one's
//! (`to.burst_start_ms − from.burst_end_ms`): the shortest time the subject had for the hop,
//! so a burst cannot hide a too-fast hop.
//!
//! ## Impossible hops
//!
//! A hop is **impossible** when the cameras are more than [`POSITION_TOLERANCE_KM`] apart and
//! either no time passed or the implied speed exceeds `max_speed_kmh`. The tolerance keeps
//! neighbouring cameras at one junction (coarse positions, clocks a second apart) from being
//! flagged; a subject in two places further apart at once is a misread or a cloned plate.
//! Flagged links stay in the track: the investigator decides.
//!
//! ## Link confidence
//!
//! `confidence = from.match_confidence × to.match_confidence × speed_factor`
//!
//! The product is the chance that both ends are sightings of the asked subject, taking the
//! match confidences as independent (an exact match is 1, a substitution misread 0.8, a
//! dropped or extra character 0.6). The speed factor is
//!
//! - 1 when the cameras are within [`POSITION_TOLERANCE_KM`] or the implied speed is at most
//!   `fuzzy_max_speed_kmh` (ordinary travel);
//! - falling linearly from 1 to [`FASTEST_PLAUSIBLE_FACTOR`] (0.5) between
//!   `fuzzy_max_speed_kmh` and `max_speed_kmh` (possible, but unusually fast);
//! - [`IMPOSSIBLE_FACTOR`] (0.1) for an impossible hop.

use serde::Serialize;

use super::geo::{great_circle_km, implied_speed_kmh};
use super::params::TrackParams;
use super::sighting::TrackSighting;

/// Cameras closer than this (km) are never judged by speed: positions are approximate and
/// clocks disagree by seconds.
pub const POSITION_TOLERANCE_KM: f64 = 0.3;
/// Speed factor of a link at exactly `max_speed_kmh`.
pub const FASTEST_PLAUSIBLE_FACTOR: f32 = 0.5;
/// Speed factor of an impossible link.
pub const IMPOSSIBLE_FACTOR: f32 = 0.1;

/// The hop between two consecutive sightings of a track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Link {
    /// Index of the earlier sighting in [`crate::track::Track::sightings`].
    pub from_index: usize,
    /// Index of the later sighting (always `from_index + 1`).
    pub to_index: usize,
    /// Great-circle distance between the two cameras, km.
    pub distance_km: f64,
    /// Time from the end of the earlier burst to the start of the later one, ms (≥ 0).
    pub elapsed_ms: i64,
    /// `distance_km` over the elapsed time; `None` when no time elapsed.
    pub implied_speed_kmh: Option<f64>,
    /// How likely the hop is real, 0–1 (see the module documentation for the formula).
    pub confidence: f32,
    /// Physically impossible: probably a misread or a cloned plate.
    pub impossible: bool,
}

/// The subject crossed from one district into another between two consecutive sightings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DistrictTransition {
    /// District of the earlier sighting.
    pub from_district: String,
    /// District of the later sighting.
    pub to_district: String,
    /// When the subject was first seen in the new district (start of the later burst), ms.
    pub at_ms: i64,
    /// Index of the earlier sighting.
    pub from_index: usize,
    /// Index of the later sighting.
    pub to_index: usize,
    /// Camera that first saw the subject in the new district.
    pub camera_id: String,
}

/// Links between each pair of consecutive `sightings` (time-ordered): one fewer than there
/// are sightings.
pub fn link_sightings(sightings: &[TrackSighting], params: &TrackParams) -> Vec<Link> {
    let mut links = Vec::with_capacity(sightings.len().saturating_sub(1));
    for (from_index, pair) in sightings.windows(2).enumerate() {
        links.push(link(from_index, &pair[0], &pair[1], params));
    }
    links
}

fn link(from_index: usize, from: &TrackSighting, to: &TrackSighting, params: &TrackParams) -> Link {
    let distance_km = great_circle_km(from.lat, from.lon, to.lat, to.lon);
    let elapsed_ms = to.burst_start_ms.saturating_sub(from.burst_end_ms).max(0);
    let implied_speed_kmh = implied_speed_kmh(distance_km, elapsed_ms);
    let judged = distance_km > POSITION_TOLERANCE_KM;
    let impossible = judged && implied_speed_kmh.is_none_or(|speed| speed > params.max_speed_kmh);
    let factor = if !judged {
        1.0
    } else if impossible {
        IMPOSSIBLE_FACTOR
    } else {
        // Judged and not impossible implies time elapsed, so there is a speed.
        implied_speed_kmh.map_or(IMPOSSIBLE_FACTOR, |speed| speed_factor(speed, params))
    };
    Link {
        from_index,
        to_index: from_index + 1,
        distance_km,
        elapsed_ms,
        implied_speed_kmh,
        confidence: from.match_confidence * to.match_confidence * factor,
        impossible,
    }
}

/// 1 up to the plausible speed, then linearly down to [`FASTEST_PLAUSIBLE_FACTOR`] at the
/// impossible bound.
fn speed_factor(speed_kmh: f64, params: &TrackParams) -> f32 {
    let plausible = params.fuzzy_max_speed_kmh;
    if speed_kmh <= plausible {
        return 1.0;
    }
    let span = (params.max_speed_kmh - plausible).max(f64::EPSILON);
    let excess = ((speed_kmh - plausible) / span).clamp(0.0, 1.0) as f32;
    1.0 - excess * (1.0 - FASTEST_PLAUSIBLE_FACTOR)
}

/// The district transitions between consecutive `sightings`, in track order.
pub fn district_transitions(sightings: &[TrackSighting]) -> Vec<DistrictTransition> {
    let mut transitions = Vec::new();
    for (from_index, pair) in sightings.windows(2).enumerate() {
        let (from, to) = (&pair[0], &pair[1]);
        if from.district == to.district {
            continue;
        }
        transitions.push(DistrictTransition {
            from_district: from.district.clone(),
            to_district: to.district.clone(),
            at_ms: to.burst_start_ms,
            from_index,
            to_index: from_index + 1,
            camera_id: to.camera_id.clone(),
        });
    }
    transitions
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::sighting::MatchKind;
    use crate::track::test_support::{at, sighting};

    /// About `km` north of a fixed origin (a degree of latitude is 111.2 km).
    fn north(km: f64) -> (f64, f64) {
        (22.5 + km / 111.195, 114.0)
    }

    fn one_link(a: TrackSighting, b: TrackSighting) -> Link {
        let links = link_sightings(&[a, b], &TrackParams::default());
        assert_eq!(links.len(), 1);
        links[0].clone()
    }

    #[test]
    fn ordinary_hop() {
        let link = one_link(
            sighting(1, at(0), north(0.0), MatchKind::Exact),
            sighting(2, at(600), north(10.0), MatchKind::Exact),
        );
        assert!((link.distance_km - 10.0).abs() < 0.01);
        assert_eq!(link.elapsed_ms, 600_000);
        let speed = link.implied_speed_kmh.expect("time elapsed");
        assert!((speed - 60.0).abs() < 0.1, "{speed}");
        assert!(!link.impossible);
        assert_eq!(link.confidence, 1.0);
    }

    #[test]
    fn flags_an_impossible_hop() {
        // 50 km in 5 minutes: 600 km/h.
        let link = one_link(
            sighting(1, at(0), north(0.0), MatchKind::Exact),
            sighting(2, at(300), north(50.0), MatchKind::Exact),
        );
        assert!(link.impossible);
        assert_eq!(link.confidence, IMPOSSIBLE_FACTOR);
    }

    #[test]
    fn same_instant_far_apart_is_impossible_close_by_is_not() {
        let far = one_link(
            sighting(1, at(0), north(0.0), MatchKind::Exact),
            sighting(2, at(0), north(1.0), MatchKind::Exact),
        );
        assert!(far.impossible);
        assert_eq!(far.implied_speed_kmh, None);
        let near = one_link(
            sighting(1, at(0), north(0.0), MatchKind::Exact),
            sighting(2, at(0), north(0.2), MatchKind::Exact),
        );
        assert!(!near.impossible);
        assert_eq!(near.confidence, 1.0);
    }

    #[test]
    fn fast_but_possible_lowers_confidence() {
        // 10 km in 3.75 minutes: 160 km/h, two thirds of the way from 80 to 200.
        let link = one_link(
            sighting(1, at(0), north(0.0), MatchKind::Exact),
            sighting(2, at(225), north(10.0), MatchKind::Fuzzy),
        );
        assert!(!link.impossible);
        let expected = 0.8 * (1.0 - 0.5 * (160.0 - 80.0) / 120.0);
        assert!(
            (link.confidence - expected).abs() < 0.01,
            "{}",
            link.confidence
        );
    }

    #[test]
    fn elapsed_runs_from_burst_end_to_burst_start() {
        let mut from = sighting(1, at(0), north(0.0), MatchKind::Exact);
        from.burst_end_ms = at(50);
        let link = one_link(from, sighting(2, at(60), north(1.0), MatchKind::Exact));
        assert_eq!(link.elapsed_ms, 10_000);
        assert!(link.impossible, "1 km in 10 s is 360 km/h");
    }

    #[test]
    fn transitions_name_districts_time_and_camera() {
        let mut sightings = vec![
            sighting(1, at(0), north(0.0), MatchKind::Exact),
            sighting(2, at(60), north(1.0), MatchKind::Exact),
            sighting(3, at(120), north(2.0), MatchKind::Exact),
            sighting(4, at(180), north(3.0), MatchKind::Exact),
        ];
        for (sighting, district) in sightings
            .iter_mut()
            .zip(["Futian", "Futian", "Nanshan", "Futian"])
        {
            sighting.district = district.to_string();
        }
        let transitions = district_transitions(&sightings);
        assert_eq!(transitions.len(), 2);
        assert_eq!(
            (
                transitions[0].from_district.as_str(),
                transitions[0].to_district.as_str()
            ),
            ("Futian", "Nanshan")
        );
        assert_eq!((transitions[0].from_index, transitions[0].to_index), (1, 2));
        assert_eq!(transitions[0].at_ms, at(120));
        assert_eq!(transitions[0].camera_id, sightings[2].camera_id);
        assert_eq!(transitions[1].to_district, "Futian");
        assert!(district_transitions(&sightings[..1]).is_empty());
    }
}
