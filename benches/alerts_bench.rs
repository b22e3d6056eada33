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

use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_ingest::config::IngestConfig;
use camtrail_model::watchlist::{Entry, EntryState};
use camtrail_proto::v1;
use camtrail_proto::v1::ingest_client::IngestClient;
use camtrail_query::auth::{Role, UsersFile, issue};
use camtrail_query::node::QueryConfig;
use camtrail_serve::embedded::{EmbeddedNode, ServeConfig};
use camtrail_storage::WatchlistStore as _;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

#[path = "common/rng.rs"]
mod rng;
use rng::Rng;

const GATEWAY: &str = "gw-bench";
const CAMERAS: usize = 100;
const BATCH: usize = 1_000;
const STREAMS: usize = 8;

fn camera(i: usize) -> String {
    format!("4403000000131{i:07}")
}

/// A node over a fresh database in `dir` with `entries` approved entries for the plates
/// `listed`; its ingest and query addresses.
async fn start(dir: &std::path::Path, listed: &[String]) -> (EmbeddedNode, IssuedToken, String) {
    let mut csv = String::from("camera_id,district,lat,lon,heading_deg,road,gateway_id\n");
    for i in 0..CAMERAS {
        csv.push_str(&format!(
            "{},Futian,{:.4},114.05,90,Shennan Rd,{GATEWAY}\n",
            camera(i),
            22.5 + i as f64 * 0.001
        ));
    }
    std::fs::write(dir.join("cameras.csv"), csv).expect("registry");
    let gateway = IssuedToken::mint(GATEWAY);
    let (_, hashes) = render_token_files(std::slice::from_ref(&gateway));
    std::fs::write(dir.join("hashes.csv"), hashes).expect("hashes");
    let sam = issue("sam", Role::Supervisor);
    let users = UsersFile {
        user: vec![sam.entry.clone()],
    };
    std::fs::write(
        dir.join("users.toml"),
        toml::to_string(&users).expect("toml"),
    )
    .expect("users");
    let database = dir.join("camtrail.db");
    let store = camtrail_sqlite::SqliteStore::open(&database).expect("open");
    camtrail_storage::testsuite::open_case(&store, "BENCH", &["ivy"]).await;
    let now = camtrail_common::now_ms();
    for (i, plate) in listed.iter().enumerate() {
        store
            .put_entry(&Entry {
                entry_id: format!("W{i}"),
                title: "bench".into(),
                plate: plate.clone(),
                fuzzy: i % 100 == 0,
                case_id: "BENCH".into(),
                reason: "bench".into(),
                applicant: "ivy".into(),
                priority: 2,
                valid_from_ms: now - 3_600_000,
                valid_until_ms: now + 86_400_000,
                cameras: Vec::new(),
                districts: Vec::new(),
                recipients: Vec::new(),
                webhook_url: None,
                state: EntryState::Approved,
                approved_by: Some("sam".into()),
                revoked: None,
                updated_at_ms: now,
                version: 2,
            })
            .await
            .expect("entry");
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
    (node, gateway, sam.token)
}

/// One batch of `BATCH` reads; every thousandth one (counted over the run by `seq`) reads
/// a listed plate. Returns the batch and the planted event ids (hex).
fn batch(rng: &mut Rng, seq: &mut u64, listed: &[String]) -> (v1::EventBatch, Vec<String>) {
    let now = camtrail_common::now_ms();
    let mut planted = Vec::new();
    let events = (0..BATCH)
        .map(|_| {
            *seq += 1;
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&seq.to_be_bytes());
            id[8..].copy_from_slice(&rng.next().to_be_bytes());
            let plate = if seq.is_multiple_of(1_000) {
                planted.push(hex::encode(id));
                listed[(rng.next() % listed.len() as u64) as usize].clone()
            } else {
                rng.plate("粤F")
            };
            v1::DetectionEvent {
                event_id: id.to_vec(),
                camera_id: camera((rng.next() % CAMERAS as u64) as usize),
                captured_at_ms: now - 500,
                object_class: v1::ObjectClass::Vehicle as i32,
                plate,
                plate_confidence: 0.9,
                ..v1::DetectionEvent::default()
            }
        })
        .collect();
    (
        v1::EventBatch {
            gateway_id: GATEWAY.into(),
            batch_seq: *seq,
            events,
        },
        planted,
    )
}

/// Publish for `seconds` on `STREAMS` streams, each paced to `rate / STREAMS` events/s
/// (open throttle when `rate` is 0). Returns events acked and, per planted event id, the
/// instant its batch was acked.
async fn publish(
    addr: std::net::SocketAddr,
    token: &str,
    rate: f64,
    seconds: f64,
    listed: Arc<Vec<String>>,
) -> (u64, HashMap<String, Instant>) {
    let acked = Arc::new(Mutex::new((0u64, HashMap::new())));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for stream in 0..STREAMS {
        let (acked, listed, token) = (Arc::clone(&acked), Arc::clone(&listed), token.to_string());
        tasks.push(tokio::spawn(async move {
            let mut client = IngestClient::connect(format!("http://{addr}"))
                .await
                .expect("connect");
            let mut rng = Rng(0x9E37_79B9_7F4A_7C15 ^ (stream as u64 + 1) << 32);
            let mut seq = (stream as u64) << 40;
            let per_batch = if rate > 0.0 {
                Duration::from_secs_f64(BATCH as f64 * STREAMS as f64 / rate)
            } else {
                Duration::ZERO
            };
            let mut next = Instant::now();
            while started.elapsed().as_secs_f64() < seconds {
                let (batch, planted) = batch(&mut rng, &mut seq, &listed);
                let mut request = tonic::Request::new(batch);
                let value = format!("Bearer {token}").parse().expect("header");
                request.metadata_mut().insert("authorization", value);
                let ack = client.publish_batch(request).await.expect("publish");
                let at = Instant::now();
                let ack = ack.into_inner();
                {
                    let mut guard = acked.lock().expect("lock");
                    guard.0 += (BATCH - ack.rejections.len()) as u64;
                    for id in planted {
                        guard.1.insert(id, at);
                    }
                }
                next += per_batch;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    tokio::time::sleep(wait).await;
                }
            }
        }));
    }
    for task in tasks {
        task.await.expect("stream");
    }
    let guard = acked.lock().expect("lock");
    (guard.0, guard.1.clone())
}

/// Read the alert stream, noting when each hit's event id arrived.
async fn listen(
    addr: std::net::SocketAddr,
    token: String,
    arrived: Arc<Mutex<HashMap<String, Instant>>>,
) {
    let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let request = format!(
        "GET /v1/alerts/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.expect("send");
    let mut lines = BufReader::new(socket).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let at = Instant::now();
        if let Ok(alert) = serde_json::from_str::<serde_json::Value>(data)
            && let Some(id) = alert["event_id"].as_str()
        {
            arrived
                .lock()
                .expect("lock")
                .entry(id.to_string())
                .or_insert(at);
        }
    }
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
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
        &gateway.token,
        rate,
        seconds,
        Arc::clone(&listed),
    )
    .await;
    let achieved = events as f64 / timed.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let arrived = arrived.lock().expect("lock").clone();
    let mut latencies: Vec<f64> = planted
        .iter()
        .filter_map(|(id, acked)| {
            // Signed: the hit is sent before the ack leaves the node, so it often arrives
            // before the publisher has the ack (negative).
            arrived.get(id).map(|at| {
                if *at >= *acked {
                    at.duration_since(*acked).as_secs_f64() * 1e3
                } else {
                    -(acked.duration_since(*at).as_secs_f64() * 1e3)
                }
            })
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
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
        let (events, _) = publish(addrs.ingest_grpc, &gateway.token, 0.0, 10.0, plates).await;
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
