//! Prometheus metrics of the query node (`/metrics`): requests by kind and outcome, and
//! latency by kind. Labels never carry plates, keys, users or cases.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::service::QueryError;

/// Label: query kind and outcome (`ok` or an error code).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabel {
    /// `track`, `passes`, `snapshot`.
    pub kind: &'static str,
    /// `ok` or the error code.
    pub outcome: &'static str,
}

/// Label: query kind.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// `track`, `passes`, `snapshot`.
    pub kind: &'static str,
}

/// The query node's metrics.
#[derive(Clone)]
pub struct QueryMetrics {
    requests: Family<RequestLabel, Counter>,
    seconds: Family<KindLabel, Histogram>,
    audit_seconds: Histogram,
}

impl QueryMetrics {
    /// Create and register under `camtrail_query`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            requests: Family::default(),
            seconds: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.000_5, 2.0, 16))
            }),
            audit_seconds: Histogram::new(exponential_buckets(0.000_1, 2.0, 16)),
        };
        let sub = registry.sub_registry_with_prefix("camtrail_query");
        sub.register(
            "requests",
            "Audited requests by kind and outcome",
            metrics.requests.clone(),
        );
        sub.register(
            "request_seconds",
            "Time to answer, audit included",
            metrics.seconds.clone(),
        );
        sub.register(
            "audit_write_seconds",
            "Time to make one audit record durable (part of request_seconds)",
            metrics.audit_seconds.clone(),
        );
        metrics
    }

    /// Time one audit write took.
    pub fn observe_audit(&self, took: Duration) {
        self.audit_seconds.observe(took.as_secs_f64());
    }

    /// Count one request and its latency.
    pub fn observe<T>(&self, kind: &'static str, result: &Result<T, QueryError>, took: Duration) {
        let outcome = match result {
            Ok(_) => "ok",
            Err(error) => error.code.name(),
        };
        self.requests
            .get_or_create(&RequestLabel { kind, outcome })
            .inc();
        self.seconds
            .get_or_create(&KindLabel { kind })
            .observe(took.as_secs_f64());
    }
}
