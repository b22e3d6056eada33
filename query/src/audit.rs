//! Where the query service writes its audit records: a trait, so the distributed mode writes
//! to Kafka (`camtrail.audit.v1`, `acks=all`, loaded into ClickHouse by the sink) and the
//! embedded mode to its own database. Every audited answer is held back until `append`
//! returned `Ok` (fail closed).

use std::future::Future;

use camtrail_ingest::kafka::AuditWriter;
use camtrail_model::audit::{AuditEntry, AuditRecord};

/// The audit record could not be made durable.
#[derive(Debug, thiserror::Error)]
#[error("audit log unavailable: {0}")]
pub struct AuditError(pub String);

/// Appends records to one node's audit chain, durably.
pub trait AuditLog: Send + Sync + 'static {
    /// Seal `entry` as the next record of the chain and return once it is durable.
    fn append(
        &self,
        entry: AuditEntry,
    ) -> impl Future<Output = Result<AuditRecord, AuditError>> + Send;
}

impl AuditLog for AuditWriter {
    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, AuditError> {
        AuditWriter::append(self, entry)
            .await
            .map_err(|error| AuditError(error.to_string()))
    }
}
