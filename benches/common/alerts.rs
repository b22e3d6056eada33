//! What the watchlist alert benches share (`alerts_bench`, embedded; `alerts_distributed_bench`):
//! the cameras, the approved entries, gateway streams publishing paced batches over gRPC with
//! one read in a thousand of a listed plate, a Server-Sent Events listener, and the signed
//! ack → hit latencies. Included by path, with `rng.rs`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_model::watchlist::{Entry, EntryState};
use camtrail_proto::v1;
use camtrail_proto::v1::ingest_client::IngestClient;
use camtrail_query::auth::{Role, UsersFile, issue};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::rng::Rng;

pub const GATEWAY: &str = "gw-bench";
pub const CAMERAS: usize = 100;
pub const BATCH: usize = 1_000;
pub const STREAMS: usize = 8;

pub fn camera(i: usize) -> String {
    format!("4403000000131{i:07}")
}

/// The registry of the bench's cameras, all of `GATEWAY`.
pub fn registry_csv() -> String {
    let mut csv = String::from("camera_id,district,lat,lon,heading_deg,road,gateway_id\n");
    for i in 0..CAMERAS {
        csv.push_str(&format!(
            "{},Futian,{:.4},114.05,90,Shennan Rd,{GATEWAY}\n",
            camera(i),
            22.5 + i as f64 * 0.001
        ));
    }
    csv
}

/// The files a node needs in `dir`: the registry (`cameras.csv`), a gateway token's hash
/// (`hashes.csv`) and a supervisor, sam (`users.toml`). Returns the gateway's token and sam's.
pub fn write_node_files(dir: &std::path::Path) -> (String, String) {
    std::fs::write(dir.join("cameras.csv"), registry_csv()).expect("registry");
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
    (gateway.token, sam.token)
}

/// Entry `i`, approved, for `plate` under case BENCH (every hundredth one fuzzy).
pub fn entry(i: usize, plate: &str, now: i64) -> Entry {
    Entry {
        entry_id: format!("W{i}"),
        title: "bench".into(),
        plate: plate.to_string(),
        fuzzy: i.is_multiple_of(100),
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
    }
}

/// One batch of `BATCH` reads; every thousandth one (counted over the run by `seq`) reads
/// a listed plate. Returns the batch and the planted event ids (hex).
pub fn batch(rng: &mut Rng, seq: &mut u64, listed: &[String]) -> (v1::EventBatch, Vec<String>) {
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
pub async fn publish(
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
pub async fn listen(
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

pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Per planted read whose hit arrived: arrival minus its batch's ack, ms, sorted. Signed:
/// the embedded node sends the hit before the ack leaves, so it often arrives first.
pub fn latencies(
    planted: &HashMap<String, Instant>,
    arrived: &HashMap<String, Instant>,
) -> Vec<f64> {
    let mut latencies: Vec<f64> = planted
        .iter()
        .filter_map(|(id, acked)| {
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
    latencies
}
