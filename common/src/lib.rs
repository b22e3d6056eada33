//! Plumbing shared by every camtrail node, written once:
//!
//! - [`tls`]: the `tls = { cert_path, key_path, client_ca_path }` setting and the rustls
//!   configurations built from it (tonic for gRPC, a rustls acceptor for HTTP).
//! - [`http`]: the `/metrics` + `/healthz` router, and errors as JSON answers.
//! - [`grpc`]: gRPC health and reflection, errors as `tonic::Status`.
//! - [`readiness`]: what `/healthz` and gRPC health report, turned off first at shutdown.
//! - [`token`]: bearer tokens, stored only as SHA-256 hashes.
//! - [`clock`], [`backoff`], [`config`]: the node clock, capped exponential backoff,
//!   configuration errors.
//!
//! Nothing here knows Kafka, ClickHouse, SQLite or the track logic.

pub mod backoff;
pub mod clock;
pub mod config;
pub mod grpc;
pub mod http;
pub mod readiness;
pub mod tls;
pub mod token;

pub use backoff::Backoff;
pub use clock::now_ms;
pub use config::ConfigError;
pub use readiness::Readiness;
