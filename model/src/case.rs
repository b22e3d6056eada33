//! The case registry's records: a [`Case`] (what it is about, who may search under it and
//! until when) and a legal [`Hold`] (a detection retention must keep while its case is not
//! closed). Pure data and the rules on it; the query service changes cases, the stores keep
//! the latest version of each.

use std::collections::{BTreeMap, BTreeSet};

/// One day in ms.
pub const DAY_MS: i64 = 86_400_000;

/// Whether searches may still run under a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaseStatus {
    /// Searches may run (until the end date, for investigators).
    Open,
    /// Closed by a supervisor: no search, no hold.
    Closed,
}

impl CaseStatus {
    /// The name stored and shown.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Closed => "closed",
        }
    }

    /// The status named `name`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "open" => Some(Self::Open),
            "closed" => Some(Self::Closed),
            _ => None,
        }
    }
}

/// The latest version of a case.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Case {
    /// The id searches carry (`case`).
    pub case_id: String,
    /// Short title (may name a place or a victim: shown to the case's users and
    /// supervisors only, never in the transparency report).
    pub title: String,
    /// Offence category, one of the configured taxonomy.
    pub category: String,
    /// Investigators who may search under the case (sorted, no repeats).
    pub assigned: Vec<String>,
    /// Open or closed.
    pub status: CaseStatus,
    /// Supervisor who opened it.
    pub opened_by: String,
    /// When it was opened, unix ms.
    pub opened_at_ms: i64,
    /// Investigators may search under it until this instant, unix ms.
    pub ends_at_ms: i64,
    /// Who made the latest change.
    pub updated_by: String,
    /// When, unix ms.
    pub updated_at_ms: i64,
    /// 1 when opened, one more per change; the stores keep the highest.
    pub version: u64,
}

/// Why a search under a case is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaseRefusal {
    /// The case was closed.
    Closed,
    /// Its end date passed (investigators; a supervisor may extend it).
    Ended,
    /// The investigator is not assigned to it.
    NotAssigned,
}

impl Case {
    /// Whether `user` is one of the assigned investigators.
    pub fn is_assigned(&self, user: &str) -> bool {
        self.assigned
            .binary_search_by(|u| u.as_str().cmp(user))
            .is_ok()
    }

    /// Why `user` may not search under this case at `now_ms`, if they may not. Supervisors
    /// may search under any case that is not closed (to review it before extending, or
    /// without being assigned); investigators only while it is open, before its end, and
    /// when assigned.
    pub fn search_refusal(&self, user: &str, supervisor: bool, now_ms: i64) -> Option<CaseRefusal> {
        if self.status == CaseStatus::Closed {
            return Some(CaseRefusal::Closed);
        }
        if supervisor {
            return None;
        }
        if !self.is_assigned(user) {
            return Some(CaseRefusal::NotAssigned);
        }
        if now_ms >= self.ends_at_ms {
            return Some(CaseRefusal::Ended);
        }
        None
    }
}

/// Sort and deduplicate a list of user names (the form [`Case::assigned`] keeps).
pub fn normalize_users(users: impl IntoIterator<Item = String>) -> Vec<String> {
    users
        .into_iter()
        .map(|u| u.trim().to_string())
        .filter(|u| !u.is_empty())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect()
}

/// A legal hold: retention keeps the detection `event_id` (and its snapshot) while
/// `case_id` is not closed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
pub struct Hold {
    /// The case it is held for.
    pub case_id: String,
    /// The detection, 32 lowercase hex digits.
    pub event_id: String,
    /// Supervisor who placed it.
    pub placed_by: String,
    /// When, unix ms.
    pub placed_at_ms: i64,
}

/// The event ids retention must keep: those held for a case that is not closed (a case
/// past its end date but not closed still holds its evidence). Holds of cases the registry
/// does not know are kept too (fail safe: a hold never vanishes because its case row
/// could not be read).
pub fn held_event_ids(cases: &[Case], holds: &[Hold]) -> BTreeSet<String> {
    let status: BTreeMap<&str, CaseStatus> = cases
        .iter()
        .map(|c| (c.case_id.as_str(), c.status))
        .collect();
    holds
        .iter()
        .filter(|h| status.get(h.case_id.as_str()) != Some(&CaseStatus::Closed))
        .map(|h| h.event_id.clone())
        .collect()
}

/// The latest version of each case among `versions` (any order).
pub fn latest_versions(versions: impl IntoIterator<Item = Case>) -> Vec<Case> {
    let mut latest: BTreeMap<String, Case> = BTreeMap::new();
    for case in versions {
        match latest.get(&case.case_id) {
            Some(kept) if kept.version >= case.version => {}
            _ => {
                latest.insert(case.case_id.clone(), case);
            }
        }
    }
    latest.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(status: CaseStatus, assigned: &[&str], ends_at_ms: i64) -> Case {
        Case {
            case_id: "C-1".into(),
            title: "t".into(),
            category: "robbery".into(),
            assigned: normalize_users(assigned.iter().map(|s| s.to_string())),
            status,
            opened_by: "sam".into(),
            opened_at_ms: 0,
            ends_at_ms,
            updated_by: "sam".into(),
            updated_at_ms: 0,
            version: 1,
        }
    }

    #[test]
    fn investigators_search_only_open_assigned_unended_cases() {
        let open = case(CaseStatus::Open, &["bob", "alice"], 1_000);
        assert_eq!(open.search_refusal("alice", false, 999), None);
        assert_eq!(
            open.search_refusal("alice", false, 1_000),
            Some(CaseRefusal::Ended)
        );
        assert_eq!(
            open.search_refusal("eve", false, 10),
            Some(CaseRefusal::NotAssigned)
        );
        // A supervisor may, assigned or not, ended or not; but not under a closed case.
        assert_eq!(open.search_refusal("sam", true, 5_000), None);
        let closed = case(CaseStatus::Closed, &["alice"], 1_000);
        assert_eq!(
            closed.search_refusal("alice", false, 1),
            Some(CaseRefusal::Closed)
        );
        assert_eq!(
            closed.search_refusal("sam", true, 1),
            Some(CaseRefusal::Closed)
        );
    }

    #[test]
    fn holds_count_until_their_case_closes() {
        let mut other = case(CaseStatus::Closed, &[], 0);
        other.case_id = "C-2".into();
        let cases = vec![case(CaseStatus::Open, &[], 0), other];
        let hold = |case_id: &str, event_id: &str| Hold {
            case_id: case_id.into(),
            event_id: event_id.into(),
            placed_by: "sam".into(),
            placed_at_ms: 0,
        };
        let holds = [hold("C-1", "aa"), hold("C-2", "bb"), hold("C-9", "cc")];
        let held: Vec<String> = held_event_ids(&cases, &holds).into_iter().collect();
        assert_eq!(held, ["aa", "cc"]);
    }

    #[test]
    fn the_highest_version_wins_and_users_are_kept_sorted() {
        let mut v2 = case(CaseStatus::Closed, &[], 0);
        v2.version = 2;
        let v1 = case(CaseStatus::Open, &[], 0);
        let latest = latest_versions([v2.clone(), v1.clone()]);
        assert_eq!(latest, [v2.clone()]);
        assert_eq!(latest_versions([v1, v2.clone()]), [v2]);
        assert_eq!(
            normalize_users(["b".into(), " a ".into(), "b".into(), "".into()]),
            ["a", "b"]
        );
    }
}
