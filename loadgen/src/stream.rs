//! One gateway: a `Publish` stream that sends batches from a bounded window, matches acks
//! by `batch_seq`, resends what is not acked in time, and reconnects with capped backoff
//! when the stream breaks. With several ingest endpoints, any retryable failure moves the
//! gateway to the next one at once (its unacked batches resent there), backing off only
//! once every endpoint has failed in a row; only RESOURCE_EXHAUSTED with the node's
//! `retry-after-ms` hint waits on the same node.
//!
//! Retries are a decision ([`classify`]): transport failures, UNAVAILABLE and
//! RESOURCE_EXHAUSTED are retried (the latter after the node's `retry-after-ms` hint);
//! UNAUTHENTICATED, PERMISSION_DENIED, INVALID_ARGUMENT and the like fail the run, since
//! resending cannot fix them.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::time::Instant;

use camtrail_proto::v1::ingest_client::IngestClient;
use camtrail_proto::v1::{BatchAck, DetectionEvent, EventBatch};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tonic::metadata::MetadataValue;
use tonic::transport::Endpoint;
use tonic::{Code, Status, Streaming};

use crate::report::Stats;
use crate::{AckObserver, AckedBatch, LoadgenError};

/// Timing and window settings of a gateway stream.
#[derive(Debug, Clone)]
pub(crate) struct StreamSettings {
    pub ack_timeout: Duration,
    pub max_in_flight: usize,
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    pub give_up_after: Duration,
}

/// What to do after a stream failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Retry {
    /// Reconnect after the usual backoff.
    Backoff,
    /// Reconnect after the server's hint.
    After(Duration),
    /// Give up: resending cannot help.
    Fatal,
}

/// Classify a gRPC status (see the module doc).
pub(crate) fn classify(status: &Status) -> Retry {
    match status.code() {
        Code::ResourceExhausted => match retry_after_hint(status) {
            Some(delay) => Retry::After(delay),
            None => Retry::Backoff,
        },
        Code::Unavailable
        | Code::Unknown
        | Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::Internal
        | Code::Ok => Retry::Backoff,
        Code::Unauthenticated
        | Code::PermissionDenied
        | Code::InvalidArgument
        | Code::Unimplemented
        | Code::FailedPrecondition
        | Code::NotFound
        | Code::AlreadyExists
        | Code::OutOfRange
        | Code::DataLoss => Retry::Fatal,
    }
}

/// The `retry-after-ms` metadata of a RESOURCE_EXHAUSTED status, capped at a minute.
fn retry_after_hint(status: &Status) -> Option<Duration> {
    let text = status.metadata().get("retry-after-ms")?.to_str().ok()?;
    let ms: u64 = text.trim().parse().ok()?;
    Some(Duration::from_millis(ms.min(60_000)))
}

/// Next reconnect delay: doubled, capped.
pub(crate) fn next_backoff(current: Duration, max: Duration) -> Duration {
    current.saturating_mul(2).min(max)
}

/// A batch in the window.
#[derive(Debug)]
struct InFlight {
    batch: EventBatch,
    first_sent: Option<Instant>,
    /// When to resend; `None` while queued for (re)sending.
    resend_at: Option<Instant>,
    sends: u32,
}

/// Why a stream ended.
enum StreamEnd {
    /// Input closed and every batch acked.
    Done,
    /// Abort requested.
    Aborted,
    /// The stream failed; `None` when the server just closed it.
    Broken(Option<Status>),
}

/// What a gateway left behind when it stopped.
#[derive(Debug, Default)]
pub(crate) struct GatewayOutcome {
    pub unacked_events: u64,
    pub batches_sent: u64,
    pub batches_acked: u64,
    pub duplicate_acks: u64,
    pub unknown_acks: u64,
    pub inconsistent_acks: u64,
}

/// One gateway's stream task.
pub(crate) struct GatewayStream {
    pub gateway_id: String,
    pub token: Option<MetadataValue<tonic::metadata::Ascii>>,
    /// The ingest nodes this gateway may use; it starts on `current`.
    pub endpoints: Arc<[Endpoint]>,
    pub current: usize,
    pub settings: StreamSettings,
    pub batches_rx: mpsc::Receiver<Vec<DetectionEvent>>,
    pub stats: Arc<Stats>,
    pub on_ack: Option<AckObserver>,
    pub abort: CancellationToken,
}

/// Mutable state that survives reconnects.
#[derive(Default)]
struct Window {
    next_seq: u64,
    in_flight: BTreeMap<u64, InFlight>,
    to_send: VecDeque<u64>,
    input_closed: bool,
    outcome: GatewayOutcome,
}

impl GatewayStream {
    /// Run until the input is closed and everything is acked, or abort, or a fatal error.
    pub async fn run(mut self) -> Result<GatewayOutcome, LoadgenError> {
        let mut window = Window {
            next_seq: 1,
            ..Window::default()
        };
        let mut backoff = self.settings.backoff_initial;
        // When a stream was last alive (opened, or still open when it broke): a gateway
        // gives up after `give_up_after` without one, however long its last stream lived.
        let mut last_alive = Instant::now();
        let mut opened_before = false;
        // Endpoints that failed in a row: the next one is tried at once until each has.
        let mut failed_in_a_row = 0usize;
        loop {
            if window.input_closed && window.in_flight.is_empty() {
                return Ok(self.finish(window));
            }
            let retry = match self.open().await {
                Ok((out_tx, acks)) => {
                    if opened_before {
                        self.stats
                            .counters
                            .reconnects
                            .fetch_add(1, Ordering::Relaxed);
                    }
                    opened_before = true;
                    let acked_before = window.outcome.batches_acked;
                    let end = self.pump(&mut window, out_tx, acks).await;
                    last_alive = Instant::now();
                    if window.outcome.batches_acked > acked_before {
                        // The stream made progress: the next failure starts a fresh backoff.
                        backoff = self.settings.backoff_initial;
                        failed_in_a_row = 0;
                    }
                    match end {
                        StreamEnd::Done | StreamEnd::Aborted => return Ok(self.finish(window)),
                        StreamEnd::Broken(None) => Retry::Backoff,
                        StreamEnd::Broken(Some(status)) => self.check(&status)?,
                    }
                }
                Err(OpenError::Aborted) => return Ok(self.finish(window)),
                Err(OpenError::Status(status)) => self.check(&status)?,
                Err(OpenError::Transport(message)) => {
                    tracing::debug!(gateway = %self.gateway_id, %message, "connect failed");
                    Retry::Backoff
                }
            };
            if last_alive.elapsed() > self.settings.give_up_after {
                return Err(LoadgenError::GaveUp {
                    gateway_id: self.gateway_id.clone(),
                    after: self.settings.give_up_after,
                });
            }
            requeue_all(&mut window);
            let delay = match retry {
                // An overloaded node asks for a pause: wait on it, do not move.
                Retry::After(hint) => hint,
                // A node down or a broken connection: the next node at once, until every
                // one has failed in a row; then the usual backoff.
                Retry::Backoff | Retry::Fatal => {
                    failed_in_a_row += 1;
                    if self.endpoints.len() > 1 {
                        self.current = (self.current + 1) % self.endpoints.len();
                        self.stats
                            .counters
                            .failovers
                            .fetch_add(1, Ordering::Relaxed);
                        tracing::debug!(gateway = %self.gateway_id, endpoint = self.current, "moving to the next ingest endpoint");
                    }
                    if failed_in_a_row < self.endpoints.len() {
                        Duration::ZERO
                    } else {
                        failed_in_a_row = 0;
                        let delay = backoff;
                        backoff = next_backoff(backoff, self.settings.backoff_max);
                        delay
                    }
                }
            };
            tokio::select! {
                _ = self.abort.cancelled() => return Ok(self.finish(window)),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    /// Fail the run on a fatal status; otherwise say how to retry.
    fn check(&self, status: &Status) -> Result<Retry, LoadgenError> {
        match classify(status) {
            Retry::Fatal => Err(LoadgenError::Rejected {
                gateway_id: self.gateway_id.clone(),
                code: status.code(),
                message: status.message().to_string(),
            }),
            retry => {
                tracing::debug!(gateway = %self.gateway_id, code = ?status.code(), message = status.message(), "stream failed; retrying");
                Ok(retry)
            }
        }
    }

    fn finish(&mut self, window: Window) -> GatewayOutcome {
        let mut outcome = window.outcome;
        outcome.unacked_events = window
            .in_flight
            .values()
            .filter(|entry| entry.first_sent.is_some())
            .map(|entry| entry.batch.events.len() as u64)
            .sum();
        self.batches_rx.close();
        outcome
    }

    /// Connect and open a `Publish` stream (queued batches are then sent by `pump`).
    async fn open(&self) -> Result<(mpsc::Sender<EventBatch>, Streaming<BatchAck>), OpenError> {
        let connect = async {
            let channel = self.endpoints[self.current]
                .connect()
                .await
                .map_err(|error| OpenError::Transport(error.to_string()))?;
            let (out_tx, out_rx) = mpsc::channel(self.settings.max_in_flight);
            let mut request = tonic::Request::new(ReceiverStream::new(out_rx));
            if let Some(token) = &self.token {
                request
                    .metadata_mut()
                    .insert("authorization", token.clone());
            }
            let mut client = IngestClient::new(channel);
            let response = client.publish(request).await.map_err(OpenError::Status)?;
            Ok((out_tx, response.into_inner()))
        };
        tokio::select! {
            _ = self.abort.cancelled() => Err(OpenError::Aborted),
            result = tokio::time::timeout(self.settings.ack_timeout, connect) => match result {
                Ok(opened) => opened,
                Err(_) => Err(OpenError::Transport("timed out opening the stream".to_string())),
            },
        }
    }

    /// Move batches between the input, the stream and the window until the stream ends.
    async fn pump(
        &mut self,
        window: &mut Window,
        out_tx: mpsc::Sender<EventBatch>,
        mut acks: Streaming<BatchAck>,
    ) -> StreamEnd {
        loop {
            if window.input_closed && window.in_flight.is_empty() {
                // Half-close: the server ends its side once it has answered everything.
                drop(out_tx);
                return StreamEnd::Done;
            }
            let next_resend = window.in_flight.values().filter_map(|e| e.resend_at).min();
            let can_take =
                !window.input_closed && window.in_flight.len() < self.settings.max_in_flight;
            tokio::select! {
                biased;
                _ = self.abort.cancelled() => return StreamEnd::Aborted,
                message = acks.message() => match message {
                    Ok(Some(ack)) => self.handle_ack(window, ack),
                    Ok(None) => return StreamEnd::Broken(None),
                    Err(status) => return StreamEnd::Broken(Some(status)),
                },
                permit = out_tx.reserve(), if !window.to_send.is_empty() => match permit {
                    Ok(permit) => self.send_next(window, permit),
                    Err(_) => return StreamEnd::Broken(None),
                },
                batch = self.batches_rx.recv(), if can_take => match batch {
                    Some(events) => {
                        let seq = window.next_seq;
                        window.next_seq += 1;
                        let batch = EventBatch { gateway_id: self.gateway_id.clone(), batch_seq: seq, events };
                        window.in_flight.insert(seq, InFlight { batch, first_sent: None, resend_at: None, sends: 0 });
                        window.to_send.push_back(seq);
                    }
                    None => window.input_closed = true,
                },
                _ = sleep_until_opt(next_resend), if next_resend.is_some() => {
                    let now = Instant::now();
                    for (seq, entry) in window.in_flight.iter_mut() {
                        if entry.resend_at.is_some_and(|at| at <= now) {
                            entry.resend_at = None;
                            window.to_send.push_back(*seq);
                        }
                    }
                }
            }
        }
    }

    fn send_next(&mut self, window: &mut Window, permit: mpsc::Permit<'_, EventBatch>) {
        let Some(seq) = window.to_send.pop_front() else {
            return;
        };
        let Some(entry) = window.in_flight.get_mut(&seq) else {
            return; // acked while queued for a resend
        };
        let now = Instant::now();
        permit.send(entry.batch.clone());
        entry.resend_at = Some(now + self.settings.ack_timeout);
        entry.sends += 1;
        if entry.first_sent.is_none() {
            entry.first_sent = Some(now);
            window.outcome.batches_sent += 1;
            self.stats
                .record_first_send(now, entry.batch.events.len() as u64);
        } else {
            self.stats.counters.resends.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn handle_ack(&mut self, window: &mut Window, ack: BatchAck) {
        let Some(entry) = window.in_flight.remove(&ack.batch_seq) else {
            if ack.batch_seq < window.next_seq && ack.batch_seq > 0 {
                window.outcome.duplicate_acks += 1;
            } else {
                window.outcome.unknown_acks += 1;
            }
            return;
        };
        let now = Instant::now();
        let events = &entry.batch.events;
        let mut rejected_flags = vec![false; events.len()];
        let mut codes = Vec::with_capacity(ack.rejections.len());
        let mut consistent = ack.accepted as usize + ack.rejections.len() == events.len();
        for rejection in &ack.rejections {
            match rejected_flags.get_mut(rejection.index as usize) {
                Some(flag) if !*flag => {
                    *flag = true;
                    codes.push(rejection.code);
                }
                _ => consistent = false,
            }
        }
        if !consistent {
            window.outcome.inconsistent_acks += 1;
        }
        window.outcome.batches_acked += 1;
        let latency = entry.first_sent.map_or(Duration::ZERO, |sent| now - sent);
        self.stats
            .record_ack(now, latency, u64::from(ack.accepted), &codes);
        if let Some(observer) = &self.on_ack {
            observer(&acked_batch(
                &self.gateway_id,
                &entry,
                &ack,
                &rejected_flags,
            ));
        }
    }
}

/// Put every unacked batch back in the send queue (in `batch_seq` order) for a new stream.
fn requeue_all(window: &mut Window) {
    window.to_send.clear();
    for (seq, entry) in window.in_flight.iter_mut() {
        entry.resend_at = None;
        window.to_send.push_back(*seq);
    }
}

fn acked_batch(
    gateway_id: &str,
    entry: &InFlight,
    ack: &BatchAck,
    rejected: &[bool],
) -> AckedBatch {
    let id_of = |event: &DetectionEvent| {
        <[u8; 16]>::try_from(event.event_id.as_slice()).unwrap_or_default()
    };
    let mut accepted = Vec::with_capacity(entry.batch.events.len());
    for (event, &is_rejected) in entry.batch.events.iter().zip(rejected) {
        if !is_rejected {
            accepted.push(id_of(event));
        }
    }
    let mut rejected_ids = Vec::with_capacity(ack.rejections.len());
    for rejection in &ack.rejections {
        if let Some(event) = entry.batch.events.get(rejection.index as usize) {
            rejected_ids.push((id_of(event), rejection.code));
        }
    }
    AckedBatch {
        gateway_id: gateway_id.to_string(),
        batch_seq: ack.batch_seq,
        accepted,
        rejected: rejected_ids,
        sends: entry.sends,
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Why opening a stream failed.
enum OpenError {
    Aborted,
    Transport(String),
    Status(Status),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified() {
        assert_eq!(classify(&Status::unavailable("down")), Retry::Backoff);
        assert_eq!(classify(&Status::unauthenticated("who")), Retry::Fatal);
        assert_eq!(classify(&Status::invalid_argument("bad")), Retry::Fatal);
        assert_eq!(
            classify(&Status::resource_exhausted("busy")),
            Retry::Backoff
        );
        let mut busy = Status::resource_exhausted("busy");
        busy.metadata_mut()
            .insert("retry-after-ms", MetadataValue::from_static("250"));
        assert_eq!(classify(&busy), Retry::After(Duration::from_millis(250)));
        let mut silly = Status::resource_exhausted("busy");
        silly
            .metadata_mut()
            .insert("retry-after-ms", MetadataValue::from_static("99999999"));
        assert_eq!(classify(&silly), Retry::After(Duration::from_secs(60)));
    }

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let max = Duration::from_secs(5);
        let mut delay = Duration::from_millis(100);
        let mut seen = Vec::new();
        for _ in 0..8 {
            seen.push(delay.as_millis());
            delay = next_backoff(delay, max);
        }
        assert_eq!(seen, [100, 200, 400, 800, 1600, 3200, 5000, 5000]);
    }
}
