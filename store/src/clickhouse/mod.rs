//! ClickHouse: connection settings, schema migrations, camera registry.
//!
//! Everything here must run on ClickHouse 18.16 (the server Debian ships) and on current
//! releases; `deploy/clickhouse/README.md` lists the SQL features to avoid.

mod cameras;
mod config;
mod error;
mod migrate;
mod retention;

pub use cameras::load_cameras;
pub use config::ClickhouseConfig;
pub use error::StoreError;
pub use migrate::{MIGRATIONS, Migration, MigrationReport, migrate};
pub use retention::{
    RETENTION_TABLES, RetentionAction, RetentionPlan, RetentionReport, apply_retention,
    format_date, plan_retention,
};
