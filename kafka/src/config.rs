//! Kafka settings shared by the ingest node, the sink and the query node's audit producer.

use camtrail_common::ConfigError;
use serde::{Deserialize, Serialize};

/// How to reach Kafka and which topics to use. Defaults match `deploy/local/services.sh`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KafkaConfig {
    /// Bootstrap servers, comma separated.
    pub brokers: String,
    /// Accepted detections, keyed by camera id.
    pub detections_topic: String,
    /// Records the sink could not decode, with the reason in headers.
    pub dead_letter_topic: String,
    /// Audit records, produced before query results leave a node.
    pub audit_topic: String,
    /// Watchlist hits the alert role stored, relayed to every query node's live streams.
    pub alerts_topic: String,
    /// Partitions of the detections topic (parallelism of the sinks).
    pub detections_partitions: i32,
    /// Replication factor of created topics (1 on a single broker, 3 in production).
    pub replication_factor: i32,
}

impl Default for KafkaConfig {
    fn default() -> Self {
        Self {
            brokers: "127.0.0.1:9092".into(),
            detections_topic: "camtrail.detections.v1".into(),
            dead_letter_topic: "camtrail.detections.dlq.v1".into(),
            audit_topic: "camtrail.audit.v1".into(),
            alerts_topic: "camtrail.alerts.v1".into(),
            detections_partitions: 12,
            replication_factor: 1,
        }
    }
}

impl KafkaConfig {
    /// Check the values; returns the config unchanged when usable.
    pub fn validate(self) -> Result<Self, ConfigError> {
        if self.brokers.trim().is_empty() {
            return Err(ConfigError::new("kafka.brokers must not be empty"));
        }
        if !(1..=10_000).contains(&self.detections_partitions) {
            return Err(ConfigError(format!(
                "kafka.detections_partitions must be 1–10000, got {}",
                self.detections_partitions
            )));
        }
        if !(1..=16).contains(&self.replication_factor) {
            return Err(ConfigError(format!(
                "kafka.replication_factor must be 1–16, got {}",
                self.replication_factor
            )));
        }
        for topic in [
            &self.detections_topic,
            &self.dead_letter_topic,
            &self.audit_topic,
            &self.alerts_topic,
        ] {
            if !is_topic_name(topic) {
                return Err(ConfigError(format!("invalid Kafka topic name {topic:?}")));
            }
        }
        Ok(self)
    }
}

/// Kafka's rule for topic names: 1–249 of `[a-zA-Z0-9._-]`.
fn is_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_named() {
        assert!(KafkaConfig::default().validate().is_ok());
        let bad = KafkaConfig {
            audit_topic: "audit topic".into(),
            ..KafkaConfig::default()
        };
        assert!(
            bad.validate()
                .unwrap_err()
                .to_string()
                .contains("audit topic")
        );
        let zero = KafkaConfig {
            detections_partitions: 0,
            ..KafkaConfig::default()
        };
        assert!(zero.validate().is_err());
    }
}
