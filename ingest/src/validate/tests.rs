//! Tests of the public [`Validator`] API: accepted detections, batches, and the fuzz
//! properties (arbitrary bytes through the batch decoder and the validator).

use super::*;
use crate::validate::fixtures::{
    self, GATEWAY, NOW_MS, OTHER_CAMERA, OWN_CAMERA, PLATE, PLATE_KEY, jpeg,
};
use camtrail_model::{EventId, ObjectClass, VehicleAttributes};
use image::{GenericImageView, ImageFormat};
use proptest::prelude::*;
use prost::Message;

fn validator() -> Validator {
    Validator::new(ValidationLimits::default(), fixtures::registry())
}

#[test]
fn accepted_vehicle_gets_normalised_key_and_thumbnail() {
    let snapshot = jpeg(1280, 720);
    let event = RawDetectionEvent {
        snapshot: snapshot.clone(),
        ..fixtures::vehicle_event(7)
    };
    let detection = validator()
        .validate_event(GATEWAY, event, NOW_MS)
        .expect("accepted");
    let thumbnail = detection.thumbnail_jpeg.clone().expect("thumbnail");
    let image = image::load_from_memory_with_format(&thumbnail, ImageFormat::Jpeg).expect("jpeg");
    assert_eq!(image.dimensions(), (256, 144));
    assert!(thumbnail.len() < snapshot.len(), "original not kept");
    let expected = Detection {
        event_id: EventId([7; 16]),
        camera_id: OWN_CAMERA.into(),
        captured_at_ms: NOW_MS - 1_000,
        object_class: ObjectClass::Vehicle,
        plate: PLATE.into(),
        plate_confidence: 0.93,
        subject_key: PLATE_KEY.into(),
        attributes: VehicleAttributes {
            color: 2,
            kind: 1,
            plate_color: 1,
            direction: 3,
            speed_kmh: 48.0,
            brand: "大众".into(),
        },
        plate_char_confidence: vec![91, 92, 93, 94, 95, 96, 97],
        bbox: [10, 20, 300, 150],
        thumbnail_jpeg: Some(thumbnail),
        gateway_id: GATEWAY.into(),
        received_at_ms: NOW_MS,
    };
    assert_eq!(detection, expected);
}

#[test]
fn upstream_key_wins_and_persons_need_no_key() {
    let validator = validator();
    let keyed = RawDetectionEvent {
        subject_key: b" reid:42 ".to_vec(),
        ..fixtures::vehicle_event(1)
    };
    let detection = validator
        .validate_event(GATEWAY, keyed, NOW_MS)
        .expect("keyed");
    assert_eq!(
        (detection.subject_key.as_str(), detection.plate.as_str()),
        ("reid:42", PLATE)
    );

    let person = RawDetectionEvent {
        object_class: 2,
        plate: Vec::new(),
        plate_confidence: 0.0,
        vehicle_color: 0,
        vehicle_type: 0,
        plate_color: 0,
        vehicle_brand: Vec::new(),
        direction: 0,
        speed_kmh: 0.0,
        plate_char_confidence: Vec::new(),
        bbox: None,
        ..fixtures::vehicle_event(2)
    };
    let detection = validator
        .validate_event(GATEWAY, person, NOW_MS)
        .expect("person");
    assert_eq!(detection.object_class, ObjectClass::Person);
    assert_eq!(detection.subject_key, "");
    assert_eq!(detection.bbox, [0; 4]);
    assert_eq!(detection.attributes, VehicleAttributes::default());
    assert_eq!(detection.thumbnail_jpeg, None);
}

#[test]
fn mixed_batch_accounts_for_every_event_by_index() {
    let mut events: Vec<RawDetectionEvent> = (1..=6).map(fixtures::vehicle_event).collect();
    events[1].camera_id = OTHER_CAMERA.into();
    events[3].plate.clear();
    events[4].snapshot = b"GIF89a".to_vec();
    events[5].snapshot = jpeg(64, 48);
    let batch = RawEventBatch {
        gateway_id: GATEWAY.into(),
        batch_seq: 77,
        events,
    };
    let validated = validator().validate_batch(GATEWAY, batch, NOW_MS);
    assert_eq!(validated.batch_seq, 77);
    assert_eq!(validated.events_in_batch, 6);
    let accepted_ids: Vec<u8> = validated.accepted.iter().map(|d| d.event_id.0[0]).collect();
    assert_eq!(accepted_ids, [1, 3, 6]);
    let rejected: Vec<(u32, i32)> = validated
        .rejections
        .iter()
        .map(|r| (r.index, r.code))
        .collect();
    assert_eq!(
        rejected,
        [
            (1, RejectionCode::CameraNotOwned as i32),
            (3, RejectionCode::MissingPlate as i32),
            (4, RejectionCode::SnapshotNotJpeg as i32),
        ]
    );
    let by_code: Vec<(RejectionCode, usize)> = validated.rejected_by_code().collect();
    assert_eq!(
        by_code,
        [
            (RejectionCode::CameraNotOwned, 1),
            (RejectionCode::MissingPlate, 1),
            (RejectionCode::SnapshotNotJpeg, 1),
        ]
    );
}

#[test]
fn empty_batch_is_an_empty_ack() {
    let batch = RawEventBatch {
        gateway_id: GATEWAY.into(),
        batch_seq: 1,
        events: Vec::new(),
    };
    let validated = validator().validate_batch(GATEWAY, batch, NOW_MS);
    assert_eq!(
        (validated.events_in_batch, validated.accepted.len()),
        (0, 0)
    );
    assert!(validated.rejections.is_empty());
}

/// Checks every fuzz case must pass: counts add up, indexes are in range, increasing, and
/// never also accepted.
fn assert_accounted(validated: &ValidatedBatch, events: usize) -> Result<(), TestCaseError> {
    prop_assert_eq!(validated.events_in_batch, events);
    prop_assert_eq!(
        validated.accepted.len() + validated.rejections.len(),
        events
    );
    let indexes: Vec<u32> = validated.rejections.iter().map(|r| r.index).collect();
    prop_assert!(indexes.windows(2).all(|pair| pair[0] < pair[1]));
    prop_assert!(indexes.iter().all(|&index| (index as usize) < events));
    for rejection in &validated.rejections {
        prop_assert!(rejection.code != RejectionCode::Unspecified as i32);
        prop_assert!(!rejection.message.is_empty());
    }
    Ok(())
}

/// Events mixing valid and invalid values of every field, each field valid four times in
/// five, so every path (accepted and each rejection) is reached. Plates and keys carry a
/// marker (`粤Q`, `KEY#`) that no rejection message may ever contain.
fn arbitrary_event() -> impl Strategy<Value = RawDetectionEvent> {
    let text = |prefix: &'static str| {
        prop_oneof![
            4 => "[A-Z0-9·\\- ]{0,12}".prop_map(move |tail| format!("{prefix}{tail}").into_bytes()),
            1 => prop::collection::vec(any::<u8>(), 0..40)
                .prop_map(move |tail| [prefix.as_bytes(), &tail].concat()),
            1 => Just(Vec::new()),
        ]
    };
    let event_id = prop_oneof![
        4 => prop::collection::vec(1..=255u8, 16),
        1 => prop::collection::vec(any::<u8>(), 0..=17),
    ];
    let camera = prop_oneof![
        4 => Just(OWN_CAMERA),
        1 => prop::sample::select(vec![OTHER_CAMERA, "4403", "", "cam 1"]),
    ];
    let time = prop_oneof![4 => NOW_MS - 600_000_000..NOW_MS + 300_000, 1 => any::<i64>()];
    let class = prop_oneof![4 => 1..=3i32, 1 => any::<i32>()];
    let confidence = prop_oneof![4 => 0.0f32..=1.0, 1 => any::<f32>()];
    let color = prop_oneof![4 => 0..=9i32, 1 => any::<i32>()];
    let kind = prop_oneof![4 => 0..=6i32, 1 => any::<i32>()];
    let plate_color = prop_oneof![4 => 0..=6i32, 1 => any::<i32>()];
    let direction = prop_oneof![4 => 0..=8i32, 1 => any::<i32>()];
    let speed = prop_oneof![4 => 0.0f32..=400.0, 1 => any::<f32>()];
    let chars = prop_oneof![
        4 => prop::collection::vec(0..=100u8, 0..=8),
        1 => prop::collection::vec(any::<u8>(), 0..=20),
    ];
    let brand = text("BRAND#");
    let snapshot = prop_oneof![
        6 => Just(Vec::new()),
        1 => Just(jpeg(8, 8)),
        1 => prop::collection::vec(any::<u8>(), 0..64)
            .prop_map(|tail| [&[0xFF, 0xD8, 0xFF][..], &tail].concat()),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ];
    let head = (event_id, camera, time, class);
    let tail = (text("粤Q"), confidence, text("KEY#"), color, kind, snapshot);
    let attributes = (plate_color, direction, speed, chars, brand);
    (head, tail, attributes).prop_map(
        |(
            (id, camera, time, class),
            (plate, confidence, key, color, kind, snap),
            (plate_color, direction, speed_kmh, plate_char_confidence, vehicle_brand),
        )| {
            RawDetectionEvent {
                event_id: id,
                camera_id: camera.as_bytes().to_vec(),
                captured_at_ms: time,
                object_class: class,
                plate,
                plate_confidence: confidence,
                subject_key: key,
                vehicle_color: color,
                vehicle_type: kind,
                bbox: None,
                snapshot: snap,
                plate_color,
                vehicle_brand,
                direction,
                speed_kmh,
                plate_char_confidence,
            }
        },
    )
}

#[test]
fn fuzz_events_reach_acceptance_and_most_rejection_codes() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;
    let validator = validator();
    let strategy = arbitrary_event();
    let mut runner = TestRunner::deterministic();
    let mut accepted = 0;
    let mut codes = BTreeMap::new();
    for _ in 0..2000 {
        let event = strategy.new_tree(&mut runner).expect("event").current();
        match validator.validate_event(GATEWAY, event, NOW_MS) {
            Ok(_) => accepted += 1,
            Err(rejection) => *codes.entry(rejection.code as i32).or_insert(0) += 1,
        }
    }
    assert!(accepted > 100, "accepted {accepted} of 2000");
    // All but SNAPSHOT_TOO_LARGE and SNAPSHOT_TOO_BIG_DECODED, which need big inputs.
    assert!(codes.len() >= 12, "codes reached: {codes:?}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Arbitrary bytes into the lenient batch decoder, then the validator: no panic, and
    /// every decoded event is accounted for.
    #[test]
    fn arbitrary_bytes_through_decoder_and_validator(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        if let Ok(batch) = RawEventBatch::decode(bytes.as_slice()) {
            let events = batch.events.len();
            let validated = validator().validate_batch(GATEWAY, batch, NOW_MS);
            assert_accounted(&validated, events)?;
        }
    }

    /// Structured batches, encoded, with a few bytes flipped, decoded and validated: the
    /// flips land in field values, so this reaches deeper than arbitrary bytes.
    #[test]
    fn corrupted_batches_are_accounted(
        events in prop::collection::vec(arbitrary_event(), 0..12),
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        let mut bytes = RawEventBatch { gateway_id: GATEWAY.into(), batch_seq: 9, events }
            .encode_to_vec();
        for (index, value) in flips {
            if !bytes.is_empty() {
                let at = index.index(bytes.len());
                bytes[at] ^= value;
            }
        }
        if let Ok(batch) = RawEventBatch::decode(bytes.as_slice()) {
            let events = batch.events.len();
            let validated = validator().validate_batch(GATEWAY, batch, NOW_MS);
            assert_accounted(&validated, events)?;
        }
    }

    /// Whatever is wrong with an event, its rejection message never contains the plate or
    /// the subject key it carried.
    #[test]
    fn rejection_messages_never_contain_plates_or_keys(
        events in prop::collection::vec(arbitrary_event(), 1..12),
    ) {
        let batch = RawEventBatch { gateway_id: GATEWAY.into(), batch_seq: 1, events: events.clone() };
        let validated = validator().validate_batch(GATEWAY, batch, NOW_MS);
        assert_accounted(&validated, events.len())?;
        for rejection in &validated.rejections {
            let event = &events[rejection.index as usize];
            let message = &rejection.message;
            prop_assert!(!message.contains("粤Q") && !message.contains("KEY#"), "{}", message);
            for text in [&event.plate, &event.subject_key] {
                let lossy = String::from_utf8_lossy(text);
                let key = camtrail_model::plate::normalize(&lossy);
                for needle in [lossy.trim(), key.as_str()] {
                    prop_assert!(needle.is_empty() || !message.contains(needle), "{}", message);
                }
            }
        }
    }
}
