//! Traffic tests: routes, timing, misread and detection statistics, ids, determinism.

use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

use camtrail_model::ObjectClass;
use camtrail_model::plate::{is_standard_chinese_plate, normalize};

use super::*;
use crate::{City, CityConfig};

fn city() -> &'static City {
    static CITY: OnceLock<City> = OnceLock::new();
    CITY.get_or_init(|| {
        City::generate(&CityConfig {
            seed: 3,
            cameras: 5_000,
            districts: 30,
            gateways: 100,
        })
    })
}

fn config(vehicles: usize) -> TrafficConfig {
    TrafficConfig {
        seed: 21,
        vehicles,
        ..TrafficConfig::default()
    }
}

#[test]
fn routes_are_connected_time_ordered_and_plausibly_fast() {
    let city = city();
    let on_roads = city.cameras_on_roads();
    let mut traffic = Traffic::new(city, config(300)).with_truth();
    let emitted = traffic.by_ref().count();
    let truth = traffic.take_truth();
    assert_eq!(truth.len(), 300);
    let mut crossing = 0;
    let mut ids = 0;
    for subject in &truth {
        ids += subject.event_ids.len();
        let mut allowed: HashSet<u32> = HashSet::new();
        for (index, pair) in subject.nodes.windows(2).enumerate() {
            assert!(city.roads.are_adjacent(pair[0], pair[1]), "step {index}");
            let edge = city
                .roads
                .neighbours(pair[0])
                .iter()
                .find(|n| n.node == pair[1]);
            let edge = edge.expect("adjacent").edge;
            allowed.extend(on_roads.on_edge(edge).iter().map(|&(camera, _)| camera));
        }
        for &node in &subject.nodes {
            allowed.extend(on_roads.at_node(node));
        }
        let mut districts = HashSet::new();
        for pair in subject.route.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            assert!(a.true_time_ms <= b.true_time_ms, "time ordered");
            let elapsed_ms = b.true_time_ms - a.true_time_ms;
            if elapsed_ms >= 10_000 {
                let km = city
                    .camera_point(a.camera_index)
                    .expect("camera")
                    .distance(city.camera_point(b.camera_index).expect("camera"));
                let kmh = km / (elapsed_ms as f64 / 3_600_000.0);
                assert!(kmh < 90.0, "{kmh} km/h for {:?}", subject.object_class);
            }
        }
        for stop in &subject.route {
            assert!(allowed.contains(&stop.camera_index), "camera on the route");
            districts.insert(city.camera_district[stop.camera_index as usize]);
        }
        crossing += usize::from(districts.len() > 1);
    }
    assert_eq!(ids, emitted);
    assert!(crossing > 50, "{crossing} trips cross districts");
}

#[test]
fn misread_and_detection_rates_match_the_config() {
    let city = city();
    let config = TrafficConfig {
        misread_rate: 0.05,
        ..config(8_000)
    };
    let mut traffic = Traffic::new(city, config).with_truth();
    let events: Vec<SyntheticEvent> = traffic.by_ref().collect();
    let truth = traffic.take_truth();
    let mut true_plate: HashMap<[u8; 16], &str> = HashMap::new();
    let (mut passes, mut detected) = (0usize, 0usize);
    for subject in &truth {
        passes += subject.route.len();
        detected += subject.route.iter().filter(|stop| stop.detected).count();
        for id in &subject.event_ids {
            true_plate.insert(*id, &subject.true_plate);
        }
    }
    let (mut vehicle_events, mut misread) = (0usize, 0usize);
    for event in events
        .iter()
        .filter(|e| e.object_class == ObjectClass::Vehicle)
    {
        vehicle_events += 1;
        misread += usize::from(normalize(&event.plate) != true_plate[&event.event_id]);
    }
    assert!(vehicle_events > 100_000, "{vehicle_events}");
    let misread_rate = misread as f64 / vehicle_events as f64;
    assert!(
        (misread_rate - 0.05).abs() < 0.004,
        "misread rate {misread_rate}"
    );
    let detection_rate = detected as f64 / passes as f64;
    assert!(
        (detection_rate - 0.9).abs() < 0.005,
        "detection rate {detection_rate}"
    );
}

#[test]
fn events_look_like_camera_reports() {
    let city = city();
    let config = config(2_000);
    let (start, end) = (config.start_ms, config.start_ms + config.span_ms);
    let slack = MAX_CLOCK_SKEW_MS + MAX_JITTER_MS;
    let mut ids = HashSet::new();
    let mut classes = HashMap::new();
    for event in Traffic::new(city, config) {
        assert!(ids.insert(event.event_id), "unique ids");
        assert!((event.camera_index as usize) < city.registry.len());
        assert!(event.captured_at_ms >= start - slack && event.captured_at_ms < end + slack);
        let [x, y, w, h] = event.bbox;
        assert!(x + w <= 1920 && y + h <= 1080 && w > 0 && h > 0);
        *classes.entry(event.object_class).or_insert(0usize) += 1;
        match event.object_class {
            ObjectClass::Vehicle => {
                assert!(event.subject_key.is_empty() && event.vehicle_color > 0);
                assert!(event.plate.contains('·') && event.plate_confidence > 0.4);
            }
            _ => assert!(event.plate.is_empty() && event.subject_key.starts_with("reid-")),
        }
        assert!(event.snapshot.is_none());
    }
    assert!(classes.len() == 3, "{classes:?}");
    assert!(classes[&ObjectClass::Vehicle] > classes[&ObjectClass::Person]);
}

#[test]
fn true_plates_are_standard() {
    let mut traffic = Traffic::new(city(), config(500)).with_truth();
    traffic.by_ref().for_each(drop);
    for subject in traffic.take_truth() {
        if subject.object_class == ObjectClass::Vehicle {
            assert!(
                is_standard_chinese_plate(&subject.true_plate),
                "{}",
                subject.true_plate
            );
        } else {
            assert!(subject.true_plate.is_empty() && !subject.subject_key.is_empty());
        }
    }
}

#[test]
fn same_seed_same_events() {
    let first: Vec<SyntheticEvent> = Traffic::new(city(), config(50)).collect();
    let second: Vec<SyntheticEvent> = Traffic::new(city(), config(50)).collect();
    assert_eq!(first, second);
    let other: Vec<SyntheticEvent> = Traffic::new(
        city(),
        TrafficConfig {
            seed: 22,
            ..config(50)
        },
    )
    .collect();
    assert_ne!(first, other);
    let first_ids: HashSet<[u8; 16]> = first.iter().map(|e| e.event_id).collect();
    assert!(other.iter().all(|e| !first_ids.contains(&e.event_id)));
}

#[test]
fn snapshots_are_shared_jpegs() {
    let config = TrafficConfig {
        snapshot_share: 0.5,
        snapshot_px: 96,
        ..config(100)
    };
    let events: Vec<SyntheticEvent> = Traffic::new(city(), config).collect();
    let with = events.iter().filter(|e| e.snapshot.is_some()).count();
    let share = with as f64 / events.len() as f64;
    assert!((share - 0.5).abs() < 0.05, "{share}");
    let jpeg = events
        .iter()
        .find_map(|e| e.snapshot.clone())
        .expect("some snapshot");
    let image = image::load_from_memory(&jpeg).expect("decodes");
    assert_eq!((image.width(), image.height()), (96, 72));
}

#[test]
fn truth_file_lists_every_subject() {
    let city = city();
    let mut traffic = Traffic::new(city, config(20)).with_truth();
    traffic.by_ref().for_each(drop);
    let truth = traffic.take_truth();
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("truth.jsonl");
    crate::write_truth_jsonl(city, &truth, &path).expect("writes");
    let text = std::fs::read_to_string(&path).expect("reads");
    assert_eq!(text.lines().count(), 20);
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("a line")).expect("json");
    assert!(first["route"].is_array() && first["event_ids"].is_array());
}

#[test]
fn odd_configs_do_not_panic() {
    let odd = TrafficConfig {
        span_ms: -5,
        person_share: f64::NAN,
        non_motor_share: 2.0,
        detection_rate: 1.5,
        misread_rate: f64::NAN,
        other_province_share: f64::INFINITY,
        snapshot_share: f64::NAN,
        snapshot_px: 0,
        ..config(50)
    };
    assert!(Traffic::new(city(), odd).count() > 0);
    let none = TrafficConfig {
        detection_rate: 0.0,
        ..config(50)
    };
    assert_eq!(Traffic::new(city(), none).count(), 0);
}

#[test]
fn derived_attributes_are_plausible_and_consistent() {
    use crate::attributes::plate_color;
    let city = city();
    let mut colours: HashMap<u8, usize> = HashMap::new();
    let mut brand_of_plate: HashMap<String, &'static str> = HashMap::new();
    let mut colour_of_plate: HashMap<String, u8> = HashMap::new();
    let mut misreads_lowest_at_divergence = 0;
    let mut vehicle_subjects = 0;
    let mut traffic = Traffic::new(city, config(3_000)).with_truth();
    let events: Vec<SyntheticEvent> = traffic.by_ref().collect();
    let truth = traffic.take_truth();
    let true_plate: HashMap<[u8; 16], &str> = truth
        .iter()
        .flat_map(|t| {
            t.event_ids
                .iter()
                .map(move |id| (*id, t.true_plate.as_str()))
        })
        .collect();
    for event in &events {
        assert!(
            (0.0..360.0).contains(&event.heading_deg),
            "{}",
            event.heading_deg
        );
        assert!(
            event.speed_kmh > 2.0 && event.speed_kmh < 90.0,
            "{}",
            event.speed_kmh
        );
        if event.object_class != ObjectClass::Vehicle {
            assert_eq!((event.plate_color, event.brand), (0, ""));
            assert!(event.plate_char_confidence.is_empty());
            continue;
        }
        let truth_key = true_plate[&event.event_id];
        let chars = event.plate.chars().filter(|&c| c != '·').count();
        assert_eq!(event.plate_char_confidence.len(), chars, "{}", event.plate);
        let lowest = (event.plate_confidence * 100.0).round() as u8;
        assert_eq!(event.plate_char_confidence.iter().min(), Some(&lowest));
        assert!(!event.brand.is_empty());
        // One make per vehicle, across all its events.
        let brand = brand_of_plate
            .entry(truth_key.to_string())
            .or_insert(event.brand);
        assert_eq!(*brand, event.brand);
        let colour = colour_of_plate
            .entry(truth_key.to_string())
            .or_insert(event.plate_color);
        assert_eq!(*colour, event.plate_color);
        if normalize(&event.plate) != truth_key {
            let read: Vec<char> = normalize(&event.plate).chars().collect();
            let truth: Vec<char> = truth_key.chars().collect();
            let at = read.iter().zip(&truth).position(|(r, t)| r != t);
            if at.is_some_and(|at| event.plate_char_confidence[at] == lowest) {
                misreads_lowest_at_divergence += 1;
            }
        }
        // Large vehicles have yellow(-green) plates.
        if matches!(event.vehicle_type, 4 | 5) {
            assert!(matches!(
                event.plate_color,
                plate_color::YELLOW | plate_color::YELLOW_GREEN
            ));
        }
    }
    for &colour in colour_of_plate.values() {
        vehicle_subjects += 1;
        *colours.entry(colour).or_default() += 1;
    }
    let share =
        |colour: u8| colours.get(&colour).copied().unwrap_or(0) as f64 / vehicle_subjects as f64;
    // New-energy plates are 12 % of plates; green is the small new-energy ones.
    assert!(
        (0.08..0.16).contains(&share(plate_color::GREEN)),
        "{colours:?}"
    );
    assert!(
        (0.65..0.85).contains(&share(plate_color::BLUE)),
        "{colours:?}"
    );
    assert!(
        (0.05..0.15).contains(&share(plate_color::YELLOW)),
        "{colours:?}"
    );
    let brands: HashSet<&str> = brand_of_plate.values().copied().collect();
    assert!(brands.len() >= 10, "{brands:?}");
    assert!(
        misreads_lowest_at_divergence > 20,
        "{misreads_lowest_at_divergence}"
    );
    // Deterministic: a second run gives the same attributes.
    let again: Vec<SyntheticEvent> = Traffic::new(city, config(3_000)).collect();
    assert_eq!(again, events);
}
