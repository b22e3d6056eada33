//! The case registry's storage: the latest version of each case and the legal holds, kept
//! by the same backend as the detections (SQLite tables in embedded mode, ClickHouse
//! tables in distributed mode, written directly by the query node: a case changes a few
//! times a day, so one small insert per change does not pile up parts).
//!
//! Writes carry the whole new version ([`Case::version`] one above the one read); the
//! store keeps the highest version of each case. Two supervisors changing one case at the
//! same instant on two nodes: the one stored last of equal versions wins (ClickHouse
//! `ReplacingMergeTree`), each change is in the audit log either way.

use std::future::Future;

use camtrail_model::case::{Case, Hold};

use crate::StorageError;

/// Cases and holds.
pub trait CaseStore: Send + Sync + 'static {
    /// The latest version of `case_id`, if the registry holds it.
    fn case(
        &self,
        case_id: &str,
    ) -> impl Future<Output = Result<Option<Case>, StorageError>> + Send;

    /// The latest version of every case, ordered by id.
    fn cases(&self) -> impl Future<Output = Result<Vec<Case>, StorageError>> + Send;

    /// Store a new version of a case; durable when it returns `Ok`.
    fn put_case(&self, case: &Case) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Every hold (all cases), ordered by case then event id; a hold placed twice is
    /// listed once.
    fn holds(&self) -> impl Future<Output = Result<Vec<Hold>, StorageError>> + Send;

    /// Store holds (placing one again changes nothing); durable when it returns `Ok`.
    fn put_holds(&self, holds: &[Hold]) -> impl Future<Output = Result<(), StorageError>> + Send;
}
