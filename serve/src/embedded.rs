//! `camtrail serve`: the embedded mode (ARCHITECTURE.md, "Two ways to run") — the ingest node's
//! gRPC service, the query node's HTTP and gRPC APIs and one SQLite database in one process.
//!
//! The parts are the distributed roles' own, with transport and storage swapped: the ingest
//! node's [`Publisher`](camtrail_storage::Publisher) is the [`SqliteStore`] (a batch is
//! acked once the group transaction holding it has committed), and the query node reads the
//! same database and appends its audit chain to it. Configured by the `[ingest]` and
//! `[query]` sections as the distributed roles are, plus `[serve]`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use camtrail_ingest::config::IngestConfig;
use camtrail_ingest::server::IngestNode;
use camtrail_model::watchlist::{Alert, HitRecord};
use camtrail_query::alerts::{Alerts, Sighted};
use camtrail_query::node::{QueryConfig, QueryNode};
use camtrail_sqlite::{SqliteRetentionPlan, SqliteStore, StoreMetrics};
use camtrail_storage::retention::{self, RetentionError};
use camtrail_storage::{Publisher, RetentionOutcome, RetentionRun, StorageError};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// The `[serve]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// The SQLite database (created if missing; `-wal`, `-shm` and `.lock` files sit
    /// beside it). One process owns it at a time.
    pub database_path: PathBuf,
    /// Keep this many days: when set, `serve` applies retention at start and every 24 h
    /// (audited first, in the database's `retention` chain). The database belongs to the
    /// running node, so `camtrail retention apply --embedded` works only while it is
    /// stopped.
    pub retention_days: Option<u32>,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            database_path: PathBuf::from("camtrail.db"),
            retention_days: None,
        }
    }
}

/// Retention on the embedded database: plan, write the audit record (chain `retention` in
/// the same database), then delete; if the record cannot be written nothing is deleted. The
/// audit log itself is never touched.
pub async fn apply_retention(
    store: &SqliteStore,
    run: &RetentionRun,
    now_ms: i64,
) -> Result<RetentionOutcome<SqliteRetentionPlan, u64>, RetentionError> {
    let audit = store
        .audit_log("retention")
        .await
        .map_err(RetentionError::Audit)?;
    retention::apply(store, store, &audit, run, now_ms).await
}

/// The embedded store as the ingest node's publisher, matching each batch against the
/// watchlist once it has committed.
struct Watched {
    store: SqliteStore,
    alerts: Arc<Alerts>,
}

impl Publisher for Watched {
    fn backend(&self) -> &'static str {
        self.store.backend()
    }

    fn publish(
        &self,
        detections: Vec<camtrail_model::Detection>,
    ) -> camtrail_storage::PublishFuture<'_> {
        // What matching needs, taken before the batch (thumbnails and all) moves on.
        let sighted: Vec<Sighted> = if self.alerts.has_entries() {
            detections.iter().map(Sighted::of).collect()
        } else {
            Vec::new()
        };
        Box::pin(async move {
            self.store.publish(detections).await?;
            let alerts = self.alerts.check(&sighted);
            if !alerts.is_empty() {
                // Kept for review off the ack's path (the hits are already sent).
                let store = self.store.clone();
                tokio::spawn(async move {
                    for alert in alerts {
                        store_hit(&store, &alert).await;
                    }
                });
            }
            Ok(())
        })
    }

    fn in_flight(&self) -> i64 {
        self.store.in_flight()
    }

    fn flush(&self, timeout: std::time::Duration) -> Result<(), StorageError> {
        self.store.flush(timeout)
    }
}

/// Keep a hit for its review (a hit delivered twice is kept once; one that cannot be
/// written was still sent, and is logged).
async fn store_hit(store: &SqliteStore, alert: &Alert) {
    use camtrail_storage::WatchlistStore as _;
    match store.put_hit(&HitRecord::new(alert.clone())).await {
        Ok(()) | Err(StorageError::Conflict { .. }) => {}
        Err(error) => tracing::warn!(%error, "a watchlist hit was sent but not stored"),
    }
}

/// Ingest and query nodes over one SQLite database, bound to their ports.
pub struct EmbeddedNode {
    ingest: IngestNode,
    query: QueryNode,
    store: SqliteStore,
    retention_days: Option<u32>,
}

/// The addresses an embedded node listens on.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedAddrs {
    /// Ingest gRPC (`camtrail.v1.Ingest`).
    pub ingest_grpc: SocketAddr,
    /// Ingest metrics and health.
    pub ingest_http: SocketAddr,
    /// GA/T 1400 HTTP, when `[ingest.gat1400]` is enabled.
    pub ingest_gat1400: Option<SocketAddr>,
    /// Query HTTP API (also metrics and health).
    pub query_http: SocketAddr,
    /// Query gRPC (`camtrail.v1.Query`).
    pub query_grpc: SocketAddr,
}

impl EmbeddedNode {
    /// Open the database, load the registry, gateway credentials and users, bind every port
    /// (port 0 picks a free one). The audit chain is `query.node_name`, continued where the
    /// database's copy ends.
    pub async fn bind(
        serve: &ServeConfig,
        ingest: IngestConfig,
        query: &QueryConfig,
    ) -> anyhow::Result<Self> {
        let store = SqliteStore::open(&serve.database_path)
            .with_context(|| format!("opening {}", serve.database_path.display()))?;
        let audit = store.audit_log(&query.node_name).await?;
        let metrics = Box::new(StoreMetrics(store.clone()));
        let query_node = QueryNode::bind(query, store.clone(), audit, Some(metrics)).await?;
        // Every committed batch meets the watchlist in-process, before its ack leaves.
        let publisher = Watched {
            store: store.clone(),
            alerts: query_node.alerts(),
        };
        let ingest_node = IngestNode::bind(ingest, Arc::new(publisher)).await?;
        Ok(Self {
            ingest: ingest_node,
            query: query_node,
            store,
            retention_days: serve.retention_days,
        })
    }

    /// The bound addresses.
    pub fn addrs(&self) -> std::io::Result<EmbeddedAddrs> {
        Ok(EmbeddedAddrs {
            ingest_grpc: self.ingest.grpc_addr()?,
            ingest_http: self.ingest.http_addr()?,
            ingest_gat1400: self.ingest.gat1400_addr(),
            query_http: self.query.http_addr()?,
            query_grpc: self.query.grpc_addr()?,
        })
    }

    /// The database (for the demo's statistics and for tests).
    pub fn store(&self) -> &SqliteStore {
        &self.store
    }

    /// Serve until `shutdown` resolves; then the ingest side stops reading, finishes and
    /// acks what it read (every batch committed), and both sides close.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let stop = CancellationToken::new();
        let (ingest_stop, query_stop) = (stop.clone(), stop.clone());
        let trigger = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            trigger.cancel();
        });
        if let Some(days) = self.retention_days {
            tokio::spawn(retention_schedule(self.store.clone(), days, stop.clone()));
        }
        let ingest = self
            .ingest
            .run_until_stopped(async move { ingest_stop.cancelled().await });
        let query = self
            .query
            .run_until_stopped(async move { query_stop.cancelled().await });
        let (ingest, query) = tokio::join!(ingest, query);
        ingest.context("ingest")?;
        query.context("query")?;
        let stats = self.store.writer_stats();
        tracing::info!(
            commits = stats.commits,
            requests = stats.requests,
            "embedded node stopped"
        );
        Ok(())
    }
}

/// Apply retention now and every 24 h until `stop`.
async fn retention_schedule(store: SqliteStore, days: u32, stop: CancellationToken) {
    let run = RetentionRun {
        days,
        operator: "camtrail-serve".into(),
        case_id: "retention-policy".into(),
        reason: format!("scheduled retention: {days} days (serve.retention_days)"),
        dry_run: false,
    };
    loop {
        match apply_retention(&store, &run, camtrail_common::now_ms()).await {
            Ok(outcome) => tracing::info!(
                cutoff_ms = outcome.cutoff_ms,
                removed = outcome.report.unwrap_or(0),
                "retention applied"
            ),
            Err(error) => tracing::warn!(%error, "retention not applied; retrying in 24 h"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(std::time::Duration::from_secs(86_400)) => {}
        }
    }
}
