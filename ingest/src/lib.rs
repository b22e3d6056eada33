//! camtrail ingest: the gateway-facing stage, the same code in both ways to run.
//!
//! - [`server`]: [`IngestNode`](server::IngestNode): binds the gRPC and HTTP ports and runs
//!   until shutdown, in order (health NOT_SERVING → stop reading → drain in-flight batches
//!   → flush → close).
//! - [`service`]: the `camtrail.v1.Ingest` gRPC service: authenticate, validate, publish, ack.
//! - [`gat1400`]: GA/T 1400 view-library ingest over HTTP (Digest-authenticated devices,
//!   `/VIID/MotorVehicles` onto the same path as `PublishBatch`, checkpoints into the
//!   registry).
//! - [`permits`]: the node's batch permits, with a cap per gateway.
//! - [`auth`]: gateway credentials (bearer tokens, stored hashed).
//! - [`validate`]: per-event validation, plate-key normalisation and snapshot thumbnails.
//! - [`metrics`]: Prometheus metrics on `/metrics`, with `/healthz`.
//! - [`config`]: the `[ingest]` configuration section.
//!
//! Where accepted events go is a [`Publisher`](camtrail_storage::Publisher) the node is
//! given: Kafka (`camtrail-kafka`) in `camtrail ingest`, the embedded database
//! (`camtrail-sqlite`) in `camtrail serve`. This crate knows neither.

pub mod auth;
pub mod config;
pub mod gat1400;
pub mod metrics;
pub mod permits;
pub mod server;
pub mod service;
pub mod validate;
