//! Configuration: defaults, then a TOML file, then `CAMTRAIL_<SECTION>__<KEY>` variables.

use std::path::Path;

use anyhow::Context;
use camtrail_ingest::config::IngestConfig;
use camtrail_ingest::kafka::KafkaConfig;
use camtrail_ingest::sink::SinkConfig;
use camtrail_query::embedded::ServeConfig;
use camtrail_query::node::QueryConfig;
use camtrail_store::clickhouse::ClickhouseConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

/// Everything configurable, one section per component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// ClickHouse (distributed mode storage).
    pub clickhouse: ClickhouseConfig,
    /// Kafka (distributed mode transport).
    pub kafka: KafkaConfig,
    /// Ingest node (`camtrail ingest`).
    pub ingest: IngestConfig,
    /// Sink (`camtrail sink`).
    pub sink: SinkConfig,
    /// Query node (`camtrail query`).
    pub query: QueryConfig,
    /// Embedded mode (`camtrail serve`, with the `[ingest]` and `[query]` sections).
    pub serve: ServeConfig,
}

impl Config {
    /// Load and validate. `file` is optional; environment variables override it.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        if let Some(path) = file {
            anyhow::ensure!(
                path.exists(),
                "config file {} does not exist",
                path.display()
            );
            figment = figment.merge(Toml::file(path));
        }
        // Only CAMTRAIL_<SECTION>__<KEY> variables are settings; others with the prefix
        // (CAMTRAIL_CONFIG, the service scripts' CAMTRAIL_LOCAL_DIR, ...) are not.
        let settings = Env::prefixed("CAMTRAIL_").filter(|key| key.as_str().contains("__"));
        figment = figment.merge(settings.split("__"));
        let config: Config = figment.extract().context("invalid configuration")?;
        config.validate()
    }

    fn validate(self) -> anyhow::Result<Self> {
        Ok(Self {
            clickhouse: self.clickhouse.validate()?,
            kafka: self.kafka.validate().map_err(anyhow::Error::msg)?,
            ingest: self.ingest.validate().map_err(anyhow::Error::msg)?,
            sink: self.sink.validate().map_err(anyhow::Error::msg)?,
            query: self.query.validate().map_err(anyhow::Error::msg)?,
            serve: self.serve,
        })
    }

    /// The configuration as TOML (what `camtrail config` prints).
    pub fn to_toml(&self) -> anyhow::Result<String> {
        Ok(toml::to_string_pretty(self)?)
    }
}

#[cfg(test)]
// figment's Jail closure must return figment::Error, which is large; fine in tests.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;

    #[test]
    fn file_then_environment_override_defaults() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "camtrail.toml",
                "[kafka]\nbrokers = \"file:9092\"\ndetections_partitions = 3\n",
            )?;
            jail.set_env("CAMTRAIL_KAFKA__BROKERS", "env:9092");
            let config =
                Config::load(Some(Path::new("camtrail.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.kafka.brokers, "env:9092");
            assert_eq!(config.kafka.detections_partitions, 3);
            assert_eq!(config.clickhouse, ClickhouseConfig::default());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[kafka]\nbroker = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("typo.toml"))).is_err());
            jail.create_file("bad.toml", "[clickhouse]\ndatabase = \"a;b\"\n")?;
            assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            assert!(Config::load(Some(Path::new("missing.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn printed_config_loads_back() {
        let text = Config::default().to_toml().expect("toml");
        let parsed: Config = toml::from_str(&text).expect("parse");
        assert_eq!(parsed, Config::default());
    }
}
