//! Track attribution scored in memory against the synthetic city's ground truth, without
//! storage: the fast loop for tuning (the integration test `tests/it/track_scoring.rs` scores
//! through the real read path). `cargo run --release -p camtrail-query --example score_tracks`
//!
//! Scenario: the old scoring city — scored vehicles plus look-alike vehicles whose plates are
//! one confusable character from a scored plate, driving anywhere in the same window.

use std::collections::{HashMap, HashSet};

use camtrail_city::scenario::dense_plates;
use camtrail_city::traffic::{SyntheticEvent, Traffic, TrafficConfig};
use camtrail_city::{City, CityConfig};
use camtrail_model::plate::normalize;
use camtrail_model::{EventId, ObjectClass};
use camtrail_query::track::{
    DropReason, MatchKind, RawSighting, TrackBuilder, TrackParams, misread_variants,
};

const SCORED: usize = 1_000;
const NEIGHBOURS: usize = 2_000;

fn main() {
    let city = City::generate(&CityConfig::default());
    if std::env::args().any(|a| a == "hard") {
        return hard(&city);
    }
    let config = TrafficConfig {
        seed: 2026,
        vehicles: SCORED + NEIGHBOURS,
        person_share: 0.0,
        non_motor_share: 0.0,
        misread_rate: 0.03,
        span_ms: 2 * 3_600_000,
        ..TrafficConfig::default()
    };
    let mut traffic = Traffic::new(&city, config).with_truth();
    let events: Vec<_> = traffic.by_ref().collect();
    let truth = traffic.take_truth();
    let (plate_of, owner) = dense_plates(&truth, SCORED);
    // Stored key of each event, as the scoring test stores them.
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, event) in events.iter().enumerate() {
        let vehicle = owner[&event.event_id];
        let key = if vehicle >= SCORED {
            plate_of[vehicle].clone()
        } else {
            normalize(&event.plate)
        };
        by_key.entry(key).or_default().push(index);
    }
    let builder = TrackBuilder::new(TrackParams::default()).expect("params");
    let (mut total, mut found, mut returned, mut wrong) = (0usize, 0usize, 0usize, 0usize);
    let mut missed_by: HashMap<String, usize> = HashMap::new();
    let mut wrong_by: HashMap<String, usize> = HashMap::new();
    let mut splits = 0;
    for (vehicle, t) in truth.iter().enumerate().take(SCORED) {
        let asked = &t.true_plate;
        let raw = read_plate(&city, &events, &by_key, asked);
        let track = builder.build_for(Some(asked), raw, &city.registry);
        splits += usize::from(track.second_vehicle.is_some());
        let mut got: HashSet<[u8; 16]> = track.sightings.iter().map(|s| s.event_id.0).collect();
        if let Some(second) = &track.second_vehicle {
            got.extend(second.sightings.iter().map(|s| s.event_id.0));
        }
        got.extend(
            track
                .dropped
                .iter()
                .filter(|d| d.reason == DropReason::MergedIntoBurst)
                .map(|d| d.event_id.0),
        );
        let expected: HashSet<[u8; 16]> = t.event_ids.iter().copied().collect();
        total += expected.len();
        found += expected.intersection(&got).count();
        returned += got.len();
        for id in got.difference(&expected) {
            wrong += 1;
            let by = owner.get(id).copied();
            let cause = match by {
                Some(v) if v >= SCORED => "look-alike vehicle",
                Some(_) => "another scored vehicle",
                None => "unknown",
            };
            *wrong_by.entry(cause.into()).or_default() += 1;
        }
        for id in expected.difference(&got) {
            if std::env::var_os("SCORE_DEBUG").is_some() {
                let e = events.iter().find(|e| e.event_id == *id).expect("event");
                let read = normalize(&e.plate);
                let here = city.registry.cameras()[e.camera_index as usize].clone();
                for &other in by_key.get(&read).map(Vec::as_slice).unwrap_or_default() {
                    let o = &events[other];
                    let dt = (o.captured_at_ms - e.captured_at_ms) / 1000;
                    if o.event_id != e.event_id && dt.abs() <= 180 {
                        let there = &city.registry.cameras()[o.camera_index as usize];
                        let km = camtrail_query::track::great_circle_km(
                            here.lat, here.lon, there.lat, there.lon,
                        );
                        let same = owner[&o.event_id] == vehicle;
                        println!(
                            "missed {asked} read {read}: neighbour dt {dt}s {km:.2} km same_vehicle={same}"
                        );
                    }
                }
            }
            let reason = track
                .dropped
                .iter()
                .find(|d| d.event_id.0 == *id)
                .map(|d| {
                    let read = normalize(
                        &events
                            .iter()
                            .find(|e| e.event_id == *id)
                            .expect("event")
                            .plate,
                    );
                    let kind = if read == *asked { "exact" } else { "fuzzy" };
                    let lookalike_real = by_key
                        .get(d.attributed_to.as_deref().unwrap_or(""))
                        .map_or(0, Vec::len);
                    format!("{:?}/{kind}/group{}", d.reason, lookalike_real.min(5))
                })
                .unwrap_or_else(|| "not read (key not searched)".into());
            *missed_by.entry(reason).or_default() += 1;
        }
        let _ = vehicle;
    }
    println!(
        "recall {found}/{total} = {:.5}, wrong {wrong}/{returned} = {:.5}, splits {splits}",
        found as f64 / total as f64,
        wrong as f64 / returned.max(1) as f64
    );
    println!("missed by reason: {missed_by:?}");
    println!("wrong by cause: {wrong_by:?}");
}

/// The hard city (`camtrail_city::scenario`): several trips per vehicle, co-located
/// look-alikes, clones.
fn hard(city: &City) {
    use camtrail_city::scenario::{HardCity, HardCityConfig, VehicleKind};
    let started = std::time::Instant::now();
    let hard = HardCity::generate(city, HardCityConfig::default());
    println!(
        "generated in {:.1} s: {:?}",
        started.elapsed().as_secs_f64(),
        hard.stats
    );
    let owner = hard.owners();
    let mut by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for (index, event) in hard.events.iter().enumerate() {
        by_key
            .entry(normalize(&event.plate))
            .or_default()
            .push(index);
    }
    speed_percentiles(city, &hard);
    let builder = TrackBuilder::new(TrackParams::default()).expect("params");
    let (mut total, mut found, mut returned, mut wrong) = (0usize, 0usize, 0usize, 0usize);
    let (mut clone_plates, mut clone_split, mut false_splits, mut plates) = (0, 0, 0, 0);
    let mut wrong_by: HashMap<String, usize> = HashMap::new();
    let mut missed_by: HashMap<String, usize> = HashMap::new();
    let started = std::time::Instant::now();
    for (index, vehicle) in hard.vehicles.iter().enumerate() {
        let twin = match vehicle.kind {
            VehicleKind::Scored => None,
            VehicleKind::Clone { twin } if twin > index => Some(twin),
            _ => continue,
        };
        let asked = &vehicle.plate;
        let raw = read_plate(city, &hard.events, &by_key, asked);
        let raw_copy = raw.clone();
        let track = builder.build_for(Some(asked), raw, &city.registry);
        if let Some(dir) = std::env::var_os("SCORE_PNG") {
            let attributed = track
                .dropped
                .iter()
                .filter(|d| d.reason == DropReason::AttributedToLookAlike)
                .count();
            let name = match (twin, attributed) {
                (Some(_), _) => Some("clone"),
                (None, 3..) => Some("attributed"),
                _ => None,
            };
            if let Some(name) = name {
                let path = std::path::Path::new(&dir).join(format!("{name}.png"));
                if !path.exists() {
                    write_png(city, &track, asked, &path);
                }
            }
        }
        let side = |t: &camtrail_query::track::Track| -> HashSet<[u8; 16]> {
            let mut got: HashSet<[u8; 16]> = t.sightings.iter().map(|s| s.event_id.0).collect();
            got.extend(
                t.dropped
                    .iter()
                    .filter(|d| d.reason == DropReason::MergedIntoBurst)
                    .map(|d| d.event_id.0),
            );
            got
        };
        let mut got = side(&track);
        let first = got.clone();
        if let Some(second) = &track.second_vehicle {
            got.extend(second.sightings.iter().map(|s| s.event_id.0));
        }
        let mut expected: HashSet<[u8; 16]> = vehicle.event_ids.iter().copied().collect();
        if std::env::var_os("SCORE_DEBUG").is_some() {
            let sizes = (
                track.sightings.len(),
                track.second_vehicle.as_ref().map(|t| t.sightings.len()),
                track.impossible_hops(),
                track.second_vehicle.as_ref().map(|t| t.impossible_hops()),
            );
            let whole = TrackBuilder::new(TrackParams {
                clone_min_sightings: 100_000,
                ..TrackParams::default()
            })
            .expect("params")
            .build_for(Some(asked), raw_copy.clone(), &city.registry);
            let hops = whole.impossible_hops();
            match twin {
                Some(twin) => {
                    let a: HashSet<_> = vehicle.event_ids.iter().copied().collect();
                    let b: HashSet<_> = hard.vehicles[twin].event_ids.iter().copied().collect();
                    let a_first = a.iter().filter(|id| first.contains(*id)).count();
                    let b_first = b.iter().filter(|id| first.contains(*id)).count();
                    println!(
                        "clone {asked}: {sizes:?} whole-hops {hops} A {a_first}/{} B {b_first}/{} trips {}",
                        a.len(),
                        b.len(),
                        vehicle.trips.len()
                    )
                }
                None if track.second_vehicle.is_some() => println!(
                    "false split {asked}: {sizes:?} whole-hops {hops} trips {}",
                    vehicle.trips.len()
                ),
                None => {}
            }
        }
        match twin {
            Some(twin) => {
                clone_plates += 1;
                let other: HashSet<[u8; 16]> =
                    hard.vehicles[twin].event_ids.iter().copied().collect();
                if track.second_vehicle.is_some() {
                    let a_first = vehicle
                        .event_ids
                        .iter()
                        .filter(|id| first.contains(*id))
                        .count();
                    let b_first = other.iter().filter(|id| first.contains(*id)).count();
                    let (a, b) = (vehicle.event_ids.len().max(1), other.len().max(1));
                    let a_share = a_first as f64 / a as f64;
                    let b_share = b_first as f64 / b as f64;
                    if (a_share >= 0.9 && b_share <= 0.1) || (a_share <= 0.1 && b_share >= 0.9) {
                        clone_split += 1;
                    }
                }
                expected.extend(other);
            }
            None => {
                plates += 1;
                false_splits += usize::from(track.second_vehicle.is_some());
            }
        }
        total += expected.len();
        found += expected.intersection(&got).count();
        returned += got.len();
        for id in got.difference(&expected) {
            wrong += 1;
            let cause = match owner.get(id).map(|&v| hard.vehicles[v].kind) {
                Some(VehicleKind::LookAlike { of, .. }) if of == index => {
                    let e = hard
                        .events
                        .iter()
                        .find(|e| e.event_id == *id)
                        .expect("event");
                    if normalize(&e.plate) == *asked {
                        "look-alike read as the plate"
                    } else {
                        "look-alike's own read"
                    }
                }
                _ => "other vehicle",
            };
            *wrong_by.entry(cause.into()).or_default() += 1;
        }
        for id in expected.difference(&got) {
            let reason = track
                .dropped
                .iter()
                .find(|d| d.event_id.0 == *id)
                .map(|d| format!("{:?}", d.reason))
                .unwrap_or_else(|| "not read".into());
            *missed_by.entry(reason).or_default() += 1;
        }
    }
    println!(
        "hard: {plates} plates + {clone_plates} clones in {:.1} s: recall {found}/{total} = {:.5}, wrong {wrong}/{returned} = {:.5}, clones split {clone_split}/{clone_plates}, false splits {false_splits}/{plates}",
        started.elapsed().as_secs_f64(),
        found as f64 / total as f64,
        wrong as f64 / returned.max(1) as f64
    );
    println!("missed by reason: {missed_by:?}");
    println!("wrong by cause: {wrong_by:?}");
}

/// Speeds (km/h, as the crow flies, by the cameras' clocks) between consecutive sightings of
/// one vehicle less than 30 minutes apart: what `fuzzy_max_speed_kmh` must cover.
fn speed_percentiles(city: &City, hard: &camtrail_city::scenario::HardCity) {
    let by_id: HashMap<[u8; 16], &camtrail_city::traffic::SyntheticEvent> =
        hard.events.iter().map(|e| (e.event_id, e)).collect();
    let mut speeds = Vec::new();
    for vehicle in &hard.vehicles {
        let mut own: Vec<_> = vehicle
            .event_ids
            .iter()
            .filter_map(|id| by_id.get(id))
            .collect();
        own.sort_by_key(|e| e.captured_at_ms);
        for pair in own.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            let elapsed = b.captured_at_ms - a.captured_at_ms;
            if elapsed <= 0 || elapsed > 30 * 60_000 {
                continue;
            }
            let (ca, cb) = (
                &city.registry.cameras()[a.camera_index as usize],
                &city.registry.cameras()[b.camera_index as usize],
            );
            let km = camtrail_query::track::great_circle_km(ca.lat, ca.lon, cb.lat, cb.lon);
            if km > 0.3 {
                speeds.push(km / (elapsed as f64 / 3_600_000.0));
            }
        }
    }
    speeds.sort_by(f64::total_cmp);
    let at = |q: f64| speeds[((speeds.len() - 1) as f64 * q) as usize];
    println!(
        "hop speeds over {} hops (km/h, crow flies): p50 {:.0}, p90 {:.0}, p99 {:.0}, p99.9 {:.0}, max {:.0}",
        speeds.len(),
        at(0.5),
        at(0.9),
        at(0.99),
        at(0.999),
        at(1.0)
    );
}

/// The case-file map of `track`, as `/v1/track.png` draws it.
fn write_png(
    city: &City,
    track: &camtrail_query::track::Track,
    asked: &str,
    path: &std::path::Path,
) {
    use camtrail_query::render::map::{MapBackground, MapText, render_track_map};
    let background = MapBackground::new(&city.registry);
    let text = MapText {
        title: format!("Track of {asked}"),
        lines: vec!["SCORING EXAMPLE".into()],
        time_label: |ms, _| format!("{:02}:{:02}", ms / 3_600_000 % 24, ms / 60_000 % 60),
        zone: chrono_tz::UTC,
        attributed: track
            .dropped
            .iter()
            .filter(|d| d.reason == DropReason::AttributedToLookAlike)
            .filter_map(|d| city.registry.get(&d.camera_id))
            .map(|c| (c.lat, c.lon))
            .collect(),
    };
    let canvas = render_track_map(track, &background, &text);
    canvas.image.save(path).expect("write png");
    println!("wrote {}", path.display());
}

/// What a fuzzy track search for `asked` reads: the rows stored under the plate (exact) and
/// under each of its misreadings (fuzzy, with the variant's confidence), as the query node
/// reads them from storage.
fn read_plate(
    city: &City,
    events: &[SyntheticEvent],
    by_key: &HashMap<String, Vec<usize>>,
    asked: &str,
) -> Vec<RawSighting> {
    let mut keys = vec![(asked.to_string(), MatchKind::Exact, 1.0)];
    for (variant, confidence) in misread_variants(asked, max_variants()) {
        keys.push((variant, MatchKind::Fuzzy, confidence));
    }
    let mut raw = Vec::new();
    for (key, kind, confidence) in &keys {
        for &index in by_key.get(key).map(Vec::as_slice).unwrap_or_default() {
            let e = &events[index];
            raw.push(RawSighting {
                event_id: EventId(e.event_id),
                camera_id: city.registry.cameras()[e.camera_index as usize]
                    .camera_id
                    .clone(),
                captured_at_ms: e.captured_at_ms,
                subject_key: key.clone(),
                plate: key.clone(),
                plate_confidence: e.plate_confidence,
                object_class: ObjectClass::Vehicle,
                has_snapshot: false,
                match_kind: *kind,
                match_confidence: *confidence,
                attributes: Default::default(),
                plate_char_confidence: Vec::new(),
            });
        }
    }
    raw
}

/// The cap on misread variants looked up (`[query.limits] max_fuzzy_variants`): `VARIANTS`
/// in the environment, else the default 400.
fn max_variants() -> usize {
    std::env::var("VARIANTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(400)
}
