//! Baseline for the ingest benchmark: produce the same records the ingest node would, with
//! the same producer settings, straight from rdkafka — no gRPC, no validation. The ratio of
//! the ingest node's acked events/s to this is what the node's own overhead costs.
//!
//! `cargo run --release -p camtrail-ingest --example bare_producer -- BROKERS TOPIC EVENTS`

use std::time::Instant;

use camtrail_ingest::kafka::{KafkaPublisher, ProducerConfig};
use camtrail_model::Detection;
use common::detection;

mod common;

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
