//! Watchlist entries' storage: the latest version of each entry, beside the detections
//! (SQLite table `watchlist`, ClickHouse `watchlist_entries`), like the case registry: a
//! few changes a day, each a whole new version; the store keeps the highest.

use std::future::Future;

use camtrail_model::watchlist::Entry;

use crate::StorageError;

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
}
