//! Fuzzing the query node's parser of outside bytes: the query strings of the HTTP API
//! (`/v1/track`, `/v1/passes`, `/v1/audit`, `/v1/snapshots/…`), through the real router,
//! extractors, time parsing, validation and an embedded store.
//!
//! A proptest corpus run, part of the test command: the committed corpus
//! `query/fuzz/corpus/query_string/` (one request per file) is replayed, then mutated
//! (byte changes, cuts, duplicated and swapped parameters, a dictionary of separators,
//! escapes, bidirectional overrides, huge numbers and RFC 3339 fragments) for
//! `CAMTRAIL_FUZZ_SECS` seconds (default 10) or `CAMTRAIL_FUZZ_CASES` cases. Every answer
//! must be 200 or a 4xx carrying a known error code; never a 5xx, a dropped connection or a
//! panic. A failing request is named with its seed in the panic.
//!
//! The JSON bodies of `/v1/scene`, `/v1/series` and `/v1/cotravel` the same way: the corpus
//! `query/fuzz/corpus/analytics_body/` (path on the first line, body after), mutated byte by
//! byte and with a dictionary of JSON tokens, areas, extreme numbers and plates.

use std::path::Path;
use std::time::{Duration, Instant};

use camtrail_model::{ErrorCode, ObjectClass};
use camtrail_query::client::{ClientError, get, post_bytes};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

use crate::query_node::{CAMERA_A, CAMERA_B, T0, event, small_node};

const DICTIONARY: &[&str] = &[
    "&",
    "=",
    "&&",
    "==",
    "%",
    "%2",
    "%G1",
    "%FF",
    "%00",
    "%0A",
    "%E2%80%AE",
    "%E2%81%A7",
    "%E7%B2%A4",
    "+",
    ",",
    ",,",
    "from=",
    "to=",
    "limit=",
    "cursor=",
    "after=",
    "case=",
    "reason=",
    "plate=",
    "subject_key=",
    "cameras=",
    "district=",
    "user=",
    "kind=",
    "object_class=",
    "fuzzy=",
    "-1",
    "0",
    "9223372036854775807",
    "-9223372036854775808",
    "99999999999999999999",
    "1e309",
    "NaN",
    "2025-11-26T12:00:00Z",
    "T",
    "Z",
    "+08:00",
    "*",
    "?",
    "%3F",
    "%2A",
    "true",
    "yes",
    "null",
    "%22",
    "'",
    "<",
    ">",
];

fn corpus() -> Vec<String> {
    read_corpus("query_string")
}

fn read_corpus(name: &str) -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("query/fuzz/corpus")
        .join(name);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e} (the committed corpus)", dir.display()))
        .map(|entry| entry.expect("entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .expect("read")
                .trim()
                .to_string()
        })
        .collect()
}

#[derive(Debug, Clone)]
enum Mutation {
    SetByte(usize, u8),
    Insert(usize, usize),
    Remove(usize, usize),
    Truncate(usize),
    /// Repeat one `&`-separated parameter.
    Duplicate(usize),
    /// Swap two parameters.
    Swap(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0x20u8..0x7f).prop_map(|(at, b)| Mutation::SetByte(at, b)),
        (any::<usize>(), any::<usize>()).prop_map(|(at, word)| Mutation::Insert(at, word)),
        (any::<usize>(), 1usize..24).prop_map(|(at, n)| Mutation::Remove(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
        any::<usize>().prop_map(Mutation::Duplicate),
        (any::<usize>(), any::<usize>()).prop_map(|(a, b)| Mutation::Swap(a, b)),
    ]
}

/// Mutate the query part (after `?`) of `request`.
fn apply(request: &str, mutation: &Mutation) -> String {
    let (path, query) = request.split_once('?').unwrap_or((request, ""));
    let mut query = query.as_bytes().to_vec();
    let len = query.len();
    let pos = |at: usize| if len == 0 { 0 } else { at % (len + 1) };
    match *mutation {
        Mutation::SetByte(at, b) if len > 0 => query[at % len] = b,
        Mutation::Insert(at, word) => {
            let i = pos(at);
            query.splice(i..i, DICTIONARY[word % DICTIONARY.len()].bytes());
        }
        Mutation::Remove(at, n) if len > 0 => {
            let i = at % len;
            query.drain(i..(i + n).min(len));
        }
        Mutation::Truncate(at) => query.truncate(pos(at)),
        Mutation::Duplicate(which) => {
            let text = String::from_utf8_lossy(&query).into_owned();
            let params: Vec<&str> = text.split('&').collect();
            let extra = params[which % params.len()];
            query = format!("{text}&{extra}").into_bytes();
        }
        Mutation::Swap(a, b) => {
            let text = String::from_utf8_lossy(&query).into_owned();
            let mut params: Vec<&str> = text.split('&').collect();
            let n = params.len();
            params.swap(a % n, b % n);
            query = params.join("&").into_bytes();
        }
        _ => {}
    }
    // Keep the request line valid: bytes a URI may not hold are percent-encoded (a stray
    // `%` stays, so broken escapes still reach the server).
    let mut encoded = String::with_capacity(query.len());
    for b in query {
        if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@/?%".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{path}?{encoded}")
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// Whether `answer` to `request` was 2xx (`true`) or a 4xx with a known error code
/// (`false`); anything else fails the run, naming the request and the seed.
fn answered_or_refused(answer: Result<Vec<u8>, ClientError>, request: &str, seed: u64) -> bool {
    match answer {
        Ok(_) => true,
        Err(ClientError::Refused { status, code, .. }) => {
            assert!(
                (400..500).contains(&status) && ErrorCode::from_name(&code).is_some(),
                "{request} (CAMTRAIL_FUZZ_SEED={seed}): {status} {code}"
            );
            false
        }
        Err(other) => panic!("{request} (CAMTRAIL_FUZZ_SEED={seed}): {other:?}"),
    }
}

/// How long and from which seed a fuzz run goes (`CAMTRAIL_FUZZ_SECS`, `_CASES`, `_SEED`).
struct Budget {
    time: Duration,
    max_cases: u64,
    seed: u64,
    runner: TestRunner,
}

fn budget() -> Budget {
    let seed = env_number(
        "CAMTRAIL_FUZZ_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(7, |d| d.as_nanos() as u64),
    );
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed.to_le_bytes());
    Budget {
        time: Duration::from_secs(env_number("CAMTRAIL_FUZZ_SECS", 10)),
        max_cases: env_number("CAMTRAIL_FUZZ_CASES", u64::MAX),
        seed,
        runner: TestRunner::new_with_rng(
            Config::default(),
            TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_http_query_strings() {
    let node = small_node(vec![
        event(1, ObjectClass::Vehicle, CAMERA_A, T0 + 1_000, true),
        event(2, ObjectClass::Person, CAMERA_B, T0 + 2_000, false),
    ])
    .await;
    let corpus = corpus();
    assert!(corpus.len() >= 8, "the committed corpus");
    let Budget {
        time: budget,
        max_cases,
        seed,
        mut runner,
    } = budget();
    let strategy = (any::<usize>(), prop::collection::vec(mutation(), 0..5));
    let started = Instant::now();
    let (mut cases, mut answered, mut refused) = (0u64, 0u64, 0u64);
    let mut requests: Vec<String> = corpus.clone();
    while started.elapsed() < budget && cases < max_cases {
        if requests.is_empty() {
            let (which, mutations) = strategy.new_tree(&mut runner).expect("value").current();
            let mut request = corpus[which % corpus.len()].clone();
            for m in &mutations {
                request = apply(&request, m);
            }
            requests.push(request);
        }
        let Some(request) = requests.pop() else { break };
        let token = if request.starts_with("/v1/audit") {
            &node.supervisor
        } else {
            &node.investigator
        };
        if answered_or_refused(get(&node.http, &request, token).await, &request, seed) {
            answered += 1;
        } else {
            refused += 1;
        }
        cases += 1;
    }
    eprintln!(
        "fuzz: {cases} query strings in {:.1} s ({answered} answered, {refused} refused; \
         CAMTRAIL_FUZZ_SEED={seed})",
        started.elapsed().as_secs_f64()
    );
    assert!(cases >= corpus.len() as u64 || max_cases < corpus.len() as u64);
}

const JSON_DICTIONARY: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "\\",
    "null",
    "true",
    "false",
    "0",
    "-0",
    "1e309",
    "-1e309",
    "NaN",
    "9223372036854775807",
    "-9223372036854775808",
    "18446744073709551616",
    "0.0000001",
    "\"kind\":\"polygon\"",
    "\"kind\":\"circle\"",
    "\"kind\":\"cameras\"",
    "\"ring\":[]",
    "\"ring\":[[0,0],[0,0],[0,0]]",
    "\"ids\":[]",
    "\"radius_m\":0",
    "\"radius_m\":-1",
    "\"scenes\":[]",
    "\"min_scenes\":0",
    "\"min_scenes\":99",
    "\"limit\":0",
    "\"limit\":1000000",
    "\"after\":\"x\"",
    "\"target\":\"*\"",
    "\"target\":\"\\u202e\"",
    "\"other\":\"粤B00001\"",
    "\"delta_s\":0",
    "\"min_span_minutes\":-5",
    "\"from\":\"2025-11-26T12:00:00Z\"",
    "\"case\":\"\"",
    "\\u0000",
    "粤",
    "\\u00e9",
];

/// One byte-level mutation of a body: change a byte, splice a dictionary token, cut.
fn mutate_body(body: &mut Vec<u8>, choice: usize, at: usize, word: usize) {
    let len = body.len();
    match choice % 4 {
        0 if len > 0 => body[at % len] = (word % 95 + 32) as u8,
        1 => {
            let i = if len == 0 { 0 } else { at % (len + 1) };
            body.splice(i..i, JSON_DICTIONARY[word % JSON_DICTIONARY.len()].bytes());
        }
        2 if len > 0 => {
            let i = at % len;
            body.drain(i..(i + word % 24 + 1).min(len));
        }
        _ => body.truncate(if len == 0 { 0 } else { at % (len + 1) }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fuzz_http_analytics_bodies() {
    let node = crate::query_node::small_node_with(
        &crate::analytics_node::registry(),
        crate::analytics_node::detections(T0),
    )
    .await;
    let corpus: Vec<(String, Vec<u8>)> = read_corpus("analytics_body")
        .into_iter()
        .map(|text| {
            let (path, body) = text.split_once('\n').expect("path, then body");
            (path.to_string(), body.as_bytes().to_vec())
        })
        .collect();
    assert!(corpus.len() >= 8, "the committed corpus");
    let Budget {
        time: budget,
        max_cases,
        seed,
        mut runner,
    } = budget();
    let strategy = (
        any::<usize>(),
        prop::collection::vec((any::<usize>(), any::<usize>(), any::<usize>()), 0..5),
    );
    let started = Instant::now();
    let (mut cases, mut answered, mut refused) = (0u64, 0u64, 0u64);
    let mut requests = corpus.clone();
    while started.elapsed() < budget && cases < max_cases {
        if requests.is_empty() {
            let (which, mutations) = strategy.new_tree(&mut runner).expect("value").current();
            let (path, mut body) = corpus[which % corpus.len()].clone();
            for (choice, at, word) in mutations {
                mutate_body(&mut body, choice, at, word);
            }
            requests.push((path, body));
        }
        let Some((path, body)) = requests.pop() else {
            break;
        };
        let shown = String::from_utf8_lossy(&body).into_owned();
        let answer = post_bytes(&node.http, &path, &node.supervisor, body).await;
        if answered_or_refused(answer, &format!("{path} {shown}"), seed) {
            answered += 1;
        } else {
            refused += 1;
        }
        cases += 1;
    }
    eprintln!(
        "fuzz: {cases} analytics bodies in {:.1} s ({answered} answered, {refused} refused; \
         CAMTRAIL_FUZZ_SEED={seed})",
        started.elapsed().as_secs_f64()
    );
    assert!(answered >= 4, "the corpus holds answerable requests");
}
