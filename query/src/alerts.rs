//! Live watchlist alerts on one node: the [`Matcher`] over the entries in force, fed with
//! every detection once it is durable, and a broadcast of the hits to subscribers (the
//! Server-Sent Events stream `GET /v1/alerts/stream`).
//!
//! Embedded mode (`camtrail serve`): the ingest side hands each committed batch to
//! [`Alerts::check`] in-process, after the commit and before the ack leaves. Distributed
//! mode: the `camtrail alert` role (`camtrail-serve`) matches with its own hub, stores each
//! hit and publishes it to the alerts topic; every query node reads that topic and
//! [`Alerts::relay`]s the hits to its live subscribers.
//!
//! Two audiences: live subscribers ([`Alerts::live`]) get every hit the node knows of, its
//! own and relayed ones; webhooks ([`Alerts::subscribe_matched`]) only the hits this hub
//! matched itself, so a hit is sent out once, by the process that found it.
//!
//! A hit is a lead, not a finding: it says which entry a plate *read* matched (exactly, as a
//! likely misreading, or by pattern). Someone must look at the snapshot before acting.

use std::sync::{Arc, PoisonError, RwLock};

use camtrail_model::watchlist::{Alert, Entry, Hit, MatchKind, Matcher, Read};
use camtrail_model::{CameraRegistry, Detection};
use tokio::sync::broadcast;

/// Hits a slow subscriber may fall behind by before it misses some (it is told how many).
const CHANNEL: usize = 4_096;

/// The node's live matcher and its subscribers.
pub struct Alerts {
    matcher: RwLock<Arc<Matcher>>,
    registry: RwLock<Arc<CameraRegistry>>,
    sender: broadcast::Sender<Arc<Alert>>,
    matched: broadcast::Sender<Arc<Alert>>,
    clock: fn() -> i64,
    closed: tokio_util::sync::CancellationToken,
}

impl std::fmt::Debug for Alerts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alerts")
            .field("entries", &self.matcher().len())
            .finish()
    }
}

impl Default for Alerts {
    fn default() -> Self {
        Self::with_clock(camtrail_common::now_ms)
    }
}

impl Alerts {
    /// A hub whose "now" (entries' windows) is `clock` (tests move it).
    pub fn with_clock(clock: fn() -> i64) -> Self {
        Self {
            matcher: RwLock::new(Arc::new(Matcher::default())),
            registry: RwLock::new(Arc::new(CameraRegistry::default())),
            sender: broadcast::channel(CHANNEL).0,
            matched: broadcast::channel(CHANNEL).0,
            clock,
            closed: tokio_util::sync::CancellationToken::new(),
        }
    }

    fn matcher(&self) -> Arc<Matcher> {
        Arc::clone(&self.matcher.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Match against `entries` from now on (called whenever the list changes).
    pub fn replace_entries(&self, entries: Vec<Entry>) {
        let matcher = Arc::new(Matcher::new(entries, (self.clock)()));
        tracing::info!(entries = matcher.len(), "watchlist entries in force");
        *self.matcher.write().unwrap_or_else(PoisonError::into_inner) = matcher;
    }

    /// Look cameras up in `registry` from now on.
    pub fn set_registry(&self, registry: Arc<CameraRegistry>) {
        *self
            .registry
            .write()
            .unwrap_or_else(PoisonError::into_inner) = registry;
    }

    /// Whether any entry may match (if not, callers skip preparing detections).
    pub fn has_entries(&self) -> bool {
        !self.matcher().is_empty()
    }

    /// End every subscriber's stream (the node is stopping).
    pub fn close(&self) {
        self.closed.cancel();
    }

    /// Cancelled when the node stops (tasks feeding the hub end with it).
    pub fn closing(&self) -> tokio_util::sync::CancellationToken {
        self.closed.clone()
    }

    /// Hand a hit another process matched (and stored) to the live subscribers; not to
    /// webhooks, which the matching process sends.
    pub fn relay(&self, alert: Arc<Alert>) {
        let _ = self.sender.send(alert);
    }

    /// Every hit from now on, as a stream that ends when the node stops (a subscriber's
    /// open stream would otherwise hold the graceful shutdown) or the subscriber leaves.
    pub fn live(&self) -> tokio_stream::wrappers::ReceiverStream<Live> {
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let mut alerts = self.sender.subscribe();
        let closed = self.closed.clone();
        tokio::spawn(async move {
            loop {
                let next = tokio::select! {
                    () = closed.cancelled() => return,
                    () = tx.closed() => return,
                    received = alerts.recv() => received,
                };
                let item = match next {
                    Ok(alert) => Live::Alert(alert),
                    Err(broadcast::error::RecvError::Lagged(missed)) => Live::Missed(missed),
                    Err(broadcast::error::RecvError::Closed) => return,
                };
                // A stalled subscriber must not hold the node's shutdown either.
                tokio::select! {
                    () = closed.cancelled() => return,
                    sent = tx.send(item) => if sent.is_err() { return },
                }
            }
        });
        tokio_stream::wrappers::ReceiverStream::new(rx)
    }

    /// A new subscription to the hits this hub matches from now on (not relayed ones).
    pub fn subscribe_matched(&self) -> broadcast::Receiver<Arc<Alert>> {
        self.matched.subscribe()
    }

    fn send(&self, alert: &Arc<Alert>) {
        // No subscriber now: the hit still reaches the store through the caller.
        let _ = self.sender.send(Arc::clone(alert));
        let _ = self.matched.send(Arc::clone(alert));
    }

    /// Match durable `detections` (their keys, cameras and times), send the hits and
    /// return them (for storing).
    pub fn check(&self, detections: &[Sighted]) -> Vec<Arc<Alert>> {
        let round = self.round();
        let mut sent = Vec::new();
        if round.is_empty() {
            return sent;
        }
        for detection in detections {
            round.alert(self, detection, &mut sent);
        }
        sent
    }

    /// The entries, cameras and "now" to match one batch with.
    pub fn round(&self) -> Round {
        Round {
            matcher: self.matcher(),
            registry: Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner)),
            now: (self.clock)(),
        }
    }
}

/// One batch's matching: the entries in force and the registry as they were when it began,
/// and its "now".
#[derive(Debug, Clone)]
pub struct Round {
    matcher: Arc<Matcher>,
    registry: Arc<CameraRegistry>,
    now: i64,
}

impl Round {
    /// Whether no entry can match.
    pub fn is_empty(&self) -> bool {
        self.matcher.is_empty()
    }

    /// Whether an entry might match a read of `key` (one look-up; see
    /// [`Matcher::may_match`]).
    pub fn may_match(&self, key: &str) -> bool {
        self.matcher.may_match(key)
    }

    /// Whether a read of `key` at `camera_id` at `captured_at_ms` hits any entry. Nothing
    /// is allocated: callers test every read with this and build a [`Sighted`] for
    /// [`Round::alert`] only for the few that hit.
    pub fn hits_any(&self, key: &str, camera_id: &str, captured_at_ms: i64) -> bool {
        if !self.matcher.may_match(key) {
            return false;
        }
        let mut hits = Vec::new();
        self.hits(key, camera_id, captured_at_ms, &mut hits);
        !hits.is_empty()
    }

    fn hits<'m>(
        &'m self,
        key: &str,
        camera_id: &str,
        captured_at_ms: i64,
        hits: &mut Vec<Hit<'m>>,
    ) -> Option<&'m camtrail_model::Camera> {
        let camera = self.registry.get(camera_id);
        let read = Read {
            key,
            camera_id,
            district: camera.map_or("", |c| c.district.as_str()),
            captured_at_ms,
        };
        self.matcher.matches(&read, self.now, hits);
        camera
    }

    /// Match `sighted`, send its hits to `hub`'s subscribers and append them to `sent`.
    pub fn alert(&self, hub: &Alerts, sighted: &Sighted, sent: &mut Vec<Arc<Alert>>) {
        let mut hits = Vec::new();
        let camera = self.hits(
            &sighted.subject_key,
            &sighted.camera_id,
            sighted.captured_at_ms,
            &mut hits,
        );
        for hit in &hits {
            let alert = Arc::new(alert(
                hit.entry,
                hit.kind,
                hit.confidence,
                sighted,
                camera,
                self.now,
            ));
            hub.send(&alert);
            sent.push(alert);
        }
    }
}

impl Alerts {
    /// Send the hits a past-read check found for a newly approved `entry` (marked `past`)
    /// and return them.
    pub fn announce_past(
        &self,
        entry: &Entry,
        hits: &[(Sighted, MatchKind, f32)],
    ) -> Vec<Arc<Alert>> {
        let registry = Arc::clone(&self.registry.read().unwrap_or_else(PoisonError::into_inner));
        let now = (self.clock)();
        let mut sent = Vec::with_capacity(hits.len());
        for (sighted, kind, confidence) in hits {
            let camera = registry.get(&sighted.camera_id);
            let mut alert = alert(entry, *kind, *confidence, sighted, camera, now);
            alert.past = true;
            let alert = Arc::new(alert);
            self.send(&alert);
            sent.push(alert);
        }
        sent
    }
}

/// The alert for `sighted` hitting `entry`.
fn alert(
    entry: &Entry,
    kind: MatchKind,
    confidence: f32,
    sighted: &Sighted,
    camera: Option<&camtrail_model::Camera>,
    now: i64,
) -> Alert {
    let mut audience = entry.recipients.clone();
    audience.push(entry.applicant.clone());
    Alert {
        entry_id: entry.entry_id.clone(),
        title: entry.title.clone(),
        case_id: entry.case_id.clone(),
        priority: entry.priority,
        audience,
        kind,
        confidence,
        event_id: sighted.event_id.clone(),
        plate_read: sighted.subject_key.clone(),
        camera_id: sighted.camera_id.clone(),
        district: camera.map(|c| c.district.clone()).unwrap_or_default(),
        lat: camera.map_or(0.0, |c| c.lat),
        lon: camera.map_or(0.0, |c| c.lon),
        captured_at_ms: sighted.captured_at_ms,
        has_snapshot: sighted.has_snapshot,
        matched_at_ms: now,
        past: false,
        webhook_url: entry.webhook_url.clone(),
    }
}

/// One item of a live subscription.
#[derive(Debug, Clone)]
pub enum Live {
    /// A hit.
    Alert(Arc<Alert>),
    /// The subscriber fell this many hits behind (read them from the store).
    Missed(u64),
}

/// What matching needs of a detection, taken before the batch is handed to storage (so
/// the thumbnails are not copied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sighted {
    /// 32 hex digits.
    pub event_id: String,
    /// Normalised plate key.
    pub subject_key: String,
    /// Camera.
    pub camera_id: String,
    /// Capture time, unix ms.
    pub captured_at_ms: i64,
    /// Whether a snapshot came with it.
    pub has_snapshot: bool,
}

impl Sighted {
    /// The fields of `detection` matching needs.
    pub fn of(detection: &Detection) -> Self {
        Self {
            event_id: detection.event_id.to_hex(),
            subject_key: detection.subject_key.clone(),
            camera_id: detection.camera_id.clone(),
            captured_at_ms: detection.captured_at_ms,
            has_snapshot: detection.thumbnail_jpeg.is_some(),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio_stream::StreamExt as _;

    use super::*;

    fn relayed() -> Alert {
        Alert {
            entry_id: "WL-1".into(),
            title: "t".into(),
            case_id: "C-1".into(),
            priority: 1,
            audience: vec!["ivy".into()],
            kind: MatchKind::Exact,
            confidence: 1.0,
            event_id: "00".repeat(16),
            plate_read: "粤B12345".into(),
            camera_id: "cam-1".into(),
            district: "Futian".into(),
            lat: 22.5,
            lon: 114.0,
            captured_at_ms: 1,
            has_snapshot: false,
            matched_at_ms: 2,
            past: false,
            webhook_url: Some("http://hooks.example/x".into()),
        }
    }

    #[tokio::test]
    async fn a_relayed_hit_reaches_live_subscribers_but_not_this_nodes_webhooks() {
        let hub = Alerts::default();
        let mut live = hub.live();
        let mut matched = hub.subscribe_matched();
        hub.relay(Arc::new(relayed()));
        match live.next().await {
            Some(Live::Alert(alert)) => assert_eq!(*alert, relayed()),
            other => panic!("expected the relayed hit, got {other:?}"),
        }
        assert!(matches!(
            matched.try_recv(),
            Err(broadcast::error::TryRecvError::Empty)
        ));
        hub.close();
        assert!(hub.closing().is_cancelled());
        assert!(
            live.next().await.is_none(),
            "the stream ends when the node stops"
        );
    }
}
