//! The storage contract (`camtrail_storage::testsuite`) on the ClickHouse backend, against
//! the real server (the SQLite backend runs the same suite in its own unit tests).

use camtrail_clickhouse::rows::{AuditRow, DetectionRow, SnapshotRow};
use camtrail_clickhouse::{ClickhouseConfig, ClickhouseStore};
use camtrail_model::Detection;
use camtrail_model::audit::{AuditChain, AuditEntry, AuditRecord};
use camtrail_storage::testsuite::{self, Backend};
use camtrail_storage::{AuditCursor, AuditFilter, SightingStore};

struct Clickhouse {
    config: ClickhouseConfig,
    store: ClickhouseStore,
}

impl Backend for Clickhouse {
    type Store = ClickhouseStore;

    fn store(&self) -> &ClickhouseStore {
        &self.store
    }

    async fn write(&self, detections: Vec<Detection>) {
        let client = self.config.client();
        let mut insert = client
            .insert::<DetectionRow>("detections")
            .await
            .expect("insert");
        let mut snapshots = Vec::new();
        for detection in detections {
            let (row, snapshot) = DetectionRow::from_detection(detection);
            insert.write(&row).await.expect("row");
            snapshots.extend(snapshot);
        }
        insert.end().await.expect("end");
        let mut insert = client
            .insert::<SnapshotRow>("snapshots")
            .await
            .expect("insert");
        for row in &snapshots {
            insert.write(row).await.expect("row");
        }
        insert.end().await.expect("end");
    }

    async fn append_audit(&self, node_id: &str, entries: Vec<AuditEntry>) -> Vec<AuditRecord> {
        // In distributed mode records reach audit_log through Kafka and the sink; the read
        // contract starts at the table.
        let mut chain = AuditChain::new(node_id);
        let records: Vec<AuditRecord> = entries
            .into_iter()
            .map(|entry| {
                let record = chain.seal(entry);
                chain.commit(&record);
                record
            })
            .collect();
        let mut insert = self
            .config
            .client()
            .insert::<AuditRow>("audit_log")
            .await
            .expect("insert");
        for record in &records {
            insert
                .write(&AuditRow::from(record.clone()))
                .await
                .expect("row");
        }
        insert.end().await.expect("end");
        records
    }

    async fn delete_before(&self, cutoff_ms: i64, held: &std::collections::BTreeSet<String>) {
        let plan = camtrail_clickhouse::plan_retention(&self.config, cutoff_ms, held)
            .await
            .expect("plan");
        camtrail_clickhouse::apply_retention(
            &self.config,
            &plan,
            std::time::Duration::from_secs(60),
        )
        .await
        .expect("apply");
    }
}

async fn clickhouse(test: &str) -> Clickhouse {
    let config = camtrail_testkit::clickhouse(test).await;
    camtrail_clickhouse::migrate(&config, 1)
        .await
        .expect("migrate");
    Clickhouse {
        store: ClickhouseStore::new(&config),
        config,
    }
}

#[tokio::test]
async fn clickhouse_dedup_order_and_window() {
    let backend = clickhouse("contract_window").await;
    testsuite::dedup_order_and_window(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_passes_page_through_every_event_once() {
    let backend = clickhouse("contract_passes").await;
    testsuite::passes_page_through_every_event_once(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_attributes_round_trip() {
    let backend = clickhouse("contract_attributes").await;
    testsuite::attributes_round_trip(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_passes_filter_by_attributes() {
    let backend = clickhouse("contract_passes_attributes").await;
    testsuite::passes_filter_by_attributes(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_passes_filter_by_object_class() {
    let backend = clickhouse("contract_passes_class").await;
    testsuite::passes_filter_by_object_class(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_passes_in_reads_each_window_once() {
    let backend = clickhouse("contract_passes_in").await;
    testsuite::passes_in_reads_each_window_once(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_audit_pages_newest_first_through_every_record_once() {
    let backend = clickhouse("contract_audit_pages").await;
    testsuite::audit_pages_newest_first_through_every_record_once(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

/// The sink may deliver an audit record twice (at-least-once): until ClickHouse merges the
/// copies, the listing still shows each record once, however the pages fall.
#[tokio::test]
async fn clickhouse_audit_pages_list_a_redelivered_record_once() {
    let backend = clickhouse("contract_audit_redelivered").await;
    let entries: Vec<AuditEntry> = (0..10)
        .map(|n| AuditEntry {
            at_ms: testsuite::T0 + n / 4,
            user: "ivy".into(),
            kind: "track".into(),
            ..AuditEntry::default()
        })
        .collect();
    let written = backend.append_audit("node-1", entries).await;
    let mut insert = backend
        .config
        .client()
        .insert::<AuditRow>("audit_log")
        .await
        .expect("insert");
    for record in &written {
        insert
            .write(&AuditRow::from(record.clone()))
            .await
            .expect("row");
    }
    insert.end().await.expect("end");
    let filter = AuditFilter {
        user: Some("ivy".into()),
        ..AuditFilter::default()
    };
    for limit in [1, 3, 10, 100] {
        let mut seen = Vec::new();
        let mut after: Option<AuditCursor> = None;
        loop {
            let page = backend
                .store
                .audit_records(&filter, after.as_ref(), limit)
                .await
                .expect("page");
            let Some(last) = page.last() else { break };
            after = Some(AuditCursor::of(last));
            seen.extend(page.into_iter().map(|r| r.seq));
        }
        assert_eq!(
            seen,
            (1..=10).rev().collect::<Vec<u64>>(),
            "page size {limit}"
        );
    }
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_retention_removes_only_older_rows() {
    let backend = clickhouse("contract_retention").await;
    testsuite::retention_removes_only_older_rows(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_retention_keeps_exactly_the_held_rows() {
    let backend = clickhouse("contract_holds").await;
    testsuite::retention_keeps_exactly_the_held_rows(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_watchlist_entries_keep_their_latest_version() {
    let backend = clickhouse("contract_watchlist").await;
    testsuite::watchlist_entries_keep_their_latest_version(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_cases_keep_their_latest_version() {
    let backend = clickhouse("contract_cases").await;
    testsuite::cases_keep_their_latest_version(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}

#[tokio::test]
async fn clickhouse_audit_records_read_back_as_an_intact_chain() {
    let backend = clickhouse("contract_audit").await;
    testsuite::audit_records_read_back_as_an_intact_chain(&backend).await;
    camtrail_testkit::drop_database(&backend.config).await;
}
