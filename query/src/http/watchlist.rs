//! Watchlists over HTTP: entries (request, approve, revoke, list) and the live hits as
//! Server-Sent Events. Bodies are JSON; times unix ms or RFC 3339.
//!
//! ```json
//! POST /v1/watchlist  {"entry_id": "WL-0042", "title": "stolen white SUV", "plate": "粤B12345",
//!                      "fuzzy": true, "case": "C-2026-0042", "reason": "...", "priority": 1,
//!                      "from": "...", "to": "...", "cameras": [], "districts": ["Futian"],
//!                      "recipients": ["ivy"]}
//! POST /v1/watchlist/WL-0042/approve  {"reason": "..."}   (a supervisor, not the applicant)
//! POST /v1/watchlist/WL-0042/revoke   {"reason": "..."}
//! GET  /v1/watchlist
//! GET  /v1/alerts/stream              (text/event-stream: `event: alert`, JSON data)
//! GET  /v1/alerts?entry=WL-0042&reason=...            (stored hits and their reviews)
//! POST /v1/alerts/WL-0042/{event_id}/confirm  {"reason": "snapshot shows the SUV"}
//! POST /v1/alerts/WL-0042/{event_id}/reject   {"reason": "misread: 粤B17345"}
//! ```

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use camtrail_common::http::ApiError;
use camtrail_model::watchlist::Entry;
use camtrail_model::{Error, ErrorCode};
use camtrail_storage::{AuditLog, Store};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio_stream::StreamExt;

use super::analytics::{Time, invalid_body, respond, time};
use super::{HttpState, caller, format_time, invalid_query};
use crate::alerts::Live;
use crate::service::{EntryRequest, Purpose, QueryError};

fn entry_json(entry: &Entry, zone: &chrono_tz::Tz, now_ms: i64) -> Value {
    json!({
        "entry_id": entry.entry_id,
        "title": entry.title,
        "plate": entry.plate,
        "fuzzy": entry.fuzzy,
        "case": entry.case_id,
        "reason": entry.reason,
        "applicant": entry.applicant,
        "priority": entry.priority,
        "from_ms": entry.valid_from_ms,
        "from": format_time(entry.valid_from_ms, zone),
        "to_ms": entry.valid_until_ms,
        "to": format_time(entry.valid_until_ms, zone),
        "cameras": entry.cameras,
        "districts": entry.districts,
        "recipients": entry.recipients,
        "webhook_url": entry.webhook_url,
        "state": entry.state,
        "status": entry.status(now_ms),
        "approved_by": entry.approved_by,
        "revoked_by": entry.revoked.as_ref().map(|(by, _)| by),
        "revoked_reason": entry.revoked.as_ref().map(|(_, why)| why),
        "version": entry.version,
    })
}

/// Body of `POST /v1/watchlist`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestBody {
    #[serde(default)]
    entry_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    plate: String,
    #[serde(default)]
    fuzzy: bool,
    case: Option<String>,
    reason: Option<String>,
    priority: Option<u8>,
    from: Option<Time>,
    to: Option<Time>,
    #[serde(default)]
    cameras: Vec<String>,
    #[serde(default)]
    districts: Vec<String>,
    #[serde(default)]
    recipients: Vec<String>,
    webhook_url: Option<String>,
}

pub(super) async fn request<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<RequestBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let request = EntryRequest {
            entry_id: body.entry_id,
            title: body.title,
            plate: body.plate,
            fuzzy: body.fuzzy,
            purpose: Purpose::new(body.case.as_deref(), body.reason.as_deref())?,
            priority: body.priority.unwrap_or(2),
            valid_from_ms: time("from", body.from.as_ref())?,
            valid_until_ms: time("to", body.to.as_ref())?,
            cameras: body.cameras,
            districts: body.districts,
            recipients: body.recipients,
            webhook_url: body.webhook_url,
        };
        let answer = state.service.request_entry(&caller, request).await?;
        let now = camtrail_common::now_ms();
        Ok((entry_json(&answer.entry, &state.zone, now), answer.audit))
    }
    .await;
    respond(result)
}

/// Body of `POST /v1/watchlist/{id}/{approve|revoke}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeBody {
    reason: Option<String>,
}

pub(super) async fn change<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((entry_id, change)): Path<(String, String)>,
    body: Result<Json<ChangeBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let reason = body.reason.unwrap_or_default();
        let answer = match change.as_str() {
            "approve" => {
                state
                    .service
                    .approve_entry(&caller, &entry_id, &reason)
                    .await?
            }
            "revoke" => {
                state
                    .service
                    .revoke_entry(&caller, &entry_id, &reason)
                    .await?
            }
            _ => {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    "a watchlist change is approve or revoke",
                ));
            }
        };
        let now = camtrail_common::now_ms();
        let mut body = entry_json(&answer.entry, &state.zone, now);
        body["past_hits"] = json!(answer.past_hits);
        Ok((body, answer.audit))
    }
    .await;
    respond(result)
}

pub(super) async fn list<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let result: Result<Value, QueryError> = async {
        let caller = caller(&state, &headers, addr)?;
        let entries = state.service.list_entries(&caller).await?;
        let now = camtrail_common::now_ms();
        Ok(json!({
            "entries": entries.iter().map(|e| entry_json(e, &state.zone, now)).collect::<Vec<_>>(),
            "time_zone": state.zone.name(),
        }))
    }
    .await;
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => ApiError(error).into_response(),
    }
}

/// `GET /v1/alerts/stream`: every hit from now on that the caller may see (supervisors:
/// all; others: the entries they applied for or receive), as `event: alert` with the hit
/// as JSON; `event: lagged` says how many a slow reader missed.
pub(super) async fn stream<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
) -> Response {
    let caller = match caller(&state, &headers, addr) {
        Ok(caller) if caller.principal.role.may_search() => caller,
        Ok(caller) => {
            return ApiError(Error::new(
                ErrorCode::Forbidden,
                format!("role {} receives no alerts", caller.principal.role.as_str()),
            ))
            .into_response();
        }
        Err(error) => return ApiError(error).into_response(),
    };
    let supervisor = caller.principal.role.is_supervisor();
    let user = caller.principal.user;
    let zone = state.zone;
    let events = state.service.alerts().live().filter_map(
        move |received| -> Option<Result<Event, Infallible>> {
            match received {
                Live::Alert(alert) if supervisor || alert.audience.contains(&user) => {
                    let mut data = serde_json::to_value(&*alert).unwrap_or(Value::Null);
                    data["captured"] = json!(format_time(alert.captured_at_ms, &zone));
                    Some(Ok(Event::default().event("alert").data(data.to_string())))
                }
                Live::Alert(_) => None,
                Live::Missed(missed) => Some(Ok(Event::default()
                    .event("lagged")
                    .data(json!({ "missed": missed }).to_string()))),
            }
        },
    );
    Sse::new(events)
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// Query of `GET /v1/alerts`.
#[derive(Debug, Deserialize)]
pub(super) struct HitsQuery {
    entry: Option<String>,
    reason: Option<String>,
}

fn hit_json(hit: &camtrail_model::watchlist::HitRecord, zone: &chrono_tz::Tz) -> Value {
    let mut body = serde_json::to_value(hit).unwrap_or(Value::Null);
    body["captured"] = json!(format_time(hit.alert.captured_at_ms, zone));
    body
}

pub(super) async fn hits<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<HitsQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Query(query) = query.map_err(invalid_query)?;
        let entry = query
            .entry
            .filter(|e| !e.is_empty())
            .ok_or_else(|| Error::new(ErrorCode::InvalidQuery, "entry is required"))?;
        let (hits, audit) = state
            .service
            .list_hits(&caller, &entry, query.reason.as_deref().unwrap_or_default())
            .await?;
        let hits: Vec<Value> = hits.iter().map(|h| hit_json(h, &state.zone)).collect();
        Ok((
            json!({ "hits": hits, "time_zone": state.zone.name() }),
            audit,
        ))
    }
    .await;
    respond(result)
}

pub(super) async fn review<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((entry_id, event_id, verdict)): Path<(String, String, String)>,
    body: Result<Json<ChangeBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let confirmed = match verdict.as_str() {
            "confirm" => true,
            "reject" => false,
            _ => {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    "a hit is confirmed or rejected",
                ));
            }
        };
        let (hit, audit) = state
            .service
            .review_hit(
                &caller,
                &format!("{entry_id}/{event_id}"),
                confirmed,
                body.reason.as_deref().unwrap_or_default(),
            )
            .await?;
        Ok((hit_json(&hit, &state.zone), audit))
    }
    .await;
    respond(result)
}
