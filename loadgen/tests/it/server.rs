//! A minimal in-test `camtrail.v1.Ingest` server on 127.0.0.1:0 whose misbehaviour is
//! scripted per test: rejections, lost acks, broken streams, slow or delayed acks,
//! RESOURCE_EXHAUSTED, token checks.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use camtrail_proto::v1::ingest_server::{Ingest, IngestServer};
use camtrail_proto::v1::{BatchAck, EventBatch, Rejection, RejectionCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tokio_stream::{Stream, StreamExt};
use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status, Streaming};

/// What the server does wrong, on purpose.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// Reject the events at index % n == 0 of every batch with this code.
    pub reject_every: Option<(usize, RejectionCode)>,
    /// Do not answer the first copy of batches with batch_seq % n == 0.
    pub drop_first_ack_every: Option<u64>,
    /// End each gateway's first stream with UNAVAILABLE after this many batches (the last
    /// one unacked).
    pub break_first_stream_after: Option<usize>,
    /// Refuse each gateway's first Publish call with RESOURCE_EXHAUSTED + retry-after-ms.
    pub exhausted_first_call: bool,
    /// Stop reading each stream for this long before the first batch.
    pub stall_before_reading: Option<Duration>,
    /// Answer every batch this long after receiving it (acks held concurrently).
    pub ack_delay: Option<Duration>,
    /// Required `authorization` values per gateway id; empty: no check.
    pub tokens: HashMap<String, String>,
}

/// What the server saw.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    /// Every event id received, with how often.
    pub received: HashMap<[u8; 16], u32>,
    /// Event ids acked as accepted (each time an ack was sent).
    pub accepted: Vec<[u8; 16]>,
    /// Event ids rejected, with the code.
    pub rejected: Vec<([u8; 16], i32)>,
    /// Camera ids seen per gateway id.
    pub cameras_by_gateway: HashMap<String, HashSet<String>>,
    /// Streams that carried at least one batch.
    pub streams: u64,
    /// First acks withheld.
    pub dropped_acks: u64,
    /// Calls refused with RESOURCE_EXHAUSTED.
    pub exhausted: u64,
    /// Largest number of batches received and not yet answered on one stream.
    pub max_outstanding: usize,
    /// `(gateway_id, batch_seq)` answered at least once.
    answered: HashSet<(String, u64)>,
    /// Gateways whose first stream was broken.
    first_stream_done: HashSet<String>,
    /// Batches whose first ack was withheld.
    dropped_keys: HashSet<(String, u64)>,
}

#[derive(Clone)]
struct TestIngest {
    script: Arc<Script>,
    seen: Arc<Mutex<Seen>>,
    calls: Arc<Mutex<u64>>,
}

/// A running server; `stop` shuts it down and joins it.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: Arc<Mutex<Seen>>,
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl TestServer {
    pub async fn start(script: Script) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("local addr");
        let seen = Arc::new(Mutex::new(Seen::default()));
        let service = TestIngest {
            script: Arc::new(script),
            seen: Arc::clone(&seen),
            calls: Arc::new(Mutex::new(0)),
        };
        let stop = CancellationToken::new();
        let shutdown = stop.clone().cancelled_owned();
        let task = tokio::spawn(async move {
            tonic::transport::Server::builder()
                .add_service(IngestServer::new(service))
                .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
                .await
                .expect("test server runs");
        });
        Self {
            addr,
            seen,
            stop,
            task,
        }
    }

    pub fn target(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub async fn stop(self) {
        self.stop.cancel();
        self.task.await.expect("server task joins");
    }
}

type AckStream = Pin<Box<dyn Stream<Item = Result<BatchAck, Status>> + Send>>;

#[tonic::async_trait]
impl Ingest for TestIngest {
    type PublishStream = AckStream;

    async fn publish(
        &self,
        request: Request<Streaming<EventBatch>>,
    ) -> Result<Response<AckStream>, Status> {
        let authorization = request
            .metadata()
            .get("authorization")
            .and_then(|value| value.to_str().ok())
            .map(str::to_string);
        let inbound = request.into_inner();
        if self.script.exhausted_first_call {
            // Gateways are not known before the first batch; refuse every other call, the
            // first of them included.
            let mut calls = self.calls.lock().expect("lock");
            *calls += 1;
            if *calls % 2 == 1 {
                self.seen.lock().expect("lock").exhausted += 1;
                let mut status = Status::resource_exhausted("busy");
                status.metadata_mut().insert(
                    "retry-after-ms",
                    tonic::metadata::MetadataValue::from_static("50"),
                );
                return Err(status);
            }
        }
        let (acks_tx, acks_rx) = mpsc::channel(64);
        let handler = StreamHandler {
            script: Arc::clone(&self.script),
            seen: Arc::clone(&self.seen),
            authorization,
        };
        // Detached on purpose: it ends with its stream; the server's shutdown closes both.
        tokio::spawn(handler.run(inbound, acks_tx));
        Ok(Response::new(Box::pin(ReceiverStream::new(acks_rx))))
    }

    async fn publish_batch(
        &self,
        _request: Request<EventBatch>,
    ) -> Result<Response<BatchAck>, Status> {
        Err(Status::unimplemented("not in this test server"))
    }
}

struct StreamHandler {
    script: Arc<Script>,
    seen: Arc<Mutex<Seen>>,
    authorization: Option<String>,
}

impl StreamHandler {
    async fn run(
        self,
        mut inbound: Streaming<EventBatch>,
        acks_tx: mpsc::Sender<Result<BatchAck, Status>>,
    ) {
        if let Some(stall) = self.script.stall_before_reading {
            tokio::time::sleep(stall).await;
        }
        let outstanding = Arc::new(Mutex::new(0usize));
        let mut received_on_stream = 0usize;
        let mut first_gateway: Option<String> = None;
        let mut delayed = tokio::task::JoinSet::new();
        while let Some(Ok(batch)) = inbound.next().await {
            received_on_stream += 1;
            if first_gateway.is_none() {
                first_gateway = Some(batch.gateway_id.clone());
                self.seen.lock().expect("lock").streams += 1;
            }
            if let Err(status) = self.authorize(&batch.gateway_id) {
                let _ = acks_tx.send(Err(status)).await;
                return;
            }
            if self.break_now(&batch.gateway_id, received_on_stream) {
                let _ = acks_tx
                    .send(Err(Status::unavailable("scripted break")))
                    .await;
                return;
            }
            let Some(ack) = self.answer(&batch) else {
                continue;
            };
            match self.script.ack_delay {
                None => {
                    if acks_tx.send(Ok(ack)).await.is_err() {
                        return;
                    }
                }
                Some(delay) => {
                    let now_outstanding = {
                        let mut count = outstanding.lock().expect("lock");
                        *count += 1;
                        *count
                    };
                    {
                        let mut seen = self.seen.lock().expect("lock");
                        seen.max_outstanding = seen.max_outstanding.max(now_outstanding);
                    }
                    let acks_tx = acks_tx.clone();
                    let outstanding = Arc::clone(&outstanding);
                    delayed.spawn(async move {
                        tokio::time::sleep(delay).await;
                        *outstanding.lock().expect("lock") -= 1;
                        let _ = acks_tx.send(Ok(ack)).await;
                    });
                }
            }
        }
        while delayed.join_next().await.is_some() {}
    }

    fn authorize(&self, gateway_id: &str) -> Result<(), Status> {
        if self.script.tokens.is_empty() {
            return Ok(());
        }
        match (self.script.tokens.get(gateway_id), &self.authorization) {
            (Some(expected), Some(presented)) if presented == &format!("Bearer {expected}") => {
                Ok(())
            }
            _ => Err(Status::unauthenticated("bad or missing token")),
        }
    }

    fn break_now(&self, gateway_id: &str, received_on_stream: usize) -> bool {
        let Some(after) = self.script.break_first_stream_after else {
            return false;
        };
        if received_on_stream < after {
            return false;
        }
        self.seen
            .lock()
            .expect("lock")
            .first_stream_done
            .insert(gateway_id.to_string())
    }

    /// Record the batch and build its ack; `None` when the script drops it.
    fn answer(&self, batch: &EventBatch) -> Option<BatchAck> {
        let mut seen = self.seen.lock().expect("lock");
        for event in &batch.events {
            let id: [u8; 16] = event.event_id.as_slice().try_into().expect("16-byte ids");
            *seen.received.entry(id).or_default() += 1;
            seen.cameras_by_gateway
                .entry(batch.gateway_id.clone())
                .or_default()
                .insert(event.camera_id.clone());
        }
        let key = (batch.gateway_id.clone(), batch.batch_seq);
        let first_copy = !seen.answered.contains(&key);
        if first_copy
            && self
                .script
                .drop_first_ack_every
                .is_some_and(|every| batch.batch_seq.is_multiple_of(every))
            && !seen.dropped_keys.contains(&key)
        {
            seen.dropped_keys.insert(key);
            seen.dropped_acks += 1;
            return None;
        }
        seen.answered.insert(key);
        let mut rejections = Vec::new();
        for (index, event) in batch.events.iter().enumerate() {
            let id: [u8; 16] = event.event_id.as_slice().try_into().expect("16-byte ids");
            match self.script.reject_every {
                Some((every, code)) if index % every == 0 => {
                    rejections.push(Rejection {
                        index: index as u32,
                        code: code as i32,
                        message: "scripted".into(),
                    });
                    seen.rejected.push((id, code as i32));
                }
                _ => seen.accepted.push(id),
            }
        }
        Some(BatchAck {
            batch_seq: batch.batch_seq,
            accepted: (batch.events.len() - rejections.len()) as u32,
            rejections,
        })
    }
}
