//! `camtrail alert`: the distributed mode's watchlist role. A member of a Kafka consumer
//! group (`[alert] group_id`) on the detections topic: it decodes each record, matches it
//! against the entries in force (read from ClickHouse, again every `entries_reload_ms`),
//! stores each hit in ClickHouse `watchlist_hits`, and only then marks the record's offset
//! for commit. After a crash the group re-delivers what was not committed: at least once,
//! and a hit delivered twice is one stored hit (its id is `{entry}/{event}`, written
//! compare-and-set). Webhooks go out from the hub's broadcast, outside that guarantee: a
//! delivery cut short by a crash, or dropped because the sender fell behind, leaves the hit
//! in the store only (the stored hits are the record; webhooks are a notification). It scales by partitions like
//! the sink. Query nodes' `/v1/alerts/stream` does not see these hits yet: read them from
//! `GET /v1/alerts` or a webhook.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camtrail_clickhouse::ClickhouseStore;
use camtrail_model::CameraRegistry;
use camtrail_model::watchlist::HitRecord;
use camtrail_query::alerts::{Alerts, Sighted};
use camtrail_query::webhooks::{self, WebhookSettings};
use camtrail_storage::{StorageError, WatchlistStore};
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::{ClientConfig, Message};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// `[alert]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// The consumer group every alert role instance joins.
    pub group_id: String,
    /// How often the entries in force are read again from ClickHouse, ms.
    pub entries_reload_ms: u64,
    /// How long the group waits for a member that stopped answering (a crashed one)
    /// before its partitions move on, ms: shorter resumes sooner after a crash, too short
    /// evicts a member that only paused.
    pub session_timeout_ms: u64,
    /// Where a group without committed offsets starts: `latest` (new detections only; the
    /// approval's past-read check covers what came before) or `earliest`.
    pub auto_offset_reset: String,
}

impl Default for AlertConfig {
    fn default() -> Self {
        Self {
            group_id: "camtrail-alert".into(),
            entries_reload_ms: 5_000,
            session_timeout_ms: 10_000,
            auto_offset_reset: "latest".into(),
        }
    }
}

/// What a run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct AlertReport {
    /// Records read.
    pub records: u64,
    /// Records that could not be decoded (skipped; the sink dead-letters them).
    pub undecodable: u64,
    /// Hits stored (re-deliveries of a stored hit not counted).
    pub hits: u64,
}

/// Run the role until `stop` is cancelled.
pub async fn run(config: &Config, stop: CancellationToken) -> anyhow::Result<AlertReport> {
    let store = ClickhouseStore::new(&config.clickhouse);
    let registry =
        CameraRegistry::from_csv_path(&config.query.registry_path).with_context(|| {
            format!(
                "loading the camera registry {}",
                config.query.registry_path.display()
            )
        })?;
    let hub = Arc::new(Alerts::default());
    hub.set_registry(Arc::new(registry));
    let reload = |hub: Arc<Alerts>, store: ClickhouseStore| async move {
        match camtrail_storage::watchlist::entries_in_force(&store).await {
            Ok(entries) => {
                hub.replace_entries(entries);
                true
            }
            Err(error) => {
                tracing::warn!(%error, "watchlist entries not reloaded; the previous ones stay");
                false
            }
        }
    };
    anyhow::ensure!(
        reload(Arc::clone(&hub), store.clone()).await,
        "the watchlist entries could not be read from ClickHouse"
    );
    if let Some(settings) = WebhookSettings::from_config(&config.query.watchlist)? {
        tokio::spawn(webhooks::run(hub.subscribe(), settings));
    }
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", &config.alert.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", &config.alert.auto_offset_reset)
        .set(
            "session.timeout.ms",
            config.alert.session_timeout_ms.to_string(),
        )
        .create()
        .context("creating the alert consumer")?;
    consumer
        .subscribe(&[&config.kafka.detections_topic])
        .context("subscribing to the detections topic")?;
    tracing::info!(
        group = %config.alert.group_id,
        topic = %config.kafka.detections_topic,
        "alert role consuming"
    );
    let mut report = AlertReport::default();
    let mut every = tokio::time::interval(Duration::from_millis(
        config.alert.entries_reload_ms.max(100),
    ));
    loop {
        let message = tokio::select! {
            () = stop.cancelled() => break,
            _ = every.tick() => {
                reload(Arc::clone(&hub), store.clone()).await;
                continue;
            }
            message = consumer.recv() => message,
        };
        let message = match message {
            Ok(message) => message,
            Err(error) => {
                tracing::warn!(%error, "reading the detections topic failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        report.records += 1;
        match camtrail_proto::record::decode(message.payload().unwrap_or_default()) {
            Ok(detection) => {
                for alert in hub.check(&[Sighted::of(&detection)]) {
                    // Stored before the offset moves on: a crash re-delivers, never loses.
                    loop {
                        match store.put_hit(&HitRecord::new((*alert).clone())).await {
                            Ok(()) => {
                                report.hits += 1;
                                break;
                            }
                            Err(StorageError::Conflict { .. }) => break,
                            Err(error) => {
                                tracing::warn!(%error, "storing a hit failed; retrying");
                                tokio::select! {
                                    () = stop.cancelled() => return Ok(report),
                                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                                }
                            }
                        }
                    }
                }
            }
            Err(error) => {
                report.undecodable += 1;
                tracing::debug!(%error, "undecodable detection record skipped");
            }
        }
        if let Err(error) = consumer.store_offset_from_message(&message) {
            tracing::warn!(%error, "storing the consumed offset failed");
        }
    }
    // Commit what was stored before leaving the group.
    if let Err(error) = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync) {
        tracing::debug!(%error, "final commit");
    }
    tracing::info!(
        records = report.records,
        hits = report.hits,
        "alert role stopped"
    );
    Ok(report)
}
