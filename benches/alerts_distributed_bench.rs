//! Watchlist alert latency and ingest cost in the distributed mode (issue 18): the client
//! side of `benches/alerts_distributed.sh`, which runs `camtrail ingest`, `camtrail alert`
//! and `camtrail query` as processes against the local Kafka broker and ClickHouse server.
//!
//! - `prepare DIR ENTRIES CLICKHOUSE_URL DATABASE`: the bench's registry, a gateway token
//!   and its hash, a supervisor (users file and token) in DIR (secrets 0600); case BENCH
//!   opened and ENTRIES approved entries (1% fuzzy) inserted into `watchlist_entries` in
//!   one insert (the query node's API stores one at a time, with an audit record each).
//! - `latency DIR INGEST_GRPC QUERY_HTTP RATE SECONDS`: an SSE client on the query node's
//!   `/v1/alerts/stream`; gateway streams publish at RATE until the first hit arrives
//!   (the role has joined its group and the relay is live), then for SECONDS; for each
//!   planted read (one in a thousand, of a listed plate), its batch's ack → the hit
//!   arriving on the stream. Prints `key value` lines for the script.
//! - `open DIR INGEST_GRPC SECONDS`: ingest at open throttle; prints `open EVENTS_PER_S`.

use std::collections::HashMap;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camtrail_clickhouse::{ClickhouseConfig, ClickhouseStore};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;
#[path = "common/alerts.rs"]
mod shared;
use shared::*;

/// One version of an entry as `watchlist_entries` holds it (version stored as twice the
/// entry's, see `camtrail_clickhouse`'s `stored_version`).
#[derive(clickhouse::Row, serde::Serialize)]
struct EntryRow {
    entry_id: String,
    version: u64,
    updated_at_ms: i64,
    body: String,
}

fn secret(path: &Path, text: &str) {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .expect("create secret");
    file.write_all(text.as_bytes()).expect("write secret");
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name))
        .expect("read")
        .trim()
        .to_string()
}

/// The listed plates: the same ENTRIES plates in every subcommand.
fn listed(entries: usize) -> Arc<Vec<String>> {
    let mut rng = Rng(42);
    Arc::new((0..entries).map(|_| rng.plate("粤E")).collect())
}

async fn prepare(dir: &Path, entries: usize, url: &str, database: &str) {
    std::fs::create_dir_all(dir).expect("dir");
    let (gateway, sam) = write_node_files(dir);
    secret(&dir.join("gateway.token"), &gateway);
    secret(&dir.join("sam.token"), &sam);
    std::fs::write(dir.join("entries"), entries.to_string()).expect("entries");

    let config = ClickhouseConfig {
        url: url.into(),
        database: database.into(),
        ..ClickhouseConfig::default()
    };
    let store = ClickhouseStore::new(&config);
    camtrail_storage::testsuite::open_case(&store, "BENCH", &["ivy"]).await;
    let now = camtrail_common::now_ms();
    let mut insert = config
        .client()
        .insert::<EntryRow>("watchlist_entries")
        .await
        .expect("insert");
    for (i, plate) in listed(entries).iter().enumerate() {
        let entry = entry(i, plate, now);
        let row = EntryRow {
            entry_id: entry.entry_id.clone(),
            version: entry.version * 2,
            updated_at_ms: entry.updated_at_ms,
            body: serde_json::to_string(&entry).expect("json"),
        };
        insert.write(&row).await.expect("write");
    }
    insert.end().await.expect("end");
}

async fn latency(
    dir: &Path,
    ingest: std::net::SocketAddr,
    query: std::net::SocketAddr,
    rate: f64,
    seconds: f64,
) {
    let listed = listed(read(dir, "entries").parse().expect("entries"));
    let gateway = read(dir, "gateway.token");
    let arrived = Arc::new(Mutex::new(HashMap::new()));
    tokio::spawn(listen(query, read(dir, "sam.token"), Arc::clone(&arrived)));

    // Warm up until a hit comes through: the group's first assignment takes seconds.
    let warm = Instant::now();
    while arrived.lock().expect("lock").is_empty() {
        assert!(
            warm.elapsed() < Duration::from_secs(120),
            "no hit reached the stream in 120 s of publishing"
        );
        publish(ingest, &gateway, rate, 1.0, Arc::clone(&listed)).await;
    }
    eprintln!(
        "[alerts-distributed] first hit after {:.1} s of publishing",
        warm.elapsed().as_secs_f64()
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    arrived.lock().expect("lock").clear();

    let timed = Instant::now();
    let (events, planted) = publish(ingest, &gateway, rate, seconds, listed).await;
    let achieved = events as f64 / timed.elapsed().as_secs_f64();
    // Late hits count too (up to 10 s), so a slow one shows in the maximum, not as lost.
    let drained = Instant::now();
    while drained.elapsed() < Duration::from_secs(10)
        && planted
            .keys()
            .any(|id| !arrived.lock().expect("lock").contains_key(id))
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let arrived = arrived.lock().expect("lock").clone();
    let latencies = latencies(&planted, &arrived);
    println!("achieved {achieved:.0}");
    println!("acked {events}");
    println!("planted {}", planted.len());
    println!("received {}", latencies.len());
    println!("p50 {:.1}", percentile(&latencies, 0.50));
    println!("p99 {:.1}", percentile(&latencies, 0.99));
    println!("max {:.1}", latencies.last().copied().unwrap_or(f64::NAN));
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "alerts_distributed_bench prepare DIR ENTRIES CLICKHOUSE_URL DATABASE \
                 | latency DIR INGEST_GRPC QUERY_HTTP RATE SECONDS | open DIR INGEST_GRPC SECONDS";
    let arg = |i: usize| args.get(i).map(String::as_str).expect(usage);
    let dir = Path::new(arg(2));
    match arg(1) {
        "prepare" => prepare(dir, arg(3).parse().expect("ENTRIES"), arg(4), arg(5)).await,
        "latency" => {
            latency(
                dir,
                arg(3).parse().expect("INGEST_GRPC"),
                arg(4).parse().expect("QUERY_HTTP"),
                arg(5).parse().expect("RATE"),
                arg(6).parse().expect("SECONDS"),
            )
            .await
        }
        "open" => {
            let listed = listed(read(dir, "entries").parse().expect("entries"));
            let seconds: f64 = arg(4).parse().expect("SECONDS");
            let timed = Instant::now();
            let (events, _) = publish(
                arg(3).parse().expect("INGEST_GRPC"),
                &read(dir, "gateway.token"),
                0.0,
                seconds,
                listed,
            )
            .await;
            println!("open {:.0}", events as f64 / timed.elapsed().as_secs_f64());
        }
        _ => panic!("{usage}"),
    }
}
