//! TLS (rustls) for every node: the `tls` setting, tonic's configuration for gRPC, and a
//! rustls acceptor in front of an axum router for HTTP. Optional client certificates (mTLS)
//! in addition to the bearer token.

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};
use tower::ServiceExt;

/// TLS settings (PEM files): `tls = { cert_path = "...", key_path = "...", client_ca_path = "..." }`.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// Server certificate chain.
    pub cert_path: PathBuf,
    /// Server private key.
    pub key_path: PathBuf,
    /// When set, clients must present a certificate signed by this CA (mTLS), in addition
    /// to their token.
    pub client_ca_path: Option<PathBuf>,
}

/// tonic's TLS configuration (gRPC servers) from the PEM files.
pub fn tonic_server_config(tls: &TlsConfig) -> anyhow::Result<ServerTlsConfig> {
    let cert = std::fs::read(&tls.cert_path)
        .with_context(|| format!("reading TLS certificate {}", tls.cert_path.display()))?;
    let key = std::fs::read(&tls.key_path)
        .with_context(|| format!("reading TLS key {}", tls.key_path.display()))?;
    let mut config = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
    if let Some(ca_path) = &tls.client_ca_path {
        let ca = std::fs::read(ca_path)
            .with_context(|| format!("reading client CA {}", ca_path.display()))?;
        config = config.client_ca_root(Certificate::from_pem(ca));
    }
    Ok(config)
}

/// rustls server configuration (HTTP servers) from the PEM files (ALPN h2 and http/1.1).
pub fn rustls_config(tls: &TlsConfig) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let certs = CertificateDer::pem_file_iter(&tls.cert_path)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .with_context(|| format!("reading TLS certificate {}", tls.cert_path.display()))?;
    let key = PrivateKeyDer::from_pem_file(&tls.key_path)
        .with_context(|| format!("reading TLS key {}", tls.key_path.display()))?;
    let builder = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()?;
    let builder = match &tls.client_ca_path {
        Some(ca_path) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in CertificateDer::pem_file_iter(ca_path)
                .with_context(|| format!("reading client CA {}", ca_path.display()))?
            {
                roots.add(cert?)?;
            }
            let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots),
                provider,
            )
            .build()?;
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Serve `app` over TLS on `listener` until `shutdown` resolves. Connections accepted
/// before then run to completion on their own tasks.
pub async fn serve_https(
    listener: TcpListener,
    app: axum::Router,
    config: Arc<rustls::ServerConfig>,
    shutdown: impl Future<Output = ()> + Send,
) -> anyhow::Result<()> {
    let acceptor = TlsAcceptor::from(config);
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return Ok(()),
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        tokio::spawn(async move {
            let stream = match acceptor.accept(stream).await {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::debug!(%error, %addr, "TLS handshake failed");
                    return;
                }
            };
            let service = hyper::service::service_fn(
                move |mut request: hyper::Request<hyper::body::Incoming>| {
                    request
                        .extensions_mut()
                        .insert(ConnectInfo::<SocketAddr>(addr));
                    app.clone().oneshot(request)
                },
            );
            if let Err(error) = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await
            {
                tracing::debug!(%error, %addr, "HTTPS connection ended with an error");
            }
        });
    }
}
