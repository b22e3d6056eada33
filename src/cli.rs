//! Command-line interface: one subcommand per role or tool.

use std::path::PathBuf;

use camtrail_serve::Config;
use clap::{Parser, Subcommand, ValueEnum};

/// What a command of the distributed mode says in a build without it.
#[cfg(not(feature = "distributed"))]
pub const NOT_DISTRIBUTED: &str = "this camtrail was built without the distributed mode \
    (Kafka, ClickHouse): rebuild with the default features, or use --embedded";

/// camtrail: detection events from city cameras into durable storage, and accountable
/// cross-camera track reconstruction for investigators.
///
/// Configuration comes from built-in defaults, then the TOML file given with --config (or
/// $CAMTRAIL_CONFIG), then environment variables named CAMTRAIL_<SECTION>__<KEY>, e.g.
/// CAMTRAIL_KAFKA__BROKERS=10.0.0.5:9092 or CAMTRAIL_CLICKHOUSE__URL=http://ch:8123.
/// `camtrail config` prints the result.
#[derive(Debug, Parser)]
#[command(name = "camtrail", version, about, long_about)]
pub struct Cli {
    /// TOML configuration file.
    #[arg(long, global = true, env = "CAMTRAIL_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// More log detail (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Prepare the distributed mode's storage: create the ClickHouse database and tables
    /// (numbered DDL from clickhouse/migrations/, each applied once and recorded in
    /// schema_migrations), create the Kafka topics, and optionally load a camera registry.
    /// Safe to run again: what exists is left as it is.
    #[cfg(feature = "distributed")]
    Migrate(crate::migrate::MigrateArgs),
    /// Run an ingest node (distributed mode): gateways publish detection batches over gRPC
    /// (`camtrail.v1.Ingest` on ingest.grpc_addr, default :50051); each event is validated
    /// against the camera registry, accepted events are produced to Kafka with acks=all and
    /// the batch is acked only once they are durable. Metrics on ingest.http_addr (:8081).
    /// SIGTERM drains in-flight batches and flushes the producer before exiting.
    #[cfg(feature = "distributed")]
    Ingest,
    /// Run a sink (distributed mode): a member of the Kafka consumer group sink.group_id that
    /// moves the detections topic into ClickHouse (`detections`, thumbnails into
    /// `snapshots`) and the audit topic into `audit_log` in batches (sink.max_batch_rows / sink.max_batch_age_ms), committing
    /// offsets only after the insert succeeded; failed inserts are retried with capped
    /// backoff, undecodable records go to the dead-letter topic. Metrics on sink.http_addr
    /// (:8082). SIGTERM flushes and commits the last batch before exiting.
    #[cfg(feature = "distributed")]
    Sink,
    /// Run the watchlist role (distributed mode): a member of the consumer group
    /// alert.group_id on the detections topic that matches every detection against the
    /// active watchlist entries (from ClickHouse) and stores each hit in watchlist_hits
    /// before the record's offset is committed (at least once; a hit re-delivered is stored
    /// once); webhooks are sent from the stored hits' stream, best effort (retried, then
    /// dead-lettered). SIGTERM commits and leaves the group.
    #[cfg(feature = "distributed")]
    Alert,
    /// Run a query node (distributed mode): the HTTP API investigators use (query.http_addr,
    /// default :8080): /v1/track (JSON, .geojson, .png map), /v1/passes,
    /// /v1/snapshots/{event_id}.jpg, /v1/cameras/{id}, /metrics, /healthz. Every search needs
    /// a bearer token (query.users_path), a case id and a reason, and is written to the audit
    /// topic (acks=all) before any result leaves the node.
    #[cfg(feature = "distributed")]
    Query,
    /// Run the whole system in one process (embedded mode, no Kafka or ClickHouse): the
    /// ingest gRPC service (ingest.grpc_addr, :50051; metrics on ingest.http_addr, :8081)
    /// and the query HTTP and gRPC APIs (query.http_addr :8080, query.grpc_addr :50052)
    /// over one SQLite database (serve.database_path). A batch is acked once the SQLite
    /// transaction holding it has committed; batches of all streams are group-committed.
    /// Every search is audited in the same database before its answer leaves.
    Serve,
    /// The demo: generate a city, start `serve` in-process on free ports, drive it with the
    /// load generator (progress bar), then ask for the track of a vehicle that crossed
    /// several districts through the HTTP API, print it with the measured throughput and
    /// latency, and write track.png, track.geojson and the load report to --out.
    Demo(crate::demo::DemoArgs),
    /// Ask a query node for a subject's track and print it as a table (or JSON, GeoJSON, a
    /// PNG map with --out).
    Track(crate::query::TrackArgs),
    /// Ask a query node who passed some cameras (or a district) in a window, optionally only
    /// vehicles with given attributes (--plate-color, --vehicle-color, --vehicle-type,
    /// --vehicle-brand, --direction); prints one page as a table (or JSON).
    Passes(crate::query::PassesArgs),
    /// Who passed a scene: a circle (--circle LON,LAT,RADIUS_M), a polygon or cameras, and
    /// a window; the distinct vehicles with their sightings there, a page at a time.
    Scene(crate::analytics::SceneArgs),
    /// Which vehicles were seen at several scenes (2-6, --scene LON,LAT,RADIUS_M,FROM,TO
    /// each), ranked; --fuzzy links misreadings of a plate across scenes.
    Series(crate::analytics::SeriesArgs),
    /// Which vehicles travelled with a plate (>= 4 shared cameras within 60 s, in order), or
    /// with --with OTHER whether those two did.
    Cotravel(crate::analytics::CoTravelArgs),
    /// The case registry: every search runs under an open case (supervisors open, assign,
    /// extend and close cases; investigators list the ones assigned to them).
    #[command(subcommand)]
    Cases(crate::cases::CasesCommand),
    /// Legal holds: detections retention keeps while their case is not closed.
    #[command(subcommand)]
    Holds(crate::cases::HoldsCommand),
    /// Investigator credentials.
    #[command(subcommand)]
    Users(UsersCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// An evidence package of an audited track search for a case file (track JSON, GeoJSON,
    /// PNG, snapshots, the audit records, a SHA-256 manifest); `export verify DIR` checks one
    /// offline.
    Export(crate::export::ExportArgs),
    /// What the system was used for over a period: a public report (aggregates only) and
    /// an anomaly page for supervisors.
    #[command(subcommand)]
    Transparency(TransparencyCommand),
    /// Gateway credentials.
    #[command(subcommand)]
    Gateways(GatewaysCommand),
    /// GA/T 1400 platform credentials (HTTP Digest).
    #[command(subcommand)]
    Gat1400(Gat1400Command),
    /// Generate the synthetic city from a seed: cameras.csv (the camera registry) and
    /// districts.geojson, optionally city.png and a traffic sample with ground truth.
    City(crate::city::CityArgs),
    /// Load-test an ingest endpoint as the city's gateways would: one gRPC Publish stream per
    /// gateway, batches of --batch-size, a bounded window of unacked batches per stream,
    /// resends after --ack-timeout, reconnects with capped backoff. Traffic comes from the
    /// synthetic city (generated from --city-seed, or --registry cameras.csv). Prints and
    /// optionally writes a JSON report (--report) and a PNG chart (--chart).
    Loadgen(crate::loadgen::LoadgenArgs),
    /// Data retention (ClickHouse, or the embedded database with --embedded).
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Print the effective configuration (defaults + file + environment) as TOML.
    Config,
}

/// `camtrail retention ...`
#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Remove everything captured more than --days ago from the tables holding detections,
    /// keys and snapshots (never audit_log): drop weekly partitions that lie wholly before the
    /// cutoff and delete the older rows of the partition that straddles it, waiting for the
    /// deletion to finish. Prints the plan and what was removed; --dry-run only prints the
    /// plan. Run it daily.
    Apply(crate::retention::RetentionArgs),
}

/// `camtrail users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Mint a bearer token for a user with a role; its SHA-256 goes into the users file
    /// (query.users_path), the token is printed once.
    Issue(crate::query::UsersIssueArgs),
}

/// `camtrail audit ...`
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check every hash chain in ClickHouse audit_log (or, with --embedded, in the embedded
    /// database); prints the first broken link of each broken chain and exits non-zero if
    /// there is one.
    Verify(crate::query::VerifyArgs),
    /// Write a new Ed25519 key for signing audit checkpoints (private key 0600, public key
    /// beside it as <out>.pub) and print its key id.
    Keygen(crate::query::KeygenArgs),
}

/// `camtrail transparency ...`
#[derive(Debug, Subcommand)]
pub enum TransparencyCommand {
    /// Count the period's audit records, cameras, stored detections, retention and users
    /// into transparency.json/.html (publishable: no plates, case ids or names), and compare
    /// each user's searches with their own history into anomalies.json/.html (supervisors,
    /// 0600).
    Report(crate::transparency::ReportArgs),
}

/// `camtrail gateways ...`
#[derive(Debug, Subcommand)]
pub enum GatewaysCommand {
    /// Mint a random bearer token for every gateway of a camera registry: writes
    /// gateway_tokens.csv (secrets, one line per gateway) and gateway_token_hashes.csv
    /// (SHA-256 hashes, what ingest nodes are configured with).
    Issue(crate::ingest::IssueArgs),
}

/// `camtrail gat1400 ...`
#[derive(Debug, Subcommand)]
pub enum Gat1400Command {
    /// Mint a random Digest password for every gateway of a camera registry (one platform
    /// per gateway, device id = gateway id): writes gat1400_credentials.csv (passwords) and
    /// gat1400_devices.csv (HA1 hashes, what ingest nodes are configured with).
    Issue(crate::ingest::Gat1400IssueArgs),
}

/// Run one subcommand.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        #[cfg(feature = "distributed")]
        Command::Migrate(args) => crate::migrate::run(args, config).await,
        #[cfg(feature = "distributed")]
        Command::Ingest => crate::ingest::run(config).await,
        #[cfg(feature = "distributed")]
        Command::Sink => crate::sink::run(config).await,
        #[cfg(feature = "distributed")]
        Command::Alert => crate::sink::alert(config).await,
        #[cfg(feature = "distributed")]
        Command::Query => crate::query::run(config).await,
        Command::Track(args) => crate::query::track(args).await,
        Command::Passes(args) => crate::query::passes(args).await,
        Command::Scene(args) => crate::analytics::scene(args).await,
        Command::Series(args) => crate::analytics::series(args).await,
        Command::Cotravel(args) => crate::analytics::cotravel(args).await,
        Command::Cases(command) => crate::cases::cases(command).await,
        Command::Holds(command) => crate::cases::holds(command).await,
        Command::Users(UsersCommand::Issue(args)) => crate::query::issue(args),
        Command::Audit(AuditCommand::Verify(args)) => crate::query::verify(args, config).await,
        Command::Audit(AuditCommand::Keygen(args)) => crate::query::keygen(args),
        Command::Export(args) => crate::export::run(args).await,
        Command::Transparency(TransparencyCommand::Report(args)) => {
            crate::transparency::run(args, config).await
        }
        Command::Serve => crate::serve::run(config).await,
        Command::Demo(args) => crate::demo::run(args, config).await,
        Command::Gateways(GatewaysCommand::Issue(args)) => crate::ingest::issue(args),
        Command::Gat1400(Gat1400Command::Issue(args)) => crate::ingest::issue_gat1400(args),
        Command::City(args) => crate::city::run(args).await,
        Command::Loadgen(args) => crate::loadgen::run(args).await,
        Command::Retention(RetentionCommand::Apply(args)) => {
            crate::retention::apply(args, config).await
        }
        Command::Config => {
            print!("{}", config.to_toml()?);
            Ok(())
        }
    }
}
