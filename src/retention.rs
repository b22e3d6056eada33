//! `camtrail retention apply`: remove detections, keys and snapshots older than the policy.
//!
//! Recording the action in the audit log is not done yet (the audit chain does not exist).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use camtrail_store::clickhouse::{RetentionAction, apply_retention, plan_retention};

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
}

/// Plan, print and (unless --dry-run) apply retention.
pub async fn apply(args: RetentionArgs, config: Config) -> anyhow::Result<()> {
    let now_ms = i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis())?;
    let plan = plan_retention(&config.clickhouse, args.days, now_ms)
        .await
        .with_context(|| format!("planning retention in {}", config.clickhouse.url))?;
    println!(
        "retention {} days: cutoff {} ms (everything captured before it goes)",
        args.days, plan.cutoff_ms
    );
    if plan.actions.is_empty() {
        println!("nothing to remove");
        return Ok(());
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
