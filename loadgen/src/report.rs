//! What a run measured: live counters (read by the progress bar), the ack latency histogram,
//! a per-second time series, and the final [`LoadReport`].

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use camtrail_proto::v1::RejectionCode;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Highest latency the histograms track, µs (an hour; larger values are clamped).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// Batches first sent this early in a run are left out of
/// [`LoadReport::ack_latency_after_warmup`]: the first seconds hold every stream's set-up and
/// the pacer's catch-up burst, which say nothing about the steady state.
pub const WARMUP: Duration = Duration::from_secs(2);

/// Counters updated by the gateway streams once per batch, read lock-free by the progress bar.
#[derive(Debug, Default)]
pub struct Counters {
    /// Events in batches sent at least once.
    pub sent: AtomicU64,
    /// Events acked as accepted (first ack of each batch).
    pub acked: AtomicU64,
    /// Events acked as rejected (first ack of each batch).
    pub rejected: AtomicU64,
    /// Batches sent again (after an ack timeout or on a new stream).
    pub resends: AtomicU64,
    /// Streams opened after the first one, per gateway.
    pub reconnects: AtomicU64,
    /// Streams moved to another ingest endpoint after a failure.
    pub failovers: AtomicU64,
}

impl Counters {
    fn load(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Snapshot of (sent, acked, rejected, resends).
    pub fn snapshot(&self) -> (u64, u64, u64, u64) {
        (
            Self::load(&self.sent),
            Self::load(&self.acked),
            Self::load(&self.rejected),
            Self::load(&self.resends),
        )
    }
}

/// One second of the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SecondPoint {
    /// Seconds since the run started (this point covers [second, second + 1)).
    pub second: u64,
    /// Events first sent in this second.
    pub sent: u64,
    /// Events acked (accepted) in this second.
    pub acked: u64,
    /// Events rejected in this second.
    pub rejected: u64,
    /// Median ack latency of the batches acked in this second, ms (`null` when none).
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile ack latency, ms.
    pub latency_p99_ms: Option<f64>,
    /// Largest ack latency, ms.
    pub latency_max_ms: Option<f64>,
}

/// Ack latency distribution, ms (batch first sent → its first ack).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    /// Batches measured.
    pub batches: u64,
    /// Mean.
    pub mean_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p999_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

impl LatencySummary {
    /// Summarise a histogram of microseconds.
    pub fn from_histogram_us(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        let ms = |us: u64| us as f64 / 1_000.0;
        Self {
            batches: histogram.len(),
            mean_ms: histogram.mean() / 1_000.0,
            p50_ms: ms(histogram.value_at_quantile(0.50)),
            p90_ms: ms(histogram.value_at_quantile(0.90)),
            p99_ms: ms(histogram.value_at_quantile(0.99)),
            p999_ms: ms(histogram.value_at_quantile(0.999)),
            max_ms: ms(histogram.max()),
        }
    }
}

/// The JSON report of a run.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct LoadReport {
    /// `grpc` or `gat1400`.
    pub protocol: String,
    /// Ingest endpoint.
    pub target: String,
    /// Gateway streams used.
    pub gateways: usize,
    /// Events per batch (the last batch of a gateway, or one cut by linger, may be smaller).
    pub batch_size: usize,
    /// Target rate, events/s; `null` for an open throttle.
    pub target_rate_eps: Option<f64>,
    /// Events taken from the generator and put into batches.
    pub offered: u64,
    /// Events in batches that were sent at least once.
    pub sent: u64,
    /// Events accepted (acks for already acked batches are not counted again).
    pub acked: u64,
    /// Events rejected.
    pub rejected: u64,
    /// Rejected events by `RejectionCode` name.
    pub rejected_by_code: BTreeMap<String, u64>,
    /// Events sent but never acked (run ended or drain timed out): sent = acked + rejected +
    /// unacked when every ack is consistent.
    pub unacked: u64,
    /// Events offered but never sent (shutdown or abort while they were queued).
    pub unsent: u64,
    /// Batches sent at least once.
    pub batches_sent: u64,
    /// Batches acked.
    pub batches_acked: u64,
    /// Batch resends (after an ack timeout or on a new stream).
    pub resends: u64,
    /// Acks for batches already acked (the original and a resend were both acked).
    pub duplicate_acks: u64,
    /// Acks naming a `batch_seq` never sent.
    pub unknown_acks: u64,
    /// Acks whose `accepted + rejections` does not match the batch (a server bug).
    pub inconsistent_acks: u64,
    /// Streams re-opened after a failure.
    pub reconnects: u64,
    /// Streams moved to another ingest endpoint after a failure (several targets).
    pub failovers: u64,
    /// Events the pacer skipped because sending fell more than a second behind schedule.
    pub pacing_forgiven: u64,
    /// Wall time from start to the last ack (or drain timeout), s.
    pub elapsed_s: f64,
    /// (acked + rejected) / elapsed, events/s.
    pub achieved_rate_eps: f64,
    /// Ack latency (batch first sent → first ack).
    pub ack_latency: LatencySummary,
    /// The same, for batches first sent after the first [`WARMUP`] of the run.
    pub ack_latency_after_warmup: LatencySummary,
    /// Per-second time series (the chart's data).
    pub timeline: Vec<SecondPoint>,
}

impl LoadReport {
    /// Write the report as pretty JSON.
    pub fn write_json(&self, path: &std::path::Path) -> Result<(), crate::LoadgenError> {
        let output_error = |message: String| crate::LoadgenError::Output {
            path: path.display().to_string(),
            message,
        };
        let json =
            serde_json::to_vec_pretty(self).map_err(|error| output_error(error.to_string()))?;
        std::fs::write(path, json).map_err(|error| output_error(error.to_string()))
    }

    /// A few human-readable lines for the terminal.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "sent {} acked {} rejected {} unacked {} unsent {} in {:.1} s: {:.0} events/s\n",
            self.sent,
            self.acked,
            self.rejected,
            self.unacked,
            self.unsent,
            self.elapsed_s,
            self.achieved_rate_eps
        );
        text.push_str(&format!(
            "batches sent {} acked {}, resends {}, duplicate acks {}, reconnects {}, failovers {}\n",
            self.batches_sent,
            self.batches_acked,
            self.resends,
            self.duplicate_acks,
            self.reconnects,
            self.failovers
        ));
        let latency = &self.ack_latency;
        text.push_str(&format!(
            "ack latency ms: p50 {:.2} p90 {:.2} p99 {:.2} p99.9 {:.2} max {:.2}\n",
            latency.p50_ms, latency.p90_ms, latency.p99_ms, latency.p999_ms, latency.max_ms
        ));
        let steady = &self.ack_latency_after_warmup;
        text.push_str(&format!(
            "after the first {} s: p50 {:.2} p99 {:.2} max {:.2}\n",
            WARMUP.as_secs(),
            steady.p50_ms,
            steady.p99_ms,
            steady.max_ms
        ));
        for (code, count) in &self.rejected_by_code {
            text.push_str(&format!("rejected {code}: {count}\n"));
        }
        text
    }
}

/// Report key of a rejection code: its proto name, or `CODE_<n>` for numbers this build
/// does not know.
pub fn rejection_code_name(code: i32) -> String {
    match RejectionCode::try_from(code) {
        Ok(known) => known.as_str_name().to_string(),
        Err(_) => format!("CODE_{code}"),
    }
}

/// What the gateway streams record, shared behind one lock taken once per batch.
#[derive(Debug)]
struct Recorded {
    latency_us: Histogram<u64>,
    /// Latencies of batches first sent after [`WARMUP`].
    steady_latency_us: Histogram<u64>,
    rejected_by_code: BTreeMap<i32, u64>,
    timeline: Vec<SecondPoint>,
    /// Latencies of the batches acked in the last (open) second of `timeline`.
    second_latency_us: Histogram<u64>,
}

/// Shared measurements of one run.
#[derive(Debug)]
pub struct Stats {
    /// Live counters.
    pub counters: Counters,
    origin: Instant,
    recorded: Mutex<Recorded>,
}

fn latency_histogram(significant_digits: u8) -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, significant_digits)
        .expect("constant histogram bounds are within hdrhistogram's limits")
}

impl Stats {
    /// Empty measurements for a run starting at `origin`.
    pub fn new(origin: Instant) -> Self {
        Self {
            counters: Counters::default(),
            origin,
            recorded: Mutex::new(Recorded {
                latency_us: latency_histogram(3),
                steady_latency_us: latency_histogram(3),
                rejected_by_code: BTreeMap::new(),
                timeline: Vec::new(),
                second_latency_us: latency_histogram(2),
            }),
        }
    }

    /// When the run started.
    pub fn origin(&self) -> Instant {
        self.origin
    }

    fn with_second<R>(&self, now: Instant, update: impl FnOnce(&mut Recorded, usize) -> R) -> R {
        let second = now.saturating_duration_since(self.origin).as_secs();
        let mut recorded = self
            .recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let index = advance_timeline(&mut recorded, second);
        update(&mut recorded, index)
    }

    /// A batch of `events` was sent for the first time at `now`.
    pub fn record_first_send(&self, now: Instant, events: u64) {
        self.counters.sent.fetch_add(events, Ordering::Relaxed);
        self.with_second(now, |recorded, index| {
            recorded.timeline[index].sent += events
        });
    }

    /// A batch was acked for the first time at `now`, `latency` after it was first sent;
    /// `rejected_codes` holds the code of every rejected event.
    pub fn record_ack(
        &self,
        now: Instant,
        latency: Duration,
        accepted: u64,
        rejected_codes: &[i32],
    ) {
        let rejected = rejected_codes.len() as u64;
        self.counters.acked.fetch_add(accepted, Ordering::Relaxed);
        self.counters
            .rejected
            .fetch_add(rejected, Ordering::Relaxed);
        let latency_us = (latency.as_micros() as u64).clamp(1, MAX_LATENCY_US);
        let sent_after_warmup = now
            .checked_sub(latency)
            .is_some_and(|sent| sent.saturating_duration_since(self.origin) >= WARMUP);
        self.with_second(now, |recorded, index| {
            let point = &mut recorded.timeline[index];
            point.acked += accepted;
            point.rejected += rejected;
            recorded.latency_us.saturating_record(latency_us);
            if sent_after_warmup {
                recorded.steady_latency_us.saturating_record(latency_us);
            }
            recorded.second_latency_us.saturating_record(latency_us);
            for &code in rejected_codes {
                *recorded.rejected_by_code.entry(code).or_default() += 1;
            }
        });
    }

    /// Close the time series at `now` and fill the measured parts of a report.
    pub fn finish(&self, now: Instant, report: &mut LoadReport) {
        let (sent, acked, rejected, resends) = self.counters.snapshot();
        report.sent = sent;
        report.acked = acked;
        report.rejected = rejected;
        report.resends = resends;
        report.reconnects = Counters::load(&self.counters.reconnects);
        report.failovers = Counters::load(&self.counters.failovers);
        let elapsed = now.saturating_duration_since(self.origin).as_secs_f64();
        report.elapsed_s = elapsed;
        report.achieved_rate_eps = if elapsed > 0.0 {
            (acked + rejected) as f64 / elapsed
        } else {
            0.0
        };
        let mut recorded = self
            .recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        close_second(&mut recorded);
        report.ack_latency = LatencySummary::from_histogram_us(&recorded.latency_us);
        report.ack_latency_after_warmup =
            LatencySummary::from_histogram_us(&recorded.steady_latency_us);
        report.rejected_by_code = recorded
            .rejected_by_code
            .iter()
            .map(|(&code, &count)| (rejection_code_name(code), count))
            .collect();
        report.timeline = recorded.timeline.clone();
    }
}

/// Make `second` the last point of the timeline (closing earlier ones) and return its index.
fn advance_timeline(recorded: &mut Recorded, second: u64) -> usize {
    let last = recorded.timeline.last().map(|point| point.second);
    match last {
        Some(last) if second <= last => {
            // A late caller (its `now` was taken before the lock): count it in the open second.
            recorded.timeline.len() - 1
        }
        _ => {
            close_second(recorded);
            let first_new = last.map_or(0, |last| last + 1);
            for empty in first_new..=second {
                recorded.timeline.push(SecondPoint {
                    second: empty,
                    ..SecondPoint::default()
                });
            }
            recorded.timeline.len() - 1
        }
    }
}

/// Write the open second's latency percentiles and reset its histogram.
fn close_second(recorded: &mut Recorded) {
    let histogram = &mut recorded.second_latency_us;
    if histogram.is_empty() {
        return;
    }
    if let Some(point) = recorded.timeline.last_mut() {
        let ms = |us: u64| us as f64 / 1_000.0;
        point.latency_p50_ms = Some(ms(histogram.value_at_quantile(0.5)));
        point.latency_p99_ms = Some(ms(histogram.value_at_quantile(0.99)));
        point.latency_max_ms = Some(ms(histogram.max()));
    }
    histogram.reset();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut histogram = latency_histogram(3);
        for ms in 1..=1_000u64 {
            histogram.record(ms * 1_000).expect("in range");
        }
        let summary = LatencySummary::from_histogram_us(&histogram);
        assert_eq!(summary.batches, 1_000);
        let close = |actual: f64, expected: f64| (actual - expected).abs() <= expected * 0.002;
        assert!(close(summary.p50_ms, 500.0), "{summary:?}");
        assert!(close(summary.p90_ms, 900.0), "{summary:?}");
        assert!(close(summary.p99_ms, 990.0), "{summary:?}");
        assert!(close(summary.p999_ms, 999.0), "{summary:?}");
        assert!(close(summary.max_ms, 1_000.0), "{summary:?}");
        assert!(close(summary.mean_ms, 500.5), "{summary:?}");
        assert_eq!(
            LatencySummary::from_histogram_us(&latency_histogram(3)),
            LatencySummary::default()
        );
    }

    #[test]
    fn timeline_buckets_by_second_and_fills_gaps() {
        let origin = Instant::now();
        let stats = Stats::new(origin);
        stats.record_first_send(origin, 10);
        stats.record_ack(
            origin + Duration::from_millis(20),
            Duration::from_millis(20),
            8,
            &[1, 1],
        );
        stats.record_first_send(origin + Duration::from_millis(2_500), 5);
        stats.record_ack(
            origin + Duration::from_millis(2_600),
            Duration::from_millis(100),
            5,
            &[],
        );
        let mut report = LoadReport::default();
        stats.finish(origin + Duration::from_secs(3), &mut report);
        assert_eq!(report.sent, 15);
        assert_eq!(report.acked, 13);
        assert_eq!(report.rejected, 2);
        assert_eq!(report.rejected_by_code["REJECTION_CODE_UNKNOWN_CAMERA"], 2);
        let seconds: Vec<u64> = report.timeline.iter().map(|p| p.second).collect();
        assert_eq!(seconds, [0, 1, 2]);
        assert_eq!(report.timeline[0].sent, 10);
        assert_eq!(report.timeline[0].acked, 8);
        assert_eq!(
            report.timeline[1],
            SecondPoint {
                second: 1,
                ..SecondPoint::default()
            }
        );
        let max_ms = report.timeline[2]
            .latency_max_ms
            .expect("acked in second 2");
        assert!((max_ms - 100.0).abs() < 0.5, "{max_ms}");
        assert!(report.timeline[0].latency_p50_ms.is_some());
        assert_eq!(report.ack_latency.batches, 2);
        // Only the batch sent at 2.5 s is past the warm-up.
        assert_eq!(report.ack_latency_after_warmup.batches, 1);
        assert!((report.ack_latency_after_warmup.max_ms - 100.0).abs() < 0.5);
    }

    #[test]
    fn unknown_rejection_codes_get_a_number_key() {
        assert_eq!(rejection_code_name(1), "REJECTION_CODE_UNKNOWN_CAMERA");
        assert_eq!(rejection_code_name(999), "CODE_999");
    }
}
