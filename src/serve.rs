//! `camtrail serve` (the embedded mode), and the embedded variants of `camtrail retention
//! apply` and `camtrail audit verify`, which work on the same SQLite database.

use anyhow::Context;
use camtrail_model::audit::{AuditEntry, AuditRecord};
use camtrail_query::audit::AuditLog;
use camtrail_query::embedded::EmbeddedNode;
use camtrail_query::store::sqlite::SqliteStore;
use camtrail_query::store::{AuditFilter, SightingStore};

use crate::config::Config;
use crate::retention::RetentionArgs;

/// Run ingest + query over the SQLite database until SIGTERM / Ctrl-C.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let node = EmbeddedNode::bind(&config.serve, config.ingest, &config.query).await?;
    let addrs = node.addrs()?;
    tracing::info!(
        database = %config.serve.database_path.display(),
        ingest_grpc = %addrs.ingest_grpc,
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

/// Retention on the embedded database: audit record first (same database, chain
/// `retention`), then parts wholly before the cutoff are dropped and older rows deleted.
pub async fn retention(args: RetentionArgs, config: Config, now_ms: i64) -> anyhow::Result<()> {
    let store = open(&config)?;
    let cutoff_ms = now_ms - i64::from(args.days) * 86_400_000;
    let (detections, snapshots) = store.count_before(cutoff_ms).await?;
    println!(
        "retention {} days on {}: cutoff {cutoff_ms} ms; {detections} detections and \
         {snapshots} snapshots captured before it",
        args.days,
        store.path().display()
    );
    if args.dry_run {
        println!("dry run: nothing changed");
        return Ok(());
    }
    let parameters = serde_json::json!({
        "days": args.days,
        "cutoff_ms": cutoff_ms,
        "database": store.path().display().to_string(),
        "detections": detections,
        "snapshots": snapshots,
    });
    let entry = AuditEntry {
        at_ms: now_ms,
        user: args.operator.clone(),
        role: "operator".into(),
        case_id: args.case_id.clone(),
        reason: args.reason.clone(),
        kind: "retention".into(),
        parameters_json: parameters.to_string(),
        result_count: detections + snapshots,
        client_addr: "cli".into(),
    };
    let record: AuditRecord = store
        .audit_log("retention")
        .await?
        .append(entry)
        .await
        .context("retention refused: its audit record could not be written")?;
    println!("audited as {} seq {}", record.node_id, record.seq);
    let removed = store
        .delete_before(cutoff_ms)
        .await
        .context("applying retention")?;
    println!("removed {removed} rows (detections and snapshots)");
    Ok(())
}

/// The audit records of the embedded database, for `camtrail audit verify --embedded`.
pub async fn audit_records(config: &Config) -> anyhow::Result<Vec<AuditRecord>> {
    open(config)?
        .audit_records(AuditFilter::default())
        .await
        .context("reading audit_log")
}
