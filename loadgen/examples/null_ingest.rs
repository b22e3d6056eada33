//! An ingest endpoint that acks every event without looking at it: run `camtrail loadgen`
//! against it to measure the load generator's own ceiling (it must never be what limits an
//! ingest benchmark) or to try the CLI without Kafka.
//!
//! `cargo run --release -p camtrail-loadgen --example null_ingest -- [ADDR]`
//! (default 127.0.0.1:50051; Ctrl-C stops it).

use std::pin::Pin;

use camtrail_proto::v1::ingest_server::{Ingest, IngestServer};
use camtrail_proto::v1::{BatchAck, EventBatch};
use tokio_stream::{Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

type AckStream = Pin<Box<dyn Stream<Item = Result<BatchAck, Status>> + Send>>;

struct NullIngest;

fn ack(batch: &EventBatch) -> BatchAck {
    BatchAck {
        batch_seq: batch.batch_seq,
        accepted: batch.events.len() as u32,
        rejections: Vec::new(),
    }
}

#[tonic::async_trait]
impl Ingest for NullIngest {
    type PublishStream = AckStream;

    async fn publish(
        &self,
        request: Request<Streaming<EventBatch>>,
    ) -> Result<Response<AckStream>, Status> {
        // Acks are produced as batches are read: no task, no queue, natural backpressure.
        let acks = request
            .into_inner()
            .map(|batch| batch.map(|batch| ack(&batch)));
        Ok(Response::new(Box::pin(acks)))
    }

    async fn publish_batch(
        &self,
        request: Request<EventBatch>,
    ) -> Result<Response<BatchAck>, Status> {
        Ok(Response::new(ack(request.get_ref())))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:50051".to_string())
        .parse()?;
    println!("null ingest listening on {addr}");
    tonic::transport::Server::builder()
        .add_service(IngestServer::new(NullIngest))
        .serve_with_shutdown(addr, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
