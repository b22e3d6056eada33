//! Connecting to the first of several servers that accepts: the HTTP connector behind a
//! client configured with `failover_urls` (or a shard's replicas). Requests keep the first
//! URL's path and `Host` (fine for ClickHouse itself; a proxy routing by host name would
//! misroute); only the TCP connection goes to another replica, which serves the same
//! tables. A server that was down is tried first again on every *new* connection; pooled
//! connections to the replica stay in use while busy, so traffic returns to the recovered
//! server only once they idle out (2 s). It fails over on a refused or timed-out connect
//! only: a replica that accepts but answers errors (read-only just after a restart) keeps
//! its traffic, and callers retry those.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use http::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use tower_service::Service;

/// How long one connection attempt may take before the next server is tried: local and
/// LAN servers answer a SYN in well under a millisecond; a killed one refuses at once.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Pooled connections idle for longer are closed (ClickHouse closes its end after 3 s).
pub(crate) const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(2);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects to the requested server, or else to each alternative in order.
#[derive(Clone)]
pub(crate) struct FailoverConnector {
    inner: HttpConnector,
    alternatives: Arc<Vec<Uri>>,
}

impl FailoverConnector {
    /// Alternatives are HTTP URLs (validated by the config); unparsable ones are skipped.
    pub(crate) fn new(alternatives: &[String]) -> Self {
        let mut inner = HttpConnector::new();
        inner.set_connect_timeout(Some(CONNECT_TIMEOUT));
        inner.set_keepalive(Some(Duration::from_secs(60)));
        inner.set_nodelay(true);
        Self {
            inner,
            alternatives: Arc::new(alternatives.iter().filter_map(|u| u.parse().ok()).collect()),
        }
    }
}

impl Service<Uri> for FailoverConnector {
    type Response = <HttpConnector as Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        // HttpConnector is always ready.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let mut inner = self.inner.clone();
        let alternatives = Arc::clone(&self.alternatives);
        Box::pin(async move {
            let first = match inner.call(uri.clone()).await {
                Ok(connection) => return Ok(connection),
                Err(error) => error,
            };
            for alternative in alternatives.iter() {
                match inner.call(alternative.clone()).await {
                    Ok(connection) => {
                        tracing::debug!(failed = %uri, to = %alternative,
                            "ClickHouse server refused; connected to a replica");
                        return Ok(connection);
                    }
                    Err(error) => tracing::debug!(%error, server = %alternative,
                        "ClickHouse replica refused too"),
                }
            }
            Err(first.into())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn connects_to_the_first_server_that_accepts() {
        let up = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let up_addr = up.local_addr().expect("addr");
        // A port nothing listens on: bound, then dropped.
        let down_addr = {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            listener.local_addr().expect("addr")
        };
        let mut connector = FailoverConnector::new(&[format!("http://{up_addr}")]);
        let uri: Uri = format!("http://{down_addr}/").parse().expect("uri");
        let connection = connector.call(uri).await.expect("failed over");
        let (_, peer) = up.accept().await.expect("accept");
        assert_eq!(
            connection.inner().local_addr().expect("local"),
            peer,
            "the connection went to the server that is up"
        );

        let mut nowhere = FailoverConnector::new(&[format!("http://{down_addr}")]);
        let uri: Uri = format!("http://{down_addr}/").parse().expect("uri");
        assert!(
            nowhere.call(uri).await.is_err(),
            "no server accepts: an error"
        );
    }
}
