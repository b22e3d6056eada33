//! The query node's HTTP API (JSON, GeoJSON, PNG, JPEG), a thin layer over
//! [`QueryService`]: authentication, parameter parsing and rendering. Errors are JSON
//! `{"error": {"code", "message"}}` with the matching status.
//!
//! - `GET /v1/track[.geojson|.png]?plate=|subject_key=&from=&to=&case=&reason=[&fuzzy=true]`
//! - `GET /v1/passes?cameras=a,b|district=X&from=&to=&case=&reason=[&object_class=&limit=&after=]`
//!   `[&plate_color=&vehicle_color=&vehicle_type=&vehicle_brand=&direction=]` (names as in
//!   the answers, e.g. `plate_color=yellow_green&direction=east`; unknown: `invalid_class`)
//! - `GET /v1/snapshots/{event_id}.jpg?case=&reason=`
//! - `GET /v1/cameras/{camera_id}` (registry only; any role; not audited)
//! - `GET /v1/audit?case=|user=[&kind=&from=&to=&limit=&cursor=]` (supervisors: audit
//!   records newest first, a page at a time, with `chain`: the page's hashes recomputed
//!   and its links checked; the read is itself audited)
//! - `POST /v1/scene`, `/v1/series`, `/v1/cotravel` (JSON bodies, see [`analytics`]): who
//!   passed a scene, who was seen at several, who travelled with a target
//! - `/metrics`, `/healthz`; the workspace's pages, `/v1/whoami` and `/v1/basemap` are
//!   [`crate::web`]'s
//!
//! Times are unix milliseconds or RFC 3339 (`2025-11-26T08:00:00+08:00`); answers show them
//! in the configured zone as well.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use camtrail_common::http::ApiError;
use camtrail_model::audit::AuditRecord;
use camtrail_model::{CameraRegistry, Error, ErrorCode, EventId};
use camtrail_storage::{AUDIT_PAGE_DEFAULT, AuditFilter, AuditLog, PassFilter, Store};
use chrono::TimeZone;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::attributes::{
    self, AttributesJson, DIRECTIONS, PLATE_COLORS, VEHICLE_COLORS, VEHICLE_TYPES,
};
use crate::auth::Users;
use crate::render::geojson::track_geojson;
use crate::render::map::{MapBackground, MapText, render_track_map};
use crate::service::{
    AuditRequest, Caller, KeyMatch, PassesRequest, Place, Purpose, QueryError, QueryService,
    Subject, TrackAnswer, TrackRequest, format_cursor, parse_audit_cursor, parse_cursor,
    parse_object_class,
};
use crate::track::Track;
use crate::track::links::Link;
use crate::track::sighting::{DropReason, MatchKind};
use crate::track::trips::Trip;

mod analytics;
mod cases;
mod watchlist;

/// What the handlers share (the gRPC front end too).
pub struct HttpState<S, A> {
    /// The service.
    pub service: QueryService<S, A>,
    /// The registry's part of every track map, prepared once per registry.
    pub map: std::sync::RwLock<Arc<MapBackground>>,
    /// Who may call.
    pub users: Users,
    /// Display time zone.
    pub zone: chrono_tz::Tz,
    /// The workspace's settings (tile server, page policy).
    pub web: crate::web::WebSettings,
}

impl<S: Store, A: AuditLog> HttpState<S, A> {
    /// The map background of the registry in force.
    pub fn map(&self) -> Arc<MapBackground> {
        Arc::clone(
            &self
                .map
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    /// Answer later requests with `registry` (service joins and map backgrounds).
    pub fn replace_registry(&self, registry: Arc<CameraRegistry>) {
        let map = Arc::new(MapBackground::new(&registry));
        self.service.replace_registry(registry);
        *self
            .map
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = map;
    }
}

/// `2025-11-26 16:00:00` in `zone`.
pub fn format_time(ms: i64, zone: &chrono_tz::Tz) -> String {
    format_in(ms, zone, "%Y-%m-%d %H:%M:%S")
}

/// `ms` in `zone` by `pattern` (chrono's), or the number when the zone cannot place it.
fn format_in(ms: i64, zone: &chrono_tz::Tz, pattern: &str) -> String {
    match zone.timestamp_millis_opt(ms).single() {
        Some(time) => time.format(pattern).to_string(),
        None => ms.to_string(),
    }
}

/// `16:00:00` in `zone` (map labels).
fn clock_time(ms: i64, zone: &chrono_tz::Tz) -> String {
    format_in(ms, zone, "%H:%M:%S")
}

/// `11-26 16:00:00` in `zone` (labels of a track over several days).
fn date_clock_time(ms: i64, zone: &chrono_tz::Tz) -> String {
    format_in(ms, zone, "%m-%d %H:%M:%S")
}

/// Whether two instants fall on the same day in `zone`.
fn same_day(a_ms: i64, b_ms: i64, zone: &chrono_tz::Tz) -> bool {
    let day = |ms| {
        zone.timestamp_millis_opt(ms)
            .single()
            .map(|t| t.date_naive())
    };
    day(a_ms).is_some() && day(a_ms) == day(b_ms)
}

/// Unix ms, or RFC 3339.
pub fn parse_time(name: &'static str, text: Option<&str>) -> Result<i64, QueryError> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| Error::new(ErrorCode::MissingWindow, format!("{name} is required")))?;
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| time.timestamp_millis())
        .map_err(|_| {
            Error::new(
                ErrorCode::InvalidTime,
                format!("{name} must be unix milliseconds or RFC 3339"),
            )
        })
}

fn invalid_query(rejection: QueryRejection) -> QueryError {
    Error::new(ErrorCode::InvalidQuery, rejection.body_text())
}

/// The router of the API, merged with `/metrics` and `/healthz` by the node.
pub fn router<S: Store, A: AuditLog>(state: Arc<HttpState<S, A>>) -> Router {
    Router::new()
        .route("/v1/track", get(track_json::<S, A>))
        .route("/v1/track.geojson", get(track_geojson_handler::<S, A>))
        .route("/v1/track.png", get(track_png::<S, A>))
        .route("/v1/passes", get(passes::<S, A>))
        .route("/v1/snapshots/{file}", get(snapshot::<S, A>))
        .route("/v1/cameras/{camera_id}", get(camera::<S, A>))
        .route("/v1/audit", get(audit_list::<S, A>))
        .route("/v1/scene", post(analytics::scene::<S, A>))
        .route("/v1/series", post(analytics::series::<S, A>))
        .route("/v1/cotravel", post(analytics::cotravel::<S, A>))
        .route(
            "/v1/cases",
            get(cases::list::<S, A>).post(cases::open::<S, A>),
        )
        .route("/v1/cases/{case_id}/{change}", post(cases::change::<S, A>))
        .route(
            "/v1/watchlist",
            get(watchlist::list::<S, A>).post(watchlist::request::<S, A>),
        )
        .route(
            "/v1/watchlist/{entry_id}/{change}",
            post(watchlist::change::<S, A>),
        )
        .route("/v1/alerts/stream", get(watchlist::stream::<S, A>))
        .route("/v1/alerts", get(watchlist::hits::<S, A>))
        .route(
            "/v1/alerts/{entry_id}/{event_id}/{verdict}",
            post(watchlist::review::<S, A>),
        )
        .route(
            "/v1/holds",
            get(cases::list_holds::<S, A>).post(cases::place_holds::<S, A>),
        )
        .layer(axum::middleware::from_fn(reject_invalid_utf8))
        .with_state(state)
}

/// Refuse a request whose query string does not percent-decode to UTF-8 (the decoder of
/// the `Query` extractor would silently replace such bytes with U+FFFD).
async fn reject_invalid_utf8(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let query = request.uri().query().unwrap_or_default();
    if !decodes_to_utf8(query) {
        return ApiError(Error::new(
            ErrorCode::InvalidQuery,
            "the query string is not valid UTF-8 after percent-decoding",
        ))
        .into_response();
    }
    next.run(request).await
}

/// Whether every `&`/`=`-separated part of a query string percent-decodes to UTF-8.
pub fn decodes_to_utf8(query: &str) -> bool {
    query.split(['&', '=']).all(|part| {
        let bytes = part.as_bytes();
        let mut decoded = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = |b: u8| (b as char).to_digit(16);
            match bytes[i] {
                b'%' if i + 2 < bytes.len() => match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        decoded.push((high * 16 + low) as u8);
                        i += 3;
                    }
                    _ => {
                        decoded.push(b'%');
                        i += 1;
                    }
                },
                b'+' => {
                    decoded.push(b' ');
                    i += 1;
                }
                byte => {
                    decoded.push(byte);
                    i += 1;
                }
            }
        }
        std::str::from_utf8(&decoded).is_ok()
    })
}

pub(crate) fn caller<S, A>(
    state: &HttpState<S, A>,
    headers: &HeaderMap,
    addr: SocketAddr,
) -> Result<Caller, QueryError> {
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let principal = state
        .users
        .authenticate(authorization)
        .ok_or_else(|| Error::from_code(ErrorCode::Unauthenticated))?;
    Ok(Caller {
        principal: principal.clone(),
        client_addr: addr.to_string(),
    })
}

fn audit_header(record: &AuditRecord) -> (header::HeaderName, HeaderValue) {
    let value = format!("{}/{}", record.node_id, record.seq);
    (
        header::HeaderName::from_static("x-camtrail-audit"),
        HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("?")),
    )
}

/// Query parameters of `/v1/track*`.
#[derive(Debug, Deserialize)]
pub struct TrackQuery {
    plate: Option<String>,
    subject_key: Option<String>,
    from: Option<String>,
    to: Option<String>,
    case: Option<String>,
    reason: Option<String>,
    #[serde(default)]
    fuzzy: bool,
    /// Report stops at least this many minutes long (default: the node's `stop_min_ms`).
    stop_min_minutes: Option<f64>,
}

async fn run_track<S: Store, A: AuditLog>(
    state: &HttpState<S, A>,
    headers: &HeaderMap,
    addr: SocketAddr,
    query: Result<Query<TrackQuery>, QueryRejection>,
) -> Result<TrackAnswer, QueryError> {
    let caller = caller(state, headers, addr)?;
    let Query(query) = query.map_err(invalid_query)?;
    let purpose = Purpose::new(query.case.as_deref(), query.reason.as_deref())?;
    let subject = match (query.plate, query.subject_key) {
        (Some(plate), None) => Subject::Plate(plate),
        (None, Some(key)) => Subject::SubjectKey(key),
        _ => {
            return Err(Error::new(
                ErrorCode::InvalidSubject,
                "give exactly one of plate and subject_key",
            ));
        }
    };
    let request = TrackRequest {
        subject,
        from_ms: parse_time("from", query.from.as_deref())?,
        to_ms: parse_time("to", query.to.as_deref())?,
        fuzzy: query.fuzzy,
        stop_min_ms: query
            .stop_min_minutes
            .map(|minutes| {
                if minutes.is_finite() && minutes > 0.0 && minutes <= 1_440.0 {
                    Ok((minutes * 60_000.0).round().max(1.0) as i64)
                } else {
                    Err(Error::new(
                        ErrorCode::InvalidQuery,
                        "stop_min_minutes must be more than 0 and at most 1440",
                    ))
                }
            })
            .transpose()?,
        purpose,
    };
    state.service.track(&caller, request).await
}

/// The JSON form of a track answer.
/// The JSON answer of `/v1/track`, serialised straight from the track: building it as a
/// `serde_json::Value` first (a map allocation per object, every number and string copied)
/// was more than half of the query node's CPU per track in the issue-14 profile. Fields are
/// in alphabetical order, the order the `Value` form had.
#[derive(Serialize)]
pub struct TrackBody<'a> {
    asked: &'a str,
    audit: AuditRef<'a>,
    dropped: Vec<DroppedBody<'a>>,
    from: String,
    from_ms: i64,
    #[serde(flatten)]
    first_vehicle: VehicleBody<'a>,
    keys: &'a [KeyMatch],
    /// A cloned plate's second vehicle (the top-level sightings are then the first's).
    second_vehicle: Option<VehicleBody<'a>>,
    time_zone: &'a str,
    to: String,
    to_ms: i64,
    truncated: bool,
}

/// One vehicle's part of [`TrackBody`] (flattened into it for the first vehicle).
#[derive(Serialize)]
struct VehicleBody<'a> {
    impossible_hops: usize,
    links: &'a [Link],
    sightings: Vec<SightingBody<'a>>,
    stops: Vec<StopBody<'a>>,
    transitions: Vec<TransitionBody<'a>>,
    trips: &'a [Trip],
}

/// One stop of [`VehicleBody`]: sighting numbers from 1, local times.
#[derive(Serialize)]
struct StopBody<'a> {
    after_n: usize,
    before_n: usize,
    camera_after: &'a str,
    camera_before: &'a str,
    duration_ms: i64,
    from: String,
    from_ms: i64,
    moved_km: f64,
    to: String,
    to_ms: i64,
}

/// A sighting left out of [`TrackBody`], and why.
#[derive(Serialize)]
struct DroppedBody<'a> {
    /// For `attributed_to_look_alike`: the plate key it was attributed to.
    attributed_to: Option<&'a str>,
    camera_id: &'a str,
    captured_at_ms: i64,
    event_id: String,
    merged_into: Option<String>,
    reason: DropReason,
    time: String,
}

/// Which audit record released the answer.
#[derive(Serialize)]
struct AuditRef<'a> {
    hash: &'a str,
    node_id: &'a str,
    seq: u64,
}

/// One sighting of [`TrackBody`], numbered from 1, with its local time.
#[derive(Serialize)]
struct SightingBody<'a> {
    burst_count: u32,
    camera_id: &'a str,
    captured_at_ms: i64,
    district: &'a str,
    event_id: String,
    has_snapshot: bool,
    lat: f64,
    lon: f64,
    match_confidence: f32,
    match_kind: MatchKind,
    n: usize,
    plate: &'a str,
    road: &'a str,
    subject_key: &'a str,
    time: String,
    /// `direction`, `plate_char_confidence`, `plate_color`, `speed_kmh`, `vehicle_brand`,
    /// `vehicle_color`, `vehicle_type`: names, `null` when unknown.
    #[serde(flatten)]
    attributes: AttributesJson<'a>,
}

/// One change of district of [`TrackBody`].
#[derive(Serialize)]
struct TransitionBody<'a> {
    at_ms: i64,
    camera_id: &'a str,
    from_district: &'a str,
    from_n: usize,
    time: String,
    to_district: &'a str,
    to_n: usize,
}

/// The JSON answer of a track, in `zone`'s local time.
pub fn track_body<'a>(answer: &'a TrackAnswer, zone: &'a chrono_tz::Tz) -> TrackBody<'a> {
    let track = &answer.track;
    let dropped = track
        .dropped
        .iter()
        .map(|d| DroppedBody {
            attributed_to: d.attributed_to.as_deref(),
            camera_id: &d.camera_id,
            captured_at_ms: d.captured_at_ms,
            event_id: d.event_id.to_string(),
            merged_into: d.merged_into.map(|id| id.to_string()),
            reason: d.reason,
            time: format_time(d.captured_at_ms, zone),
        })
        .collect();
    TrackBody {
        asked: &answer.asked,
        audit: AuditRef {
            hash: &answer.audit.hash,
            node_id: &answer.audit.node_id,
            seq: answer.audit.seq,
        },
        dropped,
        from: format_time(answer.from_ms, zone),
        from_ms: answer.from_ms,
        first_vehicle: vehicle_body(track, zone),
        keys: &answer.keys,
        second_vehicle: track
            .second_vehicle
            .as_deref()
            .map(|second| vehicle_body(second, zone)),
        time_zone: zone.name(),
        to: format_time(answer.to_ms, zone),
        to_ms: answer.to_ms,
        truncated: track.truncated,
    }
}

/// One vehicle's sightings, numbered from 1, with links, trips and transitions.
fn vehicle_body<'a>(track: &'a Track, zone: &chrono_tz::Tz) -> VehicleBody<'a> {
    let sightings = track
        .sightings
        .iter()
        .enumerate()
        .map(|(index, s)| SightingBody {
            burst_count: s.burst_count,
            camera_id: &s.camera_id,
            captured_at_ms: s.captured_at_ms,
            district: &s.district,
            event_id: s.event_id.to_string(),
            has_snapshot: s.has_snapshot,
            lat: s.lat,
            lon: s.lon,
            match_confidence: s.match_confidence,
            match_kind: s.match_kind,
            n: index + 1,
            plate: &s.plate,
            road: &s.road,
            subject_key: &s.subject_key,
            time: format_time(s.captured_at_ms, zone),
            attributes: AttributesJson::new(&s.attributes, &s.plate_char_confidence),
        })
        .collect();
    let transitions = track
        .transitions
        .iter()
        .map(|t| TransitionBody {
            at_ms: t.at_ms,
            camera_id: &t.camera_id,
            from_district: &t.from_district,
            from_n: t.from_index + 1,
            time: format_time(t.at_ms, zone),
            to_district: &t.to_district,
            to_n: t.to_index + 1,
        })
        .collect();
    let stops = track
        .stops
        .iter()
        .map(|s| StopBody {
            after_n: s.after_index + 1,
            before_n: s.before_index + 1,
            camera_after: &s.camera_after,
            camera_before: &s.camera_before,
            duration_ms: s.duration_ms(),
            from: format_time(s.from_ms, zone),
            from_ms: s.from_ms,
            moved_km: s.moved_km,
            to: format_time(s.to_ms, zone),
            to_ms: s.to_ms,
        })
        .collect();
    VehicleBody {
        impossible_hops: track.impossible_hops(),
        links: &track.links,
        sightings,
        stops,
        transitions,
        trips: &track.trips,
    }
}

async fn track_json<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<TrackQuery>, QueryRejection>,
) -> Response {
    match run_track(&state, &headers, addr, query).await {
        Ok(answer) => (
            [audit_header(&answer.audit)],
            Json(track_body(&answer, &state.zone)),
        )
            .into_response(),
        Err(error) => ApiError(error).into_response(),
    }
}

async fn track_geojson_handler<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<TrackQuery>, QueryRejection>,
) -> Response {
    match run_track(&state, &headers, addr, query).await {
        Ok(answer) => {
            let zone = state.zone;
            let mut body = track_geojson(&answer.track, &state.service.registry(), |ms| {
                format_time(ms, &zone)
            });
            // What the export was made under (an RFC 7946 foreign member): a file in a
            // case folder says which case, why, and which audit record released it.
            if let Value::Object(fields) = &mut body {
                fields.insert(
                    "camtrail".into(),
                    json!({
                        "case": answer.audit.entry.case_id,
                        "reason": answer.audit.entry.reason,
                        "audit": {
                            "node_id": answer.audit.node_id,
                            "seq": answer.audit.seq,
                            "hash": answer.audit.hash,
                        },
                        "asked": answer.asked,
                        "from": format_time(answer.from_ms, &zone),
                        "to": format_time(answer.to_ms, &zone),
                        "time_zone": zone.name(),
                    }),
                );
            }
            (
                [
                    audit_header(&answer.audit),
                    (
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/geo+json"),
                    ),
                ],
                body.to_string(),
            )
                .into_response()
        }
        Err(error) => ApiError(error).into_response(),
    }
}

/// The PNG map of a track answer.
pub fn track_png_bytes(
    answer: &TrackAnswer,
    background: &MapBackground,
    registry: &CameraRegistry,
    zone: chrono_tz::Tz,
) -> Result<Vec<u8>, image::ImageError> {
    let text = MapText {
        title: format!("Track of {}", answer.asked),
        lines: vec![
            format!("From {}", format_time(answer.from_ms, &zone)),
            format!("To {}", format_time(answer.to_ms, &zone)),
            format!("Times in {}", zone.name()),
            format!(
                "Audit record {} #{}",
                answer.audit.node_id, answer.audit.seq
            ),
            format!("Case {}", answer.audit.entry.case_id),
            format!("Reason: {}", answer.audit.entry.reason),
        ],
        // A track over several days needs the date on its times.
        time_label: if same_day(
            answer
                .track
                .sightings
                .first()
                .map_or(answer.from_ms, |s| s.captured_at_ms),
            answer
                .track
                .sightings
                .last()
                .map_or(answer.from_ms, |s| s.captured_at_ms),
            &zone,
        ) {
            clock_time
        } else {
            date_clock_time
        },
        zone,
        attributed: answer
            .track
            .dropped
            .iter()
            .filter(|d| d.reason == DropReason::AttributedToLookAlike)
            .filter_map(|d| registry.get(&d.camera_id))
            .map(|camera| (camera.lat, camera.lon))
            .collect(),
    };
    let canvas = render_track_map(&answer.track, background, &text);
    let mut png = std::io::Cursor::new(Vec::new());
    canvas.image.write_to(&mut png, image::ImageFormat::Png)?;
    Ok(png.into_inner())
}

async fn track_png<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<TrackQuery>, QueryRejection>,
) -> Response {
    let answer = match run_track(&state, &headers, addr, query).await {
        Ok(answer) => answer,
        Err(error) => return ApiError(error).into_response(),
    };
    let audit = audit_header(&answer.audit);
    // Drawing and PNG encoding take tens of milliseconds of CPU: on the blocking pool, so
    // the runtime's workers keep answering other requests meanwhile.
    let rendering = Arc::clone(&state);
    let rendered = tokio::task::spawn_blocking(move || {
        track_png_bytes(
            &answer,
            &rendering.map(),
            &state.service.registry(),
            rendering.zone,
        )
    })
    .await;
    match rendered {
        Ok(Ok(png)) => (
            [
                audit,
                (header::CONTENT_TYPE, HeaderValue::from_static("image/png")),
            ],
            png,
        )
            .into_response(),
        Ok(Err(error)) => {
            ApiError(Error::new(ErrorCode::RenderFailed, error.to_string())).into_response()
        }
        Err(error) => {
            ApiError(Error::new(ErrorCode::RenderFailed, error.to_string())).into_response()
        }
    }
}

/// Query parameters of `/v1/passes`.
#[derive(Debug, Deserialize)]
pub struct PassesQuery {
    cameras: Option<String>,
    district: Option<String>,
    from: Option<String>,
    to: Option<String>,
    case: Option<String>,
    reason: Option<String>,
    object_class: Option<String>,
    plate_color: Option<String>,
    vehicle_color: Option<String>,
    vehicle_type: Option<String>,
    vehicle_brand: Option<String>,
    direction: Option<String>,
    limit: Option<usize>,
    after: Option<String>,
}

/// An attribute filter given by name (`blue`, `east`, ...); absent is no filter.
fn name_filter(
    table: &[(u8, &'static str)],
    field: &str,
    value: &Option<String>,
) -> Result<Option<u8>, QueryError> {
    value
        .as_deref()
        .map(|name| attributes::parse_name(table, field, name))
        .transpose()
}

async fn passes<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<PassesQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Query(query) = query.map_err(invalid_query)?;
        let purpose = Purpose::new(query.case.as_deref(), query.reason.as_deref())?;
        let place = match (query.cameras, query.district) {
            (Some(cameras), None) => Place::Cameras(
                cameras
                    .split(',')
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .map(String::from)
                    .collect(),
            ),
            (None, Some(district)) => Place::District(district),
            _ => {
                return Err(Error::new(
                    ErrorCode::InvalidPlace,
                    "give exactly one of cameras and district",
                ));
            }
        };
        let request = PassesRequest {
            place,
            from_ms: parse_time("from", query.from.as_deref())?,
            to_ms: parse_time("to", query.to.as_deref())?,
            filter: AttributeFilter {
                object_class: query.object_class,
                plate_color: query.plate_color,
                vehicle_color: query.vehicle_color,
                vehicle_type: query.vehicle_type,
                vehicle_brand: query.vehicle_brand,
                direction: query.direction,
            }
            .filter()?,
            limit: query.limit.unwrap_or(1_000),
            after: query.after.as_deref().map(parse_cursor).transpose()?,
            purpose,
        };
        state.service.passes(&caller, request).await
    }
    .await;
    match result {
        Ok(answer) => {
            let zone = state.zone;
            let registry = state.service.registry();
            let passes: Vec<Value> = answer
                .passes
                .iter()
                .map(|p| pass_json(p, &registry, &zone))
                .collect();
            let body = json!({
                "passes": passes,
                "next": answer.next.as_ref().map(format_cursor),
                "time_zone": zone.name(),
                "audit": { "node_id": answer.audit.node_id, "seq": answer.audit.seq },
            });
            ([audit_header(&answer.audit)], Json(body)).into_response()
        }
        Err(error) => ApiError(error).into_response(),
    }
}

/// One stored detection as the passes-like answers show it: joined with its camera's
/// district, its time in `zone`, its attributes by name.
fn pass_json(
    pass: &camtrail_storage::StoredSighting,
    registry: &CameraRegistry,
    zone: &chrono_tz::Tz,
) -> Value {
    let mut json = json!({
        "event_id": pass.event_id.to_string(),
        "captured_at_ms": pass.captured_at_ms,
        "time": format_time(pass.captured_at_ms, zone),
        "camera_id": pass.camera_id,
        "district": registry.get(&pass.camera_id).map(|c| c.district.as_str()),
        "subject_key": pass.subject_key,
        "plate": pass.plate,
        "has_snapshot": pass.has_snapshot,
    });
    if let Value::Object(fields) = &mut json {
        AttributesJson::new(&pass.attributes, &pass.plate_char_confidence).insert_into(fields);
    }
    json
}

/// Attribute filters by name (`blue`, `east`, ...), as `/v1/passes` and the broad searches
/// take them; absent is no filter.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub(crate) struct AttributeFilter {
    object_class: Option<String>,
    plate_color: Option<String>,
    vehicle_color: Option<String>,
    vehicle_type: Option<String>,
    vehicle_brand: Option<String>,
    direction: Option<String>,
}

impl AttributeFilter {
    pub(crate) fn filter(&self) -> Result<PassFilter, QueryError> {
        Ok(PassFilter {
            object_class: self
                .object_class
                .as_deref()
                .map(parse_object_class)
                .transpose()?,
            plate_color: name_filter(PLATE_COLORS, "plate_color", &self.plate_color)?,
            vehicle_color: name_filter(VEHICLE_COLORS, "vehicle_color", &self.vehicle_color)?,
            vehicle_type: name_filter(VEHICLE_TYPES, "vehicle_type", &self.vehicle_type)?,
            vehicle_brand: match &self.vehicle_brand {
                Some(brand) => attributes::parse_brand(brand)?,
                None => None,
            },
            direction: name_filter(DIRECTIONS, "direction", &self.direction)?,
        })
    }
}

/// Query parameters of `/v1/snapshots/...`.
#[derive(Debug, Deserialize)]
pub struct PurposeQuery {
    case: Option<String>,
    reason: Option<String>,
}

async fn snapshot<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(file): Path<String>,
    query: Result<Query<PurposeQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Query(query) = query.map_err(invalid_query)?;
        let purpose = Purpose::new(query.case.as_deref(), query.reason.as_deref())?;
        let hex_id = file.strip_suffix(".jpg").unwrap_or(&file);
        let mut bytes = [0u8; 16];
        hex::decode_to_slice(hex_id, &mut bytes)
            .map_err(|_| Error::new(ErrorCode::InvalidEventId, "event ids are 32 hex digits"))?;
        state
            .service
            .snapshot(&caller, EventId(bytes), purpose)
            .await
    }
    .await;
    match result {
        Ok((Some(snapshot), audit)) => (
            [
                audit_header(&audit),
                (header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg")),
            ],
            snapshot.jpeg,
        )
            .into_response(),
        Ok((None, audit)) => (
            [audit_header(&audit)],
            ApiError(Error::new(
                ErrorCode::NotFound,
                "no snapshot is stored for this event",
            )),
        )
            .into_response(),
        Err(error) => ApiError(error).into_response(),
    }
}

/// Query parameters of `/v1/audit`.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    case: Option<String>,
    user: Option<String>,
    kind: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn audit_list<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    query: Result<Query<AuditQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let caller = caller(&state, &headers, addr)?;
        let Query(query) = query.map_err(invalid_query)?;
        let given = |value: Option<String>| value.filter(|v| !v.is_empty());
        let time = |name, value: Option<String>| {
            given(value)
                .map(|text| parse_time(name, Some(&text)))
                .transpose()
        };
        let request = AuditRequest {
            filter: AuditFilter {
                case_id: given(query.case),
                user: given(query.user),
                kind: given(query.kind),
                from_ms: time("from", query.from)?,
                to_ms: time("to", query.to)?,
            },
            after: given(query.cursor)
                .as_deref()
                .map(parse_audit_cursor)
                .transpose()?,
            limit: query.limit.unwrap_or(AUDIT_PAGE_DEFAULT),
        };
        state.service.list_audit(&caller, request).await
    }
    .await;
    match result {
        Ok(answer) => (
            [audit_header(&answer.audit)],
            Json(json!({
                // The page's hashes recomputed and its links checked.
                "chain": camtrail_model::audit::check_page(&answer.records),
                "records": answer.records,
                "next_cursor": answer.next.as_ref().map(|c| c.encode()).unwrap_or_default(),
                "audit": { "node_id": answer.audit.node_id, "seq": answer.audit.seq },
            })),
        )
            .into_response(),
        Err(error) => ApiError(error).into_response(),
    }
}

async fn camera<S: Store, A: AuditLog>(
    State(state): State<Arc<HttpState<S, A>>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Path(camera_id): Path<String>,
) -> Response {
    if let Err(error) = caller(&state, &headers, addr) {
        return ApiError(error).into_response();
    }
    match state.service.registry().get(&camera_id) {
        Some(camera) => Json(json!({
            "camera_id": camera.camera_id,
            "district": camera.district,
            "lat": camera.lat,
            "lon": camera.lon,
            "heading_deg": camera.heading_deg,
            "road": camera.road,
            "gateway_id": camera.gateway_id,
        }))
        .into_response(),
        None => ApiError(Error::new(ErrorCode::NotFound, "no such camera")).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_strings_must_decode_to_utf8() {
        assert!(decodes_to_utf8("plate=%E7%B2%A4B12345&case=C-1"));
        assert!(decodes_to_utf8("a=100%&b=%2"));
        assert!(!decodes_to_utf8("plate=%FF%FE"));
        assert!(!decodes_to_utf8("plate=%E7%B2"));
        assert!(decodes_to_utf8(""));
    }

    #[test]
    fn times_parse_as_ms_or_rfc3339_and_show_in_the_zone() {
        assert_eq!(
            parse_time("from", Some("1764158400000")),
            Ok(1_764_158_400_000)
        );
        assert_eq!(
            parse_time("from", Some("2025-11-26T20:00:00+08:00")),
            Ok(1_764_158_400_000)
        );
        assert_eq!(
            parse_time("from", Some("yesterday")).expect_err("bad").code,
            ErrorCode::InvalidTime
        );
        assert_eq!(
            parse_time("to", None).expect_err("missing").code,
            ErrorCode::MissingWindow
        );
        let zone: chrono_tz::Tz = "Asia/Shanghai".parse().expect("zone");
        assert_eq!(format_time(1_764_158_400_000, &zone), "2025-11-26 20:00:00");
    }
}
