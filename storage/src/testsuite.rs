//! The storage contract, one set of test functions every backend runs from its own tests
//! (feature `testsuite`): ClickHouse (the real server, distributed mode) and bundled SQLite
//! (embedded mode). Dedup by event id, time order, window bounds, passes with cursor paging
//! and a class filter, key look-ups for fuzzy and pattern searches, snapshots with their
//! capture time, retention, the audit chain read back intact, and the audit listing:
//! filtered, newest first, paged through every record exactly once; the case registry
//! (latest version wins) and legal holds that retention keeps exactly.
//!
//! A backend implements [`Backend`] (how to write rows and audit records into it, and how
//! to apply retention) and calls each `pub async fn` here with it.

// Test code: a failed expectation is the test's failure.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeSet;
use std::future::Future;

use camtrail_model::audit::{AuditEntry, AuditRecord, verify_all};
use camtrail_model::case::{Case, CaseStatus, Hold};
use camtrail_model::{Detection, EventId, ObjectClass, VehicleAttributes};

use crate::{
    AuditCursor, AuditFilter, CameraWindow, CaseStore, PassCursor, PassFilter, SightingStore,
    StoredSighting, StoredSnapshot, WatchlistStore,
};

/// The contract's reference instant (2025-11-26 12:00 UTC).
pub const T0: i64 = 1_764_158_400_000;
/// The camera most contract events are seen by.
pub const CAMERA: &str = "44030000001310000001";

/// What a contract test needs from a backend besides the read trait.
pub trait Backend {
    type Store: crate::Store;
    fn store(&self) -> &Self::Store;
    fn write(&self, detections: Vec<Detection>) -> impl Future<Output = ()>;
    /// Append `entries` to the chain of `node_id` (each node at most once per test).
    fn append_audit(
        &self,
        node_id: &str,
        entries: Vec<AuditEntry>,
    ) -> impl Future<Output = Vec<AuditRecord>>;
    /// Apply retention: remove what was captured before `cutoff_ms`, except the event ids
    /// in `held`.
    fn delete_before(&self, cutoff_ms: i64, held: &BTreeSet<String>) -> impl Future<Output = ()>;
}

/// A detection of `key` at `at_ms` at `camera`, event id `[n; 16]`; event 1 has a thumbnail.
pub fn detection(n: u8, key: &str, at_ms: i64, camera: &str) -> Detection {
    Detection {
        event_id: EventId([n; 16]),
        camera_id: camera.into(),
        captured_at_ms: at_ms,
        object_class: ObjectClass::Vehicle,
        plate: key.into(),
        plate_confidence: 0.9,
        subject_key: key.into(),
        attributes: VehicleAttributes {
            color: 1,
            kind: 1,
            plate_color: 1,
            direction: 3,
            speed_kmh: 42.5,
            brand: "大众".into(),
        },
        plate_char_confidence: vec![90, 91, 92, 93, 94, 95, 96],
        bbox: [1, 2, 3, 4],
        thumbnail_jpeg: (n == 1).then(|| vec![0xFF, 0xD8, n, 0xFF, 0xD9]),
        gateway_id: "gw-001".into(),
        received_at_ms: at_ms + 100,
    }
}

pub async fn dedup_order_and_window(backend: &impl Backend) {
    let key = "粤B12345";
    let events = vec![
        detection(3, key, T0 + 2_000, CAMERA),
        detection(1, key, T0, CAMERA),
        detection(2, key, T0 + 1_000, CAMERA),
        detection(4, key, T0 + 10_000, CAMERA), // exactly at `to`: outside
        detection(5, key, T0 - 1, CAMERA),      // before `from`: outside
        detection(6, "粤B99999", T0 + 500, CAMERA),
    ];
    backend.write(events.clone()).await;
    backend
        .write(vec![events[0].clone(), events[2].clone()])
        .await; // resent
    let got = backend
        .store()
        .sightings(&[key.to_string()], T0, T0 + 10_000, 100)
        .await
        .expect("sightings");
    let ids: Vec<u8> = got.iter().map(|s| s.event_id.0[0]).collect();
    assert_eq!(
        ids,
        vec![1, 2, 3],
        "each event once, in time order, [from, to)"
    );
    assert_eq!(got[0].camera_id, CAMERA);
    assert!(got[0].has_snapshot && !got[1].has_snapshot);

    let seen = backend
        .store()
        .keys_seen(
            &[key.into(), "粤B1Z345".into(), "粤B99999".into()],
            T0,
            T0 + 10_000,
        )
        .await
        .expect("keys seen");
    let mut seen = seen;
    seen.sort();
    assert_eq!(seen, vec!["粤B12345".to_string(), "粤B99999".to_string()]);
    let like = backend
        .store()
        .keys_like("粤B1", "粤B1_345", T0, T0 + 10_000, 10)
        .await
        .expect("keys like");
    assert_eq!(like, vec!["粤B12345".to_string()]);

    assert_eq!(
        backend
            .store()
            .snapshot(EventId([1; 16]))
            .await
            .expect("snapshot"),
        Some(StoredSnapshot {
            jpeg: vec![0xFF, 0xD8, 1, 0xFF, 0xD9],
            captured_at_ms: T0,
        })
    );
    assert_eq!(
        backend
            .store()
            .snapshot(EventId([2; 16]))
            .await
            .expect("none"),
        None
    );
}

pub async fn passes_page_through_every_event_once(backend: &impl Backend) {
    let other = "44030000001310000002";
    let mut events: Vec<Detection> = (1..=7)
        .map(|n| detection(n, &format!("粤B0000{n}"), T0 + i64::from(n) * 1_000, CAMERA))
        .collect();
    // Two events at the same instant: the cursor must not lose or repeat either.
    events.push(detection(8, "粤B00008", T0 + 3_000, CAMERA));
    events.push(detection(9, "粤B00009", T0 + 3_000, other));
    backend.write(events.clone()).await;
    backend.write(events[..3].to_vec()).await; // resent
    let mut after: Option<PassCursor> = None;
    let mut seen = Vec::new();
    for _ in 0..10 {
        let page = backend
            .store()
            .passes(
                &[CAMERA.to_string()],
                T0,
                T0 + 60_000,
                &PassFilter::default(),
                after,
                3,
            )
            .await
            .expect("passes");
        seen.extend(page.iter().map(|p| (p.captured_at_ms, p.event_id.0[0])));
        let Some(last) = page.last() else { break };
        after = Some(PassCursor {
            captured_at_ms: last.captured_at_ms,
            event_id: last.event_id,
        });
        if page.len() < 3 {
            break;
        }
    }
    let expected: Vec<(i64, u8)> = vec![
        (T0 + 1_000, 1),
        (T0 + 2_000, 2),
        (T0 + 3_000, 3),
        (T0 + 3_000, 8),
        (T0 + 4_000, 4),
        (T0 + 5_000, 5),
        (T0 + 6_000, 6),
        (T0 + 7_000, 7),
    ];
    assert_eq!(seen, expected);
}

/// Persons and non-motor vehicles among the cars: a class filter returns only that class,
/// paged like any other passes.
pub async fn passes_filter_by_object_class(backend: &impl Backend) {
    let classes = [
        ObjectClass::Vehicle,
        ObjectClass::Person,
        ObjectClass::NonMotor,
        ObjectClass::Person,
        ObjectClass::Vehicle,
        ObjectClass::Person,
    ];
    let events: Vec<Detection> = classes
        .iter()
        .zip(1u8..)
        .map(|(&class, n)| {
            let mut event = detection(n, &format!("粤B0000{n}"), T0 + i64::from(n) * 1_000, CAMERA);
            event.object_class = class;
            if class != ObjectClass::Vehicle {
                event.plate.clear();
                event.subject_key.clear();
            }
            event
        })
        .collect();
    backend.write(events).await;
    let page = |class, after, limit| async move {
        backend
            .store()
            .passes(
                &[CAMERA.to_string()],
                T0,
                T0 + 60_000,
                &PassFilter::class(class),
                after,
                limit,
            )
            .await
            .expect("passes")
            .iter()
            .map(|p| (p.event_id.0[0], p.object_class))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        page(Some(ObjectClass::Person), None, 10).await,
        vec![
            (2, ObjectClass::Person),
            (4, ObjectClass::Person),
            (6, ObjectClass::Person)
        ]
    );
    assert_eq!(
        page(Some(ObjectClass::NonMotor), None, 10).await,
        vec![(3, ObjectClass::NonMotor)]
    );
    assert_eq!(
        page(Some(ObjectClass::Vehicle), None, 10).await,
        vec![(1, ObjectClass::Vehicle), (5, ObjectClass::Vehicle)]
    );
    assert_eq!(page(None, None, 10).await.len(), 6);
    // A full page of persons ends at event 4; the next starts after it.
    let after = PassCursor {
        captured_at_ms: T0 + 4_000,
        event_id: EventId([4; 16]),
    };
    assert_eq!(
        page(Some(ObjectClass::Person), None, 2).await,
        vec![(2, ObjectClass::Person), (4, ObjectClass::Person)]
    );
    assert_eq!(
        page(Some(ObjectClass::Person), Some(after), 2).await,
        vec![(6, ObjectClass::Person)]
    );
}

/// Vehicle attributes (and per-character confidences) come back from both reads exactly as
/// written; a detection without them reads them as unknown.
pub async fn attributes_round_trip(backend: &impl Backend) {
    let key = "粤B77777";
    let full = detection(1, key, T0, CAMERA);
    let mut other = detection(2, key, T0 + 1_000, CAMERA);
    other.attributes = VehicleAttributes {
        color: 15,
        kind: 6,
        plate_color: 15,
        direction: 8,
        speed_kmh: 399.75,
        brand: "Mercedes-Benz ·奔驰".into(),
    };
    other.plate_char_confidence = (0..16).map(|i| i * 6).collect();
    let mut bare = detection(3, key, T0 + 2_000, CAMERA);
    bare.attributes = VehicleAttributes::default();
    bare.plate_char_confidence.clear();
    let events = vec![full, other, bare];
    backend.write(events.clone()).await;
    let expected: Vec<StoredSighting> = events.iter().map(StoredSighting::from_detection).collect();
    let by_key = backend
        .store()
        .sightings(&[key.to_string()], T0, T0 + 10_000, 100)
        .await
        .expect("sightings");
    assert_eq!(by_key, expected, "sightings carry the attributes");
    let by_camera = backend
        .store()
        .passes(
            &[CAMERA.to_string()],
            T0,
            T0 + 10_000,
            &PassFilter::default(),
            None,
            100,
        )
        .await
        .expect("passes");
    assert_eq!(by_camera, expected, "passes carry the attributes");
}

/// Attribute filters of passes, alone and together, applied before the page is cut: a
/// page is full whenever more matches follow, and the cursor pages through the matches.
pub async fn passes_filter_by_attributes(backend: &impl Backend) {
    let mut events = Vec::new();
    for n in 1..=12u8 {
        let mut event = detection(n, &format!("粤C{n:05}"), T0 + i64::from(n) * 1_000, CAMERA);
        event.attributes = VehicleAttributes {
            color: n % 3 + 1,
            kind: n % 2 + 1,
            plate_color: if n % 4 == 0 { 5 } else { 1 },
            direction: if n <= 6 { 3 } else { 7 },
            speed_kmh: f32::from(n),
            brand: if n % 3 == 0 {
                "比亚迪".into()
            } else {
                "大众".into()
            },
        };
        events.push(event);
    }
    // In several writes, so a backend with parts holds the matches in several of them.
    for chunk in events.chunks(3) {
        backend.write(chunk.to_vec()).await;
    }
    let page = |filter: PassFilter, after: Option<PassCursor>, limit: usize| async move {
        backend
            .store()
            .passes(
                &[CAMERA.to_string()],
                T0,
                T0 + 60_000,
                &filter,
                after,
                limit,
            )
            .await
            .expect("passes")
    };
    let ids = |rows: &[StoredSighting]| rows.iter().map(|s| s.event_id.0[0]).collect::<Vec<_>>();
    let expect = |filter: &PassFilter| {
        events
            .iter()
            .map(StoredSighting::from_detection)
            .filter(|s| filter.matches(s))
            .map(|s| s.event_id.0[0])
            .collect::<Vec<_>>()
    };
    let filters = [
        PassFilter {
            plate_color: Some(5),
            ..PassFilter::default()
        },
        PassFilter {
            vehicle_color: Some(2),
            ..PassFilter::default()
        },
        PassFilter {
            vehicle_type: Some(1),
            direction: Some(7),
            ..PassFilter::default()
        },
        PassFilter {
            vehicle_brand: Some("比亚迪".into()),
            object_class: Some(ObjectClass::Vehicle),
            ..PassFilter::default()
        },
        PassFilter {
            vehicle_brand: Some("比亚".into()),
            ..PassFilter::default()
        },
        PassFilter {
            direction: Some(1),
            ..PassFilter::default()
        },
    ];
    for filter in filters {
        let all = expect(&filter);
        assert_eq!(
            ids(&page(filter.clone(), None, 100).await),
            all,
            "{filter:?}"
        );
        // Two at a time: full pages while matches remain, each match once.
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let rows = page(filter.clone(), after, 2).await;
            assert!(
                rows.len() == 2 || seen.len() + rows.len() == all.len(),
                "{filter:?}"
            );
            seen.extend(ids(&rows));
            let Some(last) = rows.last() else { break };
            after = Some(PassCursor {
                captured_at_ms: last.captured_at_ms,
                event_id: last.event_id,
            });
        }
        assert_eq!(seen, all, "{filter:?}");
    }
    assert_eq!(
        ids(&page(
            PassFilter {
                plate_color: Some(5),
                ..PassFilter::default()
            },
            None,
            100
        )
        .await),
        vec![4, 8, 12]
    );
}

fn audit_entry(n: u64, user: &str, case_id: &str, kind: &str, at_ms: i64) -> AuditEntry {
    AuditEntry {
        at_ms,
        user: user.into(),
        role: "investigator".into(),
        case_id: case_id.into(),
        reason: "contract".into(),
        kind: kind.into(),
        parameters_json: "{}".into(),
        result_count: n,
        client_addr: "127.0.0.1:1".into(),
    }
}

fn keys(records: &[AuditRecord]) -> Vec<(String, u64)> {
    records.iter().map(|r| (r.node_id.clone(), r.seq)).collect()
}

pub async fn audit_records_read_back_as_an_intact_chain(backend: &impl Backend) {
    let entries: Vec<AuditEntry> = (0..5)
        .map(|n| {
            let user = if n % 2 == 0 { "ivy" } else { "sam" };
            audit_entry(n, user, &format!("CASE-{}", n % 2), "track", T0 + n as i64)
        })
        .collect();
    let written = backend.append_audit("node-1", entries).await;
    let all = backend.store().all_audit_records().await.expect("audit");
    assert_eq!(all, written);
    let report = verify_all(all);
    assert!(report.broken.is_empty(), "{:?}", report.broken);
    let ivy = backend
        .store()
        .audit_records(
            &AuditFilter {
                user: Some("ivy".into()),
                ..AuditFilter::default()
            },
            None,
            100,
        )
        .await
        .expect("by user");
    assert_eq!(
        ivy.iter().map(|r| r.seq).collect::<Vec<_>>(),
        vec![5, 3, 1],
        "newest first"
    );
    assert_eq!(ivy[0], written[4], "read back intact");
    let case = backend
        .store()
        .audit_records(
            &AuditFilter {
                case_id: Some("CASE-1".into()),
                ..AuditFilter::default()
            },
            None,
            1,
        )
        .await
        .expect("by case");
    assert_eq!(case.len(), 1);
    assert_eq!(case[0].seq, 4, "the newest record of the case");
}

/// The audit listing: filters in storage (user, case, kind, `[from_ms, to_ms)`), newest
/// first, and a cursor that visits every record exactly once although many records of
/// several chains share one instant.
pub async fn audit_pages_newest_first_through_every_record_once(backend: &impl Backend) {
    let mut written = Vec::new();
    for (chain, node) in ["node-a", "node-b", "node-c"].into_iter().enumerate() {
        let entries: Vec<AuditEntry> = (0..40u64)
            .map(|i| {
                let n = i * 3 + chain as u64;
                let user = if n.is_multiple_of(4) {
                    "ivy"
                } else {
                    "mallory"
                };
                let kind = if n.is_multiple_of(3) {
                    "passes"
                } else {
                    "track"
                };
                // 25 records (of all three chains) share each instant.
                audit_entry(
                    n,
                    user,
                    &format!("CASE-{}", n % 5),
                    kind,
                    T0 + (n / 25) as i64,
                )
            })
            .collect();
        written.extend(backend.append_audit(node, entries).await);
    }
    let newest_first = |mut records: Vec<AuditRecord>| {
        records.sort_by(|a, b| AuditCursor::of(b).cmp(&AuditCursor::of(a)));
        records
    };
    let page_through = |filter: AuditFilter, limit: usize| async move {
        let mut seen: Vec<AuditRecord> = Vec::new();
        let mut after: Option<AuditCursor> = None;
        for _ in 0..1_000 {
            let page = backend
                .store()
                .audit_records(&filter, after.as_ref(), limit)
                .await
                .expect("audit page");
            assert!(page.len() <= limit);
            let Some(last) = page.last() else { break };
            after = Some(AuditCursor::of(last));
            seen.extend(page);
        }
        seen
    };

    // Everything, seven at a time: each record once, newest first, read back intact.
    let everything = AuditFilter::default();
    let all = page_through(everything.clone(), 7).await;
    assert_eq!(all.len(), 120);
    assert_eq!(all, newest_first(written.clone()));
    assert_eq!(all[0].entry.at_ms, T0 + 4);
    // One page holding all of it, and a page size of one, agree.
    assert_eq!(
        backend
            .store()
            .audit_records(&everything, None, 1_000)
            .await
            .expect("one page"),
        all
    );
    assert_eq!(keys(&page_through(everything, 1).await), keys(&all));

    // Filters are applied before the page is cut, alone and together.
    let expect = |keep: &dyn Fn(&AuditEntry) -> bool| {
        newest_first(written.iter().filter(|r| keep(&r.entry)).cloned().collect())
    };
    let user = AuditFilter {
        user: Some("ivy".into()),
        ..AuditFilter::default()
    };
    assert_eq!(page_through(user, 4).await, expect(&|e| e.user == "ivy"));
    let case_kind = AuditFilter {
        case_id: Some("CASE-2".into()),
        kind: Some("passes".into()),
        ..AuditFilter::default()
    };
    assert_eq!(
        page_through(case_kind, 2).await,
        expect(&|e| e.case_id == "CASE-2" && e.kind == "passes")
    );
    let window = AuditFilter {
        user: Some("mallory".into()),
        from_ms: Some(T0 + 1),
        to_ms: Some(T0 + 3),
        ..AuditFilter::default()
    };
    let in_window = page_through(window, 6).await;
    assert_eq!(
        in_window,
        expect(&|e| e.user == "mallory" && (T0 + 1..T0 + 3).contains(&e.at_ms))
    );
    assert!(!in_window.is_empty());
    let nothing = AuditFilter {
        kind: Some("retention".into()),
        ..AuditFilter::default()
    };
    assert!(page_through(nothing, 5).await.is_empty());
}

/// Detections of `key` with event ids `[n; 16]`: `old` nine days before [`T0`], `new` just
/// after it, written two at a time.
async fn write_old_and_new(
    backend: &impl Backend,
    key: &str,
    old: std::ops::RangeInclusive<u8>,
    new: std::ops::RangeInclusive<u8>,
) {
    const DAY: i64 = 86_400_000;
    let old: Vec<Detection> = old
        .map(|n| detection(n, key, T0 - 9 * DAY + i64::from(n) * 60_000, CAMERA))
        .collect();
    let new: Vec<Detection> = new
        .map(|n| detection(n, key, T0 + i64::from(n) * 60_000, CAMERA))
        .collect();
    for chunk in old.chunks(2).chain(new.chunks(2)) {
        backend.write(chunk.to_vec()).await;
    }
}

/// Rows before the cutoff go (with their snapshots), rows after it stay, the audit log is
/// never touched.
pub async fn retention_removes_only_older_rows(backend: &impl Backend) {
    const DAY: i64 = 86_400_000;
    let key = "粤B54321";
    let cutoff = T0 - DAY;
    write_old_and_new(backend, key, 1..=4, 11..=14).await;
    let audit = backend
        .append_audit(
            "node-1",
            vec![AuditEntry {
                at_ms: T0 - 9 * DAY,
                user: "ops".into(),
                role: "operator".into(),
                case_id: "C-9".into(),
                reason: "before retention".into(),
                kind: "track".into(),
                parameters_json: "{}".into(),
                result_count: 0,
                client_addr: "test".into(),
            }],
        )
        .await;
    let window = (T0 - 30 * DAY, T0 + DAY);
    let before = backend
        .store()
        .sightings(&[key.to_string()], window.0, window.1, 100)
        .await
        .expect("sightings");
    assert_eq!(before.len(), 8);
    assert!(
        backend
            .store()
            .snapshot(EventId([1; 16]))
            .await
            .expect("snapshot")
            .is_some()
    );

    backend.delete_before(cutoff, &BTreeSet::new()).await;

    let after = backend
        .store()
        .sightings(&[key.to_string()], window.0, window.1, 100)
        .await
        .expect("sightings");
    let ids: Vec<u8> = after.iter().map(|s| s.event_id.0[0]).collect();
    assert_eq!(
        ids,
        vec![11, 12, 13, 14],
        "only rows at or after the cutoff remain"
    );
    assert!(
        backend
            .store()
            .snapshot(EventId([1; 16]))
            .await
            .expect("snapshot")
            .is_none(),
        "the old thumbnail went with its detection"
    );
    let passes = backend
        .store()
        .passes(
            &[CAMERA.to_string()],
            window.0,
            window.1,
            &PassFilter::default(),
            None,
            100,
        )
        .await
        .expect("passes");
    assert_eq!(passes.len(), 4);
    let records = backend.store().all_audit_records().await.expect("audit");
    assert_eq!(records, audit, "retention never touches the audit log");
}

/// Several camera windows read at once: each row inside any window comes once (also when
/// windows overlap), in `(captured_at_ms, event_id)` order, the filter applies, rows outside
/// every window (other cameras, other times) stay out, and `limit` cuts the earliest rows.
pub async fn passes_in_reads_each_window_once(backend: &impl Backend) {
    const OTHER: &str = "44030000001310000002";
    const THIRD: &str = "44030000001310000003";
    let mut events = Vec::new();
    for n in 1..=30u8 {
        let camera = [CAMERA, OTHER, THIRD][usize::from(n % 3)];
        let mut event = detection(n, &format!("粤D{n:05}"), T0 + i64::from(n) * 10_000, camera);
        event.attributes.color = n % 2 + 1;
        events.push(event);
    }
    for chunk in events.chunks(7) {
        backend.write(chunk.to_vec()).await;
    }
    let windows = [
        // CAMERA and OTHER over the first 150 s ...
        CameraWindow {
            cameras: vec![CAMERA.into(), OTHER.into()],
            from_ms: T0,
            to_ms: T0 + 150_000,
        },
        // ... overlapping OTHER alone over 100-250 s, and THIRD around 200 s.
        CameraWindow {
            cameras: vec![OTHER.into()],
            from_ms: T0 + 100_000,
            to_ms: T0 + 250_000,
        },
        CameraWindow {
            cameras: vec![THIRD.into()],
            from_ms: T0 + 190_000,
            to_ms: T0 + 211_000,
        },
        CameraWindow {
            cameras: Vec::new(),
            from_ms: T0,
            to_ms: T0 + 300_000,
        },
    ];
    let inside = |s: &StoredSighting| {
        windows.iter().any(|w| {
            w.cameras.contains(&s.camera_id) && (w.from_ms..w.to_ms).contains(&s.captured_at_ms)
        })
    };
    let expect = |filter: &PassFilter| {
        events
            .iter()
            .map(StoredSighting::from_detection)
            .filter(|s| inside(s) && filter.matches(s))
            .collect::<Vec<_>>()
    };
    for filter in [
        PassFilter::default(),
        PassFilter {
            vehicle_color: Some(2),
            ..PassFilter::default()
        },
    ] {
        let all = backend
            .store()
            .passes_in(&windows, &filter, 1_000)
            .await
            .expect("passes_in");
        let expected = expect(&filter);
        assert!(expected.len() > 5, "the fixture reaches into every window");
        assert_eq!(all, expected, "{filter:?}");
        let first = backend
            .store()
            .passes_in(&windows, &filter, 5)
            .await
            .expect("passes_in");
        assert_eq!(first, expected[..5], "limit keeps the earliest");
    }
    assert!(
        backend
            .store()
            .passes_in(&[], &PassFilter::default(), 10)
            .await
            .expect("no windows")
            .is_empty()
    );
}

fn case_version(case_id: &str, version: u64, status: CaseStatus) -> Case {
    Case {
        case_id: case_id.into(),
        title: format!("{case_id} v{version}"),
        category: "robbery".into(),
        assigned: vec!["alice".into(), "bob".into()],
        status,
        opened_by: "sam".into(),
        opened_at_ms: T0,
        ends_at_ms: T0 + 30 * 86_400_000,
        updated_by: "sam".into(),
        updated_at_ms: T0 + i64::try_from(version).unwrap(),
        version,
    }
}

/// The registry answers the highest version of each case, whatever order versions were
/// stored in; holds placed twice are listed once, ordered by case then event id.
pub async fn cases_keep_their_latest_version(backend: &impl Backend) {
    let store = backend.store();
    assert_eq!(store.case("C-1").await.expect("case"), None);
    let v1 = case_version("C-1", 1, CaseStatus::Open);
    let v2 = case_version("C-1", 2, CaseStatus::Closed);
    let other = case_version("B-7", 1, CaseStatus::Open);
    store.put_case(&v1).await.expect("put");
    store.put_case(&other).await.expect("put");
    assert_eq!(store.case("C-1").await.expect("case"), Some(v1.clone()));
    store.put_case(&v2).await.expect("put");
    // A late or repeated version is a conflict (another change came first) and changes
    // nothing.
    for stale in [&v1, &v2] {
        let refused = store
            .put_case(stale)
            .await
            .expect_err("not the newest version");
        assert!(
            matches!(refused, crate::StorageError::Conflict { .. }),
            "{refused}"
        );
    }
    assert_eq!(store.case("C-1").await.expect("case"), Some(v2.clone()));
    assert_eq!(store.cases().await.expect("cases"), vec![other, v2]);

    let hold = |case_id: &str, n: u8| Hold {
        case_id: case_id.into(),
        event_id: EventId([n; 16]).to_hex(),
        placed_by: "sam".into(),
        placed_at_ms: T0,
    };
    assert!(store.holds().await.expect("holds").is_empty());
    store
        .put_holds(&[hold("C-1", 2), hold("B-7", 9)])
        .await
        .expect("hold");
    store
        .put_holds(&[hold("C-1", 2), hold("C-1", 1)])
        .await
        .expect("hold again");
    assert_eq!(
        store.holds().await.expect("holds"),
        vec![hold("B-7", 9), hold("C-1", 1), hold("C-1", 2)]
    );
}

/// Retention with holds in force keeps exactly the held rows among the old ones (and the
/// held event's snapshot), removes every other old row, keeps every new row, and a second
/// run changes nothing; with the holds lifted the held rows go too.
pub async fn retention_keeps_exactly_the_held_rows(backend: &impl Backend) {
    const DAY: i64 = 86_400_000;
    let key = "粤B54321";
    let cutoff = T0 - DAY;
    write_old_and_new(backend, key, 1..=6, 11..=12).await;
    let mut held: BTreeSet<String> = [1u8, 4]
        .iter()
        .map(|n| EventId([*n; 16]).to_hex())
        .collect();
    // Thousands of holds of events stored nowhere: the SQL that keeps held rows grows past
    // ClickHouse's default 256 KiB query size.
    held.extend((0..9_000u16).map(|i| {
        let mut id = [0xfe; 16];
        id[..2].copy_from_slice(&i.to_be_bytes());
        EventId(id).to_hex()
    }));
    let window = (T0 - 30 * DAY, T0 + DAY);
    let ids = || async {
        backend
            .store()
            .sightings(&[key.to_string()], window.0, window.1, 100)
            .await
            .expect("sightings")
            .iter()
            .map(|s| s.event_id.0[0])
            .collect::<Vec<u8>>()
    };
    let pass_ids = || async {
        backend
            .store()
            .passes(
                &[CAMERA.to_string()],
                window.0,
                window.1,
                &PassFilter::default(),
                None,
                100,
            )
            .await
            .expect("passes")
            .iter()
            .map(|s| s.event_id.0[0])
            .collect::<Vec<u8>>()
    };
    for run in 0..2 {
        backend.delete_before(cutoff, &held).await;
        assert_eq!(
            ids().await,
            vec![1, 4, 11, 12],
            "run {run}: held and new rows remain"
        );
        assert_eq!(
            pass_ids().await,
            vec![1, 4, 11, 12],
            "run {run}: by camera too"
        );
        assert!(
            backend
                .store()
                .snapshot(EventId([1; 16]))
                .await
                .expect("snapshot")
                .is_some(),
            "run {run}: the held event's snapshot stays"
        );
    }
    backend.delete_before(cutoff, &BTreeSet::new()).await;
    assert_eq!(ids().await, vec![11, 12], "lifted holds keep nothing");
    assert_eq!(pass_ids().await, vec![11, 12]);
}

/// Open `case_id` in `store` directly (a test fixture standing for a supervisor's
/// `camtrail cases open`): category `robbery`, `assigned` investigators, ending in 30 days.
pub async fn open_case(store: &impl CaseStore, case_id: &str, assigned: &[&str]) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let case = Case {
        case_id: case_id.into(),
        title: format!("test case {case_id}"),
        category: "robbery".into(),
        assigned: camtrail_model::case::normalize_users(assigned.iter().map(|u| u.to_string())),
        status: CaseStatus::Open,
        opened_by: "fixture".into(),
        opened_at_ms: now,
        ends_at_ms: now + 30 * 86_400_000,
        updated_by: "fixture".into(),
        updated_at_ms: now,
        version: 1,
    };
    store.put_case(&case).await.expect("open a test case");
}

/// Watchlist entries: the highest version of each, whatever order versions were stored in;
/// a pattern plate (with `?`, `*`) and Chinese text survive the round trip.
pub async fn watchlist_entries_keep_their_latest_version(backend: &impl Backend) {
    use camtrail_model::watchlist::{Entry, EntryState};
    let store = backend.store();
    let entry = |id: &str, version: u64, state: EntryState| Entry {
        entry_id: id.into(),
        title: "被盗车辆 'stolen' \\ car".into(),
        plate: "粤B1?34*".into(),
        fuzzy: false,
        case_id: "C-1".into(),
        reason: "stolen on 1 March".into(),
        applicant: "ivy".into(),
        priority: 1,
        valid_from_ms: T0,
        valid_until_ms: T0 + 86_400_000,
        cameras: vec![CAMERA.into()],
        districts: Vec::new(),
        recipients: vec!["ivy".into(), "sam".into()],
        webhook_url: Some("http://alerts.example:8080/hook".into()),
        state,
        approved_by: (version > 1).then(|| "sam".to_string()),
        revoked: None,
        updated_at_ms: T0 + i64::try_from(version).unwrap(),
        version,
    };
    assert_eq!(store.entry("W-1").await.expect("entry"), None);
    let (v1, v2) = (
        entry("W-1", 1, EntryState::Requested),
        entry("W-1", 2, EntryState::Approved),
    );
    let other = entry("W-0", 1, EntryState::Requested);
    store.put_entry(&v2).await.expect("put");
    assert!(matches!(
        store.put_entry(&v1).await,
        Err(crate::StorageError::Conflict { .. })
    ));
    store.put_entry(&other).await.expect("put");
    assert_eq!(store.entry("W-1").await.expect("entry"), Some(v2.clone()));
    assert_eq!(store.entries().await.expect("entries"), vec![other, v2]);

    // Hits: one per (entry, event) however often delivered, reviewed once; an entry's hits
    // are its own (W-1's range does not reach W-10's).
    use camtrail_model::watchlist::{Alert, HitRecord, MatchKind, Outcome};
    let hit = |entry_id: &str, n: u8| {
        HitRecord::new(Alert {
            entry_id: entry_id.into(),
            title: "t".into(),
            case_id: "C-1".into(),
            priority: 1,
            audience: vec!["ivy".into()],
            kind: MatchKind::Fuzzy,
            confidence: 0.5,
            event_id: EventId([n; 16]).to_hex(),
            plate_read: "粤B1Z345".into(),
            camera_id: CAMERA.into(),
            district: "Futian".into(),
            lat: 22.5,
            lon: 114.0,
            captured_at_ms: T0,
            has_snapshot: true,
            matched_at_ms: T0 + 1,
            past: false,
            webhook_url: None,
        })
    };
    let (a, b, c) = (hit("W-1", 1), hit("W-1", 2), hit("W-10", 3));
    for h in [&a, &b, &c] {
        store.put_hit(h).await.expect("hit");
    }
    assert!(matches!(
        store.put_hit(&a).await,
        Err(crate::StorageError::Conflict { .. })
    ));
    let mut reviewed = a.clone();
    reviewed.outcome = Outcome::Confirmed;
    reviewed.reviewed_by = Some("ivy".into());
    reviewed.version = 2;
    store.put_hit(&reviewed).await.expect("review");
    assert_eq!(
        store.hits("W-1").await.expect("hits"),
        vec![reviewed.clone(), b]
    );
    assert_eq!(
        store.hit(&a.hit_id).await.expect("hit"),
        Some(reviewed.clone())
    );
    assert_eq!(store.hits("W-10").await.expect("hits"), vec![c.clone()]);

    // A batch (the alert role's): new ids stored once, a repeat within the batch and the
    // stored ones (reviewed or not) left as they are.
    let (d, e) = (hit("W-1", 4), hit("W-1", 5));
    let batch = [a.clone(), d.clone(), c.clone(), d.clone(), e.clone()];
    assert_eq!(store.put_new_hits(&batch).await.expect("batch"), 2);
    assert_eq!(store.put_new_hits(&batch).await.expect("again"), 0);
    assert_eq!(store.put_new_hits(&[]).await.expect("empty"), 0);
    assert_eq!(
        store.hits("W-1").await.expect("hits"),
        vec![reviewed, hit("W-1", 2), d, e]
    );
}
