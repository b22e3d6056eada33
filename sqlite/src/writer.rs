//! The writer thread of the embedded store: group commit into the active staging table,
//! rotation of staging tables (the sealed one goes to the maintenance thread), manifest
//! changes from the maintenance thread, retention of staged rows and snapshots.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{Arc, RwLock};

use camtrail_model::Detection;
use camtrail_model::audit::AuditRecord;
use camtrail_model::case::Hold;
use rusqlite::{Connection, params};
use tokio::sync::{mpsc, oneshot};

use super::builder::Job;
use super::hot::Hot;
use super::parts::{Keep, Part, PartHandle, part_path};
use super::schema::{DETECTION_COLUMNS, DETECTION_DEFS};
use super::{Counters, Shared, Tuning, write_lock};
use camtrail_storage::StoredSighting;

/// One write for the writer thread.
pub(super) enum Work {
    /// Store detections (and their thumbnails).
    Detections(Vec<Detection>),
    /// Append one sealed audit record.
    Audit(Box<AuditRecord>),
    /// A new version of a case or watchlist entry (kept only if higher than the stored
    /// one).
    Versioned(Box<Versioned>),
    /// Legal holds (one placed again changes nothing).
    Holds(Vec<Hold>),
    /// Retention of staged rows and snapshots (parts are the maintenance thread's).
    DeleteBefore(Keep),
    /// A manifest change from the maintenance thread: list a new part, unlist old ones,
    /// drop a staging table that became a part.
    Register {
        add: Option<Part>,
        remove: Vec<i64>,
        drop_staging: Option<i64>,
    },
    /// Nothing: answered once everything queued before it has committed.
    Barrier,
}

impl Work {
    pub(super) fn rows(&self) -> usize {
        match self {
            Self::Detections(detections) => detections.len(),
            _ => 1,
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
    pub(super) parts_dir: PathBuf,
    pub(super) jobs: std::sync::mpsc::Sender<Job>,
    /// Generation of the staging table being appended to.
    pub(super) active: i64,
    /// Rows in it (resends included).
    pub(super) staged: usize,
}

/// What a committed group changes in memory.
#[derive(Default)]
struct Changes {
    staged: Vec<StoredSighting>,
    staged_rows: usize,
    keep: Vec<Keep>,
    add: Vec<Part>,
    remove: Vec<i64>,
    dropped_generations: Vec<i64>,
}

impl Writer {
    /// Group, run, commit, publish to readers, answer; ends when every store handle is
    /// dropped.
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
            if self.staged >= self.tuning.flush_rows
                && !self.counters.flush_pending.load(Ordering::Acquire)
                && let Err(error) = self.rotate()
            {
                tracing::warn!(%error, "rotating the staging table failed; will retry");
            }
            for (request, result) in group.into_iter().zip(results) {
                let _ = request.reply.send(result);
            }
        }
        tracing::debug!("SQLite writer stopped");
    }

    /// Seal the active staging table (the maintenance thread turns it into a part) and
    /// start appending to a new one. Its rows stay readable in memory until then.
    fn rotate(&mut self) -> rusqlite::Result<()> {
        let next = self.active + 1;
        self.connection.execute_batch(&format!(
            "CREATE TABLE IF NOT EXISTS staging_{next} ({DETECTION_DEFS});"
        ))?;
        // A staging table is flushed at `flush_rows` (a little beyond while the flush waits);
        // the reservation is capped, a larger table grows as it fills.
        let hot = Hot::with_capacity(self.tuning.flush_rows.min(1_000_000));
        write_lock(&self.shared).hot.insert(next, hot);
        let sealed = self.active;
        self.active = next;
        self.staged = 0;
        self.counters.flush_pending.store(true, Ordering::Release);
        if self.jobs.send(Job::Flush { generation: sealed }).is_err() {
            tracing::warn!("maintenance thread gone; staging stays in memory and on disk");
        }
        Ok(())
    }

    /// One transaction for the whole group, a savepoint per request; the changes reach
    /// readers after the commit, before any request is answered.
    fn commit_group(&mut self, group: &[Request]) -> Vec<Result<usize, String>> {
        let all_failed = |error: rusqlite::Error| {
            tracing::warn!(%error, requests = group.len(), "SQLite group commit failed");
            group.iter().map(|_| Err(error.to_string())).collect()
        };
        let active = self.active;
        let generations: Vec<i64> = super::read_lock(&self.shared).hot.keys().copied().collect();
        let mut transaction = match self.connection.transaction() {
            Ok(transaction) => transaction,
            Err(error) => return all_failed(error),
        };
        let mut results = Vec::with_capacity(group.len());
        let mut changes = Changes::default();
        for request in group {
            let result = transaction.savepoint().and_then(|savepoint| {
                let done = match &request.work {
                    Work::Detections(detections) => stage(&savepoint, active, detections)?,
                    Work::Audit(record) => insert_audit(&savepoint, record)?,
                    Work::DeleteBefore(keep) => {
                        let removed_rows = keep.removed_sql();
                        let mut removed = 0;
                        for generation in &generations {
                            removed += savepoint.execute(
                                &format!("DELETE FROM staging_{generation} WHERE {removed_rows}"),
                                [],
                            )?;
                        }
                        removed += savepoint
                            .execute(&format!("DELETE FROM snapshots WHERE {removed_rows}"), [])?;
                        removed
                    }
                    Work::Versioned(row) => upsert_versioned(&savepoint, row)?,
                    Work::Holds(holds) => insert_holds(&savepoint, holds)?,
                    Work::Register {
                        add,
                        remove,
                        drop_staging,
                    } => {
                        if let Some(part) = add {
                            savepoint.execute(
                                "INSERT INTO parts (id, rows, min_ms, max_ms) VALUES (?, ?, ?, ?)",
                                params![part.id, part.rows, part.min_ms, part.max_ms],
                            )?;
                        }
                        for id in remove {
                            savepoint.execute("DELETE FROM parts WHERE id = ?", params![id])?;
                        }
                        if let Some(generation) = drop_staging {
                            savepoint.execute_batch(&format!(
                                "DROP TABLE IF EXISTS staging_{generation}"
                            ))?;
                        }
                        0
                    }
                    Work::Barrier => 0,
                };
                savepoint.commit()?;
                Ok(done)
            });
            if result.is_ok() {
                match &request.work {
                    Work::Detections(detections) => {
                        changes.staged_rows += detections.len();
                        changes
                            .staged
                            .extend(detections.iter().map(StoredSighting::from_detection));
                    }
                    Work::DeleteBefore(keep) => {
                        changes.keep.push(keep.clone());
                    }
                    Work::Register {
                        add,
                        remove,
                        drop_staging,
                    } => {
                        changes.add.extend(add.iter().cloned());
                        changes.remove.extend(remove.iter().copied());
                        changes
                            .dropped_generations
                            .extend(drop_staging.iter().copied());
                    }
                    Work::Audit(_) | Work::Versioned(_) | Work::Holds(_) | Work::Barrier => {}
                }
            }
            results.push(result.map_err(|error| error.to_string()));
        }
        if let Err(error) = transaction.commit() {
            return all_failed(error);
        }
        self.staged += changes.staged_rows;
        self.publish(changes, &mut results);
        results
    }

    /// Make a committed group visible to readers.
    fn publish(&mut self, changes: Changes, results: &mut [Result<usize, String>]) {
        let mut opened = Vec::with_capacity(changes.add.len());
        for part in changes.add {
            match PartHandle::open(&self.parts_dir, part.clone()) {
                Ok(handle) => opened.push(handle),
                Err(error) => {
                    // Listed but unreadable: say so to whoever registered it.
                    tracing::warn!(%error, part = part.id, "a new part cannot be opened");
                    for result in results.iter_mut() {
                        if result.is_ok() {
                            *result = Err(format!("part {} cannot be opened: {error}", part.id));
                        }
                    }
                }
            }
        }
        let mut unlinked = Vec::new();
        {
            let mut shared = write_lock(&self.shared);
            for keep in &changes.keep {
                for hot in shared.hot.values_mut() {
                    hot.retain(|s| keep.keeps(s.captured_at_ms, &s.event_id.0));
                }
            }
            for generation in &changes.dropped_generations {
                shared.hot.remove(generation);
            }
            let active = shared.hot.entry(self.active).or_default();
            for sighting in changes.staged {
                active.insert(sighting);
            }
            if !changes.remove.is_empty() {
                shared.parts.retain(|handle| {
                    let gone = changes.remove.contains(&handle.part.id);
                    if gone {
                        unlinked.push(handle.part.id);
                    }
                    !gone
                });
            }
            shared.parts.extend(opened);
            let staged: usize = shared.hot.values().map(Hot::len).sum();
            self.counters
                .staged_rows
                .store(staged as i64, Ordering::Relaxed);
        }
        // No reader holds a removed part any more (reads run under the read lock).
        for id in unlinked {
            let _ = std::fs::remove_file(part_path(&self.parts_dir, id));
        }
    }
}

/// Append detections to staging table `generation` (in arrival order: only its last pages
/// change). Returns how many rows were written.
fn stage(
    connection: &Connection,
    generation: i64,
    detections: &[Detection],
) -> rusqlite::Result<usize> {
    let mut detection_row = connection.prepare_cached(&format!(
        "INSERT INTO staging_{generation} ({DETECTION_COLUMNS}) VALUES \
         (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
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
            d.attributes.plate_color,
            d.attributes.brand,
            d.attributes.direction,
            f64::from(d.attributes.speed_kmh),
            d.plate_char_confidence,
        ])?;
        if let Some(jpeg) = &d.thumbnail_jpeg {
            snapshot_row.execute(params![
                d.event_id.as_bytes().as_slice(),
                d.captured_at_ms,
                jpeg
            ])?;
        }
    }
    Ok(detections.len())
}

/// A whole new version of a row of a `(key, version, body)` table.
pub(super) struct Versioned {
    /// `cases` or `watchlist` (only ours: formatted into SQL).
    pub(super) table: &'static str,
    /// Its key column.
    pub(super) key_column: &'static str,
    pub(super) key: String,
    pub(super) version: u64,
    /// The record as JSON.
    pub(super) body: String,
}

fn upsert_versioned(connection: &Connection, row: &Versioned) -> rusqlite::Result<usize> {
    let (table, key) = (row.table, row.key_column);
    connection.execute(
        &format!(
            "INSERT INTO {table} ({key}, version, body) VALUES (?1, ?2, ?3) \
             ON CONFLICT ({key}) DO UPDATE SET version = excluded.version, body = excluded.body \
             WHERE excluded.version > {table}.version"
        ),
        params![row.key, row.version as i64, row.body],
    )
}

fn insert_holds(connection: &Connection, holds: &[Hold]) -> rusqlite::Result<usize> {
    let mut statement = connection.prepare_cached(
        "INSERT OR IGNORE INTO legal_holds (case_id, event_id, placed_by, placed_at_ms) \
         VALUES (?, ?, ?, ?)",
    )?;
    let mut inserted = 0;
    for hold in holds {
        let event_id = camtrail_model::EventId::parse_hex(&hold.event_id).ok_or_else(|| {
            rusqlite::Error::ToSqlConversionFailure("a held event id is not 32 hex digits".into())
        })?;
        inserted += statement.execute(params![
            hold.case_id,
            event_id.0.as_slice(),
            hold.placed_by,
            hold.placed_at_ms
        ])?;
    }
    Ok(inserted)
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
