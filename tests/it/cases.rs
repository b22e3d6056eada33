//! The case registry on a query node (embedded store), over HTTP and gRPC: searches run
//! only under a case that lets their user search now (403 and no audit record otherwise),
//! supervisors open, assign, extend and close cases and place legal holds, and every
//! change is an audit record.

use camtrail_model::ObjectClass;
use camtrail_model::case::{Case, CaseStatus};
use camtrail_proto::v1;
use camtrail_proto::v1::query_client::QueryClient;
use camtrail_query::client::{ClientError, get, post_json};
use camtrail_storage::{CaseStore, SightingStore};
use serde_json::{Value, json};

use crate::query_node::{CAMERA_A, SmallNode, event, small_node, with_token};

const DAY_MS: i64 = 86_400_000;

fn code(result: Result<Vec<u8>, ClientError>) -> (u16, String) {
    match result {
        Err(ClientError::Refused { status, code, .. }) => (status, code),
        Ok(body) => (200, String::from_utf8_lossy(&body).into_owned()),
        Err(other) => panic!("transport failure: {other}"),
    }
}

fn answer(result: Result<Vec<u8>, ClientError>) -> Value {
    let body = result.unwrap_or_else(|e| panic!("request refused: {e}"));
    serde_json::from_slice(&body).expect("JSON answer")
}

async fn records(node: &SmallNode) -> usize {
    node.store
        .all_audit_records()
        .await
        .expect("audit records")
        .len()
}

/// A track search for `case` as `token`: the status and the error code.
async fn search(node: &SmallNode, token: &str, case: &str) -> (u16, String) {
    let now = camtrail_common::now_ms();
    let path = format!(
        "/v1/track?plate=%E7%B2%A4B00001&from={}&to={}&case={case}&reason=case%20test",
        now - DAY_MS,
        now + 60_000
    );
    let (status, body) = code(get(&node.http, &path, token).await);
    if status == 200 {
        (200, String::new())
    } else {
        (status, body)
    }
}

async fn post(node: &SmallNode, token: &str, path: &str, body: Value) -> (u16, String) {
    let (status, body) = code(post_json(&node.http, path, token, &body).await);
    if status == 200 {
        (200, String::new())
    } else {
        (status, body)
    }
}

fn open_body(case: &str, assigned: &[&str], ends_at_ms: i64) -> Value {
    json!({
        "case": case, "title": "robbery at a petrol station", "category": "robbery",
        "assigned": assigned, "ends": ends_at_ms, "reason": "opened for the test",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn searches_run_only_under_cases_that_let_their_user_search() {
    let now = camtrail_common::now_ms();
    let node = small_node(vec![event(
        1,
        ObjectClass::Vehicle,
        CAMERA_A,
        now - 3_600_000,
        false,
    )])
    .await;
    let (ivy, sam) = (node.investigator.as_str(), node.supervisor.as_str());

    // A supervisor opens a case without assigning the investigator.
    let opened = answer(
        post_json(
            &node.http,
            "/v1/cases",
            sam,
            &open_body("CASE-NEW", &[], now + 10 * DAY_MS),
        )
        .await,
    );
    assert_eq!(opened["status"], "open");
    assert_eq!(opened["version"], 1);
    assert!(opened["audit"]["seq"].as_u64().is_some(), "{opened}");

    // Not assigned, unknown case, closed case: 403 and no audit record, nothing read.
    let before = records(&node).await;
    assert_eq!(
        search(&node, ivy, "CASE-NEW").await,
        (403, "case_not_assigned".into())
    );
    assert_eq!(
        search(&node, ivy, "NO-SUCH-CASE").await,
        (403, "case_not_open".into())
    );
    assert_eq!(
        search(&node, sam, "NO-SUCH-CASE").await,
        (403, "case_not_open".into())
    );
    assert_eq!(
        records(&node).await,
        before,
        "a refused search leaves no record"
    );

    // A supervisor may search under a case without being assigned; once assigned, so may
    // the investigator.
    assert_eq!(search(&node, sam, "CASE-NEW").await, (200, String::new()));
    assert_eq!(
        post(
            &node,
            sam,
            "/v1/cases/CASE-NEW/assign",
            json!({"add": ["ivy"], "reason": "ivy joins"})
        )
        .await,
        (200, String::new())
    );
    assert_eq!(search(&node, ivy, "CASE-NEW").await, (200, String::new()));

    // After its end date: the investigator is refused, the supervisor may (to review it
    // before extending). The end lies in the past only through the store (nobody can
    // open such a case through the API).
    let ended = Case {
        case_id: "CASE-ENDED".into(),
        title: "ended".into(),
        category: "theft".into(),
        assigned: vec!["ivy".into()],
        status: CaseStatus::Open,
        opened_by: "sam".into(),
        opened_at_ms: now - 40 * DAY_MS,
        ends_at_ms: now - DAY_MS,
        updated_by: "sam".into(),
        updated_at_ms: now - 40 * DAY_MS,
        version: 1,
    };
    node.store.put_case(&ended).await.expect("put");
    let before = records(&node).await;
    assert_eq!(
        search(&node, ivy, "CASE-ENDED").await,
        (403, "case_ended".into())
    );
    assert_eq!(
        records(&node).await,
        before,
        "a refused search leaves no record"
    );
    assert_eq!(search(&node, sam, "CASE-ENDED").await, (200, String::new()));

    // Extensions need a reason, a later end, within 90 days.
    let extend = |ends: i64, reason: &str| json!({"ends": ends, "reason": reason});
    let before = records(&node).await;
    assert_eq!(
        post(
            &node,
            sam,
            "/v1/cases/CASE-ENDED/extend",
            extend(now + DAY_MS, "")
        )
        .await,
        (400, "missing_reason".into())
    );
    assert_eq!(
        post(
            &node,
            sam,
            "/v1/cases/CASE-ENDED/extend",
            extend(now + 91 * DAY_MS, "too long")
        )
        .await,
        (400, "invalid_case_end".into())
    );
    assert_eq!(
        records(&node).await,
        before,
        "a refused change leaves no record"
    );
    assert_eq!(
        post(
            &node,
            sam,
            "/v1/cases/CASE-ENDED/extend",
            extend(now + 30 * DAY_MS, "suspect identified, warrant pending")
        )
        .await,
        (200, String::new())
    );
    assert_eq!(search(&node, ivy, "CASE-ENDED").await, (200, String::new()));

    // Who may change cases, and bad cases.
    for (token, body, expected) in [
        (
            ivy,
            open_body("CASE-IVY", &["ivy"], now + DAY_MS),
            (403, "forbidden"),
        ),
        (
            sam,
            open_body("CASE-NEW", &[], now + DAY_MS),
            (409, "case_exists"),
        ),
        (
            sam,
            open_body("CASE-PAST", &[], now - DAY_MS),
            (400, "invalid_case_end"),
        ),
        (
            sam,
            json!({"case": "CASE-X", "title": "t", "category": "jaywalking",
                   "ends": now + DAY_MS, "reason": "r"}),
            (400, "unknown_category"),
        ),
        (
            sam,
            json!({"case": "CASE-X", "title": "", "category": "theft",
                   "ends": now + DAY_MS, "reason": "r"}),
            (400, "invalid_case_field"),
        ),
        (
            sam,
            json!({"case": "CASE X", "title": "t", "category": "theft",
                   "ends": now + DAY_MS, "reason": "r"}),
            (400, "invalid_case"),
        ),
    ] {
        let (status, code) = post(&node, token, "/v1/cases", body.clone()).await;
        assert_eq!((status, code.as_str()), expected, "{body}");
    }

    // Investigators see the cases assigned to them, supervisors every case.
    let listed = |token: &str| {
        let token = token.to_string();
        let http = node.http.clone();
        async move {
            let all = answer(get(&http, "/v1/cases?status=open", &token).await);
            let mut ids: Vec<String> = all["cases"]
                .as_array()
                .expect("cases")
                .iter()
                .map(|c| c["case"].as_str().expect("id").to_string())
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        listed(ivy).await,
        ["C-1", "CASE-17", "CASE-9", "CASE-ENDED", "CASE-NEW"]
    );
    assert_eq!(
        listed(sam).await,
        ["C-1", "CASE-17", "CASE-9", "CASE-ENDED", "CASE-NEW"]
    );

    // Closing ends every search under the case and every further change.
    assert_eq!(
        post(
            &node,
            sam,
            "/v1/cases/CASE-NEW/close",
            json!({"reason": "solved"})
        )
        .await,
        (200, String::new())
    );
    assert_eq!(
        search(&node, ivy, "CASE-NEW").await,
        (403, "case_not_open".into())
    );
    assert_eq!(
        search(&node, sam, "CASE-NEW").await,
        (403, "case_not_open".into())
    );
    assert_eq!(
        post(
            &node,
            sam,
            "/v1/cases/CASE-NEW/extend",
            extend(now + DAY_MS * 5, "reopen?")
        )
        .await,
        (400, "case_closed".into())
    );
    assert!(!listed(ivy).await.contains(&"CASE-NEW".to_string()));

    // Every change of CASE-NEW is an audit record under that case, in order.
    let kinds: Vec<String> = node
        .store
        .all_audit_records()
        .await
        .expect("records")
        .into_iter()
        .filter(|r| r.entry.case_id == "CASE-NEW" && r.entry.kind.starts_with("case_"))
        .map(|r| r.entry.kind)
        .collect();
    assert_eq!(kinds, ["case_open", "case_assign", "case_close"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn holds_and_cases_over_grpc_and_http() {
    let now = camtrail_common::now_ms();
    let node = small_node(vec![event(
        7,
        ObjectClass::Vehicle,
        CAMERA_A,
        now - 3_600_000,
        false,
    )])
    .await;
    let (ivy, sam) = (node.investigator.as_str(), node.supervisor.as_str());
    let mut client = QueryClient::connect(node.grpc.clone())
        .await
        .expect("connect");

    // gRPC: open, list, assign, close.
    let opened = client
        .open_case(with_token(
            sam,
            v1::OpenCaseRequest {
                case_id: "CASE-G".into(),
                title: "hit and run on Binhe Rd".into(),
                category: "hit_and_run".into(),
                assigned: vec!["ivy".into()],
                ends_at_ms: now + 5 * DAY_MS,
                reason: "opened over gRPC".into(),
            },
        ))
        .await
        .expect("open")
        .into_inner();
    assert_eq!(opened.case.as_ref().map(|c| c.version), Some(1));
    assert!(!opened.audit_id.is_empty());
    let refused = client
        .open_case(with_token(
            ivy,
            v1::OpenCaseRequest {
                case_id: "CASE-H".into(),
                ..v1::OpenCaseRequest::default()
            },
        ))
        .await
        .expect_err("investigators do not open cases");
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    let listed = client
        .list_cases(with_token(ivy, v1::ListCasesRequest::default()))
        .await
        .expect("list")
        .into_inner();
    assert!(listed.cases.iter().any(|c| c.case_id == "CASE-G"));
    assert!(listed.categories.contains(&"hit_and_run".to_string()));
    let extended = client
        .change_case(with_token(
            sam,
            v1::ChangeCaseRequest {
                case_id: "CASE-G".into(),
                reason: String::new(),
                change: Some(v1::change_case_request::Change::ExtendToMs(
                    now + 9 * DAY_MS,
                )),
            },
        ))
        .await
        .expect_err("an extension without reason is refused");
    assert_eq!(extended.code(), tonic::Code::InvalidArgument);
    assert!(
        extended.message().contains("missing_reason"),
        "{extended:?}"
    );

    // Holds: supervisors place them under an open case, with a reason; listed on both
    // transports; a bad id, an investigator or a closed case is refused.
    let event_id = event(7, ObjectClass::Vehicle, CAMERA_A, 0, false).event_id;
    let placed = client
        .place_holds(with_token(
            sam,
            v1::PlaceHoldsRequest {
                case_id: "CASE-G".into(),
                event_ids: vec![event_id.as_bytes().to_vec()],
                reason: "exported for court".into(),
            },
        ))
        .await
        .expect("hold")
        .into_inner();
    assert_eq!(placed.holds.len(), 1);
    let by_http = answer(get(&node.http, "/v1/holds?case=CASE-G", sam).await);
    assert_eq!(by_http["holds"][0]["event_id"], event_id.to_hex());
    assert_eq!(
        code(get(&node.http, "/v1/holds", ivy).await),
        (403, "forbidden".to_string())
    );
    for (token, body, expected) in [
        (
            sam,
            json!({"case": "CASE-G", "event_ids": ["zz"], "reason": "r"}),
            (400, "invalid_event_id"),
        ),
        (
            sam,
            json!({"case": "CASE-G", "event_ids": [], "reason": "r"}),
            (400, "invalid_case_field"),
        ),
        (
            ivy,
            json!({"case": "CASE-G", "event_ids": [event_id.to_hex()], "reason": "r"}),
            (403, "forbidden"),
        ),
        (
            sam,
            json!({"case": "NO-SUCH", "event_ids": [event_id.to_hex()], "reason": "r"}),
            (403, "case_not_open"),
        ),
    ] {
        let (status, code) = post(&node, token, "/v1/holds", body.clone()).await;
        assert_eq!((status, code.as_str()), expected, "{body}");
    }
    let hold_records = node
        .store
        .all_audit_records()
        .await
        .expect("records")
        .into_iter()
        .filter(|r| r.entry.kind == "hold_place")
        .collect::<Vec<_>>();
    assert_eq!(hold_records.len(), 1, "only the placed hold is audited");
    assert!(
        hold_records[0]
            .entry
            .parameters_json
            .contains(&event_id.to_hex()),
        "the record names the held event"
    );

    let closed = client
        .change_case(with_token(
            sam,
            v1::ChangeCaseRequest {
                case_id: "CASE-G".into(),
                reason: "closed: charged".into(),
                change: Some(v1::change_case_request::Change::Close(true)),
            },
        ))
        .await
        .expect("close")
        .into_inner();
    assert_eq!(closed.case.map(|c| c.status), Some("closed".to_string()));
    // The held event is no longer held: retention would now take it.
    let held = camtrail_storage::retention::held_event_ids(&node.store)
        .await
        .expect("held");
    assert!(!held.contains(&event_id.to_hex()));
}
