//! `camtrail retention apply`: remove detections, keys and snapshots older than the policy.
//!
//! The run is audited like a query, fail-closed: the audit record (who, case, reason, the
//! policy, the planned removals) is made durable in `camtrail.audit.v1` before anything is
//! deleted; if it cannot be written, nothing is deleted. Each run is its own audit chain
//! (`retention/<start ms>`), so two runs can never fork one chain.

use camtrail_serve::Config;
use camtrail_storage::RetentionRun;

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

impl RetentionArgs {
    /// Who runs it, why, and the policy.
    pub fn run(&self) -> RetentionRun {
        RetentionRun {
            days: self.days,
            operator: self.operator.clone(),
            case_id: self.case_id.clone(),
            reason: self.reason.clone(),
            dry_run: self.dry_run,
        }
    }
}

/// Plan, print and (unless --dry-run) apply retention.
pub async fn apply(args: RetentionArgs, config: Config) -> anyhow::Result<()> {
    let now_ms = camtrail_common::now_ms();
    if args.embedded {
        return crate::serve::retention(args, config, now_ms).await;
    }
    clickhouse(args, config, now_ms).await
}

#[cfg(not(feature = "distributed"))]
async fn clickhouse(_args: RetentionArgs, _config: Config, _now_ms: i64) -> anyhow::Result<()> {
    anyhow::bail!(crate::cli::NOT_DISTRIBUTED)
}

#[cfg(feature = "distributed")]
async fn clickhouse(args: RetentionArgs, config: Config, now_ms: i64) -> anyhow::Result<()> {
    use camtrail_clickhouse::RetentionAction;
    use std::time::Duration;

    let run = args.run();
    let outcome = camtrail_serve::distributed::apply_retention(
        &config,
        &run,
        now_ms,
        audit_timeout(),
        Duration::from_secs(args.mutation_timeout_secs),
    )
    .await?;
    let plan = &outcome.plan;
    println!(
        "retention {} days: cutoff {} ms (everything captured before it goes, except {} held \
         event ids)",
        args.days,
        plan.cutoff_ms,
        plan.held.len()
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
                format!("delete rows before {cutoff_ms} that are not held")
            }
        };
        println!(
            "{:<22} {:<12} {:>12}  {what}",
            action.table(),
            action.partition(),
            action.rows()
        );
    }
    let (Some(record), Some(report)) = (&outcome.audit, &outcome.report) else {
        println!("dry run: nothing changed");
        return Ok(());
    };
    println!(
        "audited as {} seq {} in {}",
        record.node_id, record.seq, config.kafka.audit_topic
    );
    if !plan.actions.is_empty() {
        println!(
            "removed {} rows: {} partitions dropped ({} bytes), {} row deletions completed",
            report.rows_removed,
            report.partitions_dropped,
            report.bytes_dropped,
            report.applied.len() - report.partitions_dropped
        );
    }
    Ok(())
}

/// How long the audit record may take to become durable before the run is refused:
/// 30 s, or `CAMTRAIL_RETENTION_AUDIT_TIMEOUT_MS`.
#[cfg(feature = "distributed")]
fn audit_timeout() -> std::time::Duration {
    let ms = std::env::var("CAMTRAIL_RETENTION_AUDIT_TIMEOUT_MS")
        .ok()
        .and_then(|value| value.parse().ok())
        .unwrap_or(30_000);
    std::time::Duration::from_millis(ms)
}
