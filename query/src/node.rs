//! `camtrail query`: the query node. Binds HTTP and gRPC, loads the camera registry and the users
//! file, reads ClickHouse and writes its audit chain to Kafka (or, in `camtrail serve`, reads
//! and audits in the embedded SQLite database); serves until shutdown.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use camtrail_ingest::config::TlsConfig;
use camtrail_ingest::kafka::{AuditWriter, KafkaConfig};
use camtrail_model::CameraRegistry;
use camtrail_model::audit::AuditChain;
use camtrail_store::clickhouse::ClickhouseConfig;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use camtrail_proto::v1::query_server::QueryServer;

use crate::audit::AuditLog;
use crate::auth::Users;
use crate::grpc::QueryGrpc;
use crate::http::{HttpState, router};
use crate::metrics::QueryMetrics;
use crate::service::{QueryLimits, QueryService};
use crate::store::SightingStore;
use crate::store::clickhouse::ClickhouseStore;
use crate::track::TrackParams;

/// The `[query]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryConfig {
    /// HTTP API, metrics and health.
    pub http_addr: SocketAddr,
    /// gRPC `camtrail.v1.Query` (with health and reflection).
    pub grpc_addr: SocketAddr,
    /// Name of this node; its audit chains are `<node_name>/<start ms>`.
    pub node_name: String,
    /// Camera registry CSV (as written by `camtrail city`).
    pub registry_path: PathBuf,
    /// Users file (`camtrail users issue`).
    pub users_path: PathBuf,
    /// Time zone answers and maps show times in (times are stored in UTC).
    pub time_zone: String,
    /// How long an audit record may take to become durable before the query fails, ms.
    pub audit_timeout_ms: u64,
    /// TLS for HTTP and gRPC (rustls); with `client_ca_path`, clients also need a
    /// certificate. Unset: plain TCP.
    pub tls: Option<TlsConfig>,
    /// Bounds on requests.
    pub limits: QueryLimits,
    /// Track reconstruction tunables.
    pub track: TrackParams,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 50052)),
            node_name: "query".into(),
            registry_path: PathBuf::from("cameras.csv"),
            users_path: PathBuf::from("users.toml"),
            time_zone: "Asia/Shanghai".into(),
            audit_timeout_ms: 5_000,
            tls: None,
            limits: QueryLimits::default(),
            track: TrackParams::default(),
        }
    }
}

impl QueryConfig {
    /// Check the values; returns the config unchanged when usable.
    pub fn validate(self) -> Result<Self, String> {
        self.zone()?;
        self.track.validate().map_err(|e| e.to_string())?;
        if self.node_name.trim().is_empty() || self.node_name.contains('/') {
            return Err("query.node_name must be non-empty and without '/'".into());
        }
        Ok(self)
    }

    /// The display time zone.
    pub fn zone(&self) -> Result<chrono_tz::Tz, String> {
        self.time_zone
            .parse()
            .map_err(|_| format!("query.time_zone: unknown time zone {:?}", self.time_zone))
    }
}

/// A query node bound to its ports, ready to serve.
pub struct QueryNode {
    listener: TcpListener,
    grpc_listener: TcpListener,
    app: Router,
    grpc: tonic::service::Routes,
    tls: Option<TlsConfig>,
}

type Router = axum::Router;

impl QueryNode {
    /// Load the registry and users, connect the audit producer, bind HTTP and gRPC
    /// (distributed mode: reads ClickHouse, audits to Kafka).
    pub async fn bind(
        config: &QueryConfig,
        kafka: &KafkaConfig,
        clickhouse: &ClickhouseConfig,
    ) -> anyhow::Result<Self> {
        let started_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
        let chain = AuditChain::new(format!("{}/{started_ms}", config.node_name));
        tracing::info!(chain = chain.node_id(), "audit chain started");
        let audit = AuditWriter::new(
            &kafka.brokers,
            &kafka.audit_topic,
            chain,
            Duration::from_millis(config.audit_timeout_ms),
        )
        .context("creating the audit producer")?;
        Self::bind_with(config, ClickhouseStore::new(clickhouse), audit, None).await
    }

    /// Bind HTTP and gRPC over any store and audit log (the embedded mode passes its
    /// SQLite store and the audit chain in the same database); `store_metrics`, when given,
    /// is served on `/metrics` too.
    pub async fn bind_with<S: SightingStore, A: AuditLog>(
        config: &QueryConfig,
        store: S,
        audit: A,
        store_metrics: Option<Box<dyn prometheus_client::collector::Collector>>,
    ) -> anyhow::Result<Self> {
        let zone = config.zone().map_err(anyhow::Error::msg)?;
        let registry = CameraRegistry::from_csv_path(&config.registry_path).with_context(|| {
            format!(
                "loading the camera registry {}",
                config.registry_path.display()
            )
        })?;
        let users = Users::from_path(&config.users_path)?;
        if users.is_empty() {
            anyhow::bail!("{} has no users", config.users_path.display());
        }
        let mut metrics_registry = Registry::default();
        if let Some(collector) = store_metrics {
            metrics_registry.register_collector(collector);
        }
        let metrics = QueryMetrics::register(&mut metrics_registry);
        let service = QueryService::new(
            store,
            audit,
            Arc::new(registry),
            config.track.clone(),
            config.limits.clone(),
            metrics,
        )?;
        let state = Arc::new(HttpState {
            service,
            users,
            zone,
        });
        let shutdown = CancellationToken::new();
        let app = router(Arc::clone(&state)).merge(camtrail_ingest::http::router(
            Arc::new(metrics_registry),
            shutdown,
        ));
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(camtrail_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .with_service_name("camtrail.v1.Query")
            .with_service_name("grpc.health.v1.Health")
            .build_v1()?;
        let (health_reporter, health) = tonic_health::server::health_reporter();
        health_reporter
            .set_service_status("camtrail.v1.Query", tonic_health::ServingStatus::Serving)
            .await;
        let grpc = tonic::service::Routes::new(QueryServer::new(QueryGrpc::new(state)))
            .add_service(health)
            .add_service(reflection);
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP {}", config.http_addr))?;
        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC {}", config.grpc_addr))?;
        if let Some(tls) = &config.tls {
            // Fail at start, not at the first connection, when the files are wrong.
            crate::tls::rustls_config(tls)?;
        }
        Ok(Self {
            listener,
            grpc_listener,
            app,
            grpc,
            tls: config.tls.clone(),
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc_listener.local_addr()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve HTTP and gRPC until `shutdown` resolves; in-flight requests finish first.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        tracing::info!(
            http = %self.listener.local_addr()?,
            grpc = %self.grpc_listener.local_addr()?,
            "query node serving"
        );
        let stop = CancellationToken::new();
        let (http_stop, grpc_stop) = (stop.clone(), stop.clone());
        let http = async {
            match &self.tls {
                Some(tls) => {
                    crate::tls::serve_https(
                        self.listener,
                        self.app,
                        crate::tls::rustls_config(tls)?,
                        async move { http_stop.cancelled().await },
                    )
                    .await
                }
                None => axum::serve(
                    self.listener,
                    self.app.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .await
                .context("serving HTTP"),
            }
        };
        let mut builder = tonic::transport::Server::builder();
        if let Some(tls) = &self.tls {
            builder = builder.tls_config(camtrail_ingest::tls::server_config(tls)?)?;
        }
        let grpc = builder.add_routes(self.grpc).serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(self.grpc_listener),
            async move { grpc_stop.cancelled().await },
        );
        tokio::spawn(async move {
            shutdown.await;
            stop.cancel();
        });
        let (http, grpc) = tokio::join!(http, grpc);
        http?;
        grpc.context("serving gRPC")?;
        tracing::info!("query node stopped");
        Ok(())
    }
}
