//! The writer thread of the embedded store: group commit into the staging table, flushes
//! of the staging table into sorted parts, merges of parts, retention.

use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use camtrail_model::Detection;
use camtrail_model::audit::AuditRecord;
use rusqlite::{Connection, Transaction, params};
use tokio::sync::{mpsc, oneshot};

use super::{Counters, DETECTION_COLUMNS, DETECTION_DEFS, Part, Shared, Tuning, write_lock};
use crate::store::StoredSighting;

/// One write for the writer thread.
pub(super) enum Work {
    /// Store detections (and their thumbnails).
    Detections(Vec<Detection>),
    /// Append one sealed audit record.
    Audit(Box<AuditRecord>),
    /// Retention: delete everything captured before `cutoff_ms` (never the audit log).
    DeleteBefore(i64),
    /// Nothing: answered once everything queued before it has committed.
    Barrier,
}

impl Work {
    pub(super) fn rows(&self) -> usize {
        match self {
            Self::Detections(detections) => detections.len(),
            Self::Audit(_) | Self::DeleteBefore(_) | Self::Barrier => 1,
        }
    }
}

pub(super) struct Request {
    pub(super) work: Work,
    pub(super) reply: oneshot::Sender<Result<usize, String>>,
}

pub(super) struct Writer {
    pub(super) connection: Connection,
    pub(super) shared: Arc<RwLock<Shared>>,
    pub(super) counters: Arc<Counters>,
    pub(super) tuning: Tuning,
    /// Rows in the staging table (resends included).
    pub(super) staged: usize,
}

impl Writer {
    /// Group, run, commit, answer; ends when every store handle is dropped.
    pub(super) fn run(mut self, mut requests: mpsc::Receiver<Request>) {
        while let Some(first) = requests.blocking_recv() {
            let mut rows = first.work.rows();
            let mut group = vec![first];
            while rows < self.tuning.max_group_rows {
                match requests.try_recv() {
                    Ok(next) => {
                        rows += next.work.rows();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            let results = self.commit_group(&group);
            self.counters.commits.fetch_add(1, Ordering::Relaxed);
            self.counters
                .committed_requests
                .fetch_add(group.len() as i64, Ordering::Relaxed);
            for (request, result) in group.into_iter().zip(results) {
                let _ = request.reply.send(result);
            }
            if self.staged >= self.tuning.flush_rows {
                self.maintain();
            }
        }
        tracing::debug!("SQLite writer stopped");
    }

    /// One transaction for the whole group, a savepoint per request; the staged rows reach
    /// the in-memory index after the commit, before any request is answered.
    fn commit_group(&mut self, group: &[Request]) -> Vec<Result<usize, String>> {
        let all_failed = |error: rusqlite::Error| {
            tracing::warn!(%error, requests = group.len(), "SQLite group commit failed");
            group.iter().map(|_| Err(error.to_string())).collect()
        };
        // Retention may drop parts: readers must not run while that commits.
        let exclusive = group
            .iter()
            .any(|r| matches!(r.work, Work::DeleteBefore(_)));
        let shared = Arc::clone(&self.shared);
        let mut guard = exclusive.then(|| write_lock(&shared));
        let mut transaction = match self.connection.transaction() {
            Ok(transaction) => transaction,
            Err(error) => return all_failed(error),
        };
        let mut results = Vec::with_capacity(group.len());
        let mut staged = Vec::new();
        let mut staged_rows = 0;
        let mut parts = match guard.as_ref() {
            Some(shared) => shared.parts.clone(),
            None => Vec::new(),
        };
        for request in group {
            let result = transaction.savepoint().and_then(|savepoint| {
                let done = match &request.work {
                    Work::Detections(detections) => {
                        stage(&savepoint, detections)?;
                        detections.len()
                    }
                    Work::Audit(record) => insert_audit(&savepoint, record)?,
                    Work::DeleteBefore(cutoff_ms) => {
                        // On a clone: if this step fails, its savepoint rolls back and the
                        // part list must stay as it was.
                        let mut remaining = parts.clone();
                        let removed = delete_before(&savepoint, &mut remaining, *cutoff_ms)?;
                        savepoint.commit()?;
                        parts = remaining;
                        return Ok(removed);
                    }
                    Work::Barrier => 0,
                };
                savepoint.commit()?;
                Ok(done)
            });
            if let (Ok(_), Work::Detections(detections)) = (&result, &request.work) {
                staged_rows += detections.len();
                staged.extend(detections.iter().map(StoredSighting::from_detection));
            }
            results.push(result.map_err(|error| error.to_string()));
        }
        if let Err(error) = transaction.commit() {
            return all_failed(error);
        }
        self.staged += staged_rows;
        let mut shared = guard.take().unwrap_or_else(|| write_lock(&self.shared));
        if exclusive {
            shared.parts = parts;
            let cutoffs: Vec<i64> = group
                .iter()
                .filter_map(|r| match r.work {
                    Work::DeleteBefore(cutoff) => Some(cutoff),
                    _ => None,
                })
                .collect();
            let cutoff = cutoffs.into_iter().max().unwrap_or(i64::MIN);
            shared.hot.retain(|s| s.captured_at_ms >= cutoff);
        }
        for sighting in staged {
            shared.hot.insert(sighting);
        }
        results
    }

    /// Flush the staging table into a new sorted part, then merge parts if there are too
    /// many. Readers are held off while each step commits (it changes the part list).
    fn maintain(&mut self) {
        let started = std::time::Instant::now();
        match self.flush() {
            Ok(part) => {
                self.counters.flushes.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    part = part.id,
                    rows = part.rows,
                    ms = started.elapsed().as_millis() as u64,
                    "staging flushed into a part"
                );
            }
            Err(error) => {
                tracing::warn!(%error, "flushing the staging table failed; will retry");
                return;
            }
        }
        let started = std::time::Instant::now();
        match self.merge_if_needed() {
            Ok(Some(part)) => {
                self.counters.merges.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(
                    part = part.id,
                    rows = part.rows,
                    ms = started.elapsed().as_millis() as u64,
                    "parts merged"
                );
            }
            Ok(None) => {}
            Err(error) => tracing::warn!(%error, "merging parts failed; will retry"),
        }
    }

    fn flush(&mut self) -> rusqlite::Result<Part> {
        let shared = Arc::clone(&self.shared);
        let mut guard = write_lock(&shared);
        let transaction = self.connection.transaction()?;
        let part = build_part(
            &transaction,
            &format!("SELECT {DETECTION_COLUMNS} FROM staging"),
        )?;
        transaction.execute("DELETE FROM staging", [])?;
        transaction.commit()?;
        guard.parts.push(part.clone());
        guard.hot.clear();
        self.staged = 0;
        Ok(part)
    }

    /// Merge the `merge_fan_in` smallest parts into one when there are more than
    /// `max_parts`.
    fn merge_if_needed(&mut self) -> rusqlite::Result<Option<Part>> {
        let shared = Arc::clone(&self.shared);
        let mut guard = write_lock(&shared);
        if guard.parts.len() <= self.tuning.max_parts {
            return Ok(None);
        }
        let mut by_size = guard.parts.clone();
        by_size.sort_by_key(|p| p.rows);
        let merged: Vec<Part> = by_size.into_iter().take(self.tuning.merge_fan_in).collect();
        let source = merged
            .iter()
            .map(|p| format!("SELECT {DETECTION_COLUMNS} FROM part_{}", p.id))
            .collect::<Vec<_>>()
            .join(" UNION ALL ");
        let transaction = self.connection.transaction()?;
        let part = build_part(&transaction, &source)?;
        for old in &merged {
            transaction.execute_batch(&format!(
                "DROP TABLE part_{id}; DELETE FROM parts WHERE id = {id};",
                id = old.id
            ))?;
        }
        transaction.commit()?;
        guard.parts.retain(|p| !merged.iter().any(|m| m.id == p.id));
        guard.parts.push(part.clone());
        Ok(Some(part))
    }
}

/// Create a part from the rows `source` selects: sorted by the primary key (the B-tree is
/// written in order, each page once), duplicates of an event collapsed, then its camera
/// index, then its entry in `parts`.
fn build_part(transaction: &Transaction<'_>, source: &str) -> rusqlite::Result<Part> {
    transaction.execute(
        "INSERT INTO parts (rows, min_ms, max_ms) VALUES (0, 0, 0)",
        [],
    )?;
    let id = transaction.last_insert_rowid();
    transaction.execute_batch(&format!(
        "CREATE TABLE part_{id} ({DETECTION_DEFS}, \
             PRIMARY KEY (subject_key, captured_at_ms, event_id)) WITHOUT ROWID;
         INSERT OR IGNORE INTO part_{id} SELECT * FROM ({source}) \
             ORDER BY subject_key, captured_at_ms, event_id;
         CREATE INDEX part_{id}_by_camera ON part_{id} (camera_id, captured_at_ms, event_id);"
    ))?;
    let (rows, min_ms, max_ms): (i64, Option<i64>, Option<i64>) = transaction.query_row(
        &format!("SELECT count(*), min(captured_at_ms), max(captured_at_ms) FROM part_{id}"),
        [],
        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
    )?;
    let part = Part {
        id,
        rows,
        min_ms: min_ms.unwrap_or(0),
        max_ms: max_ms.unwrap_or(-1),
    };
    transaction.execute(
        "UPDATE parts SET rows = ?, min_ms = ?, max_ms = ? WHERE id = ?",
        params![part.rows, part.min_ms, part.max_ms, id],
    )?;
    Ok(part)
}

/// Retention inside one transaction: parts wholly before the cutoff are dropped, the ones
/// straddling it lose their older rows, staging and snapshots likewise. Returns the number
/// of rows removed.
fn delete_before(
    connection: &Connection,
    parts: &mut Vec<Part>,
    cutoff_ms: i64,
) -> rusqlite::Result<usize> {
    let mut removed = 0usize;
    let mut kept = Vec::with_capacity(parts.len());
    for part in parts.drain(..) {
        if part.max_ms < cutoff_ms {
            connection.execute_batch(&format!(
                "DROP TABLE part_{id}; DELETE FROM parts WHERE id = {id};",
                id = part.id
            ))?;
            removed += part.rows as usize;
        } else if part.min_ms < cutoff_ms {
            let deleted = connection.execute(
                &format!("DELETE FROM part_{} WHERE captured_at_ms < ?", part.id),
                params![cutoff_ms],
            )?;
            removed += deleted;
            let (rows, min_ms): (i64, Option<i64>) = connection.query_row(
                &format!("SELECT count(*), min(captured_at_ms) FROM part_{}", part.id),
                [],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )?;
            let part = Part {
                rows,
                min_ms: min_ms.unwrap_or(part.min_ms),
                ..part
            };
            connection.execute(
                "UPDATE parts SET rows = ?, min_ms = ? WHERE id = ?",
                params![part.rows, part.min_ms, part.id],
            )?;
            kept.push(part);
        } else {
            kept.push(part);
        }
    }
    *parts = kept;
    removed += connection.execute(
        "DELETE FROM staging WHERE captured_at_ms < ?",
        params![cutoff_ms],
    )?;
    removed += connection.execute(
        "DELETE FROM snapshots WHERE captured_at_ms < ?",
        params![cutoff_ms],
    )?;
    Ok(removed)
}

/// Append detections to the staging table (in arrival order: only its last pages change).
fn stage(connection: &Connection, detections: &[Detection]) -> rusqlite::Result<()> {
    let mut detection_row = connection.prepare_cached(&format!(
        "INSERT INTO staging ({DETECTION_COLUMNS}) VALUES \
         (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    ))?;
    let mut snapshot_row =
        connection.prepare_cached("INSERT OR IGNORE INTO snapshots VALUES (?, ?, ?)")?;
    for d in detections {
        detection_row.execute(params![
            d.subject_key,
            d.captured_at_ms,
            d.event_id.as_bytes().as_slice(),
            d.camera_id,
            d.object_class.code(),
            d.plate,
            f64::from(d.plate_confidence),
            d.attributes.color,
            d.attributes.kind,
            d.bbox[0],
            d.bbox[1],
            d.bbox[2],
            d.bbox[3],
            d.thumbnail_jpeg.is_some(),
            d.gateway_id,
            d.received_at_ms,
        ])?;
        if let Some(jpeg) = &d.thumbnail_jpeg {
            snapshot_row.execute(params![
                d.event_id.as_bytes().as_slice(),
                d.captured_at_ms,
                jpeg
            ])?;
        }
    }
    Ok(())
}

fn insert_audit(connection: &Connection, row: &AuditRecord) -> rusqlite::Result<usize> {
    let e = &row.entry;
    connection.execute(
        "INSERT INTO audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            row.node_id,
            row.seq as i64,
            e.at_ms,
            e.user,
            e.role,
            e.case_id,
            e.reason,
            e.kind,
            e.parameters_json,
            e.result_count as i64,
            e.client_addr,
            row.prev_hash,
            row.hash
        ],
    )
}
