//! The ingest door's limits on whole messages and headers (issue 13, faults 4, 5 and 8), in
//! front of both publishers: the documented batch limit is enforced with a status, an ack
//! stays small whatever the batch held, bytes that are not protobuf answer
//! INVALID_ARGUMENT, and the bearer scheme is read case-insensitively.

use camtrail_proto::v1;
use prost::Message;
use tonic::Code;

use super::support::{self, Backend, TestNode, event};

fn batch(events: Vec<v1::DetectionEvent>) -> v1::EventBatch {
    v1::EventBatch {
        gateway_id: support::GATEWAY_A.into(),
        batch_seq: 7,
        events,
    }
}

async fn batches_over_the_limit_are_refused_and_acks_stay_small(backend: Backend) {
    let node = TestNode::start_on("limits", backend, |config| {
        config.max_message_bytes = 16 * 1024 * 1024;
    })
    .await;
    let mut client = node.client().await;
    // 5,001 valid events: one more than the documented limit.
    let over: Vec<_> = (0..5_001).map(|n| event(n, support::CAMERA_A)).collect();
    let status = client
        .publish_batch(node.authed(batch(over)))
        .await
        .expect_err("over the limit");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert!(
        status.message().starts_with("batch_too_large: "),
        "{status:?}"
    );
    assert!(status.message().contains("5001") && status.message().contains("5000"));
    // 120,000 empty events (the hostile test's 240 KB batch) are refused the same way.
    let empty = vec![v1::DetectionEvent::default(); 120_000];
    let status = client
        .publish_batch(node.authed(batch(empty)))
        .await
        .expect_err("over the limit");
    assert!(
        status.message().starts_with("batch_too_large: "),
        "{status:?}"
    );
    assert_eq!(
        node.metric("camtrail_ingest_events_accepted_total").await,
        0.0,
        "nothing of a refused batch is published"
    );

    // 5,000 events, all rejected: every rejection is listed (index and code), only the first
    // 100 with a message, so the ack stays far below a default client's 4 MiB limit.
    let mut rejected = vec![v1::DetectionEvent::default(); 5_000];
    for (n, event) in rejected.iter_mut().enumerate() {
        event.camera_id = format!("no-such-camera-{n:06}");
    }
    let ack = client
        .publish_batch(node.authed(batch(rejected)))
        .await
        .expect("an ack")
        .into_inner();
    assert_eq!(ack.accepted, 0);
    assert_eq!(ack.rejections.len(), 5_000);
    assert!(
        ack.rejections
            .iter()
            .enumerate()
            .all(|(i, r)| r.index as usize == i)
    );
    assert!(ack.rejections[..100].iter().all(|r| !r.message.is_empty()));
    assert!(
        ack.rejections[100..]
            .iter()
            .all(|r| r.message.is_empty() && r.code != 0)
    );
    let size = ack.encoded_len();
    assert!(size < 64 * 1024, "ack of {size} bytes");
    node.stop().await;
}

#[tokio::test]
async fn batches_over_the_limit_are_refused_and_acks_stay_small_kafka() {
    batches_over_the_limit_are_refused_and_acks_stay_small(Backend::Kafka).await;
}

#[tokio::test]
async fn batches_over_the_limit_are_refused_and_acks_stay_small_sqlite() {
    batches_over_the_limit_are_refused_and_acks_stay_small(Backend::Sqlite).await;
}

async fn undecodable_bodies_are_invalid_argument(backend: Backend) {
    let node = TestNode::start_on("garbage", backend, |_| {}).await;
    crate::raw_grpc::assert_garbage_is_invalid_argument(
        node.grpc_url(),
        "/camtrail.v1.Ingest/PublishBatch",
        |request| node.authed(request),
    )
    .await;
    node.stop().await;
}

#[tokio::test]
async fn undecodable_bodies_are_invalid_argument_kafka() {
    undecodable_bodies_are_invalid_argument(Backend::Kafka).await;
}

#[tokio::test]
async fn undecodable_bodies_are_invalid_argument_sqlite() {
    undecodable_bodies_are_invalid_argument(Backend::Sqlite).await;
}

async fn the_bearer_scheme_is_case_insensitive(backend: Backend) {
    let node = TestNode::start_on("bearer", backend, |_| {}).await;
    let mut client = node.client().await;
    for scheme in ["bearer", "BEARER", "bEaReR"] {
        let mut request = node.authed(batch(vec![event(1, support::CAMERA_A)]));
        let value = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .expect("header")
            .replacen("Bearer", scheme, 1);
        request
            .metadata_mut()
            .insert("authorization", value.parse().expect("header"));
        let ack = client.publish_batch(request).await;
        assert!(ack.is_ok(), "{scheme}: {ack:?}");
    }
    node.stop().await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_kafka() {
    the_bearer_scheme_is_case_insensitive(Backend::Kafka).await;
}

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_sqlite() {
    the_bearer_scheme_is_case_insensitive(Backend::Sqlite).await;
}

/// Fault 8: text that displays differently from its bytes is refused; fault 9: rejection
/// messages never echo plate text, and echo a camera id only when it is short printable
/// ASCII, quoted and escaped.
async fn hidden_text_is_refused_and_messages_never_echo_plates(backend: Backend) {
    let node = TestNode::start_on("echo", backend, |_| {}).await;
    let mut client = node.client().await;
    let with = |n: u32, change: &dyn Fn(&mut v1::DetectionEvent)| {
        let mut e = event(n, support::CAMERA_A);
        change(&mut e);
        e
    };
    let events = vec![
        // Displays as 粤S12345 under the right-to-left override.
        with(1, &|e| e.plate = "粤S\u{202E}54321".into()),
        with(2, &|e| e.plate = "粤S\u{2067}SECRT\u{2069}".into()),
        with(3, &|e| e.plate = "粤S1\u{200B}SECRT".into()),
        with(4, &|e| e.subject_key = "SECRT\u{202D}key".into()),
        with(5, &|e| e.plate = "SECRT".repeat(10)),
        with(6, &|e| e.plate = "粤SECRT\n".into()),
        with(7, &|e| e.camera_id = "44030000001399999999".into()),
        with(8, &|e| e.camera_id = format!("SECRT{}", "9".repeat(70))),
        with(9, &|e| e.camera_id = "4403\"><script>".into()),
    ];
    let ack = client
        .publish_batch(node.authed(batch(events)))
        .await
        .expect("an ack")
        .into_inner();
    assert_eq!(ack.accepted, 0, "{ack:?}");
    let codes: Vec<i32> = ack.rejections.iter().map(|r| r.code).collect();
    let invalid_text = v1::RejectionCode::InvalidText as i32;
    assert_eq!(codes[..6], [invalid_text; 6], "{ack:?}");
    assert_eq!(codes[6], v1::RejectionCode::UnknownCamera as i32);
    assert_eq!(codes[7], invalid_text, "{ack:?}");
    assert_eq!(codes[8], v1::RejectionCode::UnknownCamera as i32);
    for rejection in &ack.rejections {
        let message = &rejection.message;
        assert!(
            !message.contains("SECRT") && !message.contains("54321"),
            "{message}"
        );
        assert!(message.len() <= 120, "{message}");
    }
    // A registered-looking camera id is echoed quoted, with its quotes escaped.
    assert_eq!(
        ack.rejections[6].message,
        "camera \"44030000001399999999\" is not in the registry"
    );
    assert_eq!(
        ack.rejections[8].message,
        r#"camera "4403\"><script>" is not in the registry"#
    );
    node.stop().await;
}

#[tokio::test]
async fn hidden_text_is_refused_and_messages_never_echo_plates_kafka() {
    hidden_text_is_refused_and_messages_never_echo_plates(Backend::Kafka).await;
}

#[tokio::test]
async fn hidden_text_is_refused_and_messages_never_echo_plates_sqlite() {
    hidden_text_is_refused_and_messages_never_echo_plates(Backend::Sqlite).await;
}
