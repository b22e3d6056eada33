//! `camtrail loadgen`: drive an ingest endpoint as the city's gateways would (see the
//! `camtrail-loadgen` crate), with traffic from the synthetic city.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use camtrail_city::{City, CityConfig, Traffic, TrafficConfig};
use camtrail_loadgen::{Gat1400Settings, LoadgenConfig, Protocol, RunHooks, Throttle};
use camtrail_model::CameraRegistry;

/// Options of `camtrail loadgen`.
///
/// Traffic is simulated over the `--window-minutes` before the start and every capture
/// time is moved forward by the time elapsed since the start, so events always look at most
/// that old (plus a few seconds of camera clock skew) to the ingest node, however long the
/// run lasts.
#[derive(Debug, clap::Args)]
pub struct LoadgenArgs {
    /// What the gateways speak: one gRPC Publish stream each, or one GA/T 1400 platform
    /// each (Digest-authenticated JSON POSTs of MotorVehicleObjects; only vehicles are sent).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Grpc)]
    pub protocol: ProtocolArg,
    /// Ingest endpoint (gRPC); several, comma-separated, spread the gateways' streams over
    /// the nodes and move a stream to the next one when its node fails (UNAVAILABLE, a broken
    /// connection), resending what was not acked.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    pub target: String,
    /// Base URL of the node's GA/T 1400 endpoints (with --protocol gat1400).
    #[arg(long, default_value = "http://127.0.0.1:8083")]
    pub gat1400_url: String,
    /// GA/T 1400 platform credentials, CSV `device_id,gateway_id,password` (from `camtrail
    /// gat1400 issue`); required with --protocol gat1400.
    #[arg(long, value_name = "FILE")]
    pub gat1400_credentials: Option<PathBuf>,
    /// Zone the GA/T 1400 PassTimes are written in (IANA name; the node's device file must
    /// name the same zone).
    #[arg(long, default_value = "Asia/Shanghai")]
    pub time_zone: String,
    /// Simulate vehicles only (no pedestrians or bicycles); implied by --protocol gat1400,
    /// and gives a gRPC run the same events as a GA/T 1400 run with the same seeds.
    #[arg(long)]
    pub vehicles_only: bool,
    /// Camera registry CSV (from `camtrail city`); without it the city is generated
    /// in-process from --city-seed/--cameras/--districts/--city-gateways, giving the same
    /// cameras as `camtrail city` with those numbers.
    #[arg(long)]
    pub registry: Option<PathBuf>,
    /// Seed of the city (as `camtrail city --seed`).
    #[arg(long, default_value_t = 7)]
    pub city_seed: u64,
    /// Number of cameras of the generated city (ignored with --registry).
    #[arg(long, default_value_t = 140_000)]
    pub cameras: usize,
    /// Districts of the generated city.
    #[arg(long, default_value_t = 30)]
    pub districts: usize,
    /// Gateways of the generated city (as `camtrail city --gateways`).
    #[arg(long, default_value_t = 300)]
    pub city_gateways: usize,
    /// Use only the first N gateways (in registry order) and their cameras; default all.
    #[arg(long)]
    pub gateways: Option<usize>,
    /// Target rate, events per second.
    #[arg(long, default_value_t = 10_000.0, conflicts_with = "open")]
    pub rate: f64,
    /// No throttle: as fast as the node acks (backpressure is the only limit).
    #[arg(long)]
    pub open: bool,
    /// Run for this many seconds (default 60 when --events is not given either).
    #[arg(long, value_name = "SECS")]
    pub duration: Option<f64>,
    /// Stop after this many events (with --duration: whichever comes first).
    #[arg(long)]
    pub events: Option<u64>,
    /// Events per batch (1–5000).
    #[arg(long, default_value_t = 500)]
    pub batch_size: usize,
    /// Longest wait of a partial batch before it is sent anyway, ms.
    #[arg(long, default_value_t = 100)]
    pub linger_ms: u64,
    /// Share of events carrying a synthetic JPEG snapshot (0–1).
    #[arg(long, default_value_t = 0.0)]
    pub snapshot_share: f64,
    /// Snapshot width in pixels.
    #[arg(long, default_value_t = 320)]
    pub snapshot_px: u32,
    /// Seed of the traffic.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Length of the simulated traffic window before the start, minutes.
    #[arg(long, default_value_t = 10)]
    pub window_minutes: u32,
    /// Resend a batch not acked after this many seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub ack_timeout: f64,
    /// Most unacked batches per gateway stream.
    #[arg(long, default_value_t = 8)]
    pub max_in_flight: usize,
    /// How long to wait for outstanding acks at the end, seconds.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    pub drain_timeout: f64,
    /// Gateway tokens, CSV `gateway_id,token` (gateway_tokens.csv from `camtrail gateways
    /// issue`); sent as `authorization: Bearer <token>`.
    #[arg(long)]
    pub tokens: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Render rate and ack latency over time to this PNG.
    #[arg(long)]
    pub chart: Option<PathBuf>,
    /// No progress bar.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `--protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProtocolArg {
    /// gRPC `camtrail.v1.Ingest/Publish`.
    Grpc,
    /// GA/T 1400 over HTTP (`POST /VIID/MotorVehicles`).
    Gat1400,
}

/// Run the load generator; Ctrl-C / SIGTERM stop it gracefully (outstanding batches are
/// drained and the report is still written).
pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let config = loadgen_config(&args)?;
    let (city, registry) = load_city(&args).await?;
    let now_ms = camtrail_common::now_ms();
    let span_ms = i64::from(args.window_minutes.max(1)) * 60_000;
    let traffic = Traffic::new(
        &city,
        TrafficConfig {
            seed: args.seed,
            start_ms: now_ms - span_ms,
            span_ms,
            vehicles: usize::MAX,
            snapshot_share: args.snapshot_share.clamp(0.0, 1.0),
            snapshot_px: args.snapshot_px,
            ..vehicles_only(&args)
        },
    );
    let hooks = RunHooks {
        progress: !args.quiet,
        ..RunHooks::default()
    };
    let shutdown = hooks.shutdown.clone();
    let registry = registry.as_ref().unwrap_or(&city.registry);
    let load = camtrail_loadgen::run(config, registry, traffic, hooks);
    tokio::pin!(load);
    let report = tokio::select! {
        report = &mut load => report,
        () = crate::shutdown::signal() => {
            shutdown.cancel();
            load.await
        }
    }
    .context("load run failed")?;
    print!("{}", report.summary());
    if let Some(path) = &args.report {
        report.write_json(path)?;
        println!("report written to {}", path.display());
    }
    if let Some(path) = &args.chart {
        // Rendering and PNG encoding are CPU work: off the async workers.
        let (chart_report, chart_path) = (report.clone(), path.clone());
        tokio::task::spawn_blocking(move || {
            camtrail_loadgen::chart::write_chart(&chart_report, &chart_path)
        })
        .await??;
        println!("chart written to {}", path.display());
    }
    Ok(())
}

/// The traffic defaults, without pedestrians and bicycles when only vehicles are wanted.
fn vehicles_only(args: &LoadgenArgs) -> TrafficConfig {
    let defaults = TrafficConfig::default();
    if args.vehicles_only || args.protocol == ProtocolArg::Gat1400 {
        TrafficConfig {
            person_share: 0.0,
            non_motor_share: 0.0,
            ..defaults
        }
    } else {
        defaults
    }
}

fn loadgen_config(args: &LoadgenArgs) -> anyhow::Result<LoadgenConfig> {
    let seconds = |value: f64, name: &str| {
        Duration::try_from_secs_f64(value)
            .with_context(|| format!("--{name} must be a non-negative number"))
    };
    let duration = match (args.duration, args.events) {
        (Some(secs), _) => Some(seconds(secs, "duration")?),
        (None, Some(_)) => None,
        (None, None) => Some(Duration::from_secs(60)),
    };
    let tokens = match &args.tokens {
        Some(path) => camtrail_loadgen::read_tokens(path)?,
        None => Default::default(),
    };
    let protocol = match args.protocol {
        ProtocolArg::Grpc => Protocol::Grpc,
        ProtocolArg::Gat1400 => Protocol::Gat1400,
    };
    let credentials = match (&args.gat1400_credentials, protocol) {
        (Some(path), _) => camtrail_loadgen::read_gat1400_credentials(path)?,
        (None, Protocol::Gat1400) => {
            anyhow::bail!("--protocol gat1400 needs --gat1400-credentials FILE")
        }
        (None, Protocol::Grpc) => Default::default(),
    };
    let config = LoadgenConfig {
        protocol,
        target: args.target.clone(),
        gat1400: Gat1400Settings {
            url: args.gat1400_url.clone(),
            credentials,
            time_zone: camtrail_loadgen::parse_time_zone(&args.time_zone)?,
            ..Gat1400Settings::default()
        },
        throttle: if args.open {
            Throttle::Open
        } else {
            Throttle::EventsPerSecond(args.rate)
        },
        max_events: args.events,
        duration,
        batch_size: args.batch_size,
        linger: Duration::from_millis(args.linger_ms.max(1)),
        ack_timeout: seconds(args.ack_timeout, "ack-timeout")?,
        max_in_flight: args.max_in_flight,
        gateways: args.gateways,
        tokens,
        drain_timeout: seconds(args.drain_timeout, "drain-timeout")?,
        ..LoadgenConfig::default()
    };
    config.validate()?;
    Ok(config)
}

/// The city traffic is simulated on, and the registry events are routed by when it is not
/// the city's own (a --registry CSV).
async fn load_city(args: &LoadgenArgs) -> anyhow::Result<(City, Option<CameraRegistry>)> {
    let registry = match &args.registry {
        Some(path) => Some(
            CameraRegistry::from_csv_path(path)
                .with_context(|| format!("reading the camera registry {}", path.display()))?,
        ),
        None => None,
    };
    let city_config = CityConfig {
        seed: args.city_seed,
        cameras: registry.as_ref().map_or(args.cameras, CameraRegistry::len),
        districts: args.districts,
        gateways: args.city_gateways,
    };
    city_config.validate().map_err(anyhow::Error::msg)?;
    // Generating 140,000 cameras takes seconds: keep it off the async workers.
    let city = tokio::task::spawn_blocking(move || City::generate(&city_config)).await?;
    let Some(registry) = registry else {
        return Ok((city, None));
    };
    let same = registry
        .cameras()
        .iter()
        .zip(city.registry.cameras())
        .all(|(given, generated)| given.camera_id == generated.camera_id);
    if same && registry.len() == city.registry.len() {
        return Ok((city, Some(registry)));
    }
    tracing::warn!(
        "the registry was not generated with --city-seed {} --districts {} --city-gateways {}; \
         traffic is simulated on that city and its events are given to the registry's cameras \
         by position",
        args.city_seed,
        args.districts,
        args.city_gateways
    );
    Ok((city, Some(registry)))
}
