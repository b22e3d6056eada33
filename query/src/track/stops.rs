//! Stops: where the subject stayed longer than `stop_min_ms` — a gap between two consecutive
//! sightings (parked out of sight, between trips) or a burst at one camera that lasted that
//! long (parked in front of it). Part of the track's answer, computed from its own sightings
//! only: it never reads anyone else's.

use serde::Serialize;

use super::links::Link;
use super::sighting::TrackSighting;

/// One stop of a track.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stop {
    /// Index of the sighting before the stop in [`crate::track::Track::sightings`].
    pub before_index: usize,
    /// Index of the sighting after it (equal to `before_index` for a stop in front of one
    /// camera).
    pub after_index: usize,
    /// Last camera that saw the subject before it stopped.
    pub camera_before: String,
    /// First camera that saw it again.
    pub camera_after: String,
    /// Last seen before the stop, unix ms.
    pub from_ms: i64,
    /// First seen after it, unix ms.
    pub to_ms: i64,
    /// Great-circle distance between the two cameras, km: near 0 when it left where it
    /// stopped; larger when it drove through uncovered roads meanwhile.
    pub moved_km: f64,
}

impl Stop {
    /// How long the stop lasted, ms.
    pub fn duration_ms(&self) -> i64 {
        self.to_ms - self.from_ms
    }
}

/// The stops of time-ordered `sightings` (bursts merged) with their `links`, at least
/// `stop_min_ms` long, in time order.
pub fn find_stops(sightings: &[TrackSighting], links: &[Link], stop_min_ms: i64) -> Vec<Stop> {
    let mut stops = Vec::new();
    for (index, sighting) in sightings.iter().enumerate() {
        if sighting.burst_end_ms - sighting.burst_start_ms >= stop_min_ms {
            stops.push(Stop {
                before_index: index,
                after_index: index,
                camera_before: sighting.camera_id.clone(),
                camera_after: sighting.camera_id.clone(),
                from_ms: sighting.burst_start_ms,
                to_ms: sighting.burst_end_ms,
                moved_km: 0.0,
            });
        }
        if let Some(link) = links.get(index)
            && link.elapsed_ms >= stop_min_ms
        {
            let after = &sightings[link.to_index];
            stops.push(Stop {
                before_index: link.from_index,
                after_index: link.to_index,
                camera_before: sighting.camera_id.clone(),
                camera_after: after.camera_id.clone(),
                from_ms: sighting.burst_end_ms,
                to_ms: after.burst_start_ms,
                moved_km: link.distance_km,
            });
        }
    }
    stops
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::links::link_sightings;
    use crate::track::params::TrackParams;
    use crate::track::sighting::MatchKind;
    use crate::track::test_support::{at, sighting};

    fn north(km: f64) -> (f64, f64) {
        (22.5 + km / 111.195, 114.0)
    }

    #[test]
    fn gaps_and_long_bursts_are_stops_short_ones_are_not() {
        let mut sightings = vec![
            sighting(1, at(0), north(0.0), MatchKind::Exact),
            sighting(2, at(300), north(3.0), MatchKind::Exact),
            // Parked 45 minutes out of sight, then seen 200 m away.
            sighting(3, at(300 + 45 * 60), north(3.2), MatchKind::Exact),
            // 19 minutes: not a stop at 20.
            sighting(4, at(300 + 64 * 60), north(8.0), MatchKind::Exact),
        ];
        // Read for 25 minutes in front of one camera.
        sightings[3].burst_end_ms = at(300 + 89 * 60);
        let links = link_sightings(&sightings, &TrackParams::default());
        let stops = find_stops(&sightings, &links, 20 * 60_000);
        assert_eq!(stops.len(), 2, "{stops:?}");
        assert_eq!((stops[0].before_index, stops[0].after_index), (1, 2));
        assert_eq!(stops[0].duration_ms(), 45 * 60_000);
        assert!((stops[0].moved_km - 0.2).abs() < 0.01);
        assert_eq!(stops[0].camera_before, sightings[1].camera_id);
        assert_eq!((stops[1].before_index, stops[1].after_index), (3, 3));
        assert_eq!(stops[1].duration_ms(), 25 * 60_000);
        assert_eq!(stops[1].moved_km, 0.0);
        assert!(find_stops(&sightings, &links, 60 * 60_000).is_empty());
        assert!(find_stops(&[], &[], 1).is_empty());
    }
}
