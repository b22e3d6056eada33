//! `camtrail serve` (the embedded mode), and the embedded variants of `camtrail retention
//! apply` and `camtrail audit verify`, which work on the same SQLite database.

use anyhow::Context;
use camtrail_model::audit::AuditRecord;
use camtrail_serve::Config;
use camtrail_serve::embedded::{EmbeddedNode, apply_retention};
use camtrail_sqlite::SqliteStore;
use camtrail_storage::SightingStore;

use crate::retention::RetentionArgs;

/// Run ingest + query over the SQLite database until SIGTERM / Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let node = EmbeddedNode::bind(&config.serve, config.ingest.node, &config.query).await?;
    let addrs = node.addrs()?;
    tracing::info!(
        database = %config.serve.database_path.display(),
        ingest_grpc = %addrs.ingest_grpc,
        ingest_gat1400 = ?addrs.ingest_gat1400,
        query_http = %addrs.query_http,
        query_grpc = %addrs.query_grpc,
        "camtrail serve: embedded mode"
    );
    node.run_until_stopped(crate::shutdown::signal()).await
}

fn open(config: &Config) -> anyhow::Result<SqliteStore> {
    let path = &config.serve.database_path;
    anyhow::ensure!(
        path.exists(),
        "the embedded database {} does not exist (serve.database_path)",
        path.display()
    );
    SqliteStore::open(path).with_context(|| format!("opening {}", path.display()))
}

/// `camtrail retention apply --embedded`: the database must not be open in a running
/// `camtrail serve` (it owns it; set serve.retention_days there instead).
pub async fn retention(args: RetentionArgs, config: Config, now_ms: i64) -> anyhow::Result<()> {
    let store = open(&config)?;
    let run = args.run();
    let outcome = apply_retention(&store, &run, now_ms).await?;
    println!(
        "retention {} days on {}: cutoff {} ms; {} detections and {} snapshots captured \
         before it and not held ({} held event ids kept)",
        args.days,
        store.path().display(),
        outcome.cutoff_ms,
        outcome.plan.detections,
        outcome.plan.snapshots,
        outcome.plan.held.len()
    );
    match (&outcome.audit, outcome.report) {
        (Some(record), Some(removed)) => {
            println!("audited as {} seq {}", record.node_id, record.seq);
            println!("removed {removed} rows (detections and snapshots)");
        }
        _ => println!("dry run: nothing changed"),
    }
    Ok(())
}

/// Detections stored in the embedded database, for `camtrail transparency report`.
pub async fn detection_count(config: &Config) -> anyhow::Result<u64> {
    let path = &config.serve.database_path;
    SqliteStore::open_read_only(path)
        .with_context(|| format!("opening {} (serve.database_path)", path.display()))?
        .detection_count()
        .await
        .context("counting detections")
}

/// The audit records of the embedded database, for `camtrail audit verify --embedded`.
pub async fn audit_records(config: &Config) -> anyhow::Result<Vec<AuditRecord>> {
    let path = &config.serve.database_path;
    SqliteStore::open_read_only(path)
        .with_context(|| format!("opening {} (serve.database_path)", path.display()))?
        .all_audit_records()
        .await
        .context("reading audit_log")
}
