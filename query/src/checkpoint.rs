//! The query node's signed audit checkpoints (`camtrail_model::checkpoint`): after every
//! `every_records` audit records, every `every_ms` if anything was written since the last
//! one, and once more at shutdown, the node signs "my chain has `L` records, the last with
//! hash `H`" with its Ed25519 key and appends it, as one JSON line, fsynced, to a file that
//! operators publish or send to an outside witness. `camtrail audit verify --checkpoints`
//! then proves the log still holds every checkpointed record, unchanged.
//!
//! A checkpoint is written only after the record it names is durable (the wrapped
//! [`AuditLog`] returned). A checkpoint that cannot be written does not fail the search
//! (its record is durable and chained): it is logged, counted
//! (`camtrail_query_audit_checkpoint_failures_total`) and retried at the next trigger.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use camtrail_common::ConfigError;
use camtrail_model::audit::{AuditEntry, AuditRecord};
use camtrail_model::checkpoint::CheckpointSigner;
use camtrail_storage::{AuditLog, StorageError};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::registry::Registry;
use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// `[query.audit_checkpoints]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CheckpointConfig {
    /// The signing key (`camtrail audit keygen`), a file only the node's user can read.
    pub key_path: PathBuf,
    /// The file checkpoints are appended to, one JSON line each.
    pub path: PathBuf,
    /// Sign after this many records (default 1,000).
    pub every_records: u64,
    /// And at least this often while records are written, ms (default 10 minutes).
    pub every_ms: u64,
}

impl Default for CheckpointConfig {
    fn default() -> Self {
        Self {
            key_path: PathBuf::from("audit_checkpoint.key"),
            path: PathBuf::from("audit_checkpoints.jsonl"),
            every_records: 1_000,
            every_ms: 600_000,
        }
    }
}

impl CheckpointConfig {
    /// Check the values.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.every_records == 0 || self.every_ms == 0 {
            return Err(ConfigError::new(
                "query.audit_checkpoints: every_records and every_ms must be above 0",
            ));
        }
        Ok(())
    }
}

#[derive(Debug, Default)]
struct State {
    /// The newest durable record: (chain, seq, hash).
    head: Option<(String, u64, String)>,
    /// Length of the newest checkpoint written.
    signed: u64,
    /// Records since that checkpoint.
    since: u64,
}

/// Signs and writes one chain's checkpoints.
#[derive(Debug)]
pub struct Checkpointer {
    signer: CheckpointSigner,
    path: PathBuf,
    every_records: u64,
    every: std::time::Duration,
    state: Mutex<State>,
    written: Counter,
    failures: Counter,
}

impl Checkpointer {
    /// Load the key of `config` and register the counters in `registry`.
    pub fn open(config: &CheckpointConfig, registry: &mut Registry) -> anyhow::Result<Self> {
        config.validate()?;
        let text = std::fs::read_to_string(&config.key_path).with_context(|| {
            format!(
                "reading the audit checkpoint key {}",
                config.key_path.display()
            )
        })?;
        let signer = CheckpointSigner::from_key_text(&text)
            .with_context(|| format!("the audit checkpoint key {}", config.key_path.display()))?;
        let written = Counter::default();
        let failures = Counter::default();
        registry.register(
            "camtrail_query_audit_checkpoints",
            "Signed audit checkpoints written",
            written.clone(),
        );
        registry.register(
            "camtrail_query_audit_checkpoint_failures",
            "Audit checkpoints that could not be written (retried at the next trigger)",
            failures.clone(),
        );
        tracing::info!(key_id = signer.key_id(), path = %config.path.display(),
            every_records = config.every_records, every_ms = config.every_ms,
            "signing audit checkpoints");
        Ok(Self {
            signer,
            path: config.path.clone(),
            every_records: config.every_records,
            every: std::time::Duration::from_millis(config.every_ms),
            state: Mutex::new(State::default()),
            written,
            failures,
        })
    }

    /// How often [`Self::checkpoint_now`] should run.
    pub fn every(&self) -> std::time::Duration {
        self.every
    }

    /// `record` is durable: count it, and sign when `every_records` have been written.
    async fn recorded(&self, record: &AuditRecord) {
        let mut state = self.state.lock().await;
        // Two appends may report in either order once the chain's own lock is released:
        // the head only moves forward.
        if state
            .head
            .as_ref()
            .is_none_or(|(_, seq, _)| record.seq > *seq)
        {
            state.head = Some((record.node_id.clone(), record.seq, record.hash.clone()));
        }
        state.since += 1;
        if state.since >= self.every_records {
            self.write(&mut state).await;
        }
    }

    /// Sign the chain's head if a record was written since the last checkpoint.
    pub async fn checkpoint_now(&self) {
        let mut state = self.state.lock().await;
        self.write(&mut state).await;
    }

    async fn write(&self, state: &mut State) {
        let Some((chain, length, hash)) = state.head.clone() else {
            return;
        };
        if length <= state.signed {
            return;
        }
        let checkpoint = self.signer.sign(&chain, length, &hash, now_ms());
        let path = self.path.clone();
        let written = tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let mut line = serde_json::to_vec(&checkpoint).map_err(std::io::Error::other)?;
            line.push(b'\n');
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)?;
            file.write_all(&line)?;
            file.sync_all()
        })
        .await
        .unwrap_or_else(|join| Err(std::io::Error::other(join)));
        match written {
            Ok(()) => {
                state.signed = length;
                state.since = 0;
                self.written.inc();
                tracing::info!(chain, length, "audit checkpoint signed");
            }
            Err(error) => {
                // Retried after the next every_records (or the timer), not on every record.
                state.since = 0;
                self.failures.inc();
                tracing::error!(%error, path = %self.path.display(),
                    "audit checkpoint not written; retried at the next trigger");
            }
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// An [`AuditLog`] that tells a [`Checkpointer`] about every durable record (or nothing,
/// without one).
pub struct Checkpointed<A> {
    inner: A,
    checkpointer: Option<Arc<Checkpointer>>,
}

impl<A> Checkpointed<A> {
    /// Wrap `inner`.
    pub fn new(inner: A, checkpointer: Option<Arc<Checkpointer>>) -> Self {
        Self {
            inner,
            checkpointer,
        }
    }
}

impl<A: AuditLog> AuditLog for Checkpointed<A> {
    async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StorageError> {
        let record = self.inner.append(entry).await?;
        if let Some(checkpointer) = &self.checkpointer {
            checkpointer.recorded(&record).await;
        }
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use camtrail_model::audit::AuditChain;
    use camtrail_model::checkpoint::{parse_checkpoints, parse_public_keys, verify_checkpoints};

    /// An in-memory chain.
    struct Memory(std::sync::Mutex<(AuditChain, Vec<AuditRecord>)>);

    impl AuditLog for Memory {
        async fn append(&self, entry: AuditEntry) -> Result<AuditRecord, StorageError> {
            let mut guard = self.0.lock().expect("lock");
            let record = guard.0.seal(entry);
            guard.0.commit(&record);
            guard.1.push(record.clone());
            Ok(record)
        }
    }

    /// A checkpointer signing every `n` records with a fresh key, in a temporary directory.
    fn checkpointer_every(
        n: u64,
    ) -> (
        tempfile::TempDir,
        CheckpointSigner,
        CheckpointConfig,
        Checkpointer,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let signer = CheckpointSigner::from_seed([5; 32]);
        let config = CheckpointConfig {
            key_path: dir.path().join("key"),
            path: dir.path().join("checkpoints.jsonl"),
            every_records: n,
            every_ms: 1_000,
        };
        std::fs::write(&config.key_path, signer.key_text()).expect("key");
        let checkpointer = Checkpointer::open(&config, &mut Registry::default()).expect("open");
        (dir, signer, config, checkpointer)
    }

    #[tokio::test]
    async fn signs_every_n_records_and_on_demand_only_when_something_is_new() {
        let (_dir, signer, config, checkpointer) = checkpointer_every(3);
        let checkpointer = Arc::new(checkpointer);
        let memory = Memory(std::sync::Mutex::new((AuditChain::new("q/1"), Vec::new())));
        let log = Checkpointed::new(memory, Some(Arc::clone(&checkpointer)));
        for _ in 0..7 {
            log.append(AuditEntry::default()).await.expect("append");
        }
        checkpointer.checkpoint_now().await;
        checkpointer.checkpoint_now().await; // nothing new: no second line
        let text = std::fs::read_to_string(&config.path).expect("checkpoints");
        let checkpoints = parse_checkpoints(&text).expect("parse");
        let lengths: Vec<u64> = checkpoints.iter().map(|c| c.length).collect();
        assert_eq!(lengths, [3, 6, 7]);
        let records = log.inner.0.lock().expect("lock").1.clone();
        let keys = parse_public_keys(&signer.public_text()).expect("key");
        let report = verify_checkpoints(records, &checkpoints, &keys);
        assert_eq!(report.honoured, 3, "{:?}", report.failures);
    }

    #[tokio::test]
    async fn records_reported_out_of_order_never_move_the_head_back() {
        let (_dir, _signer, config, checkpointer) = checkpointer_every(100);
        let mut chain = AuditChain::new("q/2");
        let records: Vec<AuditRecord> = (0..2)
            .map(|_| {
                let record = chain.seal(AuditEntry::default());
                chain.commit(&record);
                record
            })
            .collect();
        checkpointer.recorded(&records[1]).await;
        checkpointer.recorded(&records[0]).await;
        checkpointer.checkpoint_now().await;
        let text = std::fs::read_to_string(&config.path).expect("checkpoints");
        let checkpoints = parse_checkpoints(&text).expect("parse");
        assert_eq!(checkpoints.len(), 1);
        assert_eq!(checkpoints[0].length, 2);
        assert_eq!(checkpoints[0].head_hash, records[1].hash);
    }

    #[test]
    fn zero_intervals_are_refused() {
        let config = CheckpointConfig {
            every_records: 0,
            ..CheckpointConfig::default()
        };
        assert!(config.validate().is_err());
    }
}
