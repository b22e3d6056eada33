//! `camtrail alert`: the distributed mode's watchlist role. A member of a Kafka consumer
//! group (`[alert] group_id`) on the detections topic: on a thread of its own it takes what
//! the client holds (up to a batch; once the batch has a hit, what arrives for 250 ms
//! more), matches each record against the entries in force (read from ClickHouse, again
//! every `entries_reload_ms`) as it is read — its key first, the whole record only for a
//! hit — stores the batch's hits in ClickHouse `watchlist_hits` (one lookup, one insert),
//! publishes them to the alerts topic (`acks=all`), and only then marks the records'
//! offsets for commit. After a crash the group re-delivers what was not committed: at least
//! once, and a hit delivered twice is one stored hit (its id is `{entry}/{event}`) and one
//! more relayed copy, which subscribers collapse by event id. Query nodes read the alerts
//! topic ([`start_relay`]) and hand the hits to their live streams (`/v1/alerts/stream`,
//! gRPC `SubscribeAlerts`). Webhooks go out from this role's hub, outside that guarantee: a
//! delivery cut short by a crash, or dropped because the sender fell behind, leaves the hit
//! in the store only (the stored hits are the record; webhooks are a notification). It
//! scales by partitions like the sink. Records come from librdkafka in batches through a
//! queue of the role's own (`alert/fetch.rs`).
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use camtrail_clickhouse::ClickhouseStore;
use camtrail_kafka::KafkaConfig;
use camtrail_model::CameraRegistry;
use camtrail_model::watchlist::Alert;
use camtrail_model::watchlist::HitRecord;
use camtrail_query::alerts::{Alerts, Round, Sighted};
use camtrail_query::webhooks::{self, WebhookSettings};
use camtrail_sink::offsets::BatchOffsets;
use camtrail_storage::WatchlistStore;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, StreamConsumer};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use crate::config::Config;

mod fetch;

/// Records matched, stored and relayed as one batch at most: at open throttle, whole
/// fetches (at 430k events/s, about 9 stores a second in ClickHouse where batches of 5,000
/// made 86).
const BATCH: u64 = 50_000;

/// How long a batch with a hit goes on reading before its hits are stored and relayed: at
/// open throttle the client holds a fetch's worth of records at a time, and a store per
/// fetch (about 27 a second at 370k events/s) cost ClickHouse more CPU than the role's own
/// matching. The batch ends at its first empty read after this (or at [`BATCH`] records):
/// about this much is added to a hit's delivery while records arrive in fetches.
const GATHER: Duration = Duration::from_millis(250);

/// How long a gathering batch sleeps between reads.
const GATHER_STEP: Duration = Duration::from_millis(10);

/// Records taken from librdkafka per call (see [`fetch`]).
const TAKE: usize = 4_096;

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
    /// Records found undecodable (skipped; the sink dead-letters them): those whose key
    /// cannot be read, and those whose key may match that do not decode. A record is read
    /// no further than its key when no entry may match it.
    pub undecodable: u64,
    /// Hits stored (re-deliveries of a stored hit not counted).
    pub hits: u64,
    /// Batches read (each matched together, its hits stored in one go).
    pub batches: u64,
    /// Batches that had hits to store and relay.
    pub stores: u64,
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
    anyhow::ensure!(
        reload(&hub, &store).await,
        "the watchlist entries could not be read from ClickHouse"
    );
    if let Some(settings) = WebhookSettings::from_config(&config.query.watchlist)? {
        tokio::spawn(webhooks::run(hub.subscribe_matched(), settings));
    }
    let role = Role {
        config: config.clone(),
        relay: AlertPublisher::new(&config.kafka)?,
        store,
        hub,
        stop,
        runtime: tokio::runtime::Handle::current(),
    };
    tracing::info!(
        group = %config.alert.group_id,
        topic = %config.kafka.detections_topic,
        alerts = %config.kafka.alerts_topic,
        "alert role consuming"
    );
    // The consumer polls on a thread of its own: at open throttle it reads hundreds of
    // thousands of records a second, one librdkafka poll each, and a poll is cheaper from
    // a plain loop than as a future woken by the runtime.
    tokio::task::spawn_blocking(move || role.consume())
        .await
        .context("the alert consumer thread failed")?
}

/// Read the entries in force into `hub`; `false` (the previous ones kept) if ClickHouse
/// did not answer.
async fn reload(hub: &Alerts, store: &ClickhouseStore) -> bool {
    match camtrail_storage::watchlist::entries_in_force(store).await {
        Ok(entries) => {
            hub.replace_entries(entries);
            true
        }
        Err(error) => {
            tracing::warn!(%error, "watchlist entries not reloaded; the previous ones stay");
            false
        }
    }
}

/// The role's consuming side, on a blocking thread; the stores and publishes it waits for
/// run on `runtime`.
struct Role {
    config: Config,
    relay: AlertPublisher,
    store: ClickhouseStore,
    hub: Arc<Alerts>,
    stop: CancellationToken,
    runtime: tokio::runtime::Handle,
}

/// One batch's records, matched as they were read.
#[derive(Default)]
struct Batch {
    records: u64,
    undecodable: u64,
    alerts: Vec<Arc<Alert>>,
    offsets: BatchOffsets,
}

impl Role {
    fn consume(self) -> anyhow::Result<AlertReport> {
        let mut report = AlertReport::default();
        let every = Duration::from_millis(self.config.alert.entries_reload_ms.max(100));
        let mut reloaded = Instant::now();
        let mut pause = Duration::from_secs(1);
        // One consumer until `stop`; a new one when librdkafka declares the last one's error
        // fatal.
        'members: loop {
            let consumer = alert_consumer(&self.config)?;
            let mut partitions = fetch::Partitions::new(&consumer)?;
            let joined = Instant::now();
            let mut batch = Batch::default();
            loop {
                if self.stop.is_cancelled() {
                    // Commit what was stored before leaving the group.
                    if let Err(error) = consumer.commit_consumer_state(CommitMode::Sync) {
                        tracing::debug!(%error, "final commit");
                    }
                    break 'members;
                }
                // Asked every round: librdkafka reports a fatal error once, and a batch's
                // polls may be the ones that swallow it. E.g. a static member fenced after
                // the coordinator moved: this consumer can do nothing more; what it did not
                // commit is delivered again to the next one.
                if let Some((_, fatal)) = consumer.client().fatal_error() {
                    if joined.elapsed() > Duration::from_secs(300) {
                        pause = Duration::from_secs(1);
                    }
                    tracing::error!(error = %fatal, pause_s = pause.as_secs(), "the alert \
                        consumer failed fatally; joining the group again with a new one");
                    let stop = self.stop.clone();
                    self.runtime.block_on(async move {
                        tokio::select! {
                            () = stop.cancelled() => {}
                            () = tokio::time::sleep(pause) => {}
                        }
                    });
                    pause = (pause * 2).min(Duration::from_secs(60));
                    if self.stop.is_cancelled() {
                        break 'members;
                    }
                    continue 'members;
                }
                if reloaded.elapsed() >= every {
                    self.runtime.block_on(reload(&self.hub, &self.store));
                    reloaded = Instant::now();
                }
                self.fill(
                    &consumer,
                    &mut partitions,
                    &mut batch,
                    every.saturating_sub(reloaded.elapsed()),
                );
                if batch.records == 0 {
                    continue;
                }
                report.records += batch.records;
                report.undecodable += batch.undecodable;
                report.batches += 1;
                if !batch.alerts.is_empty() {
                    // Stored, then relayed, before the offsets move on: a crash re-delivers
                    // the batch (stored hits are not stored again, but relayed again), never
                    // loses it.
                    let Some(new) = self.runtime.block_on(self.store_and_relay(&batch.alerts))
                    else {
                        return Ok(report);
                    };
                    report.hits += new;
                    report.stores += 1;
                }
                match batch.offsets.commit_list() {
                    Ok(list) => {
                        if let Err(error) = consumer.store_offsets(&list) {
                            // E.g. a partition revoked meanwhile: its next owner reads the
                            // batch's records again (at least once).
                            tracing::warn!(%error, "storing the consumed offsets failed");
                        }
                    }
                    Err(error) => tracing::warn!(%error, "listing the consumed offsets failed"),
                }
                batch = Batch::default();
            }
        }
        tracing::info!(
            records = report.records,
            batches = report.batches,
            stores = report.stores,
            hits = report.hits,
            "alert role stopped"
        );
        Ok(report)
    }

    /// Read into `batch`: wait up to `wait` (at most 100 ms, so that a stop or a reload is
    /// not held up) for a first record, then take what the client already holds, up to
    /// [`BATCH`] records; once the batch has a hit, go on reading what arrives for up to
    /// [`GATHER`] after it, so that the hits of several fetches share one store. Each record
    /// is matched as it is read and dropped: only the hits, confirmed by the full decoder,
    /// and the offsets are kept.
    fn fill(
        &self,
        consumer: &BaseConsumer<fetch::Forwarding>,
        partitions: &mut fetch::Partitions<'_>,
        batch: &mut Batch,
        wait: Duration,
    ) {
        let round = self.hub.round();
        let mut first_hit = None::<Instant>;
        let mut wait = wait.min(Duration::from_millis(100));
        while batch.records < BATCH {
            // The consumer's own queue: rebalances (and with them the forwarding of the
            // partitions assigned) and errors are served here, and the records of a
            // partition that could not be forwarded come out here.
            let mut taken = self.drain(consumer, &round, batch, &mut first_hit);
            if batch.records < BATCH {
                let max =
                    usize::try_from(BATCH - batch.records).map_or(TAKE, |left| left.min(TAKE));
                let mut failed = None;
                taken += partitions.take(wait, max, |record| match record {
                    Ok(record) => self.read_one(&round, batch, &mut first_hit, record),
                    Err(code) => failed = Some(code),
                });
                if let Some(code) = failed {
                    tracing::warn!(error = %code,
                        "a partition of the detections topic reported an error");
                }
            }
            if taken > 0 {
                wait = Duration::ZERO;
                continue;
            }
            // Gathering: let the next fetches arrive rather than wake for each partition's
            // (a blocking wait returns with the first one).
            match first_hit.map(|at| GATHER.saturating_sub(at.elapsed())) {
                Some(left) if !left.is_zero() => std::thread::sleep(left.min(GATHER_STEP)),
                _ => return,
            }
        }
    }

    /// Read what the consumer's own queue holds into `batch`; how many records.
    fn drain(
        &self,
        consumer: &BaseConsumer<fetch::Forwarding>,
        round: &Round,
        batch: &mut Batch,
        first_hit: &mut Option<Instant>,
    ) -> usize {
        let mut taken = 0;
        while batch.records < BATCH {
            match consumer.poll(Duration::ZERO) {
                None => break,
                Some(Ok(message)) => {
                    taken += 1;
                    self.read_one(
                        round,
                        batch,
                        first_hit,
                        fetch::Record {
                            partition: message.partition(),
                            offset: message.offset(),
                            payload: message.payload().unwrap_or_default(),
                        },
                    );
                }
                Some(Err(error)) => {
                    tracing::warn!(%error, "reading the detections topic failed; retrying");
                    if taken == 0 {
                        std::thread::sleep(Duration::from_millis(200));
                    }
                    break;
                }
            }
        }
        taken
    }

    /// Match one record into `batch`. The key first (the top-level fields only); the
    /// event's fields only when an entry may match that key; the whole record only for a
    /// hit.
    fn read_one(
        &self,
        round: &Round,
        batch: &mut Batch,
        first_hit: &mut Option<Instant>,
        record: fetch::Record<'_>,
    ) {
        batch.records += 1;
        // The one topic this consumer subscribes to (not asked of each record).
        let topic = &self.config.kafka.detections_topic;
        batch.offsets.record(topic, record.partition, record.offset);
        let payload = record.payload;
        let read = camtrail_proto::record::subject_key(payload).and_then(|key| {
            if round.may_match(key) {
                camtrail_proto::record::decode_for_matching(payload).map(Some)
            } else {
                Ok(None)
            }
        });
        let undecodable = match read {
            Ok(None) => return,
            Ok(Some(read)) => {
                if !round.hits_any(read.subject_key, read.camera_id, read.captured_at_ms) {
                    return;
                }
                match camtrail_proto::record::decode(payload) {
                    Ok(detection) => {
                        round.alert(&self.hub, &Sighted::of(&detection), &mut batch.alerts);
                        first_hit.get_or_insert_with(Instant::now);
                        return;
                    }
                    Err(error) => error,
                }
            }
            Err(error) => error,
        };
        batch.undecodable += 1;
        tracing::debug!(error = %undecodable, "undecodable detection record skipped");
    }

    /// Store the hits, then publish them; the number newly stored, or `None` if `stop`
    /// came first.
    async fn store_and_relay(&self, alerts: &[Arc<Alert>]) -> Option<u64> {
        let hits: Vec<HitRecord> = alerts
            .iter()
            .map(|alert| HitRecord::new((**alert).clone()))
            .collect();
        let new = retry(&self.stop, "storing hits", || {
            self.store.put_new_hits(&hits)
        })
        .await?;
        retry(&self.stop, "relaying hits", || self.relay.publish(alerts)).await?;
        Some(new as u64)
    }
}

/// A member of the alert group, subscribed to the detections topic.
fn alert_consumer(config: &Config) -> anyhow::Result<BaseConsumer<fetch::Forwarding>> {
    let mut client = ClientConfig::new();
    if let Some(id) = &config.alert.instance_id {
        client.set("group.instance.id", id);
    }
    let consumer: BaseConsumer<fetch::Forwarding> = client
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
        .create_with_context(fetch::Forwarding::new(&config.kafka.detections_topic))
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
