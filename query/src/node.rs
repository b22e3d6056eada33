//! The query node: binds HTTP and gRPC, loads the camera registry and the users file, reads
//! any [`SightingStore`] and audits to any [`AuditLog`] (ClickHouse and Kafka in
//! `camtrail query`, the embedded SQLite database in `camtrail serve`); serves until
//! shutdown: health NOT_SERVING / 503 first, still serving for `shutdown_delay_ms`, then
//! in-flight requests finish and the listeners close.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camtrail_common::ConfigError;
use camtrail_common::Readiness;
use camtrail_common::tls::TlsConfig;
use camtrail_model::CameraRegistry;
use camtrail_proto::v1::query_server::QueryServer;
use camtrail_storage::{AuditLog, Store};
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::Users;
use crate::checkpoint::{CheckpointConfig, Checkpointed, Checkpointer};
use crate::grpc::QueryGrpc;
use crate::http::{HttpState, router};
use crate::metrics::QueryMetrics;
use crate::render::map::MapBackground;
use crate::service::{CaseConfig, QueryLimits, QueryService, WatchlistConfig};
use crate::track::TrackParams;

/// The gRPC service name this node serves.
const SERVICE: &str = "camtrail.v1.Query";

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
    /// How often the node checks whether the registry file changed (e.g. GA/T 1400
    /// checkpoints registered through an ingest node writing the same file) and reloads it,
    /// ms; 0: read once at start.
    pub registry_reload_ms: u64,
    /// Users file (`camtrail users issue`).
    pub users_path: PathBuf,
    /// Time zone answers and maps show times in (times are stored in UTC).
    pub time_zone: String,
    /// How long an audit record may take to become durable before the query fails, ms.
    pub audit_timeout_ms: u64,
    /// At shutdown, how long the node keeps serving after its health turned NOT_SERVING
    /// (gRPC health, `/healthz` 503), so load balancers move to other nodes first, ms.
    pub shutdown_delay_ms: u64,
    /// TLS for HTTP and gRPC (rustls); with `client_ca_path`, clients also need a
    /// certificate. Unset: plain TCP.
    pub tls: Option<TlsConfig>,
    /// Bounds on requests.
    pub limits: QueryLimits,
    /// Track reconstruction tunables.
    pub track: TrackParams,
    /// Signed checkpoints of this node's audit chain for an outside witness
    /// (`[query.audit_checkpoints]`); unset: none.
    pub audit_checkpoints: Option<CheckpointConfig>,
    /// The case registry: offence taxonomy and bounds (`[query.cases]`).
    pub cases: CaseConfig,
    /// Watchlists (`[query.watchlist]`).
    pub watchlist: WatchlistConfig,
    /// An XYZ tile server the workspace draws under its vector layers, e.g. the police
    /// GIS's `https://pgis.example/tiles/{z}/{x}/{y}.png`; unset: the offline base map only
    /// (districts, roads and cameras from the registry).
    pub tile_url: Option<String>,
}

impl Default for QueryConfig {
    fn default() -> Self {
        Self {
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8080)),
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 50052)),
            node_name: "query".into(),
            registry_path: PathBuf::from("cameras.csv"),
            registry_reload_ms: 5_000,
            users_path: PathBuf::from("users.toml"),
            time_zone: "Asia/Shanghai".into(),
            audit_timeout_ms: 5_000,
            shutdown_delay_ms: 1_000,
            tls: None,
            limits: QueryLimits::default(),
            track: TrackParams::default(),
            audit_checkpoints: None,
            cases: CaseConfig::default(),
            watchlist: WatchlistConfig::default(),
            tile_url: None,
        }
    }
}

impl QueryConfig {
    /// Check the values; returns the config unchanged when usable.
    pub fn validate(self) -> Result<Self, ConfigError> {
        self.zone()?;
        if let Some(checkpoints) = &self.audit_checkpoints {
            checkpoints.validate()?;
        }
        self.track
            .validate()
            .map_err(|e| ConfigError(e.to_string()))?;
        if self.cases.categories.is_empty()
            || self.cases.categories.iter().any(|c| {
                c.is_empty()
                    || c.len() > 40
                    || !c
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            })
        {
            return Err(ConfigError::new(
                "query.cases.categories: list at least one category, each 1-40 of a-z 0-9 _",
            ));
        }
        if !self.watchlist.webhook_hosts.is_empty() && self.watchlist.webhook_secret_path.is_none()
        {
            return Err(ConfigError::new(
                "query.watchlist.webhook_hosts needs webhook_secret_path (the signing key)",
            ));
        }
        if !(0..=31 * 86_400_000).contains(&self.watchlist.past_read_ms) {
            return Err(ConfigError::new(
                "query.watchlist.past_read_ms must be 0 (off) to 31 days",
            ));
        }
        if let Some(url) = &self.tile_url
            && (crate::web::origin_of(url).is_none()
                || !["{z}", "{x}", "{y}"].iter().all(|part| url.contains(part)))
        {
            return Err(ConfigError::new(
                "query.tile_url must be an http(s) URL with {z}, {x} and {y}",
            ));
        }
        if !(1..=366).contains(&self.cases.max_days) {
            return Err(ConfigError::new("query.cases.max_days must be 1-366"));
        }
        if self.node_name.trim().is_empty() || self.node_name.contains('/') {
            return Err(ConfigError::new(
                "query.node_name must be non-empty and without '/'",
            ));
        }
        Ok(self)
    }

    /// The display time zone.
    pub fn zone(&self) -> Result<chrono_tz::Tz, ConfigError> {
        self.time_zone.parse().map_err(|_| {
            ConfigError(format!(
                "query.time_zone: unknown time zone {:?}",
                self.time_zone
            ))
        })
    }
}

/// A query node bound to its ports, ready to serve.
pub struct QueryNode {
    listener: TcpListener,
    grpc_listener: TcpListener,
    app: axum::Router,
    grpc: tonic::service::Routes,
    tls: Option<TlsConfig>,
    readiness: Readiness,
    shutdown_delay: Duration,
    registry_watch: Option<RegistryWatch>,
    checkpointer: Option<Arc<Checkpointer>>,
    alerts: Arc<crate::alerts::Alerts>,
}

/// Reloads the registry file when it changes.
struct RegistryWatch {
    path: PathBuf,
    every: Duration,
    replace: Arc<dyn Fn(Arc<CameraRegistry>) + Send + Sync>,
}

impl RegistryWatch {
    /// The file's (modification time, length), to tell a new version.
    fn stamp(path: &std::path::Path) -> Option<(std::time::SystemTime, u64)> {
        let metadata = std::fs::metadata(path).ok()?;
        Some((metadata.modified().ok()?, metadata.len()))
    }

    /// Check every `every` until `stop`; a file that does not load keeps the registry in
    /// force (and is tried again when it changes).
    async fn run(self, stop: CancellationToken) {
        let mut seen = Self::stamp(&self.path);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(self.every) => {}
            }
            let now = Self::stamp(&self.path);
            if now.is_none() || now == seen {
                continue;
            }
            seen = now;
            let path = self.path.clone();
            match tokio::task::spawn_blocking(move || CameraRegistry::from_csv_path(&path)).await {
                Ok(Ok(registry)) => {
                    tracing::info!(cameras = registry.len(), path = %self.path.display(),
                        "camera registry reloaded");
                    // The map background and the base map are built from it: seconds
                    // of CPU for a city, off the runtime's workers.
                    let replace = Arc::clone(&self.replace);
                    let registry = Arc::new(registry);
                    if let Err(error) = tokio::task::spawn_blocking(move || replace(registry)).await
                    {
                        tracing::warn!(%error, "camera registry replacement failed");
                    }
                }
                Ok(Err(error)) => tracing::warn!(%error, path = %self.path.display(),
                    "camera registry changed but does not load; keeping the one in force"),
                Err(error) => tracing::warn!(%error, "camera registry reload failed"),
            }
        }
    }
}

impl QueryNode {
    /// Load the registry and users, bind HTTP and gRPC over `store` and `audit` (the
    /// distributed mode passes ClickHouse and the Kafka audit writer, the embedded mode its
    /// SQLite store and the audit chain in the same database); `store_metrics`, when given,
    /// is served on `/metrics` too.
    pub async fn bind<S: Store, A: AuditLog>(
        config: &QueryConfig,
        store: S,
        audit: A,
        store_metrics: Option<Box<dyn prometheus_client::collector::Collector>>,
    ) -> anyhow::Result<Self> {
        let zone = config.zone()?;
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
        let checkpointer = config
            .audit_checkpoints
            .as_ref()
            .map(|checkpoints| Checkpointer::open(checkpoints, &mut metrics_registry))
            .transpose()?
            .map(Arc::new);
        let audit = Checkpointed::new(audit, checkpointer.clone());
        let map = MapBackground::new(&registry);
        let service = QueryService::new(
            store,
            audit,
            Arc::new(registry),
            config.track.clone(),
            config.limits.clone(),
            metrics,
        )?
        .with_case_config(config.cases.clone())
        .with_watchlist_config(config.watchlist.clone());
        match service.reload_entries().await {
            Ok(entries) => tracing::info!(entries, "watchlist entries loaded"),
            Err(error) => tracing::warn!(%error, "watchlist entries not loaded; matching none \
                until the next change"),
        }
        let alerts = Arc::clone(service.alerts());
        if let Some(settings) = crate::webhooks::WebhookSettings::from_config(&config.watchlist)? {
            tokio::spawn(crate::webhooks::run(alerts.subscribe_matched(), settings));
        }
        let state = Arc::new(HttpState {
            service,
            map: std::sync::RwLock::new(Arc::new(map)),
            users,
            zone,
            web: crate::web::WebSettings::new(config.tile_url.clone()),
        });
        let registry_watch = (config.registry_reload_ms > 0).then(|| {
            let watched = Arc::clone(&state);
            RegistryWatch {
                path: config.registry_path.clone(),
                every: Duration::from_millis(config.registry_reload_ms),
                replace: Arc::new(move |registry| watched.replace_registry(registry)),
            }
        });
        let readiness = Readiness::new();
        let app = router(Arc::clone(&state))
            .merge(crate::web::router(Arc::clone(&state)))
            .merge(camtrail_common::http::router(
                Arc::new(metrics_registry),
                readiness.clone(),
            ));
        let grpc = camtrail_common::grpc::health_and_reflection(
            &readiness,
            &[camtrail_proto::FILE_DESCRIPTOR_SET],
            &[SERVICE],
        )
        .await?
        .add_service(QueryServer::new(QueryGrpc::new(state)));
        let listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP {}", config.http_addr))?;
        let grpc_listener = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC {}", config.grpc_addr))?;
        if let Some(tls) = &config.tls {
            // Fail at start, not at the first connection, when the files are wrong.
            camtrail_common::tls::rustls_config(tls)?;
        }
        Ok(Self {
            listener,
            grpc_listener,
            app,
            grpc,
            tls: config.tls.clone(),
            readiness,
            shutdown_delay: Duration::from_millis(config.shutdown_delay_ms),
            registry_watch,
            checkpointer,
            alerts,
        })
    }

    /// The node's live watchlist matcher: the embedded mode feeds it every committed batch.
    pub fn alerts(&self) -> Arc<crate::alerts::Alerts> {
        Arc::clone(&self.alerts)
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc_listener.local_addr()
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve HTTP and gRPC until `shutdown` resolves; then health turns NOT_SERVING / 503,
    /// the node keeps serving for `shutdown_delay_ms`, in-flight requests finish and the
    /// listeners close.
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
        if let Some(watch) = self.registry_watch {
            tokio::spawn(watch.run(stop.clone()));
        }
        if let Some(checkpointer) = self.checkpointer.clone() {
            let stop = stop.clone();
            tokio::spawn(async move {
                loop {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(checkpointer.every()) => {}
                    }
                    checkpointer.checkpoint_now().await;
                }
            });
        }
        let http = async {
            match &self.tls {
                Some(tls) => {
                    camtrail_common::tls::serve_https(
                        self.listener,
                        self.app,
                        camtrail_common::tls::rustls_config(tls)?,
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
            builder = builder.tls_config(camtrail_common::tls::tonic_server_config(tls)?)?;
        }
        let grpc = builder.add_routes(self.grpc).serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(self.grpc_listener),
            async move { grpc_stop.cancelled().await },
        );
        let (readiness, delay) = (self.readiness.clone(), self.shutdown_delay);
        let alerts = Arc::clone(&self.alerts);
        tokio::spawn(async move {
            shutdown.await;
            readiness.stop().await;
            tracing::info!(
                delay_ms = delay.as_millis() as u64,
                "shutdown: health is NOT_SERVING; still serving for the delay"
            );
            tokio::time::sleep(delay).await;
            // Live alert streams end, or they would hold the graceful shutdown forever.
            alerts.close();
            stop.cancel();
        });
        let (http, grpc) = tokio::join!(http, grpc);
        // Every request has finished: the last records are covered before the node exits.
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.checkpoint_now().await;
        }
        http?;
        grpc.context("serving gRPC")?;
        tracing::info!("query node stopped");
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tile_server_must_be_an_http_url_with_its_three_placeholders() {
        let with = |url: &str| {
            QueryConfig {
                tile_url: Some(url.into()),
                ..QueryConfig::default()
            }
            .validate()
        };
        assert!(with("https://pgis.example/tiles/{z}/{x}/{y}.png").is_ok());
        assert!(with("https://pgis.example/tiles/{z}/{x}.png").is_err());
        assert!(with("file:///tiles/{z}/{x}/{y}.png").is_err());
        assert!(with("https://pgis.example'; script-src */{z}/{x}/{y}").is_err());
        assert!(QueryConfig::default().validate().is_ok());
    }
}
