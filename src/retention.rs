//! `camtrail retention apply`: remove detections, keys and snapshots older than the policy.
//!
//! The run is audited like a query, fail-closed: the audit record (who, case, reason, the
//! policy, the planned removals) is made durable in `camtrail.audit.v1` before anything is
//! deleted; if it cannot be written, nothing is deleted. Each run is its own audit chain
//! (`retention/<start ms>`), so two runs can never fork one chain.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use camtrail_ingest::kafka::AuditWriter;
use camtrail_model::audit::{AuditChain, AuditEntry, AuditRecord};
use camtrail_store::clickhouse::{RetentionAction, RetentionPlan, apply_retention, plan_retention};

use crate::config::Config;

/// Options of `camtrail retention apply`.
#[derive(Debug, clap::Args)]
pub struct RetentionArgs {
    /// Keep this many days: everything captured more than N days ago is removed (N ≥ 1).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub days: u32,
    /// Only print the plan; change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// How long to wait for each row deletion (an asynchronous ClickHouse mutation), in seconds.
    #[arg(long, default_value_t = 600)]
    pub mutation_timeout_secs: u64,
    /// Who runs it (recorded in the audit log).
    #[arg(long, env = "USER", default_value = "operator")]
    pub operator: String,
    /// Case or ticket the run belongs to (recorded in the audit log).
    #[arg(long = "case", default_value = "retention-policy")]
    pub case_id: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "scheduled retention")]
    pub reason: String,
    /// Apply to the embedded database (serve.database_path) instead of ClickHouse; the
    /// audit record goes into that database's `retention` chain first.
    #[arg(long)]
    pub embedded: bool,
}

/// Plan, print and (unless --dry-run) apply retention.
pub async fn apply(args: RetentionArgs, config: Config) -> anyhow::Result<()> {
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    if args.embedded {
        return crate::serve::retention(args, config, now_ms).await;
    }
    let plan = plan_retention(&config.clickhouse, args.days, now_ms)
        .await
        .with_context(|| format!("planning retention in {}", config.clickhouse.url))?;
    println!(
        "retention {} days: cutoff {} ms (everything captured before it goes)",
        args.days, plan.cutoff_ms
    );
    if plan.actions.is_empty() {
        println!("nothing to remove");
    }
    println!("{:<22} {:<12} {:>12}  action", "table", "partition", "rows");
    for action in &plan.actions {
        let what = match action {
            RetentionAction::DropPartition { bytes, .. } => {
                format!("drop partition ({bytes} bytes on disk)")
            }
            RetentionAction::DeleteBefore { cutoff_ms, .. } => {
                format!("delete rows before {cutoff_ms}")
            }
        };
        println!(
            "{:<22} {:<12} {:>12}  {what}",
            action.table(),
            action.partition(),
            action.rows()
        );
    }
    if args.dry_run {
        println!("dry run: nothing changed");
        return Ok(());
    }
    let record = audit_run(&args, &config, &plan, now_ms).await?;
    println!(
        "audited as {} seq {} in {}",
        record.node_id, record.seq, config.kafka.audit_topic
    );
    if plan.actions.is_empty() {
        return Ok(());
    }
    let report = apply_retention(
        &config.clickhouse,
        &plan,
        Duration::from_secs(args.mutation_timeout_secs),
    )
    .await
    .context("applying retention")?;
    println!(
        "removed {} rows: {} partitions dropped ({} bytes), {} row deletions completed",
        report.rows_removed,
        report.partitions_dropped,
        report.bytes_dropped,
        report.applied.len() - report.partitions_dropped
    );
    Ok(())
}

/// Write the run's audit record (durable before anything is removed).
async fn audit_run(
    args: &RetentionArgs,
    config: &Config,
    plan: &RetentionPlan,
    now_ms: i64,
) -> anyhow::Result<AuditRecord> {
    let actions: Vec<serde_json::Value> = plan
        .actions
        .iter()
        .map(|action| {
            serde_json::json!({
                "table": action.table(),
                "partition": action.partition(),
                "rows": action.rows(),
                "drop": matches!(action, RetentionAction::DropPartition { .. }),
            })
        })
        .collect();
    let parameters = serde_json::json!({
        "days": args.days,
        "cutoff_ms": plan.cutoff_ms,
        "database": config.clickhouse.database,
        "actions": actions,
    });
    let writer = AuditWriter::new(
        &config.kafka.brokers,
        &config.kafka.audit_topic,
        AuditChain::new(format!("retention/{now_ms}")),
        audit_timeout(),
    )
    .context("creating the audit producer")?;
    let entry = AuditEntry {
        at_ms: now_ms,
        user: args.operator.clone(),
        role: "operator".into(),
        case_id: args.case_id.clone(),
        reason: args.reason.clone(),
        kind: "retention".into(),
        parameters_json: parameters.to_string(),
        result_count: plan.actions.iter().map(RetentionAction::rows).sum(),
        client_addr: "cli".into(),
    };
    writer
        .append(entry)
        .await
        .context("retention refused: its audit record could not be written")
}

/// How long the audit record may take to become durable before the run is refused:
/// 30 s, or `CAMTRAIL_RETENTION_AUDIT_TIMEOUT_MS`.
fn audit_timeout() -> Duration {
    let ms = std::env::var("CAMTRAIL_RETENTION_AUDIT_TIMEOUT_MS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(30_000);
    Duration::from_millis(ms)
}
