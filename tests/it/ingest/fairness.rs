//! One gateway that stops reading its acks must not stall the others (issue 13, fault 1),
//! in front of both publishers (Kafka for `camtrail ingest`, SQLite for `camtrail serve`:
//! the stream code is the same).
//!
//! Gateway A opens many `Publish` streams over a connection whose HTTP/2 stream window is a
//! few acks wide, sends more batches than that, and never reads. Asserted: A's streams end
//! up holding none of the node's permits while they stay open; gateway B is served in full
//! meanwhile (every ack of its stream, every `PublishBatch`); A's streams are then
//! cancelled by the ack timeout, counted in a metric, and a stream that finally reads gets
//! the `acks_unread` status. On the code before the fix B got no ack at all. B's throughput
//! and ack p99 before and while A does this are printed; `benches/ingest_fairness.sh`
//! runs this in release on a quiet machine with `CAMTRAIL_FAIRNESS_STRICT=1`, which also
//! asserts the bound (within 2×).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use camtrail_proto::v1;
use camtrail_proto::v1::ingest_client::IngestClient;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Endpoint;

use super::support::{self, Backend, TestNode, event};

/// 32 streams × 8 batches each = 256: twice the node's 128 permits, had they been pinned.
const HOSTILE_STREAMS: usize = 32;
const HOSTILE_BATCHES: u64 = 40;
/// Gateway B's batches per measurement (`CAMTRAIL_FAIRNESS_B_BATCHES`; the benchmark
/// `benches/ingest_fairness.sh` uses more).
fn b_batches() -> u64 {
    std::env::var("CAMTRAIL_FAIRNESS_B_BATCHES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(240)
}
const EVENTS_PER_BATCH: u32 = 10;
const ACK_TIMEOUT_MS: u64 = 15_000;

struct Run {
    events_per_s: f64,
    p99: Duration,
}

/// Gateway B publishes `B_BATCHES` batches on one stream, at most 8 unacked, and measures.
async fn measure_gateway_b(node: &TestNode, first_seq: u64) -> Run {
    let mut client = node.client().await;
    let (tx, rx) = mpsc::channel::<v1::EventBatch>(16);
    let mut acks = client
        .publish(node.authed_as(support::GATEWAY_B, ReceiverStream::new(rx)))
        .await
        .expect("gateway B opens a stream")
        .into_inner();
    let batch = |seq: u64| v1::EventBatch {
        gateway_id: support::GATEWAY_B.into(),
        batch_seq: seq,
        events: (0..EVENTS_PER_BATCH)
            .map(|i| event((seq as u32) * 100 + i + 1_000_000, support::CAMERA_B))
            .collect(),
    };
    let started = Instant::now();
    let mut sent_at = HashMap::new();
    let mut next = first_seq;
    let total = b_batches();
    let end = first_seq + total;
    while next < end && next < first_seq + 8 {
        sent_at.insert(next, Instant::now());
        tx.send(batch(next)).await.expect("send");
        next += 1;
    }
    let mut latencies = Vec::new();
    let deadline = Duration::from_secs(60);
    while latencies.len() < total as usize {
        let ack = match tokio::time::timeout(deadline, acks.message()).await {
            Ok(Ok(Some(ack))) => ack,
            Ok(other) => panic!("gateway B's stream ended early: {other:?}"),
            Err(_) => panic!(
                "gateway B got {} of {total} acks in {deadline:?}: another gateway stalled it",
                latencies.len()
            ),
        };
        assert_eq!(ack.accepted, EVENTS_PER_BATCH);
        let sent = sent_at
            .remove(&ack.batch_seq)
            .expect("an ack per sent batch");
        latencies.push(sent.elapsed());
        if next < end {
            sent_at.insert(next, Instant::now());
            tx.send(batch(next)).await.expect("send");
            next += 1;
        }
    }
    let elapsed = started.elapsed();
    drop(tx);
    latencies.sort_unstable();
    let p99 = latencies[(latencies.len() * 99).div_ceil(100) - 1];
    Run {
        events_per_s: (total as f64 * f64::from(EVENTS_PER_BATCH)) / elapsed.as_secs_f64(),
        p99,
    }
}

/// Gateway A's streams: each sends `HOSTILE_BATCHES` batches and never reads an ack, over
/// a connection whose stream window holds only a few acks.
async fn open_non_reading_streams(node: &TestNode) -> Vec<tonic::Streaming<v1::BatchAck>> {
    let channel = Endpoint::from_shared(node.grpc_url().to_string())
        .expect("endpoint")
        .initial_stream_window_size(Some(64))
        .connect()
        .await
        .expect("connect");
    let mut client = IngestClient::new(channel);
    let mut unread = Vec::new();
    for stream in 0..HOSTILE_STREAMS {
        let batches: Vec<v1::EventBatch> = (0..HOSTILE_BATCHES)
            .map(|seq| v1::EventBatch {
                gateway_id: support::GATEWAY_A.into(),
                batch_seq: seq,
                events: (0..EVENTS_PER_BATCH)
                    .map(|i| {
                        event(
                            (stream as u32) * 10_000 + (seq as u32) * 100 + i,
                            support::CAMERA_A,
                        )
                    })
                    .collect(),
            })
            .collect();
        let response = client
            .publish(node.authed_as(support::GATEWAY_A, tokio_stream::iter(batches)))
            .await
            .expect("gateway A opens a stream");
        unread.push(response.into_inner());
    }
    unread
}

async fn gateway_that_never_reads_acks_stalls_only_itself(backend: Backend) {
    let node = TestNode::start_on("fairness", backend, |config| {
        config.ack_timeout_ms = ACK_TIMEOUT_MS;
    })
    .await;
    // Warm up (connections, topic metadata, the writer), then the unloaded figure.
    measure_gateway_b(&node, 0).await;
    let unloaded = measure_gateway_b(&node, 1_000_000).await;

    let hostile_opened = Instant::now();
    let mut unread = open_non_reading_streams(&node).await;
    // A's streams read, publish and stall on their unread acks, holding no permit: every
    // one of the node's 128 is free again while they stay open (before the fix they held
    // them all).
    let permits_free = "camtrail_ingest_node_permits_free";
    let stalled_by = Instant::now() + Duration::from_secs(10);
    tokio::time::sleep(Duration::from_millis(500)).await;
    while node.metric(permits_free).await < 128.0 {
        assert!(
            Instant::now() < stalled_by,
            "gateway A's unread streams still hold permits: {} of 128 free",
            node.metric(permits_free).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let loaded = measure_gateway_b(&node, 2_000_000).await;
    // One-shot publishes from B are not refused either.
    let mut client = node.client().await;
    for seq in 0..20u64 {
        let answer = client
            .publish_batch(node.authed_as(
                support::GATEWAY_B,
                v1::EventBatch {
                    gateway_id: support::GATEWAY_B.into(),
                    batch_seq: seq,
                    events: vec![event(3_000_000 + seq as u32, support::CAMERA_B)],
                },
            ))
            .await;
        assert!(answer.is_ok(), "PublishBatch while A stalls: {answer:?}");
    }
    let measured_under_load = hostile_opened.elapsed() < Duration::from_millis(ACK_TIMEOUT_MS);
    let cancelled_sample = "camtrail_ingest_streams_cancelled_total{reason=\"ack_timeout\"}";
    // One line for benches/ingest_fairness.sh.
    eprintln!(
        "fairness backend={backend:?} hostile_streams={HOSTILE_STREAMS} \
         unloaded_eps={:.0} unloaded_p99_ms={:.2} loaded_eps={:.0} loaded_p99_ms={:.2}",
        unloaded.events_per_s,
        unloaded.p99.as_secs_f64() * 1e3,
        loaded.events_per_s,
        loaded.p99.as_secs_f64() * 1e3
    );
    assert!(
        measured_under_load && node.metric(cancelled_sample).await == 0.0,
        "the loaded run must finish while A's streams are still open (took {:?})",
        hostile_opened.elapsed()
    );
    // The figure: within 2× of the unloaded run. Asserted where the machine is
    // quiet (benches/ingest_fairness.sh sets CAMTRAIL_FAIRNESS_STRICT); inside the test
    // command other tests share the 2 cores and make any timing a coin toss. What holds
    // everywhere is asserted above and below: B is served in full while A's streams are
    // open, and A holds no permit.
    if std::env::var_os("CAMTRAIL_FAIRNESS_STRICT").is_some() {
        assert!(
            loaded.events_per_s >= unloaded.events_per_s / 2.0,
            "throughput fell more than 2×: {:.0} → {:.0} events/s",
            unloaded.events_per_s,
            loaded.events_per_s
        );
        assert!(
            loaded.p99 <= unloaded.p99 * 2,
            "ack p99 rose more than 2×: {:?} → {:?}",
            unloaded.p99,
            loaded.p99
        );
    }

    // Every stream of A is cancelled once its oldest ack has waited the timeout.
    let deadline = Instant::now() + Duration::from_millis(ACK_TIMEOUT_MS) + Duration::from_secs(20);
    while node.metric(cancelled_sample).await < HOSTILE_STREAMS as f64 {
        assert!(
            Instant::now() < deadline,
            "A's streams were not all cancelled: {}",
            node.metric(cancelled_sample).await
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(node.metric(cancelled_sample).await, HOSTILE_STREAMS as f64);
    assert_eq!(node.metric("camtrail_ingest_open_streams").await, 0.0);
    // A gateway that finally reads gets the acks that reached it, then a clear status.
    let mut stream = unread.swap_remove(0);
    let status = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.message().await {
                Ok(Some(_ack)) => {}
                Ok(None) => return None,
                Err(status) => return Some(status),
            }
        }
    })
    .await
    .expect("the cancelled stream ends");
    let status = status.expect("a cancelled stream ends with an error status, not OK");
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert!(status.message().starts_with("acks_unread: "), "{status:?}");
    drop((stream, unread));
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_never_reads_acks_stalls_only_itself_kafka() {
    gateway_that_never_reads_acks_stalls_only_itself(Backend::Kafka).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_that_never_reads_acks_stalls_only_itself_sqlite() {
    gateway_that_never_reads_acks_stalls_only_itself(Backend::Sqlite).await;
}
