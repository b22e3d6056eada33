//! Scene, series and co-travel through every front end of a query node (HTTP, gRPC, the
//! `camtrail` CLI) over the embedded store, and the refusals: every bad input gets a coded
//! 400 and leaves no audit record; a scope beyond the investigator's limits needs a
//! supervisor; a valid plate never seen is answered (empty) and audited like any search.

use std::process::Command;

use camtrail_model::{Detection, ObjectClass};
use camtrail_proto::v1;
use camtrail_proto::v1::query_client::QueryClient;
use camtrail_query::client::{ClientError, post_json};
use camtrail_storage::SightingStore;
use serde_json::{Value, json};

use crate::query_node::{SmallNode, event, small_node_with, with_token};

/// Ten cameras along one road, 300 m apart, west to east.
pub(crate) fn registry() -> String {
    let mut csv = String::from("camera_id,district,lat,lon,heading_deg,road,gateway_id\n");
    for i in 0..10 {
        csv.push_str(&format!(
            "{},Futian,22.540,{:.4},90,Shennan Rd,gw-001\n",
            camera(i),
            114.05 + f64::from(i) * 0.0029
        ));
    }
    csv
}

fn camera(i: u32) -> String {
    format!("440300000013100001{i:02}")
}

const TARGET: &str = "粤B00001";
const COMPANION: &str = "粤B00002";
const STRANGER: &str = "粤B00003";
const MIN: i64 = 60_000;

/// Two hours ago: the target drives the road, one camera every 2 minutes (18 minutes in
/// all); its companion 20 s behind at every camera; a stranger passes two of them.
pub(crate) fn detections(t0: i64) -> Vec<Detection> {
    let mut out = Vec::new();
    let mut n = 0;
    let mut push = |plate: &str, i: u32, at_ms: i64| {
        n += 1;
        let mut detection = event(n, ObjectClass::Vehicle, &camera(i), at_ms, false);
        detection.plate = plate.into();
        detection.subject_key = plate.into();
        out.push(detection);
    };
    for i in 0..10 {
        let at = t0 + i64::from(i) * 2 * MIN;
        push(TARGET, i, at);
        push(COMPANION, i, at + 20_000);
        if i == 3 || i == 4 {
            push(STRANGER, i, at - 10_000);
        }
    }
    out
}

fn circle(i: u32, radius_m: f64) -> Value {
    json!({"kind": "circle", "lon": 114.05 + f64::from(i) * 0.0029, "lat": 22.540, "radius_m": radius_m})
}

async fn audit_count(node: &SmallNode) -> usize {
    node.store
        .all_audit_records()
        .await
        .expect("audit records")
        .len()
}

fn refused_code(result: Result<Vec<u8>, ClientError>) -> (u16, String) {
    match result {
        Err(ClientError::Refused { status, code, .. }) => (status, code),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn purpose(body: Value) -> Value {
    let mut body = body;
    body["case"] = json!("CASE-17");
    body["reason"] = json!("scene test");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scene_series_and_cotravel_over_http_grpc_and_the_cli() {
    let t0 = camtrail_common::now_ms() - 2 * 3_600_000;
    let node = small_node_with(&registry(), detections(t0)).await;
    let (from, to) = (t0 - 10 * MIN, t0 + 50 * MIN);

    // HTTP.
    let body: Value = serde_json::from_slice(
        &post_json(
            &node.http,
            "/v1/scene",
            &node.investigator,
            &purpose(json!({"area": circle(3, 400.0), "from": from, "to": to})),
        )
        .await
        .expect("scene"),
    )
    .expect("json");
    let plates: Vec<&str> = body["vehicles"]
        .as_array()
        .expect("vehicles")
        .iter()
        .map(|v| v["key"].as_str().expect("key"))
        .collect();
    // Cameras 2, 3 and 4 lie within 400 m of camera 3. By first sighting there: the target
    // and its companion at camera 2, then the stranger at camera 3.
    assert_eq!(body["cameras"], 3, "{body}");
    assert_eq!(plates, [TARGET, COMPANION, STRANGER]);
    assert_eq!(
        body["vehicles"][0]["sightings"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(body["audit"]["seq"].is_u64());

    let series: Value = serde_json::from_slice(
        &post_json(
            &node.http,
            "/v1/series",
            &node.investigator,
            &purpose(json!({"scenes": [
                {"area": circle(0, 200.0), "from": t0 - 5 * MIN, "to": t0 + 5 * MIN},
                {"area": circle(9, 200.0), "from": t0 + 13 * MIN, "to": t0 + 23 * MIN},
            ]})),
        )
        .await
        .expect("series"),
    )
    .expect("json");
    let hits: Vec<&str> = series["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .map(|h| h["key"].as_str().expect("key"))
        .collect();
    // Both passed both scenes; the target nearer each window's middle.
    assert_eq!(hits, [TARGET, COMPANION], "{series}");

    let cotravel: Value = serde_json::from_slice(
        &post_json(
            &node.http,
            "/v1/cotravel",
            &node.investigator,
            &purpose(json!({"target": TARGET, "from": from, "to": to})),
        )
        .await
        .expect("cotravel"),
    )
    .expect("json");
    assert_eq!(cotravel["target_sightings"], 10, "{cotravel}");
    let companions = cotravel["companions"].as_array().expect("companions");
    assert_eq!(companions.len(), 1, "the stranger shared two cameras only");
    assert_eq!(companions[0]["key"], COMPANION);
    assert_eq!(companions[0]["shared_cameras"], 10);
    assert_eq!(companions[0]["evidence"][0]["dt_ms"], 20_000);

    // The target's track reports its stops: with a 1-minute threshold every 2-minute gap.
    let track: Value = serde_json::from_slice(
        &camtrail_query::client::get(
            &node.http,
            &format!(
                "/v1/track?plate=%E7%B2%A4B00001&from={from}&to={to}&case=CASE-17&reason=stops\
                 &stop_min_minutes=1"
            ),
            &node.investigator,
        )
        .await
        .expect("track"),
    )
    .expect("json");
    let stops = track["stops"].as_array().expect("stops");
    assert_eq!(stops.len(), 9, "{track}");
    assert_eq!(stops[0]["duration_ms"], 2 * MIN);
    assert_eq!(
        (stops[0]["before_n"].as_u64(), stops[0]["after_n"].as_u64()),
        (Some(1), Some(2))
    );

    // gRPC: the same answers.
    let mut grpc = QueryClient::connect(node.grpc.clone()).await.expect("grpc");
    let justification = Some(v1::Justification {
        case_id: "CASE-17".into(),
        reason: "scene test".into(),
    });
    let area = |i: u32, radius_m: f64| v1::Area {
        shape: Some(v1::area::Shape::Circle(v1::area::Circle {
            centre: Some(v1::LonLat {
                lon: 114.05 + f64::from(i) * 0.0029,
                lat: 22.540,
            }),
            radius_m,
        })),
    };
    let scene = grpc
        .scene_search(with_token(
            &node.investigator,
            v1::SceneSearchRequest {
                scene: Some(v1::Scene {
                    area: Some(area(3, 400.0)),
                    from_ms: from,
                    to_ms: to,
                }),
                justification: justification.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("grpc scene")
        .into_inner();
    assert_eq!(scene.cameras, 3);
    assert_eq!(
        scene
            .vehicles
            .iter()
            .map(|v| v.subject_key.as_str())
            .collect::<Vec<_>>(),
        plates
    );
    let series = grpc
        .series_search(with_token(
            &node.investigator,
            v1::SeriesSearchRequest {
                scenes: vec![
                    v1::Scene {
                        area: Some(area(0, 200.0)),
                        from_ms: t0 - 5 * MIN,
                        to_ms: t0 + 5 * MIN,
                    },
                    v1::Scene {
                        area: Some(area(9, 200.0)),
                        from_ms: t0 + 13 * MIN,
                        to_ms: t0 + 23 * MIN,
                    },
                ],
                justification: justification.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("grpc series")
        .into_inner();
    assert_eq!(
        series
            .hits
            .iter()
            .map(|h| h.subject_key.as_str())
            .collect::<Vec<_>>(),
        hits
    );
    let pair = grpc
        .co_travel(with_token(
            &node.investigator,
            v1::CoTravelRequest {
                target_plate: TARGET.into(),
                other_plate: STRANGER.into(),
                from_ms: from,
                to_ms: to,
                justification: justification.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("grpc pair")
        .into_inner();
    assert_eq!(pair.together, Some(false), "two cameras are not together");
    assert_eq!(pair.companions.len(), 1, "the evidence is shown anyway");
    assert_eq!(pair.companions[0].shared_cameras, 2);

    // The CLI, as an investigator would type it.
    let cli = |args: &[&str]| {
        let output = Command::new(env!("CARGO_BIN_EXE_camtrail"))
            .args(args)
            .args([
                "--case", "CASE-17", "--reason", "cli test", "--url", &node.http,
            ])
            .env("CAMTRAIL_TOKEN", &node.investigator)
            .output()
            .expect("run camtrail");
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    };
    let (from_text, to_text) = (from.to_string(), to.to_string());
    let table = cli(&[
        "scene",
        "--circle",
        "114.0587,22.540,400",
        "--from",
        &from_text,
        "--to",
        &to_text,
    ]);
    assert!(
        table.contains(TARGET) && table.contains(STRANGER),
        "{table}"
    );
    assert!(table.contains("3 of 3 vehicles at 3 cameras"), "{table}");
    let scene_a = format!("114.05,22.540,200,{},{}", t0 - 5 * MIN, t0 + 5 * MIN);
    let scene_b = format!(
        "{:.4},22.540,200,{},{}",
        114.05 + 9.0 * 0.0029,
        t0 + 13 * MIN,
        t0 + 23 * MIN
    );
    let table = cli(&["series", "--scene", &scene_a, "--scene", &scene_b]);
    assert!(
        table.contains("2 of 2 vehicles seen at >= 2 scenes"),
        "{table}"
    );
    let table = cli(&[
        "cotravel", "--plate", TARGET, "--from", &from_text, "--to", &to_text,
    ]);
    assert!(
        table.contains(COMPANION) && !table.contains(STRANGER),
        "{table}"
    );
    assert!(table.contains("10 shared cameras over 18 min"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_scopes_get_coded_refusals_and_leave_no_audit_record() {
    let t0 = camtrail_common::now_ms() - 2 * 3_600_000;
    let node = small_node_with(&registry(), detections(t0)).await;
    let (from, to) = (t0 - 10 * MIN, t0 + 50 * MIN);
    let before = audit_count(&node).await;
    let bow_tie = json!({"kind": "polygon", "ring": [
        [114.05, 22.53], [114.06, 22.55], [114.06, 22.53], [114.05, 22.55]
    ]});
    let scene_of = |area: Value| json!({"area": area, "from": from, "to": to});
    let cases: Vec<(&str, Value, u16, &str)> = vec![
        (
            "/v1/scene",
            scene_of(json!({"kind": "polygon", "ring": []})),
            400,
            "invalid_area",
        ),
        ("/v1/scene", scene_of(bow_tie.clone()), 400, "invalid_area"),
        ("/v1/scene", scene_of(circle(3, 0.0)), 400, "invalid_area"),
        (
            "/v1/scene",
            scene_of(circle(3, 1_000_000.0)),
            400,
            "area_too_large",
        ),
        (
            "/v1/scene",
            json!({"area": circle(3, 300.0), "from": to, "to": from}),
            400,
            "invalid_window",
        ),
        (
            "/v1/scene",
            json!({"from": from, "to": to}),
            400,
            "invalid_area",
        ),
        (
            "/v1/scene",
            json!({"area": {"kind": "hexagon"}, "from": from, "to": to}),
            400,
            "invalid_query",
        ),
        ("/v1/series", json!({"scenes": []}), 400, "invalid_scenes"),
        (
            "/v1/series",
            json!({"scenes": [scene_of(circle(1, 300.0))]}),
            400,
            "invalid_scenes",
        ),
        (
            "/v1/series",
            json!({"scenes": [scene_of(circle(1, 300.0)), scene_of(bow_tie)]}),
            400,
            "invalid_area",
        ),
        (
            "/v1/series",
            json!({"scenes": [scene_of(circle(1, 300.0)), scene_of(circle(2, 300.0))], "min_scenes": 3}),
            400,
            "invalid_scenes",
        ),
        (
            "/v1/cotravel",
            json!({"target": "粤B0000?", "from": from, "to": to}),
            400,
            "invalid_plate",
        ),
        (
            "/v1/cotravel",
            json!({"target": " · ", "from": from, "to": to}),
            400,
            "invalid_plate",
        ),
        (
            "/v1/cotravel",
            json!({"target": TARGET, "from": to, "to": from}),
            400,
            "invalid_window",
        ),
        (
            "/v1/cotravel",
            json!({"target": TARGET, "from": from, "to": to, "delta_s": 3600}),
            400,
            "invalid_query",
        ),
        // Beyond the investigator's radius (1,500 m): a supervisor's search.
        ("/v1/scene", scene_of(circle(3, 3_000.0)), 403, "forbidden"),
        (
            "/v1/scene",
            json!({"area": circle(3, 300.0), "from": from, "to": from + 3 * 3_600_000}),
            403,
            "forbidden",
        ),
    ];
    for (path, body, status, code) in cases {
        let refused = refused_code(
            post_json(&node.http, path, &node.investigator, &purpose(body.clone())).await,
        );
        assert_eq!(refused, (status, code.to_string()), "{path} {body}");
    }
    // Without a case, before anything else.
    let refused = refused_code(
        post_json(
            &node.http,
            "/v1/scene",
            &node.investigator,
            &scene_of(circle(3, 300.0)),
        )
        .await,
    );
    assert_eq!(refused, (400, "missing_case".to_string()));
    assert_eq!(audit_count(&node).await, before, "refusals are not audited");

    // A supervisor may search the wider area; a valid plate never seen is a search too.
    post_json(
        &node.http,
        "/v1/scene",
        &node.supervisor,
        &purpose(scene_of(circle(3, 3_000.0))),
    )
    .await
    .expect("supervisor scene");
    let unseen: Value = serde_json::from_slice(
        &post_json(
            &node.http,
            "/v1/cotravel",
            &node.investigator,
            &purpose(json!({"target": "粤Z99999", "from": from, "to": to})),
        )
        .await
        .expect("unseen plate"),
    )
    .expect("json");
    assert_eq!(unseen["target_sightings"], 0);
    assert_eq!(unseen["companions"], json!([]));
    let records = node.store.all_audit_records().await.expect("audit");
    assert_eq!(records.len(), before + 2);
    let scene_record = records
        .iter()
        .find(|r| r.entry.kind == "scene")
        .expect("scene audited");
    let parameters: Value =
        serde_json::from_str(&scene_record.entry.parameters_json).expect("parameters");
    assert_eq!(parameters["scene"]["area"]["radius_m"], 3_000.0);
    assert_eq!(parameters["scene"]["from_ms"], from);
    assert_eq!(parameters["scene"]["cameras"], 10);
    assert_eq!(scene_record.entry.role, "supervisor");
    let cotravel_record = records
        .iter()
        .find(|r| r.entry.kind == "cotravel")
        .expect("cotravel audited");
    let parameters: Value =
        serde_json::from_str(&cotravel_record.entry.parameters_json).expect("parameters");
    assert_eq!(parameters["target"], "粤Z99999");
    assert_eq!(parameters["min_cameras"], 4);
    assert_eq!(parameters["delta_ms"], 60_000);
    assert_eq!(cotravel_record.entry.result_count, 0);
}
