//! The query side of camtrail: what an investigator asks and how the answer is put together.
//!
//! - [`track`]: track reconstruction as pure functions with no I/O — plate misread variants
//!   and wildcard patterns ([`track::misread_variants`], [`track::pattern_to_like`]), great-circle
//!   geometry, and [`track::TrackBuilder`], which turns the sightings storage returned into
//!   an ordered track with bursts, trips, district transitions and flagged hops.
//! - [`store`]: the read side of storage as a trait, with ClickHouse and SQLite backends.
//! - [`auth`]: bearer tokens (stored hashed) and roles; [`audit`]: where audit records go.
//! - [`service`]: the transport-independent query service (limits, roles, audit first).
//! - [`http`]: the HTTP API over it, [`grpc`]: the gRPC `Query` service over it;
//!   [`node`]: `camtrail query`; [`tls`]: rustls for both.
//! - [`embedded`]: `camtrail serve`: ingest + query over one SQLite database in one process.
//! - [`render`]: the PNG map and GeoJSON of a track; [`client`]: the HTTP client of
//!   `camtrail track`.

pub mod audit;
pub mod auth;
pub mod client;
pub mod embedded;
pub mod grpc;
pub mod http;
pub mod metrics;
pub mod node;
pub mod render;
pub mod service;
pub mod store;
pub mod tls;
pub mod track;
