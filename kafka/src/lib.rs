//! Kafka, the distributed mode's transport (ARCHITECTURE.md, Guarantees 1 and 2):
//!
//! - [`KafkaConfig`] ([`config`]): brokers and topic names, the `[kafka]` section;
//!   [`ensure_topics`] ([`topics`]) creates the topics (`camtrail migrate`).
//! - [`KafkaPublisher`] ([`producer`]): the ingest node's
//!   [`Publisher`](camtrail_storage::Publisher): idempotent, `acks=all`; a batch is durable
//!   when its last delivery report arrived. [`ProducerConfig`] is `[ingest.producer]`.
//! - [`AuditWriter`] ([`audit`]): a node's [`AuditLog`](camtrail_storage::AuditLog) on
//!   `camtrail.audit.v1`, one record at a time, each durable before the answer it accounts
//!   for leaves.
//! - [`DeadLetterProducer`] ([`dlq`]): where the sink puts records it cannot decode.

pub mod audit;
pub mod config;
pub mod dlq;
pub mod producer;
pub mod topics;

pub use audit::AuditWriter;
pub use config::KafkaConfig;
pub use dlq::{DeadLetter, DeadLetterProducer};
pub use producer::{KafkaPublisher, ProducerConfig, PublishError};
pub use topics::{TopicOutcome, TopicSpec, ensure_topics};
