//! Watchlist entries as the query service governs them: an investigator (or supervisor)
//! requests an entry under a case they may search under; a supervisor who is not the
//! applicant approves it; the applicant or a supervisor revokes it with a reason. Every
//! change is an audit record written before it is stored, and the node's live matcher
//! ([`crate::alerts::Alerts`]) is rebuilt from the store after each one.

use camtrail_common::now_ms;
use camtrail_model::watchlist::{Entry, EntryError, EntryState, HitRecord, MatchKind, Outcome};
use camtrail_model::{Error, ErrorCode};
use camtrail_storage::{AuditLog, Store};
use serde_json::json;

use super::{Caller, Purpose, QueryError, QueryService, Subject, TrackRequest, store_failed};
use crate::alerts::Sighted;
use camtrail_model::audit::AuditRecord;

/// Asking for an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryRequest {
    /// `DispositionID`: 1–64 of `A–Z a–z 0–9 - _ . / :`.
    pub entry_id: String,
    /// `Title`.
    pub title: String,
    /// A plate, or a pattern with `?`/`*` and at least 5 literal characters.
    pub plate: String,
    /// Also alert on likely misreadings (exact plates only).
    pub fuzzy: bool,
    /// The case (the applicant must be allowed to search under it) and the reason.
    pub purpose: Purpose,
    /// 1 (highest) to 3.
    pub priority: u8,
    /// `BeginTime`, `EndTime` (at most 30 days apart), unix ms.
    pub valid_from_ms: i64,
    /// See `valid_from_ms`.
    pub valid_until_ms: i64,
    /// Only these cameras (registry ids).
    pub cameras: Vec<String>,
    /// Only these districts (registry names).
    pub districts: Vec<String>,
    /// Who is told of hits besides the applicant.
    pub recipients: Vec<String>,
    /// Where hits are also POSTed, signed (a host on the allow-list).
    pub webhook_url: Option<String>,
}

/// `[query.watchlist]`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WatchlistConfig {
    /// On approval, stored reads of this long before are checked against the entry and
    /// their hits sent (marked `past`), ms; 0: no past-read check.
    pub past_read_ms: i64,
    /// Hosts (`host` or `host:port`) entries may send webhooks to; empty: no webhooks.
    pub webhook_hosts: Vec<String>,
    /// The HMAC-SHA256 key webhooks are signed with (a file, 0600; required with hosts).
    pub webhook_secret_path: Option<std::path::PathBuf>,
    /// Attempts per hit before it is dead-lettered.
    pub webhook_attempts: u32,
    /// Wait before the second attempt, doubling after each, ms.
    pub webhook_backoff_ms: u64,
    /// One attempt's limit, ms.
    pub webhook_timeout_ms: u64,
    /// Undeliverable hits, one JSON line each (0600); unset: logged only.
    pub webhook_dead_letter_path: Option<std::path::PathBuf>,
}

impl Default for WatchlistConfig {
    fn default() -> Self {
        Self {
            past_read_ms: 86_400_000,
            webhook_hosts: Vec::new(),
            webhook_secret_path: None,
            webhook_attempts: 5,
            webhook_backoff_ms: 1_000,
            webhook_timeout_ms: 5_000,
            webhook_dead_letter_path: None,
        }
    }
}

/// Check a webhook URL: `http://` to a host (with its port, if given) on `allowed`.
fn check_webhook(url: &str, allowed: &[String]) -> Result<String, QueryError> {
    let refused = |why: &str| Error::new(ErrorCode::WebhookNotAllowed, why.to_string());
    let uri: hyper::Uri = url
        .trim()
        .parse()
        .map_err(|_| refused("the webhook URL cannot be parsed"))?;
    if uri.scheme_str() != Some("http") {
        return Err(refused(
            "webhooks are plain http:// to a receiver on the police network in this version",
        ));
    }
    let authority = uri
        .authority()
        .ok_or_else(|| refused("the webhook URL names no host"))?;
    if authority.as_str().contains('@') {
        return Err(refused("webhook URLs carry no user or password"));
    }
    if crate::webhooks::host_allowed(authority, allowed) {
        Ok(uri.to_string())
    } else {
        Err(refused(&format!(
            "host {} is not on the node's webhook allow-list (query.watchlist.webhook_hosts)",
            authority.host()
        )))
    }
}

/// An entry after a change, with the change's audit record.
#[derive(Debug, Clone)]
pub struct EntryAnswer {
    /// The entry as stored now.
    pub entry: Entry,
    /// The audit record of the change.
    pub audit: AuditRecord,
    /// On approval: hits the past-read check found and sent (`None`: not made).
    pub past_hits: Option<usize>,
}

fn invalid(message: impl Into<String>) -> QueryError {
    Error::new(ErrorCode::InvalidEntry, message)
}

fn entry_error(error: EntryError) -> QueryError {
    let code = match error {
        EntryError::PatternTooBroad => ErrorCode::PatternTooBroad,
        EntryError::Window => ErrorCode::WindowTooLong,
        EntryError::SelfApproval => ErrorCode::SelfApproval,
        EntryError::EmptyPlate
        | EntryError::FuzzyPattern
        | EntryError::Priority
        | EntryError::TooLong => ErrorCode::InvalidEntry,
    };
    Error::new(code, error.to_string())
}

fn entry_parameters(entry: &Entry) -> serde_json::Value {
    json!({
        "entry_id": entry.entry_id,
        "plate": entry.plate,
        "fuzzy": entry.fuzzy,
        "priority": entry.priority,
        "valid_from_ms": entry.valid_from_ms,
        "valid_until_ms": entry.valid_until_ms,
        "cameras": entry.cameras,
        "districts": entry.districts,
        "recipients": entry.recipients,
        "webhook_url": entry.webhook_url,
        "state": entry.state,
        "version": entry.version,
    })
}

impl<S: Store, A: AuditLog> QueryService<S, A> {
    /// Request an entry (investigators and supervisors, under a case they may search
    /// under). It matches nothing until another person approves it.
    pub async fn request_entry(
        &self,
        caller: &Caller,
        request: EntryRequest,
    ) -> Result<EntryAnswer, QueryError> {
        self.authorize_search(caller, &request.purpose).await?;
        // It lands in URLs, hit ids (`{entry}/{event}`) and the audit log: no `/`.
        let id = request.entry_id.trim().to_string();
        if id.is_empty()
            || id.len() > 64
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c))
        {
            return Err(invalid(
                "entry ids are 1-64 characters of A-Z, a-z, 0-9 and - _ . :",
            ));
        }
        // Hits go to people working the case, nobody else.
        let case = self
            .store
            .case(&request.purpose.case_id)
            .await
            .map_err(store_failed)?;
        if let Some(outsider) = request
            .recipients
            .iter()
            .find(|r| !case.as_ref().is_some_and(|c| c.is_assigned(r.trim())))
        {
            return Err(invalid(format!(
                "recipient {outsider} is not assigned to case {}",
                request.purpose.case_id
            )));
        }
        let title = request.title.trim().to_string();
        if title.is_empty()
            || title.chars().count() > 200
            || camtrail_model::text::has_hidden(&title)
        {
            return Err(invalid(
                "titles are 1-200 characters without control or invisible formatting characters",
            ));
        }
        let registry = self.registry();
        if let Some(unknown) = request.cameras.iter().find(|c| registry.get(c).is_none()) {
            return Err(Error::new(
                ErrorCode::UnknownCamera,
                format!("camera {unknown} is not in the registry"),
            ));
        }
        if let Some(unknown) = request
            .districts
            .iter()
            .find(|d| !registry.cameras().iter().any(|c| &c.district == *d))
        {
            return Err(Error::new(
                ErrorCode::UnknownDistrict,
                format!("no district {unknown} in the registry"),
            ));
        }
        let webhook_url = request
            .webhook_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
            .map(|url| check_webhook(url, &self.watchlist.webhook_hosts))
            .transpose()?;
        if request.cameras.len() > 2_000 || request.recipients.len() > 50 {
            return Err(invalid("at most 2,000 cameras and 50 recipients"));
        }
        let now = now_ms();
        let entry = Entry {
            entry_id: id,
            title,
            plate: request.plate,
            fuzzy: request.fuzzy,
            case_id: request.purpose.case_id.clone(),
            reason: request.purpose.reason.clone(),
            applicant: caller.principal.user.clone(),
            priority: request.priority,
            valid_from_ms: request.valid_from_ms,
            valid_until_ms: request.valid_until_ms,
            cameras: request.cameras,
            districts: request.districts,
            recipients: camtrail_model::case::normalize_users(request.recipients),
            webhook_url,
            state: EntryState::Requested,
            approved_by: None,
            revoked: None,
            updated_at_ms: now,
            version: 1,
        }
        .check()
        .map_err(entry_error)?;
        if entry.valid_until_ms <= now {
            return Err(Error::new(
                ErrorCode::InvalidWindow,
                "the entry would end before it is approved",
            ));
        }
        if self
            .store
            .entry(&entry.entry_id)
            .await
            .map_err(store_failed)?
            .is_some()
        {
            return Err(invalid(format!("entry {} exists", entry.entry_id)));
        }
        self.store_entry(caller, &request.purpose, "watchlist_request", entry)
            .await
    }

    /// Approve a requested entry (a supervisor other than the applicant).
    pub async fn approve_entry(
        &self,
        caller: &Caller,
        entry_id: &str,
        reason: &str,
    ) -> Result<EntryAnswer, QueryError> {
        if !caller.principal.role.is_supervisor() {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "only a supervisor may approve a watchlist entry",
            ));
        }
        let mut entry = self.find_entry(entry_id).await?;
        let purpose = Purpose::new(Some(&entry.case_id), Some(reason))?;
        // Only under a case that is still open.
        self.authorize_search(caller, &purpose).await?;
        if entry.state != EntryState::Requested {
            return Err(Error::new(
                ErrorCode::EntryNotPending,
                "only a requested entry can be approved",
            ));
        }
        entry.approve(&caller.principal.user).map_err(entry_error)?;
        entry.updated_at_ms = now_ms();
        let mut answer = self
            .store_entry(caller, &purpose, "watchlist_approve", entry)
            .await?;
        if self.watchlist.past_read_ms > 0 {
            match self.past_read(caller, &purpose, &answer.entry).await {
                Ok(hits) => answer.past_hits = Some(hits),
                Err(error) => {
                    tracing::warn!(%error, "the past-read check of an approved entry failed");
                }
            }
        }
        Ok(answer)
    }

    /// Check the stored reads of the last `past_read_ms` against a newly approved entry:
    /// audited like a track search of its plate (kind `watchlist_past_read`, the keys read
    /// and the hits as result count) before its hits are sent.
    async fn past_read(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        entry: &Entry,
    ) -> Result<usize, QueryError> {
        let to_ms = now_ms();
        let from_ms = to_ms - self.watchlist.past_read_ms;
        let request = TrackRequest {
            subject: Subject::Plate(entry.plate.clone()),
            from_ms,
            to_ms,
            fuzzy: entry.fuzzy,
            stop_min_ms: None,
            purpose: purpose.clone(),
        };
        let (_, keys) = self.resolve_keys(&request).await?;
        let names: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
        let rows = self
            .store
            .sightings(&names, from_ms, to_ms, self.limits.max_track_rows)
            .await
            .map_err(store_failed)?;
        let registry = self.registry();
        let hits: Vec<(Sighted, MatchKind, f32)> = rows
            .iter()
            .filter(|row| {
                let district = registry
                    .get(&row.camera_id)
                    .map_or("", |c| c.district.as_str());
                entry.in_scope(&row.camera_id, district)
            })
            .filter_map(|row| {
                let key = keys.iter().find(|k| k.key == row.subject_key)?;
                let kind = match key.kind {
                    crate::track::MatchKind::Exact => MatchKind::Exact,
                    crate::track::MatchKind::Fuzzy => MatchKind::Fuzzy,
                    crate::track::MatchKind::Pattern => MatchKind::Pattern,
                };
                let sighted = Sighted {
                    event_id: row.event_id.to_hex(),
                    subject_key: row.subject_key.clone(),
                    camera_id: row.camera_id.clone(),
                    captured_at_ms: row.captured_at_ms,
                    has_snapshot: row.has_snapshot,
                };
                Some((sighted, kind, key.confidence))
            })
            .collect();
        self.write_audit(
            caller,
            purpose,
            "watchlist_past_read",
            json!({
                "entry_id": entry.entry_id,
                "from_ms": from_ms,
                "to_ms": to_ms,
                "keys": names,
            }),
            hits.len() as u64,
        )
        .await?;
        for alert in self.alerts.announce_past(entry, &hits) {
            match self.store.put_hit(&HitRecord::new((*alert).clone())).await {
                Ok(()) | Err(camtrail_storage::StorageError::Conflict { .. }) => {}
                Err(error) => tracing::warn!(%error, "a past hit was sent but not stored"),
            }
        }
        Ok(hits.len())
    }

    /// The entry `entry_id` if `caller` may see its hits (a supervisor, its applicant or a
    /// recipient).
    async fn entry_for_hits(&self, caller: &Caller, entry_id: &str) -> Result<Entry, QueryError> {
        Self::require_search(caller)?;
        let entry = self.find_entry(entry_id).await?;
        let user = &caller.principal.user;
        if caller.principal.role.is_supervisor() {
            return Ok(entry);
        }
        if &entry.applicant == user || entry.recipients.contains(user) {
            // And still working the case (assigned, open, not ended).
            let purpose = Purpose {
                case_id: entry.case_id.clone(),
                reason: String::new(),
            };
            self.require_case(caller, &purpose).await?;
            Ok(entry)
        } else {
            Err(Error::new(
                ErrorCode::Forbidden,
                "only the entry's applicant, recipients and supervisors see its hits",
            ))
        }
    }

    /// The hits of an entry with their reviews; audited (kind `alert_read`, under the
    /// entry's case) before they leave: they are sightings of a plate.
    pub async fn list_hits(
        &self,
        caller: &Caller,
        entry_id: &str,
        reason: &str,
    ) -> Result<(Vec<HitRecord>, AuditRecord), QueryError> {
        let entry = self.entry_for_hits(caller, entry_id).await?;
        let purpose = Purpose::new(Some(&entry.case_id), Some(reason))?;
        let hits: Vec<HitRecord> = self
            .store
            .hits(entry_id)
            .await
            .map_err(store_failed)?
            .into_iter()
            .filter(|h| h.alert.entry_id == entry.entry_id)
            .collect();
        let audit = self
            .write_audit(
                caller,
                &purpose,
                "alert_read",
                json!({ "entry_id": entry_id }),
                hits.len() as u64,
            )
            .await?;
        Ok((hits, audit))
    }

    /// Record what a person saw in a hit's snapshot: confirmed (the listed vehicle) or
    /// rejected (a misread, a look-alike), with the reason; audited (`alert_confirm`,
    /// `alert_reject`). A hit is reviewed once.
    pub async fn review_hit(
        &self,
        caller: &Caller,
        hit_id: &str,
        confirmed: bool,
        reason: &str,
    ) -> Result<(HitRecord, AuditRecord), QueryError> {
        let entry_id = hit_id.rsplit_once('/').map_or(hit_id, |(entry, _)| entry);
        let entry = self.entry_for_hits(caller, entry_id).await?;
        let purpose = Purpose::new(Some(&entry.case_id), Some(reason))?;
        let mut hit = self
            .store
            .hit(hit_id)
            .await
            .map_err(store_failed)?
            .filter(|h| h.alert.entry_id == entry.entry_id)
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such hit"))?;
        if hit.outcome != Outcome::Unconfirmed {
            return Err(Error::new(
                ErrorCode::EntryNotPending,
                "the hit was reviewed already",
            ));
        }
        let kind = if confirmed {
            "alert_confirm"
        } else {
            "alert_reject"
        };
        let audit = self
            .write_audit(
                caller,
                &purpose,
                kind,
                json!({
                    "hit_id": hit.hit_id,
                    "entry_id": entry.entry_id,
                    "event_id": hit.alert.event_id,
                    "match": hit.alert.kind,
                }),
                1,
            )
            .await?;
        hit.outcome = if confirmed {
            Outcome::Confirmed
        } else {
            Outcome::Rejected
        };
        hit.reviewed_by = Some(caller.principal.user.clone());
        hit.review_reason = Some(purpose.reason.clone());
        hit.reviewed_at_ms = Some(now_ms());
        hit.version += 1;
        self.store.put_hit(&hit).await.map_err(|error| {
            Error::new(
                error.code(),
                "the review was audited but could not be stored; read the hit again and retry",
            )
        })?;
        Ok((hit, audit))
    }

    /// Revoke an entry (its applicant or a supervisor), with a reason.
    pub async fn revoke_entry(
        &self,
        caller: &Caller,
        entry_id: &str,
        reason: &str,
    ) -> Result<EntryAnswer, QueryError> {
        let mut entry = self.find_entry(entry_id).await?;
        if !caller.principal.role.is_supervisor() && caller.principal.user != entry.applicant {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "only the applicant or a supervisor may revoke an entry",
            ));
        }
        let purpose = Purpose::new(Some(&entry.case_id), Some(reason))?;
        if entry.state == EntryState::Revoked {
            return Err(Error::new(
                ErrorCode::EntryNotPending,
                "the entry is revoked already",
            ));
        }
        entry.state = EntryState::Revoked;
        entry.revoked = Some((caller.principal.user.clone(), purpose.reason.clone()));
        entry.updated_at_ms = now_ms();
        entry.version += 1;
        self.store_entry(caller, &purpose, "watchlist_revoke", entry)
            .await
    }

    /// The entries a caller may see: every entry for a supervisor; for others those they
    /// applied for or receive hits of.
    pub async fn list_entries(&self, caller: &Caller) -> Result<Vec<Entry>, QueryError> {
        Self::require_search(caller)?;
        let user = &caller.principal.user;
        let supervisor = caller.principal.role.is_supervisor();
        Ok(self
            .store
            .entries()
            .await
            .map_err(store_failed)?
            .into_iter()
            .filter(|e| supervisor || &e.applicant == user || e.recipients.contains(user))
            .collect())
    }

    /// Load the stored entries into the live matcher (at start, after every change of an
    /// entry and when a case closes): those of closed cases are left out.
    pub async fn reload_entries(&self) -> Result<usize, QueryError> {
        let entries = camtrail_storage::watchlist::entries_in_force(&self.store)
            .await
            .map_err(store_failed)?;
        let count = entries.len();
        self.alerts.replace_entries(entries);
        Ok(count)
    }

    async fn find_entry(&self, entry_id: &str) -> Result<Entry, QueryError> {
        self.store
            .entry(entry_id)
            .await
            .map_err(store_failed)?
            .ok_or_else(|| Error::new(ErrorCode::NotFound, "no such watchlist entry"))
    }

    /// Audit, store, rebuild the matcher.
    async fn store_entry(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        kind: &str,
        entry: Entry,
    ) -> Result<EntryAnswer, QueryError> {
        let audit = self
            .write_audit(caller, purpose, kind, entry_parameters(&entry), 1)
            .await?;
        self.store.put_entry(&entry).await.map_err(|error| {
            tracing::error!(%error, kind, "storing a watchlist change failed after its audit record");
            Error::new(
                error.code(),
                "the change was audited but could not be stored; read the entry again and retry",
            )
        })?;
        if let Err(error) = self.reload_entries().await {
            tracing::warn!(%error, "the live matcher keeps the previous entries until the next change");
        }
        Ok(EntryAnswer {
            entry,
            audit,
            past_hits: None,
        })
    }
}
