//! `camtrail serve`: the embedded mode (DESIGN.md, "Two ways to run") — the ingest node's
//! gRPC service, the query node's HTTP and gRPC APIs and one SQLite database in one process.
//!
//! The parts are the distributed roles' own, with transport and storage swapped: the ingest
//! node's [`Publisher`](camtrail_ingest::publish::Publisher) is the [`SqliteStore`] (a batch
//! is acked once the group transaction holding it has committed), and the query node reads
//! the same database and appends its audit chain to it. Configured by the `[ingest]` and
//! `[query]` sections as the distributed roles are, plus `[serve]`.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use camtrail_ingest::auth::GatewayAuth;
use camtrail_ingest::config::IngestConfig;
use camtrail_ingest::server::IngestNode;
use camtrail_model::CameraRegistry;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::node::{QueryConfig, QueryNode};
use crate::store::sqlite::SqliteStore;

/// The `[serve]` section.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServeConfig {
    /// The SQLite database (created if missing; `-wal` and `-shm` files sit beside it).
    pub database_path: PathBuf,
}

impl Default for ServeConfig {
    fn default() -> Self {
        Self {
            database_path: PathBuf::from("camtrail.db"),
        }
    }
}

/// Ingest and query nodes over one SQLite database, bound to their ports.
pub struct EmbeddedNode {
    ingest: IngestNode,
    query: QueryNode,
    store: SqliteStore,
}

/// The addresses an embedded node listens on.
#[derive(Debug, Clone, Copy)]
pub struct EmbeddedAddrs {
    /// Ingest gRPC (`camtrail.v1.Ingest`).
    pub ingest_grpc: SocketAddr,
    /// Ingest metrics and health.
    pub ingest_http: SocketAddr,
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
        let cameras = CameraRegistry::from_csv_path(&ingest.registry_path).with_context(|| {
            format!(
                "loading the camera registry {}",
                ingest.registry_path.display()
            )
        })?;
        let auth = GatewayAuth::from_path(&ingest.gateway_tokens_path)?;
        let ingest_node = IngestNode::bind_with_publisher(
            ingest,
            Arc::new(cameras),
            auth,
            Arc::new(store.clone()),
        )
        .await?;
        let audit = store.audit_log(&query.node_name).await?;
        let query_node = QueryNode::bind_with(query, store.clone(), audit).await?;
        Ok(Self {
            ingest: ingest_node,
            query: query_node,
            store,
        })
    }

    /// The bound addresses.
    pub fn addrs(&self) -> std::io::Result<EmbeddedAddrs> {
        Ok(EmbeddedAddrs {
            ingest_grpc: self.ingest.grpc_addr()?,
            ingest_http: self.ingest.http_addr()?,
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
        tokio::spawn(async move {
            shutdown.await;
            stop.cancel();
        });
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
