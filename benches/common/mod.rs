//! Records for the benchmarks, shaped like the synthetic city's traffic: 140,000 cameras with
//! 20-digit ids, 300 gateways, about 3 million plates drawn with a skew (some cars pass
//! often), ~140,000 events per second of camera time, no snapshots. Deterministic in `n`.

use std::sync::Arc;
use std::time::Instant;

use camtrail_kafka::{KafkaPublisher, ProducerConfig};
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};

/// Records per published batch, and batches in flight at once.
const BATCH: u64 = 1_000;
const CONCURRENT_BATCHES: usize = 64;

/// Produce records `0..total` to `topic` through the ingest node's own publisher (its
/// producer settings and record encoding), `CONCURRENT_BATCHES` batches in flight; print
/// progress every million when `progress`. Prints `{"events", "seconds",
/// "events_per_second"}` as one JSON line when done.
pub async fn publish_all(
    brokers: &str,
    topic: &str,
    total: u64,
    progress: bool,
) -> anyhow::Result<()> {
    let publisher = Arc::new(KafkaPublisher::new(
        brokers,
        topic,
        &ProducerConfig::default(),
    )?);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let (mut next, mut reported) = (0u64, 0u64);
    while next < total {
        while tasks.len() < CONCURRENT_BATCHES && next < total {
            let size = BATCH.min(total - next);
            let batch: Vec<Detection> = (next..next + size).map(detection).collect();
            next += size;
            let publisher = Arc::clone(&publisher);
            tasks.spawn(async move { publisher.publish(&batch).await });
        }
        if let Some(result) = tasks.join_next().await {
            result??;
        }
        if progress && next - reported >= 1_000_000 {
            reported = next;
            eprintln!("{next} records produced");
        }
    }
    while let Some(result) = tasks.join_next().await {
        result??;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "{{\"events\": {total}, \"seconds\": {seconds:.3}, \"events_per_second\": {:.0}}}",
        total as f64 / seconds
    );
    Ok(())
}

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
            plate_color: 1 + ((h >> 4) % 3) as u8,
            direction: 1 + ((h >> 6) % 8) as u8,
            speed_kmh: 20.0 + ((h >> 14) % 60) as f32,
            brand: String::new(),
        },
        plate_char_confidence: Vec::new(),
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
