//! Cloned plates: one plate on two vehicles driving at the same time.
//!
//! A track full of impossible hops back and forth between two parts of the city is two
//! vehicles. [`split_clones`] deals the (burst-collapsed, time-ordered) sightings to two
//! vehicles: each sighting goes to the vehicle whose last sighting it can be reached from at
//! [`TrackParams::fuzzy_max_speed_kmh`] (with clock slack) — or, after a stop longer than
//! [`TrackParams::trip_gap_ms`], whose parking place is within [`PARKED_RADIUS_KM`] of it —
//! the one seen more recently when both can, the one needing the lower speed when neither can;
//! the first sighting that no vehicle so far can explain starts the second vehicle.
//!
//! The split is kept only when it explains the track: the single track has at least two
//! impossible hops, each vehicle was seen at least [`TrackParams::clone_min_sightings`] times
//! while the other was driving (between two of its sightings less than
//! [`TrackParams::trip_gap_ms`] apart: simultaneous, not one car after another), and the two
//! tracks together have at most a quarter of the single track's impossible hops. Otherwise the track
//! stays one, with its impossible hops flagged. A lone misread of another car (one or two far
//! sightings) never makes a second vehicle.

use super::geo::{great_circle_km, implied_speed_kmh};
use super::links::{POSITION_TOLERANCE_KM, link_sightings};
use super::params::TrackParams;
use super::sighting::TrackSighting;

/// Split `sightings` into two vehicles when they are a cloned plate's; else hand them back
/// whole with `None`.
pub fn split_clones(
    sightings: Vec<TrackSighting>,
    params: &TrackParams,
) -> (Vec<TrackSighting>, Option<Vec<TrackSighting>>) {
    let impossible = count_impossible(&sightings, params);
    if impossible < 2 || sightings.len() < 2 * params.clone_min_sightings {
        return (sightings, None);
    }
    let mut sides: Vec<bool> = Vec::with_capacity(sightings.len());
    let (mut last_first, mut last_second): (usize, Option<usize>) = (0, None);
    sides.push(false);
    for (index, sighting) in sightings.iter().enumerate().skip(1) {
        let first = continuation(&sightings[last_first], sighting, params);
        let second = last_second.map(|last| continuation(&sightings[last], sighting, params));
        let to_second = match second {
            None => !first.0,
            Some(second) => match (first.0, second.0) {
                (true, false) => false,
                (false, true) => true,
                // Both could: the vehicle seen more recently, whose position is known best.
                (true, true) => last_second.is_some_and(|last| last > last_first),
                (false, false) => second.1 < first.1,
            },
        };
        sides.push(to_second);
        if to_second {
            last_second = Some(index);
        } else {
            last_first = index;
        }
    }
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for (sighting, to_second) in sightings.iter().zip(&sides) {
        if *to_second {
            second.push(sighting.clone());
        } else {
            first.push(sighting.clone());
        }
    }
    let simultaneous = seen_while_driving(&first, &second, params)
        .min(seen_while_driving(&second, &first, params));
    let after = count_impossible(&first, params) + count_impossible(&second, params);
    if simultaneous >= params.clone_min_sightings && after * 4 <= impossible {
        (first, Some(second))
    } else {
        (sightings, None)
    }
}

/// How many of `other`'s sightings fall while `vehicle` was driving: between two of its
/// consecutive sightings less than `trip_gap_ms` apart.
fn seen_while_driving(
    vehicle: &[TrackSighting],
    other: &[TrackSighting],
    params: &TrackParams,
) -> usize {
    other
        .iter()
        .filter(|sighting| {
            let at = sighting.captured_at_ms;
            let after = vehicle.partition_point(|s| s.captured_at_ms <= at);
            after > 0
                && after < vehicle.len()
                && vehicle[after].captured_at_ms - vehicle[after - 1].captured_at_ms
                    <= params.trip_gap_ms
        })
        .count()
}

fn count_impossible(sightings: &[TrackSighting], params: &TrackParams) -> usize {
    link_sightings(sightings, params)
        .iter()
        .filter(|link| link.impossible)
        .count()
}

/// Whether `to` can continue the vehicle last seen at `from`, and at what speed (km/h, the
/// lower the likelier). After less than `trip_gap_ms` the vehicle was driving: it continues
/// if the speed is at most `fuzzy_max_speed_kmh`. After a longer gap it was parked: it
/// continues only within [`PARKED_RADIUS_KM`] of where it was last seen (a car resumes near
/// where it stopped; one that reappears far away after an hour is as likely the other car).
fn continuation(from: &TrackSighting, to: &TrackSighting, params: &TrackParams) -> (bool, f64) {
    let speed = required_speed(from, to, params);
    if to.burst_start_ms - from.burst_end_ms > params.trip_gap_ms {
        let distance = great_circle_km(from.lat, from.lon, to.lat, to.lon);
        (distance <= PARKED_RADIUS_KM, speed)
    } else {
        (speed <= params.fuzzy_max_speed_kmh, speed)
    }
}

/// How far from where it was last seen a parked vehicle is next seen, at most, km.
pub const PARKED_RADIUS_KM: f64 = 3.0;

/// The speed (km/h) needed to get from `from`'s burst end to `to`'s burst start, with clock
/// slack; 0 for cameras within the position tolerance, infinite with no time at all.
fn required_speed(from: &TrackSighting, to: &TrackSighting, params: &TrackParams) -> f64 {
    let distance = great_circle_km(from.lat, from.lon, to.lat, to.lon);
    if distance <= POSITION_TOLERANCE_KM {
        return 0.0;
    }
    let elapsed = (to.burst_start_ms - from.burst_end_ms)
        .max(0)
        .saturating_add(params.clock_slack_ms);
    implied_speed_kmh(distance, elapsed).unwrap_or(f64::INFINITY)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::track::sighting::MatchKind;
    use crate::track::test_support::{at, sighting};

    fn east(km: f64) -> (f64, f64) {
        (22.5, 114.0 + km / 102.8)
    }

    #[test]
    fn two_cars_on_one_plate_become_two_vehicles() {
        // Car A drives east from 0 km, car B from 30 km, a reading of each every minute.
        let mut input = Vec::new();
        for minute in 0..6u32 {
            let t = i64::from(minute) * 60;
            input.push(sighting(
                minute * 2 + 1,
                at(t),
                east(f64::from(minute)),
                MatchKind::Exact,
            ));
            input.push(sighting(
                minute * 2 + 2,
                at(t + 20),
                east(30.0 + f64::from(minute)),
                MatchKind::Exact,
            ));
        }
        let (first, second) = split_clones(input, &TrackParams::default());
        let second = second.expect("split");
        assert_eq!(first.len(), 6);
        assert_eq!(second.len(), 6);
        assert!(first.iter().all(|s| s.lon < 114.1));
        assert!(second.iter().all(|s| s.lon > 114.2));
    }

    #[test]
    fn a_single_far_misread_does_not_split() {
        let mut input: Vec<TrackSighting> = (0..8u32)
            .map(|minute| {
                sighting(
                    minute + 1,
                    at(i64::from(minute) * 60),
                    east(f64::from(minute)),
                    MatchKind::Exact,
                )
            })
            .collect();
        input.push(sighting(50, at(200), east(40.0), MatchKind::Exact));
        input.sort_by(TrackSighting::time_order);
        let (kept, second) = split_clones(input, &TrackParams::default());
        assert!(second.is_none());
        assert_eq!(kept.len(), 9);
    }

    #[test]
    fn one_car_after_another_is_not_a_clone() {
        // Two trips an hour apart in different places: no impossible hop, no split.
        let input: Vec<TrackSighting> = (0..8u32)
            .map(|n| {
                let (t, km) = if n < 4 {
                    (i64::from(n) * 60, f64::from(n))
                } else {
                    (3_600 + i64::from(n) * 60, 30.0 + f64::from(n))
                };
                sighting(n + 1, at(t), east(km), MatchKind::Exact)
            })
            .collect();
        let (kept, second) = split_clones(input, &TrackParams::default());
        assert!(second.is_none());
        assert_eq!(kept.len(), 8);
    }
}
