//! Configuration of an ingest node (`[ingest]` section).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::kafka::ProducerConfig;
use crate::validate::ValidationLimits;

/// Ingest node settings. Kafka connection settings are in the shared `[kafka]` section.
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
    /// (each stream reads at most `max_in_flight_per_stream` ahead).
    pub max_in_flight_batches: usize,
    /// How long shutdown waits for in-flight batches and the producer flush, ms.
    pub shutdown_grace_ms: u64,
    /// Serve gRPC over TLS (rustls) when set.
    pub tls: Option<TlsConfig>,
    /// Kafka producer tuning.
    pub producer: ProducerConfig,
    /// Per-event validation limits.
    pub validation: ValidationLimits,
}

/// TLS settings (PEM files).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain.
    pub cert_path: PathBuf,
    /// Server private key.
    pub key_path: PathBuf,
    /// When set, gateways must present a client certificate signed by this CA (mTLS), in
    /// addition to their token.
    pub client_ca_path: Option<PathBuf>,
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
            shutdown_grace_ms: 20_000,
            tls: None,
            producer: ProducerConfig::default(),
            validation: ValidationLimits::default(),
        }
    }
}

impl IngestConfig {
    /// Check the values.
    pub fn validate(self) -> Result<Self, String> {
        if self.max_in_flight_per_stream == 0 || self.max_in_flight_batches == 0 {
            return Err("ingest.max_in_flight_* must be at least 1".into());
        }
        if self.max_message_bytes < 1024 {
            return Err("ingest.max_message_bytes must be at least 1024".into());
        }
        let validation = self.validation.clone().validate()?;
        Ok(Self { validation, ..self })
    }
}
