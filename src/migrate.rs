//! `camtrail migrate`: ClickHouse schema, Kafka topics, camera registry.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use camtrail_ingest::kafka::{TopicOutcome, ensure_topics};
use camtrail_model::CameraRegistry;
use camtrail_store::clickhouse::{load_cameras, migrate};

use crate::config::Config;

/// Options of `camtrail migrate`.
#[derive(Debug, clap::Args)]
pub struct MigrateArgs {
    /// Camera registry CSV (camera_id,district,lat,lon,heading_deg,road,gateway_id) to load
    /// into the `cameras` table, replacing the previous registry atomically.
    #[arg(long)]
    pub cameras: Option<PathBuf>,
    /// Do not touch Kafka (only ClickHouse).
    #[arg(long)]
    pub skip_kafka: bool,
}

/// Run the migration.
pub async fn run(args: MigrateArgs, config: Config) -> anyhow::Result<()> {
    // Read the registry first: a bad file should fail before anything changes.
    let registry = match &args.cameras {
        Some(path) => Some(CameraRegistry::from_csv_path(path)?),
        None => None,
    };
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let report = migrate(&config.clickhouse, now_ms)
        .await
        .with_context(|| format!("migrating ClickHouse at {}", config.clickhouse.url))?;
    println!(
        "clickhouse {} database {}: applied {:?}, already applied {:?}",
        config.clickhouse.url, config.clickhouse.database, report.applied, report.already_applied
    );
    if !args.skip_kafka {
        let outcomes = ensure_topics(&config.kafka, Duration::from_secs(30))
            .await
            .with_context(|| format!("creating Kafka topics at {}", config.kafka.brokers))?;
        for outcome in outcomes {
            match outcome {
                TopicOutcome::Created(name) => println!("kafka topic {name}: created"),
                TopicOutcome::Existed(name) => println!("kafka topic {name}: exists"),
            }
        }
    }
    if let (Some(registry), Some(path)) = (registry, &args.cameras) {
        let rows = load_cameras(&config.clickhouse, &registry).await?;
        println!("cameras: loaded {rows} from {}", path.display());
    }
    Ok(())
}
