//! `camtrail migrate`: ClickHouse schema, Kafka topics, camera registry.

use std::path::PathBuf;

use camtrail_kafka::TopicOutcome;
use camtrail_serve::Config;

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

/// Run the migration and say what it did.
pub async fn run(args: MigrateArgs, config: Config) -> anyhow::Result<()> {
    let done =
        camtrail_serve::distributed::migrate(&config, args.cameras.as_deref(), args.skip_kafka)
            .await?;
    println!(
        "clickhouse {} database {}: applied {:?}, already applied {:?}",
        config.clickhouse.url,
        config.clickhouse.database,
        done.clickhouse.applied,
        done.clickhouse.already_applied
    );
    for outcome in done.topics {
        match outcome {
            TopicOutcome::Created(name) => println!("kafka topic {name}: created"),
            TopicOutcome::Existed(name) => println!("kafka topic {name}: exists"),
        }
    }
    if let (Some(rows), Some(path)) = (done.cameras, &args.cameras) {
        println!("cameras: loaded {rows} from {}", path.display());
    }
    Ok(())
}
