//! The composition of camtrail's roles: where stages meet backends.
//!
//! - [`config`]: every section side by side, loaded from defaults, a file and the
//!   environment.
//! - [`embedded`]: `camtrail serve` — the ingest and query nodes over one SQLite database
//!   in one process, and its retention.
//! - [`demo`]: `camtrail demo` — a city, `serve`, the load generator and an investigator's
//!   question, end to end.
//! - [`distributed`] (feature `distributed`): `camtrail ingest`, `sink`, `query`,
//!   `migrate`, ClickHouse retention, over Kafka and ClickHouse.
//!
//! Without the `distributed` feature nothing here links librdkafka or the ClickHouse client:
//! the embedded build needs Rust and a C compiler (bundled SQLite) only.

#[cfg(feature = "distributed")]
pub mod alert;
pub mod config;
pub mod demo;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod embedded;

pub use config::Config;
