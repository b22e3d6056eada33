//! Integration tests of the load generator against scripted in-test ingest servers.

mod server;

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camtrail_city::{City, CityConfig, SyntheticEvent, Traffic, TrafficConfig};
use camtrail_loadgen::{AckedBatch, LoadReport, LoadgenConfig, LoadgenError, RunHooks, Throttle};
use camtrail_proto::v1::RejectionCode;
use server::{Script, TestServer};

fn small_city() -> City {
    City::generate(&CityConfig {
        seed: 11,
        cameras: 300,
        districts: 3,
        gateways: 6,
    })
}

fn traffic(city: &City) -> impl Iterator<Item = SyntheticEvent> + Send + '_ {
    let now_ms = camtrail_common::now_ms();
    Traffic::new(
        city,
        TrafficConfig {
            seed: 3,
            start_ms: now_ms - 600_000,
            span_ms: 600_000,
            vehicles: usize::MAX,
            ..TrafficConfig::default()
        },
    )
}

fn config(target: String, events: u64) -> LoadgenConfig {
    LoadgenConfig {
        target,
        throttle: Throttle::Open,
        max_events: Some(events),
        batch_size: 40,
        linger: Duration::from_millis(20),
        ack_timeout: Duration::from_millis(300),
        max_in_flight: 4,
        reconnect_backoff_initial: Duration::from_millis(20),
        reconnect_backoff_max: Duration::from_millis(200),
        give_up_after: Duration::from_secs(10),
        drain_timeout: Duration::from_secs(20),
        ..LoadgenConfig::default()
    }
}

/// Collects what the loadgen's ack observer reports.
#[derive(Clone, Default)]
struct Acks(Arc<Mutex<Vec<AckedBatch>>>);

impl Acks {
    fn hooks(&self) -> RunHooks {
        let acks = Arc::clone(&self.0);
        RunHooks {
            on_ack: Some(Arc::new(move |batch: &AckedBatch| {
                acks.lock().expect("lock").push(batch.clone());
            })),
            ..RunHooks::default()
        }
    }

    fn accepted(&self) -> Vec<[u8; 16]> {
        let batches = self.0.lock().expect("lock");
        batches
            .iter()
            .flat_map(|b| b.accepted.iter().copied())
            .collect()
    }

    fn rejected(&self) -> Vec<([u8; 16], i32)> {
        let batches = self.0.lock().expect("lock");
        batches
            .iter()
            .flat_map(|b| b.rejected.iter().copied())
            .collect()
    }
}

fn assert_balanced(report: &LoadReport, events: u64) {
    assert_eq!(report.offered, events, "{report:#?}");
    assert_eq!(report.sent, events, "{report:#?}");
    assert_eq!(report.acked + report.rejected, events, "{report:#?}");
    assert_eq!(report.unacked, 0);
    assert_eq!(report.unsent, 0);
    assert_eq!(report.inconsistent_acks, 0);
    assert_eq!(report.unknown_acks, 0);
    assert_eq!(report.batches_acked, report.batches_sent);
    assert_eq!(report.ack_latency.batches, report.batches_acked);
    let timeline_sent: u64 = report.timeline.iter().map(|p| p.sent).sum();
    let timeline_answered: u64 = report.timeline.iter().map(|p| p.acked + p.rejected).sum();
    assert_eq!(timeline_sent, report.sent);
    assert_eq!(timeline_answered, report.acked + report.rejected);
}

fn sorted<T: Ord + Clone>(items: &[T]) -> Vec<T> {
    let mut items = items.to_vec();
    items.sort();
    items
}

#[tokio::test]
async fn acks_everything_and_routes_by_gateway() {
    let server = TestServer::start(Script::default()).await;
    let city = small_city();
    let acks = Acks::default();
    let report = camtrail_loadgen::run(
        config(server.target(), 2_000),
        &city.registry,
        traffic(&city),
        acks.hooks(),
    )
    .await
    .expect("run succeeds");
    assert_balanced(&report, 2_000);
    assert_eq!(report.acked, 2_000);
    assert_eq!(report.resends, 0);
    assert_eq!(report.gateways, city.gateways.len());
    let accepted = acks.accepted();
    assert_eq!(accepted.len(), 2_000);
    assert_eq!(
        accepted.iter().collect::<HashSet<_>>().len(),
        2_000,
        "ids are unique"
    );
    {
        let seen = server.seen.lock().expect("lock").clone();
        assert_eq!(
            sorted(&accepted),
            sorted(&seen.accepted),
            "observer = what the server acked"
        );
        // Every camera arrived on the stream of the gateway that serves it.
        let owner: HashMap<&str, &str> = city
            .registry
            .cameras()
            .iter()
            .map(|c| (c.camera_id.as_str(), c.gateway_id.as_str()))
            .collect();
        for (gateway, cameras) in &seen.cameras_by_gateway {
            for camera in cameras {
                assert_eq!(owner[camera.as_str()], gateway);
            }
        }
        assert!(
            seen.cameras_by_gateway.len() > 1,
            "several gateway streams were used"
        );
    }
    let json = serde_json::to_value(&report).expect("report serializes");
    assert_eq!(json["acked"], 2_000);
    assert!(json["ack_latency"]["p99_ms"].is_number());
    server.stop().await;
}

#[tokio::test]
async fn rejections_are_counted_by_code_and_reported_per_event() {
    let server = TestServer::start(Script {
        reject_every: Some((4, RejectionCode::TimestampTooOld)),
        ..Script::default()
    })
    .await;
    let city = small_city();
    let acks = Acks::default();
    let report = camtrail_loadgen::run(
        config(server.target(), 1_000),
        &city.registry,
        traffic(&city),
        acks.hooks(),
    )
    .await
    .expect("run succeeds");
    assert_balanced(&report, 1_000);
    let seen = server.seen.lock().expect("lock").clone();
    assert!(report.rejected > 0);
    assert_eq!(report.rejected, seen.rejected.len() as u64);
    assert_eq!(
        report
            .rejected_by_code
            .get("REJECTION_CODE_TIMESTAMP_TOO_OLD"),
        Some(&report.rejected)
    );
    assert_eq!(report.rejected_by_code.len(), 1);
    assert_eq!(sorted(&acks.rejected()), sorted(&seen.rejected));
    assert_eq!(sorted(&acks.accepted()), sorted(&seen.accepted));
    server.stop().await;
}

#[tokio::test]
async fn lost_acks_are_resent_after_the_timeout() {
    let server = TestServer::start(Script {
        drop_first_ack_every: Some(3),
        ..Script::default()
    })
    .await;
    let city = small_city();
    let acks = Acks::default();
    let report = camtrail_loadgen::run(
        config(server.target(), 1_500),
        &city.registry,
        traffic(&city),
        acks.hooks(),
    )
    .await
    .expect("run succeeds");
    assert_balanced(&report, 1_500);
    let seen = server.seen.lock().expect("lock").clone();
    assert!(seen.dropped_acks > 0);
    assert_eq!(report.resends, seen.dropped_acks, "{report:#?}");
    assert!(
        report.ack_latency.max_ms >= 300.0,
        "a resent batch waited for the timeout"
    );
    // Resent events reached the server twice; each was acked once.
    assert!(seen.received.values().any(|&copies| copies == 2));
    assert_eq!(acks.accepted().len(), 1_500);
    let resent_batches = acks
        .0
        .lock()
        .expect("lock")
        .iter()
        .filter(|b| b.sends == 2)
        .count() as u64;
    assert_eq!(resent_batches, seen.dropped_acks);
    server.stop().await;
}

#[tokio::test]
async fn broken_streams_reconnect_and_resend() {
    let server = TestServer::start(Script {
        break_first_stream_after: Some(3),
        ..Script::default()
    })
    .await;
    let city = small_city();
    let acks = Acks::default();
    let report = camtrail_loadgen::run(
        config(server.target(), 2_000),
        &city.registry,
        traffic(&city),
        acks.hooks(),
    )
    .await
    .expect("run succeeds");
    assert_balanced(&report, 2_000);
    assert_eq!(report.acked, 2_000);
    assert!(report.reconnects > 0, "{report:#?}");
    assert!(report.resends > 0, "{report:#?}");
    assert_eq!(acks.accepted().iter().collect::<HashSet<_>>().len(), 2_000);
    server.stop().await;
}

#[tokio::test]
async fn the_window_bounds_unacked_batches_and_stalls_are_waited_out() {
    let server = TestServer::start(Script {
        stall_before_reading: Some(Duration::from_millis(200)),
        ack_delay: Some(Duration::from_millis(30)),
        ..Script::default()
    })
    .await;
    let city = small_city();
    let mut config = config(server.target(), 1_000);
    config.max_in_flight = 2;
    config.ack_timeout = Duration::from_secs(5);
    let report = camtrail_loadgen::run(config, &city.registry, traffic(&city), RunHooks::default())
        .await
        .expect("run succeeds");
    assert_balanced(&report, 1_000);
    assert_eq!(
        report.resends, 0,
        "slow acks within the timeout are not resent"
    );
    let seen = server.seen.lock().expect("lock").clone();
    assert!(
        seen.max_outstanding <= 2,
        "window of 2, saw {}",
        seen.max_outstanding
    );
    assert!(seen.max_outstanding >= 1);
    assert!(
        report.ack_latency.p50_ms >= 30.0,
        "{:?}",
        report.ack_latency
    );
    server.stop().await;
}

#[tokio::test]
async fn resource_exhausted_is_retried_after_the_hint() {
    let server = TestServer::start(Script {
        exhausted_first_call: true,
        ..Script::default()
    })
    .await;
    let city = small_city();
    let report = camtrail_loadgen::run(
        config(server.target(), 500),
        &city.registry,
        traffic(&city),
        RunHooks::default(),
    )
    .await
    .expect("run succeeds");
    assert_balanced(&report, 500);
    assert!(server.seen.lock().expect("lock").exhausted > 0);
    server.stop().await;
}

#[tokio::test]
async fn tokens_are_sent_per_gateway_and_a_refusal_fails_the_run() {
    let city = small_city();
    let tokens: HashMap<String, String> = city
        .gateways
        .iter()
        .enumerate()
        .map(|(index, gateway)| (gateway.id.clone(), format!("secret-{index}")))
        .collect();
    let server = TestServer::start(Script {
        tokens: tokens.clone(),
        ..Script::default()
    })
    .await;
    let mut with_tokens = config(server.target(), 500);
    with_tokens.tokens = tokens;
    let report = camtrail_loadgen::run(
        with_tokens,
        &city.registry,
        traffic(&city),
        RunHooks::default(),
    )
    .await
    .expect("authenticated run succeeds");
    assert_balanced(&report, 500);

    let refused = camtrail_loadgen::run(
        config(server.target(), 500),
        &city.registry,
        traffic(&city),
        RunHooks::default(),
    )
    .await;
    match refused {
        Err(LoadgenError::Rejected { code, .. }) => assert_eq!(code, tonic::Code::Unauthenticated),
        other => panic!("expected UNAUTHENTICATED, got {other:?}"),
    }
    server.stop().await;
}

#[tokio::test]
async fn the_rate_is_held_and_gateways_can_be_limited() {
    let server = TestServer::start(Script::default()).await;
    let city = small_city();
    let mut config = config(server.target(), 600);
    config.throttle = Throttle::EventsPerSecond(1_000.0);
    config.gateways = Some(2);
    let report = camtrail_loadgen::run(config, &city.registry, traffic(&city), RunHooks::default())
        .await
        .expect("run succeeds");
    assert_balanced(&report, 600);
    assert_eq!(report.gateways, 2);
    assert!(
        report.elapsed_s >= 0.55,
        "600 events at 1,000/s take 0.6 s: {}",
        report.elapsed_s
    );
    assert!(report.elapsed_s < 3.0, "{}", report.elapsed_s);
    assert_eq!(
        server.seen.lock().expect("lock").cameras_by_gateway.len(),
        2
    );
    server.stop().await;
}

#[tokio::test]
async fn duration_limit_and_shutdown_end_the_run_cleanly() {
    let server = TestServer::start(Script::default()).await;
    let city = small_city();
    let mut timed = config(server.target(), 0);
    timed.max_events = None;
    timed.duration = Some(Duration::from_millis(400));
    timed.throttle = Throttle::EventsPerSecond(2_000.0);
    let report = camtrail_loadgen::run(
        timed.clone(),
        &city.registry,
        traffic(&city),
        RunHooks::default(),
    )
    .await
    .expect("run succeeds");
    assert!((700..=900).contains(&report.sent), "{report:#?}");
    assert_eq!(report.acked, report.sent);

    let hooks = RunHooks::default();
    let shutdown = hooks.shutdown.clone();
    timed.duration = None;
    let stopper = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        shutdown.cancel();
    });
    let report = camtrail_loadgen::run(timed, &city.registry, traffic(&city), hooks)
        .await
        .expect("run succeeds");
    stopper.await.expect("stopper joins");
    assert!(report.sent > 0);
    assert_eq!(report.acked + report.unacked, report.sent);
    server.stop().await;
}

#[tokio::test]
async fn a_chart_and_report_are_written() {
    let server = TestServer::start(Script {
        ack_delay: Some(Duration::from_millis(5)),
        ..Script::default()
    })
    .await;
    let city = small_city();
    let mut config = config(server.target(), 3_000);
    config.throttle = Throttle::EventsPerSecond(1_500.0);
    let report = camtrail_loadgen::run(config, &city.registry, traffic(&city), RunHooks::default())
        .await
        .expect("run succeeds");
    assert_balanced(&report, 3_000);
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("chart.png");
    camtrail_loadgen::chart::write_chart(&report, &path).expect("chart written");
    let image = image::open(&path).expect("chart decodes");
    assert_eq!((image.width(), image.height()), (1_000, 640));
    if let Ok(keep) = std::env::var("LOADGEN_KEEP_CHART") {
        std::fs::copy(&path, keep).expect("copy chart");
    }
    server.stop().await;
}

#[tokio::test]
async fn an_unreachable_target_gives_up() {
    let city = small_city();
    let mut config = config("http://127.0.0.1:1".to_string(), 100);
    config.give_up_after = Duration::from_millis(300);
    let result =
        camtrail_loadgen::run(config, &city.registry, traffic(&city), RunHooks::default()).await;
    assert!(
        matches!(result, Err(LoadgenError::GaveUp { .. })),
        "{result:?}"
    );
}

#[tokio::test]
async fn shutdown_while_the_server_stalls_returns_promptly_with_unacked_counts() {
    let server = TestServer::start(Script {
        stall_before_reading: Some(Duration::from_secs(30)),
        ..Script::default()
    })
    .await;
    let city = small_city();
    let mut config = config(server.target(), 100_000);
    config.max_in_flight = 1;
    config.ack_timeout = Duration::from_secs(10);
    config.drain_timeout = Duration::from_millis(300);
    let hooks = RunHooks::default();
    let shutdown = hooks.shutdown.clone();
    let started = std::time::Instant::now();
    let (report, ()) = tokio::join!(
        camtrail_loadgen::run(config, &city.registry, traffic(&city), hooks),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            shutdown.cancel();
        }
    );
    let report = report.expect("a stalled server is not an error");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.acked, 0);
    assert!(report.sent > 0);
    assert_eq!(report.unacked, report.sent, "{report:#?}");
    assert_eq!(report.offered, report.sent + report.unsent);
    server.stop().await;
}
