//! The query node in process, over the embedded store (no services needed): drawing and
//! encoding a track map must not hold up the node's other requests.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use camtrail_city::{City, CityConfig};
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};
use camtrail_query::auth::{Role, UsersFile, issue};
use camtrail_query::client::{TrackFormat, TrackQueryArgs, get, track_path};
use camtrail_query::node::{QueryConfig, QueryNode};
use camtrail_sqlite::SqliteStore;

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
                attributes: VehicleAttributes { color: 1, kind: 1 },
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
