//! Retention: remove everything captured before a cutoff from the tables that hold personal
//! data (`detections`, `detections_by_hour`, `subject_keys_daily`, `snapshots`).
//!
//! All four tables are partitioned by week (`toMonday(day)`, days in UTC). A partition whose
//! week ends at or before the cutoff instant is dropped whole (`ALTER TABLE … DROP PARTITION
//! 'YYYY-MM-DD'`, the form ClickHouse 18.16 and current releases accept). In the partition that
//! contains the cutoff, the older rows are deleted with `ALTER TABLE … DELETE`, an
//! asynchronous mutation that [`apply_retention`] waits for (bounded) so the report means the
//! data is really gone.
//!
//! Exact semantics per table:
//! - `detections`, `detections_by_hour`, `snapshots`: no row with
//!   `captured_at_ms < cutoff_ms` remains; every row at or after the cutoff is kept.
//! - `subject_keys_daily` (one row per key and UTC day): days strictly before the cutoff's UTC
//!   day are removed; the cutoff's own day is kept, as it may count sightings at or after the
//!   cutoff. So a key is findable at most one day longer than the detections it points to
//!   (which are themselves gone).
//!
//! Legal holds: the event ids held for a case that is not closed stay in `detections`,
//! `detections_by_hour` and `snapshots` whenever they were captured. A partition wholly
//! before the cutoff that holds one of them is not dropped; its other rows are deleted
//! (`… AND hex(event_id) NOT IN (…)`), and a later run that finds only held rows there does
//! nothing. `subject_keys_daily` ignores holds (a held track is reached by its exact plate,
//! which reads `detections` directly).
//!
//! `audit_log`, `cameras`, `cases`, `legal_holds` and `schema_migrations` are never
//! touched.
//!
//! [`ClickhouseRetention`] is the store's
//! [`RetentionTarget`](camtrail_storage::RetentionTarget): the run is audited before
//! anything is deleted by `camtrail_storage::retention::apply`.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use camtrail_storage::StorageError;
use serde_json::{Map, Value, json};

use super::{ClickhouseConfig, StoreError};

/// Tables holding personal data, all partitioned by `toMonday(day)`.
pub const RETENTION_TABLES: &[&str] = &[
    "detections",
    "detections_by_hour",
    "snapshots",
    "subject_keys_daily",
];

const MS_PER_DAY: i64 = 86_400_000;
const POLL_INTERVAL: Duration = Duration::from_millis(200);

/// What retention would do, computed from `system.parts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// The database planned for.
    pub database: String,
    /// Everything captured before this instant (unix ms) goes.
    pub cutoff_ms: i64,
    /// One action per affected (table, partition), ordered by table then partition.
    pub actions: Vec<RetentionAction>,
    /// Held event ids (uppercase hex, as ClickHouse's `hex()` spells them): kept.
    pub held: BTreeSet<String>,
}

/// One step of a retention plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RetentionAction {
    /// Drop a weekly partition that lies wholly before the cutoff.
    DropPartition {
        /// Table name.
        table: String,
        /// The partition's Monday, `YYYY-MM-DD`.
        partition: String,
        /// Rows in its active parts.
        rows: u64,
        /// Bytes on disk of its active parts.
        bytes: u64,
    },
    /// Delete the rows before the cutoff in the partition that straddles it.
    DeleteBefore {
        /// Table name.
        table: String,
        /// The partition's Monday, `YYYY-MM-DD`.
        partition: String,
        /// The cutoff (unix ms).
        cutoff_ms: i64,
        /// Rows in this partition that are before the cutoff (for `subject_keys_daily`:
        /// rows of days before the cutoff's day).
        rows_before_cutoff: u64,
    },
}

impl RetentionAction {
    /// The table acted on.
    pub fn table(&self) -> &str {
        match self {
            Self::DropPartition { table, .. } | Self::DeleteBefore { table, .. } => table,
        }
    }

    /// The partition acted on (`YYYY-MM-DD`, its Monday).
    pub fn partition(&self) -> &str {
        match self {
            Self::DropPartition { partition, .. } | Self::DeleteBefore { partition, .. } => {
                partition
            }
        }
    }

    /// Rows the action removes.
    pub fn rows(&self) -> u64 {
        match self {
            Self::DropPartition { rows, .. } => *rows,
            Self::DeleteBefore {
                rows_before_cutoff, ..
            } => *rows_before_cutoff,
        }
    }
}

/// What [`apply_retention`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionReport {
    /// The cutoff applied (unix ms).
    pub cutoff_ms: i64,
    /// The actions carried out, in order.
    pub applied: Vec<RetentionAction>,
    /// Partitions dropped.
    pub partitions_dropped: usize,
    /// Rows removed (as counted when planning).
    pub rows_removed: u64,
    /// Bytes on disk freed by dropped partitions.
    pub bytes_dropped: u64,
}

#[derive(Debug, clickhouse::Row, serde::Deserialize)]
struct PartitionRow {
    table: String,
    partition: String,
    rows: u64,
    bytes: u64,
}

/// Plan the removal of everything captured before `cutoff_ms` (unix ms), from
/// `system.parts`; changes nothing.
pub async fn plan_retention(
    config: &ClickhouseConfig,
    cutoff_ms: i64,
    held: &BTreeSet<String>,
) -> Result<RetentionPlan, StoreError> {
    if !config.cluster.is_empty() {
        // system.parts lists one server's parts, and a drop must reach every replica of
        // every shard (`ALTER TABLE …_local ON CLUSTER`): not built yet. Refuse rather
        // than plan from one shard's view.
        return Err(StoreError::Config(format!(
            "retention on a cluster ({}) is not supported yet; see docs/operations.md",
            config.cluster
        )));
    }
    let client = config.client();
    let held: BTreeSet<String> = held
        .iter()
        .filter_map(|id| camtrail_model::EventId::parse_hex(id))
        .map(|id| id.to_hex().to_ascii_uppercase())
        .collect();
    let parts: Vec<PartitionRow> = client
        .query(
            "SELECT table, partition, sum(rows) AS rows, sum(bytes_on_disk) AS bytes \
             FROM system.parts \
             WHERE database = ? AND active AND table IN ('detections', \
             'detections_by_hour', 'snapshots', 'subject_keys_daily') \
             GROUP BY table, partition ORDER BY table, partition",
        )
        .bind(&config.database)
        .fetch_all()
        .await
        .map_err(|e| StoreError::clickhouse("listing partitions", e))?;

    let mut actions = Vec::new();
    for part in parts {
        let Some(table) = RETENTION_TABLES.iter().find(|t| **t == part.table) else {
            continue;
        };
        let monday = parse_partition(&part.partition).ok_or_else(|| {
            StoreError::Config(format!(
                "table {table}: unexpected partition {:?} (want a Monday YYYY-MM-DD)",
                part.partition
            ))
        })?;
        let partition = format_date(monday);
        let week_end_ms = (monday + 7) * MS_PER_DAY;
        let holds_apply = !held.is_empty() && *table != "subject_keys_daily";
        if week_end_ms <= cutoff_ms && holds_apply {
            // Count what a drop would take that is held.
            let sql = format!(
                "SELECT countIf({}) AS removable, count() AS total FROM {table} \
                 WHERE day >= toDate('{partition}') AND day < toDate('{}')",
                delete_condition(table, cutoff_ms, &held),
                format_date(monday + 7)
            );
            let (removable, total): (u64, u64) = sized(client.query(&sql), &sql)
                .fetch_one()
                .await
                .map_err(|e| StoreError::clickhouse(format!("counting held rows in {table}"), e))?;
            if removable == total {
                actions.push(RetentionAction::DropPartition {
                    table: (*table).to_string(),
                    partition,
                    rows: part.rows,
                    bytes: part.bytes,
                });
            } else if removable > 0 {
                actions.push(RetentionAction::DeleteBefore {
                    table: (*table).to_string(),
                    partition,
                    cutoff_ms,
                    rows_before_cutoff: removable,
                });
            }
        } else if week_end_ms <= cutoff_ms {
            actions.push(RetentionAction::DropPartition {
                table: (*table).to_string(),
                partition,
                rows: part.rows,
                bytes: part.bytes,
            });
        } else if monday * MS_PER_DAY <= cutoff_ms {
            let sql = format!(
                "SELECT count() FROM {table} WHERE {} AND day >= toDate('{partition}')",
                delete_condition(table, cutoff_ms, &held)
            );
            let rows_before_cutoff: u64 = sized(client.query(&sql), &sql)
                .fetch_one()
                .await
                .map_err(|e| StoreError::clickhouse(format!("counting rows in {table}"), e))?;
            if rows_before_cutoff > 0 {
                actions.push(RetentionAction::DeleteBefore {
                    table: (*table).to_string(),
                    partition,
                    cutoff_ms,
                    rows_before_cutoff,
                });
            }
        }
    }
    Ok(RetentionPlan {
        database: config.database.clone(),
        cutoff_ms,
        actions,
        held,
    })
}

/// Carry out `plan`; waits up to `mutation_timeout` per row deletion for it to finish.
pub async fn apply_retention(
    config: &ClickhouseConfig,
    plan: &RetentionPlan,
    mutation_timeout: Duration,
) -> Result<RetentionReport, StoreError> {
    let client = config.client();
    let mut report = RetentionReport {
        cutoff_ms: plan.cutoff_ms,
        applied: Vec::new(),
        partitions_dropped: 0,
        rows_removed: 0,
        bytes_dropped: 0,
    };
    // A row deletion's condition covers the whole table, so one per table does.
    let mut deleted_from: Vec<&str> = Vec::new();
    for action in &plan.actions {
        let table = checked_table(action.table())?;
        match action {
            RetentionAction::DropPartition {
                partition, bytes, ..
            } => {
                let monday = parse_partition(partition).ok_or_else(|| {
                    StoreError::Config(format!("invalid partition {partition:?}"))
                })?;
                let sql = format!(
                    "ALTER TABLE {table} DROP PARTITION '{}'",
                    format_date(monday)
                );
                client.query(&sql).execute().await.map_err(|e| {
                    StoreError::clickhouse(format!("dropping {table} partition {partition}"), e)
                })?;
                report.partitions_dropped += 1;
                report.bytes_dropped += bytes;
            }
            RetentionAction::DeleteBefore { .. } if deleted_from.contains(&table) => {}
            RetentionAction::DeleteBefore { cutoff_ms, .. } => {
                let sql = format!(
                    "ALTER TABLE {table} DELETE WHERE {}",
                    delete_condition(table, *cutoff_ms, &plan.held)
                );
                sized(client.query(&sql), &sql)
                    .execute()
                    .await
                    .map_err(|e| {
                        StoreError::clickhouse(format!("deleting old rows from {table}"), e)
                    })?;
                wait_for_mutations(config, table, mutation_timeout).await?;
                deleted_from.push(table);
            }
        }
        report.rows_removed += action.rows();
        report.applied.push(action.clone());
    }
    Ok(report)
}

/// `query` allowed to be as long as its `sql` (the held event ids make it long: ~35 bytes
/// each, and ClickHouse refuses queries over `max_query_size`, 256 KiB by default).
fn sized(query: clickhouse::query::Query, sql: &str) -> clickhouse::query::Query {
    query.with_setting("max_query_size", (sql.len() + 65_536).to_string())
}

/// Wait until `table` has no unfinished mutation.
async fn wait_for_mutations(
    config: &ClickhouseConfig,
    table: &str,
    timeout: Duration,
) -> Result<(), StoreError> {
    let client = config.client();
    let started = Instant::now();
    loop {
        let pending: u64 = client
            .query(
                "SELECT count() FROM system.mutations \
                 WHERE database = ? AND table = ? AND is_done = 0",
            )
            .bind(&config.database)
            .bind(table)
            .fetch_one()
            .await
            .map_err(|e| StoreError::clickhouse(format!("watching mutations of {table}"), e))?;
        if pending == 0 {
            return Ok(());
        }
        if started.elapsed() >= timeout {
            return Err(StoreError::clickhouse(
                format!("waiting for row deletion in {table}"),
                clickhouse::error::Error::Custom(format!(
                    "{pending} mutation(s) still running after {timeout:?}; \
                     they continue on the server, run retention again to check"
                )),
            ));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// Only our own table names go into SQL.
fn checked_table(name: &str) -> Result<&'static str, StoreError> {
    RETENTION_TABLES
        .iter()
        .copied()
        .find(|t| *t == name)
        .ok_or_else(|| StoreError::Config(format!("retention does not touch table {name:?}")))
}

/// The condition selecting the rows that go: before the cutoff and not held (`held`:
/// uppercase hex event ids, checked when the plan was made); all values formatted by us.
fn delete_condition(table: &str, cutoff_ms: i64, held: &BTreeSet<String>) -> String {
    if table == "subject_keys_daily" {
        let day = format_date(cutoff_ms.div_euclid(MS_PER_DAY));
        return format!("day < toDate('{day}')");
    }
    let ids: Vec<&str> = held
        .iter()
        .map(String::as_str)
        .filter(|id| id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()))
        .collect();
    if ids.is_empty() {
        format!("captured_at_ms < {cutoff_ms}")
    } else {
        format!(
            "captured_at_ms < {cutoff_ms} AND hex(event_id) NOT IN ('{}')",
            ids.join("','")
        )
    }
}

/// Parse `YYYY-MM-DD` (optionally single-quoted, as some releases show it) into days since
/// 1970-01-01; `None` unless it is a valid Monday.
fn parse_partition(text: &str) -> Option<i64> {
    let text = text.trim_matches('\'');
    let bytes = text.as_bytes();
    if bytes.len() != 10 || bytes[4] != b'-' || bytes[7] != b'-' {
        return None;
    }
    let num = |s: &str| -> Option<i64> {
        if s.bytes().all(|b| b.is_ascii_digit()) {
            s.parse().ok()
        } else {
            None
        }
    };
    let (y, m, d) = (num(&text[0..4])?, num(&text[5..7])?, num(&text[8..10])?);
    if !(1..=12).contains(&m) || d < 1 || d > days_in_month(y, m) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // 1970-01-01 was a Thursday: Monday is (days + 3) % 7 == 0.
    ((days + 3).rem_euclid(7) == 0).then_some(days)
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if (y % 4 == 0 && y % 100 != 0) || y % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Retention on one ClickHouse database, for `camtrail_storage::retention::apply`.
#[derive(Debug, Clone)]
pub struct ClickhouseRetention {
    /// The database.
    pub config: ClickhouseConfig,
    /// How long to wait for each row deletion (an asynchronous mutation) to finish.
    pub mutation_timeout: Duration,
}

impl camtrail_storage::RetentionPlan for RetentionPlan {
    fn parameters(&self) -> Map<String, Value> {
        let actions: Vec<Value> = self
            .actions
            .iter()
            .map(|action| {
                json!({
                    "table": action.table(),
                    "partition": action.partition(),
                    "rows": action.rows(),
                    "drop": matches!(action, RetentionAction::DropPartition { .. }),
                })
            })
            .collect();
        let mut fields = Map::new();
        fields.insert("database".into(), self.database.clone().into());
        fields.insert("actions".into(), Value::Array(actions));
        fields
    }

    fn rows(&self) -> u64 {
        self.actions.iter().map(RetentionAction::rows).sum()
    }
}

impl camtrail_storage::RetentionTarget for ClickhouseRetention {
    type Plan = RetentionPlan;
    type Report = RetentionReport;

    async fn plan(
        &self,
        cutoff_ms: i64,
        held: &BTreeSet<String>,
    ) -> Result<RetentionPlan, StorageError> {
        plan_retention(&self.config, cutoff_ms, held)
            .await
            .map_err(StorageError::from)
    }

    async fn apply(&self, plan: &RetentionPlan) -> Result<RetentionReport, StorageError> {
        apply_retention(&self.config, plan, self.mutation_timeout)
            .await
            .map_err(StorageError::from)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` of days since 1970-01-01 (the text of a ClickHouse `Date`).
pub fn format_date(days: i64) -> String {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip_and_mondays_are_recognised() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(parse_partition("2025-11-24"), Some(20_416));
        assert_eq!(format_date(20_416), "2025-11-24");
        assert_eq!(parse_partition("'2025-11-24'"), Some(20_416));
        assert_eq!(parse_partition("2025-11-25"), None, "a Tuesday");
        assert_eq!(parse_partition("2025-02-30"), None);
        assert_eq!(parse_partition("20251124"), None);
        assert_eq!(parse_partition("2025-11-2x"), None);
        for days in [-1000, 0, 59, 11_016, 20_416, 30_000] {
            let text = format_date(days);
            let (y, m, d) = (
                text[0..4].parse().expect("y"),
                text[5..7].parse().expect("m"),
                text[8..10].parse().expect("d"),
            );
            assert_eq!(days_from_civil(y, m, d), days, "{text}");
        }
    }

    #[test]
    fn delete_condition_formats_only_numbers_and_dates() {
        let none = BTreeSet::new();
        assert_eq!(
            delete_condition("detections", 1_764_158_400_000, &none),
            "captured_at_ms < 1764158400000"
        );
        let held: BTreeSet<String> = [
            "0102030405060708090A0B0C0D0E0F10".to_string(),
            "X'); DROP TABLE detections; --".to_string(),
        ]
        .into();
        assert_eq!(
            delete_condition("snapshots", 1_764_158_400_000, &held),
            "captured_at_ms < 1764158400000 AND hex(event_id) NOT IN \
             ('0102030405060708090A0B0C0D0E0F10')",
            "only 32 hex digits reach the SQL"
        );
        assert_eq!(
            delete_condition("subject_keys_daily", 1_764_158_400_000, &held),
            "day < toDate('2025-11-26')"
        );
        assert!(checked_table("audit_log").is_err());
    }
}
