//! The GA/T 1400 HTTP endpoints (see the module doc of [`super`]).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use camtrail_common::now_ms;
use camtrail_model::{Camera, CameraRegistry, ErrorCode};
use camtrail_proto::convert::error_code_of_rejection;
use camtrail_proto::gat1400::{
    self, DeviceObject, Lane, LaneListRequest, MapContext, MotorVehicle, MotorVehicleListRequest,
    ResponseStatus, ResponseStatusEnvelope, ResponseStatusList, ResponseStatusListEnvelope,
    SystemTime, SystemTimeEnvelope, Tollgate, TollgateListRequest, status,
};
use camtrail_proto::v1::RejectionCode;
use camtrail_proto::wire::{RawDetectionEvent, RawEventBatch};
use chrono_tz::Tz;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::Gat1400Config;
use super::devices::{Device, DeviceTable, Registrations};
use super::digest::{DigestAuthority, Refusal};
use super::registry::{RegistryHook, RegistryUpdater};
use crate::service::{IngestState, UNARY_PERMIT_WAIT};

/// Bodies above this size are mapped on the blocking pool (JSON and base64 work).
const INLINE_MAP_MAX_BYTES: usize = 256 * 1024;

/// Label: endpoint and how the request ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabel {
    endpoint: &'static str,
    outcome: &'static str,
}

/// GA/T 1400 metrics (labels: endpoint, outcome, refusal reason; never ids or plates).
struct Gat1400Metrics {
    requests: Family<RequestLabel, Counter>,
    objects_accepted: Counter,
    objects_rejected: Counter,
}

impl Gat1400Metrics {
    fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            objects_accepted: Counter::default(),
            objects_rejected: Counter::default(),
        };
        let sub = registry.sub_registry_with_prefix("camtrail_gat1400");
        sub.register(
            "requests",
            "GA/T 1400 requests by endpoint and outcome (ok, or why not)",
            metrics.requests.clone(),
        );
        sub.register(
            "objects_accepted",
            "MotorVehicleObjects accepted and durable",
            metrics.objects_accepted.clone(),
        );
        sub.register(
            "objects_rejected",
            "MotorVehicleObjects answered with a per-object error",
            metrics.objects_rejected.clone(),
        );
        metrics
    }

    fn request(&self, endpoint: &'static str, outcome: &'static str) {
        self.requests
            .get_or_create(&RequestLabel { endpoint, outcome })
            .inc();
    }
}

/// Everything the endpoints share.
pub struct Gat1400State {
    ingest: Arc<IngestState>,
    devices: DeviceTable,
    registrations: Registrations,
    digest: DigestAuthority,
    updater: RegistryUpdater,
    zone: Tz,
    config: Gat1400Config,
    metrics: Gat1400Metrics,
}

/// The bound GA/T 1400 listener and its state.
pub struct Gat1400Server {
    listener: TcpListener,
    app: Router,
    state: Arc<Gat1400State>,
}

impl Gat1400Server {
    /// Bind `config.addr` (port 0 picks one) for `devices`. Registry updates go to
    /// `registry_path` (if any), then the hooks added with
    /// [`Gat1400Server::add_registry_hook`], then the node's validator.
    pub async fn bind_with(
        config: &Gat1400Config,
        ingest: Arc<IngestState>,
        devices: DeviceTable,
        registry_path: Option<std::path::PathBuf>,
        metrics: &mut Registry,
    ) -> anyhow::Result<Self> {
        let zone = config.zone()?;
        let updater =
            RegistryUpdater::new(registry_path, Vec::new(), Arc::clone(&ingest.validator));
        let state = Arc::new(Gat1400State {
            ingest,
            devices,
            registrations: Registrations::default(),
            digest: DigestAuthority::new(
                &config.realm,
                Duration::from_secs(config.nonce_lifetime_s),
            )?,
            updater,
            zone,
            config: config.clone(),
            metrics: Gat1400Metrics::register(metrics),
        });
        let app = Router::new()
            .route("/VIID/System/Register", post(register))
            .route("/VIID/System/Keepalive", post(keepalive))
            .route("/VIID/System/UnRegister", post(unregister))
            .route("/VIID/System/Time", get(system_time))
            .route("/VIID/MotorVehicles", post(motor_vehicles))
            .route("/VIID/Tollgates", post(tollgates))
            .route("/VIID/Lanes", post(lanes))
            .layer(DefaultBodyLimit::max(config.max_body_bytes))
            .layer(axum::middleware::from_fn_with_state(
                Arc::clone(&state),
                too_large,
            ))
            .with_state(Arc::clone(&state));
        let listener = TcpListener::bind(config.addr)
            .await
            .map_err(|error| anyhow::anyhow!("binding GA/T 1400 HTTP {}: {error}", config.addr))?;
        Ok(Self {
            listener,
            app,
            state,
        })
    }

    /// Also replace `hook`'s copy of the registry on every checkpoint update.
    pub fn add_registry_hook(&self, hook: RegistryHook) {
        self.state.updater.add_hook(hook);
    }

    /// Bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serve until `stop` is cancelled (TLS when `tls` is given).
    pub async fn serve(
        self,
        tls: Option<&camtrail_common::tls::TlsConfig>,
        stop: CancellationToken,
    ) -> anyhow::Result<()> {
        match tls {
            Some(tls) => {
                camtrail_common::tls::serve_https(
                    self.listener,
                    self.app,
                    camtrail_common::tls::rustls_config(tls)?,
                    async move { stop.cancelled().await },
                )
                .await
            }
            None => axum::serve(self.listener, self.app)
                .with_graceful_shutdown(async move { stop.cancelled().await })
                .await
                .map_err(Into::into),
        }
    }
}

type Shared = State<Arc<Gat1400State>>;

/// One `ResponseStatusObject` answer.
fn answer(
    state: &Gat1400State,
    http: StatusCode,
    url: &str,
    id: &str,
    code: i32,
    text: &str,
) -> Response {
    let body = ResponseStatusEnvelope {
        ResponseStatusObject: status_object(state, url, id, code, text),
    };
    (http, axum::Json(body)).into_response()
}

fn status_object(
    state: &Gat1400State,
    url: &str,
    id: &str,
    code: i32,
    text: &str,
) -> ResponseStatus {
    status_at(&local_time(state), url, id, code, text)
}

/// The node's clock as `LocalTime` (once per answer, not per object).
fn local_time(state: &Gat1400State) -> String {
    gat1400::time::format(now_ms(), state.zone)
}

fn status_at(local_time: &str, url: &str, id: &str, code: i32, text: &str) -> ResponseStatus {
    ResponseStatus {
        Id: id.to_string(),
        RequestURL: url.to_string(),
        StatusCode: code,
        StatusString: text.to_string(),
        LocalTime: local_time.to_string(),
    }
}

/// 401 with fresh challenges (`stale=true` when the nonce only aged).
fn unauthorized(state: &Gat1400State, url: &str, refusal: Refusal) -> Response {
    let mut response = answer(
        state,
        StatusCode::UNAUTHORIZED,
        url,
        "",
        status::INVALID_OPERATION,
        &format!("unauthenticated: {}", refusal.as_str()),
    );
    for challenge in state.digest.challenges(now_ms(), refusal == Refusal::Stale) {
        if let Ok(value) = HeaderValue::from_str(&challenge) {
            response
                .headers_mut()
                .append(header::WWW_AUTHENTICATE, value);
        }
    }
    response
}

/// Authenticate (Digest), check `User-Identify`, and, unless registering, that the device
/// registered. The device, or the answer to send.
fn admit<'s>(
    state: &'s Gat1400State,
    endpoint: &'static str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    must_be_registered: bool,
) -> Result<&'s Device, Box<Response>> {
    let url = uri.path();
    let target = uri.path_and_query().map_or(url, |p| p.as_str());
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok());
    let now = now_ms();
    let device_id = state
        .digest
        .verify(authorization, method.as_str(), target, &state.devices, now)
        .map_err(|refusal| {
            state.metrics.request(endpoint, refusal.as_str());
            if refusal != Refusal::Missing {
                tracing::debug!(
                    reason = refusal.as_str(),
                    endpoint,
                    "GA/T 1400 digest refused"
                );
            }
            Box::new(unauthorized(state, url, refusal))
        })?;
    let device = state
        .devices
        .get(&device_id)
        .ok_or_else(|| Box::new(unauthorized(state, url, Refusal::UnknownDevice)))?;
    let identify = headers
        .get("User-Identify")
        .and_then(|value| value.to_str().ok());
    if identify.is_some_and(|id| id.trim() != device.device_id) {
        state.metrics.request(endpoint, "identity_mismatch");
        return Err(Box::new(answer(
            state,
            StatusCode::FORBIDDEN,
            url,
            &device.device_id,
            status::INVALID_OPERATION,
            "forbidden: User-Identify names another device than the credential",
        )));
    }
    if must_be_registered {
        let expiry_ms = i64::try_from(state.config.registration_expiry_s)
            .unwrap_or(i64::MAX / 1000)
            .saturating_mul(1000);
        if !state.registrations.check(&device.device_id, now, expiry_ms) {
            state.metrics.request(endpoint, "not_registered");
            return Err(Box::new(answer(
                state,
                StatusCode::UNAUTHORIZED,
                url,
                &device.device_id,
                status::INVALID_OPERATION,
                "not_registered: register with POST /VIID/System/Register first \
                 (and keep alive within the expiry)",
            )));
        }
    }
    Ok(device)
}

fn malformed_json(state: &Gat1400State, endpoint: &'static str, url: &str, what: &str) -> Response {
    state.metrics.request(endpoint, "malformed_json");
    answer(
        state,
        StatusCode::BAD_REQUEST,
        url,
        "",
        status::INVALID_JSON_FORMAT,
        &format!("invalid_query: the body is not a {what} JSON object"),
    )
}

/// Register, keep alive or unregister: the same shape, `{"<name>": {"DeviceID": …}}`.
#[derive(Clone, Copy)]
enum SystemOperation {
    Register,
    Keepalive,
    UnRegister,
}

impl SystemOperation {
    fn endpoint(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Keepalive => "keepalive",
            Self::UnRegister => "unregister",
        }
    }

    /// The body's object name.
    fn object(self) -> &'static str {
        match self {
            Self::Register => "RegisterObject",
            Self::Keepalive => "KeepaliveObject",
            Self::UnRegister => "UnRegisterObject",
        }
    }
}

async fn register(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    system_operation(
        &state,
        SystemOperation::Register,
        &method,
        &uri,
        &headers,
        &body,
    )
}

async fn keepalive(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    system_operation(
        &state,
        SystemOperation::Keepalive,
        &method,
        &uri,
        &headers,
        &body,
    )
}

async fn unregister(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    system_operation(
        &state,
        SystemOperation::UnRegister,
        &method,
        &uri,
        &headers,
        &body,
    )
}

fn system_operation(
    state: &Gat1400State,
    operation: SystemOperation,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Response {
    let endpoint = operation.endpoint();
    // Only a registered device keeps alive; anyone authenticated may (un)register itself.
    let must_be_registered = matches!(operation, SystemOperation::Keepalive);
    let device = match admit(state, endpoint, method, uri, headers, must_be_registered) {
        Ok(device) => device,
        Err(response) => return *response,
    };
    let parsed = serde_json::from_slice::<std::collections::HashMap<String, DeviceObject>>(body);
    let Some(object) = parsed
        .ok()
        .and_then(|mut map| map.remove(operation.object()))
    else {
        return malformed_json(state, endpoint, uri.path(), operation.object());
    };
    device_operation(
        state,
        endpoint,
        uri.path(),
        device,
        &object.DeviceID,
        |s, id| match operation {
            SystemOperation::UnRegister => {
                s.registrations.remove(id);
            }
            SystemOperation::Register | SystemOperation::Keepalive => {
                s.registrations.touch(id, now_ms());
            }
        },
    )
}

/// A device may register, keep alive or unregister only itself.
fn device_operation(
    state: &Gat1400State,
    endpoint: &'static str,
    url: &str,
    device: &Device,
    body_device_id: &str,
    apply: impl FnOnce(&Gat1400State, &str),
) -> Response {
    if body_device_id.trim() != device.device_id {
        state.metrics.request(endpoint, "identity_mismatch");
        return answer(
            state,
            StatusCode::FORBIDDEN,
            url,
            body_device_id,
            status::INVALID_OPERATION,
            "forbidden: the DeviceID in the body is not the authenticated device",
        );
    }
    apply(state, &device.device_id);
    state.metrics.request(endpoint, "ok");
    answer(
        state,
        StatusCode::OK,
        url,
        &device.device_id,
        status::OK,
        "OK",
    )
}

async fn system_time(State(state): Shared) -> Response {
    state.metrics.request("time", "ok");
    axum::Json(SystemTimeEnvelope {
        SystemTimeObject: SystemTime {
            VIIDServerID: state.config.server_id.clone(),
            TimeMode: "1".into(),
            LocalTime: gat1400::time::format(now_ms(), state.zone),
            TimeZone: state.config.time_zone.clone(),
        },
    })
    .into_response()
}

/// The per-object outcome of mapping, before validation.
pub(crate) enum Mapped {
    /// Goes into the batch at this index.
    Event(usize),
    /// Refused by the mapping.
    Refused(camtrail_model::Error),
}

/// What mapping a body gave: per object its id and outcome, and the batch of mapped events.
pub(crate) struct MappedBody {
    pub(crate) ids: Vec<String>,
    pub(crate) outcomes: Vec<Mapped>,
    pub(crate) events: Vec<RawDetectionEvent>,
}

/// Parse and map a `MotorVehicleListObject` body; `None` when it is not one.
fn map_body(body: &[u8], context: &MapContext<'_>) -> Option<MappedBody> {
    let request: MotorVehicleListRequest<'_> = serde_json::from_slice(body).ok()?;
    let objects = request.list.objects;
    let mut mapped = MappedBody {
        ids: Vec::with_capacity(objects.len()),
        outcomes: Vec::with_capacity(objects.len()),
        events: Vec::with_capacity(objects.len()),
    };
    for raw in objects {
        let (id, outcome) = match MotorVehicle::decode(raw) {
            Ok(vehicle) => {
                let id = vehicle.id();
                match vehicle.to_event(context) {
                    Ok(event) => {
                        mapped.events.push(event);
                        (id, Mapped::Event(mapped.events.len() - 1))
                    }
                    Err(error) => (id, Mapped::Refused(error)),
                }
            }
            Err(error) => (String::new(), Mapped::Refused(error)),
        };
        mapped.ids.push(id);
        mapped.outcomes.push(outcome);
    }
    Some(mapped)
}

async fn motor_vehicles(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "motor_vehicles";
    let url = uri.path();
    let device = match admit(&state, ENDPOINT, &method, &uri, &headers, true) {
        Ok(device) => device,
        Err(response) => return *response,
    };
    if state.ingest.shutdown.is_cancelled() {
        return busy(
            &state,
            ENDPOINT,
            url,
            "shutting_down: the node is stopping; resend to another",
        );
    }
    let gateway = device.gateway_id.as_str();
    // The gRPC PublishBatch rule: a permit now, or within a short wait, or "busy" —
    // taken before the body is mapped, so a saturated node spends nothing on what it
    // refuses.
    let permits = &state.ingest.node_permits;
    let permit = match permits.try_acquire(gateway) {
        Some(permit) => permit,
        None => match tokio::time::timeout(UNARY_PERMIT_WAIT, permits.acquire(gateway)).await {
            Ok(Some(permit)) => permit,
            Ok(None) => {
                return busy(
                    &state,
                    ENDPOINT,
                    url,
                    "shutting_down: the node is stopping; resend to another",
                );
            }
            Err(_) => {
                state.ingest.metrics.batch(ErrorCode::Overloaded.name());
                return busy(
                    &state,
                    ENDPOINT,
                    url,
                    "overloaded: the node is saturated; resend later",
                );
            }
        },
    };
    let zone = device.time_zone;
    let max_snapshot_bytes = state.ingest.validator.limits().max_snapshot_bytes;
    let registry = state.ingest.validator.registry();
    let mapped = if body.len() <= INLINE_MAP_MAX_BYTES {
        map_with(&body, zone, max_snapshot_bytes, &registry)
    } else {
        let registry = Arc::clone(&registry);
        let body = body.clone();
        match tokio::task::spawn_blocking(move || {
            map_with(&body, zone, max_snapshot_bytes, &registry)
        })
        .await
        {
            Ok(mapped) => mapped,
            Err(_) => return failed(&state, ENDPOINT, url, "internal: mapping task failed"),
        }
    };
    let Some(mapped) = mapped else {
        return malformed_json(&state, ENDPOINT, url, "MotorVehicleListObject");
    };
    let MappedBody {
        ids,
        outcomes,
        events,
    } = mapped;
    let batch = RawEventBatch {
        gateway_id: gateway.as_bytes().to_vec(),
        batch_seq: 0,
        events,
    };
    let ack = match state.ingest.process(gateway, batch).await {
        Ok(ack) => ack,
        Err(grpc) => {
            drop(permit);
            return from_grpc(&state, ENDPOINT, url, &grpc);
        }
    };
    drop(permit);
    // Rejections of the batch by index into `events`.
    let mut rejected: std::collections::HashMap<u32, (RejectionCode, String)> = ack
        .rejections
        .into_iter()
        .map(|r| {
            (
                r.index,
                (
                    RejectionCode::try_from(r.code).unwrap_or_default(),
                    r.message,
                ),
            )
        })
        .collect();
    let mut statuses = Vec::with_capacity(ids.len());
    let now = local_time(&state);
    let (mut accepted, mut refused) = (0u64, 0u64);
    for (id, outcome) in ids.iter().zip(outcomes) {
        let (code, text) = match outcome {
            Mapped::Refused(error) => (
                status::INVALID_JSON_CONTENT,
                format!("{}: {}", error.code.name(), error.message),
            ),
            Mapped::Event(index) => match rejected.remove(&(index as u32)) {
                None => (status::OK, "OK".to_string()),
                Some((code, message)) => {
                    let name = error_code_of_rejection(code).map_or("invalid", |c| c.name());
                    let text = if message.is_empty() {
                        name.to_string()
                    } else {
                        format!("{name}: {message}")
                    };
                    (status::INVALID_JSON_CONTENT, text)
                }
            },
        };
        if code == status::OK {
            accepted += 1;
        } else {
            refused += 1;
        }
        statuses.push(status_at(&now, url, id, code, &text));
    }
    state.metrics.objects_accepted.inc_by(accepted);
    state.metrics.objects_rejected.inc_by(refused);
    state.metrics.request(ENDPOINT, "ok");
    axum::Json(ResponseStatusListEnvelope {
        ResponseStatusListObject: ResponseStatusList {
            ResponseStatusObject: statuses,
        },
    })
    .into_response()
}

pub(crate) fn map_with(
    body: &[u8],
    zone: Option<Tz>,
    max_snapshot_bytes: usize,
    registry: &CameraRegistry,
) -> Option<MappedBody> {
    let is_camera = |id: &str| registry.get(id).is_some();
    let context = MapContext {
        zone,
        max_snapshot_bytes,
        is_camera: &is_camera,
    };
    map_body(body, &context)
}

/// A declared body at most this large is read and dropped before its 413 goes out.
const DRAIN_MAX_BYTES: u64 = 64 * 1024 * 1024;
/// ... within this long.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// 413 for a body declared (`Content-Length`) over `max_body_bytes`, with a GA/T 1400
/// status. The body is read and dropped first (bounded): a server that answers while the
/// client is still sending and then closes makes the kernel reset the connection, and the
/// client sees a broken pipe instead of the code (seen in CI). Bodies without a length are
/// cut at the limit by `DefaultBodyLimit`.
async fn too_large(
    State(state): Shared,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let limit = state.config.max_body_bytes as u64;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    let Some(length) = declared.filter(|length| *length > limit) else {
        return next.run(request).await;
    };
    let url = request.uri().path().to_string();
    // A client that waits for `100 Continue` (curl does, for large bodies) has sent nothing
    // yet: answer at once rather than invite the upload.
    let waits = request
        .headers()
        .get(header::EXPECT)
        .is_some_and(|value| value.as_bytes().eq_ignore_ascii_case(b"100-continue"));
    if length <= DRAIN_MAX_BYTES && !waits {
        use futures::StreamExt;
        let mut body = request.into_body().into_data_stream();
        let _ = tokio::time::timeout(DRAIN_TIMEOUT, async {
            while let Some(Ok(_)) = body.next().await {}
        })
        .await;
    }
    state.metrics.request("body", "too_large");
    let mut response = answer(
        &state,
        StatusCode::PAYLOAD_TOO_LARGE,
        &url,
        "",
        status::OTHER_ERROR,
        &format!("payload_too_large: the body is {length} bytes, at most {limit} are taken"),
    );
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

/// 503 with `Retry-After`: nothing of the request was stored; resend it.
fn busy(state: &Gat1400State, endpoint: &'static str, url: &str, text: &str) -> Response {
    state.metrics.request(endpoint, "busy");
    let mut response = answer(
        state,
        StatusCode::SERVICE_UNAVAILABLE,
        url,
        "",
        status::DEVICE_BUSY,
        text,
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn failed(state: &Gat1400State, endpoint: &'static str, url: &str, text: &str) -> Response {
    state.metrics.request(endpoint, "failed");
    answer(
        state,
        StatusCode::INTERNAL_SERVER_ERROR,
        url,
        "",
        status::OTHER_ERROR,
        text,
    )
}

/// A whole-request error of the ingest path, as HTTP.
fn from_grpc(
    state: &Gat1400State,
    endpoint: &'static str,
    url: &str,
    grpc: &tonic::Status,
) -> Response {
    use tonic::Code;
    match grpc.code() {
        Code::Unavailable | Code::ResourceExhausted => busy(state, endpoint, url, grpc.message()),
        Code::InvalidArgument | Code::OutOfRange => {
            state.metrics.request(endpoint, "invalid");
            answer(
                state,
                StatusCode::BAD_REQUEST,
                url,
                "",
                status::INVALID_JSON_CONTENT,
                grpc.message(),
            )
        }
        Code::PermissionDenied => {
            state.metrics.request(endpoint, "forbidden");
            answer(
                state,
                StatusCode::FORBIDDEN,
                url,
                "",
                status::INVALID_OPERATION,
                grpc.message(),
            )
        }
        _ => failed(state, endpoint, url, grpc.message()),
    }
}

/// Answer a list of per-object results (tollgates, lanes) in request order.
fn status_list(
    state: &Gat1400State,
    url: &str,
    results: Vec<(String, Result<(), camtrail_model::Error>)>,
) -> Response {
    let now = local_time(state);
    let statuses = results
        .into_iter()
        .map(|(id, result)| match result {
            Ok(()) => status_at(&now, url, &id, status::OK, "OK"),
            Err(error) => status_at(
                &now,
                url,
                &id,
                status::INVALID_JSON_CONTENT,
                &format!("{}: {}", error.code.name(), error.message),
            ),
        })
        .collect();
    axum::Json(ResponseStatusListEnvelope {
        ResponseStatusListObject: ResponseStatusList {
            ResponseStatusObject: statuses,
        },
    })
    .into_response()
}

/// A camera may be (re)registered by the gateway that owns it, or be new.
fn check_owner(registry: &CameraRegistry, camera: &Camera) -> Result<(), camtrail_model::Error> {
    match registry.get(&camera.camera_id) {
        Some(existing) if existing.gateway_id != camera.gateway_id => {
            Err(camtrail_model::Error::new(
                ErrorCode::CameraNotOwned,
                format!(
                    "camera {:?} is assigned to another gateway",
                    camera.camera_id
                ),
            ))
        }
        _ => Ok(()),
    }
}

async fn tollgates(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "tollgates";
    let url = uri.path();
    let device = match admit(&state, ENDPOINT, &method, &uri, &headers, true) {
        Ok(device) => device,
        Err(response) => return *response,
    };
    let Ok(request) = serde_json::from_slice::<TollgateListRequest>(&body) else {
        return malformed_json(&state, ENDPOINT, url, "TollgateListObject");
    };
    let current = state.updater.current();
    let district_of = |code: &str| {
        state
            .config
            .districts
            .get(code)
            .cloned()
            .unwrap_or_else(|| code.to_string())
    };
    let (cameras, results) = owned_cameras(
        &current,
        &request.TollgateListObject.TollgateObject,
        |raw| match Tollgate::decode(raw) {
            Ok(tollgate) => (
                tollgate.id(),
                tollgate.to_camera(&device.gateway_id, &district_of),
            ),
            Err(error) => (String::new(), Err(error)),
        },
    );
    apply_cameras(&state, ENDPOINT, url, cameras, results).await
}

async fn lanes(
    State(state): Shared,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    const ENDPOINT: &str = "lanes";
    let url = uri.path();
    if let Err(response) = admit(&state, ENDPOINT, &method, &uri, &headers, true) {
        return *response;
    }
    let Ok(request) = serde_json::from_slice::<LaneListRequest>(&body) else {
        return malformed_json(&state, ENDPOINT, url, "LaneListObject");
    };
    let current = state.updater.current();
    let (cameras, results) =
        owned_cameras(
            &current,
            &request.LaneListObject.LaneObject,
            |raw| match Lane::decode(raw) {
                Ok(lane) => {
                    let camera = match current.get(&lane.tollgate_id()) {
                        Some(tollgate) => lane.to_camera(tollgate),
                        None => Err(camtrail_model::Error::new(
                            ErrorCode::UnknownCamera,
                            "the lane's TollgateID is not registered; POST /VIID/Tollgates first",
                        )),
                    };
                    (lane.id(), camera)
                }
                Err(error) => (String::new(), Err(error)),
            },
        );
    apply_cameras(&state, ENDPOINT, url, cameras, results).await
}

/// Each raw object as a camera (`convert`: its id and camera, or why not), kept if no
/// other gateway owns that camera id; the cameras to store and every object's result.
#[allow(clippy::type_complexity)]
fn owned_cameras(
    current: &CameraRegistry,
    raws: &[Box<serde_json::value::RawValue>],
    convert: impl Fn(&serde_json::value::RawValue) -> (String, Result<Camera, camtrail_model::Error>),
) -> (
    Vec<Camera>,
    Vec<(String, Result<(), camtrail_model::Error>)>,
) {
    let mut results = Vec::with_capacity(raws.len());
    let mut cameras = Vec::new();
    for raw in raws {
        let (id, camera) = convert(raw);
        let checked = camera.and_then(|camera| check_owner(current, &camera).map(|()| camera));
        results.push((id, checked.as_ref().map(|_| ()).map_err(Clone::clone)));
        if let Ok(camera) = checked {
            cameras.push(camera);
        }
    }
    (cameras, results)
}

async fn apply_cameras(
    state: &Gat1400State,
    endpoint: &'static str,
    url: &str,
    cameras: Vec<Camera>,
    results: Vec<(String, Result<(), camtrail_model::Error>)>,
) -> Response {
    if !cameras.is_empty()
        && let Err(error) = state.updater.upsert(cameras).await
    {
        tracing::warn!(%error, endpoint, "registry update failed; nothing of it is in force");
        return failed(
            state,
            endpoint,
            url,
            "registry_update_failed: the checkpoints were not stored; resend later",
        );
    }
    state.metrics.request(endpoint, "ok");
    status_list(state, url, results)
}
