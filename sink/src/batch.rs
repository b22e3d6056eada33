//! A batch: the rows of `detections`, `snapshots` and `audit_log` decoded from a run of
//! records, with the offsets they came from. The sink keeps the batch (its own copy of the
//! rows) until the insert succeeded, so a failed insert is retried with exactly the same
//! rows.

use std::time::{Duration, Instant};

use camtrail_clickhouse::rows::{AuditRow, DetectionRow, SnapshotRow};
use camtrail_model::Detection;
use camtrail_model::audit::AuditRecord;

use super::offsets::BatchOffsets;

/// Rows waiting for one insert, and the offsets they cover.
#[derive(Debug, Default)]
pub struct Batch {
    /// Rows for `detections`.
    pub detections: Vec<DetectionRow>,
    /// Rows for `snapshots`.
    pub snapshots: Vec<SnapshotRow>,
    /// Rows for `audit_log`.
    pub audit: Vec<AuditRow>,
    /// Offsets of every record in the batch, including dead-lettered ones.
    pub offsets: BatchOffsets,
    /// Approximate bytes held.
    pub bytes: usize,
    /// When the first record arrived.
    pub started: Option<Instant>,
}

impl Batch {
    /// Add a decoded detection from `topic`/`partition`/`offset`.
    pub fn push(&mut self, detection: Detection, topic: &str, partition: i32, offset: i64) {
        let (row, snapshot) = DetectionRow::from_detection(detection);
        self.bytes += row.approx_bytes();
        self.detections.push(row);
        if let Some(snapshot) = snapshot {
            self.bytes += 32 + snapshot.jpeg.len();
            self.snapshots.push(snapshot);
        }
        self.mark_done(topic, partition, offset);
    }

    /// Add a decoded audit record from `topic`/`partition`/`offset`.
    pub fn push_audit(&mut self, record: AuditRecord, topic: &str, partition: i32, offset: i64) {
        let row = AuditRow::from(record);
        self.bytes += 256 + row.parameters_json.len() + row.reason.len();
        self.audit.push(row);
        self.mark_done(topic, partition, offset);
    }

    /// Count a record that needs no row (it went to the dead-letter topic) as part of the
    /// batch, so its offset is committed with the batch.
    pub fn mark_done(&mut self, topic: &str, partition: i32, offset: i64) {
        self.started.get_or_insert_with(Instant::now);
        self.offsets.record(topic, partition, offset);
    }

    /// Whether the batch covers no record.
    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Whether the batch holds `max_rows` rows or `max_bytes` bytes (no clock read).
    pub fn is_full(&self, max_rows: usize, max_bytes: usize) -> bool {
        self.detections.len() + self.audit.len() >= max_rows || self.bytes >= max_bytes
    }

    /// Whether the batch must be inserted now: full (rows or bytes) or old enough.
    pub fn is_due(&self, max_rows: usize, max_bytes: usize, max_age: Duration) -> bool {
        self.is_full(max_rows, max_bytes)
            || self
                .started
                .is_some_and(|started| started.elapsed() >= max_age)
    }

    /// Empty the batch for reuse (keeps the allocations).
    pub fn clear(&mut self) {
        self.detections.clear();
        self.snapshots.clear();
        self.audit.clear();
        self.offsets.clear();
        self.bytes = 0;
        self.started = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_storage::testsuite::{CAMERA, T0};

    /// A contract fixture; event 1 carries a thumbnail.
    fn detection(n: u8) -> Detection {
        camtrail_storage::testsuite::detection(n, "粤S12345", T0, CAMERA)
    }

    #[test]
    fn a_batch_is_due_when_full_or_old() {
        let mut batch = Batch::default();
        assert!(!batch.is_due(2, 1 << 20, Duration::from_secs(60)));
        batch.push(detection(1), "t", 0, 5);
        assert!(!batch.is_due(2, 1 << 20, Duration::from_secs(60)));
        batch.mark_done("t", 0, 6); // dead-lettered: no row, but its offset counts
        assert_eq!(batch.detections.len(), 1);
        assert_eq!(batch.snapshots.len(), 1);
        batch.push(detection(2), "t", 0, 7);
        assert!(batch.is_due(2, 1 << 20, Duration::from_secs(60)));
        assert!(batch.is_due(100, 10, Duration::from_secs(60)));
        assert!(batch.is_due(100, 1 << 20, Duration::ZERO));
        batch.clear();
        assert!(batch.is_empty());
        assert!(!batch.is_due(1, 1, Duration::ZERO));
    }
}
