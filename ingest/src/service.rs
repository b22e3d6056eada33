//! The `camtrail.v1.Ingest` gRPC service: authenticate, validate, publish, ack.
//!
//! Backpressure: a `Publish` stream reads its next batch only while fewer than
//! `max_in_flight_per_stream` of its batches are unacked, and every batch needs one of the
//! node's `max_in_flight_batches` permits; a saturated node therefore stops reading, and
//! HTTP/2 flow control slows the gateway. `PublishBatch` answers RESOURCE_EXHAUSTED with a
//! `retry-after-ms` trailer instead of queueing when no permit is free.

use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use camtrail_common::grpc::error_status;
use camtrail_common::now_ms;
use camtrail_model::ErrorCode;
use camtrail_proto::lenient_ingest_server::ingest_server::Ingest;
use camtrail_proto::v1::{BatchAck, RejectionCode};
use camtrail_proto::wire::RawEventBatch;
use futures::stream::FuturesUnordered;
use futures::{Stream, StreamExt};
use tokio::sync::{Semaphore, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use camtrail_storage::{Publisher, StorageError};

use crate::auth::GatewayAuth;
use crate::metrics::{CodeLabel, IngestMetrics};
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
    /// Node-wide bound on batches being processed.
    pub node_permits: Arc<Semaphore>,
    /// Bound on batches being validated at once: snapshot decoding may take up to
    /// `validation.max_decode_bytes` per batch, so this caps that memory and CPU.
    pub validation_permits: Semaphore,
    /// Per-stream bound on unacked batches.
    pub max_in_flight_per_stream: usize,
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
        let validator = Arc::clone(&self.validator);
        let gateway_owned = gateway.to_string();
        let now = now_ms();
        let validated = {
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
            rejections: validated.rejections,
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
        let (ack_tx, ack_rx) = mpsc::channel(self.state.max_in_flight_per_stream.max(1) * 2);
        let state = Arc::clone(&self.state);
        self.state
            .tasks
            .spawn(async move { run_stream(state, gateway, input, ack_tx).await });
        Ok(Response::new(Box::pin(ReceiverStream::new(ack_rx))))
    }

    async fn publish_batch(
        &self,
        request: Request<RawEventBatch>,
    ) -> Result<Response<BatchAck>, Status> {
        let gateway = self.authenticate(&request)?;
        if self.state.shutdown.is_cancelled() {
            return Err(shutting_down());
        }
        let Ok(_permit) = self.state.node_permits.try_acquire() else {
            self.state.metrics.batch(ErrorCode::Overloaded.name());
            return Err(overloaded_status());
        };
        let ack = self.state.process(&gateway, request.into_inner()).await?;
        Ok(Response::new(ack))
    }
}

/// Serve one `Publish` stream until the gateway closes it, an error ends it, or the node
/// shuts down; in every case, batches already read are finished and acked first.
///
/// A stream reads at most `max_in_flight_per_stream` batches ahead of its acks; each batch
/// then waits for one of the node's permits before it is validated and published. (Taking
/// the permit before reading would let idle gateways' streams hold permits while busy ones
/// wait.)
async fn run_stream(
    state: Arc<IngestState>,
    gateway: String,
    mut input: Streaming<RawEventBatch>,
    ack_tx: mpsc::Sender<Result<BatchAck, Status>>,
) {
    state.metrics.open_streams.inc();
    let mut in_flight = FuturesUnordered::new();
    let mut reading = true;
    let mut final_status: Option<Status> = None;
    loop {
        let may_read = reading && in_flight.len() < state.max_in_flight_per_stream;
        tokio::select! {
            Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                match result {
                    Ok(ack) => {
                        if ack_tx.send(Ok(ack)).await.is_err() {
                            reading = false; // gateway went away; finish what was read
                        }
                    }
                    Err(status) => {
                        reading = false;
                        final_status.get_or_insert(status);
                    }
                }
            }
            () = state.shutdown.cancelled(), if reading => {
                reading = false;
                final_status.get_or_insert(shutting_down());
            }
            next = input.message(), if may_read => match next {
                Ok(Some(batch)) => {
                    let state = Arc::clone(&state);
                    let gateway = gateway.clone();
                    in_flight.push(async move {
                        let _permit = state
                            .node_permits
                            .acquire()
                            .await
                            .map_err(|_| shutting_down())?;
                        state.process(&gateway, batch).await
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
    if let Some(status) = final_status {
        // Delivered last, after every ack of the batches that were read.
        let _ = ack_tx.send(Err(status)).await;
    }
    state.metrics.open_streams.dec();
}
