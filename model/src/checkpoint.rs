//! Signed checkpoints of the audit chains: the audit trail anchored outside the system.
//!
//! A hash chain ([`crate::audit`]) shows a record changed, removed or reordered, but not a
//! tail cut off: the records that remain still verify. So a node signs, every so often, a
//! [`Checkpoint`] — "chain `C` had `L` records, the last with hash `H`" — with its Ed25519
//! key, and operators hand the checkpoints to someone who does not trust them (a file
//! another organisation keeps, a webhook). Later [`verify_checkpoints`] proves that the log
//! still holds every record up to each checkpoint, unchanged: record `L` must exist and
//! carry hash `H`, and since each record's hash covers its predecessor's, records `1..=L`
//! are exactly those that were checkpointed. What was written after the newest checkpoint
//! is covered by the next one, so the gap is at most the configured interval.
//!
//! The signature covers a length-prefixed encoding of the checkpoint's fields (like the
//! record hash), under the domain `camtrail.audit.checkpoint.v1`. Keys are 32-byte Ed25519
//! seeds kept as hex text; a checkpoint names its key by [`key_id`] (the first 8 bytes of
//! the SHA-256 of the public key) so a verifier can hold the public keys of every key ever
//! used and rotation needs no re-signing.

use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::audit::AuditRecord;

/// One signed statement about a chain: its length and head hash at `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Checkpoint {
    /// The chain (the writing node's id).
    pub chain: String,
    /// Number of records in the chain (the seq of its newest record).
    pub length: u64,
    /// Hash of record `length`.
    pub head_hash: String,
    /// When the node signed it, unix ms.
    pub at_ms: i64,
    /// [`key_id`] of the signing key.
    pub key_id: String,
    /// Hex Ed25519 signature over [`Checkpoint::signed_bytes`].
    pub signature: String,
}

impl Checkpoint {
    /// What the signature covers: every field but the signature, length-prefixed.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(160);
        let mut field = |bytes: &[u8]| {
            out.extend_from_slice(&(bytes.len() as u64).to_le_bytes());
            out.extend_from_slice(bytes);
        };
        field(b"camtrail.audit.checkpoint.v1");
        field(self.chain.as_bytes());
        field(&self.length.to_le_bytes());
        field(self.head_hash.as_bytes());
        field(&self.at_ms.to_le_bytes());
        field(self.key_id.as_bytes());
        out
    }
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct KeyError(String);

/// The short name of a public key: hex of the first 8 bytes of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// A node's checkpoint signing key.
pub struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for CheckpointSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckpointSigner")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

impl CheckpointSigner {
    /// A signer from a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Self {
        let key = SigningKey::from_bytes(&seed);
        let key_id = key_id(&key.verifying_key());
        Self { key, key_id }
    }

    /// A signer from a key file's text: 64 hex digits (the seed), surrounding blanks and
    /// `#` comment lines ignored.
    pub fn from_key_text(text: &str) -> Result<Self, KeyError> {
        let hex_text = meaningful_lines(text)
            .next()
            .ok_or_else(|| KeyError("the key file holds no key".into()))?;
        let mut seed = [0u8; 32];
        hex::decode_to_slice(hex_text, &mut seed)
            .map_err(|_| KeyError("a private key is 64 hex digits".into()))?;
        Ok(Self::from_seed(seed))
    }

    /// The seed as a key file's text.
    pub fn key_text(&self) -> String {
        format!(
            "# camtrail audit checkpoint key {} (Ed25519 seed; keep secret)\n{}\n",
            self.key_id,
            hex::encode(self.key.to_bytes())
        )
    }

    /// The public key as a public key file's line (`<hex public key>`), with a comment.
    pub fn public_text(&self) -> String {
        format!(
            "# camtrail audit checkpoint public key {}\n{}\n",
            self.key_id,
            hex::encode(self.key.verifying_key().as_bytes())
        )
    }

    /// This key's [`key_id`].
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// Sign "chain `chain` has `length` records, the last with hash `head_hash`".
    pub fn sign(&self, chain: &str, length: u64, head_hash: &str, at_ms: i64) -> Checkpoint {
        let mut checkpoint = Checkpoint {
            chain: chain.to_string(),
            length,
            head_hash: head_hash.to_string(),
            at_ms,
            key_id: self.key_id.clone(),
            signature: String::new(),
        };
        let signature = self.key.sign(&checkpoint.signed_bytes());
        checkpoint.signature = hex::encode(signature.to_bytes());
        checkpoint
    }
}

fn meaningful_lines(text: &str) -> impl Iterator<Item = &str> {
    text.lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
}

/// Public keys from files' text: one hex key per line, `#` comments ignored.
pub fn parse_public_keys(text: &str) -> Result<Vec<VerifyingKey>, KeyError> {
    meaningful_lines(text)
        .map(|line| {
            let mut bytes = [0u8; 32];
            hex::decode_to_slice(line, &mut bytes)
                .map_err(|_| KeyError(format!("not a public key (64 hex digits): {line:?}")))?;
            VerifyingKey::from_bytes(&bytes)
                .map_err(|_| KeyError(format!("not an Ed25519 public key: {line}")))
        })
        .collect()
}

/// Checkpoints from a checkpoint file: one JSON object per line, blank lines ignored. A
/// line that is not a checkpoint is an error naming its line number.
pub fn parse_checkpoints(text: &str) -> Result<Vec<Checkpoint>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| {
            serde_json::from_str(line)
                .map_err(|error| format!("line {}: not a checkpoint: {error}", index + 1))
        })
        .collect()
}

/// Whether `checkpoint` carries a valid signature by one of `keys`.
pub fn signature_valid(checkpoint: &Checkpoint, keys: &[VerifyingKey]) -> Result<(), String> {
    let key = keys
        .iter()
        .find(|key| key_id(key) == checkpoint.key_id)
        .ok_or_else(|| {
            format!(
                "signed by key {}, which is not among the public keys given",
                checkpoint.key_id
            )
        })?;
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(&checkpoint.signature, &mut bytes)
        .map_err(|_| "the signature is not 128 hex digits".to_string())?;
    key.verify(&checkpoint.signed_bytes(), &Signature::from_bytes(&bytes))
        .map_err(|_| "the signature does not verify (checkpoint altered)".to_string())
}

/// One checkpoint the log does not honour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointFailure {
    /// Position of the checkpoint in the list given, from 1.
    pub index: usize,
    /// Its chain.
    pub chain: String,
    /// Its length.
    pub length: u64,
    /// What is wrong.
    pub problem: String,
}

impl std::fmt::Display for CheckpointFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "checkpoint {} (chain {}, {} records): {}",
            self.index, self.chain, self.length, self.problem
        )
    }
}

/// What [`verify_checkpoints`] found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckpointReport {
    /// Checkpoints honoured.
    pub honoured: usize,
    /// Per chain, the longest honoured checkpoint's length.
    pub covered: Vec<(String, u64)>,
    /// Every checkpoint not honoured, in the order given.
    pub failures: Vec<CheckpointFailure>,
}

/// Check every checkpoint against the stored `records` (any order, every stored copy):
/// each must carry a valid signature by one of `keys`, and its chain must still hold
/// records `1..=length`, linked and unaltered, with record `length` carrying `head_hash`.
pub fn verify_checkpoints(
    mut records: Vec<AuditRecord>,
    checkpoints: &[Checkpoint],
    keys: &[VerifyingKey],
) -> CheckpointReport {
    records.sort_by(|a, b| (&a.node_id, a.seq).cmp(&(&b.node_id, b.seq)));
    records.dedup();
    let mut report = CheckpointReport::default();
    for (index, checkpoint) in checkpoints.iter().enumerate() {
        let fail = |problem: String| CheckpointFailure {
            index: index + 1,
            chain: checkpoint.chain.clone(),
            length: checkpoint.length,
            problem,
        };
        if let Err(problem) = signature_valid(checkpoint, keys) {
            report.failures.push(fail(problem));
            continue;
        }
        let start = records.partition_point(|r| r.node_id.as_str() < checkpoint.chain.as_str());
        let chain: Vec<AuditRecord> = records[start..]
            .iter()
            .take_while(|r| r.node_id == checkpoint.chain && r.seq <= checkpoint.length)
            .cloned()
            .collect();
        let problem = match chain.last() {
            None => Some(format!(
                "the log holds no record of this chain: {} removed",
                removed(1, checkpoint.length)
            )),
            Some(last) if last.seq < checkpoint.length => Some(format!(
                "the log ends at record {} of this chain: {} removed",
                last.seq,
                removed(last.seq + 1, checkpoint.length)
            )),
            Some(last) if last.hash != checkpoint.head_hash => Some(format!(
                "record {} is not the one checkpointed (hash {} instead of {})",
                last.seq, last.hash, checkpoint.head_hash
            )),
            Some(_) => crate::audit::verify_chain(&chain)
                .err()
                .map(|broken| broken.to_string()),
        };
        match problem {
            Some(problem) => report.failures.push(fail(problem)),
            None => {
                report.honoured += 1;
                match report
                    .covered
                    .iter_mut()
                    .find(|(chain, _)| *chain == checkpoint.chain)
                {
                    Some((_, covered)) => *covered = (*covered).max(checkpoint.length),
                    None => report
                        .covered
                        .push((checkpoint.chain.clone(), checkpoint.length)),
                }
            }
        }
    }
    report
}

/// "record 7" or "records 7..=9".
fn removed(first: u64, last: u64) -> String {
    if first == last {
        format!("record {first}")
    } else {
        format!("records {first}..={last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{AuditChain, AuditEntry};

    fn chain(node: &str, n: u64) -> Vec<AuditRecord> {
        let mut chain = AuditChain::new(node);
        (0..n)
            .map(|i| {
                let record = chain.seal(AuditEntry {
                    at_ms: i as i64,
                    user: "u".into(),
                    kind: "track".into(),
                    ..AuditEntry::default()
                });
                chain.commit(&record);
                record
            })
            .collect()
    }

    fn signer(byte: u8) -> CheckpointSigner {
        CheckpointSigner::from_seed([byte; 32])
    }

    fn checkpoint_of(
        signer: &CheckpointSigner,
        records: &[AuditRecord],
        length: u64,
    ) -> Checkpoint {
        let head = &records[length as usize - 1];
        signer.sign(&head.node_id, length, &head.hash, 1_000)
    }

    fn keys(signers: &[&CheckpointSigner]) -> Vec<VerifyingKey> {
        let text: String = signers.iter().map(|s| s.public_text()).collect();
        parse_public_keys(&text).expect("public keys")
    }

    #[test]
    fn rfc8032_test_vector_1() {
        // RFC 8032 §7.1, TEST 1: the empty message.
        let seed = "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60";
        let signer = CheckpointSigner::from_key_text(seed).expect("seed");
        assert!(
            signer
                .public_text()
                .contains("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
        );
        let signature = signer.key.sign(b"");
        assert_eq!(
            hex::encode(signature.to_bytes()),
            "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155\
             5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"
        );
    }

    #[test]
    fn an_intact_log_honours_every_checkpoint() {
        let signer = signer(7);
        let records = chain("query/1", 10);
        let checkpoints = [
            checkpoint_of(&signer, &records, 3),
            checkpoint_of(&signer, &records, 10),
        ];
        let report = verify_checkpoints(records, &checkpoints, &keys(&[&signer]));
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        assert_eq!(report.honoured, 2);
        assert_eq!(report.covered, [("query/1".to_string(), 10)]);
    }

    #[test]
    fn a_cut_tail_is_found_though_the_rest_still_chains() {
        let signer = signer(7);
        let mut records = chain("query/1", 10);
        let checkpoints = [checkpoint_of(&signer, &records, 8)];
        records.truncate(6);
        assert_eq!(
            crate::audit::verify_chain(&records),
            Ok(6),
            "the hash chain alone sees nothing"
        );
        let report = verify_checkpoints(records, &checkpoints, &keys(&[&signer]));
        assert_eq!(report.honoured, 0);
        assert_eq!(
            report.failures[0].problem,
            "the log ends at record 6 of this chain: records 7..=8 removed"
        );
        assert!(
            report.failures[0]
                .to_string()
                .starts_with("checkpoint 1 (chain query/1, 8 records)")
        );
    }

    #[test]
    fn a_rewritten_log_is_found() {
        let signer = signer(7);
        let records = chain("query/1", 5);
        let checkpoints = [checkpoint_of(&signer, &records, 5)];
        // The whole chain re-sealed with one record changed: it verifies by itself.
        let mut forged_chain = AuditChain::new("query/1");
        let forged: Vec<AuditRecord> = records
            .iter()
            .map(|r| {
                let mut entry = r.entry.clone();
                if r.seq == 2 {
                    entry.reason = "edited".into();
                }
                let record = forged_chain.seal(entry);
                forged_chain.commit(&record);
                record
            })
            .collect();
        assert_eq!(crate::audit::verify_chain(&forged), Ok(5));
        let report = verify_checkpoints(forged, &checkpoints, &keys(&[&signer]));
        assert!(
            report.failures[0]
                .problem
                .starts_with("record 5 is not the one checkpointed")
        );
    }

    #[test]
    fn an_altered_record_below_the_head_is_found() {
        let signer = signer(7);
        let mut records = chain("query/1", 5);
        let checkpoints = [checkpoint_of(&signer, &records, 5)];
        records[1].entry.reason = "edited".into();
        let report = verify_checkpoints(records, &checkpoints, &keys(&[&signer]));
        assert_eq!(report.failures.len(), 1);
        assert!(
            report.failures[0].problem.contains("seq 2"),
            "{:?}",
            report.failures
        );
    }

    #[test]
    fn signatures_bind_every_field_and_name_their_key() {
        let old = signer(7);
        let new = signer(9);
        let records = chain("query/1", 4);
        let mut checkpoints = vec![
            checkpoint_of(&old, &records, 2),
            checkpoint_of(&new, &records, 4),
        ];
        // Rotation: both public keys given, both checkpoints honoured.
        let both = keys(&[&old, &new]);
        let report = verify_checkpoints(records.clone(), &checkpoints, &both);
        assert!(report.failures.is_empty(), "{:?}", report.failures);
        // Only the new key: the old checkpoint is named as signed by an unknown key.
        let report = verify_checkpoints(records.clone(), &checkpoints, &keys(&[&new]));
        assert_eq!(report.failures.len(), 1);
        assert!(report.failures[0].problem.contains(old.key_id()));
        // A checkpoint edited after signing (shorter length: to hide a cut) fails.
        checkpoints[1].length = 3;
        checkpoints[1].head_hash = records[2].hash.clone();
        let report = verify_checkpoints(records, &checkpoints, &both);
        assert_eq!(
            report.failures[0].problem,
            "the signature does not verify (checkpoint altered)"
        );
    }

    proptest::proptest! {
        /// Files from outside (a witness's copy, a key file) never panic the verifier, and
        /// no change to a signed checkpoint's fields keeps its signature valid.
        #[test]
        fn outside_text_never_panics_and_edits_never_verify(
            text in "\\PC{0,300}",
            length in 1u64..8,
            at_ms in proptest::prelude::any::<i64>(),
        ) {
            let _ = parse_checkpoints(&text);
            let _ = parse_public_keys(&text);
            let _ = CheckpointSigner::from_key_text(&text);
            let signer = signer(1);
            let records = chain("p", 8);
            let keys = keys(&[&signer]);
            let honest = checkpoint_of(&signer, &records, length);
            proptest::prop_assert!(signature_valid(&honest, &keys).is_ok());
            let mut edited = honest.clone();
            edited.at_ms = at_ms;
            proptest::prop_assert_eq!(signature_valid(&edited, &keys).is_ok(), at_ms == honest.at_ms);
            let mut edited = honest.clone();
            edited.chain = text.clone();
            proptest::prop_assert_eq!(signature_valid(&edited, &keys).is_ok(), text == "p");
        }
    }

    #[test]
    fn files_parse_and_bad_lines_are_named() {
        let signer = signer(3);
        let again = CheckpointSigner::from_key_text(&signer.key_text()).expect("round trip");
        assert_eq!(again.key_id(), signer.key_id());
        assert!(CheckpointSigner::from_key_text("# nothing\n").is_err());
        assert!(CheckpointSigner::from_key_text("abcd").is_err());
        assert!(parse_public_keys("zz").is_err());
        let records = chain("n", 1);
        let line = serde_json::to_string(&checkpoint_of(&signer, &records, 1)).expect("json");
        let parsed = parse_checkpoints(&format!("{line}\n\n{line}\n")).expect("two");
        assert_eq!(parsed.len(), 2);
        let error = parse_checkpoints(&format!("{line}\n{{\"chain\": 1}}\n")).expect_err("bad");
        assert!(error.starts_with("line 2:"), "{error}");
    }
}
