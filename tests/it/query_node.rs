//! The query node in process, over the embedded store (no services needed): drawing and
//! encoding a track map must not hold up the node's other requests; the gRPC and HTTP
//! contract of passes, snapshots and the audit listing (issue 13's hostile tests).

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use camtrail_city::{City, CityConfig};
use camtrail_model::audit::AuditEntry;
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};
use camtrail_proto::v1;
use camtrail_proto::v1::query_client::QueryClient;
use camtrail_query::auth::{Role, UsersFile, issue};
use camtrail_query::client::{ClientError, TrackFormat, TrackQueryArgs, get, track_path};
use camtrail_query::node::{QueryConfig, QueryNode};
use camtrail_sqlite::SqliteStore;
use camtrail_storage::AuditLog;

const PLATE: &str = "粤B12345";

/// Sightings of [`PLATE`] at every `step`-th camera, a minute apart, ending now: a track
/// that spans the city, so its map draws most of the registry's cameras.
fn sightings(city: &City, step: usize, now_ms: i64) -> Vec<Detection> {
    let cameras = city.registry.cameras();
    cameras
        .iter()
        .step_by(step)
        .enumerate()
        .map(|(n, camera)| {
            let mut id = [0u8; 16];
            id[..8].copy_from_slice(&(n as u64 + 1).to_be_bytes());
            id[15] = 0xA5;
            Detection {
                event_id: EventId(id),
                camera_id: camera.camera_id.clone(),
                captured_at_ms: now_ms - 3_600_000 + n as i64 * 60_000,
                object_class: ObjectClass::Vehicle,
                plate: PLATE.into(),
                plate_confidence: 0.95,
                subject_key: PLATE.into(),
                attributes: VehicleAttributes {
                    color: 1,
                    kind: 1,
                    ..VehicleAttributes::default()
                },
                plate_char_confidence: Vec::new(),
                bbox: [0, 0, 10, 10],
                thumbnail_jpeg: None,
                gateway_id: camera.gateway_id.clone(),
                received_at_ms: now_ms,
            }
        })
        .collect()
}

/// Start a query node over a fresh embedded database on a runtime of ONE worker thread of
/// its own (so anything that blocks a worker blocks the whole node); its HTTP address.
fn start_node(dir: &Path, city: &City, stop: tokio::sync::oneshot::Receiver<()>) -> SocketAddr {
    let registry_path = dir.join("cameras.csv");
    let users_path = dir.join("users.toml");
    let database = dir.join("camtrail.db");
    let detections = sightings(city, city.registry.len() / 40, camtrail_common::now_ms());
    let config = QueryConfig {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        registry_path,
        users_path,
        shutdown_delay_ms: 0,
        ..QueryConfig::default()
    };
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let store = SqliteStore::open(&database).expect("open store");
            store.write(detections).await.expect("write sightings");
            camtrail_storage::testsuite::open_case(&store, "C-MAP-1", &["map-reader"]).await;
            let audit = store.audit_log("query").await.expect("audit log");
            let node = QueryNode::bind(&config, store, audit, None)
                .await
                .expect("bind query node");
            addr_tx.send(node.http_addr().expect("addr")).expect("send");
            node.run_until_stopped(async move {
                let _ = stop.await;
            })
            .await
            .expect("query node");
        });
    });
    addr_rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the node started")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rendering_track_maps_does_not_block_other_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let city = City::generate(&CityConfig {
        seed: 5,
        cameras: 40_000,
        districts: 10,
        gateways: 40,
    });
    city.write_to_dir(dir.path()).expect("write cameras.csv");
    let investigator = issue("map-reader", Role::Investigator);
    let users = UsersFile {
        user: vec![investigator.entry],
    };
    std::fs::write(
        dir.path().join("users.toml"),
        toml::to_string(&users).expect("toml"),
    )
    .expect("users");
    let (stop, stopped) = tokio::sync::oneshot::channel();
    let addr = start_node(dir.path(), &city, stopped);
    let base = format!("http://{addr}");
    let now = camtrail_common::now_ms();
    let query = TrackQueryArgs {
        plate: PLATE.into(),
        from: (now - 2 * 3_600_000).to_string(),
        to: (now + 3_600_000).to_string(),
        case_id: "C-MAP-1".into(),
        reason: "map rendering test".into(),
        fuzzy: false,
    };
    let path = track_path(&query, TrackFormat::Png);
    let token = investigator.token;

    // How long one map takes when nothing else runs.
    let png = get(&base, &path, &token).await.expect("first map");
    let image = image::load_from_memory(&png).expect("a PNG");
    assert!(image.width() > 900 && image.height() >= 900);
    let mut alone = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        get(&base, &path, &token).await.expect("map");
        alone.push(started.elapsed());
    }
    alone.sort();
    let one_map = alone[1];

    // Four maps at once; meanwhile /healthz must keep answering promptly.
    let maps: Vec<_> = (0..4)
        .map(|_| {
            let (base, path, token) = (base.clone(), path.clone(), token.clone());
            tokio::spawn(async move { get(&base, &path, &token).await })
        })
        .collect();
    let mut slowest = Duration::ZERO;
    let mut probes = 0;
    while maps.iter().any(|map| !map.is_finished()) && probes < 200 {
        let started = Instant::now();
        let response = camtrail_testkit::http_get(addr, "/healthz").await;
        assert!(
            response
                .lines()
                .next()
                .is_some_and(|line| line.contains(" 200")),
            "{response}"
        );
        slowest = slowest.max(started.elapsed());
        probes += 1;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for map in maps {
        map.await.expect("join").expect("map under load");
    }
    let _ = stop.send(());
    assert!(
        probes >= 3,
        "only {probes} health probes ran while maps were drawn"
    );
    assert!(
        slowest * 2 < one_map,
        "/healthz took up to {slowest:?} while maps were drawn; one map takes {one_map:?}"
    );
    eprintln!(
        "one map {one_map:?}; {probes} /healthz probes during four maps, slowest {slowest:?}"
    );
}

/// 2025-11-26 12:00 UTC.
pub(crate) const T0: i64 = 1_764_158_400_000;
pub(crate) const CAMERA_A: &str = "44030000001310000001";
pub(crate) const CAMERA_B: &str = "44030000001310000002";

/// A query node over a fresh embedded database holding `detections`, with a two-camera
/// registry and an investigator (`ivy`) and a supervisor (`sam`).
pub(crate) struct SmallNode {
    pub(crate) http: String,
    pub(crate) grpc: String,
    pub(crate) investigator: String,
    pub(crate) supervisor: String,
    pub(crate) store: SqliteStore,
    _dir: tempfile::TempDir,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// The cases a small node's registry holds open, with investigator `ivy` assigned.
pub(crate) const SMALL_NODE_CASES: [&str; 3] = ["C-1", "CASE-9", "CASE-17"];

pub(crate) async fn small_node(detections: Vec<Detection>) -> SmallNode {
    small_node_with(
        &format!(
            "camera_id,district,lat,lon,heading_deg,road,gateway_id\n\
             {CAMERA_A},Futian,22.540,114.050,90,Shennan Rd,gw-001\n\
             {CAMERA_B},Futian,22.545,114.060,90,Shennan Rd,gw-001\n"
        ),
        detections,
    )
    .await
}

/// [`small_node`] with the registry `registry_csv`.
pub(crate) async fn small_node_with(registry_csv: &str, detections: Vec<Detection>) -> SmallNode {
    let dir = tempfile::tempdir().expect("tempdir");
    let registry_path = dir.path().join("cameras.csv");
    std::fs::write(&registry_path, registry_csv).expect("registry");
    let (investigator, supervisor) = (
        issue("ivy", Role::Investigator),
        issue("sam", Role::Supervisor),
    );
    let users_path = dir.path().join("users.toml");
    let users = UsersFile {
        user: vec![investigator.entry.clone(), supervisor.entry.clone()],
    };
    std::fs::write(&users_path, toml::to_string(&users).expect("toml")).expect("users");
    let config = QueryConfig {
        http_addr: "127.0.0.1:0".parse().expect("addr"),
        grpc_addr: "127.0.0.1:0".parse().expect("addr"),
        registry_path,
        users_path,
        shutdown_delay_ms: 0,
        // The fixed test instants lie in the past; keep them inside the ordinary bound.
        limits: camtrail_query::service::QueryLimits {
            supervisor_track_age_ms: 100 * 365 * 24 * 3_600_000,
            ..Default::default()
        },
        ..QueryConfig::default()
    };
    let store = SqliteStore::open(&dir.path().join("camtrail.db")).expect("open store");
    store.write(detections).await.expect("write detections");
    for case in SMALL_NODE_CASES {
        camtrail_storage::testsuite::open_case(&store, case, &["ivy"]).await;
    }
    let audit = store.audit_log("query").await.expect("audit log");
    let node = QueryNode::bind(&config, store.clone(), audit, None)
        .await
        .expect("bind query node");
    let http = format!("http://{}", node.http_addr().expect("addr"));
    let grpc = format!("http://{}", node.grpc_addr().expect("addr"));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(node.run_until_stopped(async move {
        let _ = stopped.await;
    }));
    SmallNode {
        http,
        grpc,
        investigator: investigator.token,
        supervisor: supervisor.token,
        store,
        _dir: dir,
        _stop: stop,
    }
}

pub(crate) fn event(n: u32, class: ObjectClass, camera: &str, at_ms: i64, jpeg: bool) -> Detection {
    let mut id = [0u8; 16];
    id[..4].copy_from_slice(&n.to_be_bytes());
    id[15] = 0x5A;
    let plate = if class == ObjectClass::Vehicle {
        format!("粤B{:05}", n % 100_000)
    } else {
        String::new()
    };
    Detection {
        event_id: EventId(id),
        camera_id: camera.into(),
        captured_at_ms: at_ms,
        object_class: class,
        subject_key: plate.clone(),
        plate,
        plate_confidence: if class == ObjectClass::Vehicle {
            0.9
        } else {
            0.0
        },
        attributes: VehicleAttributes::default(),
        plate_char_confidence: Vec::new(),
        bbox: [1, 2, 3, 4],
        thumbnail_jpeg: jpeg.then(|| vec![0xFF, 0xD8, 0xFF, 0xD9]),
        gateway_id: "gw-001".into(),
        received_at_ms: at_ms + 100,
    }
}

/// `request` with `authorization: Bearer <token>`.
pub(crate) fn with_token<T>(token: &str, request: T) -> tonic::Request<T> {
    let mut request = tonic::Request::new(request);
    request.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata"),
    );
    request
}

fn justification() -> Option<v1::Justification> {
    Some(v1::Justification {
        case_id: "CASE-9".into(),
        reason: "hostile test".into(),
    })
}

async fn grpc_passes(
    grpc: &mut QueryClient<tonic::transport::Channel>,
    token: &str,
    request: v1::PassesRequest,
) -> Result<Vec<v1::Sighting>, tonic::Status> {
    let mut stream = grpc.passes(with_token(token, request)).await?.into_inner();
    let mut sightings = Vec::new();
    while let Some(sighting) = stream.message().await? {
        sightings.push(sighting);
    }
    Ok(sightings)
}

/// The audit records of `user` (newest first), read over gRPC by the supervisor.
async fn audit_of(
    grpc: &mut QueryClient<tonic::transport::Channel>,
    node: &SmallNode,
    user: &str,
) -> Vec<v1::AuditRecord> {
    grpc.list_audit(with_token(
        &node.supervisor,
        v1::ListAuditRequest {
            user: user.into(),
            ..Default::default()
        },
    ))
    .await
    .expect("list audit")
    .into_inner()
    .records
}

/// Issue 13, fault 3: `Passes` with an object class returns only that class, and the
/// class is in the audit record's parameters.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_passes_filter_by_object_class_and_audit_it() {
    let detections = vec![
        event(1, ObjectClass::Vehicle, CAMERA_A, T0 + 1_000, false),
        event(2, ObjectClass::Person, CAMERA_A, T0 + 2_000, false),
        event(3, ObjectClass::NonMotor, CAMERA_A, T0 + 3_000, false),
        event(4, ObjectClass::Vehicle, CAMERA_A, T0 + 4_000, false),
        event(5, ObjectClass::Person, CAMERA_A, T0 + 5_000, false),
    ];
    let node = small_node(detections).await;
    let mut grpc = QueryClient::connect(node.grpc.clone()).await.expect("grpc");
    let ask = |class: v1::ObjectClass, limit: u32, cursor: String| v1::PassesRequest {
        camera_ids: vec![CAMERA_A.into()],
        from_ms: T0,
        to_ms: T0 + 60_000,
        object_class: class as i32,
        limit,
        cursor,
        justification: justification(),
        ..Default::default()
    };
    let classes = |sightings: &[v1::Sighting]| -> Vec<(u8, i32)> {
        sightings
            .iter()
            .map(|s| (s.event_id[3], s.object_class))
            .collect()
    };
    let person = v1::ObjectClass::Person as i32;
    let persons = grpc_passes(
        &mut grpc,
        &node.investigator,
        ask(v1::ObjectClass::Person, 0, String::new()),
    )
    .await
    .expect("persons");
    assert_eq!(classes(&persons), vec![(2, person), (5, person)]);
    let non_motor = grpc_passes(
        &mut grpc,
        &node.investigator,
        ask(v1::ObjectClass::NonMotor, 0, String::new()),
    )
    .await
    .expect("non-motor");
    assert_eq!(
        classes(&non_motor),
        vec![(3, v1::ObjectClass::NonMotor as i32)]
    );
    // Paging within a class: a page of one, then the rest after its cursor.
    let first = grpc_passes(
        &mut grpc,
        &node.investigator,
        ask(v1::ObjectClass::Person, 1, String::new()),
    )
    .await
    .expect("first page");
    assert_eq!(classes(&first), vec![(2, person)]);
    let rest = grpc_passes(
        &mut grpc,
        &node.investigator,
        ask(v1::ObjectClass::Person, 1, first[0].cursor.clone()),
    )
    .await
    .expect("second page");
    assert_eq!(classes(&rest), vec![(5, person)]);
    let all = grpc_passes(
        &mut grpc,
        &node.investigator,
        ask(v1::ObjectClass::Unspecified, 0, String::new()),
    )
    .await
    .expect("all classes");
    assert_eq!(all.len(), 5);

    let records = audit_of(&mut grpc, &node, "ivy").await;
    let passes: Vec<serde_json::Value> = records
        .iter()
        .filter(|r| r.kind == "passes")
        .map(|r| serde_json::from_str(&r.parameters_json).expect("parameters"))
        .collect();
    assert_eq!(passes.len(), 5);
    let mut audited: Vec<&str> = passes
        .iter()
        .map(|p| p["object_class"].as_str().expect("object_class audited"))
        .collect();
    audited.sort_unstable();
    assert_eq!(
        audited,
        vec!["all", "non_motor", "person", "person", "person"]
    );
}

/// Issue 13, fault 6: `GetSnapshot` returns the event's capture time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_get_snapshot_returns_the_capture_time() {
    let at = T0 + 12_345;
    let node = small_node(vec![event(7, ObjectClass::Vehicle, CAMERA_A, at, true)]).await;
    let mut grpc = QueryClient::connect(node.grpc.clone()).await.expect("grpc");
    let snapshot = grpc
        .get_snapshot(with_token(
            &node.investigator,
            v1::GetSnapshotRequest {
                event_id: event(7, ObjectClass::Vehicle, CAMERA_A, at, true)
                    .event_id
                    .as_bytes()
                    .to_vec(),
                justification: justification(),
            },
        ))
        .await
        .expect("snapshot")
        .into_inner();
    assert_eq!(snapshot.jpeg, vec![0xFF, 0xD8, 0xFF, 0xD9]);
    assert_eq!(snapshot.captured_at_ms, at);
}

/// Issue 13, fault 6: `Passes` pages are 1–10,000 on gRPC and HTTP as query.proto says;
/// anything else is `invalid_limit`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_pages_are_1_to_10000_on_grpc_and_http() {
    let node = small_node(vec![event(
        1,
        ObjectClass::Vehicle,
        CAMERA_A,
        T0 + 1,
        false,
    )])
    .await;
    let mut grpc = QueryClient::connect(node.grpc.clone()).await.expect("grpc");
    let ask = |limit: u32| v1::PassesRequest {
        camera_ids: vec![CAMERA_A.into()],
        from_ms: T0,
        to_ms: T0 + 60_000,
        limit,
        justification: justification(),
        ..Default::default()
    };
    for limit in [1, 5_000, 5_001, 10_000] {
        let got = grpc_passes(&mut grpc, &node.investigator, ask(limit)).await;
        let got = got.unwrap_or_else(|status| panic!("limit {limit}: {status:?}"));
        assert_eq!(got.len(), 1, "limit {limit}");
    }
    let refused = grpc_passes(&mut grpc, &node.investigator, ask(10_001))
        .await
        .expect_err("limit above 10,000");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused
            .message()
            .starts_with("invalid_limit: limit must be 1-10000"),
        "{}",
        refused.message()
    );

    let path = |limit: &str| {
        format!(
            "/v1/passes?cameras={CAMERA_A}&from={T0}&to={}&case=C-1&reason=x&limit={limit}",
            T0 + 60_000
        )
    };
    let body = get(&node.http, &path("10000"), &node.investigator)
        .await
        .expect("limit 10,000 over HTTP");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(body["passes"].as_array().map(Vec::len), Some(1));
    for limit in ["0", "10001"] {
        match get(&node.http, &path(limit), &node.investigator).await {
            Err(ClientError::Refused { status, code, .. }) => {
                assert_eq!(
                    (status, code.as_str()),
                    (400, "invalid_limit"),
                    "limit {limit}"
                )
            }
            other => panic!("limit {limit}: {other:?}"),
        }
    }
}

/// Issue 13, fault 5: the query gRPC service answers undecodable bodies INVALID_ARGUMENT.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn undecodable_query_requests_are_invalid_argument() {
    let node = small_node(vec![event(1, ObjectClass::Vehicle, CAMERA_A, T0, false)]).await;
    for method in ["/camtrail.v1.Query/ListAudit", "/camtrail.v1.Query/Passes"] {
        crate::raw_grpc::assert_garbage_is_invalid_argument(&node.grpc, method, |request| {
            with_token(&node.supervisor, request)
        })
        .await;
    }
}

/// Issue 13, fault 8: a plate, subject key or reason holding a bidirectional override or a
/// zero-width character is refused (it would display as another value in the audit record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hidden_formatting_in_query_text_is_refused() {
    let node = small_node(vec![event(1, ObjectClass::Vehicle, CAMERA_A, T0, false)]).await;
    let window = format!("from={T0}&to={}", T0 + 60_000);
    let cases = [
        // 粤B + RIGHT-TO-LEFT OVERRIDE + 54321 displays as 粤B12345.
        (
            format!("plate=%E7%B2%A4B%E2%80%AE54321&{window}&case=C-1&reason=x"),
            "invalid_plate",
        ),
        (
            format!("plate=%E7%B2%A4B1%E2%80%8B2345&{window}&case=C-1&reason=x"),
            "invalid_plate",
        ),
        (
            format!("subject_key=K%E2%81%A7x&{window}&case=C-1&reason=x"),
            "invalid_subject_key",
        ),
        (
            format!("plate=B12345&{window}&case=C-1&reason=theft%E2%80%AE"),
            "invalid_reason",
        ),
    ];
    for (query, expected) in cases {
        match get(
            &node.http,
            &format!("/v1/track?{query}"),
            &node.investigator,
        )
        .await
        {
            Err(ClientError::Refused { status, code, .. }) => {
                assert_eq!((status, code.as_str()), (400, expected), "{query}")
            }
            other => panic!("{query}: {other:?}"),
        }
    }
    // A plate typed with ordinary separators still works.
    get(
        &node.http,
        &format!("/v1/track?plate=B%2012345&{window}&case=C-1&reason=x"),
        &node.investigator,
    )
    .await
    .expect("a plain plate");
}

/// Issue 13, fault 2: an audit window holding more records than one page, behind older
/// records, is still found, newest first; and reading the audit log is itself audited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_listing_finds_new_records_behind_many_old_ones_and_is_audited() {
    let node = small_node(Vec::new()).await;
    // 1,200 records of one investigator in four chains, 100 sharing each instant: the
    // newest 300 (the last three instants) come after 900 older ones.
    let logs: Vec<_> = futures_join((0..4).map(|n| {
        let store = node.store.clone();
        async move { store.audit_log(&format!("junk-{n}")).await.expect("log") }
    }))
    .await;
    let appends = logs.into_iter().enumerate().map(|(chain, log)| async move {
        for i in 0..300u64 {
            let n = i * 4 + chain as u64;
            log.append(AuditEntry {
                at_ms: T0 + (n / 100) as i64,
                user: "mallory".into(),
                role: "investigator".into(),
                case_id: format!("JUNK-{}", n % 3),
                reason: "noise".into(),
                kind: if n.is_multiple_of(2) {
                    "track"
                } else {
                    "passes"
                }
                .into(),
                parameters_json: format!("{{\"n\":{n}}}"),
                result_count: n,
                client_addr: "127.0.0.1:1".into(),
            })
            .await
            .expect("append");
        }
    });
    futures_join(appends).await;

    let mut grpc = QueryClient::connect(node.grpc.clone()).await.expect("grpc");
    let window = grpc
        .list_audit(with_token(
            &node.supervisor,
            v1::ListAuditRequest {
                user: "mallory".into(),
                from_ms: T0 + 9,
                to_ms: T0 + 12,
                ..Default::default()
            },
        ))
        .await
        .expect("window")
        .into_inner()
        .records;
    assert_eq!(window.len(), 300, "the newest three instants");
    assert!(
        window
            .iter()
            .all(|r| r.at_ms >= T0 + 9 && r.at_ms < T0 + 12)
    );

    // Without a window: newest first, so the newest records are on the first page.
    let body = get(&node.http, "/v1/audit?user=mallory", &node.supervisor)
        .await
        .expect("http audit");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let records = body["records"].as_array().expect("records");
    assert_eq!(records.len(), 1_000, "the default page");
    let times: Vec<i64> = records
        .iter()
        .map(|r| r["at_ms"].as_i64().expect("at_ms"))
        .collect();
    assert_eq!(times.first(), Some(&(T0 + 11)), "newest first");
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first");

    // Both reads above were audited, with what was looked at and how much came back.
    let reads: Vec<v1::AuditRecord> = audit_of(&mut grpc, &node, "sam")
        .await
        .into_iter()
        .filter(|r| r.kind == "audit_read")
        .collect();
    assert!(reads.len() >= 2, "{reads:?}");
    let parameters: Vec<serde_json::Value> = reads
        .iter()
        .map(|r| serde_json::from_str(&r.parameters_json).expect("parameters"))
        .collect();
    assert!(
        parameters
            .iter()
            .any(|p| p["user"] == "mallory" && p["from_ms"] == T0 + 9 && p["to_ms"] == T0 + 12),
        "{parameters:?}"
    );
    assert!(
        reads.iter().any(|r| r.result_count == 300)
            && reads.iter().any(|r| r.result_count == 1_000),
        "{reads:?}"
    );
    assert!(
        reads.iter().all(|r| r.case_id == "audit-review"),
        "{reads:?}"
    );

    // Paging over HTTP, 333 at a time (pages end inside an instant): every record once,
    // newest first, and the last page has an empty cursor.
    let mut seen: Vec<(i64, String, u64)> = Vec::new();
    let mut cursor = String::new();
    let mut pages = 0;
    loop {
        let body = get(
            &node.http,
            &format!("/v1/audit?user=mallory&limit=333&cursor={cursor}"),
            &node.supervisor,
        )
        .await
        .expect("page");
        let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
        seen.extend(
            body["records"]
                .as_array()
                .expect("records")
                .iter()
                .map(|r| {
                    (
                        r["at_ms"].as_i64().expect("at_ms"),
                        r["node_id"].as_str().expect("node").to_string(),
                        r["seq"].as_u64().expect("seq"),
                    )
                }),
        );
        pages += 1;
        cursor = body["next_cursor"]
            .as_str()
            .expect("next_cursor")
            .to_string();
        if cursor.is_empty() {
            break;
        }
        assert!(pages < 10, "the cursor does not end");
    }
    assert_eq!(pages, 4);
    assert_eq!(seen.len(), 1_200);
    assert!(
        seen.windows(2).all(|w| w[0] > w[1]),
        "newest first, none twice"
    );

    // Over gRPC, by kind: 600 track records in pages of 250.
    let mut kinds = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = grpc
            .list_audit(with_token(
                &node.supervisor,
                v1::ListAuditRequest {
                    user: "mallory".into(),
                    kind: "track".into(),
                    limit: 250,
                    cursor: cursor.clone(),
                    ..Default::default()
                },
            ))
            .await
            .expect("grpc page")
            .into_inner();
        assert!(page.audit_id.starts_with("query/"), "{}", page.audit_id);
        kinds.push(page.records.len());
        assert!(page.records.iter().all(|r| r.kind == "track"));
        if page.next_cursor.is_empty() {
            break;
        }
        cursor = page.next_cursor;
    }
    assert_eq!(kinds, vec![250, 250, 100]);

    // Bounded pages and cursors that no page handed out are refused with their code.
    for (query, expected) in [
        ("user=mallory&limit=10001", (400, "invalid_limit")),
        ("user=mallory&limit=0", (400, "invalid_limit")),
        ("user=mallory&cursor=not-a-cursor", (400, "invalid_cursor")),
        ("kind=track", (400, "missing_filter")),
        ("user=mallory&from=20&to=10", (400, "invalid_window")),
        // The filter is written into the read's own audit record: no hidden text there.
        ("user=mall%E2%80%AEory", (400, "invalid_query")),
        ("case=C-1&kind=tr%E2%80%8Back", (400, "invalid_query")),
    ] {
        match get(&node.http, &format!("/v1/audit?{query}"), &node.supervisor).await {
            Err(ClientError::Refused { status, code, .. }) => {
                assert_eq!((status, code.as_str()), expected, "{query}")
            }
            other => panic!("{query}: {other:?}"),
        }
    }
    let refused = grpc
        .list_audit(with_token(
            &node.supervisor,
            v1::ListAuditRequest {
                user: "mallory".into(),
                limit: 10_001,
                ..Default::default()
            },
        ))
        .await
        .expect_err("limit above 10,000");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);
    assert!(
        refused.message().starts_with("invalid_limit:"),
        "{}",
        refused.message()
    );
    match get(&node.http, "/v1/audit?user=mallory", &node.investigator).await {
        Err(ClientError::Refused { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (403, "forbidden"))
        }
        other => panic!("an investigator read the audit log: {other:?}"),
    }
}

/// Run `futures` concurrently; their outputs in order.
async fn futures_join<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut outputs = Vec::with_capacity(handles.len());
    for handle in handles {
        outputs.push(handle.await.expect("join"));
    }
    outputs
}

/// Vehicle attributes over the embedded store: passes carry them on gRPC and HTTP, the
/// filters apply in storage (a page of one is the first match, not an empty page) and are
/// audited, and unknown values are refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passes_carry_and_filter_vehicle_attributes_over_sqlite() {
    let with = |n: u32, at_ms: i64, plate_color: u8, direction: u8, brand: &str| {
        let mut event = event(n, ObjectClass::Vehicle, CAMERA_A, at_ms, false);
        event.attributes = VehicleAttributes {
            color: 6,
            kind: 1,
            plate_color,
            direction,
            speed_kmh: 50.0,
            brand: brand.into(),
        };
        event.plate_char_confidence = vec![80, 81];
        event
    };
    let node = small_node(vec![
        with(1, T0 + 1_000, 1, 3, "大众"),
        with(2, T0 + 2_000, 5, 3, "比亚迪"),
        event(3, ObjectClass::Vehicle, CAMERA_A, T0 + 3_000, false),
        with(4, T0 + 4_000, 5, 7, "比亚迪"),
    ])
    .await;
    let mut grpc = QueryClient::connect(node.grpc.clone()).await.expect("grpc");
    let ask =
        |plate_color: v1::PlateColor, direction: v1::Direction, limit: u32| v1::PassesRequest {
            camera_ids: vec![CAMERA_A.into()],
            from_ms: T0,
            to_ms: T0 + 60_000,
            plate_color: plate_color as i32,
            direction: direction as i32,
            limit,
            justification: justification(),
            ..Default::default()
        };
    let numbers = |sightings: &[v1::Sighting]| -> Vec<u8> {
        sightings.iter().map(|s| s.event_id[3]).collect()
    };
    let green = grpc_passes(
        &mut grpc,
        &node.investigator,
        ask(v1::PlateColor::Green, v1::Direction::Unspecified, 0),
    )
    .await
    .expect("green plates");
    assert_eq!(numbers(&green), vec![2, 4]);
    assert_eq!(green[0].vehicle_color, v1::VehicleColor::Blue as i32);
    assert_eq!(green[0].vehicle_brand, "比亚迪");
    assert_eq!(green[0].plate_char_confidence, vec![80, 81]);
    let westward = grpc_passes(
        &mut grpc,
        &node.investigator,
        ask(v1::PlateColor::Green, v1::Direction::West, 1),
    )
    .await
    .expect("green and westward");
    assert_eq!(
        numbers(&westward),
        vec![4],
        "filtered before the page is cut"
    );
    let all = grpc_passes(
        &mut grpc,
        &node.investigator,
        ask(v1::PlateColor::Unspecified, v1::Direction::Unspecified, 0),
    )
    .await
    .expect("all");
    assert_eq!(numbers(&all), vec![1, 2, 3, 4]);
    assert_eq!(all[2].plate_color, v1::PlateColor::Unspecified as i32);
    assert!(all[2].vehicle_brand.is_empty() && all[2].plate_char_confidence.is_empty());
    let mut unknown = ask(v1::PlateColor::Unspecified, v1::Direction::Unspecified, 0);
    unknown.vehicle_type = 42;
    let refused = grpc_passes(&mut grpc, &node.investigator, unknown)
        .await
        .expect_err("unknown type");
    assert_eq!(refused.code(), tonic::Code::InvalidArgument);

    let path = |extra: &str| {
        format!(
            "/v1/passes?cameras={CAMERA_A}&from={T0}&to={}&case=CASE-9&reason=x{extra}",
            T0 + 60_000
        )
    };
    let body = get(
        &node.http,
        &path("&vehicle_brand=%E5%A4%A7%E4%BC%97&direction=east"),
        &node.investigator,
    )
    .await
    .expect("http passes");
    let body: serde_json::Value = serde_json::from_slice(&body).expect("json");
    let passes = body["passes"].as_array().expect("passes");
    assert_eq!(passes.len(), 1);
    assert_eq!(passes[0]["plate_color"], "blue");
    assert_eq!(passes[0]["vehicle_type"], "car");
    assert_eq!(passes[0]["speed_kmh"], 50.0);
    match get(&node.http, &path("&plate_color=pink"), &node.investigator).await {
        Err(ClientError::Refused { status, code, .. }) => {
            assert_eq!((status, code.as_str()), (400, "invalid_class"));
        }
        other => panic!("pink plates answered: {other:?}"),
    }

    // The CLI: `camtrail passes` with filters, as a table.
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_camtrail"));
    command
        .args(["passes", "--cameras", CAMERA_A, "--from"])
        .arg(T0.to_string())
        .arg("--to")
        .arg((T0 + 60_000).to_string())
        .args([
            "--case",
            "CASE-9",
            "--reason",
            "cli",
            "--plate-color",
            "green",
        ])
        .args(["--direction", "west", "--url", &node.http, "--token"])
        .arg(&node.investigator);
    let output = tokio::task::spawn_blocking(move || command.output())
        .await
        .expect("join")
        .expect("camtrail passes");
    let table = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{table} {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        table.contains("blue car, green plate, west 50 km/h, 比亚迪") && table.contains("1 passes"),
        "{table}"
    );

    let records = audit_of(&mut grpc, &node, "ivy").await;
    let audited: Vec<serde_json::Value> = records
        .iter()
        .filter(|r| r.kind == "passes")
        .map(|r| serde_json::from_str(&r.parameters_json).expect("parameters"))
        .collect();
    assert_eq!(audited.len(), 5, "answered calls only");
    assert!(
        audited
            .iter()
            .any(|p| p["plate_color"] == "green" && p["direction"] == "west")
    );
    assert!(
        audited
            .iter()
            .any(|p| p["vehicle_brand"] == "大众" && p["direction"] == "east")
    );
}
