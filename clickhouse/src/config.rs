//! ClickHouse connection settings.

use camtrail_common::ConfigError;
use serde::{Deserialize, Serialize};

/// How to reach ClickHouse. Defaults match `deploy/local/services.sh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClickhouseConfig {
    /// HTTP interface, e.g. `http://127.0.0.1:8123`.
    pub url: String,
    /// Database holding camtrail's tables; created by `camtrail migrate`.
    pub database: String,
    /// User name.
    pub user: String,
    /// Password (empty for none). Prefer the `CAMTRAIL_CLICKHOUSE__PASSWORD` variable.
    pub password: String,
    /// Other servers holding the same tables (replicas), tried in order when `url` refuses
    /// a connection: a query node keeps answering while its server is down.
    pub failover_urls: Vec<String>,
    /// Cluster mode: the `remote_servers` cluster the tables were created on
    /// (`camtrail migrate --cluster NAME`); empty for one server. Readers read the
    /// `Distributed` tables under the usual names either way.
    pub cluster: String,
    /// Cluster mode, for the sink: each shard's replicas (HTTP URLs, preferred first), in
    /// the cluster's shard order. The sink writes a detection to the `_local` table of its
    /// shard ([`crate::cluster::shard_of`]), failing over to the shard's next replica.
    pub shards: Vec<Vec<String>>,
}

impl Default for ClickhouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "camtrail".into(),
            user: "default".into(),
            password: String::new(),
            failover_urls: Vec::new(),
            cluster: String::new(),
            shards: Vec::new(),
        }
    }
}

impl ClickhouseConfig {
    /// Check the values; returns the config unchanged when usable.
    pub fn validate(self) -> Result<Self, ConfigError> {
        check_url("clickhouse.url", &self.url)?;
        for url in &self.failover_urls {
            check_url("clickhouse.failover_urls", url)?;
        }
        for (n, replicas) in self.shards.iter().enumerate() {
            if replicas.is_empty() {
                return Err(ConfigError(format!(
                    "clickhouse.shards[{n}] lists no replica"
                )));
            }
            for url in replicas {
                check_url(&format!("clickhouse.shards[{n}]"), url)?;
            }
        }
        if !self.cluster.is_empty() && !is_identifier(&self.cluster) {
            return Err(ConfigError(format!(
                "clickhouse.cluster must match [A-Za-z_][A-Za-z0-9_]*, got {:?}",
                self.cluster
            )));
        }
        if !self.shards.is_empty() && self.cluster.is_empty() {
            return Err(ConfigError(
                "clickhouse.shards is for a cluster: set clickhouse.cluster too".into(),
            ));
        }
        if !is_identifier(&self.database) {
            return Err(ConfigError(format!(
                "clickhouse.database must match [A-Za-z_][A-Za-z0-9_]*, got {:?}",
                self.database
            )));
        }
        Ok(self)
    }

    /// A client bound to the camtrail database.
    ///
    /// Type validation is off: it needs `RowBinaryWithNamesAndTypes`, which ClickHouse
    /// 18.16 does not have, so rows are sent as plain RowBinary and our DDL is the schema.
    pub fn client(&self) -> clickhouse::Client {
        self.server_client().with_database(&self.database)
    }

    /// A client not bound to a database (to create it); with `failover_urls`, it connects
    /// to the first of `url` and those that accepts.
    pub fn server_client(&self) -> clickhouse::Client {
        self.client_over(&self.url, &self.failover_urls)
    }

    /// One client per shard of `shards` (bound to the camtrail database), each connecting
    /// to the first of the shard's replicas that accepts.
    pub fn shard_clients(&self) -> Vec<clickhouse::Client> {
        self.shards
            .iter()
            .filter_map(|replicas| replicas.split_first())
            .map(|(first, rest)| self.client_over(first, rest).with_database(&self.database))
            .collect()
    }

    fn client_over(&self, url: &str, failover: &[String]) -> clickhouse::Client {
        let client = if failover.is_empty() {
            clickhouse::Client::default()
        } else {
            let connector = crate::failover::FailoverConnector::new(failover);
            clickhouse::Client::with_http_client(
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_idle_timeout(crate::failover::POOL_IDLE_TIMEOUT)
                    .build(connector),
            )
        };
        client
            .with_url(url)
            .with_user(&self.user)
            .with_password(&self.password)
            .with_validation(false)
    }
}

fn check_url(key: &str, url: &str) -> Result<(), ConfigError> {
    let parsed = url::Url::parse(url).map_err(|e| ConfigError(format!("{key} {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(ConfigError(format!("{key} must be http(s), got {url:?}")));
    }
    Ok(())
}

/// Whether `name` is a plain SQL identifier (safe to put in DDL without quoting).
pub(crate) fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= 64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_url_and_database() {
        assert!(ClickhouseConfig::default().validate().is_ok());
        let bad_db = ClickhouseConfig {
            database: "x; DROP TABLE y".into(),
            ..ClickhouseConfig::default()
        };
        assert!(bad_db.validate().is_err());
        let bad_url = ClickhouseConfig {
            url: "tcp://127.0.0.1:9000".into(),
            ..ClickhouseConfig::default()
        };
        assert!(bad_url.validate().is_err());
        let shards_without_cluster = ClickhouseConfig {
            shards: vec![vec!["http://127.0.0.1:18123".into()]],
            ..ClickhouseConfig::default()
        };
        assert!(shards_without_cluster.validate().is_err());
        let empty_shard = ClickhouseConfig {
            cluster: "camtrail".into(),
            shards: vec![Vec::new()],
            ..ClickhouseConfig::default()
        };
        assert!(empty_shard.validate().is_err());
        let cluster = ClickhouseConfig {
            cluster: "camtrail".into(),
            failover_urls: vec!["http://127.0.0.1:18124".into()],
            shards: vec![
                vec![
                    "http://127.0.0.1:18123".into(),
                    "http://127.0.0.1:18124".into(),
                ],
                vec!["http://127.0.0.1:18125".into()],
            ],
            ..ClickhouseConfig::default()
        };
        assert!(cluster.validate().is_ok());
        let bad_failover = ClickhouseConfig {
            failover_urls: vec!["ftp://x".into()],
            ..ClickhouseConfig::default()
        };
        assert!(bad_failover.validate().is_err());
    }

    #[test]
    fn identifiers() {
        assert!(is_identifier("camtrail"));
        assert!(is_identifier("t_01"));
        assert!(!is_identifier("1abc"));
        assert!(!is_identifier("a-b"));
        assert!(!is_identifier(""));
    }
}
