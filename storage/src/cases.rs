//! The case registry's storage: the latest version of each case and the legal holds, kept
//! by the same backend as the detections (SQLite tables in embedded mode, ClickHouse
//! tables in distributed mode, written directly by the query node: a case changes a few
//! times a day, so one small insert per change does not pile up parts).
//!
//! Writes carry the whole new version ([`Case::version`] one above the one read) and succeed
//! only if it is newer than every stored version (compare and set): of two supervisors
//! changing one case at once, one is told [`StorageError::Conflict`] (409
//! `change_conflict`) and reads again. ClickHouse has no conditional insert, so it checks
//! before and after inserting; if both writers inserted the same version both hear of the
//! conflict, and reads prefer the version that closes the case.

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

    /// Store a new version of a case, newer than every stored one (else
    /// [`StorageError::Conflict`]); durable when it returns `Ok`.
    fn put_case(&self, case: &Case) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Every hold (all cases), ordered by case then event id; a hold placed twice is
    /// listed once.
    fn holds(&self) -> impl Future<Output = Result<Vec<Hold>, StorageError>> + Send;

    /// Store holds (placing one again changes nothing); durable when it returns `Ok`.
    fn put_holds(&self, holds: &[Hold]) -> impl Future<Output = Result<(), StorageError>> + Send;
}
