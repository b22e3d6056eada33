//! Prometheus metrics of the sink, served on `/metrics`. Updated once per batch (or per
//! dead-lettered record, which is rare), never per row. Labels are low-cardinality.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Label: a ClickHouse table.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TableLabel {
    /// `detections` or `snapshots`.
    pub table: &'static str,
}

/// Label: what was retried.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RetryLabel {
    /// `insert` or `dead_letter`.
    pub operation: &'static str,
    /// `transient` (network, timeout, server overload) or `permanent` (the server rejected
    /// the request; still retried, because skipping would lose data — an operator must fix
    /// the cause).
    pub class: &'static str,
}

/// Label: one partition of the detections topic (bounded by the partition count).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PartitionLabel {
    /// Topic name.
    pub topic: String,
    /// Partition number.
    pub partition: i32,
}

/// All sink metrics.
#[derive(Clone)]
pub struct SinkMetrics {
    /// Rows inserted, per table.
    pub rows_inserted: Family<TableLabel, Counter>,
    /// Batches inserted and committed.
    pub batches: Counter,
    /// Detections per batch.
    pub batch_rows: Histogram,
    /// Time of one successful insert of a batch (both tables), seconds.
    pub insert_seconds: Histogram,
    /// Failed attempts that were retried.
    pub retries: Family<RetryLabel, Counter>,
    /// Records sent to the dead-letter topic.
    pub dead_letter_records: Counter,
    /// Offset commits that failed (the data is in ClickHouse; the records will be delivered
    /// again and collapse on `event_id`).
    pub commit_failures: Counter,
    /// Records not yet committed, per assigned partition (end offset − committed offset, from
    /// librdkafka's statistics); partitions this sink no longer owns are removed.
    pub consumer_lag: Family<PartitionLabel, Gauge>,
}

impl SinkMetrics {
    /// Create the metrics and register them in `registry` under the `camtrail_sink` prefix.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Self {
            rows_inserted: Family::default(),
            batches: Counter::default(),
            batch_rows: Histogram::new(exponential_buckets(1.0, 4.0, 10)),
            insert_seconds: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            retries: Family::default(),
            dead_letter_records: Counter::default(),
            commit_failures: Counter::default(),
            consumer_lag: Family::default(),
        };
        let sub = registry.sub_registry_with_prefix("camtrail_sink");
        sub.register(
            "rows_inserted",
            "Rows inserted into ClickHouse, per table",
            metrics.rows_inserted.clone(),
        );
        sub.register(
            "batches",
            "Batches inserted and committed",
            metrics.batches.clone(),
        );
        sub.register(
            "batch_rows",
            "Detections per inserted batch",
            metrics.batch_rows.clone(),
        );
        sub.register(
            "insert_seconds",
            "Duration of a successful batch insert",
            metrics.insert_seconds.clone(),
        );
        sub.register(
            "retries",
            "Failed attempts that were retried",
            metrics.retries.clone(),
        );
        sub.register(
            "dead_letter_records",
            "Undecodable records sent to the dead-letter topic",
            metrics.dead_letter_records.clone(),
        );
        sub.register(
            "commit_failures",
            "Offset commits that failed after a successful insert",
            metrics.commit_failures.clone(),
        );
        sub.register(
            "consumer_lag",
            "Records of an assigned partition not committed yet",
            metrics.consumer_lag.clone(),
        );
        metrics
    }

    /// Count one retried failure.
    pub fn retry(&self, operation: &'static str, class: &'static str) {
        self.retries
            .get_or_create(&RetryLabel { operation, class })
            .inc();
    }

    /// Update the lag gauges from one librdkafka statistics report: set for partitions this
    /// member fetches, removed for the others (revoked, or never ours).
    pub fn update_lag(&self, statistics: &rdkafka::Statistics) {
        for (topic_name, topic) in &statistics.topics {
            for partition in topic.partitions.values() {
                // -1 is librdkafka's internal "unassigned" partition.
                if partition.partition < 0 {
                    continue;
                }
                let label = PartitionLabel {
                    topic: topic_name.clone(),
                    partition: partition.partition,
                };
                let fetching =
                    partition.fetch_state != "none" && partition.fetch_state != "stopped";
                if fetching && partition.consumer_lag >= 0 {
                    self.consumer_lag
                        .get_or_create(&label)
                        .set(partition.consumer_lag);
                } else {
                    self.consumer_lag.remove(&label);
                }
            }
        }
    }
}
