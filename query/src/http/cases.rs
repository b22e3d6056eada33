//! The case registry over HTTP. Supervisors open and change cases and place legal holds;
//! investigators list the cases assigned to them (the case picker). Bodies are JSON; times
//! are unix ms or RFC 3339; every change needs a `reason` and answers with its audit record.
//!
//! ```json
//! POST /v1/cases
//! {"case": "C-2026-0042", "title": "robbery, Xinhu Lu", "category": "robbery",
//!  "assigned": ["alice", "bob"], "ends": "2026-03-01T00:00:00+08:00", "reason": "..."}
//! GET  /v1/cases?status=open
//! POST /v1/cases/C-2026-0042/assign  {"add": ["carol"], "remove": ["bob"], "reason": "..."}
//! POST /v1/cases/C-2026-0042/extend  {"ends": "2026-05-01T00:00:00+08:00", "reason": "..."}
//! POST /v1/cases/C-2026-0042/close   {"reason": "..."}
//! POST /v1/holds  {"case": "C-2026-0042", "event_ids": ["0f1e…"], "reason": "exported for court"}
//! GET  /v1/holds?case=C-2026-0042
//! ```

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use camtrail_common::http::ApiError;
use camtrail_model::case::{Case, CaseStatus, Hold};
use camtrail_model::{Error, ErrorCode};
use camtrail_storage::{AuditLog, Store};
use serde::Deserialize;
use serde_json::{Value, json};

use super::analytics::{Time, invalid_body, respond, time};
use super::{HttpState, caller, format_time, invalid_query};
use crate::service::{CaseChange, OpenCase, QueryError};

/// A case as the API shows it: its fields and its times in the node's zone.
pub(crate) fn case_json(case: &Case, zone: &chrono_tz::Tz) -> Value {
    json!({
        "case": case.case_id,
        "title": case.title,
        "category": case.category,
        "assigned": case.assigned,
        "status": case.status.as_str(),
        "opened_by": case.opened_by,
        "opened_at_ms": case.opened_at_ms,
        "opened": format_time(case.opened_at_ms, zone),
        "ends_at_ms": case.ends_at_ms,
        "ends": format_time(case.ends_at_ms, zone),
        "updated_by": case.updated_by,
        "updated_at_ms": case.updated_at_ms,
        "version": case.version,
    })
}

fn hold_json(hold: &Hold, zone: &chrono_tz::Tz) -> Value {
    json!({
        "case": hold.case_id,
        "event_id": hold.event_id,
        "placed_by": hold.placed_by,
        "placed_at_ms": hold.placed_at_ms,
        "placed": format_time(hold.placed_at_ms, zone),
    })
}

/// Body of `POST /v1/cases`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct OpenBody {
    case: Option<String>,
    #[serde(default)]
    title: String,
    #[serde(default)]
    category: String,
    #[serde(default)]
    assigned: Vec<String>,
    ends: Option<Time>,
    reason: Option<String>,
}

pub(super) async fn open<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<OpenBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let request = OpenCase {
            case_id: body.case.unwrap_or_default(),
            title: body.title,
            category: body.category,
            assigned: body.assigned,
            ends_at_ms: time("ends", body.ends.as_ref())?,
            reason: body.reason.unwrap_or_default(),
        };
        let answer = state.service.open_case(&caller, request).await?;
        Ok((case_json(&answer.case, &state.zone), answer.audit))
    }
    .await;
    respond(result)
}

/// Body of `POST /v1/cases/{case}/{assign|extend|close}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct ChangeBody {
    #[serde(default)]
    add: Vec<String>,
    #[serde(default)]
    remove: Vec<String>,
    ends: Option<Time>,
    reason: Option<String>,
}

pub(super) async fn change<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path((case_id, change)): Path<(String, String)>,
    body: Result<Json<ChangeBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let change = match change.as_str() {
            "assign" => CaseChange::Assign {
                add: body.add,
                remove: body.remove,
            },
            "extend" => CaseChange::Extend {
                ends_at_ms: time("ends", body.ends.as_ref())?,
            },
            "close" => CaseChange::Close,
            _ => {
                return Err(Error::new(
                    ErrorCode::NotFound,
                    "a case change is assign, extend or close",
                ));
            }
        };
        let reason = body.reason.unwrap_or_default();
        let answer = state
            .service
            .change_case(&caller, &case_id, change, &reason)
            .await?;
        Ok((case_json(&answer.case, &state.zone), answer.audit))
    }
    .await;
    respond(result)
}

/// Query of `GET /v1/cases`.
#[derive(Debug, Deserialize)]
pub(super) struct ListQuery {
    status: Option<String>,
}

pub(super) async fn list<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Response {
    let result: Result<Value, QueryError> = async {
        let caller = caller(&state, &headers, addr)?;
        let Query(query) = query.map_err(invalid_query)?;
        let status =
            match query.status.as_deref().filter(|s| !s.is_empty()) {
                None => None,
                Some(name) => Some(CaseStatus::parse(name).ok_or_else(|| {
                    Error::new(ErrorCode::InvalidQuery, "status is open or closed")
                })?),
            };
        let cases = state.service.list_cases(&caller, status).await?;
        Ok(json!({
            "cases": cases.iter().map(|c| case_json(c, &state.zone)).collect::<Vec<_>>(),
            "categories": state.service.case_config().categories,
            "max_days": state.service.case_config().max_days,
            "time_zone": state.zone.name(),
        }))
    }
    .await;
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => ApiError(error).into_response(),
    }
}

/// Body of `POST /v1/holds`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct HoldBody {
    case: Option<String>,
    #[serde(default)]
    event_ids: Vec<String>,
    reason: Option<String>,
}

pub(super) async fn place_holds<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<HoldBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let answer = state
            .service
            .place_holds(
                &caller,
                body.case.as_deref().unwrap_or_default(),
                &body.event_ids,
                body.reason.as_deref().unwrap_or_default(),
            )
            .await?;
        let holds: Vec<Value> = answer
            .holds
            .iter()
            .map(|h| hold_json(h, &state.zone))
            .collect();
        Ok((json!({ "holds": holds }), answer.audit))
    }
    .await;
    respond(result)
}

/// Query of `GET /v1/holds`.
#[derive(Debug, Deserialize)]
pub(super) struct HoldsQuery {
    case: Option<String>,
}

pub(super) async fn list_holds<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<HoldsQuery>, QueryRejection>,
) -> Response {
    let result: Result<Value, QueryError> = async {
        let caller = caller(&state, &headers, addr)?;
        let Query(query) = query.map_err(invalid_query)?;
        let case = query.case.filter(|c| !c.is_empty());
        let holds = state.service.list_holds(&caller, case.as_deref()).await?;
        Ok(json!({
            "holds": holds.iter().map(|h| hold_json(h, &state.zone)).collect::<Vec<_>>(),
        }))
    }
    .await;
    match result {
        Ok(body) => Json(body).into_response(),
        Err(error) => ApiError(error).into_response(),
    }
}
