//! The case registry and legal holds in the embedded database: the latest version of each
//! case as one JSON row, holds as `(case_id, event_id)` rows; both written through the
//! writer's group commit like everything else.

use std::time::Duration;

use camtrail_model::EventId;
use camtrail_model::case::{Case, Hold};
use camtrail_storage::{CaseStore, StorageError};
use rusqlite::{OptionalExtension, params};

use super::SqliteStore;
use super::writer::Work;

const WRITE_WAIT: Duration = Duration::from_secs(10);

fn parse_case(body: &str) -> rusqlite::Result<Case> {
    serde_json::from_str(body).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e))
    })
}

impl CaseStore for SqliteStore {
    async fn case(&self, case_id: &str) -> Result<Option<Case>, StorageError> {
        let case_id = case_id.to_string();
        self.read(move |connection, _| {
            let body: Option<String> = connection
                .query_row(
                    "SELECT body FROM cases WHERE case_id = ?",
                    params![case_id],
                    |row| row.get(0),
                )
                .optional()?;
            body.as_deref().map(parse_case).transpose()
        })
        .await
    }

    async fn cases(&self) -> Result<Vec<Case>, StorageError> {
        self.read(|connection, _| {
            let mut statement = connection.prepare("SELECT body FROM cases ORDER BY case_id")?;
            let bodies = statement.query_map([], |row| row.get::<_, String>(0))?;
            bodies.map(|body| parse_case(&body?)).collect()
        })
        .await
    }

    async fn put_case(&self, case: &Case) -> Result<(), StorageError> {
        self.submit(Work::Case(Box::new(case.clone())), WRITE_WAIT)
            .await
            .map(drop)
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
