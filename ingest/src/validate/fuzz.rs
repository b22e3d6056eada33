//! Fuzzing the decoder of outside bytes at the ingest door: an `EventBatch` as a gateway
//! sends it, through the lenient protobuf decoding and every per-event check.
//!
//! A proptest corpus run, part of `cargo test` (and so of CI): every file of the committed
//! corpus `ingest/fuzz/corpus/batch/` is replayed, then mutations of it (bit flips, byte
//! runs, cuts, splices, huge varints) are tried for `CAMTRAIL_FUZZ_SECS` seconds (default 10)
//! or `CAMTRAIL_FUZZ_CASES` cases, whichever ends first. An input either decodes or gets
//! `undecodable_message` (INVALID_ARGUMENT); a decoded batch has each event accepted or
//! rejected exactly once, with a code, a bounded message and no plate text; nothing panics.
//! A failing input is written to `target/fuzz-failures/` and named in the panic: add it
//! to the corpus once fixed.
//!
//! `CAMTRAIL_FUZZ_WRITE_CORPUS=1 cargo test -p camtrail-ingest fuzz` rewrites the seed files.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use camtrail_model::ErrorCode;
use camtrail_proto::v1::BoundingBox;
use camtrail_proto::wire::{RawDetectionEvent, RawEventBatch, undecodable};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRng, TestRunner};
use prost::Message;

use super::Validator;
use super::fixtures::{
    GATEWAY, NOW_MS, OTHER_CAMERA, OWN_CAMERA, bomb_jpeg, jpeg, png, registry, vehicle_event,
};

/// A plate every seed carries somewhere, so leaks into messages are visible.
const MARKER: &str = "QZ9X7";

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/batch")
}

/// The seed batches: valid events, each kind of invalid field, snapshots good and bad.
fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let with = |change: &dyn Fn(&mut RawDetectionEvent)| {
        let mut event = vehicle_event(1);
        event.plate = format!("粤B{MARKER}").into_bytes();
        change(&mut event);
        event
    };
    let batch = |events: Vec<RawDetectionEvent>| {
        RawEventBatch {
            gateway_id: GATEWAY.into(),
            batch_seq: 42,
            events,
        }
        .encode_to_vec()
    };
    vec![
        ("empty", batch(vec![])),
        ("one_valid", batch(vec![with(&|_| {})])),
        (
            "mixed",
            batch(vec![
                with(&|_| {}),
                with(&|e| e.camera_id = OTHER_CAMERA.into()),
                with(&|e| e.plate = vec![0xff, b'Q', b'Z']),
                with(&|e| e.plate = format!("粤B\u{202E}{MARKER}").into_bytes()),
                with(&|e| e.event_id = vec![0; 16]),
                with(&|e| e.captured_at_ms = i64::MAX),
                with(&|e| e.object_class = 99),
                with(&|e| e.plate_confidence = f32::NAN),
                with(&|e| e.camera_id = b"4403\"<x>".to_vec()),
            ]),
        ),
        (
            "snapshots",
            batch(vec![
                with(&|e| e.snapshot = jpeg(32, 24)),
                with(&|e| e.snapshot = png(8, 8)),
                with(&|e| e.snapshot = bomb_jpeg(60_000, 60_000)),
                with(&|e| e.snapshot = vec![0xff, 0xd8, 0xff]),
            ]),
        ),
        (
            "person_without_key",
            batch(vec![with(&|e| {
                e.object_class = 2;
                e.plate.clear();
                e.bbox = Some(BoundingBox {
                    x: u32::MAX,
                    y: 0,
                    width: 0,
                    height: u32::MAX,
                });
            })]),
        ),
    ]
}

fn load_corpus() -> Vec<Vec<u8>> {
    read_corpus(&corpus_dir(), &seeds(), "pb")
}

/// The committed corpus in `dir` (every file, sorted by name), after rewriting the
/// generated `seeds` as `<name>.<extension>` when `CAMTRAIL_FUZZ_WRITE_CORPUS` is set.
pub(crate) fn read_corpus(
    dir: &Path,
    seeds: &[(&'static str, Vec<u8>)],
    extension: &str,
) -> Vec<Vec<u8>> {
    if std::env::var_os("CAMTRAIL_FUZZ_WRITE_CORPUS").is_some() {
        std::fs::create_dir_all(dir).expect("corpus dir");
        for (name, bytes) in seeds {
            std::fs::write(dir.join(format!("{name}.{extension}")), bytes).expect("write seed");
        }
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the committed corpus)", dir.display()))
        .map(|entry| entry.expect("corpus entry").path())
        .collect();
    files.sort();
    let corpus: Vec<Vec<u8>> = files
        .iter()
        .map(|path| std::fs::read(path).expect("read corpus file"))
        .collect();
    assert!(corpus.len() >= seeds.len(), "corpus in {}", dir.display());
    corpus
}

/// Feed one input through decoding and validation and check what comes out.
fn check(validator: &Validator, bytes: &[u8]) {
    let batch = match RawEventBatch::decode(bytes) {
        Ok(batch) => batch,
        Err(error) => {
            let status = undecodable(&error);
            assert_eq!(status.code(), tonic::Code::InvalidArgument);
            assert!(
                status
                    .message()
                    .starts_with(ErrorCode::UndecodableMessage.name())
            );
            return;
        }
    };
    let events = batch.events.len();
    let validated = validator.validate_batch(GATEWAY, batch, NOW_MS);
    assert_eq!(validated.events_in_batch, events);
    assert_eq!(
        validated.accepted.len() + validated.rejections.len(),
        events
    );
    let mut last = None;
    for rejection in &validated.rejections {
        assert!((rejection.index as usize) < events);
        assert!(last < Some(rejection.index), "indices ascend, each once");
        last = Some(rejection.index);
        assert_ne!(rejection.code, 0, "every rejection has a code");
        assert!(rejection.message.len() <= 300, "{}", rejection.message);
        assert!(!rejection.message.contains(MARKER), "{}", rejection.message);
    }
    for detection in &validated.accepted {
        assert_eq!(detection.camera_id, OWN_CAMERA);
        assert!(!camtrail_model::text::has_hidden(&detection.subject_key));
    }
}

#[derive(Debug, Clone)]
pub(crate) enum Mutation {
    FlipBit(usize, u8),
    SetByte(usize, u8),
    Insert(usize, Vec<u8>),
    Remove(usize, usize),
    Truncate(usize),
    /// A varint of up to ten bytes (lengths, tags and enum values that overflow).
    Varint(usize, u64),
    Splice(usize, usize, usize),
}

pub(crate) fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0u8..8).prop_map(|(at, bit)| Mutation::FlipBit(at, bit)),
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::SetByte(at, b)),
        (any::<usize>(), prop::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(at, bytes)| Mutation::Insert(at, bytes)),
        (any::<usize>(), 1usize..64).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        (any::<usize>(), any::<u64>()).prop_map(|(at, v)| Mutation::Varint(at, v)),
        (any::<usize>(), any::<usize>(), any::<usize>())
            .prop_map(|(other, from, at)| Mutation::Splice(other, from, at)),
    ]
}

pub(crate) fn apply(corpus: &[Vec<u8>], mut bytes: Vec<u8>, mutation: &Mutation) -> Vec<u8> {
    let pos = |at: usize, len: usize| if len == 0 { 0 } else { at % (len + 1) };
    match *mutation {
        Mutation::FlipBit(at, bit) if !bytes.is_empty() => {
            let i = at % bytes.len();
            bytes[i] ^= 1 << bit;
        }
        Mutation::SetByte(at, b) if !bytes.is_empty() => {
            let i = at % bytes.len();
            bytes[i] = b;
        }
        Mutation::Insert(at, ref more) => {
            let i = pos(at, bytes.len());
            bytes.splice(i..i, more.iter().copied());
        }
        Mutation::Remove(at, n) if !bytes.is_empty() => {
            let i = at % bytes.len();
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Truncate(at) => bytes.truncate(pos(at, bytes.len())),
        Mutation::Varint(at, value) => {
            let i = pos(at, bytes.len());
            let mut varint = Vec::new();
            prost::encoding::encode_varint(value, &mut varint);
            bytes.splice(i..i, varint);
        }
        Mutation::Splice(other, from, at) => {
            let other = &corpus[other % corpus.len()];
            let from = pos(from, other.len());
            let i = pos(at, bytes.len());
            bytes.truncate(i);
            bytes.extend_from_slice(&other[from..]);
        }
        _ => {}
    }
    bytes
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn fuzz_batch_decoder_and_validation() {
    let validator = Validator::new(Default::default(), registry());
    let corpus = load_corpus();
    let strategy = (any::<usize>(), prop::collection::vec(mutation(), 1..6));
    run(
        "batch",
        "pb",
        &corpus,
        |runner| {
            let (which, mutations) = strategy.new_tree(runner).expect("a value").current();
            let mut input = corpus[which % corpus.len()].clone();
            for m in &mutations {
                input = apply(&corpus, input, m);
            }
            input
        },
        |input| check(&validator, input),
    );
}

/// The fuzz run both decoders share: every corpus file through `check`, then inputs from
/// `next` for `CAMTRAIL_FUZZ_SECS` seconds (default 10) or `CAMTRAIL_FUZZ_CASES` cases,
/// seeded by `CAMTRAIL_FUZZ_SEED` (random by default). A failing input is written to
/// `target/fuzz-failures/<name>-<seed>-<case>.<extension>` and named in the panic.
pub(crate) fn run(
    name: &str,
    extension: &str,
    corpus: &[Vec<u8>],
    mut next: impl FnMut(&mut TestRunner) -> Vec<u8>,
    check: impl Fn(&[u8]) + std::panic::RefUnwindSafe,
) {
    for input in corpus {
        check(input);
    }
    let budget = Duration::from_secs(env_number("CAMTRAIL_FUZZ_SECS", 10));
    let max_cases = env_number("CAMTRAIL_FUZZ_CASES", u64::MAX);
    let seed: u64 = env_number("CAMTRAIL_FUZZ_SEED", rand_seed());
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(
            proptest::test_runner::RngAlgorithm::ChaCha,
            &seed_bytes(seed),
        ),
    );
    let started = Instant::now();
    let mut cases = 0u64;
    while started.elapsed() < budget && cases < max_cases {
        let input = next(&mut runner);
        let outcome = std::panic::catch_unwind(|| check(&input));
        if let Err(panic) = outcome {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/fuzz-failures");
            let _ = std::fs::create_dir_all(&dir);
            let file = dir.join(format!("{name}-{seed}-{cases}.{extension}"));
            let _ = std::fs::write(&file, &input);
            std::panic::resume_unwind(Box::new(format!(
                "fuzz case {cases} (CAMTRAIL_FUZZ_SEED={seed}) failed, input in {}: {:?}",
                file.display(),
                panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
            )));
        }
        cases += 1;
    }
    eprintln!(
        "fuzz {name}: {} corpus files, {cases} mutated cases in {:.1} s (CAMTRAIL_FUZZ_SEED={seed})",
        corpus.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(cases > 0 || budget.is_zero() || max_cases == 0);
}

fn rand_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(7, |d| d.as_nanos() as u64)
}

fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut bytes = [0u8; 32];
    for (i, chunk) in bytes.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(seed.wrapping_mul(i as u64 + 1)).to_le_bytes());
    }
    bytes
}
