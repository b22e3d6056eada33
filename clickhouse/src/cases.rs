//! The case registry, legal holds and watchlist entries in ClickHouse
//! (`migrations/009_cases.sql`, `010_watchlist.sql`): one `ReplacingMergeTree(version)` row
//! per case or entry version (as JSON), one row per hold.
//! The query node inserts directly: a case changes a few times a day, far from the insert
//! rate that makes parts pile up (which is why audit records go through Kafka instead).

use camtrail_model::EventId;
use camtrail_model::case::{Case, Hold};
use camtrail_model::watchlist::{Entry, HitRecord};
use camtrail_storage::{CaseStore, StorageError, WatchlistStore};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{ClickhouseStore, StoreError};

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct HoldRow {
    case_id: String,
    event_id: [u8; 16],
    placed_by: String,
    placed_at_ms: i64,
}

/// One version of a hit as `watchlist_hits` holds it.
#[derive(Debug, clickhouse::Row, Serialize)]
struct HitRow<'a> {
    hit_id: &'a str,
    version: u64,
    updated_at_ms: i64,
    body: String,
}

fn parse<T: DeserializeOwned>(body: &str) -> Result<T, StorageError> {
    serde_json::from_str(body).map_err(|e| StorageError::Refused {
        backend: "clickhouse",
        message: format!("a stored record cannot be read: {e}"),
    })
}

fn failed(action: &str, error: clickhouse::error::Error) -> StorageError {
    StoreError::clickhouse(action, error).into()
}

/// A `(key, version, updated_at_ms, body)` table: `cases` or `watchlist_entries` (only ours
/// are formatted into SQL; values are bound).
struct Versioned {
    table: &'static str,
    key: &'static str,
}

/// The stored `version` column: the record's version times two, plus one for a version
/// that closes a case or revokes an entry. Of two writers of one version at once (both told
/// of the conflict), the closing one is read — and is the one `ReplacingMergeTree(version)`
/// keeps when it merges: a lost close never reopens a case.
fn stored_version(version: u64, closes: bool) -> u64 {
    version.saturating_mul(2) + u64::from(closes)
}

const CASES: Versioned = Versioned {
    table: "cases",
    key: "case_id",
};
const ENTRIES: Versioned = Versioned {
    table: "watchlist_entries",
    key: "entry_id",
};
const HITS: Versioned = Versioned {
    table: "watchlist_hits",
    key: "hit_id",
};

impl ClickhouseStore {
    async fn versioned<T: DeserializeOwned>(
        &self,
        t: &Versioned,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        let bodies: Vec<String> = self
            .client()
            .query(&format!(
                "SELECT body FROM {} WHERE {} = ? ORDER BY version DESC LIMIT 1",
                t.table, t.key
            ))
            .bind(key)
            .fetch_all()
            .await
            .map_err(|e| failed(&format!("reading {}", t.table), e))?;
        bodies.first().map(|body| parse(body)).transpose()
    }

    async fn all_versioned<T: DeserializeOwned>(
        &self,
        t: &Versioned,
    ) -> Result<Vec<T>, StorageError> {
        self.versioned_with_prefix(t, "").await
    }

    /// The records whose key starts with `prefix` (a key range).
    async fn versioned_with_prefix<T: DeserializeOwned>(
        &self,
        t: &Versioned,
        prefix: &str,
    ) -> Result<Vec<T>, StorageError> {
        let bodies: Vec<String> = self
            .client()
            .query(&format!(
                "SELECT body FROM {table} WHERE startsWith({key}, ?) \
                 ORDER BY {key}, version DESC LIMIT 1 BY {key}",
                table = t.table,
                key = t.key
            ))
            .bind(prefix)
            .fetch_all()
            .await
            .map_err(|e| failed(&format!("listing {}", t.table), e))?;
        bodies.iter().map(|body| parse(body)).collect()
    }

    async fn put_versioned(
        &self,
        t: &Versioned,
        key: &str,
        version: u64,
        closes: bool,
        updated_at_ms: i64,
        record: &impl Serialize,
    ) -> Result<(), StorageError> {
        let stored = stored_version(version, closes);
        let floor = stored_version(version, false);
        let body = serde_json::to_string(record).map_err(|e| StorageError::Refused {
            backend: "clickhouse",
            message: e.to_string(),
        })?;
        let conflict = || StorageError::Conflict {
            backend: "clickhouse",
            message: format!("{} {key}: version {version} is not the newest", t.table),
        };
        let count = |sql: String| {
            let client = self.client().clone();
            async move {
                client
                    .query(&sql)
                    .bind(key)
                    .bind(floor)
                    .fetch_one::<u64>()
                    .await
                    .map_err(|e| failed(&format!("checking {}", t.table), e))
            }
        };
        // Compare, then set, then look whether another writer set the same version at once
        // (ClickHouse has no conditional insert): both then hear of the conflict.
        let newer = format!(
            "SELECT count() FROM {} WHERE {} = ? AND version >= ?",
            t.table, t.key
        );
        if count(newer).await? > 0 {
            return Err(conflict());
        }
        self.client()
            .query(&format!(
                "INSERT INTO {} ({}, version, updated_at_ms, body) VALUES (?, ?, ?, ?)",
                t.table, t.key
            ))
            .bind(key)
            .bind(stored)
            .bind(updated_at_ms)
            .bind(body)
            .execute()
            .await
            .map_err(|e| failed(&format!("storing into {}", t.table), e))?;
        let same = format!(
            "SELECT count() FROM {} WHERE {} = ? AND intDiv(version, 2) = intDiv(?, 2)",
            t.table, t.key
        );
        if count(same).await? > 1 {
            return Err(conflict());
        }
        Ok(())
    }
}

impl CaseStore for ClickhouseStore {
    async fn case(&self, case_id: &str) -> Result<Option<Case>, StorageError> {
        self.versioned(&CASES, case_id).await
    }

    async fn cases(&self) -> Result<Vec<Case>, StorageError> {
        self.all_versioned(&CASES).await
    }

    async fn put_case(&self, case: &Case) -> Result<(), StorageError> {
        let closes = case.status == camtrail_model::case::CaseStatus::Closed;
        self.put_versioned(
            &CASES,
            &case.case_id,
            case.version,
            closes,
            case.updated_at_ms,
            case,
        )
        .await
    }

    async fn holds(&self) -> Result<Vec<Hold>, StorageError> {
        let rows: Vec<HoldRow> = self
            .client()
            .query(
                "SELECT case_id, event_id, placed_by, placed_at_ms FROM legal_holds \
                 ORDER BY case_id, event_id, placed_at_ms LIMIT 1 BY case_id, event_id",
            )
            .fetch_all()
            .await
            .map_err(|e| failed("listing holds", e))?;
        Ok(rows
            .into_iter()
            .map(|row| Hold {
                case_id: row.case_id,
                event_id: EventId(row.event_id).to_hex(),
                placed_by: row.placed_by,
                placed_at_ms: row.placed_at_ms,
            })
            .collect())
    }

    async fn put_holds(&self, holds: &[Hold]) -> Result<(), StorageError> {
        let mut rows = Vec::with_capacity(holds.len());
        for hold in holds {
            let event_id =
                EventId::parse_hex(&hold.event_id).ok_or_else(|| StorageError::Refused {
                    backend: "clickhouse",
                    message: "a held event id is not 32 hex digits".into(),
                })?;
            rows.push(HoldRow {
                case_id: hold.case_id.clone(),
                event_id: event_id.0,
                placed_by: hold.placed_by.clone(),
                placed_at_ms: hold.placed_at_ms,
            });
        }
        let mut insert = self
            .client()
            .insert::<HoldRow>("legal_holds")
            .await
            .map_err(|e| failed("storing holds", e))?;
        for row in &rows {
            insert
                .write(row)
                .await
                .map_err(|e| failed("storing holds", e))?;
        }
        insert.end().await.map_err(|e| failed("storing holds", e))
    }
}

impl WatchlistStore for ClickhouseStore {
    async fn entry(&self, entry_id: &str) -> Result<Option<Entry>, StorageError> {
        self.versioned(&ENTRIES, entry_id).await
    }

    async fn entries(&self) -> Result<Vec<Entry>, StorageError> {
        self.all_versioned(&ENTRIES).await
    }

    async fn put_entry(&self, entry: &Entry) -> Result<(), StorageError> {
        self.put_versioned(
            &ENTRIES,
            &entry.entry_id,
            entry.version,
            entry.state == camtrail_model::watchlist::EntryState::Revoked,
            entry.updated_at_ms,
            entry,
        )
        .await
    }

    async fn hit(&self, hit_id: &str) -> Result<Option<HitRecord>, StorageError> {
        self.versioned(&HITS, hit_id).await
    }

    async fn hits(&self, entry_id: &str) -> Result<Vec<HitRecord>, StorageError> {
        self.versioned_with_prefix(&HITS, &format!("{entry_id}/"))
            .await
    }

    async fn put_hit(&self, hit: &HitRecord) -> Result<(), StorageError> {
        let at = hit.reviewed_at_ms.unwrap_or(hit.alert.matched_at_ms);
        self.put_versioned(&HITS, &hit.hit_id, hit.version, false, at, hit)
            .await
    }

    /// One lookup of which ids are stored and one insert of the others (the alert role
    /// stores a batch's hits at once). Not compare-and-set: a first version written twice
    /// at once (two role instances during a rebalance) is two identical rows of one version,
    /// read as one and merged into one; a review (a higher version) still wins.
    async fn put_new_hits(&self, hits: &[HitRecord]) -> Result<usize, StorageError> {
        let mut fresh: Vec<&HitRecord> = Vec::with_capacity(hits.len());
        for hit in hits {
            if !fresh.iter().any(|h| h.hit_id == hit.hit_id) {
                fresh.push(hit);
            }
        }
        let mut new = 0;
        // Bounded statements: the id list travels in the query text.
        for chunk in fresh.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|h| h.hit_id.as_str()).collect();
            let stored: Vec<String> = self
                .client()
                .query("SELECT DISTINCT hit_id FROM watchlist_hits WHERE has(?, hit_id)")
                .bind(&ids)
                .fetch_all()
                .await
                .map_err(|e| failed("checking watchlist_hits", e))?;
            let mut rows = Vec::with_capacity(chunk.len());
            for hit in chunk.iter().filter(|h| !stored.contains(&h.hit_id)) {
                rows.push(HitRow {
                    hit_id: &hit.hit_id,
                    version: stored_version(hit.version, false),
                    updated_at_ms: hit.reviewed_at_ms.unwrap_or(hit.alert.matched_at_ms),
                    body: serde_json::to_string(hit).map_err(|e| StorageError::Refused {
                        backend: "clickhouse",
                        message: e.to_string(),
                    })?,
                });
            }
            if rows.is_empty() {
                continue;
            }
            let mut insert = self
                .client()
                .insert::<HitRow<'_>>("watchlist_hits")
                .await
                .map_err(|e| failed("storing hits", e))?;
            for row in &rows {
                insert
                    .write(row)
                    .await
                    .map_err(|e| failed("storing hits", e))?;
            }
            insert.end().await.map_err(|e| failed("storing hits", e))?;
            new += rows.len();
        }
        Ok(new)
    }
}
