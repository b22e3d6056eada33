//! `camtrail loadgen`: drives an ingest endpoint as a fleet of edge gateways would.
//!
//! One gRPC `Publish` stream per gateway; events are routed to the stream of the gateway
//! that serves their camera, cut into batches, sent within a bounded window of unacked
//! batches per stream, resent when no ack arrives in time (on a new stream when the old one
//! broke, reconnecting with capped backoff; with several targets, on the next node at once),
//! and paced at a target rate or as fast as the node takes them.
//!
//! Layout:
//! - [`config`]: [`LoadgenConfig`], the gateway token file.
//! - [`rate`]: the [`rate::Pacer`].
//! - [`dispatch`]: pulls events from the generator, routes and batches them.
//! - `stream`: one gateway's `Publish` stream: window, acks, resends, reconnects.
//! - `gat1400`: one gateway as a GA/T 1400 platform (`--protocol gat1400`): Digest-
//!   authenticated `POST /VIID/MotorVehicles` requests in the same bounded window, resent on
//!   503 and transport errors, counted per object from the status list.
//! - [`report`]: counters, latency histogram, per-second timeline, the [`LoadReport`].
//! - [`chart`]: the PNG chart (labels in the track maps' 5×7 font); [`progress`]: the live
//!   progress bar.
//!
//! [`run`] is the entry point, for the CLI as for in-process callers (`camtrail demo`,
//! integration tests); [`RunHooks::on_ack`] reports exactly which event ids were acked
//! and rejected.

pub mod chart;
mod chart_text;
pub mod config;
pub mod dispatch;
mod gat1400;
pub mod progress;
pub mod rate;
pub mod report;
mod stream;

use std::sync::Arc;
use std::time::Duration;

use camtrail_city::SyntheticEvent;
use camtrail_model::{CameraRegistry, ObjectClass};
use camtrail_proto::v1::DetectionEvent;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;

pub use config::{
    Gat1400Settings, LoadgenConfig, PlatformCredential, Protocol, Throttle, parse_time_zone,
    read_gat1400_credentials, read_tokens,
};
pub use dispatch::{Routes, StopReason};
pub use report::{LatencySummary, LoadReport, SecondPoint};

use dispatch::{DispatchSettings, Dispatcher};
use progress::Progress;
use rate::Pacer;
use report::Stats;
use stream::{GatewayOutcome, GatewayStream, StreamSettings};

/// Errors of a load run.
#[derive(Debug, thiserror::Error)]
pub enum LoadgenError {
    /// A configuration value is out of range.
    #[error("invalid loadgen configuration: {0}")]
    InvalidConfig(String),
    /// The token file could not be read or parsed.
    #[error("gateway tokens {path}: {message}")]
    Tokens {
        /// File.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// No registry camera is served by a used gateway.
    #[error("the camera registry has no cameras")]
    NoCameras,
    /// The node refused a gateway's stream in a way resending cannot fix.
    #[error("gateway {gateway_id}: ingest refused the stream: {code:?}: {message}")]
    Rejected {
        /// Gateway.
        gateway_id: String,
        /// gRPC status code.
        code: tonic::Code,
        /// Status message.
        message: String,
    },
    /// The node answered a GA/T 1400 request with an error resending cannot fix (401 after
    /// fresh challenges, 400, 403, 413, …).
    #[error("gateway {gateway_id}: ingest refused the GA/T 1400 request: HTTP {status}: {message}")]
    HttpRefused {
        /// Gateway.
        gateway_id: String,
        /// HTTP status.
        status: u16,
        /// `StatusString` or the start of the body.
        message: String,
    },
    /// A gateway could not open a stream for too long.
    #[error("gateway {gateway_id}: no stream could be opened for {after:?}")]
    GaveUp {
        /// Gateway.
        gateway_id: String,
        /// How long it tried.
        after: Duration,
    },
    /// A report or chart file could not be written.
    #[error("writing {path}: {message}")]
    Output {
        /// File.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// A gateway task panicked.
    #[error("a gateway task failed: {0}")]
    Task(String),
}

/// The first ack of one batch: which events were accepted and which rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AckedBatch {
    /// Gateway whose stream carried it.
    pub gateway_id: String,
    /// Its sequence number on that gateway.
    pub batch_seq: u64,
    /// Ids of the accepted events.
    pub accepted: Vec<[u8; 16]>,
    /// Ids of the rejected events with their `RejectionCode` number.
    pub rejected: Vec<([u8; 16], i32)>,
    /// How many times the batch had been sent when the ack came (1 = no resend).
    pub sends: u32,
}

/// Called once per acked batch, from the gateway's stream task; keep it quick.
pub type AckObserver = Arc<dyn Fn(&AckedBatch) + Send + Sync>;

/// How a caller steers and observes a run.
#[derive(Clone, Default)]
pub struct RunHooks {
    /// Cancel to stop offering events; outstanding batches are then drained (up to
    /// `drain_timeout`) and the report covers what was sent.
    pub shutdown: CancellationToken,
    /// Told about every acked batch (for tests that check what the node stored).
    pub on_ack: Option<AckObserver>,
    /// Draw the progress bar on stderr (only when it is a terminal).
    pub progress: bool,
}

impl std::fmt::Debug for RunHooks {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("RunHooks")
            .field("shutdown", &self.shutdown)
            .field("on_ack", &self.on_ack.is_some())
            .field("progress", &self.progress)
            .finish()
    }
}

/// Drive `config.target` with `events` (camera indices into `registry`) and report.
///
/// Events are pulled only as the pacing and the streams allow, so the iterator may be
/// endless. See [`LoadgenConfig::shift_timestamps`] for how capture times are kept near
/// "now". Returns an error for an invalid config, an empty registry, or a gateway the node
/// refuses (e.g. UNAUTHENTICATED) or that cannot connect for `give_up_after`.
pub async fn run(
    config: LoadgenConfig,
    registry: &CameraRegistry,
    events: impl Iterator<Item = SyntheticEvent> + Send,
    hooks: RunHooks,
) -> Result<LoadReport, LoadgenError> {
    config.validate()?;
    let routes = Routes::new(registry, config.gateways);
    if routes.gateway_ids.is_empty() {
        return Err(LoadgenError::NoCameras);
    }
    let origin = Instant::now();
    let stats = Arc::new(Stats::new(origin));
    let abort = CancellationToken::new();
    let mut tasks = JoinSet::new();
    let senders = match config.protocol {
        Protocol::Grpc => spawn_grpc(&config, &routes, &stats, &abort, &hooks, &mut tasks)?,
        Protocol::Gat1400 => spawn_gat1400(&config, &routes, &stats, &abort, &hooks, &mut tasks)?,
    };
    let progress = Progress::start(Arc::clone(&stats), config.max_events, hooks.progress);
    let settings = DispatchSettings {
        batch_size: config.batch_size,
        linger: config.linger,
        max_events: config.max_events,
        deadline: config.duration.map(|duration| origin + duration),
        pacer: match config.throttle {
            Throttle::Open => None,
            Throttle::EventsPerSecond(rate) => Some(Pacer::new(rate, origin)),
        },
        shift_timestamps: config.shift_timestamps,
    };
    let dispatcher = Dispatcher::new(
        registry,
        &routes,
        senders,
        settings,
        origin,
        hooks.shutdown.clone(),
    );
    // GA/T 1400 carries persons and non-motor vehicles in other objects than
    // MotorVehicleObject, which the node does not take: only vehicles are offered.
    let vehicles_only = config.protocol == Protocol::Gat1400;
    let events =
        events.filter(move |event| !vehicles_only || event.object_class == ObjectClass::Vehicle);
    let dispatched = dispatcher.run(events).await;
    tracing::debug!(offered = dispatched.offered, stop = ?dispatched.stop, "dispatch finished");
    let joined = drain(&mut tasks, &abort, config.drain_timeout).await;
    progress.finish().await;
    let outcomes = joined?;
    let mut report = LoadReport {
        protocol: config.protocol.name().to_string(),
        target: match config.protocol {
            Protocol::Grpc => config.target.clone(),
            Protocol::Gat1400 => config.gat1400.url.clone(),
        },
        gateways: routes.gateway_ids.len(),
        batch_size: config.batch_size,
        target_rate_eps: match config.throttle {
            Throttle::Open => None,
            Throttle::EventsPerSecond(rate) => Some(rate),
        },
        offered: dispatched.offered,
        pacing_forgiven: dispatched.pacing_forgiven,
        ..LoadReport::default()
    };
    stats.finish(Instant::now(), &mut report);
    for outcome in outcomes {
        report.unacked += outcome.unacked_events;
        report.batches_sent += outcome.batches_sent;
        report.batches_acked += outcome.batches_acked;
        report.duplicate_acks += outcome.duplicate_acks;
        report.unknown_acks += outcome.unknown_acks;
        report.inconsistent_acks += outcome.inconsistent_acks;
    }
    report.unsent = report.offered.saturating_sub(report.sent);
    Ok(report)
}

/// Write `registry`'s cameras as GA/T 1400 checkpoints: the `TollgateListObject` body a
/// platform of this city would `POST /VIID/Tollgates` (`camtrail city --tollgates`).
pub fn write_tollgates(
    registry: &CameraRegistry,
    path: &std::path::Path,
) -> Result<(), LoadgenError> {
    use std::io::Write as _;
    let output_error = |message: String| LoadgenError::Output {
        path: path.display().to_string(),
        message,
    };
    let body = camtrail_proto::gat1400::encode::tollgates(registry.cameras());
    let file = std::fs::File::create(path).map_err(|error| output_error(error.to_string()))?;
    let mut out = std::io::BufWriter::new(file);
    serde_json::to_writer(&mut out, &body).map_err(|error| output_error(error.to_string()))?;
    out.flush().map_err(|error| output_error(error.to_string()))
}

/// A gateway task's result.
type GatewayTasks = JoinSet<Result<GatewayOutcome, LoadgenError>>;

/// Start one gRPC `Publish` stream task per gateway; the senders of their batch channels.
fn spawn_grpc(
    config: &LoadgenConfig,
    routes: &Routes,
    stats: &Arc<Stats>,
    abort: &CancellationToken,
    hooks: &RunHooks,
    tasks: &mut GatewayTasks,
) -> Result<Vec<mpsc::Sender<Vec<DetectionEvent>>>, LoadgenError> {
    let endpoints = endpoints(config)?;
    // Check every credential before the first task starts.
    let mut tokens = Vec::with_capacity(routes.gateway_ids.len());
    for gateway_id in &routes.gateway_ids {
        tokens.push(bearer(config, gateway_id)?);
    }
    let mut senders = Vec::with_capacity(routes.gateway_ids.len());
    for (i, (gateway_id, token)) in routes.gateway_ids.iter().zip(tokens).enumerate() {
        // One slot: the gateway's window is the buffer; the dispatcher waits when it is full.
        let (batches_tx, batches_rx) = mpsc::channel(1);
        senders.push(batches_tx);
        let gateway = GatewayStream {
            gateway_id: gateway_id.clone(),
            token,
            endpoints: Arc::clone(&endpoints),
            current: i % endpoints.len(),
            settings: stream_settings(config),
            batches_rx,
            stats: Arc::clone(stats),
            on_ack: hooks.on_ack.clone(),
            abort: abort.clone(),
        };
        tasks.spawn(gateway.run());
    }
    Ok(senders)
}

/// Start one GA/T 1400 platform task per gateway (one shared HTTP connection pool).
fn spawn_gat1400(
    config: &LoadgenConfig,
    routes: &Routes,
    stats: &Arc<Stats>,
    abort: &CancellationToken,
    hooks: &RunHooks,
    tasks: &mut GatewayTasks,
) -> Result<Vec<mpsc::Sender<Vec<DetectionEvent>>>, LoadgenError> {
    let settings = &config.gat1400;
    // Check every credential before the first task starts.
    let mut credentials = Vec::with_capacity(routes.gateway_ids.len());
    for gateway_id in &routes.gateway_ids {
        let credential = settings.credentials.get(gateway_id).ok_or_else(|| {
            LoadgenError::InvalidConfig(format!(
                "no GA/T 1400 credential for gateway {gateway_id} in the credentials file"
            ))
        })?;
        credentials.push(credential.clone());
    }
    let client = gat1400::http_client(config.ack_timeout);
    let base = settings.url.trim_end_matches('/').to_string();
    let mut senders = Vec::with_capacity(routes.gateway_ids.len());
    for (gateway_id, credential) in routes.gateway_ids.iter().zip(credentials) {
        let (batches_tx, batches_rx) = mpsc::channel(1);
        senders.push(batches_tx);
        let platform = gat1400::Platform {
            endpoint: Arc::new(gat1400::Endpoint {
                client: client.clone(),
                base: base.clone(),
                credential,
                gateway_id: gateway_id.clone(),
                settings: stream_settings(config),
                abort: abort.clone(),
                stats: Arc::clone(stats),
            }),
            zone: settings.time_zone,
            keepalive: settings.keepalive,
            batches_rx,
            on_ack: hooks.on_ack.clone(),
        };
        tasks.spawn(platform.run());
    }
    Ok(senders)
}

/// Wait for every gateway task; after `drain_timeout`, abort them (they return what is still
/// unacked) and wait again. The first gateway error aborts the others and is returned.
async fn drain(
    tasks: &mut JoinSet<Result<GatewayOutcome, LoadgenError>>,
    abort: &CancellationToken,
    drain_timeout: Duration,
) -> Result<Vec<GatewayOutcome>, LoadgenError> {
    let deadline = tokio::time::sleep(drain_timeout);
    tokio::pin!(deadline);
    let mut outcomes = Vec::new();
    let mut first_error = None;
    loop {
        let joined = tokio::select! {
            joined = tasks.join_next() => joined,
            _ = &mut deadline, if !abort.is_cancelled() => {
                tracing::warn!("drain timeout: giving up on outstanding acks");
                abort.cancel();
                continue;
            }
        };
        let Some(joined) = joined else {
            break;
        };
        match joined {
            Ok(Ok(outcome)) => outcomes.push(outcome),
            Ok(Err(error)) => {
                abort.cancel();
                first_error.get_or_insert(error);
            }
            Err(join_error) => {
                abort.cancel();
                first_error.get_or_insert(LoadgenError::Task(join_error.to_string()));
            }
        }
    }
    match first_error {
        Some(error) => Err(error),
        None => Ok(outcomes),
    }
}

fn endpoints(config: &LoadgenConfig) -> Result<Arc<[Endpoint]>, LoadgenError> {
    config
        .targets()
        .into_iter()
        .map(|target| {
            let endpoint = Endpoint::from_shared(target.to_string()).map_err(|error| {
                LoadgenError::InvalidConfig(format!("target {target}: {error}"))
            })?;
            Ok(endpoint
                .connect_timeout(config.ack_timeout)
                .tcp_nodelay(true)
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(20)))
        })
        .collect()
}

fn bearer(
    config: &LoadgenConfig,
    gateway_id: &str,
) -> Result<Option<MetadataValue<tonic::metadata::Ascii>>, LoadgenError> {
    let Some(token) = config.tokens.get(gateway_id) else {
        return Ok(None);
    };
    MetadataValue::try_from(format!("Bearer {token}"))
        .map(Some)
        .map_err(|_| {
            LoadgenError::InvalidConfig(format!(
                "token of gateway {gateway_id} is not printable ASCII"
            ))
        })
}

fn stream_settings(config: &LoadgenConfig) -> StreamSettings {
    StreamSettings {
        ack_timeout: config.ack_timeout,
        max_in_flight: config.max_in_flight,
        backoff_initial: config.reconnect_backoff_initial,
        backoff_max: config.reconnect_backoff_max,
        give_up_after: config.give_up_after,
    }
}
