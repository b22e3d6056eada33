//! Schema migrations: the numbered DDL files of `clickhouse/migrations/`, compiled into the
//! binary, applied in order and recorded in `schema_migrations`.
//!
//! Every file is idempotent on its own (`IF [NOT] EXISTS`), so a run interrupted between a
//! statement and its record is finished by the next run. ClickHouse 18.16 has no
//! `ADD COLUMN IF NOT EXISTS`, so a file adds a column with one plain
//! `ALTER TABLE t ADD COLUMN c ...` per column, and the runner skips such a statement when
//! `system.columns` already lists `c` in `t` ([`added_column`]). The one statement that is not
//! idempotent by its text is a copy of stored rows into a new table
//! (`INSERT INTO t SELECT …`, [`backfill_target`]): repeated, it adds copies that share the
//! sort key of a `ReplacingMergeTree` ending in `event_id`, which merges collapse and every
//! reader skips (`LIMIT 1 BY event_id`). An applied migration whose text has since changed is
//! an error: a released migration is never edited, a new one is added.

use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::{ClickhouseConfig, StoreError};
use crate::cluster::ClusterStatement;

/// One DDL file.
#[derive(Debug, Clone, Copy)]
pub struct Migration {
    /// Number, strictly increasing.
    pub version: u32,
    /// File name under `clickhouse/migrations/`.
    pub name: &'static str,
    /// Statements separated by `;` (the files hold no `;` inside strings).
    pub sql: &'static str,
}

macro_rules! migration {
    ($version:literal, $name:literal) => {
        Migration {
            version: $version,
            name: $name,
            sql: include_str!(concat!("../migrations/", $name)),
        }
    };
}

/// All migrations of this build, in order.
pub const MIGRATIONS: &[Migration] = &[
    migration!(1, "001_detections.sql"),
    migration!(2, "002_detections_by_camera.sql"),
    migration!(3, "003_subject_keys_daily.sql"),
    migration!(4, "004_cameras.sql"),
    migration!(5, "005_snapshots.sql"),
    migration!(6, "006_audit_log.sql"),
    migration!(7, "007_vehicle_attributes.sql"),
    migration!(8, "008_detections_by_hour.sql"),
    migration!(9, "009_cases.sql"),
    migration!(10, "010_watchlist.sql"),
];

const CREATE_MIGRATIONS_TABLE: &str = "CREATE TABLE IF NOT EXISTS schema_migrations \
    (version UInt32, name String, checksum String, applied_at_ms Int64) \
    ENGINE = ReplacingMergeTree() ORDER BY version";

impl Migration {
    /// The statements of this file, without comments or blanks.
    pub fn statements(&self) -> Vec<String> {
        let without_comments: String = self
            .sql
            .lines()
            .filter(|line| !line.trim_start().starts_with("--"))
            .collect::<Vec<_>>()
            .join("\n");
        without_comments
            .split(';')
            .map(str::trim)
            .filter(|statement| !statement.is_empty())
            .map(str::to_string)
            .collect()
    }

    /// Hex SHA-256 of the file text.
    pub fn checksum(&self) -> String {
        hex::encode(Sha256::digest(self.sql.as_bytes()))
    }
}

/// What a migration run did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MigrationReport {
    /// Versions applied by this run.
    pub applied: Vec<u32>,
    /// Versions that were already applied.
    pub already_applied: Vec<u32>,
}

#[derive(Debug, clickhouse::Row, Deserialize)]
struct AppliedRow {
    version: u32,
    name: String,
    checksum: String,
}

/// Create the database if needed and apply every migration not yet recorded. With
/// `config.cluster` set, on every server of that cluster (`ON CLUSTER`, [`crate::cluster`]).
pub async fn migrate(
    config: &ClickhouseConfig,
    now_ms: i64,
) -> Result<MigrationReport, StoreError> {
    let cluster = (!config.cluster.is_empty()).then_some(config.cluster.as_str());
    let create_database = match cluster {
        Some(cluster) => crate::cluster::create_database(&config.database, cluster),
        None => format!("CREATE DATABASE IF NOT EXISTS {}", config.database),
    };
    config
        .server_client()
        .query(&create_database)
        .execute()
        .await
        .map_err(|e| StoreError::clickhouse("create database", e))?;
    // A backfill through Distributed tables returns once every shard holds its rows.
    let client = match cluster {
        Some(_) => config.client().with_setting("insert_distributed_sync", "1"),
        None => config.client(),
    };
    let forms_of_table =
        forms(CREATE_MIGRATIONS_TABLE, cluster, &config.database).map_err(|message| {
            StoreError::Migration {
                version: 0,
                name: "schema_migrations",
                message,
            }
        })?;
    for statement in forms_of_table {
        client
            .query(&statement.sql)
            .execute()
            .await
            .map_err(|e| StoreError::clickhouse("create schema_migrations", e))?;
    }
    // A database migrated for one server is not made a cluster's by running again with
    // --cluster (its tables would stay unsharded), nor the other way round.
    let engine: String = client
        .query(
            "SELECT engine FROM system.tables \
             WHERE database = currentDatabase() AND name = 'schema_migrations'",
        )
        .fetch_one()
        .await
        .map_err(|e| StoreError::clickhouse("read the schema_migrations engine", e))?;
    if engine.starts_with("Replicated") != cluster.is_some() {
        return Err(StoreError::Migration {
            version: 0,
            name: "schema_migrations",
            message: format!(
                "database {} was migrated {} (schema_migrations is {engine}); \
                 use a new database rather than converting it in place",
                config.database,
                if cluster.is_some() {
                    "for one server, not a cluster"
                } else {
                    "for a cluster (camtrail migrate --cluster)"
                }
            ),
        });
    }
    let applied: Vec<AppliedRow> = client
        .query("SELECT version, name, checksum FROM schema_migrations FINAL ORDER BY version")
        .fetch_all()
        .await
        .map_err(|e| StoreError::clickhouse("read schema_migrations", e))?;

    let mut report = MigrationReport::default();
    for migration in MIGRATIONS {
        if let Some(row) = applied.iter().find(|row| row.version == migration.version) {
            check_unchanged(migration, row)?;
            report.already_applied.push(migration.version);
            continue;
        }
        apply(&client, migration, now_ms, cluster, &config.database).await?;
        report.applied.push(migration.version);
    }
    Ok(report)
}

/// `statement` as run: itself on one server, or its cluster form.
fn forms(
    statement: &str,
    cluster: Option<&str>,
    database: &str,
) -> Result<Vec<ClusterStatement>, String> {
    match cluster {
        Some(cluster) => crate::cluster::rewrite(statement, cluster, database),
        None => Ok(vec![ClusterStatement {
            sql: statement.to_string(),
            adds_column: added_column(statement).map(|(t, c)| (t.to_string(), c.to_string())),
        }]),
    }
}

fn check_unchanged(migration: &Migration, row: &AppliedRow) -> Result<(), StoreError> {
    if row.checksum == migration.checksum() && row.name == migration.name {
        return Ok(());
    }
    Err(StoreError::Migration {
        version: migration.version,
        name: migration.name,
        message: format!(
            "applied as {:?} with checksum {}, but this build's file differs; \
             add a new migration instead of editing an applied one",
            row.name, row.checksum
        ),
    })
}

async fn apply(
    client: &clickhouse::Client,
    migration: &Migration,
    now_ms: i64,
    cluster: Option<&str>,
    database: &str,
) -> Result<(), StoreError> {
    for original in migration.statements() {
        let backfill = backfill_target(&original);
        let statements =
            forms(&original, cluster, database).map_err(|message| StoreError::Migration {
                version: migration.version,
                name: migration.name,
                message,
            })?;
        for statement in statements {
            if let Some((table, column)) = &statement.adds_column
                && column_exists(client, table, column).await?
            {
                tracing::info!(
                    name = migration.name,
                    table,
                    column,
                    "column already added (a run interrupted before its record)"
                );
                continue;
            }
            let started = std::time::Instant::now();
            if let Some(table) = backfill {
                tracing::info!(
                    name = migration.name,
                    table,
                    "copying the stored rows (reads the whole source table; minutes at 100M rows)"
                );
            }
            client.query(&statement.sql).execute().await.map_err(|e| {
                StoreError::clickhouse(format!("apply migration {}", migration.name), e)
            })?;
            if let Some(table) = backfill {
                tracing::info!(
                    name = migration.name,
                    table,
                    seconds = started.elapsed().as_secs_f64(),
                    "stored rows copied"
                );
            }
        }
    }
    client
        .query("INSERT INTO schema_migrations (version, name, checksum, applied_at_ms) VALUES (?, ?, ?, ?)")
        .bind(migration.version)
        .bind(migration.name)
        .bind(migration.checksum())
        .bind(now_ms)
        .execute()
        .await
        .map_err(|e| StoreError::clickhouse("record migration", e))?;
    tracing::info!(
        version = migration.version,
        name = migration.name,
        "applied migration"
    );
    Ok(())
}

/// `(table, column)` of a statement that adds one column and nothing else
/// (`ALTER TABLE t ADD COLUMN c <type>`), the only kind of statement the runner makes
/// idempotent itself; `None` for anything else.
pub fn added_column(statement: &str) -> Option<(&str, &str)> {
    let mut words = statement.split_whitespace();
    let keywords = ["ALTER", "TABLE"];
    for keyword in keywords {
        if !words.next()?.eq_ignore_ascii_case(keyword) {
            return None;
        }
    }
    let table = words.next()?;
    for keyword in ["ADD", "COLUMN"] {
        if !words.next()?.eq_ignore_ascii_case(keyword) {
            return None;
        }
    }
    let column = words.next()?;
    // One command only: a second (`, ADD COLUMN ...`, `, DROP ...`) would not be covered.
    let upper = statement.to_ascii_uppercase();
    let single = upper.matches("ADD COLUMN").count() == 1
        && !upper.contains(" IF NOT EXISTS")
        && !statement.contains(',');
    let plain = |name: &str| name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (single && plain(table) && plain(column)).then_some((table, column))
}

/// The table a statement copies stored rows into (`INSERT INTO t SELECT …`, a migration's
/// backfill of a new table); `None` for anything else.
pub fn backfill_target(statement: &str) -> Option<&str> {
    let mut words = statement.split_whitespace();
    for keyword in ["INSERT", "INTO"] {
        if !words.next()?.eq_ignore_ascii_case(keyword) {
            return None;
        }
    }
    let table = words.next()?;
    let plain = table
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_');
    (plain && words.next()?.eq_ignore_ascii_case("SELECT")).then_some(table)
}

async fn column_exists(
    client: &clickhouse::Client,
    table: &str,
    column: &str,
) -> Result<bool, StoreError> {
    let count: u64 = client
        .query(
            "SELECT count() FROM system.columns \
             WHERE database = currentDatabase() AND table = ? AND name = ?",
        )
        .bind(table)
        .bind(column)
        .fetch_one()
        .await
        .map_err(|e| StoreError::clickhouse("read system.columns", e))?;
    Ok(count > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_increase_and_match_file_names() {
        let mut previous = 0;
        for migration in MIGRATIONS {
            assert!(migration.version > previous, "{}", migration.name);
            assert!(
                migration
                    .name
                    .starts_with(&format!("{:03}_", migration.version))
            );
            previous = migration.version;
        }
    }

    #[test]
    fn statements_are_split_and_comment_free() {
        for migration in MIGRATIONS {
            let statements = migration.statements();
            assert!(!statements.is_empty(), "{}", migration.name);
            for statement in statements {
                let idempotent = (statement.starts_with("CREATE ")
                    && statement.contains("IF NOT EXISTS"))
                    || (statement.starts_with("DROP ") && statement.contains("IF EXISTS"))
                    || added_column(&statement).is_some()
                    || backfill_target(&statement).is_some();
                assert!(idempotent, "not idempotent: {statement}");
                assert!(!statement.contains("--"));
            }
        }
    }

    #[test]
    fn only_single_column_additions_are_guarded() {
        assert_eq!(
            added_column("ALTER TABLE detections ADD COLUMN plate_color UInt8"),
            Some(("detections", "plate_color"))
        );
        assert_eq!(
            added_column("alter table t add column c Array(UInt8)"),
            Some(("t", "c"))
        );
        for other in [
            "ALTER TABLE t ADD COLUMN a UInt8, ADD COLUMN b UInt8",
            "ALTER TABLE t ADD COLUMN IF NOT EXISTS a UInt8",
            "ALTER TABLE t DROP COLUMN a",
            "ALTER TABLE t ADD COLUMN",
            "ALTER TABLE `t` ADD COLUMN a UInt8",
            "CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = Log",
            "ALTER TABLE t ADD COLUMN a UInt8 DEFAULT least(1, 2)",
        ] {
            assert_eq!(added_column(other), None, "{other}");
        }
    }

    #[test]
    fn backfills_are_recognised_and_nothing_else() {
        assert_eq!(
            backfill_target("INSERT INTO detections_by_hour\nSELECT hour FROM detections"),
            Some("detections_by_hour")
        );
        for other in [
            "INSERT INTO t VALUES (1)",
            "INSERT INTO t (a) SELECT 1",
            "INSERT INTO `t` SELECT 1",
            "SELECT 1",
            "INSERT INTO",
        ] {
            assert_eq!(backfill_target(other), None, "{other}");
        }
    }

    #[test]
    fn avoids_sql_that_clickhouse_18_16_lacks() {
        for migration in MIGRATIONS {
            for banned in [
                "DateTime64",
                "LowCardinality",
                " TTL ",
                "CODEC(",
                "Nullable(",
                "ADD COLUMN IF NOT EXISTS",
            ] {
                assert!(
                    !migration.sql.contains(banned),
                    "{} uses {banned}",
                    migration.name
                );
            }
        }
    }
}
