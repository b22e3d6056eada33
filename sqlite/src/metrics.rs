//! The store's figures on `/metrics`.

use std::sync::atomic::Ordering;

use super::SqliteStore;

/// The store's figures for Prometheus, read at each scrape: `camtrail serve` registers it on
/// the query node's `/metrics`.
pub struct StoreMetrics(pub SqliteStore);

impl std::fmt::Debug for StoreMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("StoreMetrics").field(&self.0.path()).finish()
    }
}

impl prometheus_client::collector::Collector for StoreMetrics {
    fn encode(
        &self,
        mut encoder: prometheus_client::encoding::DescriptorEncoder,
    ) -> Result<(), std::fmt::Error> {
        use prometheus_client::encoding::EncodeMetric;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        let stats = self.0.writer_stats();
        let staged = self.0.counters.staged_rows.load(Ordering::Relaxed);
        let counters = [
            (
                "camtrail_embedded_commits",
                "Group transactions committed (one fsync each)",
                stats.commits,
            ),
            (
                "camtrail_embedded_writes",
                "Writes committed: detection batches, audit records, part changes",
                stats.requests,
            ),
            (
                "camtrail_embedded_flushes",
                "Staging tables turned into part files",
                stats.flushes,
            ),
            ("camtrail_embedded_merges", "Part merges", stats.merges),
        ];
        for (name, help, value) in counters {
            let counter = ConstCounter::new(value.max(0) as u64);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let gauges = [
            (
                "camtrail_embedded_parts",
                "Part files now",
                stats.parts as i64,
            ),
            (
                "camtrail_embedded_staged_rows",
                "Rows staged in memory, waiting to become part of a part file",
                staged,
            ),
            (
                "camtrail_embedded_queued_rows",
                "Rows handed to the writer and not yet committed",
                stats.queued_rows,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        Ok(())
    }
}
