//! Creating camtrail's topics through the Kafka admin API (idempotent).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use super::KafkaConfig;

const DAY_MS: i64 = 24 * 3600 * 1000;

/// A topic camtrail needs.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicSpec {
    /// Topic name.
    pub name: String,
    /// Partition count.
    pub partitions: i32,
    /// How long the broker keeps records, ms. Long enough for a sink outage to be caught up.
    pub retention_ms: i64,
}

/// What happened to one topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TopicOutcome {
    /// Created by this call.
    Created(String),
    /// Already there; left unchanged.
    Existed(String),
}

impl KafkaConfig {
    /// The topics of this configuration: detections, its dead-letter topic, audit, alerts.
    pub fn topic_specs(&self) -> Vec<TopicSpec> {
        vec![
            TopicSpec {
                name: self.detections_topic.clone(),
                partitions: self.detections_partitions,
                retention_ms: 7 * DAY_MS,
            },
            TopicSpec {
                name: self.dead_letter_topic.clone(),
                partitions: 1,
                retention_ms: 30 * DAY_MS,
            },
            // The audit topic is the durable copy of every audit record until the sink has
            // loaded it; one partition keeps each node's hash chain in order.
            TopicSpec {
                name: self.audit_topic.clone(),
                partitions: 1,
                retention_ms: 30 * DAY_MS,
            },
            // Only a relay to the query nodes' live streams: every hit on it is stored in
            // ClickHouse first, so the broker keeps its plates no longer than an hour.
            TopicSpec {
                name: self.alerts_topic.clone(),
                partitions: 1,
                retention_ms: 3_600_000,
            },
        ]
    }
}

/// Create every topic of `config` that does not exist yet.
pub async fn ensure_topics(
    config: &KafkaConfig,
    timeout: Duration,
) -> Result<Vec<TopicOutcome>, rdkafka::error::KafkaError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()?;
    let specs = config.topic_specs();
    let retention: Vec<String> = specs.iter().map(|s| s.retention_ms.to_string()).collect();
    let new_topics: Vec<NewTopic<'_>> = specs
        .iter()
        .zip(&retention)
        .map(|(spec, retention_ms)| {
            NewTopic::new(
                &spec.name,
                spec.partitions,
                TopicReplication::Fixed(config.replication_factor),
            )
            .set("retention.ms", retention_ms)
            // With acks=all, a write is only durable on this many replicas.
            .set(
                "min.insync.replicas",
                if config.replication_factor >= 3 {
                    "2"
                } else {
                    "1"
                },
            )
        })
        .collect();
    let options = AdminOptions::new().operation_timeout(Some(timeout));
    let results = admin.create_topics(&new_topics, &options).await?;
    let mut outcomes = Vec::with_capacity(results.len());
    for result in results {
        match result {
            Ok(name) => outcomes.push(TopicOutcome::Created(name)),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => {
                outcomes.push(TopicOutcome::Existed(name));
            }
            Err((name, code)) => {
                return Err(rdkafka::error::KafkaError::AdminOp(code)).inspect_err(|_| {
                    tracing::error!(topic = %name, %code, "cannot create topic");
                });
            }
        }
    }
    Ok(outcomes)
}
