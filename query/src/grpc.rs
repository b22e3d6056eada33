//! The gRPC `camtrail.v1.Query` service, over the same [`QueryService`](crate::service::QueryService) as HTTP: the same
//! tokens, roles, limits and audit-before-answer. Errors map to gRPC codes with the
//! service's error code as the message prefix (`missing_case: ...`).

use std::pin::Pin;
use std::sync::Arc;

use camtrail_common::grpc::error_status;
use camtrail_model::audit::AuditRecord;
use camtrail_model::case::{Case, CaseStatus, Hold};
use camtrail_model::{Error, ErrorCode, EventId, VehicleAttributes};
use camtrail_proto::v1;
use camtrail_proto::v1::query_server::Query;
use camtrail_storage::{
    AUDIT_PAGE_DEFAULT, AuditFilter, AuditLog, PassCursor, PassFilter, Store, StoredSighting,
};
use tokio_stream::Stream;
use tonic::{Request, Response, Status};

use crate::analytics::{Area, Companion, LinkKind};
use crate::attributes;
use crate::http::HttpState;
use crate::service::{
    AuditRequest, Caller, CaseChange, CoTravelRequest, OpenCase, PassesRequest, Place, Purpose,
    QueryError, SceneRequest, SceneSpec, SeriesRequest, Subject, TrackRequest, format_cursor,
    parse_audit_cursor, parse_cursor, parse_vehicle_cursor,
};
use crate::track::{MatchKind, Track};

/// The gRPC front end.
pub struct QueryGrpc<S, A> {
    state: Arc<HttpState<S, A>>,
}

impl<S, A> QueryGrpc<S, A> {
    /// Serve `state` (shared with the HTTP API).
    pub fn new(state: Arc<HttpState<S, A>>) -> Self {
        Self { state }
    }
}

fn status(error: QueryError) -> Status {
    camtrail_common::grpc::status(&error)
}

/// `sighting` with the vehicle attributes set (the stored codes are the wire enum numbers).
fn with_attributes(
    mut sighting: v1::Sighting,
    attributes: &VehicleAttributes,
    plate_char_confidence: &[u8],
) -> v1::Sighting {
    sighting.vehicle_color = i32::from(attributes.color);
    sighting.vehicle_type = i32::from(attributes.kind);
    sighting.plate_color = i32::from(attributes.plate_color);
    sighting.vehicle_brand = attributes.brand.clone();
    sighting.direction = i32::from(attributes.direction);
    sighting.speed_kmh = attributes.speed_kmh;
    sighting.plate_char_confidence = plate_char_confidence.to_vec();
    sighting
}

/// A track as the wire message, without the keys and audit id (the caller adds them to the
/// first vehicle's).
fn track_response(track: &Track) -> v1::TrackResponse {
    let sightings = track
        .sightings
        .iter()
        .map(|s| {
            with_attributes(
                v1::Sighting {
                    event_id: s.event_id.as_bytes().to_vec(),
                    camera_id: s.camera_id.clone(),
                    captured_at_ms: s.captured_at_ms,
                    object_class: camtrail_proto::convert::object_class_to_wire(s.object_class)
                        as i32,
                    subject_key: s.subject_key.clone(),
                    plate: s.plate.clone(),
                    plate_confidence: s.plate_confidence,
                    district: s.district.clone(),
                    road: s.road.clone(),
                    lat: s.lat,
                    lon: s.lon,
                    match_kind: match_kind(s.match_kind) as i32,
                    match_confidence: s.match_confidence,
                    burst_count: s.burst_count,
                    burst_end_ms: s.burst_end_ms,
                    has_snapshot: s.has_snapshot,
                    cursor: String::new(),
                    ..v1::Sighting::default()
                },
                &s.attributes,
                &s.plate_char_confidence,
            )
        })
        .collect();
    v1::TrackResponse {
        subject_keys: Vec::new(),
        sightings,
        links: track
            .links
            .iter()
            .map(|l| v1::Link {
                from_index: l.from_index as u32,
                to_index: l.to_index as u32,
                distance_km: l.distance_km,
                elapsed_ms: l.elapsed_ms,
                implied_speed_kmh: l.implied_speed_kmh.unwrap_or(0.0),
                confidence: l.confidence,
                impossible: l.impossible,
            })
            .collect(),
        trips: track
            .trips
            .iter()
            .map(|t| v1::Trip {
                first_index: t.first_index as u32,
                last_index: t.last_index as u32,
                start_ms: t.start_ms,
                end_ms: t.end_ms,
                distance_km: t.distance_km,
                districts: t.districts.clone(),
            })
            .collect(),
        transitions: track
            .transitions
            .iter()
            .map(|t| v1::DistrictTransition {
                from_district: t.from_district.clone(),
                to_district: t.to_district.clone(),
                at_ms: t.at_ms,
                from_index: t.from_index as u32,
                to_index: t.to_index as u32,
                camera_id: t.camera_id.clone(),
            })
            .collect(),
        audit_id: String::new(),
        truncated: track.truncated,
        dropped: track
            .dropped
            .iter()
            .map(|d| v1::DroppedSighting {
                event_id: d.event_id.as_bytes().to_vec(),
                camera_id: d.camera_id.clone(),
                captured_at_ms: d.captured_at_ms,
                reason: d.reason.as_str().to_string(),
                merged_into: d
                    .merged_into
                    .map(|id| id.as_bytes().to_vec())
                    .unwrap_or_default(),
                attributed_to: d.attributed_to.clone().unwrap_or_default(),
            })
            .collect(),
        second_vehicle: track
            .second_vehicle
            .as_ref()
            .map(|second| Box::new(track_response(second))),
        stops: track
            .stops
            .iter()
            .map(|s| v1::Stop {
                before_index: s.before_index as u32,
                after_index: s.after_index as u32,
                camera_before: s.camera_before.clone(),
                camera_after: s.camera_after.clone(),
                from_ms: s.from_ms,
                to_ms: s.to_ms,
                moved_km: s.moved_km,
            })
            .collect(),
    }
}

/// A wire filter as the service's: UNSPECIFIED / empty fields filter nothing; unknown enum
/// numbers and bad brands are refused.
fn wire_filter(filter: &v1::SightingFilter) -> Result<PassFilter, Status> {
    let object_class = match filter.object_class {
        0 => None,
        value => Some(
            camtrail_proto::convert::object_class_from_wire(value).ok_or_else(|| {
                status(Error::new(
                    ErrorCode::InvalidClass,
                    "object_class must be UNSPECIFIED, VEHICLE, PERSON or NON_MOTOR",
                ))
            })?,
        ),
    };
    let code = |table, name, value| attributes::filter_code(table, name, value).map_err(status);
    Ok(PassFilter {
        object_class,
        plate_color: code(attributes::PLATE_COLORS, "plate_color", filter.plate_color)?,
        vehicle_color: code(
            attributes::VEHICLE_COLORS,
            "vehicle_color",
            filter.vehicle_color,
        )?,
        vehicle_type: code(
            attributes::VEHICLE_TYPES,
            "vehicle_type",
            filter.vehicle_type,
        )?,
        vehicle_brand: attributes::parse_brand(&filter.vehicle_brand).map_err(status)?,
        direction: code(attributes::DIRECTIONS, "direction", filter.direction)?,
    })
}

/// A wire scene as the service's; a missing area is `invalid_area`.
fn wire_scene(scene: Option<&v1::Scene>) -> Result<SceneSpec, Status> {
    let missing = || status(Error::new(ErrorCode::InvalidArea, "set the scene's area"));
    let scene = scene.ok_or_else(missing)?;
    let area = match scene.area.as_ref().and_then(|a| a.shape.as_ref()) {
        Some(v1::area::Shape::Circle(circle)) => {
            let centre = circle.centre.unwrap_or_default();
            Area::Circle {
                lon: centre.lon,
                lat: centre.lat,
                radius_m: circle.radius_m,
            }
        }
        Some(v1::area::Shape::Polygon(polygon)) => Area::Polygon {
            ring: polygon.ring.iter().map(|p| [p.lon, p.lat]).collect(),
        },
        Some(v1::area::Shape::Cameras(cameras)) => Area::Cameras {
            ids: cameras.camera_ids.clone(),
        },
        None => return Err(missing()),
    };
    Ok(SceneSpec {
        area,
        from_ms: scene.from_ms,
        to_ms: scene.to_ms,
    })
}

/// proto3's 0 ("not set") as the documented default.
fn or_default(value: u32, default: usize) -> usize {
    if value == 0 { default } else { value as usize }
}

fn audit_id(record: &AuditRecord) -> String {
    format!("{}/{}", record.node_id, record.seq)
}

fn purpose(justification: Option<&v1::Justification>) -> Result<Purpose, QueryError> {
    Purpose::new(
        justification.map(|j| j.case_id.as_str()),
        justification.map(|j| j.reason.as_str()),
    )
}

fn match_kind(kind: MatchKind) -> v1::MatchKind {
    match kind {
        MatchKind::Exact => v1::MatchKind::Exact,
        MatchKind::Pattern => v1::MatchKind::Pattern,
        MatchKind::Fuzzy => v1::MatchKind::Fuzzy,
    }
}

impl<S: Store, A: AuditLog> QueryGrpc<S, A> {
    fn caller<T>(&self, request: &Request<T>) -> Result<Caller, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        let principal = self
            .state
            .users
            .authenticate(authorization)
            .ok_or_else(|| status(Error::from_code(ErrorCode::Unauthenticated)))?;
        Ok(Caller {
            principal: principal.clone(),
            client_addr: request
                .remote_addr()
                .map_or_else(|| "unknown".into(), |addr| addr.to_string()),
        })
    }

    fn pass(&self, pass: &StoredSighting) -> v1::Sighting {
        let registry = self.state.service.registry();
        let camera = registry.get(&pass.camera_id);
        let sighting = v1::Sighting {
            event_id: pass.event_id.as_bytes().to_vec(),
            camera_id: pass.camera_id.clone(),
            captured_at_ms: pass.captured_at_ms,
            object_class: camtrail_proto::convert::object_class_to_wire(pass.object_class) as i32,
            subject_key: pass.subject_key.clone(),
            plate: pass.plate.clone(),
            plate_confidence: pass.plate_confidence,
            district: camera.map(|c| c.district.clone()).unwrap_or_default(),
            road: camera.map(|c| c.road.clone()).unwrap_or_default(),
            lat: camera.map_or(0.0, |c| c.lat),
            lon: camera.map_or(0.0, |c| c.lon),
            match_kind: v1::MatchKind::Exact as i32,
            match_confidence: 1.0,
            burst_count: 1,
            burst_end_ms: pass.captured_at_ms,
            has_snapshot: pass.has_snapshot,
            cursor: format_cursor(&PassCursor {
                captured_at_ms: pass.captured_at_ms,
                event_id: pass.event_id,
            }),
            ..v1::Sighting::default()
        };
        with_attributes(sighting, &pass.attributes, &pass.plate_char_confidence)
    }
}

impl<S: Store, A: AuditLog> QueryGrpc<S, A> {
    fn passes_of(&self, sightings: &[StoredSighting]) -> Vec<v1::Sighting> {
        sightings
            .iter()
            .map(|s| v1::Sighting {
                cursor: String::new(),
                ..self.pass(s)
            })
            .collect()
    }

    fn companion(&self, c: &Companion) -> v1::Companion {
        v1::Companion {
            subject_key: c.key.clone(),
            plate: c.plate.clone(),
            shared_cameras: c.shared_cameras as u32,
            mean_abs_dt_ms: c.mean_abs_dt_ms,
            span_ms: c.span_ms,
            evidence: c
                .evidence
                .iter()
                .map(|e| v1::SharedSighting {
                    target: Some(v1::Sighting {
                        cursor: String::new(),
                        ..self.pass(&e.target)
                    }),
                    other: Some(v1::Sighting {
                        cursor: String::new(),
                        ..self.pass(&e.other)
                    }),
                    dt_ms: e.dt_ms,
                })
                .collect(),
        }
    }
}

type SightingStream = Pin<Box<dyn Stream<Item = Result<v1::Sighting, Status>> + Send>>;

#[tonic::async_trait]
impl<S: Store, A: AuditLog> Query for QueryGrpc<S, A> {
    async fn track(
        &self,
        request: Request<v1::TrackRequest>,
    ) -> Result<Response<v1::TrackResponse>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let subject = match request.subject {
            Some(v1::track_request::Subject::Plate(plate))
            | Some(v1::track_request::Subject::PlatePattern(plate)) => Subject::Plate(plate),
            Some(v1::track_request::Subject::SubjectKey(key)) => Subject::SubjectKey(key),
            None => {
                return Err(status(Error::new(
                    ErrorCode::InvalidSubject,
                    "set plate, plate_pattern or subject_key",
                )));
            }
        };
        let track_request = TrackRequest {
            subject,
            from_ms: request.from_ms,
            to_ms: request.to_ms,
            fuzzy: request.fuzzy,
            stop_min_ms: (request.stop_min_ms != 0).then_some(request.stop_min_ms),
            purpose: purpose(request.justification.as_ref()).map_err(status)?,
        };
        let answer = self
            .state
            .service
            .track(&caller, track_request)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::TrackResponse {
            subject_keys: answer.keys.iter().map(|k| k.key.clone()).collect(),
            audit_id: audit_id(&answer.audit),
            ..track_response(&answer.track)
        }))
    }

    type PassesStream = SightingStream;

    async fn passes(
        &self,
        request: Request<v1::PassesRequest>,
    ) -> Result<Response<Self::PassesStream>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let place = match (request.camera_ids.is_empty(), request.district.is_empty()) {
            (false, true) => Place::Cameras(request.camera_ids),
            (true, false) => Place::District(request.district),
            _ => {
                return Err(status(Error::new(
                    ErrorCode::InvalidPlace,
                    "set exactly one of camera_ids and district",
                )));
            }
        };
        let filter = wire_filter(&v1::SightingFilter {
            object_class: request.object_class,
            plate_color: request.plate_color,
            vehicle_color: request.vehicle_color,
            vehicle_type: request.vehicle_type,
            vehicle_brand: request.vehicle_brand,
            direction: request.direction,
        })?;
        let passes_request = PassesRequest {
            place,
            from_ms: request.from_ms,
            to_ms: request.to_ms,
            filter,
            // 0 is proto3's "not set": the documented default page.
            limit: if request.limit == 0 {
                1_000
            } else {
                request.limit as usize
            },
            after: if request.cursor.is_empty() {
                None
            } else {
                Some(parse_cursor(&request.cursor).map_err(status)?)
            },
            purpose: purpose(request.justification.as_ref()).map_err(status)?,
        };
        let answer = self
            .state
            .service
            .passes(&caller, passes_request)
            .await
            .map_err(status)?;
        let sightings: Vec<Result<v1::Sighting, Status>> =
            answer.passes.iter().map(|p| Ok(self.pass(p))).collect();
        Ok(Response::new(Box::pin(tokio_stream::iter(sightings))))
    }

    async fn scene_search(
        &self,
        request: Request<v1::SceneSearchRequest>,
    ) -> Result<Response<v1::SceneSearchResponse>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let scene_request = SceneRequest {
            scene: wire_scene(request.scene.as_ref())?,
            filter: wire_filter(&request.filter.unwrap_or_default())?,
            limit: or_default(request.limit, 100),
            after: if request.cursor.is_empty() {
                None
            } else {
                Some(parse_vehicle_cursor(&request.cursor).map_err(status)?)
            },
            purpose: purpose(request.justification.as_ref()).map_err(status)?,
        };
        let answer = self
            .state
            .service
            .scene(&caller, scene_request)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::SceneSearchResponse {
            cameras: answer.cameras as u32,
            vehicles: answer
                .vehicles
                .iter()
                .map(|v| v1::SceneVehicle {
                    subject_key: v.key.clone(),
                    plate: v.plate.clone(),
                    first_ms: v.first_ms,
                    sightings: self.passes_of(&v.sightings),
                })
                .collect(),
            total_vehicles: answer.total_vehicles as u32,
            unkeyed_sightings: answer.unkeyed_sightings as u32,
            next_cursor: answer.next.map(|c| c.encode()).unwrap_or_default(),
            audit_id: audit_id(&answer.audit),
        }))
    }

    async fn series_search(
        &self,
        request: Request<v1::SeriesSearchRequest>,
    ) -> Result<Response<v1::SeriesSearchResponse>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let series_request = SeriesRequest {
            scenes: request
                .scenes
                .iter()
                .map(|scene| wire_scene(Some(scene)))
                .collect::<Result<_, _>>()?,
            min_scenes: (request.min_scenes != 0).then_some(request.min_scenes as usize),
            fuzzy: request.fuzzy,
            filter: wire_filter(&request.filter.unwrap_or_default())?,
            limit: or_default(request.limit, 100),
            purpose: purpose(request.justification.as_ref()).map_err(status)?,
        };
        let answer = self
            .state
            .service
            .series(&caller, series_request)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::SeriesSearchResponse {
            scene_cameras: answer.scene_cameras.iter().map(|&n| n as u32).collect(),
            min_scenes: answer.min_scenes as u32,
            hits: answer
                .hits
                .iter()
                .map(|hit| v1::SeriesHit {
                    subject_key: hit.key.clone(),
                    plate: hit.plate.clone(),
                    scenes: hit.scenes as u32,
                    fuzzy_links: hit.fuzzy_links as u32,
                    time_offset: hit.time_offset,
                    evidence: hit
                        .evidence
                        .iter()
                        .map(|e| v1::SceneEvidence {
                            scene: e.scene as u32,
                            subject_key: e.key.clone(),
                            link: match e.link {
                                LinkKind::Exact => v1::MatchKind::Exact,
                                LinkKind::Fuzzy => v1::MatchKind::Fuzzy,
                            } as i32,
                            offset: e.offset,
                            sightings: self.passes_of(&e.sightings),
                        })
                        .collect(),
                })
                .collect(),
            total_hits: answer.total_hits as u32,
            audit_id: audit_id(&answer.audit),
        }))
    }

    async fn co_travel(
        &self,
        request: Request<v1::CoTravelRequest>,
    ) -> Result<Response<v1::CoTravelResponse>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let cotravel_request = CoTravelRequest {
            target: request.target_plate,
            other: (!request.other_plate.is_empty()).then_some(request.other_plate),
            from_ms: request.from_ms,
            to_ms: request.to_ms,
            min_cameras: (request.min_cameras != 0).then_some(request.min_cameras as usize),
            delta_ms: (request.delta_ms != 0).then_some(request.delta_ms),
            min_span_ms: request.min_span_ms,
            limit: or_default(request.limit, 100),
            purpose: purpose(request.justification.as_ref()).map_err(status)?,
        };
        let answer = self
            .state
            .service
            .cotravel(&caller, cotravel_request)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::CoTravelResponse {
            target_key: answer.target_key.clone(),
            target_sightings: answer.target_sightings as u32,
            min_cameras: answer.min_cameras as u32,
            delta_ms: answer.delta_ms,
            companions: answer
                .companions
                .iter()
                .map(|c| self.companion(c))
                .collect(),
            total_companions: answer.total_companions as u32,
            together: answer.together,
            audit_id: audit_id(&answer.audit),
            min_span_ms: answer.min_span_ms,
        }))
    }

    async fn get_snapshot(
        &self,
        request: Request<v1::GetSnapshotRequest>,
    ) -> Result<Response<v1::Snapshot>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let event_id = EventId::from_slice(&request.event_id).ok_or_else(|| {
            status(Error::new(
                ErrorCode::InvalidEventId,
                "event ids are 16 bytes",
            ))
        })?;
        let purpose = purpose(request.justification.as_ref()).map_err(status)?;
        let (snapshot, _audit) = self
            .state
            .service
            .snapshot(&caller, event_id, purpose)
            .await
            .map_err(status)?;
        let snapshot = snapshot
            .ok_or_else(|| error_status(ErrorCode::NotFound, "no snapshot for this event"))?;
        Ok(Response::new(v1::Snapshot {
            event_id: event_id.as_bytes().to_vec(),
            jpeg: snapshot.jpeg,
            captured_at_ms: snapshot.captured_at_ms,
        }))
    }

    async fn get_camera(
        &self,
        request: Request<v1::GetCameraRequest>,
    ) -> Result<Response<v1::Camera>, Status> {
        self.caller(&request)?;
        let id = request.into_inner().camera_id;
        self.state
            .service
            .registry()
            .get(&id)
            .map(|c| Response::new(v1::Camera::from(c)))
            .ok_or_else(|| error_status(ErrorCode::NotFound, "no such camera"))
    }

    async fn list_cameras(
        &self,
        request: Request<v1::ListCamerasRequest>,
    ) -> Result<Response<v1::ListCamerasResponse>, Status> {
        self.caller(&request)?;
        let request = request.into_inner();
        let limit = match request.limit {
            0 => 1_000,
            n => (n as usize).min(10_000),
        };
        let cameras = self
            .state
            .service
            .registry()
            .cameras()
            .iter()
            .filter(|c| request.district.is_empty() || c.district == request.district)
            .filter(|c| c.camera_id.as_str() > request.after_camera_id.as_str())
            .take(limit)
            .map(v1::Camera::from)
            .collect();
        Ok(Response::new(v1::ListCamerasResponse { cameras }))
    }

    async fn list_audit(
        &self,
        request: Request<v1::ListAuditRequest>,
    ) -> Result<Response<v1::ListAuditResponse>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let given = |value: String| (!value.is_empty()).then_some(value);
        let audit_request = AuditRequest {
            filter: AuditFilter {
                case_id: given(request.case_id),
                user: given(request.user),
                kind: given(request.kind),
                from_ms: (request.from_ms != 0).then_some(request.from_ms),
                to_ms: (request.to_ms != 0).then_some(request.to_ms),
            },
            after: given(request.cursor)
                .as_deref()
                .map(parse_audit_cursor)
                .transpose()
                .map_err(status)?,
            // 0 is proto3's "not set": the documented default page.
            limit: match request.limit {
                0 => AUDIT_PAGE_DEFAULT,
                n => n as usize,
            },
        };
        let answer = self
            .state
            .service
            .list_audit(&caller, audit_request)
            .await
            .map_err(status)?;
        let records = answer
            .records
            .into_iter()
            .map(|r| v1::AuditRecord {
                node_id: r.node_id,
                seq: r.seq,
                at_ms: r.entry.at_ms,
                user: r.entry.user,
                role: r.entry.role,
                case_id: r.entry.case_id,
                reason: r.entry.reason,
                kind: r.entry.kind,
                parameters_json: r.entry.parameters_json,
                result_count: r.entry.result_count,
                client_addr: r.entry.client_addr,
                prev_hash: r.prev_hash,
                hash: r.hash,
            })
            .collect();
        Ok(Response::new(v1::ListAuditResponse {
            records,
            next_cursor: answer.next.map(|c| c.encode()).unwrap_or_default(),
            audit_id: audit_id(&answer.audit),
        }))
    }

    async fn open_case(
        &self,
        request: Request<v1::OpenCaseRequest>,
    ) -> Result<Response<v1::CaseResponse>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let answer = self
            .state
            .service
            .open_case(
                &caller,
                OpenCase {
                    case_id: request.case_id,
                    title: request.title,
                    category: request.category,
                    assigned: request.assigned,
                    ends_at_ms: request.ends_at_ms,
                    reason: request.reason,
                },
            )
            .await
            .map_err(status)?;
        Ok(Response::new(v1::CaseResponse {
            case: Some(case_to_wire(answer.case)),
            audit_id: audit_id(&answer.audit),
        }))
    }

    async fn change_case(
        &self,
        request: Request<v1::ChangeCaseRequest>,
    ) -> Result<Response<v1::CaseResponse>, Status> {
        use v1::change_case_request::Change;
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let change = match request.change {
            Some(Change::Assign(assign)) => CaseChange::Assign {
                add: assign.add,
                remove: assign.remove,
            },
            Some(Change::ExtendToMs(ends_at_ms)) => CaseChange::Extend { ends_at_ms },
            Some(Change::Close(true)) => CaseChange::Close,
            Some(Change::Close(false)) | None => {
                return Err(error_status(
                    ErrorCode::InvalidCaseField,
                    "set one change: assign, extend_to_ms or close = true",
                ));
            }
        };
        let answer = self
            .state
            .service
            .change_case(&caller, &request.case_id, change, &request.reason)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::CaseResponse {
            case: Some(case_to_wire(answer.case)),
            audit_id: audit_id(&answer.audit),
        }))
    }

    async fn list_cases(
        &self,
        request: Request<v1::ListCasesRequest>,
    ) -> Result<Response<v1::ListCasesResponse>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let status_filter = match request.status.as_str() {
            "" => None,
            name => Some(CaseStatus::parse(name).ok_or_else(|| {
                error_status(ErrorCode::InvalidQuery, "status is open, closed or empty")
            })?),
        };
        let cases = self
            .state
            .service
            .list_cases(&caller, status_filter)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::ListCasesResponse {
            cases: cases.into_iter().map(case_to_wire).collect(),
            categories: self.state.service.case_config().categories.clone(),
        }))
    }

    async fn place_holds(
        &self,
        request: Request<v1::PlaceHoldsRequest>,
    ) -> Result<Response<v1::PlaceHoldsResponse>, Status> {
        let caller = self.caller(&request)?;
        let request = request.into_inner();
        let ids: Vec<String> = request
            .event_ids
            .iter()
            .map(|bytes| {
                EventId::from_slice(bytes)
                    .map(|id| id.to_hex())
                    .ok_or_else(|| {
                        error_status(
                            ErrorCode::InvalidEventId,
                            "event ids are 16 bytes, not all zero",
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        let answer = self
            .state
            .service
            .place_holds(&caller, &request.case_id, &ids, &request.reason)
            .await
            .map_err(status)?;
        Ok(Response::new(v1::PlaceHoldsResponse {
            holds: answer.holds.into_iter().map(hold_to_wire).collect(),
            audit_id: audit_id(&answer.audit),
        }))
    }

    type SubscribeAlertsStream =
        Pin<Box<dyn Stream<Item = Result<v1::WatchlistAlert, Status>> + Send>>;

    async fn subscribe_alerts(
        &self,
        request: Request<v1::SubscribeAlertsRequest>,
    ) -> Result<Response<Self::SubscribeAlertsStream>, Status> {
        use crate::alerts::Live;
        use tokio_stream::StreamExt;
        let caller = self.caller(&request)?;
        if !caller.principal.role.may_search() {
            return Err(error_status(
                ErrorCode::Forbidden,
                "this role receives no alerts",
            ));
        }
        let supervisor = caller.principal.role.is_supervisor();
        let user = caller.principal.user;
        let alerts =
            self.state
                .service
                .alerts()
                .live()
                .filter_map(move |received| match received {
                    Live::Alert(alert) if supervisor || alert.audience.contains(&user) => {
                        Some(Ok(alert_to_wire(&alert)))
                    }
                    Live::Alert(_) => None,
                    Live::Missed(missed) => Some(Ok(v1::WatchlistAlert {
                        missed,
                        ..v1::WatchlistAlert::default()
                    })),
                });
        Ok(Response::new(Box::pin(alerts)))
    }

    async fn list_holds(
        &self,
        request: Request<v1::ListHoldsRequest>,
    ) -> Result<Response<v1::ListHoldsResponse>, Status> {
        let caller = self.caller(&request)?;
        let case_id = request.into_inner().case_id;
        let holds = self
            .state
            .service
            .list_holds(&caller, (!case_id.is_empty()).then_some(case_id.as_str()))
            .await
            .map_err(status)?;
        Ok(Response::new(v1::ListHoldsResponse {
            holds: holds.into_iter().map(hold_to_wire).collect(),
        }))
    }
}

fn case_to_wire(case: Case) -> v1::Case {
    v1::Case {
        case_id: case.case_id,
        title: case.title,
        category: case.category,
        assigned: case.assigned,
        status: case.status.as_str().to_string(),
        opened_by: case.opened_by,
        opened_at_ms: case.opened_at_ms,
        ends_at_ms: case.ends_at_ms,
        updated_by: case.updated_by,
        updated_at_ms: case.updated_at_ms,
        version: case.version,
    }
}

fn alert_to_wire(alert: &camtrail_model::watchlist::Alert) -> v1::WatchlistAlert {
    use camtrail_model::watchlist::MatchKind;
    v1::WatchlistAlert {
        entry_id: alert.entry_id.clone(),
        title: alert.title.clone(),
        case_id: alert.case_id.clone(),
        priority: u32::from(alert.priority),
        match_kind: match alert.kind {
            MatchKind::Exact => "exact",
            MatchKind::Fuzzy => "fuzzy",
            MatchKind::Pattern => "pattern",
        }
        .into(),
        confidence: alert.confidence,
        event_id: EventId::parse_hex(&alert.event_id)
            .map(|id| id.as_bytes().to_vec())
            .unwrap_or_default(),
        plate_read: alert.plate_read.clone(),
        camera_id: alert.camera_id.clone(),
        district: alert.district.clone(),
        lat: alert.lat,
        lon: alert.lon,
        captured_at_ms: alert.captured_at_ms,
        has_snapshot: alert.has_snapshot,
        matched_at_ms: alert.matched_at_ms,
        past: alert.past,
        missed: 0,
    }
}

fn hold_to_wire(hold: Hold) -> v1::Hold {
    v1::Hold {
        case_id: hold.case_id,
        event_id: EventId::parse_hex(&hold.event_id)
            .map(|id| id.as_bytes().to_vec())
            .unwrap_or_default(),
        placed_by: hold.placed_by,
        placed_at_ms: hold.placed_at_ms,
    }
}
