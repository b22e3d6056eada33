//! The broad searches (scene, series of scenes, co-travel) in the service: every input is
//! checked and every limit applied before storage is read, the tier decided from the scope,
//! and the audit record — holding the whole scope: every area, every window, every
//! threshold — written before the answer leaves. A refused request reads nothing (except
//! `search_too_broad`, found by reading up to the row limit) and, releasing nothing, leaves
//! no audit record.

use std::time::Instant;

use camtrail_common::now_ms;
use camtrail_model::audit::AuditRecord;
use camtrail_model::{Error, ErrorCode, plate};
use camtrail_storage::{AuditLog, CameraWindow, PassFilter, Store, StoredSighting};
use serde_json::json;

use super::{Caller, Purpose, QueryError, QueryService, store_failed, with_filter};
use crate::analytics::cotravel::{companions, line_up, windows_around};
use crate::analytics::scene::{group_by_vehicle, page};
use crate::analytics::series::collide;
use crate::analytics::{
    Area, CoTravelParams, Companion, SceneVehicle, SeriesHit, SeriesParams, VehicleCursor,
};

/// Fewest and most scenes in a series.
pub const SERIES_SCENES: std::ops::RangeInclusive<usize> = 2..=6;
/// Default shared cameras of a companion.
pub const COTRAVEL_MIN_CAMERAS: usize = 4;
/// Default largest time difference at a shared camera, ms.
pub const COTRAVEL_DELTA_MS: i64 = 60_000;
/// Default shortest time together (first to last shared sighting), ms.
pub const COTRAVEL_MIN_SPAN_MS: i64 = 10 * 60_000;
/// Bounds of a co-travel's `min_cameras`.
pub const COTRAVEL_CAMERAS: std::ops::RangeInclusive<usize> = 2..=50;

/// One scene: an area and a window.
#[derive(Debug, Clone, PartialEq)]
pub struct SceneSpec {
    /// Where.
    pub area: Area,
    /// Window start, unix ms, inclusive.
    pub from_ms: i64,
    /// Window end, unix ms, exclusive.
    pub to_ms: i64,
}

/// Who passed one scene.
#[derive(Debug, Clone)]
pub struct SceneRequest {
    /// The scene.
    pub scene: SceneSpec,
    /// Which detections count (object class, attributes).
    pub filter: PassFilter,
    /// Vehicles per page.
    pub limit: usize,
    /// Continue after this vehicle (the previous page's `next`).
    pub after: Option<VehicleCursor>,
    /// Why.
    pub purpose: Purpose,
}

/// One page of the vehicles that passed a scene.
#[derive(Debug, Clone)]
pub struct SceneAnswer {
    /// Cameras inside the area.
    pub cameras: usize,
    /// The page, by first sighting then key.
    pub vehicles: Vec<SceneVehicle>,
    /// Vehicles in the whole scene (every page).
    pub total_vehicles: usize,
    /// Sightings without a subject key (no plate read, no upstream key): counted, not listed.
    pub unkeyed_sightings: usize,
    /// Cursor of the next page.
    pub next: Option<VehicleCursor>,
    /// The audit record.
    pub audit: AuditRecord,
}

/// Vehicles seen at several scenes.
#[derive(Debug, Clone)]
pub struct SeriesRequest {
    /// 2–6 scenes.
    pub scenes: Vec<SceneSpec>,
    /// Seen at at least this many (default: all).
    pub min_scenes: Option<usize>,
    /// Link misreadings of a plate across scenes.
    pub fuzzy: bool,
    /// Which detections count.
    pub filter: PassFilter,
    /// Most hits returned.
    pub limit: usize,
    /// Why.
    pub purpose: Purpose,
}

/// The vehicles a series found, ranked.
#[derive(Debug, Clone)]
pub struct SeriesAnswer {
    /// Cameras inside each scene's area.
    pub scene_cameras: Vec<usize>,
    /// Threshold applied.
    pub min_scenes: usize,
    /// The best hits, at most `limit`.
    pub hits: Vec<SeriesHit>,
    /// Hits before the limit cut them.
    pub total_hits: usize,
    /// The audit record.
    pub audit: AuditRecord,
}

/// Vehicles travelling with a target, or whether two plates travelled together.
#[derive(Debug, Clone)]
pub struct CoTravelRequest {
    /// The target's plate as typed (normalised here).
    pub target: String,
    /// Only this other plate ("were these two together?").
    pub other: Option<String>,
    /// Window start, unix ms, inclusive.
    pub from_ms: i64,
    /// Window end, unix ms, exclusive.
    pub to_ms: i64,
    /// Distinct shared cameras needed (default 4).
    pub min_cameras: Option<usize>,
    /// Largest time difference at a shared camera, ms (default 60 s).
    pub delta_ms: Option<i64>,
    /// Shortest time from the first to the last shared sighting, ms (default 10 min; 0 to
    /// count any stretch).
    pub min_span_ms: Option<i64>,
    /// Most companions returned.
    pub limit: usize,
    /// Why.
    pub purpose: Purpose,
}

/// What a co-travel search found.
#[derive(Debug, Clone)]
pub struct CoTravelAnswer {
    /// The target's normalised key.
    pub target_key: String,
    /// The other plate's key, in the two-plate form.
    pub other_key: Option<String>,
    /// The target's sightings in the window.
    pub target_sightings: usize,
    /// Threshold applied.
    pub min_cameras: usize,
    /// Time difference applied, ms.
    pub delta_ms: i64,
    /// Shortest time together applied, ms.
    pub min_span_ms: i64,
    /// Companions, ranked, at most `limit`. In the two-plate form: the other plate's
    /// evidence whenever anything lines up, also below the threshold.
    pub companions: Vec<Companion>,
    /// Companions before the limit cut them.
    pub total_companions: usize,
    /// In the two-plate form: whether the other plate reached the threshold.
    pub together: Option<bool>,
    /// The audit record.
    pub audit: AuditRecord,
}

/// A checked scene: its cameras and its audit description.
struct Scope {
    cameras: Vec<String>,
    window: (i64, i64),
    broad: bool,
    audit: serde_json::Value,
}

fn bad_query(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::InvalidQuery, message)
}

/// A plate that names one vehicle: no wildcard, no invisible characters, something left
/// after normalisation.
fn plate_key(raw: &str, name: &str) -> Result<String, QueryError> {
    if raw.len() > 64
        || raw.contains(['?', '*'])
        || raw.chars().any(camtrail_model::text::is_format)
    {
        return Err(Error::new(
            ErrorCode::InvalidPlate,
            format!(
                "{name} must be one plate of at most 64 bytes, without wildcards or invisible characters"
            ),
        ));
    }
    let key = plate::normalize(raw);
    if key.is_empty() {
        return Err(Error::new(
            ErrorCode::InvalidPlate,
            format!("nothing left of {name} after normalisation"),
        ));
    }
    Ok(key)
}

impl<S: Store, A: AuditLog> QueryService<S, A> {
    /// Check one scene (shape, window, hard limits) and say whether it needs a supervisor.
    fn scope(&self, scene: &SceneSpec) -> Result<Scope, QueryError> {
        let limits = &self.limits;
        Self::check_window(scene.from_ms, scene.to_ms, limits.max_scene_window_ms)?;
        let known = self.cameras();
        let checked = scene.area.clone().check(
            &known.registry,
            limits.max_scene_radius_m,
            limits.max_cameras,
        )?;
        let cameras = known.index.cameras_in(&known.registry, &checked.area);
        let districts: std::collections::BTreeSet<&str> = cameras
            .iter()
            .filter_map(|id| known.registry.get(id).map(|c| c.district.as_str()))
            .collect();
        let broad = checked.radius_m > limits.scene_radius_m
            || scene.to_ms - scene.from_ms > limits.scene_window_ms
            || now_ms().saturating_sub(scene.from_ms) > limits.supervisor_track_age_ms
            || (matches!(checked.area, Area::Cameras { .. }) && districts.len() > 1);
        Ok(Scope {
            audit: json!({
                "area": checked.area,
                "from_ms": scene.from_ms,
                "to_ms": scene.to_ms,
                "cameras": cameras.len(),
            }),
            window: (scene.from_ms, scene.to_ms),
            cameras,
            broad,
        })
    }

    fn require_tier(caller: &Caller, broad: bool, what: &str) -> Result<(), QueryError> {
        if broad && !caller.principal.role.is_supervisor() {
            return Err(Error::new(
                ErrorCode::Forbidden,
                format!("{what} need the supervisor role"),
            ));
        }
        Ok(())
    }

    fn check_results(&self, limit: usize) -> Result<(), QueryError> {
        if limit == 0 || limit > self.limits.max_analytics_results {
            return Err(Error::new(
                ErrorCode::InvalidLimit,
                format!("limit must be 1-{}", self.limits.max_analytics_results),
            ));
        }
        Ok(())
    }

    /// Read `windows`, refusing a search that reaches the row limit.
    async fn read_bounded(
        &self,
        windows: &[CameraWindow],
        filter: &PassFilter,
    ) -> Result<Vec<StoredSighting>, QueryError> {
        let max = self.limits.max_analytics_rows;
        let rows = self
            .store
            .passes_in(windows, filter, max)
            .await
            .map_err(store_failed)?;
        if rows.len() >= max {
            return Err(Error::new(
                ErrorCode::SearchTooBroad,
                format!(
                    "the search reaches more than {max} detections; narrow the area or the window"
                ),
            ));
        }
        Ok(rows)
    }

    /// The vehicles that passed one scene, a page at a time, audited.
    pub async fn scene(
        &self,
        caller: &Caller,
        request: SceneRequest,
    ) -> Result<SceneAnswer, QueryError> {
        let started = Instant::now();
        let result = self.scene_inner(caller, request).await;
        self.metrics.observe("scene", &result, started.elapsed());
        result
    }

    async fn scene_inner(
        &self,
        caller: &Caller,
        request: SceneRequest,
    ) -> Result<SceneAnswer, QueryError> {
        self.authorize_search(caller, &request.purpose).await?;
        self.check_results(request.limit)?;
        let scope = self.scope(&request.scene)?;
        Self::require_tier(
            caller,
            scope.broad,
            &format!(
                "scenes reaching beyond {:.0} m, longer than {} minutes, older than {} days or \
                 naming cameras of several districts",
                self.limits.scene_radius_m,
                self.limits.scene_window_ms / 60_000,
                self.limits.supervisor_track_age_ms / 86_400_000
            ),
        )?;
        let windows = [CameraWindow {
            cameras: scope.cameras.clone(),
            from_ms: scope.window.0,
            to_ms: scope.window.1,
        }];
        let rows = self.read_bounded(&windows, &request.filter).await?;
        let (vehicles, unkeyed_sightings) = group_by_vehicle(rows);
        let total_vehicles = vehicles.len();
        let (vehicles, next) = page(vehicles, request.after.as_ref(), request.limit);
        let parameters = with_filter(
            json!({
                "scene": scope.audit,
                "limit": request.limit,
                "after": request.after.as_ref().map(VehicleCursor::encode),
                "total_vehicles": total_vehicles,
            }),
            &request.filter,
        );
        let audit = self
            .write_audit(
                caller,
                &request.purpose,
                "scene",
                parameters,
                vehicles.len() as u64,
            )
            .await?;
        Ok(SceneAnswer {
            cameras: scope.cameras.len(),
            vehicles,
            total_vehicles,
            unkeyed_sightings,
            next,
            audit,
        })
    }

    /// The vehicles seen at several scenes, ranked, audited.
    pub async fn series(
        &self,
        caller: &Caller,
        request: SeriesRequest,
    ) -> Result<SeriesAnswer, QueryError> {
        let started = Instant::now();
        let result = self.series_inner(caller, request).await;
        self.metrics.observe("series", &result, started.elapsed());
        result
    }

    async fn series_inner(
        &self,
        caller: &Caller,
        request: SeriesRequest,
    ) -> Result<SeriesAnswer, QueryError> {
        self.authorize_search(caller, &request.purpose).await?;
        let count = request.scenes.len();
        if !SERIES_SCENES.contains(&count) {
            return Err(Error::new(
                ErrorCode::InvalidScenes,
                format!(
                    "give {}-{} scenes (got {count})",
                    SERIES_SCENES.start(),
                    SERIES_SCENES.end()
                ),
            ));
        }
        let min_scenes = request.min_scenes.unwrap_or(count);
        if !(2..=count).contains(&min_scenes) {
            return Err(Error::new(
                ErrorCode::InvalidScenes,
                format!("min_scenes must be 2-{count}"),
            ));
        }
        self.check_results(request.limit)?;
        let scopes = request
            .scenes
            .iter()
            .enumerate()
            .map(|(i, scene)| {
                self.scope(scene).map_err(|mut error| {
                    error.message = format!("scene {}: {}", i + 1, error.message);
                    error
                })
            })
            .collect::<Result<Vec<Scope>, QueryError>>()?;
        let broad = count > self.limits.series_scenes || scopes.iter().any(|s| s.broad);
        Self::require_tier(
            caller,
            broad,
            &format!(
                "series of more than {} scenes, or with a scene beyond the investigator's limits,",
                self.limits.series_scenes
            ),
        )?;
        let windows: Vec<CameraWindow> = scopes
            .iter()
            .map(|s| CameraWindow {
                cameras: s.cameras.clone(),
                from_ms: s.window.0,
                to_ms: s.window.1,
            })
            .collect();
        let rows = self.read_bounded(&windows, &request.filter).await?;
        // A row belongs to every scene whose cameras and window hold it (scenes may overlap).
        let per_scene: Vec<Vec<StoredSighting>> = scopes
            .iter()
            .map(|scope| {
                let cameras: std::collections::HashSet<&str> =
                    scope.cameras.iter().map(String::as_str).collect();
                rows.iter()
                    .filter(|r| {
                        cameras.contains(r.camera_id.as_str())
                            && (scope.window.0..scope.window.1).contains(&r.captured_at_ms)
                    })
                    .cloned()
                    .collect()
            })
            .collect();
        let windows: Vec<(i64, i64)> = scopes.iter().map(|s| s.window).collect();
        let mut hits = collide(
            &windows,
            per_scene,
            SeriesParams {
                min_scenes,
                fuzzy: request.fuzzy,
                max_variants: self.limits.max_fuzzy_variants,
            },
        );
        let total_hits = hits.len();
        hits.truncate(request.limit);
        let parameters = with_filter(
            json!({
                "scenes": scopes.iter().map(|s| s.audit.clone()).collect::<Vec<_>>(),
                "min_scenes": min_scenes,
                "fuzzy": request.fuzzy,
                "limit": request.limit,
                "total_hits": total_hits,
            }),
            &request.filter,
        );
        let audit = self
            .write_audit(
                caller,
                &request.purpose,
                "series",
                parameters,
                hits.len() as u64,
            )
            .await?;
        Ok(SeriesAnswer {
            scene_cameras: scopes.iter().map(|s| s.cameras.len()).collect(),
            min_scenes,
            hits,
            total_hits,
            audit,
        })
    }

    /// The vehicles that travelled with a target (or whether one other did), ranked, audited.
    pub async fn cotravel(
        &self,
        caller: &Caller,
        request: CoTravelRequest,
    ) -> Result<CoTravelAnswer, QueryError> {
        let started = Instant::now();
        let result = self.cotravel_inner(caller, request).await;
        self.metrics.observe("cotravel", &result, started.elapsed());
        result
    }

    async fn cotravel_inner(
        &self,
        caller: &Caller,
        request: CoTravelRequest,
    ) -> Result<CoTravelAnswer, QueryError> {
        self.authorize_search(caller, &request.purpose).await?;
        let limits = &self.limits;
        Self::check_window(
            request.from_ms,
            request.to_ms,
            limits.max_cotravel_window_ms,
        )?;
        self.check_results(request.limit)?;
        let target_key = plate_key(&request.target, "the target plate")?;
        let other_key = request
            .other
            .as_deref()
            .map(|other| plate_key(other, "the other plate"))
            .transpose()?;
        if other_key.as_deref() == Some(target_key.as_str()) {
            return Err(Error::new(
                ErrorCode::InvalidPlate,
                "the other plate is the target itself",
            ));
        }
        let min_cameras = request.min_cameras.unwrap_or(COTRAVEL_MIN_CAMERAS);
        if !COTRAVEL_CAMERAS.contains(&min_cameras) {
            return Err(bad_query(format!(
                "min_cameras must be {}-{}",
                COTRAVEL_CAMERAS.start(),
                COTRAVEL_CAMERAS.end()
            )));
        }
        let delta_ms = request.delta_ms.unwrap_or(COTRAVEL_DELTA_MS);
        if delta_ms <= 0 || delta_ms > limits.max_cotravel_delta_ms {
            return Err(bad_query(format!(
                "delta must be 1-{} seconds",
                limits.max_cotravel_delta_ms / 1_000
            )));
        }
        let min_span_ms = request.min_span_ms.unwrap_or(COTRAVEL_MIN_SPAN_MS);
        if !(0..=24 * 3_600_000).contains(&min_span_ms) {
            return Err(bad_query("min_span must be 0-24 hours"));
        }
        let broad = request.to_ms - request.from_ms > limits.cotravel_window_ms
            || now_ms().saturating_sub(request.from_ms) > limits.supervisor_track_age_ms;
        Self::require_tier(
            caller,
            broad,
            &format!(
                "co-travel windows longer than {} hours or older than {} days",
                limits.cotravel_window_ms / 3_600_000,
                limits.supervisor_track_age_ms / 86_400_000
            ),
        )?;
        let target = self
            .store
            .sightings(
                std::slice::from_ref(&target_key),
                request.from_ms,
                request.to_ms,
                limits.max_track_rows,
            )
            .await
            .map_err(store_failed)?;
        let params = CoTravelParams {
            min_cameras,
            delta_ms,
            min_span_ms,
        };
        let (mut found, together) = match &other_key {
            // Two plates: only the other plate's own sightings are read, nobody else's.
            Some(other_key) => {
                let other = if target.is_empty() {
                    Vec::new()
                } else {
                    self.store
                        .sightings(
                            std::slice::from_ref(other_key),
                            request.from_ms,
                            request.to_ms,
                            limits.max_track_rows,
                        )
                        .await
                        .map_err(store_failed)?
                };
                let lined = line_up(&target, &other, delta_ms);
                let together = lined
                    .as_ref()
                    .is_some_and(|c| c.shared_cameras >= min_cameras);
                (lined.into_iter().collect::<Vec<_>>(), Some(together))
            }
            None => {
                let nearby = if target.is_empty() {
                    Vec::new()
                } else {
                    let windows = windows_around(&target, delta_ms);
                    self.read_bounded(&windows, &PassFilter::default()).await?
                };
                (companions(&target_key, &target, nearby, params), None)
            }
        };
        let total_companions = found.len();
        found.truncate(request.limit);
        let parameters = json!({
            "target": target_key,
            "other": other_key,
            "from_ms": request.from_ms,
            "to_ms": request.to_ms,
            "min_cameras": min_cameras,
            "delta_ms": delta_ms,
            "min_span_ms": min_span_ms,
            "limit": request.limit,
            "target_sightings": target.len(),
        });
        let audit = self
            .write_audit(
                caller,
                &request.purpose,
                "cotravel",
                parameters,
                found.len() as u64,
            )
            .await?;
        Ok(CoTravelAnswer {
            target_key,
            other_key,
            target_sightings: target.len(),
            min_cameras,
            delta_ms,
            min_span_ms,
            companions: found,
            total_companions,
            together,
            audit,
        })
    }
}
