//! The audit trail: one record per accountable action (a track or passes query, a snapshot
//! view, a retention run), hash-chained per writing node so that a changed, removed or
//! reordered record breaks the chain (ARCHITECTURE.md, Accountability).
//!
//! A node holds an [`AuditChain`]; [`AuditChain::seal`] turns an [`AuditEntry`] (who, why,
//! what) into the next [`AuditRecord`] of its chain. [`verify_chain`] checks a chain read
//! back from storage and names the first broken link.
//!
//! The hash covers a canonical, length-prefixed encoding of every field except `hash`
//! itself, so no two different records share an encoding; it is the same on every platform
//! and in every storage backend.

use sha2::{Digest, Sha256};

/// `prev_hash` of the first record of a chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What happened, before it is placed in a chain.
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// When, unix ms.
    pub at_ms: i64,
    /// Authenticated user (token name).
    pub user: String,
    /// The user's role.
    pub role: String,
    /// Case the action was made for.
    pub case_id: String,
    /// Why.
    pub reason: String,
    /// `track`, `passes`, `snapshot`, `retention`, ...
    pub kind: String,
    /// The request's parameters as canonical JSON.
    pub parameters_json: String,
    /// How many results left the node (rows removed, for retention).
    pub result_count: u64,
    /// Client address as the node saw it.
    pub client_addr: String,
}

/// One sealed record of a node's chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AuditRecord {
    /// The writing node (its chain).
    pub node_id: String,
    /// Position in the chain, from 1.
    pub seq: u64,
    /// The action.
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// Hex SHA-256 of the previous record ([`GENESIS_HASH`] for the first).
    pub prev_hash: String,
    /// Hex SHA-256 of this record's canonical form (including `prev_hash`).
    pub hash: String,
}

impl AuditRecord {
    /// The hash this record should carry, recomputed from its fields.
    pub fn compute_hash(&self) -> String {
        let mut hasher = Sha256::new();
        let mut field = |bytes: &[u8]| {
            hasher.update((bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        let entry = &self.entry;
        field(b"camtrail.audit.v1");
        field(self.node_id.as_bytes());
        field(&self.seq.to_le_bytes());
        field(&entry.at_ms.to_le_bytes());
        field(entry.user.as_bytes());
        field(entry.role.as_bytes());
        field(entry.case_id.as_bytes());
        field(entry.reason.as_bytes());
        field(entry.kind.as_bytes());
        field(entry.parameters_json.as_bytes());
        field(&entry.result_count.to_le_bytes());
        field(entry.client_addr.as_bytes());
        field(self.prev_hash.as_bytes());
        hex::encode(hasher.finalize())
    }
}

/// A node's position in its chain: the next sequence number and the last hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditChain {
    node_id: String,
    next_seq: u64,
    last_hash: String,
}

impl AuditChain {
    /// A new chain for `node_id`, starting at seq 1.
    pub fn new(node_id: impl Into<String>) -> Self {
        Self {
            node_id: node_id.into(),
            next_seq: 1,
            last_hash: GENESIS_HASH.to_string(),
        }
    }

    /// Continue after `last`, the newest record of this node's chain in storage.
    pub fn resume(last: &AuditRecord) -> Self {
        Self {
            node_id: last.node_id.clone(),
            next_seq: last.seq + 1,
            last_hash: last.hash.clone(),
        }
    }

    /// The chain's node id.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// The record `entry` would become, without advancing the chain. Call
    /// [`Self::commit`] once it is durably written; if the write fails, seal again later
    /// (same seq) so the chain has no gap.
    pub fn seal(&self, entry: AuditEntry) -> AuditRecord {
        let mut record = AuditRecord {
            node_id: self.node_id.clone(),
            seq: self.next_seq,
            entry,
            prev_hash: self.last_hash.clone(),
            hash: String::new(),
        };
        record.hash = record.compute_hash();
        record
    }

    /// Advance past `record` (sealed by this chain and durably written).
    pub fn commit(&mut self, record: &AuditRecord) {
        debug_assert_eq!(record.seq, self.next_seq);
        self.next_seq = record.seq + 1;
        self.last_hash = record.hash.clone();
    }
}

/// How a chain is broken: the first bad record and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("audit chain {node_id} broken at seq {seq}: {problem}")]
pub struct BrokenLink {
    /// The chain.
    pub node_id: String,
    /// The first record that does not verify (or the seq that is missing).
    pub seq: u64,
    /// What is wrong.
    pub problem: String,
}

/// Check one node's chain, given its records in `seq` order (duplicates of the same record
/// already removed): seqs run 1, 2, 3…, each record's hash matches its content, and each
/// `prev_hash` is its predecessor's hash. Returns the number of records checked.
pub fn verify_chain(records: &[AuditRecord]) -> Result<u64, BrokenLink> {
    let mut expected_prev = GENESIS_HASH;
    for (index, record) in records.iter().enumerate() {
        let broken = |problem: String| BrokenLink {
            node_id: record.node_id.clone(),
            seq: record.seq,
            problem,
        };
        let expected_seq = index as u64 + 1;
        if record.seq != expected_seq {
            return Err(BrokenLink {
                node_id: record.node_id.clone(),
                seq: expected_seq,
                problem: format!(
                    "record {expected_seq} is missing (next stored is {})",
                    record.seq
                ),
            });
        }
        if record.node_id != records[0].node_id {
            return Err(broken(format!("belongs to chain {}", record.node_id)));
        }
        if record.prev_hash != expected_prev {
            return Err(broken(
                "prev_hash does not match the previous record's hash".into(),
            ));
        }
        if record.compute_hash() != record.hash {
            return Err(broken(
                "content does not match its hash (record altered)".into(),
            ));
        }
        expected_prev = &record.hash;
    }
    Ok(records.len() as u64)
}

/// What `verify_all` found.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct VerifyReport {
    /// Chains checked, with their record counts, by node id.
    pub chains: Vec<(String, u64)>,
    /// The first broken link of each broken chain.
    pub broken: Vec<BrokenLink>,
}

/// Check every chain in `records` (any order, every stored copy: identical copies of a
/// record from re-deliveries are one record; two *different* records at one position break
/// the chain there).
pub fn verify_all(mut records: Vec<AuditRecord>) -> VerifyReport {
    records.sort_by(|a, b| (&a.node_id, a.seq).cmp(&(&b.node_id, b.seq)));
    let mut report = VerifyReport::default();
    let mut start = 0;
    while start < records.len() {
        let node = records[start].node_id.clone();
        let end = records[start..]
            .iter()
            .position(|r| r.node_id != node)
            .map_or(records.len(), |offset| start + offset);
        let mut chain: Vec<AuditRecord> = Vec::with_capacity(end - start);
        let mut conflict = None;
        for record in &records[start..end] {
            match chain.last() {
                Some(last) if last.seq == record.seq => {
                    if last != record && conflict.is_none() {
                        conflict = Some(BrokenLink {
                            node_id: node.clone(),
                            seq: record.seq,
                            problem: "two different records stored at this position".into(),
                        });
                    }
                }
                _ => chain.push(record.clone()),
            }
        }
        let checked = verify_chain(&chain);
        let first_broken = match (checked.as_ref().err(), conflict) {
            (Some(a), Some(b)) => Some(if a.seq <= b.seq { a.clone() } else { b }),
            (Some(a), None) => Some(a.clone()),
            (None, conflict) => conflict,
        };
        report.chains.push((node, chain.len() as u64));
        report.broken.extend(first_broken);
        start = end;
    }
    report
}

/// What can be checked of records that are not a whole chain (a page of an audit listing,
/// filtered and newest first): each record's hash against its content, and each record's
/// link to its predecessor where both are present. `camtrail audit verify` checks whole
/// chains ([`verify_all`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Serialize)]
pub struct PageCheck {
    /// Records whose hash was recomputed.
    pub records_checked: usize,
    /// Links checked (a record and its predecessor both present).
    pub links_checked: usize,
    /// `node/seq` of records whose content does not match their hash.
    pub altered: Vec<String>,
    /// `node/seq` of records whose `prev_hash` is not their predecessor's hash.
    pub broken_links: Vec<String>,
    /// Nothing altered, no link broken.
    pub intact: bool,
}

/// Check `records` in any order (see [`PageCheck`]).
pub fn check_page(records: &[AuditRecord]) -> PageCheck {
    let name = |r: &AuditRecord| format!("{}/{}", r.node_id, r.seq);
    let by_position: std::collections::HashMap<(&str, u64), &AuditRecord> = records
        .iter()
        .map(|r| ((r.node_id.as_str(), r.seq), r))
        .collect();
    let altered: Vec<String> = records
        .iter()
        .filter(|r| r.compute_hash() != r.hash)
        .map(name)
        .collect();
    let mut links_checked = 0;
    let mut broken_links = Vec::new();
    for record in records {
        let before = record
            .seq
            .checked_sub(1)
            .and_then(|seq| by_position.get(&(record.node_id.as_str(), seq)));
        if let Some(before) = before {
            links_checked += 1;
            if record.prev_hash != before.hash {
                broken_links.push(name(record));
            }
        }
    }
    PageCheck {
        records_checked: records.len(),
        links_checked,
        intact: altered.is_empty() && broken_links.is_empty(),
        altered,
        broken_links,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> AuditEntry {
        AuditEntry {
            at_ms: 1_700_000_000_000 + n as i64,
            user: "alice".into(),
            role: "investigator".into(),
            case_id: format!("CASE-{n}"),
            reason: "burglary follow-up".into(),
            kind: "track".into(),
            parameters_json: r#"{"plate":"粤S12345"}"#.into(),
            result_count: n,
            client_addr: "127.0.0.1:5000".into(),
        }
    }

    fn chain_of(n: u64) -> Vec<AuditRecord> {
        let mut chain = AuditChain::new("query-1");
        (1..=n)
            .map(|i| {
                let record = chain.seal(entry(i));
                chain.commit(&record);
                record
            })
            .collect()
    }

    #[test]
    fn a_page_checks_its_hashes_and_the_links_it_holds() {
        // A filtered page, newest first, with a gap: records 9, 8, 7, 5.
        let chain = chain_of(10);
        let mut page: Vec<AuditRecord> = [8, 7, 6, 4].iter().map(|&i| chain[i].clone()).collect();
        let check = check_page(&page);
        assert!(check.intact, "{check:?}");
        assert_eq!((check.records_checked, check.links_checked), (4, 2));
        // Record 8 edited; record 9 re-pointed (its hash covers prev_hash: altered too).
        page[1].entry.reason = "edited".into();
        page[0].prev_hash = "0".repeat(64);
        let check = check_page(&page);
        assert!(!check.intact);
        assert_eq!(
            check.altered,
            vec!["query-1/9".to_string(), "query-1/8".to_string()]
        );
        assert_eq!(check.broken_links, vec!["query-1/9".to_string()]);
    }

    #[test]
    fn a_sealed_chain_verifies() {
        let records = chain_of(5);
        assert_eq!(records[0].prev_hash, GENESIS_HASH);
        assert_eq!(records[1].prev_hash, records[0].hash);
        assert_eq!(verify_chain(&records), Ok(5));
        assert_eq!(verify_chain(&[]), Ok(0));
    }

    #[test]
    fn resume_continues_the_chain() {
        let mut records = chain_of(3);
        let mut chain = AuditChain::resume(&records[2]);
        let next = chain.seal(entry(4));
        chain.commit(&next);
        records.push(next);
        assert_eq!(verify_chain(&records), Ok(4));
    }

    #[test]
    fn every_kind_of_tampering_names_the_first_bad_record() {
        let records = chain_of(5);

        let mut altered = records.clone();
        altered[2].entry.reason = "something else".into();
        let broken = verify_chain(&altered).expect_err("altered");
        assert_eq!(broken.seq, 3);
        assert!(broken.problem.contains("altered"), "{broken}");

        // Re-hashing the altered record breaks the next link instead.
        altered[2].hash = altered[2].compute_hash();
        assert_eq!(verify_chain(&altered).expect_err("rehashed").seq, 4);

        let mut removed = records.clone();
        removed.remove(1);
        let broken = verify_chain(&removed).expect_err("removed");
        assert_eq!(broken.seq, 2);
        assert!(broken.problem.contains("missing"), "{broken}");

        let mut swapped = records;
        swapped.swap(3, 4);
        assert_eq!(verify_chain(&swapped).expect_err("swapped").seq, 4);
    }

    #[test]
    fn verify_all_groups_chains_and_tolerates_identical_copies_only() {
        let mut records = chain_of(3);
        let other = AuditChain::new("query-2");
        let foreign = other.seal(entry(9));
        records.push(foreign);
        records.push(records[1].clone()); // a re-delivered copy
        records.reverse();
        let report = verify_all(records.clone());
        assert_eq!(
            report.chains,
            vec![("query-1".to_string(), 3), ("query-2".to_string(), 1)]
        );
        assert!(report.broken.is_empty(), "{:?}", report.broken);

        let mut forged = records[0].clone();
        forged.entry.case_id = "OTHER".into();
        records.push(forged.clone());
        let report = verify_all(records);
        assert_eq!(report.broken.len(), 1);
        assert_eq!(report.broken[0].node_id, forged.node_id);
    }

    #[test]
    fn field_boundaries_are_part_of_the_hash() {
        let mut a = chain_of(1).remove(0);
        let mut b = a.clone();
        a.entry.user = "ab".into();
        a.entry.role = "c".into();
        b.entry.user = "a".into();
        b.entry.role = "bc".into();
        assert_ne!(a.compute_hash(), b.compute_hash());
    }
}
