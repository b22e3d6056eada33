//! Signed webhooks for watchlist hits: each hit of an entry with a `webhook_url` is POSTed
//! there as JSON, signed with HMAC-SHA256 (`x-camtrail-signature: sha256=<hex>` over
//! `<timestamp>.<body>`, the timestamp in `x-camtrail-timestamp`, so a receiver can refuse
//! replays), retried with doubling backoff, and after the last failed attempt written as one
//! JSON line to the dead-letter file (0600) for an operator to resend.
//!
//! Only hosts on the node's allow-list (`[query.watchlist] webhook_hosts`) are accepted when
//! an entry is requested, and checked again before each delivery. Each receiver (`host:port`)
//! has its own queue (`QUEUE` hits), at most `PER_HOST` deliveries at once, and a circuit
//! breaker (after `BREAK_AFTER` failed attempts in a row its deliveries pause for
//! `COOL_DOWN`, its hits waiting in its queue): a receiver that is down or never answers
//! takes no other receiver's turn. Dead-letter lines record hits whose attempts ran out,
//! hits refused at delivery (host off the list, queue full), and how many hits were skipped
//! when delivery fell behind the hub (`missed`); all of them are in the store. A thread of
//! its own writes them.
//! Plain HTTP only in this version: keep the receivers on the police network (TLS to the
//! receiver is not built yet).

use std::collections::HashMap;
use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use camtrail_model::watchlist::{Alert, HitRecord};
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use tokio::sync::{Semaphore, broadcast, mpsc};

/// Deliveries under way at once to one receiver (`host:port`); more wait in its queue.
const PER_HOST: usize = 8;
/// Hits waiting for one receiver; beyond that they are dead-lettered at once.
const QUEUE: usize = 1_000;
/// Failed attempts in a row after which a receiver's circuit opens…
const BREAK_AFTER: u32 = 5;
/// …for this long: its deliveries pause (hits wait in its queue); then they resume, and
/// the first failure opens it again.
const COOL_DOWN: Duration = Duration::from_secs(30);

/// How deliveries are made (not `Debug`: it holds the key).
#[derive(Clone)]
pub struct WebhookSettings {
    /// The HMAC key.
    pub secret: Arc<Vec<u8>>,
    /// Attempts per hit (at least 1).
    pub attempts: u32,
    /// Wait before the second attempt; doubles after each, ms.
    pub backoff_ms: u64,
    /// One attempt's limit, ms.
    pub timeout_ms: u64,
    /// Where undeliverable hits are written (one JSON line each); unset: logged only.
    pub dead_letter_path: Option<PathBuf>,
    /// The allow-list (`host` or `host:port`), checked again at delivery: an entry stored
    /// while its host was allowed sends nothing once the host is taken off the list.
    pub allowed_hosts: Arc<Vec<String>>,
}

impl WebhookSettings {
    /// The settings of `[query.watchlist]`, with the key read from its file; `None` when no
    /// key is configured (no webhooks).
    pub fn from_config(config: &crate::service::WatchlistConfig) -> anyhow::Result<Option<Self>> {
        use anyhow::Context as _;
        let Some(path) = &config.webhook_secret_path else {
            return Ok(None);
        };
        let secret = std::fs::read(path)
            .with_context(|| format!("reading the webhook key {}", path.display()))?;
        let secret = secret.trim_ascii().to_vec();
        anyhow::ensure!(
            secret.len() >= 16,
            "the webhook key {} is shorter than 16 bytes",
            path.display()
        );
        Ok(Some(Self {
            secret: Arc::new(secret),
            attempts: config.webhook_attempts.max(1),
            backoff_ms: config.webhook_backoff_ms,
            timeout_ms: config.webhook_timeout_ms,
            dead_letter_path: config.webhook_dead_letter_path.clone(),
            allowed_hosts: Arc::new(config.webhook_hosts.clone()),
        }))
    }
}

/// `sha256=<hex>` of HMAC-SHA256(`secret`, `<timestamp>.<body>`).
pub fn signature(secret: &[u8], timestamp_ms: i64, body: &[u8]) -> String {
    // HMAC takes keys of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC accepts every key length"));
    mac.update(timestamp_ms.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Whether `authority` (`host` or `host:port`, from a URL) is on `allowed` (host names
/// compared without regard to case, as DNS does).
pub fn host_allowed(authority: &hyper::http::uri::Authority, allowed: &[String]) -> bool {
    allowed.iter().any(|a| {
        a.eq_ignore_ascii_case(authority.host()) || a.eq_ignore_ascii_case(authority.as_str())
    })
}

/// The receiver a hook URL names (`host:port`, lower case, port 80 when none is given), if
/// it may be sent to now.
fn receiver(url: &str, allowed: &[String]) -> Result<String, &'static str> {
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| "the webhook URL cannot be parsed")?;
    let authority = uri.authority().ok_or("the webhook URL names no host")?;
    if uri.scheme_str() != Some("http") || authority.as_str().contains('@') {
        return Err("the webhook URL is not a plain http:// URL");
    }
    if !host_allowed(authority, allowed) {
        return Err("the host is no longer on the webhook allow-list");
    }
    Ok(format!(
        "{}:{}",
        authority.host().to_ascii_lowercase(),
        authority.port_u16().unwrap_or(80)
    ))
}

type Http = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

/// Deliver every hit of `alerts` that has a webhook until the hub closes. Each receiver has
/// its own queue, at most `PER_HOST` deliveries at once and a circuit breaker, so one that
/// is slow, down or silent takes no other receiver's turn. Hits still queued when the node
/// stops are not sent (they are in the store: `GET /v1/alerts`).
pub async fn run(mut alerts: broadcast::Receiver<Arc<Alert>>, settings: WebhookSettings) {
    let client: Http = Client::builder(TokioExecutor::new()).build_http();
    let letters = DeadLetters::start(settings.dead_letter_path.clone());
    let mut queues: HashMap<String, mpsc::Sender<(String, Arc<Alert>)>> = HashMap::new();
    loop {
        let alert = match alerts.recv().await {
            Ok(alert) => alert,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::error!(missed, "webhook delivery fell behind; hits were not sent");
                letters.write(serde_json::json!({
                    "missed": missed,
                    "last_error": "delivery fell behind; the hits are in the store (GET /v1/alerts)",
                }));
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(url) = alert.webhook_url.clone() else {
            continue;
        };
        let host = match receiver(&url, &settings.allowed_hosts) {
            Ok(host) => host,
            Err(why) => {
                letters.undeliverable(&url, &alert, 0, why);
                continue;
            }
        };
        let queue = queues.entry(host).or_insert_with(|| {
            let (sender, receiver) = mpsc::channel(QUEUE);
            let host = Host {
                client: client.clone(),
                settings: settings.clone(),
                letters: letters.clone(),
                breaker: Breaker::default(),
            };
            tokio::spawn(Arc::new(host).serve(receiver));
            sender
        });
        if let Err(error) = queue.try_send((url, alert)) {
            let (url, alert) = error.into_inner();
            letters.undeliverable(&url, &alert, 0, "the receiver's queue is full");
        }
    }
}

/// A receiver's failed attempts in a row, and until when its circuit is open (ms on a
/// monotonic clock: a step of the wall clock neither holds it open nor closes it early).
struct Breaker {
    epoch: Instant,
    failures: AtomicU32,
    open_until_ms: AtomicU64,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
        }
    }
}

impl Breaker {
    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// How long the circuit stays open from now (zero when closed).
    fn open_for(&self) -> Duration {
        let until = self.open_until_ms.load(Ordering::Relaxed);
        Duration::from_millis(until.saturating_sub(self.now_ms()))
    }

    /// Wait while the circuit is open.
    async fn closed(&self) {
        loop {
            let wait = self.open_for();
            if wait.is_zero() {
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }

    fn record(&self, delivered: bool) {
        if delivered {
            self.failures.store(0, Ordering::Relaxed);
        } else if self.failures.fetch_add(1, Ordering::Relaxed) + 1 >= BREAK_AFTER {
            let until = self.now_ms() + COOL_DOWN.as_millis() as u64;
            if self.open_until_ms.swap(until, Ordering::Relaxed) < self.now_ms() {
                tracing::warn!(
                    cool_down_s = COOL_DOWN.as_secs(),
                    "a webhook receiver keeps failing; its deliveries pause"
                );
            }
        }
    }
}

/// One receiver: its deliveries, `PER_HOST` at a time, paused while its circuit is open.
struct Host {
    client: Http,
    settings: WebhookSettings,
    letters: DeadLetters,
    breaker: Breaker,
}

impl Host {
    async fn serve(self: Arc<Self>, mut queue: mpsc::Receiver<(String, Arc<Alert>)>) {
        let permits = Arc::new(Semaphore::new(PER_HOST));
        while let Some((url, alert)) = queue.recv().await {
            // Hits wait in the queue while the circuit is open (a full queue dead-letters).
            self.breaker.closed().await;
            let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
                return;
            };
            let host = Arc::clone(&self);
            tokio::spawn(async move {
                host.deliver(&url, &alert).await;
                drop(permit);
            });
        }
    }

    async fn deliver(&self, url: &str, alert: &Alert) {
        let settings = &self.settings;
        let hit = HitRecord::new(alert.clone());
        let body = match serde_json::to_vec(&hit) {
            Ok(body) => body,
            Err(error) => {
                tracing::error!(%error, "a hit could not be encoded for its webhook");
                return;
            }
        };
        let mut backoff = Duration::from_millis(settings.backoff_ms);
        let mut last_error = String::new();
        for attempt in 1..=settings.attempts.max(1) {
            // An attempt under way when the circuit opened waits out the cool-down.
            self.breaker.closed().await;
            let timestamp = camtrail_common::now_ms();
            let request = hyper::Request::post(url)
                .header("content-type", "application/json")
                .header("x-camtrail-timestamp", timestamp.to_string())
                .header(
                    "x-camtrail-signature",
                    signature(&settings.secret, timestamp, &body),
                )
                .header("x-camtrail-attempt", attempt.to_string())
                .body(Full::new(Bytes::from(body.clone())));
            let outcome = match request {
                Ok(request) => {
                    let limit = Duration::from_millis(settings.timeout_ms);
                    match tokio::time::timeout(limit, self.client.request(request)).await {
                        Ok(Ok(response)) if response.status().is_success() => {
                            self.breaker.record(true);
                            return;
                        }
                        Ok(Ok(response)) => format!("answered {}", response.status()),
                        Ok(Err(error)) => error.to_string(),
                        Err(_) => format!("no answer within {limit:?}"),
                    }
                }
                Err(error) => error.to_string(),
            };
            self.breaker.record(false);
            tracing::debug!(attempt, error = %outcome, "webhook delivery failed");
            last_error = outcome;
            if attempt < settings.attempts {
                tokio::time::sleep(backoff).await;
                backoff = backoff.saturating_mul(2).min(Duration::from_secs(60));
            }
        }
        self.letters
            .undeliverable(url, alert, settings.attempts.max(1), &last_error);
    }
}

/// The dead-letter file's writer: a thread of its own appending what it is sent, one
/// `sync_data` per burst, so no delivery task or the hub's reader waits on the disk.
#[derive(Clone)]
struct DeadLetters(Option<std::sync::mpsc::Sender<serde_json::Value>>);

impl DeadLetters {
    /// The writer for `path`; without a path, lines are only counted in the log.
    fn start(path: Option<PathBuf>) -> Self {
        let (sender, lines) = std::sync::mpsc::channel::<serde_json::Value>();
        let spawned = std::thread::Builder::new()
            .name("webhook-dead-letters".into())
            .spawn(move || {
                while let Ok(first) = lines.recv() {
                    let burst: Vec<_> = std::iter::once(first).chain(lines.try_iter()).collect();
                    tracing::error!(
                        lines = burst.len(),
                        "webhook hits or counts dead-lettered (see the dead-letter file)"
                    );
                    if let Some(path) = &path {
                        append(path, &burst);
                    }
                }
            });
        match spawned {
            Ok(_) => Self(Some(sender)),
            Err(error) => {
                tracing::error!(%error, "the dead-letter writer could not start");
                Self(None)
            }
        }
    }

    /// Record a hit that will not be delivered (its id, not its content: the hit is in the
    /// store).
    fn undeliverable(&self, url: &str, alert: &Alert, attempts: u32, error: &str) {
        self.write(serde_json::json!({
            "hit_id": HitRecord::id(alert),
            "url": url,
            "attempts": attempts,
            "last_error": error,
        }));
    }

    fn write(&self, mut line: serde_json::Value) {
        line["at_ms"] = camtrail_common::now_ms().into();
        if let Some(sender) = &self.0 {
            let _ = sender.send(line);
        }
    }
}

/// Append `lines` to the dead-letter file (0600) and sync it.
fn append(path: &std::path::Path, lines: &[serde_json::Value]) {
    let mut text = String::new();
    for line in lines {
        text.push_str(&line.to_string());
        text.push('\n');
    }
    let written = camtrail_storage::private::touch(path).and_then(|()| {
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        file.write_all(text.as_bytes())?;
        file.sync_data()
    });
    if let Err(error) = written {
        tracing::error!(%error, path = %path.display(), "the dead-letter record could not be written");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receivers_are_checked_against_the_allow_list_at_delivery() {
        let allowed = vec!["hooks.police".to_string(), "10.0.0.7:8080".to_string()];
        assert_eq!(
            receiver("http://hooks.police:80/b", &allowed),
            receiver("http://hooks.police/a", &allowed),
            "one receiver, one queue, however its port is written"
        );
        assert_eq!(
            receiver("http://Hooks.Police/a", &allowed),
            Ok("hooks.police:80".into()),
            "host names without regard to case"
        );
        assert_eq!(
            receiver("http://hooks.police:9000/a", &allowed),
            Ok("hooks.police:9000".into())
        );
        assert_eq!(
            receiver("http://10.0.0.7:8080/x", &allowed),
            Ok("10.0.0.7:8080".into())
        );
        for refused in [
            "http://10.0.0.7:8081/x",
            "http://evil.example/",
            "https://hooks.police/a",
            "http://u:p@hooks.police/a",
            "not a url",
        ] {
            assert!(receiver(refused, &allowed).is_err(), "{refused}");
        }
    }

    #[test]
    fn the_breaker_opens_after_failures_in_a_row_and_a_success_resets_it() {
        let breaker = Breaker::default();
        for _ in 0..BREAK_AFTER - 1 {
            breaker.record(false);
        }
        breaker.record(true);
        for _ in 0..BREAK_AFTER - 1 {
            breaker.record(false);
        }
        assert!(
            breaker.open_for().is_zero(),
            "a success in between resets the count"
        );
        breaker.record(false);
        assert!(breaker.open_for() > COOL_DOWN - Duration::from_secs(1));
        breaker.open_until_ms.store(0, Ordering::Relaxed);
        assert!(breaker.open_for().is_zero(), "after the cool-down");
        breaker.record(false);
        assert!(
            !breaker.open_for().is_zero(),
            "the first failure after it opens it again"
        );
    }

    #[test]
    fn signatures_cover_the_timestamp_and_the_body() {
        let one = signature(b"key", 1, b"{}");
        assert!(one.starts_with("sha256=") && one.len() == 7 + 64);
        assert_eq!(one, signature(b"key", 1, b"{}"));
        assert_ne!(one, signature(b"key", 2, b"{}"));
        assert_ne!(one, signature(b"key", 1, b"{ }"));
        assert_ne!(one, signature(b"other", 1, b"{}"));
        // RFC 4231 test case 2 shape: a known HMAC-SHA256 value.
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").expect("key");
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
