//! Investigative analytics scored against planted ground truth (`camtrail_city::investigation`)
//! on both backends — ClickHouse through the distributed read path (`detections_by_hour`)
//! and the embedded SQLite store — which must give the same answers.
//!
//! Five days of traffic: one-trip vehicles, commuters who drive the same route every day,
//! twelve vehicles that visit five scene areas (one per day, 1 km × 2 h), and twenty targets
//! each followed by a companion at 5–90 s over three trips. Targets (issue 17): every planted
//! series vehicle among the top results (recall 100%), the chance-coincidence rate reported;
//! ≥ 95% of planted companions found and ≥ 90% of reported companions planted, at the
//! defaults (≥ 4 cameras within ±60 s).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use camtrail_city::investigation::{InvestigationCity, InvestigationConfig, Role as Planted};
use camtrail_city::{City, CityConfig};
use camtrail_clickhouse::ClickhouseStore;
use camtrail_kafka::{AuditWriter, KafkaConfig, ensure_topics};
use camtrail_model::Detection;
use camtrail_model::audit::AuditChain;
use camtrail_query::analytics::Area;
use camtrail_query::auth::{Principal, Role};
use camtrail_query::metrics::QueryMetrics;
use camtrail_query::service::{
    Caller, CoTravelRequest, Purpose, QueryLimits, QueryService, SceneRequest, SceneSpec,
    SeriesRequest,
};
use camtrail_query::track::TrackParams;
use camtrail_storage::testsuite::open_case;
use camtrail_storage::{AuditLog, PassFilter, Store};

fn supervisor() -> Caller {
    Caller {
        principal: Principal {
            user: "analyst".into(),
            role: Role::Supervisor,
        },
        client_addr: "test".into(),
    }
}

fn purpose() -> Purpose {
    Purpose::new(Some("SCORE-17"), Some("planted ground truth")).expect("purpose")
}

/// What one backend answered, for scoring and for comparing the backends.
#[derive(Debug, PartialEq)]
struct Answers {
    /// Series hits (keys, ranked) at every scene, and at three of five.
    series_all: Vec<String>,
    series_three: Vec<String>,
    /// Per convoy: the reported companions (keys, ranked), and without the 10-minute span
    /// rule (any stretch together counts).
    companions: Vec<Vec<String>>,
    companions_any_span: Vec<Vec<String>>,
    /// Per convoy: "were the target and its first companion together?", and the target with
    /// a commuter.
    pairs: Vec<(bool, bool)>,
    /// Vehicles at each scene (first page of 1,000).
    scene_vehicles: Vec<usize>,
}

async fn ask<S: Store, A: AuditLog>(
    service: &QueryService<S, A>,
    planted: &InvestigationCity,
    commuter: &str,
) -> Answers {
    let caller = supervisor();
    let scenes: Vec<SceneSpec> = planted
        .scenes
        .iter()
        .map(|s| SceneSpec {
            area: Area::Circle {
                lon: s.lon,
                lat: s.lat,
                radius_m: s.radius_m,
            },
            from_ms: s.from_ms,
            to_ms: s.to_ms,
        })
        .collect();
    let series = |min_scenes| SeriesRequest {
        scenes: scenes.clone(),
        min_scenes,
        fuzzy: true,
        filter: PassFilter::default(),
        limit: 1_000,
        purpose: purpose(),
    };
    let keys = |hits: Vec<camtrail_query::analytics::SeriesHit>| {
        hits.into_iter().map(|h| h.key).collect::<Vec<_>>()
    };
    let series_all = keys(
        service
            .series(&caller, series(None))
            .await
            .expect("series")
            .hits,
    );
    let series_three = keys(
        service
            .series(&caller, series(Some(3)))
            .await
            .expect("series")
            .hits,
    );
    let mut scene_vehicles = Vec::new();
    for scene in &scenes {
        let answer = service
            .scene(
                &caller,
                SceneRequest {
                    scene: scene.clone(),
                    filter: PassFilter::default(),
                    limit: 1_000,
                    after: None,
                    purpose: purpose(),
                },
            )
            .await
            .expect("scene");
        scene_vehicles.push(answer.total_vehicles);
    }
    let mut companions = Vec::new();
    let mut companions_any_span = Vec::new();
    let mut pairs = Vec::new();
    for convoy in &planted.convoys {
        let request = |other: Option<String>, min_span_ms: Option<i64>| CoTravelRequest {
            target: convoy.target_key.clone(),
            other,
            from_ms: convoy.from_ms,
            to_ms: convoy.to_ms,
            min_cameras: None,
            delta_ms: None,
            min_span_ms,
            limit: 1_000,
            purpose: purpose(),
        };
        let answer = service
            .cotravel(&caller, request(None, None))
            .await
            .expect("cotravel");
        let any_span = service
            .cotravel(&caller, request(None, Some(0)))
            .await
            .expect("cotravel");
        companions_any_span.push(any_span.companions.into_iter().map(|c| c.key).collect());
        assert!(answer.target_sightings >= 30, "{answer:?}");
        companions.push(answer.companions.into_iter().map(|c| c.key).collect());
        let with_companion = service
            .cotravel(
                &caller,
                request(Some(convoy.companion_keys[0].clone()), None),
            )
            .await
            .expect("pair");
        let with_commuter = service
            .cotravel(&caller, request(Some(commuter.to_string()), None))
            .await
            .expect("pair");
        pairs.push((
            with_companion.together.expect("pair form"),
            with_commuter.together.expect("pair form"),
        ));
    }
    Answers {
        series_all,
        series_three,
        companions,
        companions_any_span,
        pairs,
        scene_vehicles,
    }
}

async fn audit_writer(brokers: String) -> AuditWriter {
    let kafka = KafkaConfig {
        brokers,
        audit_topic: camtrail_testkit::unique_name("analytics_audit"),
        ..KafkaConfig::default()
    };
    ensure_topics(&kafka, Duration::from_secs(30))
        .await
        .expect("topics");
    AuditWriter::new(
        &kafka.brokers,
        &kafka.audit_topic,
        AuditChain::new("analytics/1"),
        Duration::from_secs(10),
    )
    .expect("audit")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_series_and_convoys_are_found_on_both_backends() {
    let brokers = camtrail_testkit::require_kafka();
    let clickhouse = camtrail_testkit::clickhouse("analytics_scoring").await;
    camtrail_clickhouse::migrate(&clickhouse, 1)
        .await
        .expect("migrate");

    let started = Instant::now();
    // A quarter of the cameras and four times the vehicles of the defaults: the same number
    // of events, four times the traffic through each scene.
    let city = City::generate(&CityConfig {
        cameras: 35_000,
        ..CityConfig::default()
    });
    let config = InvestigationConfig {
        background_trips_per_day: 4_000,
        regulars: 2_400,
        ..InvestigationConfig::default()
    };
    let planted = InvestigationCity::generate(&city, config.clone());
    let stats = &planted.stats;
    eprintln!(
        "investigation city: {} events in {:.1} s; chance vehicles per scene {:?} (regulars {:?})",
        stats.events,
        started.elapsed().as_secs_f64(),
        stats.scene_chance_vehicles,
        stats.scene_chance_regulars,
    );
    assert_eq!(planted.series.len(), config.series_vehicles);
    assert_eq!(planted.convoys.len(), config.convoy_targets);
    assert!(
        stats.scene_chance_vehicles.iter().all(|&n| n >= 5),
        "the scenes see ordinary traffic too: {:?}",
        stats.scene_chance_vehicles
    );
    let commuter = planted
        .vehicles
        .iter()
        .find(|v| v.role == Planted::Regular)
        .map(|v| v.key.clone())
        .expect("a commuter");
    let detections: Vec<Detection> = planted
        .events
        .iter()
        .map(|e| crate::track_scoring::to_detection(&city, e, &e.plate))
        .collect();

    let stored = Instant::now();
    let dir = tempfile::tempdir().expect("tempdir");
    let store = crate::track_scoring::store_in_both(&clickhouse, &detections, dir.path()).await;
    eprintln!(
        "{} detections stored in both backends in {:.1} s",
        detections.len(),
        stored.elapsed().as_secs_f64()
    );
    drop(detections);

    let limits = QueryLimits {
        supervisor_track_age_ms: i64::MAX,
        ..QueryLimits::default()
    };
    let registry = Arc::new(city.registry.clone());
    let metrics = || QueryMetrics::register(&mut prometheus_client::registry::Registry::default());
    open_case(&ClickhouseStore::new(&clickhouse), "SCORE-17", &[]).await;
    open_case(&store, "SCORE-17", &[]).await;
    let clickhouse_service = QueryService::new(
        ClickhouseStore::new(&clickhouse),
        audit_writer(brokers).await,
        registry.clone(),
        TrackParams::default(),
        limits.clone(),
        metrics(),
    )
    .expect("service");
    let sqlite_service = QueryService::new(
        store.clone(),
        store.audit_log("analytics").await.expect("audit log"),
        registry,
        TrackParams::default(),
        limits,
        metrics(),
    )
    .expect("service");

    let timed = Instant::now();
    let clickhouse_answers = ask(&clickhouse_service, &planted, &commuter).await;
    let clickhouse_seconds = timed.elapsed().as_secs_f64();
    let timed = Instant::now();
    let sqlite_answers = ask(&sqlite_service, &planted, &commuter).await;
    let sqlite_seconds = timed.elapsed().as_secs_f64();
    eprintln!(
        "asked in {clickhouse_seconds:.1} s (ClickHouse), {sqlite_seconds:.1} s (SQLite); \
         vehicles per scene {:?}",
        clickhouse_answers.scene_vehicles
    );
    assert_eq!(
        clickhouse_answers, sqlite_answers,
        "both backends answer alike"
    );
    let answers = clickhouse_answers;

    // Series: every planted vehicle, and nothing ranks above any of them.
    let planted_series: HashSet<&str> = planted.series.iter().map(|s| s.key.as_str()).collect();
    let top: HashSet<&str> = answers
        .series_all
        .iter()
        .take(planted_series.len())
        .map(String::as_str)
        .collect();
    let chance_all = answers
        .series_all
        .iter()
        .filter(|k| !planted_series.contains(k.as_str()))
        .count();
    let chance_three = answers
        .series_three
        .iter()
        .filter(|k| !planted_series.contains(k.as_str()))
        .count();
    eprintln!(
        "series: {} planted; at all 5 scenes {} hits ({} by chance); at >= 3 of 5 {} hits \
         ({} by chance, {:.1}% of hits)",
        planted_series.len(),
        answers.series_all.len(),
        chance_all,
        answers.series_three.len(),
        chance_three,
        100.0 * chance_three as f64 / answers.series_three.len().max(1) as f64
    );
    assert_eq!(
        top, planted_series,
        "every planted series vehicle in the top results"
    );
    assert!(
        planted_series
            .iter()
            .all(|k| answers.series_three.iter().any(|h| h == k)),
        "a lower threshold keeps them"
    );

    // Co-travel: recall of planted companions, share of reported ones that are planted.
    let owner_role: HashMap<&str, &Planted> = planted
        .vehicles
        .iter()
        .map(|v| (v.key.as_str(), &v.role))
        .collect();
    let score = |reports: &[Vec<String>]| {
        let (mut planted_total, mut found, mut reported, mut reported_planted) = (0, 0, 0, 0);
        let mut others: HashMap<String, usize> = HashMap::new();
        for (convoy, got) in planted.convoys.iter().zip(reports) {
            let truth: HashSet<&str> = convoy.companion_keys.iter().map(String::as_str).collect();
            planted_total += truth.len();
            found += got.iter().filter(|k| truth.contains(k.as_str())).count();
            reported += got.len();
            for key in got {
                if truth.contains(key.as_str()) {
                    reported_planted += 1;
                } else {
                    let role = owner_role
                        .get(key.as_str())
                        .map_or("misread".to_string(), |r| format!("{r:?}"));
                    *others.entry(role).or_default() += 1;
                }
            }
        }
        (found, planted_total, reported_planted, reported, others)
    };
    let (found, planted_total, reported_planted, reported, others) = score(&answers.companions);
    let recall = found as f64 / planted_total as f64;
    let precision = reported_planted as f64 / reported.max(1) as f64;
    let (any_found, _, any_planted, any_reported, any_others) = score(&answers.companions_any_span);
    eprintln!(
        "co-travel without the span rule: recall {any_found}/{planted_total}, precision \
         {any_planted}/{any_reported} = {:.3}, others by role {any_others:?}",
        any_planted as f64 / any_reported.max(1) as f64
    );
    let pairs_together = answers.pairs.iter().filter(|p| p.0).count();
    let commuter_together = answers.pairs.iter().filter(|p| p.1).count();
    eprintln!(
        "co-travel: recall {found}/{planted_total} = {recall:.3}, precision \
         {reported_planted}/{reported} = {precision:.3}, others reported by role \
         {others:?}; pairs together {pairs_together}/{}, commuter together \
         {commuter_together}",
        answers.pairs.len()
    );
    assert!(recall >= 0.95, "co-travel recall {recall:.3} < 0.95");
    assert!(
        precision >= 0.90,
        "co-travel precision {precision:.3} < 0.90"
    );
    assert!(
        pairs_together as f64 >= 0.95 * answers.pairs.len() as f64,
        "the two-plate form agrees"
    );
    assert_eq!(commuter_together, 0, "a commuter is nobody's companion");

    camtrail_testkit::drop_database(&clickhouse).await;
}
