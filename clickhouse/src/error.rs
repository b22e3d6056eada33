//! Errors of the ClickHouse store's administration (configuration, migrations, retention,
//! the camera table); reads and the seams report [`StorageError`].

use camtrail_storage::StorageError;

/// What went wrong talking to ClickHouse.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Invalid configuration.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A statement failed on the server or the server could not be reached.
    #[error("clickhouse {action}: {source}")]
    Clickhouse {
        /// What we were doing.
        action: String,
        /// Client error.
        source: clickhouse::error::Error,
    },
    /// The database's recorded migrations disagree with this build's.
    #[error("migration {version} ({name}): {message}")]
    Migration {
        /// Migration number.
        version: u32,
        /// Migration file name.
        name: &'static str,
        /// What is wrong.
        message: String,
    },
}

impl StoreError {
    /// Wrap a client error with what we were doing.
    pub fn clickhouse(action: impl Into<String>, source: clickhouse::error::Error) -> Self {
        Self::Clickhouse {
            action: action.into(),
            source,
        }
    }
}

impl From<StoreError> for StorageError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Clickhouse { .. } => StorageError::unavailable("clickhouse", error),
            other => StorageError::refused("clickhouse", other),
        }
    }
}
