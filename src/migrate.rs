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
    /// Create the tables on every server of this ClickHouse cluster (`ON CLUSTER`; a
    /// `remote_servers` name, ZooKeeper configured): detections sharded by subject key into
    /// replicated `_local` tables behind `Distributed` ones, the small tables replicated on
    /// every server. Same as `clickhouse.cluster`.
    #[arg(long, value_name = "NAME")]
    pub cluster: Option<String>,
}

/// Run the migration and say what it did.
pub async fn run(args: MigrateArgs, mut config: Config) -> anyhow::Result<()> {
    if let Some(cluster) = args.cluster {
        config.clickhouse.cluster = cluster;
        config.clickhouse = config.clickhouse.validate()?;
    }
    let done =
        camtrail_serve::distributed::migrate(&config, args.cameras.as_deref(), args.skip_kafka)
            .await?;
    let on = match config.clickhouse.cluster.as_str() {
        "" => String::new(),
        cluster => format!(" (cluster {cluster})"),
    };
    println!(
        "clickhouse {}{on} database {}: applied {:?}, already applied {:?}",
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
