//! Watchlist entries and their hits, beside the detections (SQLite tables `watchlist`,
//! `watchlist_hits`; ClickHouse `watchlist_entries`, `watchlist_hits`), like the case
//! registry: each change a whole new version, compare-and-set, the highest kept.

use std::future::Future;

use camtrail_model::watchlist::{Entry, HitRecord};

use crate::{CaseStore, StorageError};

/// Watchlist entries.
pub trait WatchlistStore: Send + Sync + 'static {
    /// The latest version of `entry_id`.
    fn entry(
        &self,
        entry_id: &str,
    ) -> impl Future<Output = Result<Option<Entry>, StorageError>> + Send;

    /// The latest version of every entry, ordered by id.
    fn entries(&self) -> impl Future<Output = Result<Vec<Entry>, StorageError>> + Send;

    /// Store a new version of an entry, newer than every stored one (else
    /// [`StorageError::Conflict`], as for cases); durable when it returns `Ok`.
    fn put_entry(&self, entry: &Entry) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// The latest version of hit `hit_id`.
    fn hit(
        &self,
        hit_id: &str,
    ) -> impl Future<Output = Result<Option<HitRecord>, StorageError>> + Send;

    /// The latest version of every hit of `entry_id`, ordered by hit id.
    fn hits(
        &self,
        entry_id: &str,
    ) -> impl Future<Output = Result<Vec<HitRecord>, StorageError>> + Send;

    /// Store a new version of a hit, newer than every stored one (else
    /// [`StorageError::Conflict`]: a hit delivered twice is stored once).
    fn put_hit(&self, hit: &HitRecord) -> impl Future<Output = Result<(), StorageError>> + Send;

    /// Store each of `hits` whose id is not stored yet, as it is (a re-delivered read's
    /// hit is stored once, a reviewed one left alone); returns how many were new. Durable
    /// when it returns `Ok`. One compare-and-set per hit unless a backend does better.
    fn put_new_hits(
        &self,
        hits: &[HitRecord],
    ) -> impl Future<Output = Result<usize, StorageError>> + Send {
        async move {
            let mut new = 0;
            for hit in hits {
                match self.put_hit(hit).await {
                    Ok(()) => new += 1,
                    Err(StorageError::Conflict { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
            Ok(new)
        }
    }
}

/// The entries that may match now: every stored entry except those of a closed case (the
/// matcher checks each one's state and window itself).
pub async fn entries_in_force<S: CaseStore + WatchlistStore>(
    store: &S,
) -> Result<Vec<Entry>, StorageError> {
    let closed: std::collections::BTreeSet<String> = store
        .cases()
        .await?
        .into_iter()
        .filter(|c| c.status == camtrail_model::case::CaseStatus::Closed)
        .map(|c| c.case_id)
        .collect();
    Ok(store
        .entries()
        .await?
        .into_iter()
        .filter(|e| !closed.contains(&e.case_id))
        .collect())
}
