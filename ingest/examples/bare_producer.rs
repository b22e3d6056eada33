//! Baseline for the ingest benchmark: produce the same records the ingest node would, with
//! the same producer settings, straight from rdkafka — no gRPC, no validation. The ratio of
//! the ingest node's acked events/s to this is what the node's own overhead costs.
//!
//! `cargo run --release -p camtrail-ingest --example bare_producer -- BROKERS TOPIC EVENTS`

use std::time::Instant;

use camtrail_ingest::kafka::{KafkaPublisher, ProducerConfig};
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};

const BATCH: usize = 1_000;
const CONCURRENT_BATCHES: usize = 64;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, events] = args.as_slice() else {
        anyhow::bail!("usage: bare_producer BROKERS TOPIC EVENTS");
    };
    let total: usize = events.parse()?;
    let publisher = std::sync::Arc::new(KafkaPublisher::new(
        brokers,
        topic,
        &ProducerConfig::default(),
    )?);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    let mut produced = 0usize;
    let mut next = 0u64;
    while produced < total {
        while tasks.len() < CONCURRENT_BATCHES && produced < total {
            let size = BATCH.min(total - produced);
            let batch: Vec<Detection> = (0..size).map(|i| detection(next + i as u64)).collect();
            next += size as u64;
            produced += size;
            let publisher = std::sync::Arc::clone(&publisher);
            tasks.spawn(async move { publisher.publish(&batch).await });
        }
        if let Some(result) = tasks.join_next().await {
            result??;
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

/// A record shaped like the synthetic city's: 20-digit camera id, Chinese plate, no snapshot.
fn detection(n: u64) -> Detection {
    let mut id = [0x5Au8; 16];
    id[..8].copy_from_slice(&n.to_be_bytes());
    Detection {
        event_id: EventId(id),
        camera_id: format!("4403{:016}", n % 140_000),
        captured_at_ms: 1_764_000_000_000 + n as i64,
        object_class: ObjectClass::Vehicle,
        plate: format!("粤S·{:05}", n % 100_000),
        plate_confidence: 0.9,
        subject_key: format!("粤S{:05}", n % 100_000),
        attributes: VehicleAttributes { color: 1, kind: 1 },
        bbox: [100, 200, 300, 180],
        thumbnail_jpeg: None,
        gateway_id: format!("gw-{:03}", n % 300),
        received_at_ms: 1_764_000_000_000 + n as i64,
    }
}
