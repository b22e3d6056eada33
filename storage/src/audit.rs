//! Where a node writes its audit records: a trait, so the distributed mode writes to Kafka
//! (`camtrail.audit.v1`, `acks=all`, loaded into ClickHouse by the sink) and the embedded
//! mode to its own database. Every audited answer is held back until `append` returned
//! `Ok` (fail closed).

use std::future::Future;

use camtrail_model::audit::{AuditEntry, AuditRecord};

use crate::StorageError;

/// Appends records to one node's audit chain, durably.
pub trait AuditLog: Send + Sync + 'static {
    /// Seal `entry` as the next record of the chain and return once it is durable. A
    /// failed append leaves the chain where it was (the next record takes the same seq).
    fn append(
        &self,
        entry: AuditEntry,
    ) -> impl Future<Output = Result<AuditRecord, StorageError>> + Send;
}
