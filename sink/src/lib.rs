//! `camtrail sink`: moves `camtrail.detections.v1` into ClickHouse `detections` (and
//! thumbnails into `snapshots`) and `camtrail.audit.v1` into `audit_log`, at least once, with offsets committed in order and only
//! after the insert that holds them succeeded (ARCHITECTURE.md, Guarantees 2 and 3).
//!
//! - [`config`]: the `[sink]` section.
//! - `consumer`: the consumer-group member and its loop, on one dedicated thread (why: see
//!   that module); rebalance flushes the batch before partitions are revoked.
//! - `pipeline`: the insert thread, overlapping inserts with consuming; batches come back
//!   in order and are committed by the polling thread.
//! - [`batch`]: rows kept until the insert succeeded; `offsets`: what to commit after it.
//! - [`writer`]: [`ClickhouseWriter`](writer::ClickhouseWriter), the batch's rows inserted
//!   table by table (`camtrail_clickhouse::writer`), retried with capped backoff, forever,
//!   never skipping.
//! - `dlq`: undecodable records go to the dead-letter topic (acked before their offset
//!   counts), retried the same way.
//! - [`metrics`]: `/metrics`, served with `/healthz` by `camtrail_common::http::router`.
//!
//! Duplicates (a batch inserted but not committed, then re-delivered) are expected and
//! collapse on `event_id` (ReplacingMergeTree + dedup on read).

pub mod batch;
pub mod config;
mod consumer;
mod dlq;
pub mod metrics;
pub mod offsets;
mod pipeline;
pub mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camtrail_clickhouse::ClickhouseConfig;
use camtrail_common::Readiness;
use camtrail_kafka::{DeadLetterProducer, KafkaConfig};
use prometheus_client::registry::Registry;
use rdkafka::consumer::Consumer;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::SinkConfig;
pub use consumer::SinkReport;

use consumer::{SinkContext, SinkState};
use dlq::DeadLetters;
use metrics::SinkMetrics;
use writer::ClickhouseWriter;

/// A sink, bound to its HTTP port, ready to run.
pub struct SinkNode {
    config: SinkConfig,
    kafka: KafkaConfig,
    clickhouse: ClickhouseConfig,
    http_listener: TcpListener,
    registry: Arc<Registry>,
    metrics: SinkMetrics,
}

impl SinkNode {
    /// Bind the HTTP port. Kafka and ClickHouse are contacted only by [`Self::run_until_stopped`].
    pub async fn bind(
        config: SinkConfig,
        kafka: &KafkaConfig,
        clickhouse: &ClickhouseConfig,
    ) -> anyhow::Result<Self> {
        let http_listener = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP {}", config.http_addr))?;
        let mut registry = Registry::default();
        let metrics = SinkMetrics::register(&mut registry);
        Ok(Self {
            config,
            kafka: kafka.clone(),
            clickhouse: clickhouse.clone(),
            http_listener,
            registry: Arc::new(registry),
            metrics,
        })
    }

    /// The bound HTTP address (useful with port 0).
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http_listener.local_addr()
    }

    /// Consume until `shutdown` resolves, then flush and commit the last batch, stop the HTTP
    /// server and return what was done.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send,
    ) -> anyhow::Result<SinkReport> {
        let stop = CancellationToken::new();
        let readiness = Readiness::new();
        let router = camtrail_common::http::router(self.registry.clone(), readiness.clone());
        let http_stop = stop.clone();
        let http = tokio::spawn(async move {
            axum::serve(self.http_listener, router)
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .await
        });
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let thread_stop = stop.clone();
        let (config, kafka, clickhouse, metrics) =
            (self.config, self.kafka, self.clickhouse, self.metrics);
        let thread = std::thread::Builder::new()
            .name("camtrail-sink".into())
            .spawn(move || {
                let result = run_thread(&config, &kafka, &clickhouse, metrics, &thread_stop);
                let _ = done_tx.send(result);
            })
            .context("spawning the sink thread")?;
        tracing::info!("sink running");
        let mut done_rx = done_rx;
        let result = tokio::select! {
            () = shutdown => {
                tracing::info!("sink stopping: flushing the last batch");
                readiness.stop().await;
                stop.cancel();
                (&mut done_rx).await
            }
            result = &mut done_rx => result,
        };
        readiness.stop().await;
        stop.cancel();
        // The thread has sent its result and is returning; joining it is immediate.
        let joined = tokio::task::spawn_blocking(move || thread.join()).await;
        http.await.context("joining the HTTP server")??;
        if !matches!(joined, Ok(Ok(()))) {
            anyhow::bail!("the sink thread panicked");
        }
        let report = result.context("the sink thread ended without a result")??;
        tracing::info!(?report, "sink stopped");
        Ok(report)
    }
}

/// Body of the sink thread: [`run_consumer`] until `stop`, again with a new consumer (and
/// writer) whenever librdkafka declares the last one's error fatal.
fn run_thread(
    config: &SinkConfig,
    kafka: &KafkaConfig,
    clickhouse: &ClickhouseConfig,
    metrics: SinkMetrics,
    stop: &CancellationToken,
) -> anyhow::Result<SinkReport> {
    let mut total = SinkReport::default();
    // 1 s after a first fatal error, doubling up to 60 s while they keep coming (two sinks
    // given the same instance_id fence each other: that must not become a tight loop).
    let mut pause = Duration::from_secs(1);
    loop {
        let started = std::time::Instant::now();
        let (report, end) = run_consumer(config, kafka, clickhouse, metrics.clone(), stop)?;
        total.detections_inserted += report.detections_inserted;
        total.snapshots_inserted += report.snapshots_inserted;
        total.audit_inserted += report.audit_inserted;
        total.dead_letters += report.dead_letters;
        total.batches += report.batches;
        match end {
            consumer::LoopEnd::Fatal(error) if !stop.is_cancelled() => {
                if started.elapsed() > Duration::from_secs(300) {
                    pause = Duration::from_secs(1);
                }
                tracing::error!(%error, pause_s = pause.as_secs(), "the Kafka consumer failed \
                    fatally; joining the group again with a new one (uncommitted records are \
                    delivered again)");
                let deadline = std::time::Instant::now() + pause;
                while std::time::Instant::now() < deadline && !stop.is_cancelled() {
                    std::thread::sleep(Duration::from_millis(100));
                }
                pause = (pause * 2).min(Duration::from_secs(60));
            }
            _ => return Ok(total),
        }
    }
}

/// Its own current-thread runtime, the writer, the dead-letter producer, the consumer;
/// then the loop until `stop` or a fatal consumer error.
fn run_consumer(
    config: &SinkConfig,
    kafka: &KafkaConfig,
    clickhouse: &ClickhouseConfig,
    metrics: SinkMetrics,
    stop: &CancellationToken,
) -> anyhow::Result<(SinkReport, consumer::LoopEnd)> {
    // On a cluster the Distributed tables would take detections asynchronously and refuse
    // thumbnails (no sharding key): the sink must write the shards itself.
    anyhow::ensure!(
        clickhouse.cluster.is_empty() || !clickhouse.shards.is_empty(),
        "clickhouse.cluster is set ({}) but clickhouse.shards is not: the sink writes each \
         shard's replicas itself; list them in the cluster's shard order",
        clickhouse.cluster
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("building the sink runtime")?;
    let compression = if config.compress_inserts {
        clickhouse::Compression::Lz4
    } else {
        clickhouse::Compression::None
    };
    let timeout = Duration::from_millis(config.insert_timeout_ms);
    let writer = ClickhouseWriter::new(
        clickhouse.client().with_compression(compression),
        timeout,
        config.insert_deduplication_token,
        config.backoff(),
        metrics.clone(),
    )
    .with_shards(
        clickhouse
            .shard_clients()
            .into_iter()
            .map(|client| client.with_compression(compression))
            .collect(),
        timeout,
    );
    let dead_letters = DeadLetters::new(
        DeadLetterProducer::new(&kafka.brokers, &kafka.dead_letter_topic)
            .context("creating the dead-letter producer")?,
        config.backoff(),
        metrics.clone(),
    );
    let pipeline = pipeline::InsertPipeline::start(writer, stop.clone())?;
    let state = SinkState::new(runtime, pipeline, dead_letters, metrics, stop.clone());
    let consumer = consumer::create_consumer(&kafka.brokers, config, SinkContext::new(state))
        .context("creating the Kafka consumer")?;
    consumer
        .subscribe(&[&kafka.detections_topic, &kafka.audit_topic])
        .with_context(|| {
            format!(
                "subscribing to {} and {}",
                kafka.detections_topic, kafka.audit_topic
            )
        })?;
    tracing::info!(
        detections = %kafka.detections_topic, audit = %kafka.audit_topic,
        group = %config.group_id, instance = config.instance_id.as_deref().unwrap_or("(dynamic)"),
        session_timeout_ms = config.session_timeout_ms, "sink subscribed"
    );
    let report = consumer::run_loop(&consumer, config, &kafka.audit_topic, stop);
    // Dropping the consumer leaves the group (the revoke callback finds an empty batch).
    drop(consumer);
    Ok(report)
}
