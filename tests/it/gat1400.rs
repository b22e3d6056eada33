//! GA/T 1400 view-library ingest as a platform uses it: HTTP with Digest (driven by the
//! independent `digest_auth` client), against a real ingest node in front of the real
//! Kafka broker, and end to end through `camtrail serve` and the query API.

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use camtrail_ingest::gat1400::Gat1400Config;
use camtrail_ingest::gat1400::devices::{DEVICES_HEADER, device_line};
use camtrail_proto::gat1400::{self, ResponseStatusListEnvelope, encode};
use camtrail_proto::v1;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::ingest::support::{self, CAMERA_A, GATEWAY_A, TestNode};

pub const PASSWORD: &str = "correct horse battery staple";
const REALM: &str = "camtrail";

/// One HTTP answer.
pub struct Answer {
    pub status: StatusCode,
    pub headers: hyper::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)))
    }

    /// The per-object `(StatusCode, StatusString)` of a list answer.
    pub fn statuses(&self) -> Vec<(i32, String)> {
        let list: ResponseStatusListEnvelope = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&self.body)));
        list.ResponseStatusListObject
            .ResponseStatusObject
            .into_iter()
            .map(|s| (s.StatusCode, s.StatusString))
            .collect()
    }
}

/// A platform: Digest credentials, a remembered challenge (nonce reused with growing nc,
/// as RFC 7616 clients do), and the last Authorization header it sent.
pub struct Platform {
    base: String,
    device: String,
    password: String,
    challenge: Option<digest_auth::WwwAuthenticateHeader>,
    pub last_authorization: Option<String>,
    http: Client<HttpConnector, Full<Bytes>>,
}

impl Platform {
    pub fn new(addr: SocketAddr, device: &str, password: &str) -> Self {
        Self {
            base: format!("http://{addr}"),
            device: device.into(),
            password: password.into(),
            challenge: None,
            last_authorization: None,
            http: Client::builder(TokioExecutor::new()).build_http(),
        }
    }

    /// One request as given (no retry).
    pub async fn send(
        &self,
        method: &str,
        path: &str,
        authorization: Option<&str>,
        body: Vec<u8>,
    ) -> Answer {
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("content-type", "application/VIID+JSON")
            .header("User-Identify", &self.device);
        if let Some(authorization) = authorization {
            request = request.header("authorization", authorization);
        }
        let request = request.body(Full::new(Bytes::from(body))).expect("request");
        let response = tokio::time::timeout(Duration::from_secs(60), self.http.request(request))
            .await
            .expect("answer within 60 s")
            .expect("HTTP exchange");
        let (parts, body) = response.into_parts();
        let body = body.collect().await.expect("body").to_bytes().to_vec();
        Answer {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    }

    /// POST with Digest: answer a challenge once (or a stale nonce) and resend.
    pub async fn post(&mut self, path: &str, body: Vec<u8>) -> Answer {
        for _ in 0..3 {
            let authorization = match self.challenge.as_mut() {
                Some(challenge) => {
                    let context = digest_auth::AuthContext::new_post(
                        self.device.as_str(),
                        self.password.as_str(),
                        path,
                        Some(body.as_slice()),
                    );
                    Some(
                        challenge
                            .respond(&context)
                            .expect("digest")
                            .to_header_string(),
                    )
                }
                None => None,
            };
            self.last_authorization.clone_from(&authorization);
            let answer = self
                .send("POST", path, authorization.as_deref(), body.clone())
                .await;
            if answer.status != StatusCode::UNAUTHORIZED {
                return answer;
            }
            let fresh = answer
                .headers
                .get("www-authenticate")
                .and_then(|v| v.to_str().ok())
                .map(|v| digest_auth::parse(v).expect("a challenge we can read"));
            let retry = authorization.is_none() || fresh.as_ref().is_some_and(|c| c.stale);
            match fresh {
                Some(fresh) if retry => self.challenge = Some(fresh),
                _ => return answer,
            }
        }
        panic!("no answer but 401 after three tries");
    }

    pub async fn register(&mut self) -> Answer {
        let body = serde_json::json!({"RegisterObject": {"DeviceID": self.device}});
        self.post("/VIID/System/Register", body.to_string().into_bytes())
            .await
    }
}

/// The node's device file for `device` publishing as `gateway`, zone `zone` ("" = none).
pub fn devices_file(dir: &std::path::Path, entries: &[(&str, &str, &str)]) -> std::path::PathBuf {
    let mut text = format!("{DEVICES_HEADER}\n");
    for (device, gateway, zone) in entries {
        text.push_str(&device_line(device, gateway, zone, REALM, PASSWORD));
        text.push('\n');
    }
    let path = dir.join("gat1400_devices.csv");
    std::fs::write(&path, text).expect("write devices");
    path
}

/// A small valid JPEG (`width`×`height`).
fn jpeg(width: u32, height: u32) -> Vec<u8> {
    let image = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([x as u8, y as u8, 90]));
    let mut out = std::io::Cursor::new(Vec::new());
    image
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .expect("encode jpeg");
    out.into_inner()
}

fn record(n: u32, camera: &str, captured_at_ms: i64) -> encode::MotorVehicleOut {
    let event = v1::DetectionEvent {
        camera_id: camera.into(),
        ..support::event(n, camera)
    };
    encode::motor_vehicle(
        &v1::DetectionEvent {
            captured_at_ms,
            ..event
        },
        chrono_tz::Asia::Shanghai,
    )
}

fn body(records: Vec<serde_json::Value>) -> Vec<u8> {
    serde_json::json!({"MotorVehicleListObject": {"MotorVehicleObject": records}})
        .to_string()
        .into_bytes()
}

fn value(record: &encode::MotorVehicleOut) -> serde_json::Value {
    serde_json::to_value(record).expect("record json")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_get_codes_nothing_rejected_is_stored_and_the_node_keeps_serving() {
    let dir = tempfile::tempdir().expect("dir");
    let devices = devices_file(
        dir.path(),
        &[
            ("platform-a", GATEWAY_A, "Asia/Shanghai"),
            ("platform-nozone", GATEWAY_A, ""),
        ],
    );
    let node = TestNode::start_with("gat1400_bad_inputs", |config| {
        config.gat1400 = Gat1400Config {
            enabled: true,
            addr: "127.0.0.1:0".parse().expect("addr"),
            devices_path: devices.clone(),
            max_body_bytes: 16 * 1024 * 1024,
            ..Gat1400Config::default()
        };
    })
    .await;
    let addr = node.gat1400.expect("GA/T 1400 enabled");
    let now = camtrail_common::now_ms() - 60_000;
    let good = |n: u32| value(&record(n, CAMERA_A, now));

    // The clock answers without credentials.
    let platform = Platform::new(addr, "platform-a", PASSWORD);
    let time = platform
        .send("GET", "/VIID/System/Time", None, Vec::new())
        .await;
    assert_eq!(time.status, StatusCode::OK);
    assert_eq!(time.json()["SystemTimeObject"]["TimeZone"], "Asia/Shanghai");

    // Unregistered: records are refused with a reason, nothing read.
    let mut platform = Platform::new(addr, "platform-a", PASSWORD);
    let refused = platform
        .post("/VIID/MotorVehicles", body(vec![good(1)]))
        .await;
    assert_eq!(refused.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&refused.body).contains("not_registered"));

    // A wrong password, and a device nobody configured.
    let mut wrong = Platform::new(addr, "platform-a", "guess");
    let answer = wrong.register().await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&answer.body).contains("wrong_password"));
    let mut stranger = Platform::new(addr, "platform-x", PASSWORD);
    let answer = stranger.register().await;
    assert_eq!(answer.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&answer.body).contains("unknown_device"));

    assert_eq!(platform.register().await.status, StatusCode::OK);

    // A replayed request (same nonce, same nc) is refused even though it was valid once.
    let first = platform
        .post("/VIID/MotorVehicles", body(vec![good(2)]))
        .await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(first.statuses(), vec![(0, "OK".to_string())]);
    let replayed = platform
        .send(
            "POST",
            "/VIID/MotorVehicles",
            platform.last_authorization.as_deref(),
            body(vec![good(2)]),
        )
        .await;
    assert_eq!(replayed.status, StatusCode::UNAUTHORIZED);
    assert!(String::from_utf8_lossy(&replayed.body).contains("replayed_nonce"));

    // Malformed JSON, and a body over the limit (20 MB).
    let malformed = platform
        .post(
            "/VIID/MotorVehicles",
            b"{\"MotorVehicleListObject\": [".to_vec(),
        )
        .await;
    assert_eq!(malformed.status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed.json()["ResponseStatusObject"]["StatusCode"], 7);
    let huge = platform
        .post("/VIID/MotorVehicles", vec![b' '; 20 * 1024 * 1024])
        .await;
    assert_eq!(huge.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(
        String::from_utf8_lossy(&huge.body).contains("payload_too_large"),
        "{}",
        String::from_utf8_lossy(&huge.body)
    );

    // One request mixing every per-object problem with good records.
    let mut ten_mb_image = good(10);
    ten_mb_image["SubImageList"] = serde_json::json!({"SubImageInfoObject": [{
        "Type": "01", "FileFormat": "Jpeg",
        "Data": base64::engine::general_purpose::STANDARD.encode(vec![0xFFu8; 10 * 1024 * 1024]),
    }]});
    let mut with_snapshot = good(11);
    with_snapshot["SubImageList"] = serde_json::json!({"SubImageInfoObject": [{
        "Type": "01", "FileFormat": "Jpeg",
        "Data": base64::engine::general_purpose::STANDARD.encode(jpeg(640, 360)),
    }]});
    let mut unknown_camera = good(12);
    unknown_camera["DeviceID"] = "44030000009999999999".into();
    let mut other_gateways_camera = good(13);
    other_gateways_camera["DeviceID"] = support::CAMERA_B.into();
    let mut wrong_type = good(14);
    wrong_type["PassTime"] = serde_json::json!({"at": "20261202081530"});
    let mut future = good(15);
    future["PassTime"] = gat1400::time::format(
        camtrail_common::now_ms() + 3_600_000,
        chrono_tz::Asia::Shanghai,
    )
    .into();
    let mut no_plate = good(16);
    no_plate["PlateNo"] = gat1400::NO_PLATE.into();
    no_plate["HasPlate"] = "0".into();
    let answer = platform
        .post(
            "/VIID/MotorVehicles",
            body(vec![
                good(3),
                ten_mb_image,
                with_snapshot,
                unknown_camera,
                other_gateways_camera,
                wrong_type,
                future,
                no_plate,
                serde_json::json!("not an object"),
                good(4),
            ]),
        )
        .await;
    assert_eq!(
        answer.status,
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    let codes: Vec<(i32, String)> = answer
        .statuses()
        .into_iter()
        .map(|(code, text)| (code, text.split(':').next().unwrap_or("").to_string()))
        .collect();
    let expected = [
        (0, "OK"),
        (8, "snapshot_too_large"),
        (0, "OK"),
        (8, "unknown_camera"),
        (8, "camera_not_owned"),
        (8, "invalid_field"),
        (8, "timestamp_in_future"),
        (8, "missing_plate"),
        (8, "invalid_field"),
        (0, "OK"),
    ];
    assert_eq!(
        codes,
        expected
            .iter()
            .map(|(c, t)| (*c, t.to_string()))
            .collect::<Vec<_>>()
    );

    // A device without a zone must send offsets.
    let mut nozone = Platform::new(addr, "platform-nozone", PASSWORD);
    assert_eq!(
        nozone
            .post(
                "/VIID/System/Register",
                serde_json::json!({"RegisterObject": {"DeviceID": "platform-nozone"}})
                    .to_string()
                    .into_bytes()
            )
            .await
            .status,
        StatusCode::OK
    );
    let mut with_offset = good(20);
    with_offset["PassTime"] = format!(
        "{}+08:00",
        gat1400::time::format(now, chrono_tz::Asia::Shanghai)
    )
    .into();
    let answer = nozone
        .post("/VIID/MotorVehicles", body(vec![good(21), with_offset]))
        .await;
    let statuses = answer.statuses();
    assert_eq!(statuses[0].0, 8);
    assert!(
        statuses[0].1.contains("no configured time_zone"),
        "{}",
        statuses[0].1
    );
    assert_eq!(statuses[1].0, 0);

    // Only what was acknowledged reached Kafka: records 2, 3, 11, 4 and 20, once each.
    let stored = node.read_topic(5, Duration::from_secs(20));
    let mut ids: Vec<[u8; 16]> = stored.iter().map(|d| d.event_id.0).collect();
    ids.sort_unstable();
    let mut expected_ids: Vec<[u8; 16]> = [2, 3, 11, 4]
        .iter()
        .map(|&n| gat1400::event_id(&record(n, CAMERA_A, now).MotorVehicleID))
        .chain(std::iter::once(gat1400::event_id(
            &record(20, CAMERA_A, now).MotorVehicleID,
        )))
        .collect();
    expected_ids.sort_unstable();
    assert_eq!(ids, expected_ids);
    let thumbnail = stored
        .iter()
        .find(|d| d.event_id.0 == gat1400::event_id(&record(11, CAMERA_A, now).MotorVehicleID))
        .and_then(|d| d.thumbnail_jpeg.clone())
        .expect("the base64 image became a thumbnail");
    assert!(thumbnail.starts_with(&[0xFF, 0xD8]));
    let attributes = &stored[0].attributes;
    assert_eq!(attributes.plate_color, v1::PlateColor::Blue as u8);
    assert_eq!(attributes.brand, "大众");

    // And it still serves: keepalive, a good record, unregister.
    let keepalive = serde_json::json!({"KeepaliveObject": {"DeviceID": "platform-a"}});
    assert_eq!(
        platform
            .post("/VIID/System/Keepalive", keepalive.to_string().into_bytes())
            .await
            .status,
        StatusCode::OK
    );
    let again = platform
        .post("/VIID/MotorVehicles", body(vec![good(30)]))
        .await;
    assert_eq!(again.statuses(), vec![(0, "OK".to_string())]);
    let bye = serde_json::json!({"UnRegisterObject": {"DeviceID": "platform-a"}});
    assert_eq!(
        platform
            .post("/VIID/System/UnRegister", bye.to_string().into_bytes())
            .await
            .status,
        StatusCode::OK
    );
    let after = platform
        .post("/VIID/MotorVehicles", body(vec![good(31)]))
        .await;
    assert_eq!(after.status, StatusCode::UNAUTHORIZED);
    let metrics = node.metrics().await;
    assert!(metrics.contains("camtrail_gat1400_requests_total{endpoint=\"motor_vehicles\",outcome=\"replayed_nonce\"} 1"), "{metrics}");
    node.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tollgates_and_lanes_join_the_registry_and_their_records_are_accepted() {
    let dir = tempfile::tempdir().expect("dir");
    let devices = devices_file(dir.path(), &[("platform-a", GATEWAY_A, "Asia/Shanghai")]);
    let node = TestNode::start_with("gat1400_tollgates", |config| {
        config.gat1400 = Gat1400Config {
            enabled: true,
            addr: "127.0.0.1:0".parse().expect("addr"),
            devices_path: devices.clone(),
            districts: BTreeMap::from([("440305".to_string(), "Nanshan".to_string())]),
            ..Gat1400Config::default()
        };
    })
    .await;
    let mut platform = Platform::new(node.gat1400.expect("enabled"), "platform-a", PASSWORD);
    assert_eq!(platform.register().await.status, StatusCode::OK);
    let now = camtrail_common::now_ms() - 60_000;
    let new_tollgate = "44030000001210000077";
    let early = platform
        .post(
            "/VIID/MotorVehicles",
            body(vec![value(&record(1, new_tollgate, now))]),
        )
        .await;
    assert!(early.statuses()[0].1.starts_with("unknown_camera"));

    let tollgates = serde_json::json!({"TollgateListObject": {"TollgateObject": [
        {"TollgateID": new_tollgate, "Name": "Keyuan Rd", "Longitude": 113.95,
         "Latitude": 22.54, "PlaceCode": "440305", "Status": "1", "TollgateCat": "10"},
        {"TollgateID": support::CAMERA_B, "Longitude": 113.9, "Latitude": 22.5},
        {"TollgateID": "44030000001210000078", "Longitude": "east", "Latitude": 22.5},
    ]}});
    let answer = platform
        .post("/VIID/Tollgates", tollgates.to_string().into_bytes())
        .await;
    let statuses = answer.statuses();
    assert_eq!(statuses[0], (0, "OK".to_string()));
    assert!(
        statuses[1].1.starts_with("camera_not_owned"),
        "{:?}",
        statuses[1]
    );
    assert!(
        statuses[2].1.starts_with("invalid_field"),
        "{:?}",
        statuses[2]
    );
    let lanes = serde_json::json!({"LaneListObject": {"LaneObject": [
        {"TollgateID": new_tollgate, "LaneId": 1, "LaneNo": 2, "Name": "lane 2", "Direction": "2"},
        {"TollgateID": "44030000001210000099", "LaneNo": 1},
    ]}});
    let statuses = platform
        .post("/VIID/Lanes", lanes.to_string().into_bytes())
        .await
        .statuses();
    assert_eq!(statuses[0].0, 0);
    assert!(statuses[1].1.starts_with("unknown_camera"));

    // Now records at the checkpoint and at its lane are accepted.
    let mut at_lane = value(&record(3, new_tollgate, now));
    at_lane["DeviceID"] = serde_json::Value::Null;
    at_lane["TollgateID"] = new_tollgate.into();
    at_lane["LaneNo"] = 2.into();
    let answer = platform
        .post(
            "/VIID/MotorVehicles",
            body(vec![value(&record(2, new_tollgate, now)), at_lane]),
        )
        .await;
    assert_eq!(
        answer.statuses(),
        vec![(0, "OK".to_string()), (0, "OK".to_string())]
    );
    let stored = node.read_topic(2, Duration::from_secs(20));
    let cameras: HashMap<String, usize> = stored.iter().fold(HashMap::new(), |mut m, d| {
        *m.entry(d.camera_id.clone()).or_default() += 1;
        m
    });
    assert_eq!(cameras.get(new_tollgate), Some(&1));
    assert_eq!(cameras.get(&format!("{new_tollgate}-2")), Some(&1));
    node.stop().await;
}

mod through_serve {
    //! `camtrail serve` with GA/T 1400 on: platforms register and post 10,000 records of
    //! the synthetic city's traffic in batches; every plate's track then comes back through
    //! the query API holding exactly the records posted for it.

    use super::*;
    use std::process::{Child, Command, Stdio};

    use camtrail_city::traffic::{Traffic, TrafficConfig};
    use camtrail_city::{City, CityConfig};
    use camtrail_ingest::auth::{IssuedToken, render_token_files};
    use camtrail_model::plate::normalize;
    use camtrail_query::auth::{Role, UsersFile, issue as issue_user};
    use camtrail_query::client::{TrackFormat, TrackQueryArgs, get, track_path};

    /// Killed and reaped when dropped.
    struct Running(Child);

    impl Drop for Running {
        fn drop(&mut self) {
            if let Ok(None) = self.0.try_wait() {
                let _ = self.0.kill();
                let _ = self.0.wait();
            }
        }
    }

    fn local_port() -> SocketAddr {
        std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
    }

    /// The attributes a record's sighting must show: its codes mapped as the node maps them,
    /// named as the query API names them (`null` when unknown).
    fn expected_attributes(record: &encode::MotorVehicleOut) -> serde_json::Value {
        use camtrail_query::attributes::{DIRECTIONS, PLATE_COLORS, VEHICLE_COLORS, VEHICLE_TYPES};
        let name = |table: &[(u8, &str)], code: i32| {
            table
                .iter()
                .find(|(c, _)| i32::from(*c) == code)
                .map_or(serde_json::Value::Null, |(_, n)| (*n).into())
        };
        let plate_color = gat1400::codes::plate_color(&record.PlateColor) as i32;
        let vehicle_color = gat1400::codes::vehicle_color(&record.VehicleColor) as i32;
        let vehicle_type = gat1400::codes::vehicle_type(&record.VehicleClass) as i32;
        let direction = gat1400::codes::direction(&record.Direction) as i32;
        serde_json::json!({
            "plate_color": name(PLATE_COLORS, plate_color),
            "vehicle_color": name(VEHICLE_COLORS, vehicle_color),
            "vehicle_type": name(VEHICLE_TYPES, vehicle_type),
            "direction": name(DIRECTIONS, direction),
            "vehicle_brand": if record.VehicleBrand.is_empty() {
                serde_json::Value::Null
            } else {
                record.VehicleBrand.clone().into()
            },
            "speed_kmh": if record.Speed == 0.0 {
                serde_json::Value::Null
            } else {
                record.Speed.into()
            },
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ten_thousand_records_come_back_as_tracks_with_their_attributes() {
        let dir = tempfile::tempdir().expect("dir");
        let city = City::generate(&CityConfig {
            seed: 14,
            cameras: 400,
            districts: 4,
            gateways: 4,
        });
        city.write_to_dir(dir.path()).expect("cameras.csv");
        let gateways: Vec<String> = city.gateways.iter().map(|g| g.id.clone()).collect();
        let entries: Vec<(&str, &str, &str)> = gateways
            .iter()
            .map(|g| (g.as_str(), g.as_str(), "Asia/Shanghai"))
            .collect();
        let devices = devices_file(dir.path(), &entries);
        let tokens: Vec<IssuedToken> = gateways.iter().map(|g| IssuedToken::mint(g)).collect();
        let (_, hashes) = render_token_files(&tokens);
        let hashes_path = dir.path().join("gateway_token_hashes.csv");
        std::fs::write(&hashes_path, hashes).expect("hashes");
        let investigator = issue_user("gat1400-investigator", Role::Investigator);
        let users_path = dir.path().join("users.toml");
        std::fs::write(
            &users_path,
            toml::to_string_pretty(&UsersFile {
                user: vec![investigator.entry],
            })
            .expect("users"),
        )
        .expect("users.toml");
        let registry = dir.path().join("cameras.csv").display().to_string();
        // The case the searches below run under, opened before the node owns the database.
        let store = camtrail_sqlite::SqliteStore::open(&dir.path().join("camtrail.db"))
            .expect("open the database");
        camtrail_storage::testsuite::open_case(&store, "GAT-1400-E2E", &["gat1400-investigator"])
            .await;
        drop(store);
        let (gat1400, query_http) = (local_port(), local_port());
        let log = dir.path().join("serve.log");
        let env: Vec<(&str, String)> = vec![
            (
                "CAMTRAIL_SERVE__DATABASE_PATH",
                dir.path().join("camtrail.db").display().to_string(),
            ),
            ("CAMTRAIL_INGEST__GRPC_ADDR", local_port().to_string()),
            ("CAMTRAIL_INGEST__HTTP_ADDR", local_port().to_string()),
            ("CAMTRAIL_INGEST__REGISTRY_PATH", registry.clone()),
            (
                "CAMTRAIL_INGEST__GATEWAY_TOKENS_PATH",
                hashes_path.display().to_string(),
            ),
            ("CAMTRAIL_INGEST__GAT1400__ENABLED", "true".into()),
            ("CAMTRAIL_INGEST__GAT1400__ADDR", gat1400.to_string()),
            (
                "CAMTRAIL_INGEST__GAT1400__DEVICES_PATH",
                devices.display().to_string(),
            ),
            ("CAMTRAIL_QUERY__HTTP_ADDR", query_http.to_string()),
            ("CAMTRAIL_QUERY__GRPC_ADDR", local_port().to_string()),
            ("CAMTRAIL_QUERY__REGISTRY_PATH", registry),
            ("CAMTRAIL_QUERY__REGISTRY_RELOAD_MS", "200".into()),
            (
                "CAMTRAIL_QUERY__USERS_PATH",
                users_path.display().to_string(),
            ),
        ];
        let mut serve = Running(
            Command::new(env!("CARGO_BIN_EXE_camtrail"))
                .arg("serve")
                .envs(env)
                .stdout(Stdio::null())
                .stderr(std::fs::File::create(&log).expect("log"))
                .spawn()
                .expect("spawn camtrail serve"),
        );
        let ready = std::time::Instant::now();
        while std::net::TcpStream::connect(gat1400).is_err()
            || std::net::TcpStream::connect(query_http).is_err()
        {
            assert!(
                serve.0.try_wait().expect("wait").is_none(),
                "serve exited: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            assert!(ready.elapsed() < Duration::from_secs(60), "serve not ready");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // The city's traffic of the last hour, as each gateway's platform would send it.
        let now = camtrail_common::now_ms();
        let traffic = Traffic::new(
            &city,
            TrafficConfig {
                seed: 3,
                start_ms: now - 3_600_000,
                span_ms: 3_000_000,
                vehicles: usize::MAX,
                snapshot_share: 0.0,
                ..TrafficConfig::default()
            },
        );
        let cameras = city.registry.cameras();
        let mut by_gateway: HashMap<String, Vec<encode::MotorVehicleOut>> = HashMap::new();
        for event in traffic.filter(|e| !e.plate.is_empty()).take(10_000) {
            let camera = &cameras[event.camera_index as usize];
            let wire = camtrail_loadgen::dispatch::to_wire(event, &camera.camera_id, 0);
            by_gateway
                .entry(camera.gateway_id.clone())
                .or_default()
                .push(encode::motor_vehicle(&wire, chrono_tz::Asia::Shanghai));
        }
        let mut posted: HashMap<String, Vec<String>> = HashMap::new();
        // What each record's attributes must read as in the answers, by event id.
        let mut attributes: HashMap<String, serde_json::Value> = HashMap::new();
        let mut accepted = 0usize;
        for (gateway, records) in by_gateway {
            let mut platform = Platform::new(gat1400, &gateway, PASSWORD);
            assert_eq!(platform.register().await.status, StatusCode::OK);
            for chunk in records.chunks(500) {
                let body = serde_json::to_vec(&encode::MotorVehicleListOut::new(chunk.to_vec()))
                    .expect("body");
                let answer = platform.post("/VIID/MotorVehicles", body).await;
                assert_eq!(
                    answer.status,
                    StatusCode::OK,
                    "{}",
                    String::from_utf8_lossy(&answer.body)
                );
                for (record, (code, text)) in chunk.iter().zip(answer.statuses()) {
                    assert_eq!(code, 0, "{text}");
                    accepted += 1;
                    let id = hex::encode(gat1400::event_id(&record.MotorVehicleID));
                    attributes.insert(id.clone(), expected_attributes(record));
                    posted
                        .entry(normalize(&record.PlateNo))
                        .or_default()
                        .push(id);
                }
            }
        }
        assert_eq!(accepted, 10_000);

        // The busiest plates' tracks hold exactly their records (shown, merged into a
        // burst, or attributed to a look-alike: listed either way).
        let mut plates: Vec<(&String, &Vec<String>)> = posted.iter().collect();
        plates.sort_by_key(|(plate, ids)| (std::cmp::Reverse(ids.len()), (*plate).clone()));
        let base = format!("http://{query_http}");
        for (plate, ids) in plates.into_iter().take(5) {
            let args = TrackQueryArgs {
                plate: plate.clone(),
                from: (now - 4 * 3_600_000).to_string(),
                to: (now + 60_000).to_string(),
                case_id: "GAT-1400-E2E".into(),
                reason: "GA/T 1400 end-to-end test".into(),
                fuzzy: false,
            };
            let body = get(
                &base,
                &track_path(&args, TrackFormat::Json),
                &investigator.token,
            )
            .await
            .expect("track");
            let track: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let mut returned: Vec<String> = Vec::new();
            let mut sightings: Vec<&serde_json::Value> = Vec::new();
            for list in [
                &track["sightings"],
                &track["second_vehicle"]["sightings"],
                &track["dropped"],
            ] {
                for item in list.as_array().into_iter().flatten() {
                    returned.push(item["event_id"].as_str().expect("event id").to_string());
                    if item.get("burst_count").is_some() {
                        sightings.push(item);
                    }
                }
            }
            returned.sort();
            let mut expected = ids.clone();
            expected.sort();
            assert_eq!(returned, expected, "plate with {} records", ids.len());
            assert!(!sightings.is_empty());
            // The city classifies every vehicle: the attributes are there, not just null.
            assert!(
                sightings
                    .iter()
                    .all(|s| !s["plate_color"].is_null() && !s["direction"].is_null()),
                "attributes missing"
            );
            eprintln!(
                "track: {} records posted, {} sightings shown, {} dropped; first: {}",
                ids.len(),
                sightings.len(),
                track["dropped"].as_array().map_or(0, Vec::len),
                serde_json::json!({
                    "plate_color": sightings[0]["plate_color"],
                    "vehicle_brand": sightings[0]["vehicle_brand"],
                    "direction": sightings[0]["direction"],
                    "speed_kmh": sightings[0]["speed_kmh"],
                })
            );
        }

        // A checkpoint registered now is on the query side's map within moments: the
        // ingest node rewrote the registry file, the query node reloads it.
        let (gateway, camera) = (&cameras[0].gateway_id, &cameras[0]);
        let mut platform = Platform::new(gat1400, gateway, PASSWORD);
        assert_eq!(platform.register().await.status, StatusCode::OK);
        let checkpoint = "44039999001210000001";
        let tollgates = serde_json::json!({"TollgateListObject": {"TollgateObject": [{
            "TollgateID": checkpoint, "Name": "new checkpoint", "Longitude": camera.lon,
            "Latitude": camera.lat, "PlaceCode": camera.district,
        }]}});
        let statuses = platform
            .post("/VIID/Tollgates", tollgates.to_string().into_bytes())
            .await
            .statuses();
        assert_eq!(statuses, vec![(0, "OK".to_string())]);
        let event = v1::DetectionEvent {
            event_id: vec![0x5A; 16],
            camera_id: checkpoint.into(),
            captured_at_ms: now - 120_000,
            object_class: v1::ObjectClass::Vehicle as i32,
            plate: "粤B7Q8R9".into(),
            plate_confidence: 0.9,
            ..Default::default()
        };
        let record = encode::motor_vehicle(&event, chrono_tz::Asia::Shanghai);
        let answer = platform
            .post(
                "/VIID/MotorVehicles",
                serde_json::to_vec(&encode::MotorVehicleListOut::new(vec![record])).expect("body"),
            )
            .await;
        assert_eq!(answer.statuses(), vec![(0, "OK".to_string())]);
        let args = TrackQueryArgs {
            plate: "粤B7Q8R9".into(),
            from: (now - 3_600_000).to_string(),
            to: (now + 60_000).to_string(),
            case_id: "GAT-1400-E2E".into(),
            reason: "GA/T 1400 checkpoint registration test".into(),
            fuzzy: false,
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let body = get(
                &base,
                &track_path(&args, TrackFormat::Json),
                &investigator.token,
            )
            .await
            .expect("track");
            let track: serde_json::Value = serde_json::from_slice(&body).expect("json");
            let sighting = &track["sightings"][0];
            if sighting["camera_id"] == checkpoint
                && sighting["district"] == camera.district.as_str()
            {
                assert_eq!(sighting["road"], "new checkpoint");
                assert_eq!(sighting["lat"].as_f64(), Some(camera.lat));
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the new checkpoint never reached the query side: {track}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        drop(serve);
    }
}
