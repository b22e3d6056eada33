//! Inserting rows: one RowBinary `INSERT` per table per call, with a timeout and, where the
//! server knows it, `insert_deduplication_token`. The caller keeps the rows, so a failed
//! insert can be repeated with exactly the same rows (the `clickhouse` crate's `Insert`
//! drops its buffer when it fails). Retrying, and what to do meanwhile, is the caller's
//! business (the sink retries forever; never skipping rows).

use std::time::Duration;

use clickhouse::error::Error as ClickhouseError;
use clickhouse::{Client, RowOwned, RowWrite};

/// Inserts rows into the tables of one database.
#[derive(Clone)]
pub struct TableWriter {
    client: Client,
    timeout: Duration,
}

impl TableWriter {
    /// A writer using `client` (bound to the camtrail database, validation off); each
    /// insert (send + server processing) must finish within `timeout`.
    pub fn new(client: Client, timeout: Duration) -> Self {
        Self { client, timeout }
    }

    /// One RowBinary insert of `rows` into `table`, with `insert_deduplication_token` when
    /// `token` is given (only for servers that know it: [`supports_deduplication_token`]).
    pub async fn insert_rows<'r, T: RowOwned + RowWrite + 'r>(
        &self,
        table: &str,
        rows: impl IntoIterator<Item = &'r T>,
        token: Option<String>,
    ) -> Result<(), ClickhouseError> {
        let mut insert = self
            .client
            .insert::<T>(table)
            .await?
            .with_timeouts(Some(self.timeout), Some(self.timeout));
        if let Some(token) = token {
            insert = insert.with_setting("insert_deduplication_token", token);
        }
        for row in rows {
            insert.write(row).await?;
        }
        insert.end().await
    }

    /// Whether the server takes `insert_deduplication_token` (ClickHouse 22.2+); `None` when
    /// it cannot be asked now.
    pub async fn server_supports_deduplication_token(&self) -> Option<bool> {
        let version: String = self
            .client
            .query("SELECT version()")
            .fetch_one()
            .await
            .ok()?;
        let supported = supports_deduplication_token(&version);
        tracing::info!(%version, supported, "ClickHouse insert_deduplication_token support");
        Some(supported)
    }
}

/// Whether a server of `version` (e.g. `18.16.1`, `24.8.4.13`) knows the setting
/// `insert_deduplication_token` (added in 22.2).
pub fn supports_deduplication_token(version: &str) -> bool {
    let mut parts = version.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (22, 2)
}

/// `transient` for failures that go away by themselves (network, timeouts, server errors
/// such as too many parts or memory limits), `permanent` for requests the server will keep
/// rejecting until someone changes the schema or the code. Both are retried by the sink:
/// skipping would lose data; the class tells the operator whether to wait or to act.
pub fn classify(error: &ClickhouseError) -> &'static str {
    match error {
        ClickhouseError::Network(_) | ClickhouseError::TimedOut => "transient",
        ClickhouseError::BadResponse(message) if is_transient_server_error(message) => "transient",
        _ => "permanent",
    }
}

/// Server error codes that clear up on their own: TOO_MANY_PARTS (252), MEMORY_LIMIT_EXCEEDED
/// (241), TOO_MANY_SIMULTANEOUS_QUERIES (202), TIMEOUT_EXCEEDED (159), the HTTP 5xx
/// "Code: 210" network errors between servers, and on a cluster TABLE_IS_READ_ONLY (242:
/// a replica without its ZooKeeper session), NO_ZOOKEEPER (225), KEEPER_EXCEPTION (999),
/// ALL_CONNECTION_TRIES_FAILED (279), SOCKET_TIMEOUT (209), UNKNOWN_STATUS_OF_INSERT (319)
/// and ALL_REPLICAS_ARE_STALE (369).
fn is_transient_server_error(message: &str) -> bool {
    [
        "Code: 252",
        "Code: 241",
        "Code: 202",
        "Code: 159",
        "Code: 210",
        "Code: 242",
        "Code: 225",
        "Code: 999",
        "Code: 279",
        "Code: 209",
        "Code: 319",
        "Code: 369",
    ]
    .iter()
    .any(|code| message.contains(code))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deduplication_tokens_are_sent_only_to_servers_that_know_them() {
        assert!(!supports_deduplication_token("18.16.1"));
        assert!(!supports_deduplication_token("22.1.3.7"));
        assert!(supports_deduplication_token("22.2.2.1"));
        assert!(supports_deduplication_token("26.9.2.1"));
        assert!(!supports_deduplication_token("garbage"));
    }

    #[test]
    fn network_and_overload_errors_are_transient() {
        assert_eq!(classify(&ClickhouseError::TimedOut), "transient");
        assert_eq!(
            classify(&ClickhouseError::BadResponse(
                "Code: 252, e.displayText() = DB::Exception: Too many parts".into()
            )),
            "transient"
        );
        assert_eq!(
            classify(&ClickhouseError::BadResponse(
                "Code: 242, e.displayText() = DB::Exception: Table is in readonly mode".into()
            )),
            "transient"
        );
        assert_eq!(
            classify(&ClickhouseError::BadResponse(
                "Code: 16, e.displayText() = DB::Exception: No such column".into()
            )),
            "permanent"
        );
    }
}
