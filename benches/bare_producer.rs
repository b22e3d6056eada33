//! Baseline for the ingest benchmark: produce the same records the ingest node would, with
//! the same producer settings, straight from rdkafka — no gRPC, no validation. The ratio of
//! the ingest node's acked events/s to this is what the node's own overhead costs.
//!
//! `cargo run --release --example bare_producer -- BROKERS TOPIC EVENTS`

mod common;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, brokers, topic, events] = args.as_slice() else {
        anyhow::bail!("usage: bare_producer BROKERS TOPIC EVENTS");
    };
    common::publish_all(brokers, topic, events.parse()?, false).await
}
