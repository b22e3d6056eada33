//! camtrail ingest: the gateway-facing side of the distributed mode.
//!
//! - [`server`]: [`IngestNode`](server::IngestNode): binds the gRPC and HTTP ports and runs
//!   until shutdown, in order (stop reading → drain in-flight batches → flush → close).
//! - [`service`]: the `camtrail.v1.Ingest` gRPC service: authenticate, validate, publish, ack.
//! - [`auth`]: gateway credentials (bearer tokens, stored hashed).
//! - [`publish`]: the [`Publisher`](publish::Publisher) seam: Kafka (distributed) or a
//!   database transaction (embedded) makes a batch durable before it is acked.
//! - [`kafka`]: Kafka settings, topics (created by `camtrail migrate`) and the producer.
//! - [`metrics`] / [`http`]: Prometheus metrics on `/metrics`, `/healthz`.
//! - [`config`]: the `[ingest]` configuration section.
//! - [`validate`]: per-event validation, plate-key normalisation and snapshot thumbnails.
//! - [`sink`]: `camtrail sink`: the Kafka → ClickHouse loader (at-least-once, ordered
//!   offset commits, dead-letter topic).

pub mod auth;
pub mod config;
pub mod http;
pub mod kafka;
pub mod metrics;
pub mod publish;
pub mod server;
pub mod service;
pub mod sink;
pub mod tls;
pub mod validate;
