//! The query service, independent of transport: checks who asks and why, bounds what they
//! may ask, reads storage, reconstructs tracks, and writes the audit record before any
//! result is handed back (ARCHITECTURE.md, Accountability). HTTP (`crate::http`) is a thin layer
//! over it; so is any other front end.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Instant;

use camtrail_common::now_ms;
use camtrail_model::audit::{AuditEntry, AuditRecord};
use camtrail_model::{CameraRegistry, Error, ErrorCode, EventId, ObjectClass, plate};
use camtrail_storage::{
    AUDIT_PAGE_MAX, AuditCursor, AuditFilter, AuditLog, PassCursor, PassFilter, StorageError,
    Store, StoredSighting, StoredSnapshot,
};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::analytics::CameraIndex;
use crate::attributes::{DIRECTIONS, PLATE_COLORS, VEHICLE_COLORS, VEHICLE_TYPES};
use crate::auth::Principal;
use crate::metrics::QueryMetrics;
use crate::track::stops::find_stops;
use crate::track::{MatchKind, RawSighting, Track, TrackBuilder, TrackParams, pattern_to_like};

mod analytics;
mod cases;
mod watchlist;

pub use watchlist::{EntryAnswer, EntryRequest, WatchlistConfig};

pub use cases::{CaseAnswer, CaseChange, CaseConfig, HoldAnswer, OpenCase};

pub use analytics::{
    CoTravelAnswer, CoTravelRequest, SceneAnswer, SceneRequest, SceneSpec, SeriesAnswer,
    SeriesRequest,
};

/// Bounds on what may be asked. Defaults follow national ANPR practice: broad searches need
/// a supervisor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QueryLimits {
    /// Longest track window anyone may ask, ms (default 31 days).
    pub max_track_window_ms: i64,
    /// A track window starting longer ago than this needs a supervisor, ms (default 90 days).
    pub supervisor_track_age_ms: i64,
    /// A passes window longer than this needs a supervisor, ms (default 2 h).
    pub supervisor_passes_window_ms: i64,
    /// Longest passes window anyone may ask, ms (default 7 days).
    pub max_passes_window_ms: i64,
    /// Most cameras one passes query may name (default 2,000).
    pub max_cameras: usize,
    /// Largest passes page (default 10,000, as query.proto documents).
    pub max_passes_page: usize,
    /// Most misreadings of a plate looked up with fuzzy matching (default 400).
    pub max_fuzzy_variants: usize,
    /// Most keys a wildcard pattern may match (default 200).
    pub max_pattern_keys: usize,
    /// Most stored sightings read for one track (default 100,000).
    pub max_track_rows: usize,
    /// Scene areas reaching farther than this from their centre need a supervisor, m
    /// (default 1,500).
    pub scene_radius_m: f64,
    /// Nobody may search a scene area reaching farther than this, m (default 10,000).
    pub max_scene_radius_m: f64,
    /// Scene windows longer than this need a supervisor, ms (default 2 h).
    pub scene_window_ms: i64,
    /// Longest scene window anyone may ask, ms (default 24 h).
    pub max_scene_window_ms: i64,
    /// A series of more scenes than this needs a supervisor (default 4; nobody beyond 6).
    pub series_scenes: usize,
    /// Co-travel windows longer than this need a supervisor, ms (default 24 h).
    pub cotravel_window_ms: i64,
    /// Longest co-travel window anyone may ask, ms (default 7 days).
    pub max_cotravel_window_ms: i64,
    /// Largest co-travel time difference at one camera, ms (default 5 min).
    pub max_cotravel_delta_ms: i64,
    /// Most detections one scene, series or co-travel search may read (default 200,000);
    /// a search that would read more is refused as too broad.
    pub max_analytics_rows: usize,
    /// Largest page of scene vehicles, series hits or companions (default 1,000).
    pub max_analytics_results: usize,
}

impl Default for QueryLimits {
    fn default() -> Self {
        const HOUR: i64 = 3_600_000;
        Self {
            max_track_window_ms: 31 * 24 * HOUR,
            supervisor_track_age_ms: 90 * 24 * HOUR,
            supervisor_passes_window_ms: 2 * HOUR,
            max_passes_window_ms: 7 * 24 * HOUR,
            max_cameras: 2_000,
            max_passes_page: 10_000,
            max_fuzzy_variants: 400,
            max_pattern_keys: 200,
            max_track_rows: 100_000,
            scene_radius_m: 1_500.0,
            max_scene_radius_m: 10_000.0,
            scene_window_ms: 2 * HOUR,
            max_scene_window_ms: 24 * HOUR,
            series_scenes: 4,
            cotravel_window_ms: 24 * HOUR,
            max_cotravel_window_ms: 7 * 24 * HOUR,
            max_cotravel_delta_ms: 5 * 60_000,
            max_analytics_rows: 200_000,
            max_analytics_results: 1_000,
        }
    }
}

/// A refused or failed query: an [`ErrorCode`] (the same name, HTTP status and gRPC code
/// on every transport) and a message safe to show (never personal data from storage).
pub type QueryError = Error;

/// Why a search is made: required on every audited call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Purpose {
    /// Case id.
    pub case_id: String,
    /// Free-text reason.
    pub reason: String,
}

impl Purpose {
    /// Check a case id (1–64 of `A–Z a–z 0–9 - _ . / :`) and a reason (1–500 characters,
    /// no control characters).
    pub fn new(case_id: Option<&str>, reason: Option<&str>) -> Result<Self, QueryError> {
        let case_id = case_id.map(str::trim).unwrap_or_default();
        if case_id.is_empty() {
            return Err(Error::new(
                ErrorCode::MissingCase,
                "a case id is required (case)",
            ));
        }
        if case_id.chars().count() > 64
            || !case_id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_./:".contains(c))
        {
            return Err(Error::new(
                ErrorCode::InvalidCase,
                "case ids are 1-64 characters of A-Z, a-z, 0-9 and - _ . / :",
            ));
        }
        let reason = reason.map(str::trim).unwrap_or_default();
        if reason.is_empty() {
            return Err(Error::new(
                ErrorCode::MissingReason,
                "a reason is required (reason)",
            ));
        }
        if reason.chars().count() > 500 || camtrail_model::text::has_hidden(reason) {
            return Err(Error::new(
                ErrorCode::InvalidReason,
                "reasons are 1-500 characters without control or invisible formatting characters",
            ));
        }
        Ok(Self {
            case_id: case_id.to_string(),
            reason: reason.to_string(),
        })
    }
}

/// Who asks, from where.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The authenticated user.
    pub principal: Principal,
    /// Client address as seen by the node.
    pub client_addr: String,
}

/// What to track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// A plate as typed (normalised here); `?` and `*` make it a pattern.
    Plate(String),
    /// An opaque upstream subject key, matched exactly.
    SubjectKey(String),
}

/// A track request.
#[derive(Debug, Clone)]
pub struct TrackRequest {
    /// Plate, pattern or key.
    pub subject: Subject,
    /// Window start, unix ms, inclusive.
    pub from_ms: i64,
    /// Window end, unix ms, exclusive.
    pub to_ms: i64,
    /// Also look for plausible misreadings of the plate.
    pub fuzzy: bool,
    /// Report stops at least this long, ms (1 ms to 24 h); `None`: the configured
    /// `stop_min_ms`.
    pub stop_min_ms: Option<i64>,
    /// Why.
    pub purpose: Purpose,
}

/// A key that was read and how it matched.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeyMatch {
    /// Stored subject key.
    pub key: String,
    /// How it matched.
    pub kind: MatchKind,
    /// Match confidence.
    pub confidence: f32,
}

/// A track and what it answered.
#[derive(Debug, Clone)]
pub struct TrackAnswer {
    /// The normalised key or pattern asked.
    pub asked: String,
    /// Keys read.
    pub keys: Vec<KeyMatch>,
    /// The window.
    pub from_ms: i64,
    /// The window end.
    pub to_ms: i64,
    /// The reconstructed track.
    pub track: Track,
    /// The audit record written before this answer was released.
    pub audit: AuditRecord,
}

/// Where passes are asked for.
#[derive(Debug, Clone)]
pub enum Place {
    /// Explicit camera ids.
    Cameras(Vec<String>),
    /// Every camera of a district.
    District(String),
}

/// A passes request.
#[derive(Debug, Clone)]
pub struct PassesRequest {
    /// Cameras or district.
    pub place: Place,
    /// Window start, unix ms, inclusive.
    pub from_ms: i64,
    /// Window end, unix ms, exclusive.
    pub to_ms: i64,
    /// Which passes: object class and vehicle attributes (each set one must match; the
    /// default keeps everything). Applied by storage before the page is cut.
    pub filter: PassFilter,
    /// Page size.
    pub limit: usize,
    /// Continue after this pass (from the previous page's `next`).
    pub after: Option<PassCursor>,
    /// Why.
    pub purpose: Purpose,
}

/// One page of passes.
#[derive(Debug, Clone)]
pub struct PassesAnswer {
    /// The detections, ordered by time.
    pub passes: Vec<StoredSighting>,
    /// Cursor of the next page, if the page is full.
    pub next: Option<PassCursor>,
    /// The audit record.
    pub audit: AuditRecord,
}

/// An audit listing request (supervisors only).
#[derive(Debug, Clone)]
pub struct AuditRequest {
    /// Which records; a case or a user is required.
    pub filter: AuditFilter,
    /// Continue below this record (the previous page's `next`).
    pub after: Option<AuditCursor>,
    /// Page size, 1 to [`AUDIT_PAGE_MAX`].
    pub limit: usize,
}

/// One page of the audit log, newest first.
#[derive(Debug, Clone)]
pub struct AuditAnswer {
    /// The records, ordered by `(at_ms, node_id, seq)` descending.
    pub records: Vec<AuditRecord>,
    /// Cursor of the next page; `None` when this page is the last.
    pub next: Option<AuditCursor>,
    /// The audit record of this read.
    pub audit: AuditRecord,
}

/// The case id of the audit records that reading the audit log leaves.
pub const AUDIT_REVIEW_CASE: &str = "audit-review";

/// An attribute filter's name in the audit parameters: "all" when not set.
fn filter_name(table: &[(u8, &'static str)], code: Option<u8>) -> &'static str {
    code.map_or("all", |code| {
        crate::attributes::name(table, code).unwrap_or("unknown")
    })
}

/// `parameters` with a pass filter added as audit parameters: each attribute by name, or
/// "all" when not set; the brand as asked, or null.
fn with_filter(mut parameters: serde_json::Value, filter: &PassFilter) -> serde_json::Value {
    if let serde_json::Value::Object(map) = &mut parameters {
        for (name, value) in [
            (
                "object_class",
                json!(filter.object_class.map_or("all", object_class_name)),
            ),
            (
                "plate_color",
                json!(filter_name(PLATE_COLORS, filter.plate_color)),
            ),
            (
                "vehicle_color",
                json!(filter_name(VEHICLE_COLORS, filter.vehicle_color)),
            ),
            (
                "vehicle_type",
                json!(filter_name(VEHICLE_TYPES, filter.vehicle_type)),
            ),
            ("vehicle_brand", json!(filter.vehicle_brand)),
            (
                "direction",
                json!(filter_name(DIRECTIONS, filter.direction)),
            ),
        ] {
            map.insert(name.to_string(), value);
        }
    }
    parameters
}

/// The name of an object class in audit parameters and the HTTP API.
pub fn object_class_name(class: ObjectClass) -> &'static str {
    match class {
        ObjectClass::Vehicle => "vehicle",
        ObjectClass::Person => "person",
        ObjectClass::NonMotor => "non_motor",
    }
}

/// Parse [`object_class_name`]'s names.
pub fn parse_object_class(name: &str) -> Result<ObjectClass, QueryError> {
    [
        ObjectClass::Vehicle,
        ObjectClass::Person,
        ObjectClass::NonMotor,
    ]
    .into_iter()
    .find(|class| object_class_name(*class) == name)
    .ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidClass,
            "object_class must be vehicle, person or non_motor",
        )
    })
}

/// The registry a service joins against, and each district's cameras.
struct Cameras {
    registry: Arc<CameraRegistry>,
    by_district: HashMap<String, Vec<String>>,
    index: CameraIndex,
}

impl Cameras {
    fn new(registry: Arc<CameraRegistry>) -> Self {
        let mut by_district: HashMap<String, Vec<String>> = HashMap::new();
        for camera in registry.cameras() {
            by_district
                .entry(camera.district.clone())
                .or_default()
                .push(camera.camera_id.clone());
        }
        Self {
            index: CameraIndex::new(&registry),
            registry,
            by_district,
        }
    }
}

/// The query service over a store and an audit log.
pub struct QueryService<S, A> {
    store: S,
    audit: A,
    /// Replaced whole when the registry file changes (`QueryNode` watches it).
    cameras: RwLock<Arc<Cameras>>,
    builder: TrackBuilder,
    limits: QueryLimits,
    cases: CaseConfig,
    alerts: Arc<crate::alerts::Alerts>,
    watchlist: WatchlistConfig,
    metrics: QueryMetrics,
}

impl<S: Store, A: AuditLog> QueryService<S, A> {
    /// The bounds in force (the workspace shows them before a search is refused).
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// A service reading `store`, auditing to `audit`.
    pub fn new(
        store: S,
        audit: A,
        registry: Arc<CameraRegistry>,
        params: TrackParams,
        limits: QueryLimits,
        metrics: QueryMetrics,
    ) -> Result<Self, crate::track::ParamsError> {
        let alerts = Arc::new(crate::alerts::Alerts::default());
        alerts.set_registry(Arc::clone(&registry));
        Ok(Self {
            store,
            audit,
            alerts,
            cameras: RwLock::new(Arc::new(Cameras::new(registry))),
            builder: TrackBuilder::new(params)?,
            limits,
            cases: CaseConfig::default(),
            watchlist: WatchlistConfig::default(),
            metrics,
        })
    }

    /// Use `cases` (the offence taxonomy, the longest case) instead of the defaults.
    pub fn with_case_config(mut self, cases: CaseConfig) -> Self {
        self.cases = cases;
        self
    }

    /// The node's live watchlist matcher and its subscribers.
    pub fn alerts(&self) -> &Arc<crate::alerts::Alerts> {
        &self.alerts
    }

    /// Use `watchlist` (the past-read window) instead of the defaults.
    pub fn with_watchlist_config(mut self, watchlist: WatchlistConfig) -> Self {
        self.watchlist = watchlist;
        self
    }

    /// The case registry's settings in force.
    pub fn case_config(&self) -> &CaseConfig {
        &self.cases
    }

    /// The camera registry the service joins against (the one in force now).
    pub fn registry(&self) -> Arc<CameraRegistry> {
        Arc::clone(&self.cameras().registry)
    }

    /// Join later requests against `registry` (requests under way finish with theirs).
    pub fn replace_registry(&self, registry: Arc<CameraRegistry>) {
        self.alerts.set_registry(Arc::clone(&registry));
        let cameras = Arc::new(Cameras::new(registry));
        *self.cameras.write().unwrap_or_else(PoisonError::into_inner) = cameras;
    }

    fn cameras(&self) -> Arc<Cameras> {
        Arc::clone(&self.cameras.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The service's metrics.
    pub fn metrics(&self) -> &QueryMetrics {
        &self.metrics
    }

    fn check_window(from_ms: i64, to_ms: i64, max_ms: i64) -> Result<(), QueryError> {
        if from_ms >= to_ms {
            return Err(Error::new(
                ErrorCode::InvalidWindow,
                "from must be before to",
            ));
        }
        if to_ms.saturating_sub(from_ms) > max_ms {
            return Err(Error::new(
                ErrorCode::WindowTooLong,
                format!("the window may be at most {} hours", max_ms / 3_600_000),
            ));
        }
        Ok(())
    }

    fn require_search(caller: &Caller) -> Result<(), QueryError> {
        if caller.principal.role.may_search() {
            Ok(())
        } else {
            Err(Error::new(
                ErrorCode::Forbidden,
                format!(
                    "role {} may not search detections",
                    caller.principal.role.as_str()
                ),
            ))
        }
    }

    /// A search may run: the role may search and the registry lets the caller search under
    /// the case now. Refusals come before anything is read or audited.
    async fn authorize_search(&self, caller: &Caller, purpose: &Purpose) -> Result<(), QueryError> {
        Self::require_search(caller)?;
        self.require_case(caller, purpose).await
    }

    async fn write_audit(
        &self,
        caller: &Caller,
        purpose: &Purpose,
        kind: &str,
        parameters: serde_json::Value,
        result_count: u64,
    ) -> Result<AuditRecord, QueryError> {
        let entry = AuditEntry {
            at_ms: now_ms(),
            user: caller.principal.user.clone(),
            role: caller.principal.role.as_str().to_string(),
            case_id: purpose.case_id.clone(),
            reason: purpose.reason.clone(),
            kind: kind.to_string(),
            parameters_json: parameters.to_string(),
            result_count,
            client_addr: caller.client_addr.clone(),
        };
        let started = Instant::now();
        let written = self.audit.append(entry).await;
        self.metrics.observe_audit(started.elapsed());
        written.map_err(|error| {
            tracing::error!(%error, kind, "audit write failed; query refused");
            Error::from_code(ErrorCode::AuditUnavailable)
        })
    }

    /// Resolve the asked subject to the keys to read.
    async fn resolve_keys(
        &self,
        request: &TrackRequest,
    ) -> Result<(String, Vec<KeyMatch>), QueryError> {
        let exact = |key: String| KeyMatch {
            key,
            kind: MatchKind::Exact,
            confidence: 1.0,
        };
        match &request.subject {
            Subject::SubjectKey(key) => {
                let key = key.trim();
                if key.is_empty() || key.len() > 128 || camtrail_model::text::has_hidden(key) {
                    return Err(Error::new(
                        ErrorCode::InvalidSubjectKey,
                        "subject keys are 1-128 bytes without control or invisible formatting characters",
                    ));
                }
                Ok((key.to_string(), vec![exact(key.to_string())]))
            }
            // Spaces, tabs and dots between groups are normalised away, but a bidirectional
            // override or a zero-width character would make the plate asked for display as
            // another one in the audit record.
            Subject::Plate(raw) if raw.chars().any(camtrail_model::text::is_format) => {
                Err(Error::new(
                    ErrorCode::InvalidPlate,
                    "the plate holds invisible formatting characters (bidirectional overrides, zero-width characters)",
                ))
            }
            Subject::Plate(raw) if raw.contains(['?', '*']) => {
                let pattern = pattern_to_like(raw)
                    .map_err(|error| Error::new(ErrorCode::InvalidPattern, error.to_string()))?;
                let found = self
                    .store
                    .keys_like(
                        pattern.literal_prefix(),
                        pattern.as_like(),
                        request.from_ms,
                        request.to_ms,
                        self.limits.max_pattern_keys + 1,
                    )
                    .await
                    .map_err(store_failed)?;
                let keys: BTreeSet<String> = found
                    .into_iter()
                    .filter(|key| pattern.matches(key))
                    .collect();
                if keys.len() > self.limits.max_pattern_keys {
                    return Err(Error::new(
                        ErrorCode::PatternTooBroad,
                        format!(
                            "the pattern matches more than {} plates; add characters",
                            self.limits.max_pattern_keys
                        ),
                    ));
                }
                let matches = keys
                    .into_iter()
                    .map(|key| KeyMatch {
                        key,
                        kind: MatchKind::Pattern,
                        confidence: 1.0,
                    })
                    .collect();
                Ok((pattern.pattern().to_string(), matches))
            }
            Subject::Plate(raw) => {
                if raw.len() > 64 {
                    return Err(Error::new(ErrorCode::InvalidPlate, "plate is too long"));
                }
                let key = plate::normalize(raw);
                if key.is_empty() {
                    return Err(Error::new(
                        ErrorCode::InvalidPlate,
                        "nothing left of the plate after normalisation",
                    ));
                }
                let mut matches = vec![exact(key.clone())];
                if request.fuzzy {
                    let variants =
                        crate::track::misread_variants(&key, self.limits.max_fuzzy_variants);
                    let names: Vec<String> = variants.iter().map(|(v, _)| v.clone()).collect();
                    let seen: BTreeSet<String> = self
                        .store
                        .keys_seen(&names, request.from_ms, request.to_ms)
                        .await
                        .map_err(store_failed)?
                        .into_iter()
                        .collect();
                    matches.extend(variants.into_iter().filter(|(v, _)| seen.contains(v)).map(
                        |(key, confidence)| KeyMatch {
                            key,
                            kind: MatchKind::Fuzzy,
                            confidence,
                        },
                    ));
                }
                Ok((key, matches))
            }
        }
    }

    /// Reconstruct a track, audit it, return it.
    pub async fn track(
        &self,
        caller: &Caller,
        request: TrackRequest,
    ) -> Result<TrackAnswer, QueryError> {
        let started = Instant::now();
        let result = self.track_inner(caller, request).await;
        self.metrics.observe("track", &result, started.elapsed());
        result
    }

    async fn track_inner(
        &self,
        caller: &Caller,
        request: TrackRequest,
    ) -> Result<TrackAnswer, QueryError> {
        self.authorize_search(caller, &request.purpose).await?;
        Self::check_window(
            request.from_ms,
            request.to_ms,
            self.limits.max_track_window_ms,
        )?;
        if now_ms().saturating_sub(request.from_ms) > self.limits.supervisor_track_age_ms
            && !caller.principal.role.is_supervisor()
        {
            return Err(Error::new(
                ErrorCode::Forbidden,
                format!(
                    "tracks starting more than {} days ago need the supervisor role",
                    self.limits.supervisor_track_age_ms / 86_400_000
                ),
            ));
        }
        if let Some(ms) = request.stop_min_ms
            && !(1..=24 * 3_600_000).contains(&ms)
        {
            return Err(Error::new(
                ErrorCode::InvalidQuery,
                "stop_min must be more than 0 and at most 24 hours",
            ));
        }
        let (asked, keys) = self.resolve_keys(&request).await?;
        let names: Vec<String> = keys.iter().map(|k| k.key.clone()).collect();
        let stored = self
            .store
            .sightings(
                &names,
                request.from_ms,
                request.to_ms,
                self.limits.max_track_rows,
            )
            .await
            .map_err(store_failed)?;
        let by_key: HashMap<&str, &KeyMatch> = keys.iter().map(|k| (k.key.as_str(), k)).collect();
        let raw: Vec<RawSighting> = stored
            .into_iter()
            .filter_map(|s| {
                let matched = by_key.get(s.subject_key.as_str())?;
                Some(RawSighting {
                    event_id: s.event_id,
                    camera_id: s.camera_id,
                    captured_at_ms: s.captured_at_ms,
                    subject_key: s.subject_key,
                    plate: s.plate,
                    plate_confidence: s.plate_confidence,
                    object_class: s.object_class,
                    has_snapshot: s.has_snapshot,
                    match_kind: matched.kind,
                    match_confidence: matched.confidence,
                    attributes: s.attributes,
                    plate_char_confidence: s.plate_char_confidence,
                })
            })
            .collect();
        // A plate (not a pattern, not an upstream key) names one vehicle: its reads and its
        // look-alikes' are attributed, and a cloned plate is split.
        let plate_key = match &request.subject {
            Subject::Plate(raw) if !raw.contains(['?', '*']) => Some(asked.as_str()),
            _ => None,
        };
        let mut track = self
            .builder
            .build_for(plate_key, raw, &self.cameras().registry);
        if let Some(ms) = request.stop_min_ms {
            track.stops = find_stops(&track.sightings, &track.links, ms);
            if let Some(second) = track.second_vehicle.as_mut() {
                second.stops = find_stops(&second.sightings, &second.links, ms);
            }
        }
        let parameters = json!({
            "subject": match &request.subject {
                Subject::Plate(_) => "plate",
                Subject::SubjectKey(_) => "subject_key",
            },
            "asked": asked,
            "from_ms": request.from_ms,
            "to_ms": request.to_ms,
            "fuzzy": request.fuzzy,
            "stop_min_ms": request.stop_min_ms.unwrap_or(self.builder.params().stop_min_ms),
            "keys_read": keys.len(),
        });
        let audit = self
            .write_audit(
                caller,
                &request.purpose,
                "track",
                parameters,
                (track.sightings.len()
                    + track
                        .second_vehicle
                        .as_ref()
                        .map_or(0, |second| second.sightings.len())) as u64,
            )
            .await?;
        Ok(TrackAnswer {
            asked,
            keys,
            from_ms: request.from_ms,
            to_ms: request.to_ms,
            track,
            audit,
        })
    }

    /// One page of passes, audited.
    pub async fn passes(
        &self,
        caller: &Caller,
        request: PassesRequest,
    ) -> Result<PassesAnswer, QueryError> {
        let started = Instant::now();
        let result = self.passes_inner(caller, request).await;
        self.metrics.observe("passes", &result, started.elapsed());
        result
    }

    async fn passes_inner(
        &self,
        caller: &Caller,
        request: PassesRequest,
    ) -> Result<PassesAnswer, QueryError> {
        self.authorize_search(caller, &request.purpose).await?;
        Self::check_window(
            request.from_ms,
            request.to_ms,
            self.limits.max_passes_window_ms,
        )?;
        if request.limit == 0 || request.limit > self.limits.max_passes_page {
            return Err(Error::new(
                ErrorCode::InvalidLimit,
                format!("limit must be 1-{}", self.limits.max_passes_page),
            ));
        }
        let known = self.cameras();
        let (cameras, place) = match &request.place {
            Place::District(district) => {
                let cameras = known
                    .by_district
                    .get(district)
                    .ok_or_else(|| Error::new(ErrorCode::UnknownDistrict, "no such district"))?;
                (cameras.clone(), json!({ "district": district }))
            }
            Place::Cameras(ids) => {
                if ids.is_empty() || ids.len() > self.limits.max_cameras {
                    return Err(Error::new(
                        ErrorCode::InvalidCameras,
                        format!("name 1-{} cameras", self.limits.max_cameras),
                    ));
                }
                if let Some(unknown) = ids.iter().find(|id| known.registry.get(id).is_none()) {
                    return Err(Error::new(
                        ErrorCode::UnknownCamera,
                        format!("unknown camera {}", unknown.escape_debug()),
                    ));
                }
                (ids.clone(), json!({ "cameras": ids }))
            }
        };
        let districts: BTreeSet<&str> = cameras
            .iter()
            .filter_map(|id| known.registry.get(id).map(|c| c.district.as_str()))
            .collect();
        let broad = request.to_ms - request.from_ms > self.limits.supervisor_passes_window_ms
            || districts.len() > 1;
        if broad && !caller.principal.role.is_supervisor() {
            return Err(Error::new(
                ErrorCode::Forbidden,
                format!(
                    "passes over more than {} minutes or more than one district need the supervisor role",
                    self.limits.supervisor_passes_window_ms / 60_000
                ),
            ));
        }
        let passes = self
            .store
            .passes(
                &cameras,
                request.from_ms,
                request.to_ms,
                &request.filter,
                request.after,
                request.limit,
            )
            .await
            .map_err(store_failed)?;
        let next = (passes.len() == request.limit)
            .then(|| passes.last())
            .flatten()
            .map(|last| PassCursor {
                captured_at_ms: last.captured_at_ms,
                event_id: last.event_id,
            });
        let parameters = with_filter(
            json!({
                "place": place,
                "from_ms": request.from_ms,
                "to_ms": request.to_ms,
                "limit": request.limit,
                "after": request.after.map(|c| format!("{}:{}", c.captured_at_ms, c.event_id)),
            }),
            &request.filter,
        );
        let audit = self
            .write_audit(
                caller,
                &request.purpose,
                "passes",
                parameters,
                passes.len() as u64,
            )
            .await?;
        Ok(PassesAnswer {
            passes,
            next,
            audit,
        })
    }

    /// A thumbnail with its capture time, audited. `Ok(None)` when none is stored (also
    /// audited: the look-up was made).
    pub async fn snapshot(
        &self,
        caller: &Caller,
        event_id: EventId,
        purpose: Purpose,
    ) -> Result<(Option<StoredSnapshot>, AuditRecord), QueryError> {
        let started = Instant::now();
        let result = async {
            self.authorize_search(caller, &purpose).await?;
            let snapshot = self.store.snapshot(event_id).await.map_err(store_failed)?;
            let audit = self
                .write_audit(
                    caller,
                    &purpose,
                    "snapshot",
                    json!({ "event_id": event_id.to_string() }),
                    u64::from(snapshot.is_some()),
                )
                .await?;
            Ok((snapshot, audit))
        }
        .await;
        self.metrics.observe("snapshot", &result, started.elapsed());
        result
    }
}

impl<S: Store, A: AuditLog> QueryService<S, A> {
    /// One page of audit records by case or user (at least one; also by kind and window),
    /// newest first; supervisors only. Reading the audit log is itself audited (kind
    /// `audit_read`, case [`AUDIT_REVIEW_CASE`], the filter as parameters) before the page
    /// is handed back.
    pub async fn list_audit(
        &self,
        caller: &Caller,
        request: AuditRequest,
    ) -> Result<AuditAnswer, QueryError> {
        let started = Instant::now();
        let result = self.list_audit_inner(caller, request).await;
        self.metrics.observe("audit", &result, started.elapsed());
        result
    }

    async fn list_audit_inner(
        &self,
        caller: &Caller,
        request: AuditRequest,
    ) -> Result<AuditAnswer, QueryError> {
        if !caller.principal.role.is_supervisor() {
            return Err(Error::new(
                ErrorCode::Forbidden,
                "only supervisors may read the audit log",
            ));
        }
        let filter = &request.filter;
        if filter.case_id.is_none() && filter.user.is_none() {
            return Err(Error::new(
                ErrorCode::MissingFilter,
                "filter the audit log by case or by user",
            ));
        }
        // The filter values go into this read's own audit record: same rules as free text.
        for (name, value) in [
            ("case", &filter.case_id),
            ("user", &filter.user),
            ("kind", &filter.kind),
        ] {
            if let Some(value) = value
                && (value.len() > 128 || camtrail_model::text::has_hidden(value))
            {
                return Err(Error::new(
                    ErrorCode::InvalidQuery,
                    format!(
                        "{name} must be at most 128 bytes without control or invisible \
                         formatting characters"
                    ),
                ));
            }
        }
        if request.limit == 0 || request.limit > AUDIT_PAGE_MAX {
            return Err(Error::new(
                ErrorCode::InvalidLimit,
                format!("limit must be 1-{AUDIT_PAGE_MAX}"),
            ));
        }
        if let (Some(from_ms), Some(to_ms)) = (filter.from_ms, filter.to_ms)
            && from_ms >= to_ms
        {
            return Err(Error::new(
                ErrorCode::InvalidWindow,
                "from must be before to",
            ));
        }
        // One more than the page: whether another page follows.
        let mut records = self
            .store
            .audit_records(filter, request.after.as_ref(), request.limit + 1)
            .await
            .map_err(store_failed)?;
        let next = if records.len() > request.limit {
            records.truncate(request.limit);
            records.last().map(AuditCursor::of)
        } else {
            None
        };
        let parameters = json!({
            "case_id": filter.case_id,
            "user": filter.user,
            "kind": filter.kind,
            "from_ms": filter.from_ms,
            "to_ms": filter.to_ms,
            "limit": request.limit,
            "cursor": request.after.as_ref().map(AuditCursor::encode),
        });
        let purpose = Purpose {
            case_id: AUDIT_REVIEW_CASE.into(),
            reason: "audit log read".into(),
        };
        let audit = self
            .write_audit(
                caller,
                &purpose,
                "audit_read",
                parameters,
                records.len() as u64,
            )
            .await?;
        Ok(AuditAnswer {
            records,
            next,
            audit,
        })
    }
}

/// Parse an audit cursor (a previous page's `next_cursor`).
pub fn parse_audit_cursor(text: &str) -> Result<AuditCursor, QueryError> {
    AuditCursor::decode(text).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidCursor,
            "cursor must be the next_cursor of a previous page",
        )
    })
}

fn store_failed(error: StorageError) -> QueryError {
    tracing::error!(%error, "storage read failed");
    Error::new(error.code(), "storage could not be read; try again")
}

/// Parse a pass cursor `"<captured_at_ms>:<event id hex>"`.
pub fn parse_cursor(text: &str) -> Result<PassCursor, QueryError> {
    let bad = || {
        Error::new(
            ErrorCode::InvalidCursor,
            "after must be a cursor from a previous page",
        )
    };
    let (ms, id) = text.split_once(':').ok_or_else(bad)?;
    let captured_at_ms = ms.parse().map_err(|_| bad())?;
    let mut bytes = [0u8; 16];
    hex::decode_to_slice(id, &mut bytes).map_err(|_| bad())?;
    Ok(PassCursor {
        captured_at_ms,
        event_id: EventId(bytes),
    })
}

/// Parse a scene page cursor (a previous page's `next_cursor`).
pub fn parse_vehicle_cursor(text: &str) -> Result<crate::analytics::VehicleCursor, QueryError> {
    crate::analytics::VehicleCursor::decode(text).ok_or_else(|| {
        Error::new(
            ErrorCode::InvalidCursor,
            "cursor must be the next_cursor of a previous page",
        )
    })
}

/// Format a pass cursor for the next page.
pub fn format_cursor(cursor: &PassCursor) -> String {
    format!("{}:{}", cursor.captured_at_ms, cursor.event_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn purposes_are_required_and_bounded() {
        assert!(Purpose::new(Some("CASE-1"), Some("robbery")).is_ok());
        assert_eq!(
            Purpose::new(None, Some("x")).expect_err("missing").code,
            ErrorCode::MissingCase
        );
        assert_eq!(
            Purpose::new(Some("  "), Some("x")).expect_err("blank").code,
            ErrorCode::MissingCase
        );
        assert_eq!(
            Purpose::new(Some("C'; DROP TABLE audit_log; --"), Some("x"))
                .expect_err("hostile")
                .code,
            ErrorCode::InvalidCase
        );
        assert_eq!(
            Purpose::new(Some("C1"), None).expect_err("reason").code,
            ErrorCode::MissingReason
        );
        assert_eq!(
            Purpose::new(Some("C1"), Some("a\u{0}b"))
                .expect_err("control")
                .code,
            ErrorCode::InvalidReason
        );
        // Shown to a supervisor as "theft of 粤B12345", stored as something else.
        assert_eq!(
            Purpose::new(Some("C1"), Some("theft of 粤B\u{202E}54321"))
                .expect_err("bidi override")
                .code,
            ErrorCode::InvalidReason
        );
    }

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = PassCursor {
            captured_at_ms: 1_764_000_000_123,
            event_id: EventId([0xAB; 16]),
        };
        assert_eq!(parse_cursor(&format_cursor(&cursor)), Ok(cursor));
        assert!(parse_cursor("12:zz").is_err());
        assert!(parse_cursor("nope").is_err());
    }
}
