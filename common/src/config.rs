//! Configuration errors: which setting is wrong and why.

/// A configuration value cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

impl ConfigError {
    /// An error about one setting, e.g. `ConfigError::new("kafka.brokers must not be empty")`.
    pub fn new(message: impl Into<String>) -> Self {
        Self(message.into())
    }
}
