//! A real ingest node on 127.0.0.1:0 in front of the real Kafka broker (per-test topics) or,
//! for the code paths `camtrail serve` shares, an embedded SQLite database.

use std::sync::Arc;
use std::time::Duration;

use camtrail_ingest::auth::{GatewayAuth, IssuedToken, render_token_files};
use camtrail_ingest::config::IngestConfig;
use camtrail_ingest::server::IngestNode;
use camtrail_kafka::{KafkaConfig, KafkaPublisher, ProducerConfig, ensure_topics};
use camtrail_model::{Camera, CameraRegistry, Detection};
use camtrail_proto::v1;
use camtrail_proto::v1::ingest_client::IngestClient;
use camtrail_sqlite::SqliteStore;
use camtrail_storage::Publisher;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tonic::transport::Channel;

pub const GATEWAY_A: &str = "gw-a";
pub const GATEWAY_B: &str = "gw-b";
pub const CAMERA_A: &str = "44030000001310000001";
pub const CAMERA_B: &str = "44030000001310000002";

/// Kafka settings with topics unique to this test.
pub fn kafka_config(test: &str) -> KafkaConfig {
    let prefix = camtrail_testkit::unique_name(test);
    KafkaConfig {
        brokers: camtrail_testkit::require_kafka(),
        detections_topic: format!("{prefix}.detections.v1"),
        dead_letter_topic: format!("{prefix}.dlq.v1"),
        audit_topic: format!("{prefix}.audit.v1"),
        alerts_topic: format!("{prefix}.alerts.v1"),
        detections_partitions: 3,
        replication_factor: 1,
    }
}

fn camera(id: &str, gateway: &str) -> Camera {
    Camera {
        camera_id: id.into(),
        district: "Futian".into(),
        lat: 22.54,
        lon: 114.05,
        heading_deg: 90.0,
        road: "Shennan Rd".into(),
        gateway_id: gateway.into(),
    }
}

/// A valid vehicle event `n` at `camera`, captured now.
pub fn event(n: u32, camera: &str) -> v1::DetectionEvent {
    let mut event_id = [0xC7u8; 16];
    event_id[..4].copy_from_slice(&n.to_be_bytes());
    let now_ms = camtrail_common::now_ms();
    v1::DetectionEvent {
        event_id: event_id.to_vec(),
        camera_id: camera.into(),
        captured_at_ms: now_ms - 1_000,
        object_class: v1::ObjectClass::Vehicle as i32,
        plate: "粤S·12345".into(),
        plate_confidence: 0.9,
        subject_key: String::new(),
        vehicle_color: v1::VehicleColor::Black as i32,
        vehicle_type: v1::VehicleType::Car as i32,
        bbox: Some(v1::BoundingBox {
            x: 1,
            y: 2,
            width: 30,
            height: 20,
        }),
        snapshot: Vec::new(),
        plate_color: v1::PlateColor::Blue as i32,
        vehicle_brand: "大众".into(),
        direction: v1::Direction::East as i32,
        speed_kmh: 42.0,
        plate_char_confidence: vec![90, 95, 99, 99, 98, 97, 96],
    }
}

/// Where the node's accepted events go.
#[derive(Debug, Clone, Copy)]
pub enum Backend {
    /// The real broker (`camtrail ingest`).
    Kafka,
    /// An embedded database in a temporary directory (`camtrail serve`).
    Sqlite,
}

pub struct TestNode {
    pub kafka: KafkaConfig,
    grpc: String,
    http: std::net::SocketAddr,
    tokens: Vec<IssuedToken>,
    /// The GA/T 1400 endpoint, when the configuration enabled it.
    pub gat1400: Option<std::net::SocketAddr>,
    _database: Option<tempfile::TempDir>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<anyhow::Result<()>>>,
}

impl TestNode {
    pub async fn start(test: &str) -> Self {
        Self::start_with(test, |_| {}).await
    }

    /// Start with a customised configuration (e.g. TLS).
    pub async fn start_with(test: &str, customize: impl FnOnce(&mut IngestConfig)) -> Self {
        Self::start_on(test, Backend::Kafka, customize).await
    }

    /// Start in front of `backend` with a customised configuration.
    pub async fn start_on(
        test: &str,
        backend: Backend,
        customize: impl FnOnce(&mut IngestConfig),
    ) -> Self {
        let kafka = kafka_config(test);
        let mut database = None;
        let publisher: Arc<dyn Publisher> = match backend {
            Backend::Kafka => {
                ensure_topics(&kafka, Duration::from_secs(30))
                    .await
                    .expect("topics");
                Arc::new(
                    KafkaPublisher::new(
                        &kafka.brokers,
                        &kafka.detections_topic,
                        &ProducerConfig::default(),
                    )
                    .expect("producer"),
                )
            }
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("tempdir");
                let store = SqliteStore::open(&dir.path().join("camtrail.db")).expect("open");
                database = Some(dir);
                Arc::new(store)
            }
        };
        let tokens = vec![IssuedToken::mint(GATEWAY_A), IssuedToken::mint(GATEWAY_B)];
        let (_, hashes) = render_token_files(&tokens);
        let auth = GatewayAuth::parse(&hashes).expect("auth");
        let cameras = CameraRegistry::new(vec![
            camera(CAMERA_A, GATEWAY_A),
            camera(CAMERA_B, GATEWAY_B),
        ])
        .expect("registry");
        let mut config = IngestConfig {
            grpc_addr: "127.0.0.1:0".parse().expect("addr"),
            http_addr: "127.0.0.1:0".parse().expect("addr"),
            max_message_bytes: 1024 * 1024,
            shutdown_grace_ms: 5_000,
            ..IngestConfig::default()
        };
        customize(&mut config);
        let node = IngestNode::bind_with(config, Arc::new(cameras), auth, publisher)
            .await
            .expect("bind");
        let grpc = format!("http://{}", node.grpc_addr().expect("grpc addr"));
        let http = node.http_addr().expect("http addr");
        let gat1400 = node.gat1400_addr();
        let (stop_tx, stop_rx) = oneshot::channel();
        let task = tokio::spawn(node.run_until_stopped(async move {
            let _ = stop_rx.await;
        }));
        Self {
            kafka,
            grpc,
            http,
            tokens,
            gat1400,
            _database: database,
            stop: Some(stop_tx),
            task: Some(task),
        }
    }

    /// The bound gRPC port.
    pub fn grpc_port(&self) -> u16 {
        self.grpc
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port")
    }

    /// The gRPC endpoint URL.
    pub fn grpc_url(&self) -> &str {
        &self.grpc
    }

    pub async fn client(&self) -> IngestClient<Channel> {
        IngestClient::connect(self.grpc.clone())
            .await
            .expect("connect")
    }

    /// A request carrying gateway A's token.
    pub fn authed<T>(&self, message: T) -> tonic::Request<T> {
        self.authed_as(GATEWAY_A, message)
    }

    /// A request carrying `gateway`'s token (A or B).
    pub fn authed_as<T>(&self, gateway: &str, message: T) -> tonic::Request<T> {
        let token = self
            .tokens
            .iter()
            .find(|t| t.gateway_id == gateway)
            .expect("a test gateway");
        let mut request = tonic::Request::new(message);
        let value = format!("Bearer {}", token.token).parse().expect("header");
        request.metadata_mut().insert("authorization", value);
        request
    }

    /// The value of the sample `name` (with its labels, as printed) on `/metrics`; 0 when
    /// absent.
    pub async fn metric(&self, sample: &str) -> f64 {
        let text = self.metrics().await;
        text.lines()
            .find_map(|line| {
                let (name, value) = line.rsplit_once(' ')?;
                (name == sample).then(|| value.parse().ok())?
            })
            .unwrap_or(0.0)
    }

    /// Read the detections topic from the beginning until `expected` records or `timeout`.
    pub fn read_topic(&self, expected: usize, timeout: Duration) -> Vec<Detection> {
        camtrail_testkit::read_detections(
            &self.kafka.brokers,
            &self.kafka.detections_topic,
            self.kafka.detections_partitions,
            expected,
            timeout,
        )
    }

    /// The `/metrics` text.
    pub async fn metrics(&self) -> String {
        camtrail_testkit::http_get(self.http, "/metrics").await
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.expect("join").expect("node stopped cleanly");
        }
    }
}
