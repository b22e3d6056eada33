//! [`AuditWriter`]: appends a node's audit records to `camtrail.audit.v1`, each one durable
//! (`acks=all`, idempotent producer) before the call returns, so the action it records can
//! go ahead. The sink loads the topic into ClickHouse `audit_log` in batches (ARCHITECTURE.md,
//! Storage: no insert per query).

use std::time::Duration;

use camtrail_model::audit::{AuditChain, AuditEntry, AuditRecord};
use camtrail_storage::{AuditLog, StorageError};
use rdkafka::ClientConfig;
use rdkafka::producer::{FutureProducer, FutureRecord};
use tokio::sync::Mutex;

/// One node's audit chain and the producer that makes its records durable.
pub struct AuditWriter {
    producer: FutureProducer,
    topic: String,
    chain: Mutex<AuditChain>,
    timeout: Duration,
}

impl AuditWriter {
    /// A writer for `chain`, producing to `topic` on `brokers`; each record is delivered
    /// within `timeout` or the write fails.
    pub fn new(
        brokers: &str,
        topic: &str,
        chain: AuditChain,
        timeout: Duration,
    ) -> Result<Self, rdkafka::error::KafkaError> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "0")
            .set(
                "message.timeout.ms",
                timeout.as_millis().clamp(1_000, 300_000).to_string(),
            )
            .create()?;
        Ok(Self {
            producer,
            topic: topic.to_string(),
            chain: Mutex::new(chain),
            timeout,
        })
    }

    /// Seal `entry` as the chain's next record and wait until Kafka has it (`acks=all`).
    /// Records are written one at a time, in chain order; a failed write leaves the chain
    /// where it was, so the next record takes the same seq and nothing is skipped.
    pub async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StorageError> {
        let mut chain = self.chain.lock().await;
        let record = chain.seal(entry);
        let value = camtrail_proto::record::encode_audit(&record);
        let delivery = self
            .producer
            .send(
                FutureRecord::to(&self.topic)
                    .key(record.node_id.as_str())
                    .payload(&value),
                self.timeout,
            )
            .await;
        match delivery {
            Ok(_) => {
                chain.commit(&record);
                Ok(record)
            }
            Err((error, _)) => Err(StorageError::unavailable(
                "kafka",
                format_args!("audit record not written to {}: {error}", self.topic),
            )),
        }
    }
}

impl AuditLog for AuditWriter {
    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StorageError> {
        AuditWriter::append(self, entry).await
    }
}
