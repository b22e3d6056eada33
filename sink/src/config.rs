//! Configuration of a sink (`[sink]` section).

use std::net::SocketAddr;
use std::time::Duration;

use camtrail_common::{Backoff, ConfigError};
use serde::{Deserialize, Serialize};

/// Sink settings. Kafka and ClickHouse connection settings are in the shared `[kafka]` and
/// `[clickhouse]` sections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SinkConfig {
    /// Kafka consumer group; every sink of one deployment shares it (and the partitions).
    pub group_id: String,
    /// Static group membership (`group.instance.id`): a name unique to this sink within the
    /// group (e.g. `sink-1`), kept across restarts. A sink restarted under its name gets its
    /// partitions back at once instead of after `session_timeout_ms` and a rebalance. The
    /// price: a static member that stops (even cleanly) keeps its partitions, unconsumed,
    /// until `session_timeout_ms` passes. Unset: dynamic membership.
    pub instance_id: Option<String>,
    /// How long the group waits for a member that stopped answering (crashed, or a static
    /// member that stopped) before its partitions move to the others, ms (6000–1800000, the
    /// broker's default bounds).
    pub session_timeout_ms: u64,
    /// A batch is inserted once it holds this many detections.
    pub max_batch_rows: usize,
    /// ... or this many bytes of row data (thumbnails make rows large); bounds memory.
    pub max_batch_bytes: usize,
    /// ... or once its first record is this old, ms.
    pub max_batch_age_ms: u64,
    /// HTTP listen address for `/metrics` and `/healthz`.
    pub http_addr: SocketAddr,
    /// First pause after a failed insert or dead-letter produce, ms (doubles each time).
    pub retry_initial_backoff_ms: u64,
    /// Longest pause between retries, ms.
    pub retry_max_backoff_ms: u64,
    /// Limit of one ClickHouse insert (send + server processing), ms; a hung insert is
    /// abandoned and retried.
    pub insert_timeout_ms: u64,
    /// Send `insert_deduplication_token` (the batch's topic/partition/offset range) with each
    /// insert: `true` always, `false` never, unset (the default) when the server supports it
    /// (ClickHouse 22.2 and later; 18.16 rejects the setting). It deduplicates retries only on
    /// Replicated tables or with `non_replicated_deduplication_window`; correctness never
    /// depends on it (ReplacingMergeTree + dedup on read).
    pub insert_deduplication_token: Option<bool>,
    /// Compress insert bodies with LZ4 (the default). Compressing is a tenth of the sink's
    /// CPU, but with sink and server on one 2-core machine turning it off measured no
    /// faster (benches/sink.sh, issue 14): the server's work per row is the same, and
    /// across a network the bytes saved count.
    pub compress_inserts: bool,
}

impl Default for SinkConfig {
    fn default() -> Self {
        Self {
            group_id: "camtrail-sink".into(),
            instance_id: None,
            session_timeout_ms: 45_000,
            max_batch_rows: 100_000,
            max_batch_bytes: 64 * 1024 * 1024,
            max_batch_age_ms: 1_000,
            http_addr: SocketAddr::from(([0, 0, 0, 0], 8082)),
            retry_initial_backoff_ms: 100,
            retry_max_backoff_ms: 10_000,
            insert_timeout_ms: 120_000,
            insert_deduplication_token: None,
            compress_inserts: true,
        }
    }
}

impl SinkConfig {
    /// Check the values; returns the config unchanged when usable.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.group_id.trim().is_empty() {
            return Err(ConfigError::new("sink.group_id must not be empty"));
        }
        if let Some(id) = &self.instance_id
            && (id.trim().is_empty() || id.len() > 249)
        {
            return Err(ConfigError::new(
                "sink.instance_id must be 1–249 characters when set",
            ));
        }
        if !(6_000..=1_800_000).contains(&self.session_timeout_ms) {
            return Err(ConfigError(format!(
                "sink.session_timeout_ms must be 6000–1800000, got {}",
                self.session_timeout_ms
            )));
        }
        if !(1..=10_000_000).contains(&self.max_batch_rows) {
            return Err(ConfigError(format!(
                "sink.max_batch_rows must be 1–10000000, got {}",
                self.max_batch_rows
            )));
        }
        if self.max_batch_bytes < 1024 {
            return Err(ConfigError(format!(
                "sink.max_batch_bytes must be at least 1024, got {}",
                self.max_batch_bytes
            )));
        }
        if !(1..=600_000).contains(&self.max_batch_age_ms) {
            return Err(ConfigError(format!(
                "sink.max_batch_age_ms must be 1–600000, got {}",
                self.max_batch_age_ms
            )));
        }
        if self.retry_initial_backoff_ms == 0
            || self.retry_initial_backoff_ms > self.retry_max_backoff_ms
        {
            return Err(ConfigError(format!(
                "sink.retry_initial_backoff_ms must be 1–retry_max_backoff_ms ({}), got {}",
                self.retry_max_backoff_ms, self.retry_initial_backoff_ms
            )));
        }
        if self.insert_timeout_ms < 1_000 {
            return Err(ConfigError(format!(
                "sink.insert_timeout_ms must be at least 1000, got {}",
                self.insert_timeout_ms
            )));
        }
        Ok(self)
    }

    /// The retry schedule of inserts and dead-letter produces.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(
            Duration::from_millis(self.retry_initial_backoff_ms),
            Duration::from_millis(self.retry_max_backoff_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_named() {
        assert!(SinkConfig::default().validate().is_ok());
        let zero = SinkConfig {
            max_batch_rows: 0,
            ..SinkConfig::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("max_batch_rows")
        );
        for bad in [
            SinkConfig {
                instance_id: Some(" ".into()),
                ..SinkConfig::default()
            },
            SinkConfig {
                session_timeout_ms: 1_000,
                ..SinkConfig::default()
            },
        ] {
            let error = bad.validate().unwrap_err().to_string();
            assert!(error.contains("instance_id") || error.contains("session_timeout_ms"));
        }
        let inverted = SinkConfig {
            retry_initial_backoff_ms: 20_000,
            ..SinkConfig::default()
        };
        assert!(
            inverted
                .validate()
                .unwrap_err()
                .to_string()
                .contains("backoff")
        );
    }
}
