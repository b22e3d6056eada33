//! Cluster mode: the same migrations applied `ON CLUSTER` to a cluster of shards ×
//! replicas (ClickHouse `remote_servers`, coordinated by ZooKeeper), and the shard of a
//! subject key.
//!
//! Each statement of a migration is rewritten ([`rewrite`]):
//!
//! - a table that holds detections ([`SHARDED`]) becomes `<name>_local`, a
//!   `Replicated…MergeTree` on every server (ZooKeeper path per `{shard}` macro), plus
//!   `<name>`, a `Distributed` table over the shards, sharded by `sipHash64(subject_key)`
//!   so one plate's track stays on one shard. Readers keep reading `<name>`; the sink
//!   writes `<name>_local` on a replica of the row's shard ([`shard_of`]);
//! - every other table (audit log, cases, watchlists, cameras, migrations: small) is one
//!   `Replicated…MergeTree` with a replica on every server, read and written locally;
//! - a materialized view is created on every server, from and to the `_local` tables (it
//!   fires on the replica that takes the insert; its target replicates its output);
//! - an added column is added to the `_local` table, and the `Distributed` table (no rows
//!   of its own) is made again over it;
//! - a backfill (`INSERT INTO t SELECT …`) goes through the `Distributed` tables
//!   (`insert_distributed_sync`), so copied rows land on their subject's shard.
//!
//! Anything else is refused rather than guessed at. The single-server DDL is unchanged.

use std::hash::Hasher;

/// Tables sharded by subject key: `detections` and the tables fed from it.
pub const SHARDED: &[&str] = &[
    "detections",
    "detections_by_camera",
    "detections_by_hour",
    "subject_keys_daily",
    "snapshots",
];

/// The replicated table behind a sharded table's `Distributed` one.
pub fn local_table(table: &str) -> String {
    format!("{table}_local")
}

/// Whether `table` is sharded in cluster mode.
pub fn is_sharded(table: &str) -> bool {
    SHARDED.contains(&table)
}

/// The shard (0-based, in the cluster's order) holding `subject_key`'s rows among
/// `shards` equally weighted shards: what the `Distributed` tables compute,
/// `sipHash64(subject_key) % shards` (SipHash-2-4 with zero keys).
pub fn shard_of(subject_key: &str, shards: usize) -> usize {
    let mut hasher = siphasher::sip::SipHasher24::new_with_keys(0, 0);
    hasher.write(subject_key.as_bytes());
    (hasher.finish() % shards.max(1) as u64) as usize
}

/// The sharding expression of a `Distributed` table; `None` for `snapshots` (no subject
/// key: the sink writes each thumbnail beside its detection, never through the
/// `Distributed` table, which then refuses inserts rather than misplace them).
fn sharding_key(table: &str) -> Option<&'static str> {
    (table != "snapshots").then_some("sipHash64(subject_key)")
}

/// One statement to run on the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatement {
    /// The SQL, with `ON CLUSTER` and qualified table names.
    pub sql: String,
    /// `(table, column)` when it adds one column (skipped when the column exists).
    pub adds_column: Option<(String, String)>,
}

impl ClusterStatement {
    fn plain(sql: String) -> Self {
        Self {
            sql,
            adds_column: None,
        }
    }
}

/// The statement creating the database on every server.
pub fn create_database(database: &str, cluster: &str) -> String {
    format!("CREATE DATABASE IF NOT EXISTS {database} ON CLUSTER {cluster}")
}

/// `statement` (one of a migration's, single-server form) as statements for `cluster`,
/// in order; an error for a form this module does not know how to distribute.
pub fn rewrite(
    statement: &str,
    cluster: &str,
    database: &str,
) -> Result<Vec<ClusterStatement>, String> {
    let words: Vec<String> = statement
        .split_whitespace()
        .take(9)
        .map(str::to_ascii_uppercase)
        .collect();
    let starts = |prefix: &[&str]| {
        words.len() > prefix.len() && prefix.iter().zip(&words).all(|(p, w)| p == w)
    };
    let on = format!("ON CLUSTER {cluster}");
    if starts(&["CREATE", "TABLE", "IF", "NOT", "EXISTS"]) {
        let (head, rest) = split_words(statement, 6);
        return create_table(&head[5], rest, cluster, database);
    }
    if starts(&["CREATE", "MATERIALIZED", "VIEW", "IF", "NOT", "EXISTS"]) {
        let (head, rest) = split_words(statement, 9);
        if head.len() < 9 || !head[7].eq_ignore_ascii_case("TO") {
            return Err(format!("a materialized view without TO: {statement}"));
        }
        let (view, target) = (&head[6], &head[8]);
        if !is_sharded(target) {
            return Err(format!(
                "a materialized view into an unsharded table: {statement}"
            ));
        }
        let body = qualify_sources(rest, database, true);
        return Ok(vec![ClusterStatement::plain(format!(
            "CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{view} {on} TO {database}.{} {body}",
            local_table(target)
        ))]);
    }
    if let Some((table, column)) = crate::migrate::added_column(statement) {
        if !is_sharded(table) {
            return Err(format!(
                "a column added to a table replicated on every server: {statement}"
            ));
        }
        let (_, definition) = split_words(statement, 5);
        let local = local_table(table);
        // 18.16 refuses `ALTER … ON CLUSTER` of a Distributed table when shards replicate
        // internally; it holds no rows, so it is made again over the altered local table
        // (a replicated ALTER returns once every replica has it).
        return Ok(vec![
            ClusterStatement {
                sql: format!("ALTER TABLE {database}.{local} {on} ADD COLUMN {definition}"),
                adds_column: Some((local, column.to_string())),
            },
            ClusterStatement::plain(format!("DROP TABLE IF EXISTS {database}.{table} {on}")),
            distributed(table, cluster, database),
        ]);
    }
    if starts(&["DROP", "TABLE", "IF", "EXISTS"]) && words.len() == 5 {
        let (head, _) = split_words(statement, 5);
        let table = &head[4];
        let drop = |name: &str| {
            ClusterStatement::plain(format!("DROP TABLE IF EXISTS {database}.{name} {on}"))
        };
        let mut statements = vec![drop(table)];
        if is_sharded(table) {
            statements.push(drop(&local_table(table)));
        }
        return Ok(statements);
    }
    if let Some(table) = crate::migrate::backfill_target(statement) {
        let (_, select) = split_words(statement, 3);
        return Ok(vec![ClusterStatement::plain(format!(
            "INSERT INTO {database}.{table} {}",
            qualify_sources(select, database, false)
        ))]);
    }
    Err(format!("no cluster form for: {statement}"))
}

fn create_table(
    table: &str,
    rest: &str,
    cluster: &str,
    database: &str,
) -> Result<Vec<ClusterStatement>, String> {
    let engine_at = rest
        .find("ENGINE")
        .ok_or_else(|| format!("CREATE TABLE {table} without ENGINE"))?;
    let (columns, engine) = rest.split_at(engine_at);
    let engine = engine["ENGINE".len()..].trim_start();
    let engine = engine
        .strip_prefix('=')
        .ok_or_else(|| format!("CREATE TABLE {table}: ENGINE without ="))?
        .trim_start();
    let open = engine
        .find('(')
        .ok_or_else(|| format!("CREATE TABLE {table}: engine without arguments"))?;
    let name = engine[..open].trim();
    let close = engine
        .find(')')
        .ok_or_else(|| format!("CREATE TABLE {table}: unclosed engine arguments"))?;
    let arguments = engine[open + 1..close].trim();
    let tail = &engine[close + 1..];
    if !name.ends_with("MergeTree") || name.starts_with("Replicated") || tail.contains("SETTINGS") {
        return Err(format!(
            "CREATE TABLE {table}: engine {name} has no cluster form"
        ));
    }
    let on = format!("ON CLUSTER {cluster}");
    let (stored, path) = if is_sharded(table) {
        let local = local_table(table);
        let path = format!("/clickhouse/tables/{{shard}}/{database}/{local}");
        (local, path)
    } else {
        (
            table.to_string(),
            format!("/clickhouse/tables/global/{database}/{table}"),
        )
    };
    let arguments = if arguments.is_empty() {
        String::new()
    } else {
        format!(", {arguments}")
    };
    // Replicated tables drop an insert whose block equals one of the last 100 (a retried
    // insert). A summing table's rows come from a view, and two different inserts can make
    // the same block there (one sighting of a key on a day): keep every one.
    let settings = if name == "SummingMergeTree" {
        " SETTINGS replicated_deduplication_window = 0"
    } else {
        ""
    };
    let mut statements = vec![ClusterStatement::plain(format!(
        "CREATE TABLE IF NOT EXISTS {database}.{stored} {on} {}\
         ENGINE = Replicated{name}('{path}', '{{replica}}'{arguments}){}{settings}",
        columns.trim_start(),
        tail.trim_end()
    ))];
    if is_sharded(table) {
        statements.push(distributed(table, cluster, database));
    }
    Ok(statements)
}

/// The `Distributed` table `table` over its `_local` tables.
fn distributed(table: &str, cluster: &str, database: &str) -> ClusterStatement {
    let local = local_table(table);
    let key = sharding_key(table)
        .map(|key| format!(", {key}"))
        .unwrap_or_default();
    ClusterStatement::plain(format!(
        "CREATE TABLE IF NOT EXISTS {database}.{table} ON CLUSTER {cluster} AS \
         {database}.{local} ENGINE = Distributed({cluster}, {database}, {local}{key})"
    ))
}

/// The first `n` whitespace-separated words of `text`, and the text after them (with its
/// original layout, leading whitespace trimmed).
fn split_words(text: &str, n: usize) -> (Vec<String>, &str) {
    let mut words = Vec::with_capacity(n);
    let mut rest = text.trim_start();
    while words.len() < n && !rest.is_empty() {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        words.push(rest[..end].to_string());
        rest = rest[end..].trim_start();
    }
    (words, rest)
}

/// `sql` with each table after a `FROM` qualified with `database`: a sharded table as its
/// `_local` table when `local` (a view reads what its server stores), else by its name.
fn qualify_sources(sql: &str, database: &str, local: bool) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    while let Some(at) = find_keyword(rest, "FROM") {
        let after = &rest[at + 4..];
        let start = after.len() - after.trim_start().len();
        let name_len = after[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len() - start);
        let name = &after[start..start + name_len];
        out.push_str(&rest[..at + 4]);
        out.push_str(&after[..start]);
        if name.is_empty() {
            rest = &after[start..];
            continue;
        }
        let name = if local && is_sharded(name) {
            local_table(name)
        } else {
            name.to_string()
        };
        out.push_str(&format!("{database}.{name}"));
        rest = &after[start + name_len..];
    }
    out.push_str(rest);
    out
}

/// The byte offset of `keyword` as a whole word in `sql`.
fn find_keyword(sql: &str, keyword: &str) -> Option<usize> {
    let bytes = sql.as_bytes();
    let mut from = 0;
    while let Some(found) = sql[from..].find(keyword) {
        let at = from + found;
        let before = at == 0 || bytes[at - 1].is_ascii_whitespace();
        let after = bytes
            .get(at + keyword.len())
            .is_none_or(|b| b.is_ascii_whitespace());
        if before && after {
            return Some(at);
        }
        from = at + keyword.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MIGRATIONS;

    fn one(statement: &str) -> Vec<String> {
        rewrite(statement, "camtrail", "ct")
            .expect("rewritten")
            .into_iter()
            .map(|s| s.sql.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }

    #[test]
    fn sharded_tables_become_replicated_local_tables_behind_distributed_ones() {
        assert_eq!(
            one(
                "CREATE TABLE IF NOT EXISTS detections\n(\n    subject_key String,\n    \
                 captured_at_ms Int64\n)\nENGINE = ReplacingMergeTree()\nPARTITION BY \
                 toMonday(day)\nORDER BY (subject_key, captured_at_ms)"
            ),
            [
                "CREATE TABLE IF NOT EXISTS ct.detections_local ON CLUSTER camtrail ( \
                 subject_key String, captured_at_ms Int64 ) ENGINE = \
                 ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/ct/detections_local', \
                 '{replica}') PARTITION BY toMonday(day) ORDER BY (subject_key, captured_at_ms)",
                "CREATE TABLE IF NOT EXISTS ct.detections ON CLUSTER camtrail AS \
                 ct.detections_local ENGINE = Distributed(camtrail, ct, detections_local, \
                 sipHash64(subject_key))",
            ]
        );
    }

    #[test]
    fn small_tables_are_replicated_on_every_server_and_keep_engine_arguments() {
        assert_eq!(
            one(
                "CREATE TABLE IF NOT EXISTS cases (case_id String, version UInt64) \
                 ENGINE = ReplacingMergeTree(version) ORDER BY case_id"
            ),
            [
                "CREATE TABLE IF NOT EXISTS ct.cases ON CLUSTER camtrail (case_id String, \
              version UInt64) ENGINE = \
              ReplicatedReplacingMergeTree('/clickhouse/tables/global/ct/cases', '{replica}', \
              version) ORDER BY case_id"
            ]
        );
    }

    #[test]
    fn views_read_and_write_local_tables_and_backfills_go_through_distributed_ones() {
        assert_eq!(
            one(
                "CREATE MATERIALIZED VIEW IF NOT EXISTS v_mv TO detections_by_hour\nAS \
                 SELECT\n    intDiv(captured_at_ms, 3600000) AS hour,\n    camera_id\nFROM \
                 detections"
            ),
            [
                "CREATE MATERIALIZED VIEW IF NOT EXISTS ct.v_mv ON CLUSTER camtrail TO \
              ct.detections_by_hour_local AS SELECT intDiv(captured_at_ms, 3600000) AS hour, \
              camera_id FROM ct.detections_local"
            ]
        );
        assert_eq!(
            one("INSERT INTO detections_by_hour\nSELECT camera_id FROM detections"),
            ["INSERT INTO ct.detections_by_hour SELECT camera_id FROM ct.detections"]
        );
        assert_eq!(
            one("DROP TABLE IF EXISTS detections_by_camera"),
            [
                "DROP TABLE IF EXISTS ct.detections_by_camera ON CLUSTER camtrail",
                "DROP TABLE IF EXISTS ct.detections_by_camera_local ON CLUSTER camtrail",
            ]
        );
        let added = rewrite(
            "ALTER TABLE detections ADD COLUMN speed_kmh Float32",
            "camtrail",
            "ct",
        )
        .expect("alter");
        assert_eq!(
            added[0].sql,
            "ALTER TABLE ct.detections_local ON CLUSTER camtrail ADD COLUMN speed_kmh Float32"
        );
        assert_eq!(
            added[0].adds_column,
            Some(("detections_local".to_string(), "speed_kmh".to_string()))
        );
        assert_eq!(
            added[1].sql,
            "DROP TABLE IF EXISTS ct.detections ON CLUSTER camtrail"
        );
        assert!(
            added[2]
                .sql
                .contains("AS ct.detections_local ENGINE = Distributed")
        );
    }

    #[test]
    fn unknown_forms_are_refused() {
        for statement in [
            "ALTER TABLE cases ADD COLUMN x UInt8",
            "CREATE TABLE IF NOT EXISTS t (a UInt8) ENGINE = Log",
            "CREATE MATERIALIZED VIEW IF NOT EXISTS v TO cases AS SELECT 1 FROM detections",
            "OPTIMIZE TABLE detections FINAL",
        ] {
            assert!(rewrite(statement, "c", "d").is_err(), "{statement}");
        }
    }

    #[test]
    fn every_migration_has_a_cluster_form() {
        for migration in MIGRATIONS {
            for statement in migration.statements() {
                let rewritten = rewrite(&statement, "camtrail", "ct")
                    .unwrap_or_else(|e| panic!("{}: {e}", migration.name));
                for out in rewritten {
                    assert!(out.sql.contains("ON CLUSTER") || out.sql.starts_with("INSERT"));
                    // Every table reference is qualified (ON CLUSTER runs elsewhere).
                    assert!(!out.sql.contains("FROM detections"), "{}", out.sql);
                }
            }
        }
    }

    #[test]
    fn shards_are_what_clickhouse_computes() {
        // `SELECT sipHash64('粤B12345'), sipHash64(''), sipHash64('abc')` on ClickHouse 18.16.
        for (key, hash) in [
            ("粤B12345", 18_233_465_532_050_825_542_u64),
            ("", 2_202_906_307_356_721_367),
            ("abc", 4_596_069_200_710_135_518),
        ] {
            for shards in 1..=5 {
                assert_eq!(shard_of(key, shards) as u64, hash % shards as u64, "{key}");
            }
        }
        let keys: Vec<String> = (0..1000).map(|n| format!("粤B{n:05}")).collect();
        let on_first = keys.iter().filter(|k| shard_of(k, 2) == 0).count();
        assert!((400..600).contains(&on_first), "{on_first}");
    }
}
