//! The distributed mode's roles, composed from their crates (feature `distributed`): each
//! role's stage with the Kafka and ClickHouse backends plugged in.
//!
//! - [`bind_ingest`]: `camtrail ingest` — the ingest node over a [`KafkaPublisher`].
//! - [`bind_sink`]: `camtrail sink` — Kafka into ClickHouse.
//! - [`bind_query`]: `camtrail query` — the query node over [`ClickhouseStore`], auditing to
//!   Kafka with an [`AuditWriter`] whose chain is `<node_name>/<start ms>`.
//! - [`migrate`]: `camtrail migrate` — schema, topics, camera registry.
//! - [`apply_retention`]: `camtrail retention apply` — audited (Kafka) before ClickHouse
//!   deletes anything.
//! - [`audit_records`]: what `camtrail audit verify` checks.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camtrail_clickhouse::{
    ClickhouseRetention, ClickhouseStore, MigrationReport, RetentionPlan, RetentionReport,
};
use camtrail_ingest::server::IngestNode;
use camtrail_kafka::{AuditWriter, KafkaPublisher, TopicOutcome, ensure_topics};
use camtrail_model::CameraRegistry;
use camtrail_model::audit::{AuditChain, AuditRecord};
use camtrail_query::node::QueryNode;
use camtrail_sink::SinkNode;
use camtrail_storage::retention;
use camtrail_storage::{RetentionOutcome, RetentionRun, SightingStore};

use crate::config::Config;

/// An ingest node producing accepted events to Kafka (`acks=all`, idempotent).
pub async fn bind_ingest(config: &Config) -> anyhow::Result<IngestNode> {
    let publisher = KafkaPublisher::new(
        &config.kafka.brokers,
        &config.kafka.detections_topic,
        &config.ingest.producer,
    )
    .context("creating the Kafka producer")?;
    let node = IngestNode::bind(config.ingest.node.clone(), Arc::new(publisher)).await?;
    // GA/T 1400 checkpoints reach the ClickHouse registry through the same atomic load as
    // `camtrail migrate --cameras`, after the registry file.
    let clickhouse = config.clickhouse.clone();
    node.add_registry_hook(Arc::new(move |registry| {
        let clickhouse = clickhouse.clone();
        Box::pin(async move {
            camtrail_clickhouse::load_cameras(&clickhouse, &registry).await?;
            Ok(())
        })
    }));
    Ok(node)
}

/// A sink moving the detections and audit topics into ClickHouse.
pub async fn bind_sink(config: &Config) -> anyhow::Result<SinkNode> {
    SinkNode::bind(config.sink.clone(), &config.kafka, &config.clickhouse).await
}

/// A query node reading ClickHouse and auditing to `camtrail.audit.v1`; its audit chain is
/// `<query.node_name>/<start ms>`, so a restart never forks a chain. Its live alert streams
/// carry the hits the alert role relays on `camtrail.alerts.v1`.
pub async fn bind_query(config: &Config) -> anyhow::Result<QueryNode> {
    let chain = AuditChain::new(format!(
        "{}/{}",
        config.query.node_name,
        camtrail_common::now_ms()
    ));
    tracing::info!(chain = chain.node_id(), "audit chain started");
    let audit = AuditWriter::new(
        &config.kafka.brokers,
        &config.kafka.audit_topic,
        chain,
        Duration::from_millis(config.query.audit_timeout_ms),
    )
    .context("creating the audit producer")?;
    let store = ClickhouseStore::new(&config.clickhouse);
    let node = QueryNode::bind(&config.query, store, audit, None).await?;
    // The alert role's hits, to this node's live streams.
    crate::alert::start_relay(config.kafka.clone(), node.alerts()).await;
    Ok(node)
}

/// What `camtrail migrate` did.
#[derive(Debug)]
pub struct Migrated {
    /// ClickHouse migrations applied and already applied.
    pub clickhouse: MigrationReport,
    /// Kafka topics created or found (none with `skip_kafka`).
    pub topics: Vec<TopicOutcome>,
    /// Cameras loaded into the `cameras` table, if a registry was given.
    pub cameras: Option<u64>,
}

/// Create the ClickHouse database and tables, the Kafka topics (unless `skip_kafka`), and
/// load `cameras` (a registry CSV) into the `cameras` table, atomically. Safe to run again.
pub async fn migrate(
    config: &Config,
    cameras: Option<&Path>,
    skip_kafka: bool,
) -> anyhow::Result<Migrated> {
    // Read the registry first: a bad file should fail before anything changes.
    let registry = cameras.map(CameraRegistry::from_csv_path).transpose()?;
    let clickhouse = camtrail_clickhouse::migrate(&config.clickhouse, camtrail_common::now_ms())
        .await
        .with_context(|| format!("migrating ClickHouse at {}", config.clickhouse.url))?;
    let topics = if skip_kafka {
        Vec::new()
    } else {
        ensure_topics(&config.kafka, Duration::from_secs(30))
            .await
            .with_context(|| format!("creating Kafka topics at {}", config.kafka.brokers))?
    };
    let cameras = match registry {
        Some(registry) => {
            Some(camtrail_clickhouse::load_cameras(&config.clickhouse, &registry).await?)
        }
        None => None,
    };
    Ok(Migrated {
        clickhouse,
        topics,
        cameras,
    })
}

/// Retention on ClickHouse: plan from `system.parts`, write the run's audit record to the
/// audit topic (its own chain `retention/<now>`; `acks=all`, within `audit_timeout`), and
/// only then drop partitions and delete the straddling rows (each deletion waited for up to
/// `mutation_timeout`).
pub async fn apply_retention(
    config: &Config,
    run: &RetentionRun,
    now_ms: i64,
    audit_timeout: Duration,
    mutation_timeout: Duration,
) -> anyhow::Result<RetentionOutcome<RetentionPlan, RetentionReport>> {
    let target = ClickhouseRetention {
        config: config.clickhouse.clone(),
        mutation_timeout,
    };
    let audit = AuditWriter::new(
        &config.kafka.brokers,
        &config.kafka.audit_topic,
        AuditChain::new(format!("retention/{now_ms}")),
        audit_timeout,
    )
    .context("creating the audit producer")?;
    let cases = ClickhouseStore::new(&config.clickhouse);
    retention::apply(&target, &cases, &audit, run, now_ms)
        .await
        .with_context(|| format!("retention on ClickHouse at {}", config.clickhouse.url))
}

/// Rows in ClickHouse `detections` (a resent event counts until merges collapse it), for
/// `camtrail transparency report`.
pub async fn detection_count(config: &Config) -> anyhow::Result<u64> {
    config
        .clickhouse
        .client()
        .query("SELECT count() FROM detections")
        .fetch_one::<u64>()
        .await
        .context("counting detections")
}

/// Every audit record in ClickHouse `audit_log` (for `camtrail audit verify`).
pub async fn audit_records(config: &Config) -> anyhow::Result<Vec<AuditRecord>> {
    ClickhouseStore::new(&config.clickhouse)
        .all_audit_records()
        .await
        .context("reading audit_log")
}
