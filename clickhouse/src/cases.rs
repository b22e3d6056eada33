//! The case registry and legal holds in ClickHouse (`migrations/009_cases.sql`): one
//! `ReplacingMergeTree(version)` row per case version (the case as JSON), one row per hold.
//! The query node inserts directly: a case changes a few times a day, far from the insert
//! rate that makes parts pile up (which is why audit records go through Kafka instead).

use camtrail_model::EventId;
use camtrail_model::case::{Case, Hold};
use camtrail_storage::{CaseStore, StorageError};
use serde::{Deserialize, Serialize};

use crate::{ClickhouseStore, StoreError};

#[derive(Debug, clickhouse::Row, Serialize)]
struct CaseRow {
    case_id: String,
    version: u64,
    updated_at_ms: i64,
    body: String,
}

#[derive(Debug, clickhouse::Row, Serialize, Deserialize)]
struct HoldRow {
    case_id: String,
    event_id: [u8; 16],
    placed_by: String,
    placed_at_ms: i64,
}

fn parse_case(body: &str) -> Result<Case, StorageError> {
    serde_json::from_str(body).map_err(|e| StorageError::Refused {
        backend: "clickhouse",
        message: format!("a stored case cannot be read: {e}"),
    })
}

fn failed(action: &str, error: clickhouse::error::Error) -> StorageError {
    StoreError::clickhouse(action, error).into()
}

impl CaseStore for ClickhouseStore {
    async fn case(&self, case_id: &str) -> Result<Option<Case>, StorageError> {
        let bodies: Vec<String> = self
            .client()
            .query("SELECT body FROM cases WHERE case_id = ? ORDER BY version DESC LIMIT 1")
            .bind(case_id)
            .fetch_all()
            .await
            .map_err(|e| failed("reading a case", e))?;
        bodies.first().map(|body| parse_case(body)).transpose()
    }

    async fn cases(&self) -> Result<Vec<Case>, StorageError> {
        let bodies: Vec<String> = self
            .client()
            .query("SELECT body FROM cases ORDER BY case_id, version DESC LIMIT 1 BY case_id")
            .fetch_all()
            .await
            .map_err(|e| failed("listing cases", e))?;
        bodies.iter().map(|body| parse_case(body)).collect()
    }

    async fn put_case(&self, case: &Case) -> Result<(), StorageError> {
        let row = CaseRow {
            case_id: case.case_id.clone(),
            version: case.version,
            updated_at_ms: case.updated_at_ms,
            body: serde_json::to_string(case).map_err(|e| StorageError::Refused {
                backend: "clickhouse",
                message: e.to_string(),
            })?,
        };
        let mut insert = self
            .client()
            .insert::<CaseRow>("cases")
            .await
            .map_err(|e| failed("storing a case", e))?;
        insert
            .write(&row)
            .await
            .map_err(|e| failed("storing a case", e))?;
        insert.end().await.map_err(|e| failed("storing a case", e))
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
