//! Watchlist alert latency and ingest cost in the embedded mode (issue 18), in one process:
//! `camtrail serve`'s node (EmbeddedNode) over a fresh database holding ENTRIES approved
//! entries (1% fuzzy), gateway streams publishing batches over gRPC at a steady RATE, one
//! read in a thousand of a listed plate, and a Server-Sent Events client on
//! `/v1/alerts/stream`. For each planted read: the time from its batch's ack (taken by the
//! publisher) to the hit arriving on the stream. Then the ingest rate at open throttle with
//! no entries and with ENTRIES entries. `benches/alerts.sh` runs it in release mode and
//! appends the table to BENCHMARKS.md.
//!
//! `alerts_bench [RATE] [SECONDS] [ENTRIES]` (default 100000 20 10000).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camtrail_ingest::config::IngestConfig;
use camtrail_query::node::QueryConfig;
use camtrail_serve::embedded::{EmbeddedNode, ServeConfig};
use camtrail_storage::WatchlistStore as _;

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;
#[path = "common/alerts.rs"]
mod shared;
use shared::*;

/// A node over a fresh database in `dir` with `entries` approved entries for the plates
/// `listed`; its ingest and query addresses.
async fn start(dir: &std::path::Path, listed: &[String]) -> (EmbeddedNode, String, String) {
    let (gateway, sam) = write_node_files(dir);
    let database = dir.join("camtrail.db");
    let store = camtrail_sqlite::SqliteStore::open(&database).expect("open");
    camtrail_storage::testsuite::open_case(&store, "BENCH", &["ivy"]).await;
    let now = camtrail_common::now_ms();
    for (i, plate) in listed.iter().enumerate() {
        store.put_entry(&entry(i, plate, now)).await.expect("entry");
    }
    drop(store);
    let local = || "127.0.0.1:0".parse().expect("addr");
    let ingest = IngestConfig {
        grpc_addr: local(),
        http_addr: local(),
        registry_path: dir.join("cameras.csv"),
        gateway_tokens_path: dir.join("hashes.csv"),
        shutdown_delay_ms: 0,
        ..IngestConfig::default()
    };
    let query = QueryConfig {
        http_addr: local(),
        grpc_addr: local(),
        registry_path: dir.join("cameras.csv"),
        users_path: dir.join("users.toml"),
        shutdown_delay_ms: 0,
        ..QueryConfig::default()
    };
    let serve = ServeConfig {
        database_path: database,
        retention_days: None,
    };
    let node = EmbeddedNode::bind(&serve, ingest, &query)
        .await
        .expect("bind");
    (node, gateway, sam)
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let rate: f64 = args
        .get(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000.0);
    let seconds: f64 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20.0);
    let entries: usize = args.get(3).and_then(|a| a.parse().ok()).unwrap_or(10_000);
    let mut rng = Rng(42);
    let listed: Arc<Vec<String>> = Arc::new((0..entries).map(|_| rng.plate("粤E")).collect());

    // (a) ack → SSE at a steady rate with the entries in force.
    let dir = tempfile::tempdir().expect("tempdir");
    let (node, gateway, token) = start(dir.path(), &listed).await;
    let addrs = node.addrs().expect("addrs");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    let arrived = Arc::new(Mutex::new(HashMap::new()));
    tokio::spawn(listen(
        addrs.query_http,
        token.clone(),
        Arc::clone(&arrived),
    ));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let timed = Instant::now();
    let (events, planted) = publish(
        addrs.ingest_grpc,
        &gateway,
        rate,
        seconds,
        Arc::clone(&listed),
    )
    .await;
    let achieved = events as f64 / timed.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrived = arrived.lock().expect("lock").clone();
    let latencies = latencies(&planted, &arrived);
    let _ = stop.send(());
    let _ = serving.await;

    // (b) ingest at open throttle, without and with the entries.
    let mut open = Vec::new();
    for list in [Arc::new(Vec::new()), Arc::clone(&listed)] {
        let dir = tempfile::tempdir().expect("tempdir");
        let (node, gateway, _) = start(dir.path(), &list).await;
        let addrs = node.addrs().expect("addrs");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(node.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        let plates = if list.is_empty() {
            Arc::clone(&listed)
        } else {
            list
        };
        let timed = Instant::now();
        let (events, _) = publish(addrs.ingest_grpc, &gateway, 0.0, 10.0, plates).await;
        open.push(events as f64 / timed.elapsed().as_secs_f64());
        let _ = stop.send(());
        let _ = serving.await;
    }

    println!("| figure | value |");
    println!("|---|---|");
    println!(
        "| (a) steady ingest, target / achieved (events/s) | {rate:.0} / {achieved:.0} ({events} acked in {seconds:.0} s, {STREAMS} streams, batches of {BATCH}) |"
    );
    println!(
        "| (a) planted reads acked / hits received on the SSE stream | {} / {} |",
        planted.len(),
        latencies.len()
    );
    println!(
        "| (a) ack → hit on the SSE stream, p50 / p99 / max (ms), {entries} entries (1% fuzzy) | {:.1} / {:.1} / {:.1} |",
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        latencies.last().copied().unwrap_or(f64::NAN)
    );
    println!(
        "| (b) ingest at open throttle, no entries / {entries} entries (events/s) | {:.0} / {:.0} ({:+.1}%) |",
        open[0],
        open[1],
        (open[1] / open[0] - 1.0) * 100.0
    );
}
