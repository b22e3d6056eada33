//! Watchlist matching cost (issue 18): nanoseconds per detection checked against 10, 10,000
//! and 100,000 active entries (1% fuzzy, 1% patterns), single thread, release build.
//! `benches/watchlist.sh` runs it and appends the table to BENCHMARKS.md.
//!
//! Plates are synthetic `粤X12345`-shaped keys from a fixed seed; one detection in a
//! thousand reads a listed plate, so the figure is the cost of the common case (no hit)
//! plus the occasional hit.

use std::time::Instant;

use camtrail_model::misread::PLATE_ALPHABET;
use camtrail_model::watchlist::{Entry, EntryState, Matcher, Read};

const NOW: i64 = 1_764_158_400_000;
const DAY_MS: i64 = 86_400_000;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

/// A `粤X12345`-shaped plate: the province, a letter, five of the plate alphabet.
fn city_plate(rng: &mut Rng) -> String {
    let letters: Vec<char> = PLATE_ALPHABET
        .chars()
        .filter(char::is_ascii_uppercase)
        .collect();
    let letter = letters[(rng.next() % letters.len() as u64) as usize];
    rng.plate(&format!("粤{letter}"))
}

/// A read of `key` at the bench's camera, now.
fn read(key: &str) -> Read<'_> {
    Read {
        key,
        camera_id: "cam",
        district: "Futian",
        captured_at_ms: NOW,
    }
}

fn entries(n: usize, rng: &mut Rng) -> Vec<Entry> {
    (0..n)
        .map(|i| {
            let plate = city_plate(rng);
            let (plate, fuzzy) = match i % 100 {
                0 => (plate, true),
                1 => {
                    // A pattern with five literal characters: 粤X1?34*.
                    let chars: Vec<char> = plate.chars().collect();
                    (
                        format!(
                            "{}{}{}?{}{}*",
                            chars[0], chars[1], chars[2], chars[4], chars[5]
                        ),
                        false,
                    )
                }
                _ => (plate, false),
            };
            Entry {
                entry_id: format!("W{i}"),
                title: "bench".into(),
                plate,
                fuzzy,
                case_id: "BENCH".into(),
                reason: "bench".into(),
                applicant: "ivy".into(),
                priority: 2,
                valid_from_ms: NOW - DAY_MS,
                valid_until_ms: NOW + DAY_MS,
                cameras: Vec::new(),
                districts: Vec::new(),
                recipients: Vec::new(),
                webhook_url: None,
                state: EntryState::Approved,
                approved_by: Some("sam".into()),
                revoked: None,
                updated_at_ms: NOW,
                version: 2,
            }
        })
        .collect()
}

fn main() {
    let events: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    println!("| entries | index build (ms) | ns per detection | hits per 1,000 detections |");
    println!("|---:|---:|---:|---:|");
    for n in [10usize, 10_000, 100_000] {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let list = entries(n, &mut rng);
        let listed: Vec<String> = list
            .iter()
            .filter(|e| !e.plate.contains(['?', '*']))
            .map(|e| e.plate.clone())
            .collect();
        let keys: Vec<String> = (0..events)
            .map(|i| {
                if i % 1000 == 0 {
                    listed[i / 1000 % listed.len()].clone()
                } else {
                    city_plate(&mut rng)
                }
            })
            .collect();
        let built = Instant::now();
        let matcher = Matcher::new(list, NOW);
        let build_ms = built.elapsed().as_secs_f64() * 1e3;
        let mut hits = Vec::new();
        let mut found = 0usize;
        // Warm the caches once, then time.
        for key in keys.iter().take(10_000) {
            matcher.matches(&read(key), NOW, &mut hits);
        }
        let timed = Instant::now();
        for key in &keys {
            matcher.matches(&read(key), NOW, &mut hits);
            found += hits.len();
        }
        let ns = timed.elapsed().as_nanos() as f64 / events as f64;
        println!(
            "| {n} | {build_ms:.1} | {ns:.0} | {:.2} |",
            found as f64 * 1000.0 / events as f64
        );
    }
}
