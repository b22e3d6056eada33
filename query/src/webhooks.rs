//! Signed webhooks for watchlist hits: each hit of an entry with a `webhook_url` is POSTed
//! there as JSON, signed with HMAC-SHA256 (`x-camtrail-signature: sha256=<hex>` over
//! `<timestamp>.<body>`, the timestamp in `x-camtrail-timestamp`, so a receiver can refuse
//! replays), retried with doubling backoff, and after the last failed attempt written as one
//! JSON line to the dead-letter file (0600) for an operator to resend.
//!
//! Only hosts on the node's allow-list (`[query.watchlist] webhook_hosts`) are accepted when
//! an entry is requested. Plain HTTP only in this version: keep the receivers on the
//! police network (TLS to the receiver is not built yet).

use std::io::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use camtrail_model::watchlist::{Alert, HitRecord};
use hmac::{Hmac, Mac};
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sha2::Sha256;
use tokio::sync::{Semaphore, broadcast};

/// Deliveries under way at once; more wait.
const CONCURRENT: usize = 64;

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

/// Deliver every hit of `alerts` that has a webhook until the hub closes.
pub async fn run(mut alerts: broadcast::Receiver<Arc<Alert>>, settings: WebhookSettings) {
    let permits = Arc::new(Semaphore::new(CONCURRENT));
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    loop {
        let alert = match alerts.recv().await {
            Ok(alert) => alert,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::error!(missed, "webhook delivery fell behind; hits were not sent");
                continue;
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        let Some(url) = alert.webhook_url.clone() else {
            continue;
        };
        let Ok(permit) = Arc::clone(&permits).acquire_owned().await else {
            return;
        };
        let (client, settings) = (client.clone(), settings.clone());
        tokio::spawn(async move {
            deliver(&client, &settings, &url, &alert).await;
            drop(permit);
        });
    }
}

async fn deliver(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    settings: &WebhookSettings,
    url: &str,
    alert: &Alert,
) {
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
                match tokio::time::timeout(limit, client.request(request)).await {
                    Ok(Ok(response)) if response.status().is_success() => return,
                    Ok(Ok(response)) => format!("answered {}", response.status()),
                    Ok(Err(error)) => error.to_string(),
                    Err(_) => format!("no answer within {limit:?}"),
                }
            }
            Err(error) => error.to_string(),
        };
        tracing::warn!(attempt, error = %outcome, "webhook delivery failed");
        last_error = outcome;
        if attempt < settings.attempts {
            tokio::time::sleep(backoff).await;
            backoff = backoff.saturating_mul(2).min(Duration::from_secs(60));
        }
    }
    dead_letter(settings, url, &hit.hit_id, &last_error);
}

/// Record an undeliverable hit (its id, not its content: the hit is in the store).
fn dead_letter(settings: &WebhookSettings, url: &str, hit_id: &str, error: &str) {
    tracing::error!(
        attempts = settings.attempts,
        "a webhook hit is undeliverable"
    );
    let Some(path) = &settings.dead_letter_path else {
        return;
    };
    let line = serde_json::json!({
        "hit_id": hit_id,
        "url": url,
        "attempts": settings.attempts,
        "last_error": error,
        "at_ms": camtrail_common::now_ms(),
    });
    let written = camtrail_storage::private::touch(path).and_then(|()| {
        let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
        writeln!(file, "{line}")?;
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
