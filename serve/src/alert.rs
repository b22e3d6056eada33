//! `camtrail alert`: the distributed mode's watchlist role. A member of a Kafka consumer
//! group (`[alert] group_id`) on the detections topic: it takes what the client holds (up
//! to a batch), decodes each record, matches it against the entries in force (read from
//! ClickHouse, again every `entries_reload_ms`), stores the batch's hits in ClickHouse
//! `watchlist_hits` (one lookup, one insert), publishes them to the alerts topic
//! (`acks=all`), and only then marks the records' offsets for commit. After a crash the
//! group re-delivers what was not committed: at least once, and a hit delivered twice is one
//! stored hit (its id is `{entry}/{event}`) and one more relayed copy, which subscribers
//! collapse by event id. Query nodes read the alerts topic ([`start_relay`]) and hand the
//! hits to their live streams (`/v1/alerts/stream`, gRPC `SubscribeAlerts`). Webhooks go
//! out from this role's hub, outside that guarantee: a delivery cut short by a crash, or
//! dropped because the sender fell behind, leaves the hit in the store only (the stored hits
//! are the record; webhooks are a notification). It scales by partitions like the sink.
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use camtrail_clickhouse::ClickhouseStore;
use camtrail_kafka::KafkaConfig;
use camtrail_model::CameraRegistry;
use camtrail_model::watchlist::Alert;
use camtrail_model::watchlist::HitRecord;
use camtrail_query::alerts::{Alerts, Sighted};
use camtrail_query::webhooks::{self, WebhookSettings};
use camtrail_storage::WatchlistStore;
use rdkafka::consumer::{Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

/// Records matched, stored and relayed as one batch at most: at open throttle, whole
/// fetches (at 430k events/s, about 9 stores a second in ClickHouse where batches of 5,000
/// made 86).
const BATCH: usize = 50_000;

/// `[alert]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertConfig {
    /// The consumer group every alert role instance joins.
    pub group_id: String,
    /// Static group membership (`group.instance.id`), unique per instance and kept across
    /// restarts: a restarted instance resumes its partitions at once; a stopped one holds
    /// them until `session_timeout_ms`. Unset: dynamic membership.
    pub instance_id: Option<String>,
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
            instance_id: None,
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
        tokio::spawn(webhooks::run(hub.subscribe_matched(), settings));
    }
    let relay = AlertPublisher::new(&config.kafka)?;
    tracing::info!(
        group = %config.alert.group_id,
        topic = %config.kafka.detections_topic,
        alerts = %config.kafka.alerts_topic,
        "alert role consuming"
    );
    let mut report = AlertReport::default();
    let mut every = tokio::time::interval(Duration::from_millis(
        config.alert.entries_reload_ms.max(100),
    ));
    // One consumer until `stop`; a new one when librdkafka declares the last one's error
    // fatal (the batch borrows from its consumer, so both are made here).
    let mut consumer;
    let mut pause = Duration::from_secs(1);
    'members: loop {
        consumer = alert_consumer(config)?;
        let joined = std::time::Instant::now();
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            // Asked every round: librdkafka reports a fatal error once, and the batch's
            // zero-wait reads below may be the ones that swallow it. E.g. a static member
            // fenced after the coordinator moved: this consumer can do nothing more; what
            // it did not commit is delivered again to the next one.
            if let Some((_, fatal)) = consumer.client().fatal_error() {
                if joined.elapsed() > Duration::from_secs(300) {
                    pause = Duration::from_secs(1);
                }
                tracing::error!(error = %fatal, pause_s = pause.as_secs(), "the alert consumer \
                    failed fatally; joining the group again with a new one");
                tokio::select! {
                    () = stop.cancelled() => break 'members,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = (pause * 2).min(Duration::from_secs(60));
                continue 'members;
            }
            let first = tokio::select! {
                () = stop.cancelled() => break 'members,
                _ = every.tick() => {
                    reload(Arc::clone(&hub), store.clone()).await;
                    continue;
                }
                message = consumer.recv() => message,
            };
            batch.clear();
            match first {
                Ok(message) => batch.push(message),
                Err(error) => {
                    tracing::warn!(%error, "reading the detections topic failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
            // And whatever else the client already holds: one store and publish per batch.
            while batch.len() < BATCH {
                match tokio::time::timeout(Duration::ZERO, consumer.recv()).await {
                    Ok(Ok(message)) => batch.push(message),
                    Ok(Err(_)) | Err(_) => break,
                }
            }
            report.records += batch.len() as u64;
            let mut sighted = Vec::with_capacity(batch.len());
            for message in &batch {
                match camtrail_proto::record::decode(message.payload().unwrap_or_default()) {
                    Ok(detection) => sighted.push(Sighted::of(&detection)),
                    Err(error) => {
                        report.undecodable += 1;
                        tracing::debug!(%error, "undecodable detection record skipped");
                    }
                }
            }
            let alerts = hub.check(&sighted);
            if !alerts.is_empty() {
                let hits: Vec<HitRecord> = alerts
                    .iter()
                    .map(|alert| HitRecord::new((**alert).clone()))
                    .collect();
                // Stored, then relayed, before the offsets move on: a crash re-delivers the
                // batch (stored hits are not stored again, but relayed again), never loses it.
                let Some(new) = retry(&stop, "storing hits", || store.put_new_hits(&hits)).await
                else {
                    return Ok(report);
                };
                report.hits += new as u64;
                if retry(&stop, "relaying hits", || relay.publish(&alerts))
                    .await
                    .is_none()
                {
                    return Ok(report);
                }
            }
            for message in &batch {
                if let Err(error) = consumer.store_offset_from_message(message) {
                    tracing::warn!(%error, "storing the consumed offset failed");
                }
            }
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

/// A member of the alert group, subscribed to the detections topic.
fn alert_consumer(config: &Config) -> anyhow::Result<StreamConsumer> {
    let mut client = ClientConfig::new();
    if let Some(id) = &config.alert.instance_id {
        client.set("group.instance.id", id);
    }
    let consumer: StreamConsumer = client
        .set("bootstrap.servers", &config.kafka.brokers)
        .set("group.id", &config.alert.group_id)
        .set("enable.auto.commit", "true")
        .set("enable.auto.offset.store", "false")
        .set("auto.commit.interval.ms", "1000")
        .set("auto.offset.reset", &config.alert.auto_offset_reset)
        // Fetches of at least 256 KiB or 100 ms rather than each answered at once: in one
        // pair of 10 s runs at 100k events/s the broker's CPU fell from 3.3 to 1.3 s
        // (benches/alerts_distributed.sh), for tens of ms more to a hit.
        .set("fetch.wait.max.ms", "100")
        .set("fetch.min.bytes", "262144")
        .set(
            "session.timeout.ms",
            config.alert.session_timeout_ms.to_string(),
        )
        .create()
        .context("creating the alert consumer")?;
    consumer
        .subscribe(&[&config.kafka.detections_topic])
        .context("subscribing to the detections topic")?;
    Ok(consumer)
}

/// Run `attempt` until it succeeds, once a second, logging failures; `None` if `stop`
/// came first.
async fn retry<T, E: std::fmt::Display, F: Future<Output = Result<T, E>>>(
    stop: &CancellationToken,
    what: &str,
    mut attempt: impl FnMut() -> F,
) -> Option<T> {
    loop {
        match attempt().await {
            Ok(value) => return Some(value),
            Err(error) => {
                tracing::warn!(%error, "{what} failed; retrying");
                tokio::select! {
                    () = stop.cancelled() => return None,
                    () = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

/// Publishes stored hits to the alerts topic (JSON, keyed by hit id, `acks=all`).
struct AlertPublisher {
    producer: FutureProducer,
    topic: String,
}

impl AlertPublisher {
    fn new(kafka: &KafkaConfig) -> anyhow::Result<Self> {
        let producer = ClientConfig::new()
            .set("bootstrap.servers", &kafka.brokers)
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "1")
            .create()
            .context("creating the alerts producer")?;
        Ok(Self {
            producer,
            topic: kafka.alerts_topic.clone(),
        })
    }

    /// Publish `alerts`; `Ok` once the brokers hold every one.
    async fn publish(&self, alerts: &[Arc<Alert>]) -> anyhow::Result<()> {
        let mut deliveries = Vec::with_capacity(alerts.len());
        for alert in alerts {
            let body = serde_json::to_vec(&**alert)?;
            let key = format!("{}/{}", alert.entry_id, alert.event_id);
            let record = FutureRecord::to(&self.topic).key(&key).payload(&body);
            let delivery = self
                .producer
                .send_result(record)
                .map_err(|(error, _)| anyhow::anyhow!("queueing a hit: {error}"))?;
            deliveries.push(delivery);
        }
        for delivery in deliveries {
            match delivery.await {
                Ok(Ok(_)) => {}
                Ok(Err((error, _))) => anyhow::bail!("publishing a hit: {error}"),
                Err(_) => anyhow::bail!("publishing a hit: the producer went away"),
            }
        }
        Ok(())
    }
}

/// Feed `hub` (a query node's) with the hits every alert role publishes, from the end of
/// the alerts topic as it is when this returns, until the hub closes. Each query node reads
/// every partition itself (no consumer group, nothing committed): what it relays is live
/// only; a node that was down reads what it missed from the store (`GET /v1/alerts`). If
/// the topic cannot be read yet, the relay keeps trying in the background.
pub async fn start_relay(kafka: KafkaConfig, hub: Arc<Alerts>) {
    let first = relay_consumer(&kafka).await;
    tokio::spawn(relay(kafka, hub, first));
}

async fn relay(kafka: KafkaConfig, hub: Arc<Alerts>, first: anyhow::Result<StreamConsumer>) {
    let closing = hub.closing();
    let mut backoff = Duration::from_millis(500);
    let mut attempt = first;
    let consumer = loop {
        match attempt {
            Ok(consumer) => break consumer,
            Err(error) => {
                tracing::warn!(%error, topic = %kafka.alerts_topic,
                    "the alerts topic is not readable yet; live alerts from the alert role \
                     wait for it");
                tokio::select! {
                    () = closing.cancelled() => return,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
                attempt = relay_consumer(&kafka).await;
            }
        }
    };
    tracing::info!(topic = %kafka.alerts_topic, "relaying the alert role's hits");
    loop {
        let message = tokio::select! {
            () = closing.cancelled() => return,
            message = consumer.recv() => message,
        };
        match message {
            Ok(message) => {
                match serde_json::from_slice::<Alert>(message.payload().unwrap_or_default()) {
                    Ok(alert) => hub.relay(Arc::new(alert)),
                    Err(error) => tracing::warn!(%error, offset = message.offset(),
                        "a record on the alerts topic is not a hit; skipped"),
                }
            }
            Err(error) => {
                tracing::warn!(%error, "reading the alerts topic failed; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

/// A consumer assigned every partition of the alerts topic at its current end.
async fn relay_consumer(kafka: &KafkaConfig) -> anyhow::Result<StreamConsumer> {
    let consumer: StreamConsumer = ClientConfig::new()
        .set("bootstrap.servers", &kafka.brokers)
        // Required by the client even without a group; never joined, nothing committed.
        .set("group.id", "camtrail-query-relay")
        .set("enable.auto.commit", "false")
        .set("fetch.wait.max.ms", "20")
        .create()
        .context("creating the alerts consumer")?;
    let consumer = Arc::new(consumer);
    let (client, topic) = (Arc::clone(&consumer), kafka.alerts_topic.clone());
    let partitions = tokio::task::spawn_blocking(move || {
        let metadata = client.fetch_metadata(Some(&topic), Duration::from_secs(5))?;
        let mut assignment = rdkafka::TopicPartitionList::new();
        for found in metadata.topics() {
            if let Some(error) = found.error() {
                anyhow::bail!("{}: {error:?}", found.name());
            }
            for partition in found.partitions() {
                // The end now, not when the first fetch resolves it: nothing published
                // after this returns is skipped.
                let (_, end) = client.fetch_watermarks(
                    found.name(),
                    partition.id(),
                    Duration::from_secs(5),
                )?;
                assignment.add_partition_offset(
                    found.name(),
                    partition.id(),
                    rdkafka::Offset::Offset(end),
                )?;
            }
        }
        anyhow::ensure!(assignment.count() > 0, "no partitions");
        client.assign(&assignment)?;
        Ok(())
    })
    .await?;
    partitions?;
    Arc::try_unwrap(consumer).map_err(|_| anyhow::anyhow!("the alerts consumer is still shared"))
}
