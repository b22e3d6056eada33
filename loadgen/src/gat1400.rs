//! One gateway as a GA/T 1400 platform: registers, keeps alive, and POSTs batches of
//! `MotorVehicleObject`s to `/VIID/MotorVehicles`, up to `max_in_flight` at once.
//!
//! - **Digest** (RFC 7616, `qop=auth`, SHA-256 preferred over MD5) through the
//!   `digest_auth` crate. The node refuses an `nc` not higher than the last it accepted for
//!   a nonce, and concurrent requests on one nonce could arrive out of order, so each
//!   request slot has a nonce of its own ([`DigestSession`]) and sends one request at a time.
//!   A slot gets its nonce from the 401 to an empty, unauthenticated `Keepalive` (so a large
//!   batch is never sent just to be refused), and takes the fresh nonce of any later 401
//!   (`stale=true` or not) and resends.
//! - **Answers** (see [`classify`]): 200 carries one status per object, counted as accepted
//!   (`StatusCode` 0) or rejected with the error code named in `StatusString`; 503 waits
//!   `Retry-After` and resends the same body; a transport error or no answer within
//!   `ack_timeout` resends after the reconnect backoff; a 401 "not registered" registers again;
//!   400, 403, 413 and other client errors fail the run (resending cannot fix them).
//! - **Latency** is measured as in the gRPC mode: from the first time the batch's body was
//!   sent to the 200 that answered it.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use bytes::Bytes;
use camtrail_model::ErrorCode;
use camtrail_proto::convert::rejection_code;
use camtrail_proto::gat1400::{
    self, DeviceObject, KeepaliveRequest, RegisterRequest, ResponseStatus,
    ResponseStatusListEnvelope, UnRegisterRequest, encode,
};
use camtrail_proto::v1::{DetectionEvent, RejectionCode};
use http_body_util::{BodyExt, Full};
use hyper::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Serialize;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::config::PlatformCredential;
use crate::report::Stats;
use crate::stream::{GatewayOutcome, StreamSettings, next_backoff};
use crate::{AckObserver, AckedBatch, LoadgenError};

/// The HTTP client all platforms share (one connection pool).
pub(crate) type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// Largest request body the node takes (`[ingest.gat1400] max_body_bytes` default).
pub const MAX_BODY_BYTES: usize = 16 * 1024 * 1024;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);
/// 401s with a fresh, non-stale challenge in a row before the credential counts as refused.
const MAX_FRESH_CHALLENGES: u32 = 3;

const REGISTER: &str = "/VIID/System/Register";
const KEEPALIVE: &str = "/VIID/System/Keepalive";
const UNREGISTER: &str = "/VIID/System/UnRegister";
const MOTOR_VEHICLES: &str = "/VIID/MotorVehicles";

/// A client for plain HTTP/1.1 with `TCP_NODELAY`, connecting within `connect_timeout`.
pub(crate) fn http_client(connect_timeout: Duration) -> HttpClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(connect_timeout));
    Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(90))
        .build(connector)
}

/// One request slot's Digest state: the challenge it answers and its nonce count.
#[derive(Debug, Default)]
pub(crate) struct DigestSession {
    prompt: Option<digest_auth::WwwAuthenticateHeader>,
    /// Fixed client nonce (tests only; otherwise the crate draws one per request).
    cnonce: Option<String>,
}

/// What a 401's challenges said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Challenge {
    /// A Digest challenge was taken; `stale` when only the nonce had aged.
    Taken { stale: bool },
    /// No usable challenge.
    Missing,
}

impl DigestSession {
    /// Take the best Digest challenge of a 401 (SHA-256 over MD5, then the first parseable).
    pub fn take_challenge(&mut self, headers: &HeaderMap) -> Challenge {
        let mut best: Option<digest_auth::WwwAuthenticateHeader> = None;
        for value in headers.get_all(WWW_AUTHENTICATE) {
            let Ok(text) = value.to_str() else {
                continue;
            };
            if !text.trim_start().to_ascii_lowercase().starts_with("digest") {
                continue;
            }
            let Ok(prompt) = digest_auth::parse(text) else {
                continue;
            };
            let sha256 = prompt.algorithm.algo == digest_auth::AlgorithmType::SHA2_256;
            if best.is_none() || sha256 {
                let done = sha256;
                best = Some(prompt);
                if done {
                    break;
                }
            }
        }
        match best {
            Some(prompt) => {
                let stale = prompt.stale;
                self.prompt = Some(prompt);
                Challenge::Taken { stale }
            }
            None => Challenge::Missing,
        }
    }

    /// The `Authorization` value for `POST uri` (path), counting `nc` up; `None` before a
    /// challenge was taken.
    pub fn authorization(&mut self, credential: &PlatformCredential, uri: &str) -> Option<String> {
        let prompt = self.prompt.as_mut()?;
        let mut context = digest_auth::AuthContext::new_post(
            credential.device_id.as_str(),
            credential.password.as_str(),
            uri,
            Option::<&[u8]>::None,
        );
        if let Some(cnonce) = &self.cnonce {
            context.set_custom_cnonce(cnonce.as_str());
        }
        prompt
            .respond(&context)
            .ok()
            .map(|answer| answer.to_header_string())
    }

    fn has_nonce(&self) -> bool {
        self.prompt.is_some()
    }
}

/// How an answer is handled.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Answer {
    /// 200.
    Ok(Bytes),
    /// 401 with a challenge (taken into the session).
    Challenged { stale: bool },
    /// 401 without a challenge: the device must register (again).
    NotRegistered,
    /// 503 (or 429): resend the same body after this long.
    Busy(Duration),
    /// Another server error: resend after the backoff.
    Retry(String),
    /// A client error resending cannot fix.
    Fatal(u16, String),
}

/// Classify a response (`session` takes a 401's challenge).
pub(crate) fn classify(
    status: StatusCode,
    headers: &HeaderMap,
    body: Bytes,
    session: &mut DigestSession,
) -> Answer {
    match status {
        StatusCode::OK => Answer::Ok(body),
        StatusCode::UNAUTHORIZED => match session.take_challenge(headers) {
            Challenge::Taken { stale } => Answer::Challenged { stale },
            Challenge::Missing => Answer::NotRegistered,
        },
        StatusCode::SERVICE_UNAVAILABLE | StatusCode::TOO_MANY_REQUESTS => {
            let seconds = headers
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|text| text.trim().parse::<u64>().ok())
                .unwrap_or(1);
            Answer::Busy(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
        }
        status if status.is_server_error() => Answer::Retry(format!("{status}")),
        status => Answer::Fatal(status.as_u16(), status_text(&body)),
    }
}

/// The `StatusString` of a one-object answer, or the start of the body.
fn status_text(body: &[u8]) -> String {
    if let Ok(envelope) = serde_json::from_slice::<gat1400::ResponseStatusEnvelope>(body) {
        return envelope.ResponseStatusObject.StatusString;
    }
    String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned()
}

/// The per-object outcome of a 200 to a `MotorVehicles` POST.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Counted {
    /// Accepted objects, by position in the request.
    pub accepted: Vec<usize>,
    /// Rejected objects: position and `RejectionCode` number.
    pub rejected: Vec<(usize, i32)>,
    /// One status per object, in order, each naming its object's `MotorVehicleID`.
    pub consistent: bool,
}

/// Count the statuses of a 200 against the request's `MotorVehicleID`s. Statuses are read
/// in order; a status naming another id, a missing or an extra status makes the answer
/// inconsistent (objects without a status are neither accepted nor rejected).
pub(crate) fn count_statuses(ids: &[String], statuses: &[ResponseStatus]) -> Counted {
    let mut counted = Counted {
        consistent: ids.len() == statuses.len(),
        ..Counted::default()
    };
    for (index, (id, status)) in ids.iter().zip(statuses).enumerate() {
        if status.Id != *id {
            counted.consistent = false;
        }
        if status.StatusCode == gat1400::status::OK {
            counted.accepted.push(index);
        } else {
            counted
                .rejected
                .push((index, rejection_of(&status.StatusString)));
        }
    }
    counted
}

/// The `RejectionCode` number of a `StatusString` `"<error code name>: <message>"`
/// (unspecified when the name is not an ingest error code).
pub(crate) fn rejection_of(status_string: &str) -> i32 {
    let name = status_string
        .split_once(':')
        .map_or(status_string, |(name, _)| name)
        .trim();
    ErrorCode::from_name(name)
        .and_then(rejection_code)
        .unwrap_or(RejectionCode::Unspecified) as i32
}

/// Why a request could not be answered.
enum SendError {
    Aborted,
    Transport(String),
}

/// What a platform needs to talk to the node; shared by its request tasks.
pub(crate) struct Endpoint {
    pub client: HttpClient,
    /// Base URL without a trailing slash.
    pub base: String,
    pub credential: PlatformCredential,
    pub gateway_id: String,
    pub settings: StreamSettings,
    pub abort: CancellationToken,
    pub stats: Arc<Stats>,
}

impl Endpoint {
    /// POST `body` to `path` once, with `session`'s authorization if it has a nonce.
    async fn post(
        &self,
        path: &str,
        body: Bytes,
        session: &mut DigestSession,
    ) -> Result<Answer, SendError> {
        let uri: Uri = format!("{}{path}", self.base)
            .parse()
            .map_err(|error| SendError::Transport(format!("bad URL: {error}")))?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(uri)
            .header(CONTENT_TYPE, "application/VIID+JSON")
            .header("User-Identify", self.credential.device_id.as_str());
        if let Some(authorization) = session.authorization(&self.credential, path) {
            request = request.header(AUTHORIZATION, authorization);
        }
        let request = request
            .body(Full::new(body))
            .map_err(|error| SendError::Transport(error.to_string()))?;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|error| SendError::Transport(error.to_string()))?;
            let (parts, body) = response.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|error| SendError::Transport(error.to_string()))?
                .to_bytes();
            Ok(classify(parts.status, &parts.headers, body, session))
        };
        tokio::select! {
            _ = self.abort.cancelled() => Err(SendError::Aborted),
            answered = tokio::time::timeout(self.settings.ack_timeout, exchange) => match answered {
                Ok(answer) => answer,
                Err(_) => Err(SendError::Transport("no answer within the ack timeout".into())),
            },
        }
    }

    /// Give `session` a nonce: an empty unauthenticated `Keepalive` is answered 401 with a
    /// challenge.
    async fn prime(&self, session: &mut DigestSession) -> Result<(), SendError> {
        session.prompt = None;
        match self.post(KEEPALIVE, Bytes::new(), session).await? {
            Answer::Challenged { .. } => Ok(()),
            other => Err(SendError::Transport(format!(
                "expected a Digest challenge, got {other:?}"
            ))),
        }
    }

    /// POST `body` to `path` until it is answered 200 (the body of which is returned), the
    /// run is aborted, or a fatal answer fails the run. `on_send` is called before every
    /// send of the body (with whether it is the first).
    async fn deliver(
        &self,
        path: &str,
        body: Bytes,
        session: &mut DigestSession,
        mut on_send: impl FnMut(bool),
    ) -> Result<Option<Bytes>, LoadgenError> {
        let mut backoff = self.settings.backoff_initial;
        let mut reachable_at = Instant::now();
        let mut fresh_challenges = 0;
        let mut sends = 0u32;
        loop {
            if reachable_at.elapsed() > self.settings.give_up_after {
                return Err(LoadgenError::GaveUp {
                    gateway_id: self.gateway_id.clone(),
                    after: self.settings.give_up_after,
                });
            }
            let delay = match self
                .attempt(path, &body, session, &mut sends, &mut on_send)
                .await
            {
                Err(SendError::Aborted) => return Ok(None),
                Err(SendError::Transport(message)) => {
                    tracing::debug!(gateway = %self.gateway_id, %message, path, "GA/T 1400 request failed");
                    self.stats
                        .counters
                        .reconnects
                        .fetch_add(1, Ordering::Relaxed);
                    let delay = backoff;
                    backoff = next_backoff(backoff, self.settings.backoff_max);
                    delay
                }
                Ok(answer) => {
                    reachable_at = Instant::now();
                    match answer {
                        Answer::Ok(body) => return Ok(Some(body)),
                        Answer::Challenged { stale } => {
                            fresh_challenges = if stale { 0 } else { fresh_challenges + 1 };
                            if fresh_challenges >= MAX_FRESH_CHALLENGES {
                                return Err(self.refused(401, "Digest credentials refused"));
                            }
                            Duration::ZERO
                        }
                        Answer::NotRegistered if path == REGISTER => {
                            return Err(self.refused(401, "registration refused"));
                        }
                        Answer::NotRegistered => {
                            self.register(session).await?;
                            Duration::ZERO
                        }
                        Answer::Busy(delay) => delay,
                        Answer::Retry(message) => {
                            tracing::debug!(gateway = %self.gateway_id, %message, "GA/T 1400 server error; resending");
                            let delay = backoff;
                            backoff = next_backoff(backoff, self.settings.backoff_max);
                            delay
                        }
                        Answer::Fatal(status, message) => {
                            return Err(self.refused(status, &message));
                        }
                    }
                }
            };
            if !delay.is_zero() {
                tokio::select! {
                    _ = self.abort.cancelled() => return Ok(None),
                    _ = tokio::time::sleep(delay) => {}
                }
            }
        }
    }

    /// One send (priming the session first if it has no nonce).
    async fn attempt(
        &self,
        path: &str,
        body: &Bytes,
        session: &mut DigestSession,
        sends: &mut u32,
        on_send: &mut impl FnMut(bool),
    ) -> Result<Answer, SendError> {
        if !session.has_nonce() {
            self.prime(session).await?;
        }
        on_send(*sends == 0);
        *sends += 1;
        self.post(path, body.clone(), session).await
    }

    fn refused(&self, status: u16, message: &str) -> LoadgenError {
        LoadgenError::HttpRefused {
            gateway_id: self.gateway_id.clone(),
            status,
            message: message.to_string(),
        }
    }

    /// `POST /VIID/System/Register` until it is accepted.
    async fn register(&self, session: &mut DigestSession) -> Result<(), LoadgenError> {
        let body = device_body(&RegisterRequest {
            RegisterObject: DeviceObject {
                DeviceID: self.credential.device_id.clone(),
            },
        });
        Box::pin(self.deliver(REGISTER, body, session, |_| {}))
            .await
            .map(|_| ())
    }

    /// One `Keepalive`; failures are only logged (a lapsed registration is renewed by the
    /// next batch's "not registered" answer).
    async fn keepalive(&self, session: &mut DigestSession) {
        let body = device_body(&KeepaliveRequest {
            KeepaliveObject: DeviceObject {
                DeviceID: self.credential.device_id.clone(),
            },
        });
        for _ in 0..2 {
            if !session.has_nonce() && self.prime(session).await.is_err() {
                return;
            }
            match self.post(KEEPALIVE, body.clone(), session).await {
                Ok(Answer::Challenged { .. }) => continue,
                Ok(Answer::Ok(_)) => return,
                Ok(other) => {
                    tracing::debug!(gateway = %self.gateway_id, answer = ?other, "keepalive not accepted");
                    return;
                }
                Err(_) => return,
            }
        }
    }

    /// `POST /VIID/System/UnRegister`, best effort.
    async fn unregister(&self, session: &mut DigestSession) {
        let body = device_body(&UnRegisterRequest {
            UnRegisterObject: DeviceObject {
                DeviceID: self.credential.device_id.clone(),
            },
        });
        for _ in 0..2 {
            if !session.has_nonce() && self.prime(session).await.is_err() {
                return;
            }
            match self.post(UNREGISTER, body.clone(), session).await {
                Ok(Answer::Challenged { .. }) => continue,
                _ => return,
            }
        }
    }
}

fn device_body(request: &impl Serialize) -> Bytes {
    // Serialising a struct of strings cannot fail.
    Bytes::from(serde_json::to_vec(request).unwrap_or_default())
}

/// A batch being delivered.
struct Delivery {
    seq: u64,
    event_ids: Vec<[u8; 16]>,
    first_sent: Option<Instant>,
    sends: u32,
}

/// What a request task hands back.
enum Done {
    Batch {
        session: DigestSession,
        delivery: Delivery,
        answer: Result<Option<Bytes>, LoadgenError>,
        ids: Vec<String>,
    },
    Keepalive(DigestSession),
}

/// One gateway's GA/T 1400 platform task.
pub(crate) struct Platform {
    pub endpoint: Arc<Endpoint>,
    pub zone: chrono_tz::Tz,
    pub keepalive: Duration,
    pub batches_rx: mpsc::Receiver<Vec<DetectionEvent>>,
    pub on_ack: Option<AckObserver>,
}

impl Platform {
    /// Register, deliver batches until the input closes and all are answered (or abort),
    /// unregister.
    pub async fn run(mut self) -> Result<GatewayOutcome, LoadgenError> {
        let endpoint = Arc::clone(&self.endpoint);
        let mut outcome = GatewayOutcome::default();
        let mut idle: Vec<DigestSession> = Vec::new();
        let mut session = DigestSession::default();
        endpoint.register(&mut session).await?;
        idle.push(session);
        let mut tasks: JoinSet<Done> = JoinSet::new();
        let mut batches_in_flight = 0usize;
        let mut keepalive_session = Some(DigestSession::default());
        let mut next_keepalive = Instant::now() + self.keepalive;
        let mut next_seq = 1u64;
        let mut input_closed = false;
        let mut first_error = None;
        loop {
            if input_closed && batches_in_flight == 0 {
                break;
            }
            let can_take = !input_closed
                && batches_in_flight < endpoint.settings.max_in_flight
                && first_error.is_none();
            tokio::select! {
                biased;
                _ = endpoint.abort.cancelled() => break,
                done = tasks.join_next(), if !tasks.is_empty() => {
                    let done = match done {
                        Some(Ok(done)) => done,
                        Some(Err(join_error)) => {
                            first_error.get_or_insert(LoadgenError::Task(join_error.to_string()));
                            endpoint.abort.cancel();
                            continue;
                        }
                        None => continue,
                    };
                    match done {
                        Done::Keepalive(session) => keepalive_session = Some(session),
                        Done::Batch { session, delivery, answer, ids } => {
                            idle.push(session);
                            batches_in_flight -= 1;
                            if delivery.first_sent.is_some() {
                                outcome.batches_sent += 1;
                            }
                            match answer {
                                Ok(Some(body)) => self.answered(&mut outcome, &delivery, &ids, &body),
                                Ok(None) => {
                                    if delivery.first_sent.is_some() {
                                        outcome.unacked_events += delivery.event_ids.len() as u64;
                                    }
                                }
                                Err(error) => {
                                    if delivery.first_sent.is_some() {
                                        outcome.unacked_events += delivery.event_ids.len() as u64;
                                    }
                                    endpoint.abort.cancel();
                                    first_error.get_or_insert(error);
                                }
                            }
                        }
                    }
                }
                batch = self.batches_rx.recv(), if can_take => match batch {
                    Some(events) => {
                        let seq = next_seq;
                        next_seq += 1;
                        batches_in_flight += 1;
                        let session = idle.pop().unwrap_or_default();
                        tasks.spawn(deliver_batch(Arc::clone(&endpoint), self.zone, seq, events, session));
                    }
                    None => input_closed = true,
                },
                _ = tokio::time::sleep_until(next_keepalive), if keepalive_session.is_some() => {
                    next_keepalive = Instant::now() + self.keepalive;
                    if let Some(mut session) = keepalive_session.take() {
                        let endpoint = Arc::clone(&endpoint);
                        tasks.spawn(async move {
                            endpoint.keepalive(&mut session).await;
                            Done::Keepalive(session)
                        });
                    }
                }
            }
        }
        // Abort: the request tasks see the token and hand back what they hold.
        while let Some(done) = tasks.join_next().await {
            if let Ok(Done::Batch {
                delivery, answer, ..
            }) = done
            {
                if delivery.first_sent.is_some() {
                    outcome.batches_sent += 1;
                    if !matches!(answer, Ok(Some(_))) {
                        outcome.unacked_events += delivery.event_ids.len() as u64;
                    }
                }
                if let Err(error) = answer {
                    first_error.get_or_insert(error);
                }
            }
        }
        self.batches_rx.close();
        if let Some(error) = first_error {
            return Err(error);
        }
        if !endpoint.abort.is_cancelled() {
            let mut session = idle.pop().unwrap_or_default();
            endpoint.unregister(&mut session).await;
        }
        Ok(outcome)
    }

    /// Count a 200's statuses and tell the observer.
    fn answered(
        &self,
        outcome: &mut GatewayOutcome,
        delivery: &Delivery,
        ids: &[String],
        body: &[u8],
    ) {
        let now = Instant::now();
        let counted = match serde_json::from_slice::<ResponseStatusListEnvelope>(body) {
            Ok(envelope) => {
                count_statuses(ids, &envelope.ResponseStatusListObject.ResponseStatusObject)
            }
            Err(error) => {
                tracing::debug!(gateway = %self.endpoint.gateway_id, %error, "unreadable status list");
                Counted::default()
            }
        };
        if !counted.consistent {
            outcome.inconsistent_acks += 1;
        }
        outcome.batches_acked += 1;
        let latency = delivery
            .first_sent
            .map_or(Duration::ZERO, |sent| now.saturating_duration_since(sent));
        let codes: Vec<i32> = counted.rejected.iter().map(|&(_, code)| code).collect();
        self.endpoint
            .stats
            .record_ack(now, latency, counted.accepted.len() as u64, &codes);
        if let Some(observer) = &self.on_ack {
            let id = |index: usize| delivery.event_ids.get(index).copied().unwrap_or_default();
            observer(&AckedBatch {
                gateway_id: self.endpoint.gateway_id.clone(),
                batch_seq: delivery.seq,
                accepted: counted.accepted.iter().map(|&index| id(index)).collect(),
                rejected: counted
                    .rejected
                    .iter()
                    .map(|&(index, code)| (id(index), code))
                    .collect(),
                sends: delivery.sends,
            });
        }
    }
}

/// Encode a batch and deliver it; runs as its own task so encoding spreads over the
/// runtime's workers.
async fn deliver_batch(
    endpoint: Arc<Endpoint>,
    zone: chrono_tz::Tz,
    seq: u64,
    events: Vec<DetectionEvent>,
    mut session: DigestSession,
) -> Done {
    let event_ids = events
        .iter()
        .map(|event| <[u8; 16]>::try_from(event.event_id.as_slice()).unwrap_or_default())
        .collect();
    let (ids, body) = encode_batch(&events, zone);
    drop(events);
    let mut delivery = Delivery {
        seq,
        event_ids,
        first_sent: None,
        sends: 0,
    };
    let answer = if body.len() > MAX_BODY_BYTES {
        Err(LoadgenError::InvalidConfig(format!(
            "a batch encodes to {} bytes, above the node's {MAX_BODY_BYTES}: use a smaller \
             --batch-size",
            body.len()
        )))
    } else {
        let events = delivery.event_ids.len() as u64;
        let stats = Arc::clone(&endpoint.stats);
        let (first_sent, sends) = (&mut delivery.first_sent, &mut delivery.sends);
        endpoint
            .deliver(MOTOR_VEHICLES, body, &mut session, |first| {
                let now = Instant::now();
                *sends += 1;
                if first {
                    *first_sent = Some(now);
                    stats.record_first_send(now, events);
                } else {
                    stats.counters.resends.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await
    };
    Done::Batch {
        session,
        delivery,
        answer,
        ids,
    }
}

/// The `MotorVehicleID`s and the POST body of a batch.
pub(crate) fn encode_batch(events: &[DetectionEvent], zone: chrono_tz::Tz) -> (Vec<String>, Bytes) {
    let records: Vec<encode::MotorVehicleOut> = events
        .iter()
        .map(|event| encode::motor_vehicle(event, zone))
        .collect();
    let ids = records
        .iter()
        .map(|record| record.MotorVehicleID.clone())
        .collect();
    // Serialising strings and numbers cannot fail.
    let body = serde_json::to_vec(&encode::MotorVehicleListOut::new(records)).unwrap_or_default();
    (ids, Bytes::from(body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn challenges(stale: bool) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for algorithm in ["SHA-256", "MD5"] {
            let value = format!(
                "Digest realm=\"camtrail\", qop=\"auth\", algorithm={algorithm}, \
                 nonce=\"0192a4b3c2d1abcdef0123456789abcdef0123456789abcdef01234567\"{}",
                if stale { ", stale=true" } else { "" }
            );
            headers.append(
                WWW_AUTHENTICATE,
                HeaderValue::from_str(&value).expect("ascii"),
            );
        }
        headers
    }

    fn credential() -> PlatformCredential {
        PlatformCredential {
            device_id: "44030100001180000001".into(),
            password: "s3cret".into(),
        }
    }

    fn field<'h>(header: &'h str, name: &str) -> &'h str {
        header
            .split(", ")
            .find_map(|part| {
                part.trim_start_matches("Digest ")
                    .strip_prefix(&format!("{name}="))
            })
            .map(|value| value.trim_matches('"'))
            .unwrap_or_default()
    }

    fn sha256_hex(text: &str) -> String {
        use sha2::Digest as _;
        hex::encode(sha2::Sha256::digest(text.as_bytes()))
    }

    #[test]
    fn digest_answers_the_sha256_challenge_with_counting_nc() {
        let mut session = DigestSession {
            cnonce: Some("0a4f113b".into()),
            ..DigestSession::default()
        };
        assert!(
            session
                .authorization(&credential(), MOTOR_VEHICLES)
                .is_none()
        );
        assert_eq!(
            session.take_challenge(&challenges(false)),
            Challenge::Taken { stale: false }
        );
        let first = session
            .authorization(&credential(), MOTOR_VEHICLES)
            .expect("challenged");
        let second = session
            .authorization(&credential(), MOTOR_VEHICLES)
            .expect("challenged");
        assert_eq!(field(&first, "algorithm"), "SHA-256");
        assert_eq!(field(&first, "qop"), "auth");
        assert_eq!(field(&first, "nc"), "00000001");
        assert_eq!(field(&second, "nc"), "00000002");
        assert_eq!(field(&first, "username"), "44030100001180000001");
        assert_eq!(field(&first, "uri"), MOTOR_VEHICLES);
        // The response as RFC 7616 §3.4.1 defines it (what the node recomputes).
        let ha1 = sha256_hex("44030100001180000001:camtrail:s3cret");
        let ha2 = sha256_hex(&format!("POST:{MOTOR_VEHICLES}"));
        let nonce = field(&first, "nonce");
        let expected = sha256_hex(&format!("{ha1}:{nonce}:00000001:0a4f113b:auth:{ha2}"));
        assert_eq!(field(&first, "response"), expected);
        // A stale challenge replaces the nonce and restarts the count.
        assert_eq!(
            session.take_challenge(&challenges(true)),
            Challenge::Taken { stale: true }
        );
        let third = session
            .authorization(&credential(), MOTOR_VEHICLES)
            .expect("challenged");
        assert_eq!(field(&third, "nc"), "00000001");
    }

    #[test]
    fn md5_alone_is_taken_and_no_challenge_means_not_registered() {
        let mut headers = HeaderMap::new();
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static("Basic realm=\"x\""),
        );
        headers.append(
            WWW_AUTHENTICATE,
            HeaderValue::from_static(
                "Digest realm=\"r\", qop=\"auth\", algorithm=MD5, nonce=\"n\"",
            ),
        );
        let mut session = DigestSession::default();
        assert_eq!(
            session.take_challenge(&headers),
            Challenge::Taken { stale: false }
        );
        let header = session
            .authorization(&credential(), REGISTER)
            .expect("challenged");
        assert_eq!(field(&header, "algorithm"), "MD5");
        let mut fresh = DigestSession::default();
        let answer = classify(
            StatusCode::UNAUTHORIZED,
            &HeaderMap::new(),
            Bytes::new(),
            &mut fresh,
        );
        assert_eq!(answer, Answer::NotRegistered);
    }

    #[test]
    fn answers_are_classified() {
        let mut session = DigestSession::default();
        let mut busy = HeaderMap::new();
        busy.insert(RETRY_AFTER, HeaderValue::from_static("3"));
        let empty = HeaderMap::new();
        let mut classify_status = |status: StatusCode, headers: &HeaderMap| {
            classify(status, headers, Bytes::new(), &mut session)
        };
        assert_eq!(
            classify_status(StatusCode::SERVICE_UNAVAILABLE, &busy),
            Answer::Busy(Duration::from_secs(3))
        );
        assert_eq!(
            classify_status(StatusCode::SERVICE_UNAVAILABLE, &empty),
            Answer::Busy(Duration::from_secs(1))
        );
        assert!(matches!(
            classify_status(StatusCode::INTERNAL_SERVER_ERROR, &empty),
            Answer::Retry(_)
        ));
        for fatal in [
            StatusCode::BAD_REQUEST,
            StatusCode::FORBIDDEN,
            StatusCode::PAYLOAD_TOO_LARGE,
        ] {
            assert!(
                matches!(classify_status(fatal, &empty), Answer::Fatal(..)),
                "{fatal}"
            );
        }
        assert_eq!(
            classify_status(StatusCode::UNAUTHORIZED, &challenges(true)),
            Answer::Challenged { stale: true }
        );
    }

    fn status(id: &str, code: i32, text: &str) -> ResponseStatus {
        ResponseStatus {
            Id: id.into(),
            RequestURL: MOTOR_VEHICLES.into(),
            StatusCode: code,
            StatusString: text.into(),
            LocalTime: "20260101080000".into(),
        }
    }

    #[test]
    fn statuses_are_counted_per_object() {
        let ids: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        let unknown = ErrorCode::UnknownCamera.name();
        let statuses = [
            status("a", 0, "OK"),
            status(
                "b",
                8,
                &format!("{unknown}: camera 123 is not in the registry"),
            ),
            status("c", 8, "something_else: ?"),
        ];
        let counted = count_statuses(&ids, &statuses);
        assert_eq!(counted.accepted, [0]);
        assert_eq!(
            counted.rejected,
            [
                (1, RejectionCode::UnknownCamera as i32),
                (2, RejectionCode::Unspecified as i32)
            ]
        );
        assert!(counted.consistent);
        let short = count_statuses(&ids, &statuses[..2]);
        assert!(!short.consistent);
        assert_eq!(short.accepted.len() + short.rejected.len(), 2);
        let swapped = count_statuses(
            &ids,
            &[
                statuses[1].clone(),
                statuses[0].clone(),
                statuses[2].clone(),
            ],
        );
        assert!(!swapped.consistent);
    }

    #[test]
    fn batches_encode_to_the_list_body_with_one_id_per_event() {
        let event = |n: u8| DetectionEvent {
            event_id: vec![n; 16],
            camera_id: "44030100001310000001".into(),
            captured_at_ms: 1_767_225_600_000,
            object_class: 1,
            plate: "粤B·12345".into(),
            plate_confidence: 0.9,
            plate_char_confidence: vec![90, 91, 92, 93, 94, 95, 96],
            ..DetectionEvent::default()
        };
        let (ids, body) = encode_batch(&[event(1), event(2)], chrono_tz::Asia::Shanghai);
        assert_eq!(ids.len(), 2);
        assert_ne!(ids[0], ids[1]);
        let json: serde_json::Value = serde_json::from_slice(&body).expect("json");
        let objects = &json["MotorVehicleListObject"]["MotorVehicleObject"];
        assert_eq!(objects.as_array().map(Vec::len), Some(2));
        assert_eq!(objects[0]["MotorVehicleID"], ids[0].as_str());
        assert_eq!(objects[0]["PassTime"], "20260101080000");
    }
}
