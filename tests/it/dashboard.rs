//! The Grafana dashboard (`deploy/grafana/camtrail.json`) asks only for metrics the roles
//! export, with labels they carry: each role's metrics are registered as the nodes register
//! them, every family is given a child, and the Prometheus text they encode must name every
//! metric and every `by (…)` label of every panel's query. A renamed metric fails here, not
//! as an empty panel in a control room.

use std::collections::BTreeSet;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::registry::Registry;

/// The Prometheus text of the ingest, sink and query metrics, every family with a child.
fn exported() -> String {
    let mut registry = Registry::default();
    let ingest = camtrail_ingest::metrics::IngestMetrics::register(&mut registry);
    let sink = camtrail_sink::metrics::SinkMetrics::register(&mut registry);
    let query = camtrail_query::metrics::QueryMetrics::register(&mut registry);
    ingest
        .events_rejected
        .get_or_create(&camtrail_ingest::metrics::CodeLabel {
            code: "unknown_camera".into(),
        })
        .inc();
    ingest
        .batches
        .get_or_create(&camtrail_ingest::metrics::OutcomeLabel { outcome: "acked" })
        .inc();
    ingest
        .streams_cancelled
        .get_or_create(&camtrail_ingest::metrics::ReasonLabel {
            reason: "ack_timeout",
        })
        .inc();
    sink.rows_inserted
        .get_or_create(&camtrail_sink::metrics::TableLabel {
            table: "detections",
        })
        .inc();
    sink.retries
        .get_or_create(&camtrail_sink::metrics::RetryLabel {
            operation: "insert",
            class: "transient",
        })
        .inc();
    sink.consumer_lag
        .get_or_create(&camtrail_sink::metrics::PartitionLabel {
            topic: "camtrail.detections.v1".into(),
            partition: 0,
        })
        .set(1);
    query.observe(
        "track",
        &Ok::<(), camtrail_query::service::QueryError>(()),
        Duration::from_millis(3),
    );
    query.observe_audit(Duration::from_millis(1));
    let mut text = String::new();
    encode(&mut text, &registry).expect("encode");
    text
}

/// The metric names (`camtrail_…`) and the `by (…)` labels of one PromQL expression.
fn parts(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut names = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("camtrail_") {
        let name: String = rest[at..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        rest = &rest[at + name.len()..];
        names.insert(name);
    }
    let mut labels = BTreeSet::new();
    let mut rest = expr;
    while let Some(at) = rest.find("by (") {
        let inner = &rest[at + 4..];
        let end = inner.find(')').expect("closing parenthesis");
        for label in inner[..end].split(',') {
            labels.insert(label.trim().to_string());
        }
        rest = &inner[end..];
    }
    (names, labels)
}

#[test]
fn every_panel_asks_for_exported_metrics_and_labels() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/deploy/grafana/camtrail.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).expect("dashboard")).expect("JSON");
    let text = exported();
    let samples: Vec<&str> = text.lines().filter(|l| !l.starts_with('#')).collect();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let Some(targets) = panel["targets"].as_array() else {
            continue;
        };
        for target in targets {
            let expr = target["expr"].as_str().expect("expr");
            queries += 1;
            let (names, labels) = parts(expr);
            assert!(!names.is_empty(), "{expr}: no camtrail metric");
            for name in &names {
                let exported: Vec<&&str> = samples
                    .iter()
                    .filter(|s| {
                        s.starts_with(&format!("{name}{{")) || s.starts_with(&format!("{name} "))
                    })
                    .collect();
                assert!(
                    !exported.is_empty(),
                    "panel {:?} asks for {name}, which no role exports",
                    panel["title"]
                );
                for label in labels
                    .iter()
                    .filter(|l| !["le", "instance"].contains(&l.as_str()))
                {
                    assert!(
                        exported.iter().any(|s| s.contains(&format!("{label}=\""))),
                        "panel {:?}: {name} has no label {label}",
                        panel["title"]
                    );
                }
            }
        }
    }
    assert!(queries >= 10, "{queries} queries in the dashboard");
}
