//! Records for the benchmarks, shaped like the synthetic city's traffic: 140,000 cameras with
//! 20-digit ids, 300 gateways, about 3 million plates drawn with a skew (some cars pass
//! often), ~140,000 events per second of camera time, no snapshots. Deterministic in `n`.

use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};

/// Plates in the population.
pub const PLATES: u64 = 3_000_000;
/// City-wide events per second of camera time.
pub const EVENTS_PER_SECOND: u64 = 140_000;

/// SplitMix64: a cheap, well-mixed hash of `n`.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// The `n`-th benchmark detection.
pub fn detection(n: u64) -> Detection {
    let h = mix(n);
    let mut id = [0x5Au8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    id[8..].copy_from_slice(&h.to_le_bytes());
    // Squaring a uniform draw skews towards low plate numbers: frequent cars.
    let u = (h >> 11) as f64 / (1u64 << 53) as f64;
    let plate_no = ((u * u) * PLATES as f64) as u64;
    let letters = b"ABCDEFGHJKLMNPQRSTUVWXYZ";
    let city = letters[(plate_no % 24) as usize] as char;
    let serial = plate_no / 24;
    let subject_key = format!("粤{city}{serial:05}");
    let captured_at_ms = 1_764_000_000_000 + (n * 1_000 / EVENTS_PER_SECOND) as i64;
    let camera = mix(h) % 140_000;
    Detection {
        event_id: EventId(id),
        camera_id: format!("4403{camera:016}"),
        captured_at_ms,
        object_class: ObjectClass::Vehicle,
        plate: format!("粤{city}·{serial:05}"),
        plate_confidence: 0.80 + (h % 20) as f32 / 100.0,
        subject_key,
        attributes: VehicleAttributes {
            color: (h % 10) as u8,
            kind: ((h >> 8) % 6) as u8,
        },
        bbox: [
            (h % 1600) as u32,
            ((h >> 12) % 900) as u32,
            120 + ((h >> 20) % 200) as u32,
            60 + ((h >> 28) % 120) as u32,
        ],
        thumbnail_jpeg: None,
        gateway_id: format!("gw-{:03}", camera % 300),
        received_at_ms: captured_at_ms + 150 + (h % 400) as i64,
    }
}
