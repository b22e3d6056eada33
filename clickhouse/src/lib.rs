//! ClickHouse, the distributed mode's storage. This crate owns every table: its DDL
//! (`migrations/`, compiled in), its rows, and every statement that touches it.
//!
//! - [`ClickhouseConfig`] ([`config`]): the `[clickhouse]` section and clients.
//! - [`cluster`]: cluster mode — the DDL rewritten for `ON CLUSTER` (replicated `_local`
//!   tables, `Distributed` tables under the usual names) and the shard of a subject key.
//! - [`migrate`]: applies the numbered DDL once each, recorded in `schema_migrations`.
//! - [`rows`]: `detections`, `snapshots`, `audit_log`, `cameras` rows as sent.
//! - [`writer`]: [`TableWriter`](writer::TableWriter), one RowBinary insert per table (the
//!   sink retries it).
//! - [`reader`]: [`ClickhouseStore`], the query side's
//!   [`SightingStore`](camtrail_storage::SightingStore).
//! - [`retention`]: weekly partitions dropped, the straddling week's old rows deleted.
//! - [`cameras`]: the registry loaded atomically into `cameras`.
//!
//! Everything here must run on ClickHouse 18.16 (the server Debian ships) and on current
//! releases; `migrations/README.md` lists the SQL features to avoid.

pub mod cameras;
pub mod cases;
pub mod cluster;
pub mod config;
pub mod error;
mod failover;
pub mod migrate;
pub mod reader;
pub mod retention;
pub mod rows;
pub mod writer;

pub use cameras::load_cameras;
pub use config::ClickhouseConfig;
pub use error::StoreError;
pub use migrate::{MIGRATIONS, Migration, MigrationReport, migrate};
pub use reader::{ClickhouseStore, utc_day};
pub use retention::{
    ClickhouseRetention, RETENTION_TABLES, RetentionAction, RetentionPlan, RetentionReport,
    apply_retention, format_date, plan_retention,
};
