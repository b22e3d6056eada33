//! Retention, the same flow on every backend (ARCHITECTURE.md, Accountability): plan what
//! removing everything captured before the cutoff would remove, write the run's audit
//! record (who, case, reason, the policy, the plan) and only once it is durable delete. If
//! the record cannot be written nothing is deleted. The audit log itself is never touched.
//!
//! A backend supplies the plan and the deletion ([`RetentionTarget`]); [`apply`] is the
//! order they run in. Legal holds ([`CaseStore::holds`]) exempt detections: the run reads
//! which event ids are held for a case that is not closed and the backend keeps exactly
//! those rows (and their snapshots) among the ones before the cutoff.

use std::collections::BTreeSet;
use std::future::Future;

use camtrail_model::audit::{AuditEntry, AuditRecord};
use serde_json::{Map, Value};

use crate::{AuditLog, CaseStore, StorageError};

const DAY_MS: i64 = 86_400_000;

/// What a planned run would remove, as the audit record shows it.
pub trait RetentionPlan {
    /// Backend-specific detail for the audit record (`database`, per-table actions, ...),
    /// as JSON object fields.
    fn parameters(&self) -> Map<String, Value>;

    /// Rows the run would remove.
    fn rows(&self) -> u64;
}

/// A store retention can be applied to.
pub trait RetentionTarget: Send + Sync {
    /// What a run would remove.
    type Plan: RetentionPlan + Send + Sync;
    /// What a run did.
    type Report: Send;

    /// Plan the removal of everything captured before `cutoff_ms` except the detections
    /// (and snapshots) whose event id (32 lowercase hex digits) is in `held`; changes
    /// nothing.
    fn plan(
        &self,
        cutoff_ms: i64,
        held: &BTreeSet<String>,
    ) -> impl Future<Output = Result<Self::Plan, StorageError>> + Send;

    /// Carry out `plan`.
    fn apply(
        &self,
        plan: &Self::Plan,
    ) -> impl Future<Output = Result<Self::Report, StorageError>> + Send;
}

/// Who asks for a retention run and why (recorded in its audit record).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionRun {
    /// Keep this many days (at least 1).
    pub days: u32,
    /// Operator.
    pub operator: String,
    /// Case or ticket.
    pub case_id: String,
    /// Reason.
    pub reason: String,
    /// Only plan; change nothing, audit nothing.
    pub dry_run: bool,
}

impl RetentionRun {
    /// Everything captured before this goes, unix ms.
    pub fn cutoff_ms(&self, now_ms: i64) -> i64 {
        now_ms - i64::from(self.days) * DAY_MS
    }
}

/// What a run found and did.
#[derive(Debug, Clone)]
pub struct RetentionOutcome<P, R> {
    /// Everything captured before this goes, unix ms.
    pub cutoff_ms: i64,
    /// What was (or, for a dry run, would be) removed.
    pub plan: P,
    /// The run's audit record (none for a dry run).
    pub audit: Option<AuditRecord>,
    /// What the deletion did (none for a dry run).
    pub report: Option<R>,
}

/// Why a run stopped.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The run was asked wrongly.
    #[error("retention days must be at least 1")]
    InvalidDays,
    /// The plan could not be made; nothing was audited or deleted.
    #[error("planning retention: {0}")]
    Plan(StorageError),
    /// The audit record could not be written; nothing was deleted.
    #[error("retention refused: its audit record could not be written: {0}")]
    Audit(StorageError),
    /// The deletion failed part-way; the audit record names the whole plan.
    #[error("applying retention: {0}")]
    Apply(StorageError),
}

/// Read the holds in force, plan, audit (unless a dry run), then delete.
pub async fn apply<T: RetentionTarget, C: CaseStore, A: AuditLog>(
    target: &T,
    cases: &C,
    audit: &A,
    run: &RetentionRun,
    now_ms: i64,
) -> Result<RetentionOutcome<T::Plan, T::Report>, RetentionError> {
    if run.days == 0 {
        return Err(RetentionError::InvalidDays);
    }
    let cutoff_ms = run.cutoff_ms(now_ms);
    let held = held_event_ids(cases).await.map_err(RetentionError::Plan)?;
    let plan = target
        .plan(cutoff_ms, &held)
        .await
        .map_err(RetentionError::Plan)?;
    if run.dry_run {
        return Ok(RetentionOutcome {
            cutoff_ms,
            plan,
            audit: None,
            report: None,
        });
    }
    let record = audit
        .append(audit_entry(run, cutoff_ms, held.len(), &plan, now_ms))
        .await
        .map_err(RetentionError::Audit)?;
    // A hold placed while the record was written: plan again with it (holds only take
    // rows out of a plan, so the audited plan still bounds what goes). One placed during
    // the deletion itself may come too late for rows already chosen: place holds before
    // the day's run.
    // Both sets: a hold lapsed meanwhile (its case closed) must not delete more than the
    // audited plan said.
    let mut held_now = held_event_ids(cases).await.map_err(RetentionError::Plan)?;
    held_now.extend(held.iter().cloned());
    let plan = if held_now == held {
        plan
    } else {
        target
            .plan(cutoff_ms, &held_now)
            .await
            .map_err(RetentionError::Plan)?
    };
    let report = target.apply(&plan).await.map_err(RetentionError::Apply)?;
    Ok(RetentionOutcome {
        cutoff_ms,
        plan,
        audit: Some(record),
        report: Some(report),
    })
}

/// The event ids held for cases that are not closed.
pub async fn held_event_ids<C: CaseStore>(cases: &C) -> Result<BTreeSet<String>, StorageError> {
    let holds = cases.holds().await?;
    if holds.is_empty() {
        return Ok(BTreeSet::new());
    }
    let registry = cases.cases().await?;
    Ok(camtrail_model::case::held_event_ids(&registry, &holds))
}

/// The audit record of a run: the policy, the holds in force and the plan.
fn audit_entry(
    run: &RetentionRun,
    cutoff_ms: i64,
    held: usize,
    plan: &impl RetentionPlan,
    now_ms: i64,
) -> AuditEntry {
    let mut parameters = Map::new();
    parameters.insert("days".into(), run.days.into());
    parameters.insert("cutoff_ms".into(), cutoff_ms.into());
    parameters.insert("held_event_ids".into(), held.into());
    parameters.extend(plan.parameters());
    AuditEntry {
        at_ms: now_ms,
        user: run.operator.clone(),
        role: "operator".into(),
        case_id: run.case_id.clone(),
        reason: run.reason.clone(),
        kind: "retention".into(),
        parameters_json: Value::Object(parameters).to_string(),
        result_count: plan.rows(),
        client_addr: "cli".into(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;

    struct Plan(u64);

    impl RetentionPlan for Plan {
        fn parameters(&self) -> Map<String, Value> {
            let mut fields = Map::new();
            fields.insert("database".into(), "test".into());
            fields
        }
        fn rows(&self) -> u64 {
            self.0
        }
    }

    #[derive(Default)]
    struct Target {
        applied: Mutex<Vec<u64>>,
    }

    impl RetentionTarget for Target {
        type Plan = Plan;
        type Report = u64;
        async fn plan(
            &self,
            _cutoff_ms: i64,
            held: &BTreeSet<String>,
        ) -> Result<Plan, StorageError> {
            Ok(Plan(7 - held.len() as u64))
        }
        async fn apply(&self, plan: &Plan) -> Result<u64, StorageError> {
            self.applied.lock().expect("lock").push(plan.0);
            Ok(plan.0)
        }
    }

    /// One open case holding one event.
    struct Cases;

    impl CaseStore for Cases {
        async fn case(&self, _: &str) -> Result<Option<camtrail_model::case::Case>, StorageError> {
            Ok(None)
        }
        async fn cases(&self) -> Result<Vec<camtrail_model::case::Case>, StorageError> {
            Ok(Vec::new())
        }
        async fn put_case(&self, _: &camtrail_model::case::Case) -> Result<(), StorageError> {
            Ok(())
        }
        async fn holds(&self) -> Result<Vec<camtrail_model::case::Hold>, StorageError> {
            Ok(vec![camtrail_model::case::Hold {
                case_id: "C-1".into(),
                event_id: "00000000000000000000000000000001".into(),
                placed_by: "sam".into(),
                placed_at_ms: 0,
            }])
        }
        async fn put_holds(&self, _: &[camtrail_model::case::Hold]) -> Result<(), StorageError> {
            Ok(())
        }
    }

    struct Audit {
        works: bool,
        entries: Mutex<Vec<AuditEntry>>,
    }

    impl AuditLog for Audit {
        async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StorageError> {
            if !self.works {
                return Err(StorageError::unavailable("kafka", "down"));
            }
            self.entries.lock().expect("lock").push(entry.clone());
            Ok(AuditRecord {
                node_id: "retention".into(),
                seq: 1,
                entry,
                prev_hash: String::new(),
                hash: String::new(),
            })
        }
    }

    fn run(dry_run: bool) -> RetentionRun {
        RetentionRun {
            days: 30,
            operator: "ops".into(),
            case_id: "retention-policy".into(),
            reason: "policy".into(),
            dry_run,
        }
    }

    fn block_on<F: Future>(future: F) -> F::Output {
        // The futures here never wait on anything: poll once with a no-op waker.
        let mut future = std::pin::pin!(future);
        let mut context = std::task::Context::from_waker(std::task::Waker::noop());
        match future.as_mut().poll(&mut context) {
            std::task::Poll::Ready(output) => output,
            std::task::Poll::Pending => panic!("test future waited"),
        }
    }

    #[test]
    fn the_audit_record_comes_first_and_names_the_plan() {
        let target = Target::default();
        let audit = Audit {
            works: true,
            entries: Mutex::default(),
        };
        let now = 100 * DAY_MS;
        let outcome = block_on(apply(&target, &Cases, &audit, &run(false), now)).expect("applied");
        assert_eq!(outcome.cutoff_ms, 70 * DAY_MS);
        assert_eq!(outcome.report, Some(6), "the held row is not planned");
        let entries = audit.entries.lock().expect("lock");
        let parameters: Value = serde_json::from_str(&entries[0].parameters_json).expect("json");
        assert_eq!(parameters["days"], 30);
        assert_eq!(parameters["cutoff_ms"], 70 * DAY_MS);
        assert_eq!(parameters["database"], "test");
        assert_eq!(parameters["held_event_ids"], 1);
        assert_eq!(entries[0].kind, "retention");
        assert_eq!(entries[0].result_count, 6);
    }

    #[test]
    fn nothing_is_deleted_without_the_audit_record_or_in_a_dry_run() {
        let target = Target::default();
        let broken = Audit {
            works: false,
            entries: Mutex::default(),
        };
        let refused = block_on(apply(&target, &Cases, &broken, &run(false), 10 * DAY_MS));
        assert!(matches!(refused, Err(RetentionError::Audit(_))));
        let working = Audit {
            works: true,
            entries: Mutex::default(),
        };
        let dry = block_on(apply(&target, &Cases, &working, &run(true), 10 * DAY_MS)).expect("dry");
        assert!(dry.audit.is_none() && dry.report.is_none());
        assert!(working.entries.lock().expect("lock").is_empty());
        assert!(target.applied.lock().expect("lock").is_empty());
        let zero = RetentionRun {
            days: 0,
            ..run(false)
        };
        assert!(matches!(
            block_on(apply(&target, &Cases, &working, &zero, 10 * DAY_MS)),
            Err(RetentionError::InvalidDays)
        ));
    }
}
