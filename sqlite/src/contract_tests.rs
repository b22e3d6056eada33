//! The storage contract (`camtrail_storage::testsuite`) on the embedded store: with the
//! default tuning (everything staged), and with tiny parts so the same tests run over many
//! parts, merges and resends that landed in different parts.

use std::collections::BTreeSet;

use camtrail_model::Detection;
use camtrail_model::audit::{AuditEntry, AuditRecord};
use camtrail_storage::testsuite::{self, Backend};
use camtrail_storage::{AuditLog, SightingStore};

use crate::{SqliteStore, Tuning};

struct Sqlite {
    _dir: tempfile::TempDir,
    store: SqliteStore,
}

impl Backend for Sqlite {
    type Store = SqliteStore;

    fn store(&self) -> &SqliteStore {
        &self.store
    }

    async fn write(&self, detections: Vec<Detection>) {
        self.store.write(detections).await.expect("write");
        // Parts are built in the background; settle so the tiny-parts runs are repeatable.
        self.store.maintenance_idle().await.expect("maintenance");
    }

    async fn append_audit(&self, node_id: &str, entries: Vec<AuditEntry>) -> Vec<AuditRecord> {
        let log = self.store.audit_log(node_id).await.expect("audit log");
        let mut records = Vec::new();
        for entry in entries {
            records.push(log.append(entry).await.expect("append"));
        }
        records
    }

    async fn delete_before(&self, cutoff_ms: i64, held: &BTreeSet<String>) {
        self.store
            .delete_before(cutoff_ms, held)
            .await
            .expect("retention");
    }
}

fn sqlite() -> Sqlite {
    sqlite_with(Tuning::default())
}

/// Every write of two rows or more becomes a part and the two smallest parts merge when
/// there are three: the same contract then runs over staged rows, many parts, merged parts
/// and duplicates that landed in different parts.
fn sqlite_tiny_parts() -> Sqlite {
    sqlite_with(Tuning {
        max_group_rows: 1,
        flush_rows: 2,
        max_parts: 2,
        merge_fan_in: 2,
        max_staged_rows: 1_000,
    })
}

fn sqlite_with(tuning: Tuning) -> Sqlite {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = SqliteStore::open_with(&dir.path().join("camtrail.db"), tuning).expect("open");
    Sqlite { _dir: dir, store }
}

#[tokio::test]
async fn sqlite_dedup_order_and_window() {
    testsuite::dedup_order_and_window(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_passes_page_through_every_event_once() {
    testsuite::passes_page_through_every_event_once(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_parts_dedup_order_and_window() {
    let backend = sqlite_tiny_parts();
    testsuite::dedup_order_and_window(&backend).await;
    // The resent rows sit in a second part: the answers above removed them on read.
    let stats = backend.store.writer_stats();
    assert!(stats.flushes == 2 && stats.parts == 2, "{stats:?}");
}

#[tokio::test]
async fn sqlite_parts_passes_page_through_every_event_once() {
    let backend = sqlite_tiny_parts();
    testsuite::passes_page_through_every_event_once(&backend).await;
    let stats = backend.store.writer_stats();
    assert!(stats.flushes >= 2, "{stats:?}");
}

#[tokio::test]
async fn sqlite_passes_filter_by_object_class() {
    testsuite::passes_filter_by_object_class(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_parts_passes_filter_by_object_class() {
    let backend = sqlite_tiny_parts();
    testsuite::passes_filter_by_object_class(&backend).await;
    let stats = backend.store.writer_stats();
    assert!(stats.flushes >= 1, "{stats:?}");
}

#[tokio::test]
async fn sqlite_attributes_round_trip() {
    testsuite::attributes_round_trip(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_parts_attributes_round_trip() {
    testsuite::attributes_round_trip(&sqlite_tiny_parts()).await;
}

#[tokio::test]
async fn sqlite_passes_filter_by_attributes() {
    testsuite::passes_filter_by_attributes(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_parts_passes_filter_by_attributes() {
    let backend = sqlite_tiny_parts();
    testsuite::passes_filter_by_attributes(&backend).await;
    let stats = backend.store.writer_stats();
    assert!(stats.flushes >= 4 && stats.merges >= 1, "{stats:?}");
}

#[tokio::test]
async fn sqlite_passes_in_reads_each_window_once() {
    testsuite::passes_in_reads_each_window_once(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_parts_passes_in_reads_each_window_once() {
    let backend = sqlite_tiny_parts();
    testsuite::passes_in_reads_each_window_once(&backend).await;
    let stats = backend.store.writer_stats();
    assert!(stats.flushes >= 2, "{stats:?}");
}

#[tokio::test]
async fn sqlite_audit_pages_newest_first_through_every_record_once() {
    testsuite::audit_pages_newest_first_through_every_record_once(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_retention_removes_only_older_rows() {
    testsuite::retention_removes_only_older_rows(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_parts_retention_removes_only_older_rows() {
    let backend = sqlite_tiny_parts();
    testsuite::retention_removes_only_older_rows(&backend).await;
    let stats = backend.store.writer_stats();
    assert!(stats.flushes >= 4 && stats.merges >= 1, "{stats:?}");
}

#[tokio::test]
async fn sqlite_audit_records_read_back_as_an_intact_chain() {
    testsuite::audit_records_read_back_as_an_intact_chain(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_audit_chain_continues_after_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("camtrail.db");
    let entry = AuditEntry {
        case_id: "C-1".into(),
        kind: "track".into(),
        ..AuditEntry::default()
    };
    {
        let store = SqliteStore::open(&path).expect("open");
        let log = store.audit_log("serve").await.expect("log");
        log.append(entry.clone()).await.expect("1");
        log.append(entry.clone()).await.expect("2");
    }
    let store = SqliteStore::open(&path).expect("reopen");
    let log = store.audit_log("serve").await.expect("log");
    let third = log.append(entry).await.expect("3");
    assert_eq!(third.seq, 3);
    let records = store.all_audit_records().await.expect("read");
    assert_eq!(
        store.last_audit_record("serve").await.expect("last"),
        records.last().cloned()
    );
    assert_eq!(store.last_audit_record("other").await.expect("none"), None);
    assert_eq!(
        camtrail_model::audit::verify_chain(&records),
        Ok(3),
        "the reopened chain links to the stored one"
    );
}

#[tokio::test]
async fn sqlite_cases_keep_their_latest_version() {
    testsuite::cases_keep_their_latest_version(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_retention_keeps_exactly_the_held_rows() {
    testsuite::retention_keeps_exactly_the_held_rows(&sqlite()).await;
}

#[tokio::test]
async fn sqlite_parts_retention_keeps_exactly_the_held_rows() {
    testsuite::retention_keeps_exactly_the_held_rows(&sqlite_tiny_parts()).await;
}

#[tokio::test]
async fn sqlite_watchlist_entries_keep_their_latest_version() {
    testsuite::watchlist_entries_keep_their_latest_version(&sqlite()).await;
}
