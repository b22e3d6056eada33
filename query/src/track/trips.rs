//! Trips: the track cut where the subject was not seen for longer than `trip_gap_ms` (parked,
//! or out of camera coverage). Trips partition the track's sightings in order.

use serde::Serialize;

use super::links::Link;
use super::sighting::TrackSighting;

/// A run of consecutive sightings without a long gap.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Trip {
    /// Index of the trip's first sighting in [`crate::track::Track::sightings`].
    pub first_index: usize,
    /// Index of its last sighting (inclusive).
    pub last_index: usize,
    /// Start of the first sighting's burst, unix ms.
    pub start_ms: i64,
    /// End of the last sighting's burst, unix ms.
    pub end_ms: i64,
    /// Sum of the great-circle lengths of the links inside the trip, km (a lower bound on the
    /// distance driven).
    pub distance_km: f64,
    /// Districts the trip passed through, each once, in the order first entered.
    pub districts: Vec<String>,
}

/// Split time-ordered `sightings` into trips at links longer than `trip_gap_ms`. `links` are
/// the links between consecutive sightings ([`super::links::link_sightings`]).
pub fn split_trips(sightings: &[TrackSighting], links: &[Link], trip_gap_ms: i64) -> Vec<Trip> {
    let mut trips = Vec::new();
    if sightings.is_empty() {
        return trips;
    }
    let mut first_index = 0;
    for link in links {
        if link.elapsed_ms > trip_gap_ms {
            trips.push(trip(sightings, links, first_index, link.from_index));
            first_index = link.to_index;
        }
    }
    trips.push(trip(sightings, links, first_index, sightings.len() - 1));
    trips
}

/// The trip over `sightings[first_index..=last_index]`.
fn trip(
    sightings: &[TrackSighting],
    links: &[Link],
    first_index: usize,
    last_index: usize,
) -> Trip {
    let mut districts: Vec<String> = Vec::new();
    for sighting in &sightings[first_index..=last_index] {
        if !districts.contains(&sighting.district) {
            districts.push(sighting.district.clone());
        }
    }
    Trip {
        first_index,
        last_index,
        start_ms: sightings[first_index].burst_start_ms,
        end_ms: sightings[last_index].burst_end_ms,
        distance_km: links[first_index..last_index]
            .iter()
            .map(|link| link.distance_km)
            .sum(),
        districts,
    }
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

    fn trips_of(sightings: &[TrackSighting]) -> Vec<Trip> {
        let params = TrackParams::default();
        let links = link_sightings(sightings, &params);
        split_trips(sightings, &links, params.trip_gap_ms)
    }

    #[test]
    fn splits_on_gaps_longer_than_the_threshold() {
        let mut sightings = vec![
            sighting(1, at(0), north(0.0), MatchKind::Exact),
            sighting(2, at(600), north(5.0), MatchKind::Exact),
            // 31 minutes later: a new trip.
            sighting(3, at(600 + 31 * 60), north(5.5), MatchKind::Exact),
            // Exactly 30 minutes later: same trip.
            sighting(4, at(600 + 61 * 60), north(6.5), MatchKind::Exact),
        ];
        sightings[1].district = "Nanshan".to_string();
        let trips = trips_of(&sightings);
        assert_eq!(trips.len(), 2);
        assert_eq!((trips[0].first_index, trips[0].last_index), (0, 1));
        assert_eq!((trips[1].first_index, trips[1].last_index), (2, 3));
        assert_eq!((trips[0].start_ms, trips[0].end_ms), (at(0), at(600)));
        assert!((trips[0].distance_km - 5.0).abs() < 0.01);
        assert!(
            (trips[1].distance_km - 1.0).abs() < 0.01,
            "the gap link is in no trip"
        );
        assert_eq!(trips[0].districts, ["D", "Nanshan"]);
        assert_eq!(trips[1].districts, ["D"]);
    }

    #[test]
    fn one_sighting_is_one_trip_and_none_is_none() {
        let one = [sighting(1, at(0), north(0.0), MatchKind::Exact)];
        let trips = trips_of(&one);
        assert_eq!(trips.len(), 1);
        assert_eq!((trips[0].first_index, trips[0].last_index), (0, 0));
        assert_eq!(trips[0].distance_km, 0.0);
        assert!(trips_of(&[]).is_empty());
    }

    #[test]
    fn a_burst_spanning_a_long_time_does_not_split() {
        // A vehicle parked in front of a camera, read for an hour: one burst, no gap.
        let mut parked = sighting(1, at(0), north(0.0), MatchKind::Exact);
        parked.burst_end_ms = at(3_600);
        let sightings = [parked, sighting(2, at(3_700), north(1.0), MatchKind::Exact)];
        let trips = trips_of(&sightings);
        assert_eq!(trips.len(), 1);
        assert_eq!(trips[0].end_ms, at(3_700));
    }
}
