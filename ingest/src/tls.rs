//! TLS (rustls) for the gRPC server, optionally requiring client certificates.

use anyhow::Context;
use tonic::transport::{Certificate, Identity, ServerTlsConfig};

use crate::config::TlsConfig;

/// Build tonic's TLS configuration from PEM files.
pub fn server_config(tls: &TlsConfig) -> anyhow::Result<ServerTlsConfig> {
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
