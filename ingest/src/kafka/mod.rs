//! Kafka: connection settings, topic management, the detections producer.

mod config;
mod producer;
mod topics;

pub use config::KafkaConfig;
pub use producer::{KafkaPublisher, ProducerConfig, PublishError};
pub use topics::{TopicOutcome, TopicSpec, ensure_topics};
