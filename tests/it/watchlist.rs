//! Watchlists in the embedded mode (`camtrail serve` in-process): an entry alerts only once
//! a second person approved it, live hits reach the Server-Sent Events stream of those who
//! may see them (exact and fuzzy), a revoked entry stops alerting, and bad entries are
//! refused with a code and leave nothing stored.

use std::time::Duration;

use camtrail_ingest::auth::{IssuedToken, render_token_files};
use camtrail_ingest::config::IngestConfig;
use camtrail_proto::v1;
use camtrail_proto::v1::ingest_client::IngestClient;
use camtrail_query::auth::{Role, UsersFile, issue};
use camtrail_query::client::{ClientError, post_json};
use camtrail_query::node::QueryConfig;
use camtrail_serve::embedded::{EmbeddedNode, ServeConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const GATEWAY: &str = "gw-a";
const CAMERA: &str = "44030000001310000001";
const DAY_MS: i64 = 86_400_000;

/// A vehicle event `n` reading `plate` at the test camera, captured a second ago.
fn event(n: u32, plate: &str) -> v1::DetectionEvent {
    let mut event_id = [0xA1u8; 16];
    event_id[..4].copy_from_slice(&n.to_be_bytes());
    v1::DetectionEvent {
        event_id: event_id.to_vec(),
        camera_id: CAMERA.into(),
        captured_at_ms: camtrail_common::now_ms() - 1_000,
        object_class: v1::ObjectClass::Vehicle as i32,
        plate: plate.into(),
        plate_confidence: 0.9,
        ..v1::DetectionEvent::default()
    }
}

/// Lines of one SSE stream, read as a person's client would.
pub(crate) struct Stream(tokio::io::Lines<BufReader<tokio::net::TcpStream>>);

impl Stream {
    pub(crate) async fn open(addr: std::net::SocketAddr, token: &str) -> Self {
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!(
            "GET /v1/alerts/stream HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
             Accept: text/event-stream\r\n\r\n"
        );
        socket.write_all(request.as_bytes()).await.expect("send");
        let mut lines = BufReader::new(socket).lines();
        let status = lines.next_line().await.expect("read").expect("status line");
        assert!(status.contains("200"), "{status}");
        Self(lines)
    }

    /// The next `event: alert`'s data, within 10 s.
    pub(crate) async fn next_alert(&mut self) -> Value {
        let read = async {
            let mut alert = false;
            while let Some(line) = self.0.next_line().await.expect("read") {
                if line == "event: alert" {
                    alert = true;
                } else if let (true, Some(data)) = (alert, line.strip_prefix("data: ")) {
                    return serde_json::from_str(data).expect("alert JSON");
                }
            }
            panic!("the stream ended");
        };
        tokio::time::timeout(Duration::from_secs(10), read)
            .await
            .expect("an alert within 10 s")
    }
}

fn code(result: Result<Vec<u8>, ClientError>) -> (u16, String) {
    match result {
        Err(ClientError::Refused { status, code, .. }) => (status, code),
        Ok(_) => (200, String::new()),
        Err(other) => panic!("transport: {other}"),
    }
}

fn entry(id: &str, plate: &str, fuzzy: bool, now: i64) -> Value {
    json!({
        "entry_id": id, "title": "stolen white SUV", "plate": plate, "fuzzy": fuzzy,
        "case": "CASE-W", "reason": "stolen on Shennan Rd", "priority": 1,
        "from": now - 60_000, "to": now + 7 * DAY_MS, "recipients": ["ivy"],
    })
}

/// An embedded node (ingest, query, one database) in a temporary directory with case
/// CASE-W open (ivy assigned), investigator ivy and supervisors sam and sue.
struct Embedded {
    dir: tempfile::TempDir,
    addrs: camtrail_serve::embedded::EmbeddedAddrs,
    store: camtrail_sqlite::SqliteStore,
    http: String,
    ivy: camtrail_query::auth::IssuedUser,
    sam: camtrail_query::auth::IssuedUser,
    sue: camtrail_query::auth::IssuedUser,
    gateway: IssuedToken,
    batch_seq: u64,
    stop: tokio::sync::oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Embedded {
    async fn start(tweak: impl FnOnce(&mut QueryConfig, &std::path::Path)) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join("cameras.csv"),
            format!(
                "camera_id,district,lat,lon,heading_deg,road,gateway_id\n\
                 {CAMERA},Futian,22.540,114.050,90,Shennan Rd,{GATEWAY}\n"
            ),
        )
        .expect("registry");
        let gateway = IssuedToken::mint(GATEWAY);
        let (_, hashes) = render_token_files(std::slice::from_ref(&gateway));
        std::fs::write(dir.path().join("hashes.csv"), hashes).expect("hashes");
        let (ivy, sam, sue) = (
            issue("ivy", Role::Investigator),
            issue("sam", Role::Supervisor),
            issue("sue", Role::Supervisor),
        );
        let users = UsersFile {
            user: vec![ivy.entry.clone(), sam.entry.clone(), sue.entry.clone()],
        };
        std::fs::write(
            dir.path().join("users.toml"),
            toml::to_string(&users).expect("toml"),
        )
        .expect("users");
        let database = dir.path().join("camtrail.db");
        let store = camtrail_sqlite::SqliteStore::open(&database).expect("open");
        camtrail_storage::testsuite::open_case(&store, "CASE-W", &["ivy"]).await;
        drop(store);
        let local = || "127.0.0.1:0".parse().expect("addr");
        let ingest = IngestConfig {
            grpc_addr: local(),
            http_addr: local(),
            registry_path: dir.path().join("cameras.csv"),
            gateway_tokens_path: dir.path().join("hashes.csv"),
            shutdown_delay_ms: 0,
            ..IngestConfig::default()
        };
        let mut query = QueryConfig {
            http_addr: local(),
            grpc_addr: local(),
            registry_path: dir.path().join("cameras.csv"),
            users_path: dir.path().join("users.toml"),
            shutdown_delay_ms: 0,
            ..QueryConfig::default()
        };
        tweak(&mut query, dir.path());
        let serve = ServeConfig {
            database_path: database,
            retention_days: None,
        };
        let node = EmbeddedNode::bind(&serve, ingest, &query)
            .await
            .expect("bind");
        let addrs = node.addrs().expect("addrs");
        let store = node.store().clone();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let serving = tokio::spawn(node.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self {
            http: format!("http://{}", addrs.query_http),
            dir,
            addrs,
            store,
            ivy,
            sam,
            sue,
            gateway,
            batch_seq: 0,
            stop,
            serving,
        }
    }

    /// Stop the node (graceful) and wait for it, at most 10 s.
    async fn stop(self) {
        let _ = self.stop.send(());
        tokio::time::timeout(Duration::from_secs(10), self.serving)
            .await
            .expect("the node stops within 10 s")
            .expect("join")
            .expect("the node stopped cleanly");
    }

    /// Publish `events` as the gateway would, one batch.
    async fn publish(&mut self, events: Vec<v1::DetectionEvent>) {
        self.batch_seq += 1;
        let mut request = tonic::Request::new(v1::EventBatch {
            gateway_id: GATEWAY.into(),
            batch_seq: self.batch_seq,
            events,
        });
        let value = format!("Bearer {}", self.gateway.token)
            .parse()
            .expect("header");
        request.metadata_mut().insert("authorization", value);
        let mut ingest = IngestClient::connect(format!("http://{}", self.addrs.ingest_grpc))
            .await
            .expect("ingest");
        let ack = ingest.publish_batch(request).await.expect("publish");
        assert!(
            ack.into_inner().rejections.is_empty(),
            "every event accepted"
        );
    }

    /// Request the entry `body` as ivy and have sam approve it (with its webhook).
    async fn hooked_entry(&self, body: Value) {
        let id = body["entry_id"].as_str().expect("entry id").to_string();
        assert_eq!(
            self.post(&self.ivy.token, "/v1/watchlist", body).await,
            (200, String::new())
        );
        let approve = format!("/v1/watchlist/{id}/approve");
        assert_eq!(
            self.post(&self.sam.token, &approve, json!({"reason": "checked"}))
                .await,
            (200, String::new())
        );
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (u16, String) {
        code(post_json(&self.http, path, token, &body).await)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_entries_alert_live_and_revoked_ones_stop() {
    let mut node = Embedded::start(|_, _| {}).await;
    let (addrs, http, store) = (node.addrs, node.http.clone(), node.store.clone());
    let (ivy, sam, sue) = (node.ivy.clone(), node.sam.clone(), node.sue.clone());
    let now = camtrail_common::now_ms();

    // Bad entries: coded refusals, nothing stored, nothing audited.
    let records = || async {
        use camtrail_storage::SightingStore as _;
        store.all_audit_records().await.expect("audit").len()
    };
    let before = records().await;
    let mut long = entry("WL-LONG", "粤B77777", false, now);
    long["to"] = json!(now + 31 * DAY_MS);
    let mut scoped = entry("WL-CAM", "粤B77777", false, now);
    scoped["cameras"] = json!(["44039999999999999999"]);
    let mut outsider = entry("WL-OUT", "粤B77777", false, now);
    outsider["recipients"] = json!(["eve"]);
    for (body, expected) in [
        (entry("WL-BROAD", "粤B7*", false, now), "pattern_too_broad"),
        (long, "window_too_long"),
        (scoped, "unknown_camera"),
        (entry("WL-FUZZY", "粤B7777*", true, now), "invalid_entry"),
        (entry("WL/1", "粤B77777", false, now), "invalid_entry"),
        (outsider, "invalid_entry"),
        (
            entry("WL-SPREAD", "粤B?7?7?7", false, now),
            "pattern_too_broad",
        ),
    ] {
        let refused = code(post_json(&http, "/v1/watchlist", &ivy.token, &body).await);
        assert_eq!(refused, (400, expected.to_string()), "{body}");
    }
    assert_eq!(records().await, before, "a refused entry leaves no record");

    // ivy asks for two entries; nothing alerts before a second person approves.
    for body in [
        entry("WL-1", "粤B·77777", false, now),
        entry("WL-2", "粤B12345", true, now),
    ] {
        assert_eq!(
            code(post_json(&http, "/v1/watchlist", &ivy.token, &body).await),
            (200, String::new())
        );
    }
    let mut stream = Stream::open(addrs.query_http, &ivy.token).await;
    // A supervisor (not a recipient) follows the same hits over gRPC.
    let mut query = v1::query_client::QueryClient::connect(format!("http://{}", addrs.query_grpc))
        .await
        .expect("query client");
    let mut grpc_alerts = query
        .subscribe_alerts(crate::query_node::with_token(
            &sue.token,
            v1::SubscribeAlertsRequest {},
        ))
        .await
        .expect("subscribe")
        .into_inner();
    node.publish(vec![event(1, "粤B77777")]).await;
    let approve = |id: &str, token: &str| {
        let (http, token, path) = (
            http.clone(),
            token.to_string(),
            format!("/v1/watchlist/{id}/approve"),
        );
        async move { code(post_json(&http, &path, &token, &json!({"reason": "checked"})).await) }
    };
    assert_eq!(approve("WL-1", &ivy.token).await, (403, "forbidden".into()));
    // A supervisor's own entry needs another supervisor.
    let own = entry("WL-SAM", "粤B55555", false, now);
    assert_eq!(
        code(post_json(&http, "/v1/watchlist", &sam.token, &own).await),
        (200, String::new())
    );
    assert_eq!(
        approve("WL-SAM", &sam.token).await,
        (403, "self_approval".into())
    );
    assert_eq!(approve("WL-1", &sam.token).await, (200, String::new()));
    assert_eq!(approve("WL-2", &sue.token).await, (200, String::new()));
    assert_eq!(
        approve("WL-2", &sue.token).await,
        (400, "entry_not_pending".into())
    );

    // Approval checks the stored reads of the last 24 h: the read before it comes now,
    // marked past.
    let past = stream.next_alert().await;
    assert_eq!(
        (past["entry_id"].as_str(), past["past"].as_bool()),
        (Some("WL-1"), Some(true)),
        "{past}"
    );
    assert_eq!(past["event_id"], hex(1));
    let over_grpc = tokio::time::timeout(Duration::from_secs(10), grpc_alerts.message())
        .await
        .expect("in time")
        .expect("stream")
        .expect("an alert");
    assert_eq!(
        (
            over_grpc.entry_id.as_str(),
            over_grpc.match_kind.as_str(),
            over_grpc.past
        ),
        ("WL-1", "exact", true)
    );
    assert_eq!(
        camtrail_model::EventId::from_slice(&over_grpc.event_id).map(|e| e.to_hex()),
        Some(hex(1))
    );

    // Approved: the exact plate and a misreading of the fuzzy one alert live, in order.
    node.publish(vec![event(2, "粤B77777"), event(3, "粤B1Z345")])
        .await;
    let first = stream.next_alert().await;
    assert_eq!(
        (first["entry_id"].as_str(), first["kind"].as_str()),
        (Some("WL-1"), Some("exact")),
        "{first}"
    );
    assert_eq!(first["event_id"], hex(2));
    assert_eq!(first["past"], false);
    assert_eq!(first["district"], "Futian");
    let second = stream.next_alert().await;
    assert_eq!(
        (second["entry_id"].as_str(), second["kind"].as_str()),
        (Some("WL-2"), Some("fuzzy")),
        "{second}"
    );
    assert_eq!(second["plate_read"], "粤B1Z345");

    // Revoked (by its applicant, with a reason): its plate no longer alerts; the next
    // alert is the other entry's.
    assert_eq!(
        code(
            post_json(
                &http,
                "/v1/watchlist/WL-1/revoke",
                &ivy.token,
                &json!({"reason": "car found"})
            )
            .await
        ),
        (200, String::new())
    );
    node.publish(vec![event(4, "粤B77777"), event(5, "粤B12345")])
        .await;
    let third = stream.next_alert().await;
    assert_eq!(third["entry_id"], "WL-2", "{third}");
    assert_eq!(third["event_id"], hex(5));

    // The same read delivered again (a resend) alerts again but is kept once.
    node.publish(vec![event(5, "粤B12345")]).await;
    assert_eq!(stream.next_alert().await["event_id"], hex(5));

    // Stored hits, read back (audited) and reviewed against the snapshot by a person.
    let hits = |entry: &str| {
        let path = format!("/v1/alerts?entry={entry}&reason=review");
        let (http, token) = (http.clone(), ivy.token.clone());
        async move {
            let body = camtrail_query::client::get(&http, &path, &token)
                .await
                .expect("hits");
            let body: Value = serde_json::from_slice(&body).expect("json");
            body["hits"]
                .as_array()
                .expect("hits")
                .iter()
                .map(|h| {
                    (
                        h["event_id"].as_str().expect("id").to_string(),
                        h["outcome"].as_str().expect("outcome").to_string(),
                        h["past"].as_bool().expect("past"),
                    )
                })
                .collect::<Vec<_>>()
        }
    };
    let unconfirmed = |n: u32, past: bool| (hex(n), "unconfirmed".to_string(), past);
    // Hits are stored off the ack's path: give the store a moment.
    for _ in 0..50 {
        if hits("WL-2").await.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        hits("WL-1").await,
        [unconfirmed(1, true), unconfirmed(2, false)]
    );
    assert_eq!(
        hits("WL-2").await,
        [unconfirmed(3, false), unconfirmed(5, false)]
    );
    let review = |n: u32, verdict: &str, reason: &str| {
        let path = format!("/v1/alerts/WL-2/{}/{verdict}", hex(n));
        let (http, token, body) = (http.clone(), ivy.token.clone(), json!({"reason": reason}));
        async move { code(post_json(&http, &path, &token, &body).await) }
    };
    assert_eq!(
        review(3, "confirm", "").await,
        (400, "missing_reason".into())
    );
    assert_eq!(
        review(3, "reject", "snapshot shows 粤B1Z345, a grey van").await,
        (200, String::new())
    );
    assert_eq!(
        review(3, "confirm", "second look").await,
        (400, "entry_not_pending".into()),
        "a hit is reviewed once"
    );
    assert_eq!(
        review(5, "confirm", "snapshot shows the white SUV").await,
        (200, String::new())
    );
    assert_eq!(
        hits("WL-2").await,
        [
            (hex(3), "rejected".to_string(), false),
            (hex(5), "confirmed".to_string(), false)
        ]
    );

    // Every change is an audit record, under the entry's case.
    use camtrail_storage::SightingStore as _;
    let kinds: Vec<String> = store
        .all_audit_records()
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.entry.kind.starts_with("watchlist_") && r.entry.case_id == "CASE-W")
        .map(|r| r.entry.kind)
        .collect();
    assert_eq!(
        kinds,
        [
            "watchlist_request",
            "watchlist_request",
            "watchlist_request",
            "watchlist_approve",
            "watchlist_past_read",
            "watchlist_approve",
            "watchlist_past_read",
            "watchlist_revoke"
        ]
    );
    let reviews: Vec<String> = store
        .all_audit_records()
        .await
        .expect("audit")
        .into_iter()
        .filter(|r| r.entry.kind.starts_with("alert_"))
        .map(|r| r.entry.kind)
        .collect();
    // Each read of the hits is audited (the wait above read them once or more).
    assert!(reviews.iter().filter(|k| *k == "alert_read").count() >= 4);
    let verdicts: Vec<&String> = reviews.iter().filter(|k| *k != "alert_read").collect();
    assert_eq!(verdicts, ["alert_reject", "alert_confirm"]);

    // Stopping the node ends the live streams still open (they would hold the graceful
    // shutdown forever otherwise).
    node.stop().await;
    let ended = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(_)) = stream.0.next_line().await {}
    })
    .await;
    assert!(ended.is_ok(), "the SSE stream ended with the node");
    let drained = tokio::time::timeout(Duration::from_secs(10), async {
        // Hits still queued for this subscriber come first, then the end.
        while let Ok(Some(_)) = grpc_alerts.message().await {}
    })
    .await;
    assert!(drained.is_ok(), "the gRPC stream ended with the node");
}

fn hex(n: u32) -> String {
    let mut event_id = [0xA1u8; 16];
    event_id[..4].copy_from_slice(&n.to_be_bytes());
    camtrail_model::EventId(event_id).to_hex()
}

/// One request a webhook receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Received {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A tiny HTTP/1.1 receiver: `/flaky` fails its first two requests (500) then answers 200,
/// `/ok` answers 200, anything else 503; every request is recorded.
async fn receiver() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::Mutex<Vec<Received>>>,
) {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Received>::new()));
    let record = std::sync::Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let record = std::sync::Arc::clone(&record);
            tokio::spawn(async move {
                let mut reader = BufReader::new(socket);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    let mut headers = Vec::new();
                    loop {
                        let mut header = String::new();
                        reader.read_line(&mut header).await.expect("header");
                        let header = header.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            headers.push((name.trim().to_string(), value.trim().to_string()));
                        }
                    }
                    let length: usize = headers
                        .iter()
                        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
                        .and_then(|(_, v)| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).await.expect("body");
                    let status = {
                        let mut seen = record.lock().expect("lock");
                        let earlier = seen.iter().filter(|r| r.path == path).count();
                        seen.push(Received {
                            path: path.clone(),
                            headers,
                            body,
                        });
                        match (path.as_str(), earlier) {
                            ("/flaky", 0 | 1) => "500 Internal Server Error",
                            ("/flaky" | "/ok", _) => "200 OK",
                            _ => "503 Service Unavailable",
                        }
                    };
                    let answer = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\n\r\n");
                    if reader.get_mut().write_all(answer.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_retried_and_dead_lettered() {
    // Two receivers: a breaker counts failures per receiver (host:port).
    let (receiver_addr, seen) = receiver().await;
    let (down_addr, seen_down) = receiver().await;
    let secret = b"0123456789abcdef-webhook-key".to_vec();
    let key = secret.clone();
    let mut node = Embedded::start(move |query, dir| {
        let path = dir.join("webhook.key");
        std::fs::write(&path, &key).expect("key");
        query.watchlist.webhook_hosts = vec![receiver_addr.to_string(), down_addr.to_string()];
        query.watchlist.webhook_secret_path = Some(path);
        query.watchlist.webhook_attempts = 3;
        query.watchlist.webhook_backoff_ms = 20;
        query.watchlist.webhook_dead_letter_path = Some(dir.join("dead_letters.jsonl"));
    })
    .await;
    let now = camtrail_common::now_ms();
    let ivy = node.ivy.token.clone();
    let with_hook = |id: &str, plate: &str, url: String| {
        let mut body = entry(id, plate, false, now);
        body["webhook_url"] = json!(url);
        body
    };

    // Only plain http:// to a host on the allow-list.
    for url in [
        "http://evil.example/hook".to_string(),
        format!("https://{receiver_addr}/flaky"),
        format!("http://user:pw@{receiver_addr}/flaky"),
    ] {
        assert_eq!(
            node.post(
                &ivy,
                "/v1/watchlist",
                with_hook("WL-BAD", "粤B77777", url.clone())
            )
            .await,
            (400, "webhook_not_allowed".to_string()),
            "{url}"
        );
    }
    for (id, plate, url) in [
        ("WL-H1", "粤B66666", format!("http://{receiver_addr}/flaky")),
        ("WL-H2", "粤B88888", format!("http://{down_addr}/down")),
    ] {
        node.hooked_entry(with_hook(id, plate, url)).await;
    }
    node.publish(vec![event(10, "粤B66666"), event(11, "粤B88888")])
        .await;

    // The flaky receiver gets the hit on the third attempt; the dead one three times,
    // then the hit is dead-lettered.
    let dead_letters = node.dir.path().join("dead_letters.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let received = seen.lock().expect("lock").len() + seen_down.lock().expect("lock").len();
        let lettered = std::fs::read_to_string(&dead_letters).unwrap_or_default();
        if received >= 6 && !lettered.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{received} deliveries, dead letters: {lettered:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let seen = seen.lock().expect("lock").clone();
    let flaky: Vec<&Received> = seen.iter().filter(|r| r.path == "/flaky").collect();
    assert_eq!(flaky.len(), 3, "two failures, then delivered once");
    let attempts: Vec<&str> = flaky
        .iter()
        .map(|r| r.header("x-camtrail-attempt").expect("attempt"))
        .collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let delivered = flaky[2];
    let timestamp: i64 = delivered
        .header("x-camtrail-timestamp")
        .expect("timestamp")
        .parse()
        .expect("ms");
    assert_eq!(
        delivered.header("x-camtrail-signature"),
        Some(camtrail_query::webhooks::signature(&secret, timestamp, &delivered.body).as_str()),
        "signed with the configured key over timestamp and body"
    );
    let hit: Value = serde_json::from_slice(&delivered.body).expect("json");
    assert_eq!(hit["hit_id"], format!("WL-H1/{}", hex(10)));
    assert_eq!(hit["outcome"], "unconfirmed");
    assert!(
        hit.get("webhook_url").is_none(),
        "the hook is not in the payload"
    );
    assert_eq!(
        seen_down
            .lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path == "/down")
            .count(),
        3
    );
    let lettered = std::fs::read_to_string(&dead_letters).expect("dead letters");
    let line: Value = serde_json::from_str(lettered.trim()).expect("one JSON line");
    assert_eq!(line["hit_id"], format!("WL-H2/{}", hex(11)));
    assert_eq!(line["attempts"], 3);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        std::fs::metadata(&dead_letters)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777,
        0o600
    );
}

/// A receiver that accepts connections and never answers: each connection it got.
async fn black_hole() -> (
    std::net::SocketAddr,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(socket);
        }
    });
    (addr, accepted)
}

/// A receiver that never answers holds up no other receiver's hits: it gets at most 8
/// deliveries at once, the hits beyond its queue (1,000) are dead-lettered at once, and
/// the healthy receiver's hit, sent after all of them, arrives meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_webhook_receiver_delays_no_other() {
    let (good, seen) = receiver().await;
    let (silent, connections) = black_hole().await;
    let mut node = Embedded::start(move |query, dir| {
        let path = dir.join("webhook.key");
        std::fs::write(&path, b"0123456789abcdef-webhook-key").expect("key");
        query.watchlist.webhook_hosts = vec![good.to_string(), silent.to_string()];
        query.watchlist.webhook_secret_path = Some(path);
        query.watchlist.webhook_attempts = 2;
        query.watchlist.webhook_backoff_ms = 20;
        query.watchlist.webhook_timeout_ms = 5_000;
        query.watchlist.webhook_dead_letter_path = Some(dir.join("dead_letters.jsonl"));
    })
    .await;
    let now = camtrail_common::now_ms();
    for (id, plate, url) in [
        ("WL-S", "粤B55555", format!("http://{silent}/hook")),
        ("WL-G", "粤B44444", format!("http://{good}/ok")),
    ] {
        let mut body = entry(id, plate, false, now);
        body["webhook_url"] = json!(url);
        node.hooked_entry(body).await;
    }
    // 1,100 hits for the silent receiver, then one for the healthy one.
    let mut events: Vec<_> = (100..1_200).map(|n| event(n, "粤B55555")).collect();
    events.push(event(2_000, "粤B44444"));
    let published = std::time::Instant::now();
    node.publish(events).await;

    // Delivered before the silent receiver's first attempts have even timed out (5 s).
    loop {
        if seen.lock().expect("lock").iter().any(|r| r.path == "/ok") {
            break;
        }
        assert!(
            published.elapsed() < Duration::from_secs(4),
            "the healthy receiver waited behind the silent one"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // What did not fit the silent receiver's queue is dead-lettered, each hit once, at
    // once; the rest wait (in flight: at most 8).
    let dead_letters = node.dir.path().join("dead_letters.jsonl");
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let lines: Vec<Value> = loop {
        let text = std::fs::read_to_string(&dead_letters).unwrap_or_default();
        // Whole lines only: one may be half written as we read.
        let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        let lines: Vec<Value> = whole
            .lines()
            .map(|line| serde_json::from_str(line).expect("a JSON line"))
            .collect();
        if lines.len() >= 80 {
            break lines;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} dead-lettered, want at least 80",
            lines.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let ids: std::collections::BTreeSet<String> = lines
        .iter()
        .map(|line| line["hit_id"].as_str().expect("hit id").to_string())
        .collect();
    assert_eq!(ids.len(), lines.len(), "each hit dead-lettered once");
    assert!(ids.iter().all(|id| id.starts_with("WL-S/")), "{ids:?}");
    assert!(
        lines
            .iter()
            .all(|line| line["attempts"] == 0
                && line["last_error"] == "the receiver's queue is full")
    );
    assert!(
        lines.len() <= 100,
        "{} dead-lettered: the queue holds 1,000",
        lines.len()
    );
    let opened = connections.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (1..=8).contains(&opened),
        "{opened} connections to the silent receiver (at most 8 deliveries at once)"
    );
    assert_eq!(
        seen.lock()
            .expect("lock")
            .iter()
            .filter(|r| r.path == "/ok")
            .count(),
        1
    );
}
