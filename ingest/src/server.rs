//! Building and running an ingest node: gRPC (Ingest, health, reflection) and HTTP, with an
//! ordered shutdown: stop reading streams → finish and ack in-flight batches → flush the
//! producer → close the servers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camtrail_model::CameraRegistry;
use camtrail_proto::lenient_ingest_server::ingest_server::IngestServer;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::GatewayAuth;
use crate::config::IngestConfig;
use crate::kafka::{KafkaConfig, KafkaPublisher};
use crate::metrics::IngestMetrics;
use crate::publish::Publisher;
use crate::service::{IngestService, IngestState};
use crate::validate::Validator;

/// An ingest node with its listeners bound (ports known), not yet serving.
pub struct IngestNode {
    config: IngestConfig,
    state: Arc<IngestState>,
    registry: Arc<Registry>,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
}

impl IngestNode {
    /// Load the registry and credentials, create the producer and bind both ports
    /// (port 0 picks a free one).
    pub async fn bind(config: IngestConfig, kafka: &KafkaConfig) -> anyhow::Result<Self> {
        let cameras = CameraRegistry::from_csv_path(&config.registry_path)?;
        let auth = GatewayAuth::from_path(&config.gateway_tokens_path)?;
        Self::bind_with(config, kafka, Arc::new(cameras), auth).await
    }

    /// Like [`IngestNode::bind`] with the registry and credentials given directly.
    pub async fn bind_with(
        config: IngestConfig,
        kafka: &KafkaConfig,
        cameras: Arc<CameraRegistry>,
        auth: GatewayAuth,
    ) -> anyhow::Result<Self> {
        let publisher =
            KafkaPublisher::new(&kafka.brokers, &kafka.detections_topic, &config.producer)
                .context("creating the Kafka producer")?;
        Self::bind_with_publisher(config, cameras, auth, Arc::new(publisher)).await
    }

    /// Like [`IngestNode::bind_with`] with any [`Publisher`] making batches durable (the
    /// embedded mode passes its SQLite writer).
    pub async fn bind_with_publisher(
        config: IngestConfig,
        cameras: Arc<CameraRegistry>,
        auth: GatewayAuth,
        publisher: Arc<dyn Publisher>,
    ) -> anyhow::Result<Self> {
        let mut registry = Registry::default();
        let metrics = Arc::new(IngestMetrics::register(&mut registry));
        let state = Arc::new(IngestState {
            auth,
            validator: Arc::new(Validator::new(config.validation.clone(), cameras)),
            publisher,
            metrics,
            node_permits: Arc::new(Semaphore::new(config.max_in_flight_batches)),
            validation_permits: Semaphore::new(validation_parallelism()),
            max_in_flight_per_stream: config.max_in_flight_per_stream,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC {}", config.grpc_addr))?;
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP {}", config.http_addr))?;
        Ok(Self {
            config,
            state,
            registry: Arc::new(registry),
            grpc_listener,
            http_listener,
        })
    }

    /// Bound gRPC address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc_listener.local_addr()
    }

    /// Bound HTTP address.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http_listener.local_addr()
    }

    /// Serve until `shutdown` resolves, then shut down in order.
    pub async fn run_until_stopped(self, shutdown: impl Future<Output = ()>) -> anyhow::Result<()> {
        let Self {
            config,
            state,
            registry,
            grpc_listener,
            http_listener,
        } = self;
        let grace = Duration::from_millis(config.shutdown_grace_ms);
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;
        let stop = state.shutdown.clone();
        let servers_stop = CancellationToken::new();

        let grpc = grpc_server(&config, &state, grpc_listener, servers_stop.clone())?;
        let http_router = crate::http::router(registry, stop.clone());
        let http_stop = servers_stop.clone();
        let http = tokio::spawn(async move {
            axum::serve(http_listener, http_router)
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .await
        });
        let grpc = tokio::spawn(grpc);
        tracing::info!(
            grpc = %grpc_addr,
            http = %http_addr,
            backend = state.publisher.backend(),
            "ingest node serving"
        );

        shutdown.await;
        tracing::info!("shutdown: no more batches are read; draining in-flight batches");
        stop.cancel();
        state.tasks.close();
        if tokio::time::timeout(grace, state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: streams did not drain within {grace:?}");
        }
        let flush_state = Arc::clone(&state);
        let flushed =
            tokio::task::spawn_blocking(move || flush_state.publisher.flush(grace)).await?;
        if let Err(error) = flushed {
            tracing::warn!(%error, "shutdown: publisher flush incomplete");
        }
        servers_stop.cancel();
        grpc.await?.context("gRPC server")?;
        http.await?.context("HTTP server")?;
        tracing::info!("ingest node stopped");
        Ok(())
    }
}

/// Two validations per core keep every core busy while one waits to be scheduled.
fn validation_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// The gRPC server future: Ingest (lenient decoding), health and reflection.
fn grpc_server(
    config: &IngestConfig,
    state: &Arc<IngestState>,
    listener: TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<impl Future<Output = Result<(), tonic::transport::Error>> + use<>> {
    let ingest = IngestServer::new(IngestService::new(Arc::clone(state)))
        .max_decoding_message_size(config.max_message_bytes);
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(camtrail_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        // The descriptor set holds the whole camtrail.v1 package; advertise only what this
        // node serves.
        .with_service_name("camtrail.v1.Ingest")
        .with_service_name("grpc.health.v1.Health")
        .build_v1()?;
    let (health_reporter, health) = tonic_health::server::health_reporter();
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(crate::tls::server_config(tls)?)?;
    }
    let router = builder
        .add_service(ingest)
        .add_service(health)
        .add_service(reflection);
    let incoming = TcpListenerStream::new(listener);
    Ok(async move {
        health_reporter
            .set_service_status("camtrail.v1.Ingest", tonic_health::ServingStatus::Serving)
            .await;
        let result = router
            .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
            .await;
        health_reporter
            .set_service_status(
                "camtrail.v1.Ingest",
                tonic_health::ServingStatus::NotServing,
            )
            .await;
        result
    })
}
