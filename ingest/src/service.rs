//! The `camtrail.v1.Ingest` gRPC service: authenticate, validate, publish, ack.
//!
//! Backpressure: a `Publish` stream reads its next batch only while fewer than
//! `max_in_flight_per_stream` of its batches are unacked (being processed, or acked but not
//! yet taken by the gateway), and every batch needs one of the node's
//! `max_in_flight_batches` permits, at most `max_in_flight_per_gateway` of them held by one
//! gateway ([`crate::permits`]); a
//! saturated node therefore stops reading, and HTTP/2 flow control slows the gateway.
//! `PublishBatch` waits up to [`UNARY_PERMIT_WAIT`] for a permit, then answers
//! RESOURCE_EXHAUSTED with a `retry-after-ms` trailer instead of queueing longer.
//!
//! A permit is returned as soon as its batch is durable, not when the ack is delivered: a
//! gateway that stops reading its acks (or never reopens its HTTP/2 window) stalls only its
//! own stream, and after `ack_timeout_ms` with an ack unread the stream is cancelled with
//! `acks_unread` (DEADLINE_EXCEEDED), counted in `camtrail_ingest_streams_cancelled`.

use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use camtrail_common::grpc::error_status;
use camtrail_common::now_ms;
use camtrail_model::ErrorCode;
use camtrail_proto::lenient_ingest_server::ingest_server::Ingest;
use camtrail_proto::v1::{BatchAck, Rejection, RejectionCode};
use camtrail_proto::wire::RawEventBatch;
use futures::stream::{FuturesUnordered, PollNext};
use futures::{Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use camtrail_storage::{Publisher, StorageError};

use crate::auth::GatewayAuth;
use crate::metrics::{CodeLabel, IngestMetrics};
use crate::permits::NodePermits;
use crate::validate::Validator;

/// Shared state of the service.
pub struct IngestState {
    /// Known gateway credentials.
    pub auth: GatewayAuth,
    /// Per-event validation against the registry.
    pub validator: Arc<Validator>,
    /// Makes accepted events durable (Kafka, or SQLite in the embedded mode).
    pub publisher: Arc<dyn Publisher>,
    /// Metrics.
    pub metrics: Arc<IngestMetrics>,
    /// Node-wide bound on batches being processed, with a cap per gateway.
    pub node_permits: NodePermits,
    /// Bound on batches being validated at once: snapshot decoding may take up to
    /// `validation.max_decode_bytes` per batch, so this caps that memory and CPU.
    pub validation_permits: Semaphore,
    /// Per-stream bound on unacked batches.
    pub max_in_flight_per_stream: usize,
    /// Most events one batch may hold; larger batches are refused whole (`batch_too_large`).
    pub max_batch_events: usize,
    /// How long an ack may wait for the gateway to take it before the stream is cancelled.
    pub ack_timeout: Duration,
    /// Once the node shuts down, how long acks may still wait for their gateway (less than
    /// the shutdown grace, so one gateway that does not read cannot hold the drain).
    pub shutdown_ack_wait: Duration,
    /// Cancelled when the node begins to shut down.
    pub shutdown: CancellationToken,
    /// Tracks every stream task so shutdown can wait for them.
    pub tasks: TaskTracker,
}

/// The tonic service (cheap to clone).
#[derive(Clone)]
pub struct IngestService {
    state: Arc<IngestState>,
}

impl IngestService {
    /// Wrap the shared state.
    pub fn new(state: Arc<IngestState>) -> Self {
        Self { state }
    }

    fn authenticate<T>(&self, request: &Request<T>) -> Result<String, Status> {
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok());
        match self.state.auth.authenticate(header) {
            Some(gateway) => Ok(gateway.to_string()),
            None => {
                self.state.metrics.batch(ErrorCode::Unauthenticated.name());
                Err(error_status(
                    ErrorCode::Unauthenticated,
                    "missing or unknown gateway credential (authorization: Bearer <token>)",
                ))
            }
        }
    }
}

/// Batches up to this size without snapshots are validated on the async worker.
const INLINE_VALIDATION_MAX_EVENTS: usize = 1_000;

impl IngestState {
    /// Validate and publish one batch; the ack is returned only once every accepted event
    /// is durable (Kafka or the embedded database).
    pub async fn process(&self, gateway: &str, batch: RawEventBatch) -> Result<BatchAck, Status> {
        let started = Instant::now();
        if batch.gateway_id != gateway.as_bytes() {
            self.metrics.batch(ErrorCode::Forbidden.name());
            return Err(error_status(
                ErrorCode::Forbidden,
                "EventBatch.gateway_id does not match the authenticated gateway",
            ));
        }
        if batch.events.len() > self.max_batch_events {
            self.metrics.batch(ErrorCode::BatchTooLarge.name());
            return Err(error_status(
                ErrorCode::BatchTooLarge,
                format!(
                    "the batch holds {} events, limit {}; split it and resend",
                    batch.events.len(),
                    self.max_batch_events
                ),
            ));
        }
        self.metrics.in_flight_batches.inc();
        let result = self.validate_and_publish(gateway, batch).await;
        self.metrics.in_flight_batches.dec();
        self.metrics
            .publish_queue_depth
            .set(self.publisher.in_flight());
        let ack = result?;
        self.metrics.batch("acked");
        self.metrics
            .ack_latency_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(ack)
    }

    async fn validate_and_publish(
        &self,
        gateway: &str,
        batch: RawEventBatch,
    ) -> Result<BatchAck, Status> {
        let now = now_ms();
        let inline = batch.events.len() <= INLINE_VALIDATION_MAX_EVENTS
            && batch.events.iter().all(|event| event.snapshot.is_empty());
        let validated = if inline {
            // Text and numbers only: under a µs per event (about 1 ms for the largest batch
            // validated here), cheaper on this worker than the hand-off to the blocking pool
            // (a thread wake-up and two context switches per batch).
            self.validator.validate_batch(gateway, batch, now)
        } else {
            let validator = Arc::clone(&self.validator);
            let gateway_owned = gateway.to_string();
            // Held for the validation only, never across the Kafka round trip.
            let _validating = self
                .validation_permits
                .acquire()
                .await
                .map_err(|_| shutting_down())?;
            // Snapshot decoding is CPU work: keep it off the async workers.
            tokio::task::spawn_blocking(move || {
                validator.validate_batch(&gateway_owned, batch, now)
            })
            .await
            .map_err(|e| {
                error_status(ErrorCode::Internal, format!("validation task failed: {e}"))
            })?
        };
        let accepted = validated.accepted.len();
        if let Err(error) = self.publisher.publish(validated.accepted).await {
            return Err(self.publish_status(error));
        }
        self.metrics
            .batch_events
            .observe(validated.events_in_batch as f64);
        self.metrics.events_accepted.inc_by(accepted as u64);
        for rejection in &validated.rejections {
            let code = RejectionCode::try_from(rejection.code)
                .map(|c| c.as_str_name())
                .unwrap_or("REJECTION_CODE_UNSPECIFIED");
            self.metrics
                .events_rejected
                .get_or_create(&CodeLabel {
                    code: code.to_string(),
                })
                .inc();
        }
        Ok(BatchAck {
            batch_seq: validated.batch_seq,
            accepted: accepted as u32,
            rejections: bound_rejections(validated.rejections),
        })
    }

    fn publish_status(&self, error: StorageError) -> Status {
        match error {
            StorageError::Overloaded { .. } => {
                self.metrics.batch(ErrorCode::Overloaded.name());
                overloaded_status()
            }
            other => {
                self.metrics.batch(ErrorCode::PublishFailed.name());
                tracing::warn!(error = %other, backend = self.publisher.backend(),
                    "batch not durable; gateway must resend");
                error_status(
                    ErrorCode::PublishFailed,
                    format!("{other}; nothing of this batch is acked, resend it"),
                )
            }
        }
    }
}

/// How long a `PublishBatch` waits for a permit before it is answered RESOURCE_EXHAUSTED.
pub const UNARY_PERMIT_WAIT: Duration = Duration::from_millis(250);

/// Rejections after the first this many carry their index and code but no message, so an
/// ack stays small (≈ 8 bytes per further rejection) whatever a batch holds.
pub const DETAILED_REJECTIONS: usize = 100;

/// Keep the messages of the first [`DETAILED_REJECTIONS`] rejections only.
fn bound_rejections(mut rejections: Vec<Rejection>) -> Vec<Rejection> {
    for rejection in rejections.iter_mut().skip(DETAILED_REJECTIONS) {
        rejection.message = String::new();
    }
    rejections
}

/// UNAVAILABLE: the node is shutting down.
fn shutting_down() -> Status {
    error_status(
        ErrorCode::ShuttingDown,
        "ingest node shutting down; reconnect elsewhere and resend unacked batches",
    )
}

/// RESOURCE_EXHAUSTED with a retry hint in the `retry-after-ms` metadata.
fn overloaded_status() -> Status {
    let mut status = error_status(
        ErrorCode::Overloaded,
        "ingest node saturated; retry after the hinted delay",
    );
    status.metadata_mut().insert(
        "retry-after-ms",
        tonic::metadata::MetadataValue::from_static("200"),
    );
    status
}

type AckStream = Pin<Box<dyn Stream<Item = Result<BatchAck, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Ingest for IngestService {
    type PublishStream = AckStream;

    async fn publish(
        &self,
        request: Request<Streaming<RawEventBatch>>,
    ) -> Result<Response<Self::PublishStream>, Status> {
        let gateway = self.authenticate(&request)?;
        let input = request.into_inner();
        // Acks beyond the channel wait in the stream task, which times them.
        let (ack_tx, ack_rx) = mpsc::channel(self.state.max_in_flight_per_stream.max(1));
        let (cancel_tx, cancel_rx) = oneshot::channel::<Status>();
        let state = Arc::clone(&self.state);
        self.state.tasks.spawn(async move {
            run_stream(state, gateway.into(), input, ack_tx, cancel_tx).await;
        });
        // A cancellation overtakes the acks still queued; otherwise acks, then the end.
        let cancelled =
            futures::stream::once(cancel_rx).filter_map(|sent| async move { sent.ok().map(Err) });
        let acks = ReceiverStream::new(ack_rx);
        let answer =
            futures::stream::select_with_strategy(cancelled, acks, |(): &mut ()| PollNext::Left);
        Ok(Response::new(Box::pin(answer)))
    }

    async fn publish_batch(
        &self,
        request: Request<RawEventBatch>,
    ) -> Result<Response<BatchAck>, Status> {
        let gateway = self.authenticate(&request)?;
        if self.state.shutdown.is_cancelled() {
            return Err(shutting_down());
        }
        let permits = &self.state.node_permits;
        let permit = match permits.try_acquire(&gateway) {
            Some(permit) => permit,
            // Queue with the streams' batches, briefly.
            None => {
                match tokio::time::timeout(UNARY_PERMIT_WAIT, permits.acquire(&gateway)).await {
                    Ok(Some(permit)) => permit,
                    Ok(None) => return Err(shutting_down()),
                    Err(_) => {
                        self.state.metrics.batch(ErrorCode::Overloaded.name());
                        return Err(overloaded_status());
                    }
                }
            }
        };
        let _permit = permit;
        let ack = self.state.process(&gateway, request.into_inner()).await?;
        Ok(Response::new(ack))
    }
}

/// Serve one `Publish` stream until the gateway closes it, an error ends it, the node
/// shuts down, or its acks stay unread past `ack_timeout`; batches already read are
/// finished (made durable) in every case, and acked unless the gateway stopped taking acks.
///
/// A stream reads at most `max_in_flight_per_stream` batches ahead of the acks its gateway
/// has taken; each batch then waits for one of the node's permits before it is validated
/// and published, and returns it as soon as it is durable. (Taking the permit before
/// reading would let idle gateways' streams hold permits while busy ones wait; holding it
/// until the ack is delivered would let a gateway that never reads acks pin permits.)
async fn run_stream(
    state: Arc<IngestState>,
    gateway: Arc<str>,
    mut input: Streaming<RawEventBatch>,
    ack_tx: mpsc::Sender<Result<BatchAck, Status>>,
    cancel_tx: oneshot::Sender<Status>,
) {
    state.metrics.open_streams.inc();
    let mut in_flight = FuturesUnordered::new();
    // Acks of durable batches the gateway has not taken yet, with when they were ready.
    let mut unsent: VecDeque<(BatchAck, tokio::time::Instant)> = VecDeque::new();
    let mut cancel_tx = Some(cancel_tx);
    let mut reading = true;
    let mut taking_acks = true;
    let mut final_status: Option<Status> = None;
    // Acks wait at most `ack_timeout`, or once shutdown began, `shutdown_ack_wait`.
    let mut ack_deadline: Option<tokio::time::Instant> = None;
    loop {
        let may_read = reading && in_flight.len() + unsent.len() < state.max_in_flight_per_stream;
        let overdue = unsent.front().map(|(_, ready)| {
            let normal = *ready + state.ack_timeout;
            ack_deadline.map_or(normal, |cap| normal.min(cap))
        });
        tokio::select! {
            Some(result) = in_flight.next(), if !in_flight.is_empty() => match result {
                Ok(ack) if taking_acks => unsent.push_back((ack, tokio::time::Instant::now())),
                Ok(_) => {}
                Err(status) => {
                    reading = false;
                    final_status.get_or_insert(status);
                }
            },
            slot = ack_tx.reserve(), if !unsent.is_empty() => match slot {
                Ok(slot) => {
                    if let Some((ack, _)) = unsent.pop_front() {
                        slot.send(Ok(ack));
                    }
                }
                Err(_) => {
                    // The gateway went away; finish what was read.
                    reading = false;
                    taking_acks = false;
                    unsent.clear();
                }
            },
            () = tokio::time::sleep_until(overdue.unwrap_or_else(tokio::time::Instant::now)),
                if overdue.is_some() =>
            {
                state.metrics.stream_cancelled("ack_timeout");
                tracing::warn!(
                    unread = unsent.len(),
                    timeout_ms = state.ack_timeout.as_millis() as u64,
                    "Publish stream cancelled: its acks were not read in time"
                );
                if let Some(cancel) = cancel_tx.take() {
                    let _ = cancel.send(acks_unread(state.ack_timeout));
                }
                reading = false;
                taking_acks = false;
                unsent.clear();
            }
            () = state.shutdown.cancelled(), if reading => {
                reading = false;
                ack_deadline = Some(tokio::time::Instant::now() + state.shutdown_ack_wait);
                final_status.get_or_insert(shutting_down());
            }
            next = input.message(), if may_read => match next {
                Ok(Some(batch)) => {
                    let state = Arc::clone(&state);
                    let gateway = Arc::clone(&gateway);
                    in_flight.push(async move {
                        let permit = state
                            .node_permits
                            .acquire(&gateway)
                            .await
                            .ok_or_else(shutting_down)?;
                        let result = state.process(&gateway, batch).await;
                        drop(permit); // durable (or failed): the permit is free again
                        result
                    });
                }
                Ok(None) => reading = false,
                Err(status) => {
                    reading = false;
                    final_status.get_or_insert(status);
                }
            },
            else => break,
        }
    }
    if let Some(status) = final_status.filter(|_| taking_acks) {
        // Delivered last, after every ack of the batches that were read; a gateway that
        // does not take it in time does not keep the task.
        let wait = if state.shutdown.is_cancelled() {
            state.shutdown_ack_wait
        } else {
            state.ack_timeout
        };
        let _ = tokio::time::timeout(wait, ack_tx.send(Err(status))).await;
    }
    state.metrics.open_streams.dec();
}

/// DEADLINE_EXCEEDED: the gateway left acks unread for `timeout`.
fn acks_unread(timeout: Duration) -> Status {
    error_status(
        ErrorCode::AcksUnread,
        format!(
            "acks were left unread for {} ms, so the stream was cancelled; the batches \
             whose acks you did not receive may be durable: resend them (events are \
             deduplicated by event_id)",
            timeout.as_millis()
        ),
    )
}
