//! The case registry, legal holds and watchlist entries in the embedded database: the
//! latest version of each case and entry as one JSON row (`cases`, `watchlist`), holds as
//! `(case_id, event_id)` rows; all written through the writer's group commit like
//! everything else.

use std::time::Duration;

use camtrail_model::EventId;
use camtrail_model::case::{Case, Hold};
use camtrail_model::watchlist::{Entry, HitRecord};
use camtrail_storage::{CaseStore, StorageError, WatchlistStore};
use rusqlite::{OptionalExtension, params};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::SqliteStore;
use super::writer::{Versioned, Work};

const WRITE_WAIT: Duration = Duration::from_secs(10);

fn parse<T: DeserializeOwned>(body: &str) -> rusqlite::Result<T> {
    serde_json::from_str(body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl SqliteStore {
    /// The record `key` of a `(key, version, body)` table.
    async fn versioned<T: DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
        key_column: &'static str,
        key: &str,
    ) -> Result<Option<T>, StorageError> {
        let key = key.to_string();
        self.read(move |connection, _| {
            let body: Option<String> = connection
                .query_row(
                    &format!("SELECT body FROM {table} WHERE {key_column} = ?"),
                    params![key],
                    |row| row.get(0),
                )
                .optional()?;
            body.as_deref().map(parse).transpose()
        })
        .await
    }

    /// Every record of a `(key, version, body)` table, by key.
    async fn all_versioned<T: DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
        key_column: &'static str,
    ) -> Result<Vec<T>, StorageError> {
        self.read(move |connection, _| {
            let mut statement =
                connection.prepare(&format!("SELECT body FROM {table} ORDER BY {key_column}"))?;
            let bodies = statement.query_map([], |row| row.get::<_, String>(0))?;
            bodies.map(|body| parse(&body?)).collect()
        })
        .await
    }

    /// The records of a `(key, version, body)` table whose key starts with `prefix`.
    async fn versioned_with_prefix<T: DeserializeOwned + Send + 'static>(
        &self,
        table: &'static str,
        key_column: &'static str,
        prefix: &str,
    ) -> Result<Vec<T>, StorageError> {
        let (low, high) = (
            prefix.to_string(),
            camtrail_storage::sql::prefix_end(prefix),
        );
        self.read(move |connection, _| {
            let mut statement = connection.prepare(&format!(
                "SELECT body FROM {table} WHERE {key_column} >= ?1 AND {key_column} < ?2 \
                 ORDER BY {key_column}"
            ))?;
            let bodies = statement.query_map(params![low, high], |row| row.get::<_, String>(0))?;
            bodies.map(|body| parse(&body?)).collect()
        })
        .await
    }

    /// Store a new version of a record of a `(key, version, body)` table.
    async fn put_versioned(
        &self,
        table: &'static str,
        key_column: &'static str,
        key: &str,
        version: u64,
        record: &impl Serialize,
    ) -> Result<(), StorageError> {
        let body = serde_json::to_string(record).map_err(|e| StorageError::Refused {
            backend: super::BACKEND,
            message: e.to_string(),
        })?;
        let row = Versioned {
            table,
            key_column,
            key: key.to_string(),
            version,
            body,
        };
        let changed = self
            .submit(Work::Versioned(Box::new(row)), WRITE_WAIT)
            .await?;
        if changed == 0 {
            return Err(StorageError::Conflict {
                backend: super::BACKEND,
                message: format!("{table} {key}: version {version} is not the newest"),
            });
        }
        Ok(())
    }
}

impl CaseStore for SqliteStore {
    async fn case(&self, case_id: &str) -> Result<Option<Case>, StorageError> {
        self.versioned("cases", "case_id", case_id).await
    }

    async fn cases(&self) -> Result<Vec<Case>, StorageError> {
        self.all_versioned("cases", "case_id").await
    }

    async fn put_case(&self, case: &Case) -> Result<(), StorageError> {
        self.put_versioned("cases", "case_id", &case.case_id, case.version, case)
            .await
    }

    async fn holds(&self) -> Result<Vec<Hold>, StorageError> {
        self.read(|connection, _| {
            let mut statement = connection.prepare(
                "SELECT case_id, event_id, placed_by, placed_at_ms FROM legal_holds \
                 ORDER BY case_id, event_id",
            )?;
            let rows = statement.query_map([], |row| {
                let id: Vec<u8> = row.get(1)?;
                let event_id = <[u8; 16]>::try_from(id.as_slice()).map_err(|e| {
                    rusqlite::Error::FromSqlConversionFailure(
                        1,
                        rusqlite::types::Type::Blob,
                        Box::new(e),
                    )
                })?;
                Ok(Hold {
                    case_id: row.get(0)?,
                    event_id: EventId(event_id).to_hex(),
                    placed_by: row.get(2)?,
                    placed_at_ms: row.get(3)?,
                })
            })?;
            rows.collect()
        })
        .await
    }

    async fn put_holds(&self, holds: &[Hold]) -> Result<(), StorageError> {
        if holds
            .iter()
            .any(|h| EventId::parse_hex(&h.event_id).is_none())
        {
            return Err(StorageError::Refused {
                backend: super::BACKEND,
                message: "a held event id is not 32 hex digits".into(),
            });
        }
        self.submit(Work::Holds(holds.to_vec()), WRITE_WAIT)
            .await
            .map(drop)
    }
}

impl WatchlistStore for SqliteStore {
    async fn entry(&self, entry_id: &str) -> Result<Option<Entry>, StorageError> {
        self.versioned("watchlist", "entry_id", entry_id).await
    }

    async fn entries(&self) -> Result<Vec<Entry>, StorageError> {
        self.all_versioned("watchlist", "entry_id").await
    }

    async fn put_entry(&self, entry: &Entry) -> Result<(), StorageError> {
        self.put_versioned(
            "watchlist",
            "entry_id",
            &entry.entry_id,
            entry.version,
            entry,
        )
        .await
    }

    async fn hit(&self, hit_id: &str) -> Result<Option<HitRecord>, StorageError> {
        self.versioned("watchlist_hits", "hit_id", hit_id).await
    }

    async fn hits(&self, entry_id: &str) -> Result<Vec<HitRecord>, StorageError> {
        // Hit ids start with the entry id and a slash: a key range, not a scan.
        let prefix = format!("{entry_id}/");
        let hits: Vec<HitRecord> = self
            .versioned_with_prefix("watchlist_hits", "hit_id", &prefix)
            .await?;
        Ok(hits)
    }

    async fn put_hit(&self, hit: &HitRecord) -> Result<(), StorageError> {
        self.put_versioned("watchlist_hits", "hit_id", &hit.hit_id, hit.version, hit)
            .await
    }
}
