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
}

impl Default for ClickhouseConfig {
    fn default() -> Self {
        Self {
            url: "http://127.0.0.1:8123".into(),
            database: "camtrail".into(),
            user: "default".into(),
            password: String::new(),
        }
    }
}

impl ClickhouseConfig {
    /// Check the values; returns the config unchanged when usable.
    pub fn validate(self) -> Result<Self, ConfigError> {
        let parsed = url::Url::parse(&self.url)
            .map_err(|e| ConfigError(format!("clickhouse.url {:?}: {e}", self.url)))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(ConfigError(format!(
                "clickhouse.url must be http(s), got {:?}",
                self.url
            )));
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

    /// A client not bound to a database (to create it).
    pub fn server_client(&self) -> clickhouse::Client {
        clickhouse::Client::default()
            .with_url(&self.url)
            .with_user(&self.user)
            .with_password(&self.password)
            .with_validation(false)
    }
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
