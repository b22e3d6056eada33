//! The audit chains kept in the database: each node's records commit in the writer's
//! group transactions, like detections.

use std::sync::Arc;
use std::time::Duration;

use camtrail_model::audit::{AuditChain, AuditEntry, AuditRecord};
use camtrail_storage::{AuditLog, StorageError};

use super::SqliteStore;
use super::writer::Work;

impl SqliteStore {
    /// An audit log for `node_id` in this database, continuing that node's chain where it
    /// ends (one database, one writer: the chain cannot fork).
    pub async fn audit_log(&self, node_id: &str) -> Result<SqliteAuditLog, StorageError> {
        let chain = match self.last_audit_record(node_id).await? {
            Some(record) => AuditChain::resume(&record),
            None => AuditChain::new(node_id),
        };
        Ok(SqliteAuditLog {
            store: self.clone(),
            chain: Arc::new(tokio::sync::Mutex::new(chain)),
        })
    }
}

/// The audit chain of one node, committed in the SQLite database.
#[derive(Clone)]
pub struct SqliteAuditLog {
    store: SqliteStore,
    chain: Arc<tokio::sync::Mutex<AuditChain>>,
}

impl AuditLog for SqliteAuditLog {
    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StorageError> {
        let mut chain = self.chain.lock().await;
        let record = chain.seal(entry);
        self.store
            .submit(
                Work::Audit(Box::new(record.clone())),
                Duration::from_secs(10),
            )
            .await?;
        chain.commit(&record);
        Ok(record)
    }
}
