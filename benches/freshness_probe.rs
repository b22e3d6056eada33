//! Freshness (issue 19, part 5): how long after its ingest ack an event is in a query answer.
//! The client side of `benches/freshness.sh`, which runs the node(s) and a steady load.
//!
//! Every INTERVAL_MS the probe publishes one marked event (a plate of its own, `粤Z` and a
//! counter, at CAMERA of GATEWAY) on its own gRPC stream, takes the time of the ack, then
//! asks the query node for that plate's track (`GET /v1/track`, under CASE, audited like any
//! search) every 20 ms until the event is in the answer. Prints `key value` lines:
//! probes, seen, p50, p99, max (ms from ack to the first answer holding the event), polls.
//!
//! `freshness_probe INGEST_GRPC QUERY_HTTP GATEWAY GATEWAY_TOKEN CAMERA USER_TOKEN CASE
//!  PROBES INTERVAL_MS`

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use camtrail_proto::v1;
use camtrail_proto::v1::ingest_client::IngestClient;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Longest wait for one event before it counts as not seen.
const GIVE_UP: Duration = Duration::from_secs(60);

struct Probe {
    query: std::net::SocketAddr,
    user_token: String,
    case: String,
}

impl Probe {
    /// Whether the track of `plate` over the last hour holds `event_id` (hex).
    async fn answer_holds(&self, plate: &str, event_id: &str) -> bool {
        let now = camtrail_common::now_ms();
        let path = format!(
            "/v1/track?plate={}&from={}&to={}&case={}&reason=freshness%20probe",
            camtrail_query::client::encode(plate),
            now - 3_600_000,
            now + 60_000,
            self.case
        );
        let Ok(mut socket) = tokio::net::TcpStream::connect(self.query).await else {
            return false;
        };
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nConnection: close\r\n\r\n",
            self.query, self.user_token
        );
        if socket.write_all(request.as_bytes()).await.is_err() {
            return false;
        }
        let mut response = String::new();
        if socket.read_to_string(&mut response).await.is_err() {
            return false;
        }
        assert!(
            response.starts_with("HTTP/1.1 200"),
            "the probe's track query failed: {}",
            response.lines().next().unwrap_or_default()
        );
        response.contains(event_id)
    }
}

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let usage = "freshness_probe INGEST_GRPC QUERY_HTTP GATEWAY GATEWAY_TOKEN CAMERA USER_TOKEN \
                 CASE PROBES INTERVAL_MS";
    let arg = |i: usize| args.get(i).map(String::as_str).expect(usage);
    let ingest: std::net::SocketAddr = arg(1).parse().expect("INGEST_GRPC");
    let probe = Arc::new(Probe {
        query: arg(2).parse().expect("QUERY_HTTP"),
        user_token: arg(6).to_string(),
        case: arg(7).to_string(),
    });
    let (gateway, token, camera) = (arg(3).to_string(), arg(4).to_string(), arg(5).to_string());
    let probes: u32 = arg(8).parse().expect("PROBES");
    let interval = Duration::from_millis(arg(9).parse().expect("INTERVAL_MS"));

    let mut client = IngestClient::connect(format!("http://{ingest}"))
        .await
        .expect("connect to ingest");
    let seen = Arc::new(Mutex::new(Vec::<f64>::new()));
    let polls = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut waiting = Vec::new();
    let run = std::process::id();
    let mut next = Instant::now();
    for i in 0..probes {
        let plate = format!("粤Z{:05}", (run + i) % 100_000);
        let mut id = [0xF5u8; 16];
        id[..4].copy_from_slice(&run.to_be_bytes());
        id[4..8].copy_from_slice(&i.to_be_bytes());
        let event = v1::DetectionEvent {
            event_id: id.to_vec(),
            camera_id: camera.clone(),
            captured_at_ms: camtrail_common::now_ms(),
            object_class: v1::ObjectClass::Vehicle as i32,
            plate: plate.clone(),
            plate_confidence: 0.95,
            ..v1::DetectionEvent::default()
        };
        // An overloaded node answers RESOURCE_EXHAUSTED with a hint: wait and send again,
        // as a gateway does (the time counts from the ack that finally comes).
        let mut attempts = 0;
        let ack = loop {
            let mut request = tonic::Request::new(v1::EventBatch {
                gateway_id: gateway.clone(),
                batch_seq: u64::from(i) + 1,
                events: vec![event.clone()],
            });
            let bearer = format!("Bearer {token}").parse().expect("token header");
            request.metadata_mut().insert("authorization", bearer);
            match client.publish_batch(request).await {
                Ok(ack) => break ack,
                Err(status)
                    if status.code() == tonic::Code::ResourceExhausted && attempts < 100 =>
                {
                    attempts += 1;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(status) => panic!("publish: {status}"),
            }
        };
        let acked = Instant::now();
        assert!(
            ack.into_inner().rejections.is_empty(),
            "the probe's event was rejected"
        );
        let (probe, seen, polls) = (Arc::clone(&probe), Arc::clone(&seen), Arc::clone(&polls));
        let event_id = hex::encode(id);
        waiting.push(tokio::spawn(async move {
            while acked.elapsed() < GIVE_UP {
                polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if probe.answer_holds(&plate, &event_id).await {
                    let ms = acked.elapsed().as_secs_f64() * 1e3;
                    seen.lock().expect("lock").push(ms);
                    return;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }));
        next += interval;
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            tokio::time::sleep(wait).await;
        }
    }
    for task in waiting {
        task.await.expect("probe");
    }
    let mut seen = seen.lock().expect("lock").clone();
    seen.sort_by(f64::total_cmp);
    let at = |p: f64| {
        if seen.is_empty() {
            f64::NAN
        } else {
            seen[((seen.len() as f64 * p).ceil() as usize).clamp(1, seen.len()) - 1]
        }
    };
    println!("probes {probes}");
    println!("seen {}", seen.len());
    println!("p50 {:.0}", at(0.50));
    println!("p99 {:.0}", at(0.99));
    println!("max {:.0}", seen.last().copied().unwrap_or(f64::NAN));
    println!("polls {}", polls.load(std::sync::atomic::Ordering::Relaxed));
}
