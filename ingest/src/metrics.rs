//! Prometheus metrics of the ingest node, served on `/metrics`. Labels are low-cardinality
//! (rejection code, batch outcome); never camera ids, plates or gateways.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label: a rejection code name.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CodeLabel {
    /// e.g. `REJECTION_CODE_UNKNOWN_CAMERA`.
    pub code: String,
}

/// Label: how a batch ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    /// `acked` or the error code's name (`publish_failed`, `overloaded`, `unauthenticated`,
    /// `forbidden`, `batch_too_large`).
    pub outcome: &'static str,
}

/// Label: why the node ended a stream.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// `ack_timeout`.
    pub reason: &'static str,
}

/// All ingest metrics. Updated once per batch, never per event.
pub struct IngestMetrics {
    /// Events accepted and durable.
    pub events_accepted: Counter,
    /// Events rejected, by code.
    pub events_rejected: Family<CodeLabel, Counter>,
    /// Batches by outcome.
    pub batches: Family<OutcomeLabel, Counter>,
    /// Events per batch.
    pub batch_events: Histogram,
    /// Receive → ack, seconds.
    pub ack_latency_seconds: Histogram,
    /// Events handed to the publisher and not yet durable (the Kafka producer's queue and
    /// in-flight records, or rows waiting for the embedded writer).
    pub publish_queue_depth: Gauge,
    /// Batches being validated or published.
    pub in_flight_batches: Gauge,
    /// Open `Publish` streams.
    pub open_streams: Gauge,
    /// The node's batch permits free now (`ingest.max_in_flight_batches` when idle).
    pub node_permits_free: Gauge,
    /// `Publish` streams the node cancelled, by reason.
    pub streams_cancelled: Family<ReasonLabel, Counter>,
}

impl IngestMetrics {
    /// Create the metrics and register them in `registry` under the `camtrail_ingest` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            events_accepted: Counter::default(),
            events_rejected: Family::default(),
            batches: Family::default(),
            batch_events: Histogram::new(exponential_buckets(1.0, 2.0, 14)),
            ack_latency_seconds: Histogram::new(exponential_buckets(0.000_5, 2.0, 16)),
            publish_queue_depth: Gauge::default(),
            in_flight_batches: Gauge::default(),
            open_streams: Gauge::default(),
            node_permits_free: Gauge::default(),
            streams_cancelled: Family::default(),
        };
        let sub = registry.sub_registry_with_prefix("camtrail_ingest");
        sub.register(
            "events_accepted",
            "Events accepted and durable",
            metrics.events_accepted.clone(),
        );
        sub.register(
            "events_rejected",
            "Events rejected, by code",
            metrics.events_rejected.clone(),
        );
        sub.register("batches", "Batches by outcome", metrics.batches.clone());
        sub.register(
            "batch_events",
            "Events per batch",
            metrics.batch_events.clone(),
        );
        sub.register(
            "ack_latency_seconds",
            "Time from receiving a batch to acking it",
            metrics.ack_latency_seconds.clone(),
        );
        sub.register(
            "publish_queue_depth",
            "Events handed to the publisher (Kafka producer, or the embedded writer) and not yet durable",
            metrics.publish_queue_depth.clone(),
        );
        sub.register(
            "in_flight_batches",
            "Batches being processed",
            metrics.in_flight_batches.clone(),
        );
        sub.register(
            "open_streams",
            "Open Publish streams",
            metrics.open_streams.clone(),
        );
        sub.register(
            "node_permits_free",
            "Batch permits of the node free now (a batch holds one until it is durable)",
            metrics.node_permits_free.clone(),
        );
        sub.register(
            "streams_cancelled",
            "Publish streams the node cancelled, by reason (ack_timeout: acks left unread)",
            metrics.streams_cancelled.clone(),
        );
        metrics
    }

    /// Count one stream the node cancelled.
    pub fn stream_cancelled(&self, reason: &'static str) {
        self.streams_cancelled
            .get_or_create(&ReasonLabel { reason })
            .inc();
    }

    /// Count one batch outcome.
    pub fn batch(&self, outcome: &'static str) {
        self.batches.get_or_create(&OutcomeLabel { outcome }).inc();
    }
}
