//! The ingest crate's integration tests, against the real Kafka broker (started by
//! `deploy/local/services.sh up`). Each test uses its own topic names.

mod fairness;
mod limits;
pub mod support;
mod tls;

use std::collections::HashMap;
use std::time::Duration;

use camtrail_kafka::{TopicOutcome, ensure_topics};
use camtrail_proto::v1::{self, RejectionCode};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use support::{TestNode, event};
use tonic::Code;

#[tokio::test]
async fn topics_are_created_once_with_the_configured_partitions() {
    let config = support::kafka_config("topics");
    let first = ensure_topics(&config, Duration::from_secs(30))
        .await
        .expect("create");
    assert!(
        first.iter().all(|o| matches!(o, TopicOutcome::Created(_))),
        "{first:?}"
    );
    let second = ensure_topics(&config, Duration::from_secs(30))
        .await
        .expect("again");
    assert!(
        second.iter().all(|o| matches!(o, TopicOutcome::Existed(_))),
        "{second:?}"
    );

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .expect("client");
    for spec in config.topic_specs() {
        let metadata = consumer
            .fetch_metadata(Some(&spec.name), Duration::from_secs(10))
            .expect("metadata");
        let topic = &metadata.topics()[0];
        assert_eq!(topic.name(), spec.name);
        assert!(topic.error().is_none(), "{:?}", topic.error());
        assert_eq!(
            topic.partitions().len() as i32,
            spec.partitions,
            "{}",
            spec.name
        );
    }
}

#[tokio::test]
async fn acked_events_are_in_the_topic_and_rejected_ones_are_not() {
    let node = TestNode::start("acked").await;
    let mut client = node.client().await;
    let good: Vec<v1::DetectionEvent> = (1..=20).map(|i| event(i, support::CAMERA_A)).collect();
    let mut events = good.clone();
    events.push(event(100, "no-such-camera"));
    events.push(event(101, support::CAMERA_B)); // belongs to the other gateway
    let ack = client
        .publish_batch(node.authed(v1::EventBatch {
            gateway_id: support::GATEWAY_A.into(),
            batch_seq: 7,
            events,
        }))
        .await
        .expect("publish")
        .into_inner();
    assert_eq!(ack.batch_seq, 7);
    assert_eq!(ack.accepted, 20);
    let codes: Vec<(u32, i32)> = ack.rejections.iter().map(|r| (r.index, r.code)).collect();
    assert_eq!(
        codes,
        vec![
            (20, RejectionCode::UnknownCamera as i32),
            (21, RejectionCode::CameraNotOwned as i32)
        ]
    );

    let records = node.read_topic(20, Duration::from_secs(20));
    let mut counts: HashMap<Vec<u8>, usize> = HashMap::new();
    for detection in &records {
        *counts
            .entry(detection.event_id.as_bytes().to_vec())
            .or_default() += 1;
    }
    assert_eq!(records.len(), 20);
    for event in &good {
        assert_eq!(
            counts.get(&event.event_id),
            Some(&1),
            "acked event missing or doubled"
        );
        let stored = records
            .iter()
            .find(|d| d.event_id.as_bytes().as_slice() == event.event_id.as_slice())
            .expect("stored");
        assert_eq!(stored.subject_key, "粤S12345", "normalised key is stored");
        assert_eq!(stored.gateway_id, support::GATEWAY_A);
    }
    node.stop().await;
}

#[tokio::test]
async fn the_stream_acks_every_batch_and_resends_are_harmless() {
    let node = TestNode::start("stream").await;
    let mut client = node.client().await;
    let batches: Vec<v1::EventBatch> = (0..10u64)
        .map(|seq| v1::EventBatch {
            gateway_id: support::GATEWAY_A.into(),
            batch_seq: seq,
            // Batch 9 resends batch 8's events.
            events: (0..5)
                .map(|i| event(1000 + (seq.min(8) * 5 + i) as u32, support::CAMERA_A))
                .collect(),
        })
        .collect();
    let request = node.authed(tokio_stream::iter(batches));
    let mut acks = client
        .publish(request)
        .await
        .expect("open stream")
        .into_inner();
    let mut seen = Vec::new();
    while let Some(ack) = acks.message().await.expect("ack") {
        assert_eq!(ack.accepted, 5);
        seen.push(ack.batch_seq);
    }
    seen.sort_unstable();
    assert_eq!(seen, (0..10).collect::<Vec<_>>());
    // 45 distinct events, 50 records: the resend is stored twice in Kafka and collapses
    // on event_id downstream.
    let records = node.read_topic(50, Duration::from_secs(20));
    assert_eq!(records.len(), 50);
    node.stop().await;
}

#[tokio::test]
async fn bad_credentials_and_bad_batches_get_a_status_and_write_nothing() {
    let node = TestNode::start("auth").await;
    let mut client = node.client().await;
    let batch = || v1::EventBatch {
        gateway_id: support::GATEWAY_A.into(),
        batch_seq: 1,
        events: vec![event(1, support::CAMERA_A)],
    };
    let status = client
        .publish_batch(tonic::Request::new(batch()))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    let mut wrong = tonic::Request::new(batch());
    wrong.metadata_mut().insert(
        "authorization",
        "Bearer not-a-token".parse().expect("header"),
    );
    assert_eq!(
        client.publish_batch(wrong).await.unwrap_err().code(),
        Code::Unauthenticated
    );
    let mut impostor = batch();
    impostor.gateway_id = support::GATEWAY_B.into();
    let status = client
        .publish_batch(node.authed(impostor))
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::PermissionDenied);
    let huge = v1::EventBatch {
        gateway_id: support::GATEWAY_A.into(),
        batch_seq: 2,
        events: (0..40)
            .map(|i| {
                let mut e = event(i, support::CAMERA_A);
                e.snapshot = vec![0xAB; 64 * 1024];
                e
            })
            .collect(),
    };
    let status = client.publish_batch(node.authed(huge)).await.unwrap_err();
    assert!(
        matches!(status.code(), Code::OutOfRange | Code::ResourceExhausted),
        "oversize batch: {status:?}"
    );
    assert!(
        node.read_topic(1, Duration::from_secs(3)).is_empty(),
        "nothing may be written"
    );
    node.stop().await;
}

#[tokio::test]
async fn metrics_count_batches_and_rejections_without_personal_data() {
    let node = TestNode::start("metrics").await;
    let mut client = node.client().await;
    let mut bad = event(2, support::CAMERA_A);
    bad.event_id = vec![1, 2, 3];
    client
        .publish_batch(node.authed(v1::EventBatch {
            gateway_id: support::GATEWAY_A.into(),
            batch_seq: 1,
            events: vec![event(1, support::CAMERA_A), bad],
        }))
        .await
        .expect("publish");
    let text = node.metrics().await;
    assert!(
        text.contains("camtrail_ingest_events_accepted_total 1"),
        "{text}"
    );
    assert!(
        text.contains(
            "camtrail_ingest_events_rejected_total{code=\"REJECTION_CODE_INVALID_EVENT_ID\"} 1"
        ),
        "{text}"
    );
    assert!(
        !text.contains("12345"),
        "plates must never appear in metrics"
    );
    node.stop().await;
}
