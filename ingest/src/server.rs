//! Building and running an ingest node: gRPC (Ingest, health, reflection) and HTTP, with an
//! ordered shutdown: health turns NOT_SERVING (gRPC health, `/healthz` 503) while the node
//! still serves for `shutdown_delay_ms` → stop reading streams → finish and ack in-flight
//! batches → flush the publisher → close the servers.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camtrail_common::Readiness;
use camtrail_model::CameraRegistry;
use camtrail_proto::lenient_ingest_server::ingest_server::IngestServer;
use camtrail_storage::Publisher;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::auth::GatewayAuth;
use crate::config::IngestConfig;
use crate::gat1400::Gat1400Server;
use crate::gat1400::devices::DeviceTable;
use crate::gat1400::registry::RegistryHook;
use crate::metrics::IngestMetrics;
use crate::permits::NodePermits;
use crate::service::{IngestService, IngestState};
use crate::validate::Validator;

/// The gRPC service name this node serves.
const SERVICE: &str = "camtrail.v1.Ingest";

/// An ingest node with its listeners bound (ports known), not yet serving.
pub struct IngestNode {
    config: IngestConfig,
    state: Arc<IngestState>,
    registry: Arc<Registry>,
    readiness: Readiness,
    grpc_listener: TcpListener,
    http_listener: TcpListener,
    gat1400: Option<Gat1400Server>,
}

impl IngestNode {
    /// Load the camera registry and the gateway credentials named by `config`, and bind
    /// both ports (port 0 picks a free one). `publisher` makes accepted batches durable:
    /// Kafka (`camtrail ingest`) or the embedded database (`camtrail serve`).
    pub async fn bind(config: IngestConfig, publisher: Arc<dyn Publisher>) -> anyhow::Result<Self> {
        let cameras = CameraRegistry::from_csv_path(&config.registry_path).with_context(|| {
            format!(
                "loading the camera registry {}",
                config.registry_path.display()
            )
        })?;
        let auth = GatewayAuth::from_path(&config.gateway_tokens_path)?;
        let devices = if config.gat1400.enabled {
            Some(DeviceTable::from_path(&config.gat1400.devices_path)?)
        } else {
            None
        };
        let registry_file = Some(config.registry_path.clone());
        Self::bind_inner(
            config,
            Arc::new(cameras),
            auth,
            devices,
            registry_file,
            publisher,
        )
        .await
    }

    /// Like [`IngestNode::bind`] with the registry and credentials given directly; GA/T 1400
    /// (if enabled) reads its device file, and registry updates stay in memory.
    pub async fn bind_with(
        config: IngestConfig,
        cameras: Arc<CameraRegistry>,
        auth: GatewayAuth,
        publisher: Arc<dyn Publisher>,
    ) -> anyhow::Result<Self> {
        let devices = if config.gat1400.enabled {
            Some(DeviceTable::from_path(&config.gat1400.devices_path)?)
        } else {
            None
        };
        Self::bind_inner(config, cameras, auth, devices, None, publisher).await
    }

    async fn bind_inner(
        config: IngestConfig,
        cameras: Arc<CameraRegistry>,
        auth: GatewayAuth,
        devices: Option<DeviceTable>,
        registry_file: Option<std::path::PathBuf>,
        publisher: Arc<dyn Publisher>,
    ) -> anyhow::Result<Self> {
        let mut registry = Registry::default();
        let metrics = Arc::new(IngestMetrics::register(&mut registry));
        let node_permits = NodePermits::new(
            config.max_in_flight_batches,
            config.max_in_flight_per_gateway,
            metrics.node_permits_free.clone(),
        );
        let state = Arc::new(IngestState {
            auth,
            validator: Arc::new(Validator::new(config.validation.clone(), cameras)),
            publisher,
            metrics,
            node_permits,
            validation_permits: Semaphore::new(validation_parallelism()),
            max_in_flight_per_stream: config.max_in_flight_per_stream,
            max_batch_events: config.max_batch_events,
            ack_timeout: Duration::from_millis(config.ack_timeout_ms),
            shutdown_ack_wait: Duration::from_millis(config.shutdown_grace_ms / 2),
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC {}", config.grpc_addr))?;
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP {}", config.http_addr))?;
        let gat1400 = match devices {
            Some(devices) => Some(
                Gat1400Server::bind_with(
                    &config.gat1400,
                    Arc::clone(&state),
                    devices,
                    registry_file,
                    &mut registry,
                )
                .await?,
            ),
            None => None,
        };
        Ok(Self {
            config,
            state,
            registry: Arc::new(registry),
            readiness: Readiness::new(),
            grpc_listener,
            http_listener,
            gat1400,
        })
    }

    /// Bound GA/T 1400 address, when enabled.
    pub fn gat1400_addr(&self) -> Option<SocketAddr> {
        self.gat1400
            .as_ref()
            .and_then(|server| server.local_addr().ok())
    }

    /// Replace a backend copy of the registry too whenever GA/T 1400 checkpoints update it
    /// (the distributed mode's ClickHouse `cameras` table).
    pub fn add_registry_hook(&self, hook: RegistryHook) {
        if let Some(server) = &self.gat1400 {
            server.add_registry_hook(hook);
        }
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
            readiness,
            grpc_listener,
            http_listener,
            gat1400,
        } = self;
        let grace = Duration::from_millis(config.shutdown_grace_ms);
        let grpc_addr = grpc_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;
        let servers_stop = CancellationToken::new();

        let grpc = grpc_server(
            &config,
            &state,
            &readiness,
            grpc_listener,
            servers_stop.clone(),
        )
        .await?;
        let http_router = camtrail_common::http::router(registry, readiness.clone());
        let http_stop = servers_stop.clone();
        let http = tokio::spawn(async move {
            axum::serve(http_listener, http_router)
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .await
        });
        let grpc = tokio::spawn(grpc);
        let gat1400_addr = gat1400.as_ref().and_then(|server| server.local_addr().ok());
        let gat1400 = gat1400.map(|server| {
            let stop = servers_stop.clone();
            let tls = config.tls.clone();
            tokio::spawn(async move { server.serve(tls.as_ref(), stop).await })
        });
        tracing::info!(
            grpc = %grpc_addr,
            http = %http_addr,
            gat1400 = ?gat1400_addr,
            backend = state.publisher.backend(),
            "ingest node serving"
        );

        shutdown.await;
        readiness.stop().await;
        let delay = Duration::from_millis(config.shutdown_delay_ms);
        tracing::info!(
            delay_ms = config.shutdown_delay_ms,
            "shutdown: health is NOT_SERVING; still serving for the delay"
        );
        tokio::time::sleep(delay).await;
        tracing::info!("shutdown: no more batches are read; draining in-flight batches");
        state.shutdown.cancel();
        state.tasks.close();
        // Draining, flushing and closing share one grace period.
        let deadline = tokio::time::Instant::now() + grace;
        let left = || deadline.saturating_duration_since(tokio::time::Instant::now());
        if tokio::time::timeout_at(deadline, state.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("shutdown: streams did not drain within {grace:?}");
        }
        let flush_state = Arc::clone(&state);
        let flush_for = left();
        let flushed =
            tokio::task::spawn_blocking(move || flush_state.publisher.flush(flush_for)).await?;
        if let Err(error) = flushed {
            tracing::warn!(%error, "shutdown: publisher flush incomplete");
        }
        servers_stop.cancel();
        // A connection whose peer never reads (a stuck response) must not hold the node.
        let mut grpc = grpc;
        match tokio::time::timeout(left().max(Duration::from_millis(500)), &mut grpc).await {
            Ok(served) => served?.context("gRPC server")?,
            Err(_) => {
                tracing::warn!("shutdown: gRPC connections did not close within the grace");
                grpc.abort();
            }
        }
        http.await?.context("HTTP server")?;
        if let Some(gat1400) = gat1400 {
            gat1400.await?.context("GA/T 1400 HTTP server")?;
        }
        tracing::info!("ingest node stopped");
        Ok(())
    }
}

/// Two validations per core keep every core busy while one waits to be scheduled.
fn validation_parallelism() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get() * 2)
}

/// The gRPC server future: Ingest (lenient decoding), health and reflection.
async fn grpc_server(
    config: &IngestConfig,
    state: &Arc<IngestState>,
    readiness: &Readiness,
    listener: TcpListener,
    stop: CancellationToken,
) -> anyhow::Result<impl Future<Output = Result<(), tonic::transport::Error>> + use<>> {
    let ingest = IngestServer::new(IngestService::new(Arc::clone(state)))
        .max_decoding_message_size(config.max_message_bytes);
    let routes = camtrail_common::grpc::health_and_reflection(
        readiness,
        &[camtrail_proto::FILE_DESCRIPTOR_SET],
        &[SERVICE],
    )
    .await?
    .add_service(ingest);
    let mut builder = tonic::transport::Server::builder();
    if let Some(tls) = &config.tls {
        builder = builder.tls_config(camtrail_common::tls::tonic_server_config(tls)?)?;
    }
    let router = builder.add_routes(routes);
    let incoming = TcpListenerStream::new(listener);
    Ok(async move {
        router
            .serve_with_incoming_shutdown(incoming, async move { stop.cancelled().await })
            .await
    })
}
