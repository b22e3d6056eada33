//! camtrail storage.
//!
//! - [`clickhouse`]: the distributed-mode store: connection config, the schema migrations
//!   kept under `deploy/clickhouse/`, and loading the camera registry.

pub mod clickhouse;
