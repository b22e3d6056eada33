//! Property tests of [`TrackBuilder::build`] on random sighting sets over a small random
//! registry: duplicates, unknown cameras, bursts, misreads, long gaps and simultaneous
//! sightings all occur.

use std::collections::HashMap;

use camtrail_model::{CameraRegistry, EventId};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::seq::SliceRandom;

use super::builder::{Track, TrackBuilder};
use super::params::TrackParams;
use super::sighting::{DropReason, MatchKind, RawSighting};
use super::test_support::{at, camera, raw};

const DISTRICTS: [&str; 3] = ["Futian", "Luohu", "Nanshan"];

/// 1–7 cameras on a 0.01° grid (about 1 km), so some are close and some far apart.
fn registry_strategy() -> impl Strategy<Value = CameraRegistry> {
    prop::collection::vec((0usize..3, 0u32..40, 0u32..40), 1..8).prop_map(|rows| {
        let cameras = rows
            .into_iter()
            .enumerate()
            .map(|(i, (district, north, east))| {
                let lat = 22.5 + f64::from(north) * 0.01;
                let lon = 114.0 + f64::from(east) * 0.01;
                camera(&format!("cam-{i}"), DISTRICTS[district], lat, lon)
            })
            .collect();
        CameraRegistry::new(cameras).expect("valid registry")
    })
}

fn kind_strategy() -> impl Strategy<Value = MatchKind> {
    prop_oneof![
        3 => Just(MatchKind::Exact),
        1 => Just(MatchKind::Pattern),
        2 => Just(MatchKind::Fuzzy),
    ]
}

/// Up to 40 sightings of up to 40 events (so duplicates occur), at cameras `cam-0`…`cam-7`
/// (some not in the registry), in two 20-minute clusters of time hours apart, on a 20 s grid
/// (so bursts and simultaneous sightings occur).
fn sightings_strategy() -> impl Strategy<Value = Vec<RawSighting>> {
    let one = (
        1u32..41,
        0usize..8,
        prop_oneof![0i64..60, 500i64..560],
        kind_strategy(),
        0u8..=10,
        any::<bool>(),
    );
    prop::collection::vec(one, 0..40).prop_map(|rows| {
        rows.into_iter()
            .map(|(n, camera, step, kind, confidence, snapshot)| {
                let mut sighting = raw(n, &format!("cam-{camera}"), at(step * 20), kind);
                sighting.match_confidence = f32::from(confidence) / 10.0;
                sighting.has_snapshot = snapshot;
                sighting
            })
            .collect()
    })
}

/// Parameters, and whether the search is for the plate 粤B12345 (attribution and clone split
/// on) or a pattern/subject key (off).
fn params_strategy() -> impl Strategy<Value = (TrackParams, bool)> {
    (0i64..180_000, 1usize..30, any::<bool>()).prop_map(
        |(burst_window_ms, max_sightings, plate)| {
            let params = TrackParams {
                burst_window_ms,
                max_sightings,
                ..TrackParams::default()
            };
            (params, plate)
        },
    )
}

fn count_by_event(ids: impl Iterator<Item = EventId>) -> HashMap<EventId, usize> {
    let mut counts = HashMap::new();
    for id in ids {
        *counts.entry(id).or_insert(0) += 1;
    }
    counts
}

fn build(
    (params, plate): &(TrackParams, bool),
    input: Vec<RawSighting>,
    cameras: &CameraRegistry,
) -> Track {
    let asked = plate.then_some("粤B12345");
    TrackBuilder::new(params.clone())
        .expect("valid params")
        .build_for(asked, input, cameras)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ordered_without_repeats(
        cameras in registry_strategy(), input in sightings_strategy(), params in params_strategy(),
    ) {
        let track = build(&params, input, &cameras);
        for pair in track.sightings.windows(2) {
            prop_assert!(
                (pair[0].captured_at_ms, pair[0].event_id) < (pair[1].captured_at_ms, pair[1].event_id),
                "strictly ordered, so no event twice"
            );
            prop_assert!(pair[0].burst_end_ms <= pair[1].burst_start_ms, "bursts do not overlap");
        }
        for sighting in &track.sightings {
            prop_assert!(sighting.burst_start_ms <= sighting.captured_at_ms);
            prop_assert!(sighting.captured_at_ms <= sighting.burst_end_ms);
            prop_assert!(cameras.get(&sighting.camera_id).is_some());
        }
    }

    #[test]
    fn every_input_sighting_is_accounted_for(
        cameras in registry_strategy(), input in sightings_strategy(), params in params_strategy(),
    ) {
        let expected = count_by_event(input.iter().map(|s| s.event_id));
        let track = build(&params, input, &cameras);
        let second: Vec<_> = track.second_vehicle.iter().flat_map(|t| &t.sightings).collect();
        prop_assert!(track.second_vehicle.as_ref().is_none_or(|t| t.dropped.is_empty()));
        let kept = track.sightings.iter().chain(second.iter().copied()).map(|s| s.event_id);
        let dropped = track.dropped.iter().map(|d| d.event_id);
        prop_assert_eq!(count_by_event(kept.chain(dropped)), expected);
        for dropped in &track.dropped {
            let attributed = dropped.reason == DropReason::AttributedToLookAlike;
            prop_assert_eq!(attributed, dropped.attributed_to.is_some());
            prop_assert!(!attributed || params.1, "attribution only for plate searches");
        }
        let (params, _) = params;

        // Only duplicates of a kept event may share its id.
        for dropped in &track.dropped {
            let also_kept = track.sightings.iter().any(|s| s.event_id == dropped.event_id);
            prop_assert!(!also_kept || dropped.reason == DropReason::Duplicate);
        }
        // A burst counts exactly the sightings merged into it.
        for sighting in &track.sightings {
            let merged = track
                .dropped
                .iter()
                .filter(|d| d.merged_into == Some(sighting.event_id))
                .count();
            prop_assert_eq!(sighting.burst_count as usize, merged + 1);
        }
        let beyond_limit = track.dropped.iter().any(|d| d.reason == DropReason::BeyondLimit);
        prop_assert_eq!(track.truncated, beyond_limit);
        prop_assert!(track.sightings.len() <= params.max_sightings);
    }

    #[test]
    fn invariant_under_input_order(
        cameras in registry_strategy(),
        input in sightings_strategy(),
        params in params_strategy(),
        seed in any::<u64>(),
    ) {
        let track = build(&params, input.clone(), &cameras);
        let mut shuffled = input;
        shuffled.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        prop_assert_eq!(build(&params, shuffled, &cameras), track);
    }

    #[test]
    fn links_trips_and_transitions_fit_the_sightings(
        cameras in registry_strategy(), input in sightings_strategy(), params in params_strategy(),
    ) {
        let track = build(&params, input, &cameras);
        let (params, _) = params;
        let kept = track.sightings.len();
        prop_assert_eq!(track.links.len(), kept.saturating_sub(1));
        for (index, link) in track.links.iter().enumerate() {
            prop_assert_eq!((link.from_index, link.to_index), (index, index + 1));
            prop_assert!(link.elapsed_ms >= 0 && link.distance_km >= 0.0);
            prop_assert!((0.0..=1.0).contains(&link.confidence));
        }

        // Trips partition the sightings in order.
        let mut next_first = 0;
        for trip in &track.trips {
            prop_assert_eq!(trip.first_index, next_first);
            prop_assert!(trip.last_index >= trip.first_index);
            prop_assert!(!trip.districts.is_empty());
            next_first = trip.last_index + 1;
        }
        prop_assert_eq!(next_first, kept);
        // …and cut exactly at the long gaps.
        let gaps = track.links.iter().filter(|l| l.elapsed_ms > params.trip_gap_ms).count();
        prop_assert_eq!(track.trips.len(), if kept == 0 { 0 } else { gaps + 1 });

        let changes = track
            .sightings
            .windows(2)
            .filter(|pair| pair[0].district != pair[1].district)
            .count();
        prop_assert_eq!(track.transitions.len(), changes);
        for transition in &track.transitions {
            prop_assert_ne!(&transition.from_district, &transition.to_district);
            prop_assert_eq!(transition.to_index, transition.from_index + 1);
        }
    }

    #[test]
    fn only_misreads_are_filtered_as_misfits(
        cameras in registry_strategy(), input in sightings_strategy(),
    ) {
        let track = build(&(TrackParams::default(), true), input.clone(), &cameras);
        for dropped in &track.dropped {
            if dropped.reason == DropReason::FuzzyDoesNotFit {
                let copies = input.iter().filter(|s| s.event_id == dropped.event_id);
                prop_assert!(copies.clone().count() > 0);
                prop_assert!(copies.into_iter().all(|s| s.match_kind == MatchKind::Fuzzy));
            }
        }
    }
}
