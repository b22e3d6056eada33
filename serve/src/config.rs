//! Configuration of every role: built-in defaults, then a TOML file, then
//! `CAMTRAIL_<SECTION>__<KEY>` environment variables. Unknown keys are errors.
//!
//! Each section belongs to the crate that uses it (`[ingest]` to `camtrail-ingest`, `[query]`
//! to `camtrail-query`, `[kafka]` and `[ingest.producer]` to `camtrail-kafka`, ...); this
//! module only puts them side by side. A build without the `distributed` feature has no
//! Kafka, ClickHouse or sink: it still accepts their sections (so one file serves both
//! builds) but does not read them.

use std::path::Path;

use anyhow::Context;
use camtrail_ingest::config::IngestConfig;
use camtrail_query::node::QueryConfig;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::embedded::ServeConfig;

#[cfg(feature = "distributed")]
mod sections {
    pub use crate::alert::AlertConfig;
    pub use camtrail_clickhouse::ClickhouseConfig;
    pub use camtrail_kafka::{KafkaConfig, ProducerConfig};
    pub use camtrail_sink::SinkConfig;
}

/// A build without the distributed mode keeps these sections as they were written.
#[cfg(not(feature = "distributed"))]
mod sections {
    /// `[clickhouse]`, kept as written.
    pub type ClickhouseConfig = toml::Table;
    /// `[kafka]`, kept as written.
    pub type KafkaConfig = toml::Table;
    /// `[ingest.producer]`, kept as written.
    pub type ProducerConfig = toml::Table;
    /// `[sink]`, kept as written.
    pub type SinkConfig = toml::Table;
    /// `[alert]`, kept as written.
    pub type AlertConfig = toml::Table;
}

pub use sections::*;

/// Everything configurable, one section per component.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// ClickHouse (distributed mode storage).
    #[cfg_attr(
        not(feature = "distributed"),
        serde(skip_serializing_if = "toml::Table::is_empty")
    )]
    pub clickhouse: ClickhouseConfig,
    /// Kafka (distributed mode transport).
    #[cfg_attr(
        not(feature = "distributed"),
        serde(skip_serializing_if = "toml::Table::is_empty")
    )]
    pub kafka: KafkaConfig,
    /// Ingest node (`camtrail ingest`, and the ingest side of `camtrail serve`).
    pub ingest: IngestSection,
    /// Sink (`camtrail sink`).
    #[cfg_attr(
        not(feature = "distributed"),
        serde(skip_serializing_if = "toml::Table::is_empty")
    )]
    pub sink: SinkConfig,
    /// The watchlist role (`camtrail alert`).
    #[cfg_attr(
        not(feature = "distributed"),
        serde(skip_serializing_if = "toml::Table::is_empty")
    )]
    pub alert: AlertConfig,
    /// Query node (`camtrail query`, and the query side of `camtrail serve`).
    pub query: QueryConfig,
    /// Embedded mode (`camtrail serve`, with the `[ingest]` and `[query]` sections).
    pub serve: ServeConfig,
}

/// `[ingest]`: the node's settings, and the Kafka producer's as `[ingest.producer]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestSection {
    /// Everything the ingest node itself reads.
    #[serde(flatten)]
    pub node: IngestConfig,
    /// Kafka producer tuning (`camtrail ingest`; unused by `camtrail serve`).
    #[cfg_attr(
        not(feature = "distributed"),
        serde(skip_serializing_if = "toml::Table::is_empty")
    )]
    pub producer: ProducerConfig,
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
        #[cfg(feature = "distributed")]
        let (clickhouse, kafka, sink) = (
            self.clickhouse.validate()?,
            self.kafka.validate()?,
            self.sink.validate()?,
        );
        #[cfg(not(feature = "distributed"))]
        let (clickhouse, kafka, sink) = (self.clickhouse, self.kafka, self.sink);
        Ok(Self {
            clickhouse,
            kafka,
            ingest: IngestSection {
                node: self.ingest.node.validate()?,
                producer: self.ingest.producer,
            },
            sink,
            alert: self.alert,
            query: self.query.validate()?,
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

    #[cfg(feature = "distributed")]
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
    fn ingest_settings_and_producer_tuning_share_the_ingest_section() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "camtrail.toml",
                "[ingest]\nmax_in_flight_per_stream = 3\n[ingest.producer]\nlinger_ms = 9\n",
            )?;
            jail.set_env("CAMTRAIL_INGEST__GRPC_ADDR", "127.0.0.1:6000");
            jail.set_env("CAMTRAIL_INGEST__SHUTDOWN_DELAY_MS", "250");
            let config =
                Config::load(Some(Path::new("camtrail.toml"))).map_err(|e| e.to_string())?;
            assert_eq!(config.ingest.node.max_in_flight_per_stream, 3);
            assert_eq!(config.ingest.node.shutdown_delay_ms, 250);
            assert_eq!(
                config.ingest.node.grpc_addr,
                "127.0.0.1:6000".parse().expect("addr")
            );
            #[cfg(feature = "distributed")]
            assert_eq!(config.ingest.producer.linger_ms, 9);
            jail.create_file("typo.toml", "[ingest]\nmax_in_flight = 3\n")?;
            assert!(Config::load(Some(Path::new("typo.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_and_bad_values_are_errors() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("typo.toml", "[query]\nnode = \"x\"\n")?;
            assert!(Config::load(Some(Path::new("typo.toml"))).is_err());
            jail.create_file("zone.toml", "[query]\ntime_zone = \"Mars/Olympus\"\n")?;
            assert!(Config::load(Some(Path::new("zone.toml"))).is_err());
            #[cfg(feature = "distributed")]
            {
                jail.create_file("kafka.toml", "[kafka]\nbroker = \"x\"\n")?;
                assert!(Config::load(Some(Path::new("kafka.toml"))).is_err());
                jail.create_file("bad.toml", "[clickhouse]\ndatabase = \"a;b\"\n")?;
                assert!(Config::load(Some(Path::new("bad.toml"))).is_err());
            }
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
