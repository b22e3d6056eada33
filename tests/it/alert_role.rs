//! `camtrail alert`, the distributed watchlist role, as a process against the real Kafka
//! and ClickHouse: planted reads of a listed plate (exact and misread) become stored hits
//! and reach a distributed query node's live stream (relayed over the alerts topic); after
//! `kill -9` mid-stream and a restart no planted hit is missing, in the store or on the
//! stream, and a hit delivered more than once (a resent read, a re-delivered record) is
//! stored once; a second member joining the group and the first leaving lose nothing.

use std::collections::BTreeSet;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use camtrail_clickhouse::{ClickhouseStore, migrate};
use camtrail_kafka::{KafkaPublisher, ProducerConfig, ensure_topics};
use camtrail_model::watchlist::{Entry, EntryState};
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};
use camtrail_query::auth::{Role, UsersFile, issue};
use camtrail_storage::WatchlistStore as _;

const CAMERA: &str = "44030000001310000001";

fn detection(n: u32, plate: &str) -> Detection {
    let mut id = [0x3Au8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    let now = camtrail_common::now_ms();
    Detection {
        event_id: EventId(id),
        camera_id: CAMERA.into(),
        captured_at_ms: now - 1_000,
        object_class: ObjectClass::Vehicle,
        plate: plate.into(),
        plate_confidence: 0.9,
        subject_key: camtrail_model::plate::normalize(plate),
        attributes: VehicleAttributes::default(),
        plate_char_confidence: Vec::new(),
        bbox: [1, 2, 3, 4],
        thumbnail_jpeg: None,
        gateway_id: "gw-001".into(),
        received_at_ms: now,
    }
}

fn hit_id(n: u32) -> String {
    let mut id = [0x3Au8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    format!("WL-A/{}", EventId(id).to_hex())
}

/// `camtrail alert` with this test's topics, database, registry and group.
fn spawn(env: &[(&str, String)], log: &std::path::Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_camtrail"))
        .arg("alert")
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).expect("log"))
        .spawn()
        .expect("spawn camtrail alert")
}

/// (rows, distinct hit ids) in watchlist_hits.
async fn stored(
    store: &ClickhouseStore,
    config: &camtrail_clickhouse::ClickhouseConfig,
) -> (u64, Vec<String>) {
    let rows: u64 = config
        .client()
        .query("SELECT count() FROM watchlist_hits")
        .fetch_one()
        .await
        .expect("count");
    let ids = store
        .hits("WL-A")
        .await
        .expect("hits")
        .into_iter()
        .map(|h| h.hit_id)
        .collect();
    (rows, ids)
}

async fn wait_for(
    store: &ClickhouseStore,
    config: &camtrail_clickhouse::ClickhouseConfig,
    want: usize,
    log: &std::path::Path,
) -> (u64, Vec<String>) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (rows, ids) = stored(store, config).await;
        if ids.len() >= want {
            return (rows, ids);
        }
        assert!(
            Instant::now() < deadline,
            "{} of {want} hits stored; log:\n{}",
            ids.len(),
            std::fs::read_to_string(log).unwrap_or_default()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// What the role logs each time it is assigned partitions.
const ASSIGNED: &str = "alert consumer assigned partitions";

/// Wait until `log` holds `needle` at least `times` times.
async fn wait_log(log: &std::path::Path, needle: &str, times: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if text.matches(needle).count() >= times {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{needle:?} not {times} times in {}:\n{text}",
            log.display()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn planted_hits_survive_kill_9_and_are_stored_once() {
    let brokers = camtrail_testkit::require_kafka();
    let clickhouse = camtrail_testkit::clickhouse("alert_role").await;
    migrate(&clickhouse, 1).await.expect("migrate");
    let kafka = crate::ingest::support::kafka_config("alert_role");
    let prefix = kafka
        .detections_topic
        .trim_end_matches(".detections.v1")
        .to_string();
    ensure_topics(&kafka, Duration::from_secs(30))
        .await
        .expect("topics");
    let dir = tempfile::tempdir().expect("tempdir");
    let registry = dir.path().join("cameras.csv");
    std::fs::write(
        &registry,
        format!(
            "camera_id,district,lat,lon,heading_deg,road,gateway_id\n\
             {CAMERA},Futian,22.540,114.050,90,Shennan Rd,gw-001\n"
        ),
    )
    .expect("registry");

    // An approved fuzzy entry for 粤B12345 under an open case, as the query node stores it.
    let store = ClickhouseStore::new(&clickhouse);
    camtrail_storage::testsuite::open_case(&store, "CASE-A", &["ivy"]).await;
    let now = camtrail_common::now_ms();
    store
        .put_entry(&Entry {
            entry_id: "WL-A".into(),
            title: "stolen white SUV".into(),
            plate: "粤B12345".into(),
            fuzzy: true,
            case_id: "CASE-A".into(),
            reason: "stolen on Shennan Rd".into(),
            applicant: "ivy".into(),
            priority: 1,
            valid_from_ms: now - 3_600_000,
            valid_until_ms: now + 86_400_000,
            cameras: Vec::new(),
            districts: Vec::new(),
            recipients: vec!["ivy".into()],
            webhook_url: None,
            state: EntryState::Approved,
            approved_by: Some("sam".into()),
            revoked: None,
            updated_at_ms: now,
            version: 2,
        })
        .await
        .expect("entry");

    // A distributed query node over the same topics and database; ivy (a recipient)
    // watches its live stream.
    let ivy = issue("ivy", Role::Investigator);
    let users = dir.path().join("users.toml");
    let file = UsersFile {
        user: vec![ivy.entry.clone()],
    };
    std::fs::write(&users, toml::to_string(&file).expect("toml")).expect("users");
    let node = camtrail_serve::distributed::bind_query(&camtrail_serve::Config {
        query: camtrail_query::node::QueryConfig {
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            grpc_addr: "127.0.0.1:0".parse().expect("addr"),
            node_name: "query-alert-test".into(),
            registry_path: registry.clone(),
            users_path: users,
            ..Default::default()
        },
        kafka: kafka.clone(),
        clickhouse: clickhouse.clone(),
        ..camtrail_serve::Config::default()
    })
    .await
    .expect("bind query node");
    let http = node.http_addr().expect("addr");
    let (stop_node, node_stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(node.run_until_stopped(async move {
        let _ = node_stopped.await;
    }));
    let mut stream = crate::watchlist::Stream::open(http, &ivy.token).await;
    let mut streamed = BTreeSet::new();

    let publisher = KafkaPublisher::new(
        &brokers,
        &kafka.detections_topic,
        &ProducerConfig::default(),
    )
    .expect("producer");
    let ordinary =
        |from: u32| (from..from + 200).map(|n| detection(n, &format!("粤C{:05}", n % 100_000)));
    // Phase 1: two planted reads (exact, and 2 misread as Z) among ordinary traffic.
    let mut batch: Vec<Detection> = ordinary(1_000).collect();
    batch.push(detection(1, "粤B12345"));
    batch.push(detection(2, "粤B1Z345"));
    publisher.publish(&batch).await.expect("publish");

    let log = dir.path().join("alert.log");
    let env = [
        ("CAMTRAIL_KAFKA__BROKERS", brokers.clone()),
        (
            "CAMTRAIL_KAFKA__DETECTIONS_TOPIC",
            kafka.detections_topic.clone(),
        ),
        ("CAMTRAIL_KAFKA__AUDIT_TOPIC", kafka.audit_topic.clone()),
        ("CAMTRAIL_KAFKA__ALERTS_TOPIC", kafka.alerts_topic.clone()),
        (
            "CAMTRAIL_KAFKA__DEAD_LETTER_TOPIC",
            kafka.dead_letter_topic.clone(),
        ),
        (
            "CAMTRAIL_CLICKHOUSE__URL",
            camtrail_testkit::clickhouse_url(),
        ),
        ("CAMTRAIL_CLICKHOUSE__DATABASE", clickhouse.database.clone()),
        (
            "CAMTRAIL_QUERY__REGISTRY_PATH",
            registry.display().to_string(),
        ),
        ("CAMTRAIL_ALERT__GROUP_ID", format!("{prefix}-alert")),
        ("CAMTRAIL_ALERT__AUTO_OFFSET_RESET", "earliest".to_string()),
        ("CAMTRAIL_ALERT__ENTRIES_RELOAD_MS", "500".to_string()),
        ("RUST_LOG", "info".to_string()),
    ];
    let mut role = spawn(&env, &log);
    let (_, ids) = wait_for(&store, &clickhouse, 2, &log).await;
    assert_eq!(ids, [hit_id(1), hit_id(2)]);
    // Stored, then relayed: both on the query node's stream (as exact and fuzzy).
    let mut kinds = Vec::new();
    while streamed.len() < 2 {
        let alert = stream.next_alert().await;
        assert_eq!(alert["entry_id"], "WL-A");
        let id = format!("WL-A/{}", alert["event_id"].as_str().expect("event id"));
        if streamed.insert(id) {
            kinds.push(alert["kind"].as_str().expect("kind").to_string());
        }
    }
    assert_eq!(streamed, BTreeSet::from([hit_id(1), hit_id(2)]));
    assert_eq!(kinds, ["exact", "fuzzy"]);

    // kill -9 mid-stream: more traffic is on its way, offsets may be uncommitted.
    let mut batch: Vec<Detection> = ordinary(2_000).collect();
    batch.push(detection(3, "粤B12345"));
    publisher.publish(&batch).await.expect("publish");
    role.kill().expect("kill -9");
    let _ = role.wait();

    // Phase 2, with the role down: two more planted reads and a resend of the first.
    let mut batch: Vec<Detection> = ordinary(3_000).collect();
    batch.push(detection(4, "粤B12345"));
    batch.push(detection(5, "粤B12375"));
    batch.push(detection(1, "粤B12345"));
    publisher.publish(&batch).await.expect("publish");
    let mut role = spawn(&env, &log);
    wait_for(&store, &clickhouse, 4, &log).await;
    // Every planted hit reaches the live stream at least once (a re-delivered record is
    // relayed again; the subscriber collapses it by event id). Read before the role stops:
    // it stores a batch's hits before it relays them, so a kill right after the store is
    // seen could cut off the relay this waits for.
    while streamed.len() < 4 {
        let alert = stream.next_alert().await;
        streamed.insert(format!(
            "WL-A/{}",
            alert["event_id"].as_str().expect("event id")
        ));
    }
    assert_eq!(
        streamed,
        BTreeSet::from([hit_id(1), hit_id(2), hit_id(3), hit_id(4)])
    );

    // Phase 3: a second member joins the group (the partitions are shared out), then the
    // first leaves (they all move to the second): planted reads from cameras spread over
    // every partition, before and after each change, are all stored.
    let spread = |n: u32| {
        let mut planted = detection(n, "粤B12345");
        planted.camera_id = format!("440300000013100{n:05}");
        planted
    };
    // Each member keeps some partitions across these rebalances, and librdkafka drops a
    // partition's forwarding to the role's own queue when it is revoked: the role must
    // forward it again on every assignment, or the partition is never read again.
    let log_b = dir.path().join("alert-b.log");
    let mut role_b = spawn(&env, &log_b);
    wait_log(&log_b, ASSIGNED, 1).await;
    wait_log(&log, ASSIGNED, 2).await;
    let mut batch: Vec<Detection> = ordinary(4_000).collect();
    batch.extend((10..16).map(spread));
    publisher.publish(&batch).await.expect("publish");
    wait_for(&store, &clickhouse, 10, &log_b).await;
    let _ = role.kill();
    let _ = role.wait();
    // B is given every partition once the group gives up on A (its session timeout).
    wait_log(&log_b, ASSIGNED, 2).await;
    let mut batch: Vec<Detection> = ordinary(5_000).collect();
    batch.extend((16..22).map(spread));
    publisher.publish(&batch).await.expect("publish");
    let (_, ids) = wait_for(&store, &clickhouse, 16, &log_b).await;
    let _ = role_b.kill();
    let _ = role_b.wait();
    let want: Vec<String> = [1, 2, 3, 4]
        .into_iter()
        .chain(10..22)
        .map(hit_id)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(ids, want, "two members, then one: every planted hit stored");

    // Counted once the roles are gone (rows and ids read in two queries must not race them).
    let (rows, ids) = stored(&store, &clickhouse).await;
    // 粤B12375: 4 read as 7? No: not a confusion of 粤B12345, so not a hit.
    assert_eq!(ids, want, "every planted hit, none lost across kill -9");
    assert_eq!(
        rows, 16,
        "each hit stored once, however often its read was delivered"
    );
    let _ = stop_node.send(());
    serving.await.expect("join").expect("query node");
    camtrail_testkit::drop_database(&clickhouse).await;
}
