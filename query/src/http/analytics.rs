//! `POST /v1/scene`, `/v1/series`, `/v1/cotravel`: the broad searches over HTTP. Bodies are
//! JSON (areas and lists of scenes do not fit a query string); the token is in the
//! `Authorization` header as everywhere, the case and reason in the body. Times are unix ms
//! (numbers) or RFC 3339 (strings).
//!
//! ```json
//! POST /v1/scene
//! {"case": "C-1", "reason": "burglary at 3 Xinhu Lu",
//!  "area": {"kind": "circle", "lon": 114.05, "lat": 22.54, "radius_m": 800},
//!  "from": "2026-03-01T01:00:00+08:00", "to": "2026-03-01T03:00:00+08:00",
//!  "object_class": "vehicle", "limit": 100, "after": null}
//!
//! POST /v1/series
//! {"case": "C-1", "reason": "...", "scenes": [{"area": {...}, "from": ..., "to": ...}, ...],
//!  "min_scenes": 3, "fuzzy": true, "limit": 100}
//!
//! POST /v1/cotravel
//! {"case": "C-1", "reason": "...", "target": "粤B12345", "other": null,
//!  "from": ..., "to": ..., "min_cameras": 4, "delta_s": 60, "min_span_minutes": 10,
//!  "limit": 100}
//! ```
//!
//! Areas: `{"kind": "circle", "lon", "lat", "radius_m"}`, `{"kind": "polygon", "ring":
//! [[lon, lat], ...]}` or `{"kind": "cameras", "ids": [...]}`. Attribute filters as in
//! `/v1/passes`, by name.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use camtrail_common::http::ApiError;
use camtrail_model::{CameraRegistry, Error, ErrorCode};
use camtrail_storage::{AuditLog, Store, StoredSighting};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{AttributeFilter, HttpState, audit_header, caller, format_time, parse_time, pass_json};
use crate::analytics::{Area, Companion};
use crate::service::{
    CoTravelRequest, Purpose, QueryError, SceneRequest, SceneSpec, SeriesRequest,
    parse_vehicle_cursor,
};

/// A time as unix ms or RFC 3339 text.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Time {
    Ms(i64),
    Text(String),
}

pub(super) fn time(name: &'static str, value: Option<&Time>) -> Result<i64, QueryError> {
    match value {
        Some(Time::Ms(ms)) => Ok(*ms),
        Some(Time::Text(text)) => parse_time(name, Some(text)),
        None => parse_time(name, None),
    }
}

#[derive(Debug, Deserialize)]
struct SceneBody {
    area: Option<Area>,
    from: Option<Time>,
    to: Option<Time>,
}

impl SceneBody {
    fn spec(self, index: Option<usize>) -> Result<SceneSpec, QueryError> {
        let area = self.area.ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidArea,
                match index {
                    Some(i) => format!("scene {}: area is required", i + 1),
                    None => "area is required".into(),
                },
            )
        })?;
        Ok(SceneSpec {
            area,
            from_ms: time("from", self.from.as_ref())?,
            to_ms: time("to", self.to.as_ref())?,
        })
    }
}

#[derive(Debug, Deserialize)]
pub(super) struct SceneSearchBody {
    case: Option<String>,
    reason: Option<String>,
    #[serde(flatten)]
    scene: SceneBody,
    #[serde(flatten)]
    filter: AttributeFilter,
    limit: Option<usize>,
    after: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct SeriesBody {
    case: Option<String>,
    reason: Option<String>,
    #[serde(default)]
    scenes: Vec<SceneBody>,
    min_scenes: Option<usize>,
    #[serde(default)]
    fuzzy: bool,
    #[serde(flatten)]
    filter: AttributeFilter,
    limit: Option<usize>,
}

#[derive(Debug, Deserialize)]
pub(super) struct CoTravelBody {
    case: Option<String>,
    reason: Option<String>,
    target: Option<String>,
    other: Option<String>,
    from: Option<Time>,
    to: Option<Time>,
    min_cameras: Option<usize>,
    delta_s: Option<f64>,
    min_span_minutes: Option<f64>,
    limit: Option<usize>,
}

/// A body that is not the expected JSON: `invalid_query` with serde's sentence (it names the
/// field and the position, never echoes values).
pub(super) fn invalid_body(rejection: JsonRejection) -> QueryError {
    Error::new(ErrorCode::InvalidQuery, rejection.body_text())
}

fn sightings_json(
    sightings: &[StoredSighting],
    registry: &CameraRegistry,
    zone: &chrono_tz::Tz,
) -> Vec<Value> {
    sightings
        .iter()
        .map(|s| pass_json(s, registry, zone))
        .collect()
}

pub(super) fn respond(
    result: Result<(Value, camtrail_model::audit::AuditRecord), QueryError>,
) -> Response {
    match result {
        Ok((mut body, audit)) => {
            if let Value::Object(fields) = &mut body {
                fields.insert(
                    "audit".into(),
                    json!({ "node_id": audit.node_id, "seq": audit.seq, "hash": audit.hash }),
                );
            }
            ([audit_header(&audit)], Json(body)).into_response()
        }
        Err(error) => ApiError(error).into_response(),
    }
}

pub(super) async fn scene<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<SceneSearchBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let purpose = Purpose::new(body.case.as_deref(), body.reason.as_deref())?;
        let request = SceneRequest {
            filter: body.filter.filter()?,
            scene: body.scene.spec(None)?,
            limit: body.limit.unwrap_or(100),
            after: body
                .after
                .as_deref()
                .map(parse_vehicle_cursor)
                .transpose()?,
            purpose,
        };
        let answer = state.service.scene(&caller, request).await?;
        let (registry, zone) = (state.service.registry(), state.zone);
        let vehicles: Vec<Value> = answer
            .vehicles
            .iter()
            .map(|v| {
                json!({
                    "key": v.key,
                    "plate": v.plate,
                    "first_ms": v.first_ms,
                    "first": format_time(v.first_ms, &zone),
                    "sightings": sightings_json(&v.sightings, &registry, &zone),
                })
            })
            .collect();
        let body = json!({
            "cameras": answer.cameras,
            "vehicles": vehicles,
            "total_vehicles": answer.total_vehicles,
            "unkeyed_sightings": answer.unkeyed_sightings,
            "next": answer.next.as_ref().map(|c| c.encode()),
            "time_zone": zone.name(),
        });
        Ok((body, answer.audit))
    }
    .await;
    respond(result)
}

pub(super) async fn series<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<SeriesBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let purpose = Purpose::new(body.case.as_deref(), body.reason.as_deref())?;
        let request = SeriesRequest {
            filter: body.filter.filter()?,
            scenes: body
                .scenes
                .into_iter()
                .enumerate()
                .map(|(i, scene)| scene.spec(Some(i)))
                .collect::<Result<_, _>>()?,
            min_scenes: body.min_scenes,
            fuzzy: body.fuzzy,
            limit: body.limit.unwrap_or(100),
            purpose,
        };
        let answer = state.service.series(&caller, request).await?;
        let (registry, zone) = (state.service.registry(), state.zone);
        let hits: Vec<Value> = answer
            .hits
            .iter()
            .map(|hit| {
                let evidence: Vec<Value> = hit
                    .evidence
                    .iter()
                    .map(|e| {
                        json!({
                            "scene": e.scene,
                            "key": e.key,
                            "link": e.link.as_str(),
                            "offset": e.offset,
                            "sightings": sightings_json(&e.sightings, &registry, &zone),
                        })
                    })
                    .collect();
                json!({
                    "key": hit.key,
                    "plate": hit.plate,
                    "scenes": hit.scenes,
                    "fuzzy_links": hit.fuzzy_links,
                    "time_offset": hit.time_offset,
                    "evidence": evidence,
                })
            })
            .collect();
        let body = json!({
            "scene_cameras": answer.scene_cameras,
            "min_scenes": answer.min_scenes,
            "hits": hits,
            "total_hits": answer.total_hits,
            "time_zone": zone.name(),
        });
        Ok((body, answer.audit))
    }
    .await;
    respond(result)
}

fn companion_json(c: &Companion, registry: &CameraRegistry, zone: &chrono_tz::Tz) -> Value {
    let evidence: Vec<Value> = c
        .evidence
        .iter()
        .map(|e| {
            json!({
                "camera_id": e.target.camera_id,
                "dt_ms": e.dt_ms,
                "target": pass_json(&e.target, registry, zone),
                "other": pass_json(&e.other, registry, zone),
            })
        })
        .collect();
    json!({
        "key": c.key,
        "plate": c.plate,
        "shared_cameras": c.shared_cameras,
        "mean_abs_dt_ms": c.mean_abs_dt_ms,
        "span_ms": c.span_ms,
        "evidence": evidence,
    })
}

pub(super) async fn cotravel<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<CoTravelBody>, JsonRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Json(body) = body.map_err(invalid_body)?;
        let purpose = Purpose::new(body.case.as_deref(), body.reason.as_deref())?;
        let delta_ms = match body.delta_s {
            Some(seconds) if seconds.is_finite() && seconds > 0.0 && seconds < 1e9 => {
                Some((seconds * 1_000.0).round() as i64)
            }
            Some(_) => {
                return Err(Error::new(
                    ErrorCode::InvalidQuery,
                    "delta_s must be a positive number of seconds",
                ));
            }
            None => None,
        };
        let request = CoTravelRequest {
            target: body
                .target
                .ok_or_else(|| Error::new(ErrorCode::InvalidPlate, "target is required"))?,
            other: body.other,
            from_ms: time("from", body.from.as_ref())?,
            to_ms: time("to", body.to.as_ref())?,
            min_cameras: body.min_cameras,
            delta_ms,
            min_span_ms: match body.min_span_minutes {
                Some(minutes) if minutes.is_finite() && (0.0..=1_440.0).contains(&minutes) => {
                    Some((minutes * 60_000.0).round() as i64)
                }
                Some(_) => {
                    return Err(Error::new(
                        ErrorCode::InvalidQuery,
                        "min_span_minutes must be 0-1440",
                    ));
                }
                None => None,
            },
            limit: body.limit.unwrap_or(100),
            purpose,
        };
        let answer = state.service.cotravel(&caller, request).await?;
        let (registry, zone) = (state.service.registry(), state.zone);
        let body = json!({
            "target": answer.target_key,
            "other": answer.other_key,
            "target_sightings": answer.target_sightings,
            "min_cameras": answer.min_cameras,
            "delta_ms": answer.delta_ms,
            "min_span_ms": answer.min_span_ms,
            "together": answer.together,
            "companions": answer
                .companions
                .iter()
                .map(|c| companion_json(c, &registry, &zone))
                .collect::<Vec<_>>(),
            "total_companions": answer.total_companions,
            "time_zone": zone.name(),
        });
        Ok((body, answer.audit))
    }
    .await;
    respond(result)
}
