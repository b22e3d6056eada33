//! The maintenance thread: turns sealed staging tables into part files, merges parts when
//! there are too many, and applies retention to parts. It never holds the main database's
//! write lock while it works: each change reaches readers through one short `Register`
//! request to the writer (manifest rows, `DROP TABLE staging_<n>`), committed like any
//! other write.

use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};

use tokio::sync::{mpsc, oneshot};

use super::parts::{Keep, Part, Source, build_part};
use super::writer::{Request, Work};
use super::{Counters, Shared, Tuning, read_lock};

/// Work for the maintenance thread.
pub(super) enum Job {
    /// Turn sealed staging table `staging_<generation>` into a part.
    Flush {
        /// Its generation.
        generation: i64,
    },
    /// Retention: parts wholly before the cutoff go, straddling ones are rewritten without
    /// the older rows; then the writer deletes from staging and snapshots.
    Retention {
        keep: Keep,
        reply: oneshot::Sender<Result<u64, String>>,
    },
    /// Answered once every job queued before it is done.
    Idle(oneshot::Sender<()>),
}

pub(super) struct Builder {
    pub(super) database: PathBuf,
    pub(super) dir: PathBuf,
    pub(super) shared: Arc<RwLock<Shared>>,
    pub(super) writer: mpsc::WeakSender<Request>,
    pub(super) counters: Arc<Counters>,
    pub(super) tuning: Tuning,
    pub(super) next_id: Arc<AtomicI64>,
}

impl Builder {
    /// Run jobs until the writer (the last holder of the job sender) stops.
    pub(super) fn run(self, jobs: std::sync::mpsc::Receiver<Job>) {
        while let Ok(job) = jobs.recv() {
            match job {
                Job::Flush { generation } => {
                    let started = std::time::Instant::now();
                    match self.flush(generation) {
                        Ok(rows) => tracing::info!(
                            generation,
                            rows,
                            ms = started.elapsed().as_millis() as u64,
                            "staging flushed into a part"
                        ),
                        Err(error) => {
                            tracing::warn!(%error, generation, "flushing staging failed; it stays \
                                staged (readable) and is flushed again at the next start");
                        }
                    }
                    self.counters.flush_pending.store(false, Ordering::Release);
                    self.merge_while_needed();
                }
                Job::Retention { keep, reply } => {
                    let _ = reply.send(self.retention(&keep));
                }
                Job::Idle(reply) => {
                    let _ = reply.send(());
                }
            }
        }
        tracing::debug!("SQLite maintenance stopped");
    }

    /// Hand `work` to the writer and wait (blocking) for its commit.
    fn submit(&self, work: Work) -> Result<usize, String> {
        let writer = self.writer.upgrade().ok_or("the store is closed")?;
        let (reply, answer) = oneshot::channel();
        writer
            .blocking_send(Request { work, reply })
            .map_err(|_| "the SQLite writer stopped".to_string())?;
        answer
            .blocking_recv()
            .map_err(|_| "the SQLite writer stopped".to_string())?
    }

    /// A manifest change: list `add`, unlist `remove`, drop a flushed staging table.
    fn register(
        &self,
        add: Option<Part>,
        remove: Vec<i64>,
        drop_staging: Option<i64>,
    ) -> Result<usize, String> {
        self.submit(Work::Register {
            add,
            remove,
            drop_staging,
        })
    }

    fn new_id(&self) -> i64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    fn flush(&self, generation: i64) -> Result<i64, String> {
        let source = Source::Staging {
            database: self.database.clone(),
            table: format!("staging_{generation}"),
        };
        let part =
            build_part(&self.dir, self.new_id(), &source, None).map_err(|e| e.to_string())?;
        let rows = part.as_ref().map_or(0, |p| p.rows);
        self.register(part, Vec::new(), Some(generation))?;
        self.counters.flushes.fetch_add(1, Ordering::Relaxed);
        Ok(rows)
    }

    /// Merge the `merge_fan_in` smallest parts while there are more than `max_parts`.
    fn merge_while_needed(&self) {
        loop {
            let mut parts: Vec<(Part, PathBuf)> = read_lock(&self.shared)
                .parts
                .iter()
                .map(|h| (h.part.clone(), h.path.clone()))
                .collect();
            if parts.len() <= self.tuning.max_parts {
                return;
            }
            parts.sort_by_key(|(p, _)| p.rows);
            parts.truncate(self.tuning.merge_fan_in.max(2));
            let started = std::time::Instant::now();
            let source = Source::Parts(parts.iter().map(|(_, path)| path.clone()).collect());
            let merged = build_part(&self.dir, self.new_id(), &source, None)
                .map_err(|e| e.to_string())
                .and_then(|part| {
                    let rows = part.as_ref().map_or(0, |p| p.rows);
                    self.register(part, parts.iter().map(|(p, _)| p.id).collect(), None)
                        .map(|_| rows)
                });
            match merged {
                Ok(rows) => {
                    self.counters.merges.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(
                        parts = parts.len(),
                        rows,
                        ms = started.elapsed().as_millis() as u64,
                        "parts merged"
                    );
                }
                Err(error) => {
                    tracing::warn!(%error, "merging parts failed; retried after the next flush");
                    return;
                }
            }
        }
    }

    fn retention(&self, keep: &Keep) -> Result<u64, String> {
        let cutoff_ms = keep.from_ms;
        // With holds in force, a part with old rows is rewritten only if some of them go
        // (counted on a connection of its own, outside the lock readers and the writer
        // share: cheap next to a rewrite; only this thread deletes parts).
        let parts: Vec<(Part, PathBuf)> = read_lock(&self.shared)
            .parts
            .iter()
            .filter(|h| h.part.min_ms < cutoff_ms)
            .map(|h| (h.part.clone(), h.path.clone()))
            .collect();
        let parts: Vec<(Part, PathBuf)> = parts
            .into_iter()
            .filter(|(_, path)| {
                keep.held.is_empty()
                    || super::parts::count_removed_in(path, keep).map_or(true, |n| n > 0)
            })
            .collect();
        let mut removed = 0u64;
        for (part, path) in parts {
            if part.max_ms < cutoff_ms && keep.held.is_empty() {
                self.register(None, vec![part.id], None)?;
                removed += part.rows as u64;
            } else if part.min_ms < cutoff_ms {
                let kept = build_part(
                    &self.dir,
                    self.new_id(),
                    &Source::Parts(vec![path]),
                    Some(keep),
                )
                .map_err(|e| e.to_string())?;
                let kept_rows = kept.as_ref().map_or(0, |p| p.rows);
                if let Some(copy) = kept.as_ref().filter(|_| kept_rows == part.rows) {
                    // Nothing to remove (only held or newer rows): keep the part as it is.
                    let _ = std::fs::remove_file(super::parts::part_path(&self.dir, copy.id));
                    continue;
                }
                self.register(kept, vec![part.id], None)?;
                removed += (part.rows - kept_rows).max(0) as u64;
            }
        }
        let staged = self.submit(Work::DeleteBefore(keep.clone()))?;
        Ok(removed + staged as u64)
    }
}
