//! Kafka: connection settings, topic management, the detections producer, the audit writer.

mod audit;
mod config;
mod producer;
mod topics;

pub use audit::{AuditWriteError, AuditWriter};
pub use config::KafkaConfig;
pub use producer::{KafkaPublisher, ProducerConfig, PublishError};
pub use topics::{TopicOutcome, TopicSpec, ensure_topics};
