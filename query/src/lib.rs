//! The query stage of camtrail: what an investigator asks and how the answer is put
//! together, the same code over either backend.
//!
//! - [`track`]: track reconstruction as pure functions with no I/O — plate misread variants
//!   and wildcard patterns ([`track::misread_variants`], [`track::pattern_to_like`]),
//!   great-circle geometry, and [`track::TrackBuilder`], which turns the sightings storage
//!   returned into an ordered track with bursts, trips, district transitions and flagged
//!   hops.
//! - [`service`]: the transport-independent query service (limits, roles, audit first),
//!   over any [`SightingStore`](camtrail_storage::SightingStore) and
//!   [`AuditLog`](camtrail_storage::AuditLog).
//! - [`analytics`]: scene search, series of scenes and co-travel as pure functions over
//!   what storage returned, and the areas they read.
//! - [`attributes`]: the names of vehicle attributes in answers and Passes filters.
//! - [`auth`]: investigator bearer tokens (stored hashed) and roles.
//! - [`checkpoint`]: signed checkpoints of the node's audit chain for an outside witness.
//! - [`http`]: the HTTP API over the service, [`grpc`]: the gRPC `Query` service over it;
//!   [`node`]: binding and running both.
//! - [`render`]: the PNG map and GeoJSON of a track; [`client`]: the HTTP client of
//!   `camtrail track`; [`metrics`]; [`web`]: the investigator's workspace (the built
//!   `web/` app) at `/`, with its `whoami` and offline base map endpoints.
//!
//! Nothing here knows Kafka, ClickHouse or SQLite: `camtrail-serve` hands the node its
//! store and audit log.

pub mod alerts;
pub mod analytics;
pub mod attributes;
pub mod auth;
pub mod checkpoint;
pub mod client;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod node;
pub mod render;
pub mod service;
pub mod track;
pub mod web;
pub mod webhooks;
