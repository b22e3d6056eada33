//! Fuzzing the GA/T 1400 decoder: a `POST /VIID/MotorVehicles` body as a platform sends
//! it, through the JSON parse, the per-object mapping and every per-event check — the
//! same corpus-and-mutations run as the gRPC batch decoder's (`validate::fuzz`), part of
//! `cargo test`.
//!
//! Corpus: `ingest/fuzz/corpus/gat1400/` (the proto crate's fixtures plus generated
//! bodies; `CAMTRAIL_FUZZ_WRITE_CORPUS=1` rewrites the generated ones). Mutations: the
//! byte-level ones of the batch fuzzer plus JSON tokens spliced anywhere. A body is either
//! not a `MotorVehicleListObject` (answered 400) or has one outcome per object — mapped
//! into the batch, or refused with a code — and after validation every mapped event is
//! accepted or rejected exactly once; no message carries plate text; nothing panics.

use std::path::{Path, PathBuf};

use camtrail_proto::gat1400::encode;
use camtrail_proto::v1;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

use super::http::{Mapped, map_with};
use crate::validate::Validator;
use crate::validate::fixtures::{
    GATEWAY, NOW_MS, OTHER_CAMERA, OWN_CAMERA, bomb_jpeg, jpeg, registry,
};
use crate::validate::fuzz::{Mutation, apply, mutation, read_corpus, run};

/// Plate text every generated seed carries, so leaks into messages are visible.
const MARKER: &str = "QZ9X7";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/gat1400")
}

fn record(n: u8, change: &dyn Fn(&mut v1::DetectionEvent)) -> encode::MotorVehicleOut {
    let mut event = v1::DetectionEvent {
        event_id: vec![n.max(1); 16],
        camera_id: OWN_CAMERA.into(),
        captured_at_ms: NOW_MS - 1_000,
        object_class: 1,
        plate: format!("粤B{MARKER}"),
        plate_confidence: 0.9,
        vehicle_color: 2,
        vehicle_type: 1,
        plate_color: 1,
        vehicle_brand: "大众".into(),
        direction: 3,
        speed_kmh: 40.0,
        plate_char_confidence: vec![90; 7],
        ..Default::default()
    };
    change(&mut event);
    encode::motor_vehicle(&event, chrono_tz::Asia::Shanghai)
}

fn body(records: Vec<encode::MotorVehicleOut>) -> Vec<u8> {
    serde_json::to_vec(&encode::MotorVehicleListOut::new(records)).unwrap_or_default()
}

/// Generated seeds: valid records, every kind of bad field, images good and bad.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with_image = record(3, &|e| e.snapshot = jpeg(32, 24));
    let bomb = record(4, &|e| e.snapshot = bomb_jpeg(60_000, 60_000));
    let mut unreadable = record(5, &|_| {});
    unreadable.PlateNo = format!("粤B-{MARKER}");
    let mut no_plate = record(6, &|_| {});
    no_plate.PlateNo = camtrail_proto::gat1400::NO_PLATE.into();
    vec![
        ("generated_empty", body(vec![])),
        ("generated_valid", body(vec![record(1, &|_| {})])),
        (
            "generated_mixed",
            body(vec![
                record(1, &|_| {}),
                record(2, &|e| e.camera_id = OTHER_CAMERA.into()),
                record(7, &|e| e.captured_at_ms = NOW_MS + 86_400_000),
                record(8, &|e| e.speed_kmh = 999.0),
                unreadable,
                no_plate,
            ]),
        ),
        ("generated_images", body(vec![with_image, bomb])),
    ]
}

fn load_corpus() -> Vec<Vec<u8>> {
    read_corpus(&corpus_dir(), &seeds(), "json")
}

/// One body through mapping and validation, and what must hold of the outcome.
fn check(validator: &Validator, bytes: &[u8]) {
    let zone = Some(chrono_tz::Asia::Shanghai);
    let Some(mapped) = map_with(bytes, zone, 512 * 1024, &registry()) else {
        return; // not a MotorVehicleListObject: a 400, nothing read
    };
    assert_eq!(mapped.ids.len(), mapped.outcomes.len());
    let mut next_index = 0;
    for outcome in &mapped.outcomes {
        match outcome {
            Mapped::Event(index) => {
                assert_eq!(*index, next_index, "events keep object order");
                next_index += 1;
            }
            Mapped::Refused(error) => {
                assert!(!error.message.is_empty());
                assert!(!error.message.contains(MARKER), "{}", error.message);
            }
        }
    }
    assert_eq!(next_index, mapped.events.len());
    let batch = camtrail_proto::wire::RawEventBatch {
        gateway_id: GATEWAY.into(),
        batch_seq: 0,
        events: mapped.events,
    };
    let events = batch.events.len();
    let validated = validator.validate_batch(GATEWAY, batch, NOW_MS);
    assert_eq!(
        validated.accepted.len() + validated.rejections.len(),
        events
    );
    for rejection in &validated.rejections {
        assert!(!rejection.message.contains(MARKER), "{}", rejection.message);
    }
}

/// JSON tokens to splice in, on top of the byte mutations.
const TOKENS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    "\"",
    ",",
    ":",
    "null",
    "true",
    "1e999",
    "-0",
    "\"\\u0000\"",
    "\"\\ud800\"",
    "{\"MotorVehicleObject\":",
    "\"PassTime\":",
    "\"SubImageList\":{",
    "99999999999999999999",
    "\"粤",
];

fn json_mutation() -> impl Strategy<Value = (usize, usize)> {
    (any::<usize>(), 0..TOKENS.len())
}

#[test]
fn fuzz_gat1400_decoder_and_validation() {
    let validator = Validator::new(Default::default(), registry());
    let corpus = load_corpus();
    let strategy = (
        any::<usize>(),
        prop::collection::vec(mutation(), 0..4),
        prop::collection::vec(json_mutation(), 0..4),
    );
    run(
        "gat1400",
        "json",
        &corpus,
        |runner| {
            let (which, mutations, tokens): (usize, Vec<Mutation>, Vec<(usize, usize)>) =
                strategy.new_tree(runner).expect("a value").current();
            let mut input = corpus[which % corpus.len()].clone();
            for m in &mutations {
                input = apply(&corpus, input, m);
            }
            for (at, token) in tokens {
                let at = if input.is_empty() {
                    0
                } else {
                    at % (input.len() + 1)
                };
                input.splice(at..at, TOKENS[token].bytes());
            }
            input
        },
        |input| check(&validator, input),
    );
}
