//! The case registry as the query service runs it: supervisors open, assign, extend and
//! close cases and place legal holds; every search names a case and is refused (403, no
//! audit record, nothing read) unless the registry lets its user search under it now
//! ([`Case::search_refusal`]). Every change is an audit record, written before the change is
//! stored (fail closed: a change that cannot be audited is not made).

use std::collections::BTreeSet;

use camtrail_common::now_ms;
use camtrail_model::case::{Case, CaseRefusal, CaseStatus, DAY_MS, Hold, normalize_users};
use camtrail_model::{Error, ErrorCode, EventId};
use camtrail_storage::{AuditLog, Store};
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{Caller, Purpose, QueryError, QueryService, store_failed};
use camtrail_model::audit::AuditRecord;

/// `[query.cases]`: the offence taxonomy and the bounds on cases.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CaseConfig {
    /// The offence categories a case may have (a fixed list: the transparency report
    /// counts searches by them).
    pub categories: Vec<String>,
    /// Longest a case may run before a supervisor extends it, days (from the change).
    pub max_days: u32,
    /// Most investigators one case may have assigned.
    pub max_assigned: usize,
    /// Most event ids one hold request may name.
    pub max_holds_per_request: usize,
}

impl Default for CaseConfig {
    fn default() -> Self {
        Self {
            categories: [
                "homicide",
                "robbery",
                "burglary",
                "theft",
                "vehicle_theft",
                "fraud",
                "assault",
                "kidnapping",
                "missing_person",
                "traffic_crime",
                "hit_and_run",
                "drug_offence",
            ]
            .map(String::from)
            .to_vec(),
            max_days: 90,
            max_assigned: 50,
            max_holds_per_request: 10_000,
        }
    }
}

/// Opening a case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenCase {
    /// The id searches will carry.
    pub case_id: String,
    /// Short title (1–200 characters).
    pub title: String,
    /// One of [`CaseConfig::categories`].
    pub category: String,
    /// Investigators who may search under it.
    pub assigned: Vec<String>,
    /// Investigators may search until this instant (at most `max_days` ahead), unix ms.
    pub ends_at_ms: i64,
    /// Why it is opened.
    pub reason: String,
}

/// A change to an open case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseChange {
    /// Add and remove investigators.
    Assign {
        /// Users to add.
        add: Vec<String>,
        /// Users to remove.
        remove: Vec<String>,
    },
    /// Move the end date (later, at most `max_days` from now).
    Extend {
        /// The new end, unix ms.
        ends_at_ms: i64,
    },
    /// Close the case: no more searches, its holds lapse.
    Close,
}

impl CaseChange {
    fn kind(&self) -> &'static str {
        match self {
            Self::Assign { .. } => "case_assign",
            Self::Extend { .. } => "case_extend",
            Self::Close => "case_close",
        }
    }
}

/// A case after a change, with the audit record of the change.
#[derive(Debug, Clone)]
pub struct CaseAnswer {
    /// The case as stored now.
    pub case: Case,
    /// The change's audit record.
    pub audit: AuditRecord,
}

/// Holds placed, with the audit record.
#[derive(Debug, Clone)]
pub struct HoldAnswer {
    /// The holds as stored (one per event id).
    pub holds: Vec<Hold>,
    /// The audit record.
    pub audit: AuditRecord,
}

fn bad_field(message: impl Into<String>) -> QueryError {
    Error::new(ErrorCode::InvalidCaseField, message)
}

fn require_supervisor(caller: &Caller, what: &str) -> Result<(), QueryError> {
    if caller.principal.role.is_supervisor() {
        Ok(())
    } else {
        Err(Error::new(
            ErrorCode::Forbidden,
            format!("only a supervisor may {what}"),
        ))
    }
}

/// Check a list of user names (1–64 characters each, no control or invisible formatting
/// characters) and return it sorted without repeats.
fn check_users(users: Vec<String>, max: usize) -> Result<Vec<String>, QueryError> {
    let users = normalize_users(users);
    if users.len() > max {
        return Err(bad_field(format!(
            "a case may have at most {max} investigators"
        )));
    }
    if users
        .iter()
        .any(|u| u.chars().count() > 64 || camtrail_model::text::has_hidden(u))
    {
        return Err(bad_field(
            "user names are 1-64 characters without control or invisible formatting characters",
        ));
    }
    Ok(users)
}

impl<S: Store, A: AuditLog> QueryService<S, A> {
    /// Refuse a search whose case does not let `caller` search now (403, before anything is
    /// read or audited).
    pub(super) async fn require_case(
        &self,
        caller: &Caller,
        purpose: &Purpose,
    ) -> Result<(), QueryError> {
        let case = self
            .store
            .case(&purpose.case_id)
            .await
            .map_err(store_failed)?;
        let refusal = match &case {
            None => Some(CaseRefusal::Closed),
            Some(case) => case.search_refusal(
                &caller.principal.user,
                caller.principal.role.is_supervisor(),
                now_ms(),
            ),
        };
        match refusal {
            None => Ok(()),
            Some(CaseRefusal::Closed) => Err(Error::new(
                ErrorCode::CaseNotOpen,
                format!(
                    "no open case {} in the registry; a supervisor opens cases",
                    purpose.case_id
                ),
            )),
            Some(CaseRefusal::NotAssigned) => Err(Error::new(
                ErrorCode::CaseNotAssigned,
                format!("you are not assigned to case {}", purpose.case_id),
            )),
            Some(CaseRefusal::Ended) => Err(Error::new(
                ErrorCode::CaseEnded,
                format!("case {} ended; a supervisor may extend it", purpose.case_id),
            )),
        }
    }

    fn check_end(&self, ends_at_ms: i64, now: i64) -> Result<(), QueryError> {
        let max_ms = i64::from(self.cases.max_days) * DAY_MS;
        if ends_at_ms <= now || ends_at_ms > now.saturating_add(max_ms) {
            return Err(Error::new(
                ErrorCode::InvalidCaseEnd,
                format!(
                    "the end date must lie in the future, at most {} days ahead",
                    self.cases.max_days
                ),
            ));
        }
        Ok(())
    }

    /// Open a case (supervisors).
    pub async fn open_case(
        &self,
        caller: &Caller,
        request: OpenCase,
    ) -> Result<CaseAnswer, QueryError> {
        require_supervisor(caller, "open a case")?;
        let purpose = Purpose::new(Some(&request.case_id), Some(&request.reason))?;
        if purpose.case_id == super::AUDIT_REVIEW_CASE {
            return Err(Error::new(
                ErrorCode::InvalidCase,
                format!(
                    "{} is reserved for reads of the audit log",
                    super::AUDIT_REVIEW_CASE
                ),
            ));
        }
        let title = request.title.trim();
        if title.is_empty()
            || title.chars().count() > 200
            || camtrail_model::text::has_hidden(title)
        {
            return Err(bad_field(
                "titles are 1-200 characters without control or invisible formatting characters",
            ));
        }
        if !self.cases.categories.contains(&request.category) {
            return Err(Error::new(
                ErrorCode::UnknownCategory,
                format!(
                    "the offence category must be one of: {}",
                    self.cases.categories.join(", ")
                ),
            ));
        }
        let assigned = check_users(request.assigned, self.cases.max_assigned)?;
        let now = now_ms();
        self.check_end(request.ends_at_ms, now)?;
        if self
            .store
            .case(&purpose.case_id)
            .await
            .map_err(store_failed)?
            .is_some()
        {
            return Err(Error::new(
                ErrorCode::CaseExists,
                format!("case {} exists; pick another id", purpose.case_id),
            ));
        }
        let user = caller.principal.user.clone();
        let case = Case {
            case_id: purpose.case_id.clone(),
            title: title.to_string(),
            category: request.category,
            assigned,
            status: CaseStatus::Open,
            opened_by: user.clone(),
            opened_at_ms: now,
            ends_at_ms: request.ends_at_ms,
            updated_by: user,
            updated_at_ms: now,
            version: 1,
        };
        let parameters = json!({
            "title": case.title,
            "category": case.category,
            "assigned": case.assigned,
            "ends_at_ms": case.ends_at_ms,
            "version": case.version,
        });
        self.store_case(caller, &purpose, "case_open", parameters, case)
            .await
    }

    /// Change an open case (supervisors): assign, extend (with a reason, like every
    /// change), close.
    pub async fn change_case(
        &self,
        caller: &Caller,
        case_id: &str,
        change: CaseChange,
        reason: &str,
    ) -> Result<CaseAnswer, QueryError> {
        require_supervisor(caller, "change a case")?;
        let purpose = Purpose::new(Some(case_id), Some(reason))?;
        let mut case = self
            .store
            .case(&purpose.case_id)
            .await
            .map_err(store_failed)?
            .ok_or_else(|| {
                Error::new(
                    ErrorCode::NotFound,
                    format!("no case {} in the registry", purpose.case_id),
                )
            })?;
        if case.status == CaseStatus::Closed {
            return Err(Error::new(
                ErrorCode::CaseClosed,
                format!("case {} is closed", purpose.case_id),
            ));
        }
        let now = now_ms();
        let kind = change.kind();
        let parameters = match change {
            CaseChange::Assign { add, remove } => {
                let add = check_users(add, self.cases.max_assigned)?;
                let remove = check_users(remove, self.cases.max_assigned)?;
                if add.is_empty() && remove.is_empty() {
                    return Err(bad_field("name at least one investigator to add or remove"));
                }
                let users = case
                    .assigned
                    .iter()
                    .filter(|u| !remove.contains(u))
                    .chain(add.iter())
                    .cloned();
                case.assigned = check_users(users.collect(), self.cases.max_assigned)?;
                json!({ "add": add, "remove": remove, "assigned": case.assigned })
            }
            CaseChange::Extend { ends_at_ms } => {
                self.check_end(ends_at_ms, now)?;
                if ends_at_ms <= case.ends_at_ms {
                    return Err(Error::new(
                        ErrorCode::InvalidCaseEnd,
                        "an extension moves the end date later",
                    ));
                }
                let previous = case.ends_at_ms;
                case.ends_at_ms = ends_at_ms;
                json!({ "previous_ends_at_ms": previous, "ends_at_ms": ends_at_ms })
            }
            CaseChange::Close => {
                case.status = CaseStatus::Closed;
                json!({ "status": "closed" })
            }
        };
        case.updated_by = caller.principal.user.clone();
        case.updated_at_ms = now;
        case.version += 1;
        let mut parameters = parameters;
        parameters["version"] = case.version.into();
        self.store_case(caller, &purpose, kind, parameters, case)
            .await
    }

    /// Audit, then store.
    async fn store_case(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        kind: &str,
        parameters: serde_json::Value,
        case: Case,
    ) -> Result<CaseAnswer, QueryError> {
        let audit = self
            .write_audit(caller, purpose, kind, parameters, 1)
            .await?;
        self.store.put_case(&case).await.map_err(|error| {
            if error.code() == ErrorCode::ChangeConflict {
                tracing::warn!(kind, "a concurrent change of the case came first");
                return Error::new(
                    ErrorCode::ChangeConflict,
                    "another change of this case came first (this attempt is in the audit \
                     log); read the case again and retry",
                );
            }
            tracing::error!(%error, kind, "storing a case change failed after its audit record");
            Error::new(
                error.code(),
                "the change was audited but could not be stored; try again",
            )
        })?;
        tracing::info!(kind, version = case.version, "case changed");
        if case.status == CaseStatus::Closed {
            // Its watchlist entries stop matching.
            if let Err(error) = self.reload_entries().await {
                tracing::warn!(%error, "watchlist entries of a closed case still match until the next reload");
            }
        }
        Ok(CaseAnswer { case, audit })
    }

    /// The cases a caller may see: every case for a supervisor, those assigned to them for
    /// an investigator (the case picker); `status` filters.
    pub async fn list_cases(
        &self,
        caller: &Caller,
        status: Option<CaseStatus>,
    ) -> Result<Vec<Case>, QueryError> {
        Self::require_search(caller)?;
        let supervisor = caller.principal.role.is_supervisor();
        let cases = self.store.cases().await.map_err(store_failed)?;
        Ok(cases
            .into_iter()
            .filter(|c| supervisor || c.is_assigned(&caller.principal.user))
            .filter(|c| status.is_none_or(|s| c.status == s))
            .collect())
    }

    /// Place legal holds on detections for an open case (supervisors); audited with the
    /// event ids.
    pub async fn place_holds(
        &self,
        caller: &Caller,
        case_id: &str,
        event_ids: &[String],
        reason: &str,
    ) -> Result<HoldAnswer, QueryError> {
        require_supervisor(caller, "place a legal hold")?;
        let purpose = Purpose::new(Some(case_id), Some(reason))?;
        if event_ids.is_empty() || event_ids.len() > self.cases.max_holds_per_request {
            return Err(bad_field(format!(
                "name 1-{} event ids to hold",
                self.cases.max_holds_per_request
            )));
        }
        let ids: BTreeSet<String> = event_ids
            .iter()
            .map(|id| {
                EventId::parse_hex(id.trim())
                    .map(|id| id.to_hex())
                    .ok_or_else(|| {
                        Error::new(
                            ErrorCode::InvalidEventId,
                            "event ids are 32 hex digits (16 bytes), not all zero",
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        let case = self
            .store
            .case(&purpose.case_id)
            .await
            .map_err(store_failed)?;
        if case.as_ref().is_none_or(|c| c.status == CaseStatus::Closed) {
            return Err(Error::new(
                ErrorCode::CaseNotOpen,
                format!("no open case {} in the registry", purpose.case_id),
            ));
        }
        let now = now_ms();
        let holds: Vec<Hold> = ids
            .iter()
            .map(|event_id| Hold {
                case_id: purpose.case_id.clone(),
                event_id: event_id.clone(),
                placed_by: caller.principal.user.clone(),
                placed_at_ms: now,
            })
            .collect();
        let audit = self
            .write_audit(
                caller,
                &purpose,
                "hold_place",
                json!({ "event_ids": ids }),
                holds.len() as u64,
            )
            .await?;
        self.store.put_holds(&holds).await.map_err(|error| {
            tracing::error!(%error, "storing holds failed after their audit record");
            Error::new(
                error.code(),
                "the holds were audited but could not be stored; try again",
            )
        })?;
        tracing::info!(holds = holds.len(), "legal holds placed");
        Ok(HoldAnswer { holds, audit })
    }

    /// The holds in force or lapsed (supervisors), optionally of one case.
    pub async fn list_holds(
        &self,
        caller: &Caller,
        case_id: Option<&str>,
    ) -> Result<Vec<Hold>, QueryError> {
        require_supervisor(caller, "list legal holds")?;
        let holds = self.store.holds().await.map_err(store_failed)?;
        Ok(holds
            .into_iter()
            .filter(|h| case_id.is_none_or(|c| h.case_id == c))
            .collect())
    }
}
