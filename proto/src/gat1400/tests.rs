//! The fixtures under `fixtures/` (written from the public field lists: every field camtrail
//! reads, both time layouts, the no-plate and unreadable-character conventions, broken
//! records) and properties of the mapping.

use super::*;
use crate::v1::{Direction, PlateColor, VehicleColor, VehicleType};
use proptest::prelude::*;

const FULL: &str = include_str!("fixtures/full.json");
const CONVENTIONS: &str = include_str!("fixtures/conventions.json");
const BROKEN: &str = include_str!("fixtures/broken.json");

const DEVICE: &str = "44030000001190000001";
const TOLLGATE: &str = "44030000001210000001";
/// 2026-12-02 08:15:30 in Shanghai.
const PASS_MS: i64 = 1_796_170_530_000;
/// Stands in for a JPEG: the mapping only decodes base64, validation checks the image.
const IMAGE: &[u8] = b"\xFF\xD8\xFF\xE0 vehicle image bytes \xFF\xD9";

fn registered(id: &str) -> bool {
    [DEVICE, TOLLGATE, "44030000001210000001-2"].contains(&id)
}

fn context(zone: Option<Tz>) -> MapContext<'static> {
    MapContext {
        zone,
        max_snapshot_bytes: 512 * 1024,
        is_camera: &registered,
    }
}

/// Each object of a `MotorVehicleListObject` body, mapped on its own.
fn map_all(body: &str, zone: Option<Tz>) -> Vec<Result<RawDetectionEvent, Error>> {
    let request: MotorVehicleListRequest<'_> = serde_json::from_str(body).expect("list shape");
    request
        .list
        .objects
        .iter()
        .map(|raw| MotorVehicle::decode(raw).and_then(|v| v.to_event(&context(zone))))
        .collect()
}

fn shanghai() -> Option<Tz> {
    Some(chrono_tz::Asia::Shanghai)
}

#[test]
fn the_full_record_maps_every_field() {
    let body = FULL.replace(
        "@VEHICLE_JPEG_BASE64@",
        &base64::engine::general_purpose::STANDARD.encode(IMAGE),
    );
    let events = map_all(&body, shanghai());
    let event = events[0].as_ref().expect("accepted");
    assert_eq!(
        event.event_id,
        event_id("440300000011900000010220261202081530000010200001")
    );
    assert_eq!(event.camera_id, DEVICE.as_bytes(), "DeviceID wins");
    assert_eq!(event.captured_at_ms, PASS_MS);
    assert_eq!(event.object_class, v1::ObjectClass::Vehicle as i32);
    assert_eq!(event.plate, "粤B12345".as_bytes());
    assert!((event.plate_confidence - 0.92).abs() < 1e-6);
    assert_eq!(
        event.plate_char_confidence,
        vec![88, 95, 99, 97, 99, 90, 93]
    );
    assert_eq!(event.plate_color, PlateColor::Blue as i32);
    assert_eq!(event.vehicle_color, VehicleColor::White as i32);
    assert_eq!(event.vehicle_type, VehicleType::Car as i32);
    assert_eq!(event.vehicle_brand, b"1");
    assert_eq!(event.direction, Direction::East as i32);
    assert_eq!(event.speed_kmh, 48.5);
    assert_eq!(
        event.bbox,
        Some(BoundingBox {
            x: 100,
            y: 200,
            width: 300,
            height: 180
        })
    );
    assert_eq!(
        event.snapshot, IMAGE,
        "the Type 01 vehicle image, not the 02 plate image"
    );
}

#[test]
fn conventions_seen_in_the_wild() {
    let events = map_all(CONVENTIONS, shanghai());
    let ok = |i: usize| events[i].as_ref().expect("accepted");
    // Time with separators reads like the standard layout.
    assert_eq!(ok(0).captured_at_ms, PASS_MS);
    // No plate, with and without HasPlate: an empty plate (validation answers MISSING_PLATE).
    assert!(ok(1).plate.is_empty() && ok(2).plate.is_empty());
    // An unreadable character becomes the wildcard of track search patterns.
    assert_eq!(ok(3).plate, "粤B12?45".as_bytes());
    assert_eq!(
        ok(3).plate_char_confidence,
        vec![90, 90, 90, 90, 10, 90, 90]
    );
    // An explicit offset needs no zone.
    assert_eq!(ok(4).captured_at_ms, PASS_MS);
    // Tollgate lane, then tollgate, when no DeviceID is sent.
    assert_eq!(ok(5).camera_id, b"44030000001210000001-2");
    assert_eq!(ok(6).camera_id, TOLLGATE.as_bytes());
    // Numbers as text, text as numbers, unknown fields ignored.
    assert_eq!(ok(7).speed_kmh, 48.0);
    assert!((ok(7).plate_confidence - 0.88).abs() < 1e-6);
    assert_eq!(events.len(), 8);
}

#[test]
fn broken_records_are_per_object_errors_and_the_good_one_maps() {
    let events = map_all(BROKEN, shanghai());
    let codes: Vec<Option<ErrorCode>> = events
        .iter()
        .map(|r| r.as_ref().err().map(|e| e.code))
        .collect();
    use ErrorCode::*;
    assert_eq!(
        codes,
        vec![
            Some(InvalidField),   // PassTime is an object
            Some(InvalidField),   // Speed "fast"
            Some(InvalidEventId), // no MotorVehicleID
            Some(InvalidField),   // PassTime "yesterday"
            Some(InvalidField),   // no PassTime
            Some(InvalidField),   // SubImageList is a string
            Some(InvalidField),   // Data is not base64
            Some(InvalidField),   // PlateCharReliability "ninety"
            Some(InvalidField),   // PlateNo is an array
            Some(InvalidField),   // 42 is not an object
            None,                 // a good record among them
        ]
    );
    for error in events.iter().filter_map(|r| r.as_ref().err()) {
        assert!(!error.message.contains("粤B"), "{}", error.message);
        assert!(!error.message.is_empty());
    }
}

#[test]
fn a_time_without_zone_from_a_device_without_zone_is_refused() {
    let events = map_all(CONVENTIONS, None);
    let error = events[0].as_ref().expect_err("no zone");
    assert_eq!(error.code, ErrorCode::InvalidField);
    assert!(
        error.message.contains("no configured time_zone"),
        "{}",
        error.message
    );
    // The one with an explicit offset is still placed.
    assert_eq!(events[4].as_ref().expect("offset").captured_at_ms, PASS_MS);
}

#[test]
fn an_oversize_image_is_refused_before_it_is_decoded() {
    let data = "A".repeat(14 * 1024 * 1024);
    let body = FULL.replace("@VEHICLE_JPEG_BASE64@", &data);
    let error = map_all(&body, shanghai()).remove(0).expect_err("too large");
    assert_eq!(error.code, ErrorCode::SnapshotTooLarge);
}

#[test]
fn resends_get_the_same_event_id_and_ids_differ() {
    assert_eq!(event_id("A1"), event_id("A1"));
    assert_ne!(event_id("A1"), event_id("A2"));
    assert_ne!(event_id(""), [0; 16]);
}

#[test]
fn tollgates_and_lanes_become_cameras() {
    let body = r#"{"TollgateListObject":{"TollgateObject":[
        {"TollgateID":"44030000001210000009","Name":"深南大道-科苑路","Longitude":113.95,
         "Latitude":"22.54","PlaceCode":"440305","Status":"1","TollgateCat":"10"},
        {"TollgateID":"44030000001210000010","Longitude":200,"Latitude":22.5},
        {"Name":"no id","Longitude":113.9,"Latitude":22.5}]}}"#;
    let request: TollgateListRequest = serde_json::from_str(body).expect("shape");
    let district = |code: &str| {
        if code == "440305" {
            "南山".to_string()
        } else {
            code.to_string()
        }
    };
    let cameras: Vec<Result<Camera, Error>> = request
        .TollgateListObject
        .TollgateObject
        .iter()
        .map(|raw| Tollgate::decode(raw).and_then(|t| t.to_camera("gw-1", &district)))
        .collect();
    let camera = cameras[0].as_ref().expect("first");
    assert_eq!(
        (
            camera.camera_id.as_str(),
            camera.district.as_str(),
            camera.road.as_str()
        ),
        ("44030000001210000009", "南山", "深南大道-科苑路")
    );
    assert_eq!(
        (camera.lat, camera.lon, camera.gateway_id.as_str()),
        (22.54, 113.95, "gw-1")
    );
    assert_eq!(
        cameras[1].as_ref().err().map(|e| e.code),
        Some(ErrorCode::InvalidField)
    );
    assert_eq!(
        cameras[2].as_ref().err().map(|e| e.code),
        Some(ErrorCode::InvalidField)
    );

    let lane: Lane<'_> = serde_json::from_str(
        r#"{"TollgateID":"44030000001210000009","LaneId":1,"LaneNo":2,"Name":"2号车道","Direction":"2"}"#,
    )
    .expect("lane");
    let lane_camera = lane.to_camera(camera).expect("lane camera");
    assert_eq!(lane_camera.camera_id, "44030000001210000009-2");
    assert_eq!(lane_camera.heading_deg, 270.0, "direction 2 is west");
    assert_eq!(lane_camera.lat, camera.lat);
}

fn arbitrary_event() -> impl Strategy<Value = v1::DetectionEvent> {
    let plate = "[粤京沪][A-HJ-NP-Z][0-9A-HJ-NP-Z]{5}";
    (
        prop::collection::vec(1..=255u8, 16),
        1_500_000_000i64..4_000_000_000,
        (plate, 0..=100u8, prop::collection::vec(0..=100u8, 7)),
        (0..=9i32, 0..=6i32, 0..=5i32, 0..=8i32),
        (0..=2000u32, "[0-9]{0,2}"),
    )
        .prop_map(
            |(
                id,
                seconds,
                (plate, confidence, chars),
                (color, kind, plate_color, direction),
                (speed, brand),
            )| {
                v1::DetectionEvent {
                    event_id: id,
                    camera_id: DEVICE.into(),
                    captured_at_ms: seconds * 1000,
                    object_class: v1::ObjectClass::Vehicle as i32,
                    plate,
                    plate_confidence: f32::from(confidence) / 100.0,
                    vehicle_color: color,
                    vehicle_type: kind,
                    plate_color,
                    direction,
                    speed_kmh: speed as f32 / 10.0,
                    vehicle_brand: brand,
                    plate_char_confidence: chars,
                    bbox: Some(BoundingBox {
                        x: 1,
                        y: 2,
                        width: 30,
                        height: 40,
                    }),
                    snapshot: IMAGE.to_vec(),
                    ..Default::default()
                }
            },
        )
}

proptest! {
    /// What the load generator sends maps back to the event it stands for (times to the
    /// second, colours through their codes).
    #[test]
    fn encode_then_map_gives_the_event_back(event in arbitrary_event()) {
        let zone = chrono_tz::Asia::Shanghai;
        let body = serde_json::to_string(&encode::MotorVehicleListOut::new(vec![
            encode::motor_vehicle(&event, zone),
        ]))
        .expect("serialise");
        let mapped = map_all(&body, Some(zone)).remove(0).expect("maps");
        prop_assert_eq!(mapped.camera_id, event.camera_id.as_bytes());
        prop_assert_eq!(mapped.captured_at_ms, event.captured_at_ms);
        prop_assert_eq!(mapped.plate, event.plate.as_bytes());
        prop_assert!((mapped.plate_confidence - event.plate_confidence).abs() < 0.006);
        prop_assert_eq!(&mapped.plate_char_confidence, &event.plate_char_confidence);
        let expected_color = match event.vehicle_color {
            3 => VehicleColor::Grey as i32, // silver has no code of its own
            other => other,
        };
        prop_assert_eq!(mapped.vehicle_color, expected_color);
        prop_assert_eq!(mapped.vehicle_type, event.vehicle_type);
        prop_assert_eq!(mapped.plate_color, event.plate_color);
        prop_assert_eq!(mapped.direction, event.direction);
        prop_assert_eq!(mapped.speed_kmh, event.speed_kmh);
        prop_assert_eq!(mapped.vehicle_brand, event.vehicle_brand.as_bytes());
        prop_assert_eq!(mapped.bbox, event.bbox);
        prop_assert_eq!(&mapped.snapshot, &event.snapshot);
        let id = encode::motor_vehicle(&event, zone).MotorVehicleID;
        prop_assert_eq!(mapped.event_id, event_id(&id).to_vec());
    }

    /// Arbitrary JSON objects never panic the decoder: each maps or is a coded error.
    #[test]
    fn arbitrary_objects_map_or_fail_with_a_code(
        fields in prop::collection::vec(
            (
                prop::sample::select(vec![
                    "MotorVehicleID", "DeviceID", "TollgateID", "LaneNo", "PassTime", "HasPlate",
                    "PlateNo", "PlateColor", "PlateReliability", "PlateCharReliability",
                    "VehicleClass", "VehicleColor", "VehicleBrand", "Direction", "Speed",
                    "LeftTopX", "RightBtmY", "SubImageList", "Other",
                ]),
                prop_oneof![
                    "\\PC{0,20}".prop_map(serde_json::Value::from),
                    any::<i64>().prop_map(serde_json::Value::from),
                    any::<f64>().prop_map(serde_json::Value::from),
                    any::<bool>().prop_map(serde_json::Value::from),
                    Just(serde_json::json!({"SubImageInfoObject": [{"Type": "01", "Data": "AAAA"}]})),
                    Just(serde_json::json!([1, "2"])),
                    Just(serde_json::Value::Null),
                ],
            ),
            0..12,
        )
    ) {
        let object: serde_json::Map<String, serde_json::Value> =
            fields.into_iter().map(|(k, v)| (k.to_string(), v)).collect();
        let body = serde_json::json!({"MotorVehicleListObject": {"MotorVehicleObject": [object]}});
        let results = map_all(&body.to_string(), shanghai());
        prop_assert_eq!(results.len(), 1);
        if let Err(error) = &results[0] {
            prop_assert!(!error.message.is_empty());
        }
    }
}
