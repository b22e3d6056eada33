//! The seams of camtrail (ARCHITECTURE.md, "Two ways to run"): what the stages ask of transport
//! and storage, as traits, so the ingest service, the query service and the track logic
//! never know which backend answers.
//!
//! - [`Publisher`] ([`publish`]): makes a batch of validated detections durable before the
//!   ingest node acks it. Kafka (`camtrail-kafka`, distributed) or a SQLite transaction
//!   (`camtrail-sqlite`, embedded).
//! - [`SightingStore`] ([`read`]): the read side the query service uses: sightings by key,
//!   passes by camera, key look-ups, snapshots, audit records. ClickHouse
//!   (`camtrail-clickhouse`) or SQLite.
//! - [`AuditLog`] ([`audit`]): appends one node's hash-chained audit records, durably,
//!   before the answer they account for leaves. Kafka or SQLite.
//! - [`CaseStore`] ([`cases`]): the case registry and legal holds, in the same backend as the
//!   detections.
//! - [`WatchlistStore`] ([`watchlist`]): watchlist entries; [`Store`] is the three a query
//!   node needs.
//! - [`retention`]: the one "plan, audit, then delete" flow, over any [`RetentionTarget`].
//! - [`StorageError`] ([`error`]): what a backend reports, with its [`ErrorCode`].
//! - [`private`]: files holding personal data or secrets, created owner-only (0600).
//! - `testsuite` (feature `testsuite`): the contract every backend passes, one set of tests
//!   run against each.
//!
//! [`ErrorCode`]: camtrail_model::ErrorCode

pub mod audit;
pub mod cases;
pub mod error;
pub mod private;
pub mod publish;
pub mod read;
pub mod retention;
pub mod sql;
#[cfg(feature = "testsuite")]
pub mod testsuite;
pub mod watchlist;

pub use audit::AuditLog;
pub use cases::CaseStore;
pub use error::StorageError;
pub use publish::{PublishFuture, Publisher};
pub use read::{
    AUDIT_PAGE_DEFAULT, AUDIT_PAGE_MAX, AuditCursor, AuditFilter, CameraWindow, PassCursor,
    PassFilter, SightingStore, StoredSighting, StoredSnapshot,
};
pub use retention::{RetentionOutcome, RetentionPlan, RetentionRun, RetentionTarget};
pub use watchlist::WatchlistStore;

/// Everything a query node reads and keeps beside the detections: sightings and the audit
/// listing ([`SightingStore`]), the case registry ([`CaseStore`]) and watchlist entries
/// ([`WatchlistStore`]). Implemented by every type that implements the three.
pub trait Store: SightingStore + CaseStore + WatchlistStore {}

impl<T: SightingStore + CaseStore + WatchlistStore> Store for T {}
