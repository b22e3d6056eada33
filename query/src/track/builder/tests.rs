//! Unit tests of the whole pipeline on hand-made tracks.

use camtrail_model::CameraRegistry;

use super::*;
use crate::track::sighting::MatchKind;
use crate::track::test_support::{at, event, raw, registry};

/// Three districts along a north–south line, cameras 1–5 km apart.
fn city() -> CameraRegistry {
    registry(&[
        ("futian-1", "Futian", 22.540, 114.050),
        ("futian-2", "Futian", 22.550, 114.050),
        ("luohu-1", "Luohu", 22.580, 114.050),
        ("luohu-2", "Luohu", 22.590, 114.050),
        ("nanshan-1", "Nanshan", 22.620, 114.050),
        // 40 km away: where a clone would be seen.
        ("far-away", "Longgang", 22.900, 114.050),
    ])
}

fn builder() -> TrackBuilder {
    TrackBuilder::new(TrackParams::default()).expect("default params are valid")
}

fn reasons(track: &Track) -> Vec<(EventIdNumber, DropReason)> {
    track
        .dropped
        .iter()
        .map(|d| (d.event_id.as_bytes()[15], d.reason))
        .collect()
}

type EventIdNumber = u8;

#[test]
fn dedup_keeps_the_exact_copy() {
    let mut fuzzy_copy = raw(1, "futian-1", at(0), MatchKind::Fuzzy);
    fuzzy_copy.match_confidence = 0.8;
    let input = vec![
        fuzzy_copy.clone(),
        raw(1, "futian-1", at(0), MatchKind::Exact),
        fuzzy_copy,
    ];
    let track = builder().build(input, &city());
    assert_eq!(track.sightings.len(), 1);
    assert_eq!(track.sightings[0].match_kind, MatchKind::Exact);
    assert_eq!(track.sightings[0].match_confidence, 1.0);
    assert_eq!(
        reasons(&track),
        [(1, DropReason::Duplicate), (1, DropReason::Duplicate)]
    );
}

#[test]
fn unknown_cameras_are_dropped_with_a_reason() {
    let input = vec![
        raw(1, "futian-1", at(0), MatchKind::Exact),
        raw(2, "no-such-camera", at(10), MatchKind::Exact),
    ];
    let track = builder().build(input, &city());
    assert_eq!(track.sightings.len(), 1);
    assert_eq!(reasons(&track), [(2, DropReason::UnknownCamera)]);
    assert_eq!(track.dropped[0].camera_id, "no-such-camera");
}

#[test]
fn a_cross_district_day() {
    let input = vec![
        // Morning trip: Futian → Luohu → Nanshan, with a burst at futian-1.
        raw(10, "futian-1", at(0), MatchKind::Exact),
        raw(11, "futian-1", at(20), MatchKind::Exact),
        raw(12, "futian-2", at(90), MatchKind::Exact),
        raw(13, "luohu-1", at(300), MatchKind::Fuzzy), // a misread that fits
        raw(14, "luohu-2", at(400), MatchKind::Exact),
        raw(15, "far-away", at(420), MatchKind::Fuzzy), // another car, 35 km away
        raw(16, "nanshan-1", at(700), MatchKind::Exact),
        // Evening trip, hours later, back in Futian.
        raw(17, "futian-2", at(9 * 3_600), MatchKind::Exact),
        raw(18, "futian-1", at(9 * 3_600 + 120), MatchKind::Exact),
    ];
    let mut reversed = input.clone();
    reversed.reverse();
    let track = builder().build(input, &city());

    let kept: Vec<u8> = track
        .sightings
        .iter()
        .map(|s| s.event_id.as_bytes()[15])
        .collect();
    assert_eq!(kept, [10, 12, 13, 14, 16, 17, 18]);
    assert_eq!(track.sightings[0].burst_count, 2);
    assert_eq!(track.sightings[0].burst_end_ms, at(20));
    assert_eq!(track.sightings[2].match_kind, MatchKind::Fuzzy);
    assert_eq!(
        reasons(&track),
        [
            (11, DropReason::MergedIntoBurst),
            (15, DropReason::FuzzyDoesNotFit)
        ]
    );

    assert_eq!(track.links.len(), 6);
    assert_eq!(track.impossible_hops(), 0);
    let misread_link = &track.links[1];
    assert!(
        (misread_link.confidence - 0.8).abs() < 1e-6,
        "exact × fuzzy(0.8)"
    );

    assert_eq!(track.trips.len(), 2);
    assert_eq!(
        (track.trips[0].first_index, track.trips[0].last_index),
        (0, 4)
    );
    assert_eq!(track.trips[0].districts, ["Futian", "Luohu", "Nanshan"]);
    assert_eq!(
        (track.trips[1].first_index, track.trips[1].last_index),
        (5, 6)
    );

    let transitions: Vec<(&str, &str)> = track
        .transitions
        .iter()
        .map(|t| (t.from_district.as_str(), t.to_district.as_str()))
        .collect();
    assert_eq!(
        transitions,
        [
            ("Futian", "Luohu"),
            ("Luohu", "Nanshan"),
            ("Nanshan", "Futian")
        ]
    );
    assert_eq!(track.transitions[0].at_ms, at(300));
    assert_eq!(track.transitions[0].camera_id, "luohu-1");
    assert!(!track.truncated);

    assert_eq!(
        builder().build(reversed, &city()),
        track,
        "input order does not matter"
    );
}

#[test]
fn a_clone_shows_as_an_impossible_hop() {
    let input = vec![
        raw(1, "futian-1", at(0), MatchKind::Exact),
        raw(2, "far-away", at(120), MatchKind::Exact), // 40 km in 2 minutes
        raw(3, "futian-2", at(240), MatchKind::Exact),
    ];
    let track = builder().build(input, &city());
    assert_eq!(track.sightings.len(), 3, "flagged, not removed");
    assert_eq!(track.impossible_hops(), 2);
    assert!(
        track
            .links
            .iter()
            .all(|l| l.impossible && l.confidence < 0.2)
    );
}

#[test]
fn only_misreads_are_all_kept() {
    let input = vec![
        raw(1, "futian-1", at(0), MatchKind::Fuzzy),
        raw(2, "far-away", at(60), MatchKind::Fuzzy),
    ];
    let track = builder().build(input, &city());
    assert_eq!(track.sightings.len(), 2);
    assert!(track.links[0].impossible);
}

#[test]
fn limits_the_number_of_sightings() {
    let params = TrackParams {
        max_sightings: 2,
        ..TrackParams::default()
    };
    let input = vec![
        raw(1, "futian-1", at(0), MatchKind::Exact),
        raw(2, "futian-2", at(100), MatchKind::Exact),
        raw(3, "luohu-1", at(200), MatchKind::Exact),
        raw(4, "luohu-2", at(300), MatchKind::Exact),
    ];
    let track = TrackBuilder::new(params)
        .expect("valid")
        .build(input, &city());
    assert!(track.truncated);
    assert_eq!(track.sightings.len(), 2);
    assert_eq!(track.links.len(), 1);
    assert_eq!(
        reasons(&track),
        [(3, DropReason::BeyondLimit), (4, DropReason::BeyondLimit)]
    );
}

#[test]
fn empty_input_gives_an_empty_track() {
    let track = builder().build(Vec::new(), &city());
    assert!(track.sightings.is_empty() && track.links.is_empty() && track.trips.is_empty());
    assert!(track.dropped.is_empty() && !track.truncated);
}

#[test]
fn confidences_are_clamped() {
    let mut wild = raw(1, "futian-1", at(0), MatchKind::Exact);
    wild.match_confidence = f32::NAN;
    wild.plate_confidence = 7.0;
    let track = builder().build(vec![wild], &city());
    assert_eq!(track.sightings[0].match_confidence, 0.0);
    assert_eq!(track.sightings[0].plate_confidence, 1.0);
}

#[test]
fn rejects_invalid_params() {
    let params = TrackParams {
        trip_gap_ms: -1,
        ..TrackParams::default()
    };
    assert!(TrackBuilder::new(params).is_err());
}

#[test]
fn serialises_to_json_with_hex_event_ids() {
    let input = vec![
        raw(1, "futian-1", at(0), MatchKind::Exact),
        raw(1, "futian-1", at(0), MatchKind::Fuzzy),
        raw(2, "luohu-1", at(119), MatchKind::Fuzzy), // 4.4 km: reachable at 120 km/h, inside the edge gap
    ];
    let params = TrackParams {
        fuzzy_max_speed_kmh: 120.0,
        ..TrackParams::default()
    };
    let track = TrackBuilder::new(params)
        .expect("valid")
        .build(input, &city());
    let json = serde_json::to_value(&track).expect("serialisable");
    assert_eq!(json["sightings"][0]["event_id"], event(1).to_hex());
    assert_eq!(json["sightings"][0]["object_class"], "vehicle");
    assert_eq!(json["sightings"][1]["match_kind"], "fuzzy");
    assert_eq!(json["dropped"][0]["reason"], "duplicate");
    assert_eq!(json["dropped"][0]["merged_into"], serde_json::Value::Null);
    assert_eq!(json["transitions"][0]["to_district"], "Luohu");
}
