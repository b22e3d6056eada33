//! Configuration of an ingest node (`[ingest]` section).

use std::net::SocketAddr;
use std::path::PathBuf;

use camtrail_common::ConfigError;
use camtrail_common::tls::TlsConfig;
use serde::{Deserialize, Serialize};

use crate::validate::ValidationLimits;

/// Ingest node settings. Where accepted events go is not configured here: the node is given
/// a publisher (Kafka in `camtrail ingest`, configured by `[kafka]` and
/// `[ingest.producer]`; the embedded database in `camtrail serve`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    /// gRPC listen address (Ingest service, health, reflection).
    pub grpc_addr: SocketAddr,
    /// HTTP listen address for `/metrics` and `/healthz`.
    pub http_addr: SocketAddr,
    /// Camera registry CSV (`camtrail city` writes one): which cameras exist and which
    /// gateway may publish for each.
    pub registry_path: PathBuf,
    /// Gateway credentials: CSV `gateway_id,token_sha256` (`camtrail gateways issue` writes it).
    pub gateway_tokens_path: PathBuf,
    /// Largest accepted gRPC message, bytes; larger batches get OUT_OF_RANGE.
    pub max_message_bytes: usize,
    /// Unacked batches one `Publish` stream may have before the node stops reading it.
    pub max_in_flight_per_stream: usize,
    /// Batches the whole node validates or publishes at once; batches read beyond this wait
    /// in arrival order (each stream reads at most `max_in_flight_per_stream` ahead). A
    /// batch holds its permit until its events are durable, not until its ack is read.
    pub max_in_flight_batches: usize,
    /// Of those, the most one gateway may hold at once, whatever its number of streams; its
    /// further batches wait on their own, so the rest of the node stays for other gateways.
    pub max_in_flight_per_gateway: usize,
    /// Most events in one batch, at most 50,000; a larger batch is refused whole with
    /// `batch_too_large` (INVALID_ARGUMENT). Above 50,000 a message is refused before its
    /// events are decoded.
    pub max_batch_events: usize,
    /// How long an ack may wait for the gateway to read it before the node cancels the
    /// `Publish` stream with `acks_unread` (DEADLINE_EXCEEDED), ms.
    pub ack_timeout_ms: u64,
    /// At shutdown, how long the node keeps serving after its health turned NOT_SERVING
    /// (gRPC health, `/healthz` 503) before it stops reading streams, so load balancers and
    /// gateways move to other nodes first, ms.
    pub shutdown_delay_ms: u64,
    /// How long shutdown waits for in-flight batches and the producer flush, ms.
    pub shutdown_grace_ms: u64,
    /// Serve gRPC over TLS (rustls) when set.
    pub tls: Option<TlsConfig>,
    /// Per-event validation limits.
    pub validation: ValidationLimits,
    /// GA/T 1400 view-library ingest over HTTP (`[ingest.gat1400]`, off by default).
    pub gat1400: crate::gat1400::Gat1400Config,
}

impl Default for IngestConfig {
    fn default() -> Self {
        Self {
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 50051)),
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8081)),
            registry_path: PathBuf::from("cameras.csv"),
            gateway_tokens_path: PathBuf::from("gateway_token_hashes.csv"),
            max_message_bytes: 16 * 1024 * 1024,
            max_in_flight_per_stream: 8,
            max_in_flight_batches: 128,
            max_in_flight_per_gateway: 32,
            max_batch_events: 5_000,
            ack_timeout_ms: 30_000,
            shutdown_delay_ms: 1_000,
            shutdown_grace_ms: 20_000,
            tls: None,
            validation: ValidationLimits::default(),
            gat1400: crate::gat1400::Gat1400Config::default(),
        }
    }
}

impl IngestConfig {
    /// Check the values.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.max_in_flight_per_stream == 0 || self.max_in_flight_batches == 0 {
            return Err(ConfigError::new(
                "ingest.max_in_flight_* must be at least 1",
            ));
        }
        if !(1..=self.max_in_flight_batches).contains(&self.max_in_flight_per_gateway) {
            return Err(ConfigError::new(
                "ingest.max_in_flight_per_gateway must be 1 to max_in_flight_batches",
            ));
        }
        let most = camtrail_proto::wire::MAX_EVENTS_PER_MESSAGE;
        if !(1..=most).contains(&self.max_batch_events) {
            return Err(ConfigError(format!(
                "ingest.max_batch_events must be 1-{most}"
            )));
        }
        if self.ack_timeout_ms < 100 {
            return Err(ConfigError::new(
                "ingest.ack_timeout_ms must be at least 100",
            ));
        }
        if self.max_message_bytes < 1024 {
            return Err(ConfigError::new(
                "ingest.max_message_bytes must be at least 1024",
            ));
        }
        let validation = self.validation.clone().validate()?;
        if self.gat1400.enabled {
            self.gat1400
                .zone()
                .map_err(|error| ConfigError(error.to_string()))?;
            if self.gat1400.max_body_bytes < 1024 || self.gat1400.nonce_lifetime_s == 0 {
                return Err(ConfigError::new(
                    "ingest.gat1400.max_body_bytes must be at least 1024 and nonce_lifetime_s at least 1",
                ));
            }
        }
        Ok(Self { validation, ..self })
    }
}
