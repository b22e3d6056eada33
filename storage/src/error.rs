//! What a backend reports when it cannot do what was asked.

use camtrail_model::ErrorCode;

/// A storage or transport operation failed. Messages name the backend and the cause, never
/// personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StorageError {
    /// The backend could not be reached or failed the operation; trying again later may
    /// succeed. Nothing of a failed write may be considered durable.
    #[error("{backend} unavailable: {message}")]
    Unavailable {
        /// `kafka`, `clickhouse`, `sqlite`.
        backend: &'static str,
        /// What failed.
        message: String,
    },
    /// A bounded queue of the backend stayed full: the node is saturated.
    #[error("{backend} write queue full for {waited_ms} ms")]
    Overloaded {
        /// `kafka`, `sqlite`.
        backend: &'static str,
        /// How long the write waited for room.
        waited_ms: u64,
    },
    /// The operation is not possible on this store (read-only, owned by another process,
    /// stored data this build cannot read); trying again will not help.
    #[error("{backend}: {message}")]
    Refused {
        /// `clickhouse`, `sqlite`.
        backend: &'static str,
        /// Why.
        message: String,
    },
    /// A versioned write lost to another one (two changes of one record at once): the
    /// stored record is the other change; read it again and retry.
    #[error("{backend}: {message}")]
    Conflict {
        /// `clickhouse`, `sqlite`.
        backend: &'static str,
        /// What conflicted.
        message: String,
    },
}

impl StorageError {
    /// [`StorageError::Unavailable`] with `cause` as the message.
    pub fn unavailable(backend: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Unavailable {
            backend,
            message: cause.to_string(),
        }
    }

    /// [`StorageError::Refused`] with `cause` as the message.
    pub fn refused(backend: &'static str, cause: impl std::fmt::Display) -> Self {
        Self::Refused {
            backend,
            message: cause.to_string(),
        }
    }

    /// The error code a transport answers with when this error ends a request.
    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Unavailable { .. } => ErrorCode::StorageUnavailable,
            Self::Overloaded { .. } => ErrorCode::Overloaded,
            Self::Refused { .. } => ErrorCode::Internal,
            Self::Conflict { .. } => ErrorCode::ChangeConflict,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_their_backend_and_map_to_codes() {
        let down = StorageError::unavailable("kafka", "broker down");
        assert_eq!(down.to_string(), "kafka unavailable: broker down");
        assert_eq!(down.code(), ErrorCode::StorageUnavailable);
        let full = StorageError::Overloaded {
            backend: "sqlite",
            waited_ms: 2_000,
        };
        assert_eq!(full.code(), ErrorCode::Overloaded);
        assert_eq!(
            StorageError::refused("sqlite", "read-only").code(),
            ErrorCode::Internal
        );
    }
}
