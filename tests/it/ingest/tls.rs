//! TLS with client certificates (mTLS), configured through `[ingest.tls]`, against the real
//! broker. Certificates are made in the test with rcgen.

use std::path::Path;

use super::support::{self, TestNode, event};
use camtrail_common::tls::TlsConfig;
use camtrail_proto::v1;
use camtrail_proto::v1::ingest_client::IngestClient;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Identity};

struct Pki {
    ca_pem: String,
    client_cert_pem: String,
    client_key_pem: String,
}

/// A CA, a server certificate for `localhost` and a client certificate, written to `dir`.
fn make_pki(dir: &Path) -> Pki {
    let ca_key = KeyPair::generate().expect("ca key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("ca params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).expect("ca cert");
    let issuer = Issuer::new(ca_params, &ca_key);
    let leaf = |names: Vec<String>| {
        let key = KeyPair::generate().expect("key");
        let cert = CertificateParams::new(names)
            .expect("params")
            .signed_by(&key, &issuer)
            .expect("sign");
        (cert.pem(), key.serialize_pem())
    };
    let (server_cert, server_key) = leaf(vec!["localhost".into()]);
    let (client_cert_pem, client_key_pem) = leaf(vec!["gw-a.gateways.invalid".into()]);
    std::fs::write(dir.join("server.pem"), server_cert).expect("write");
    std::fs::write(dir.join("server.key"), server_key).expect("write");
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).expect("write");
    Pki {
        ca_pem: ca_cert.pem(),
        client_cert_pem,
        client_key_pem,
    }
}

async fn connect(
    port: u16,
    tls: ClientTlsConfig,
) -> Result<IngestClient<Channel>, tonic::transport::Error> {
    let channel = Channel::from_shared(format!("https://localhost:{port}"))
        .expect("uri")
        .tls_config(tls)?
        .connect()
        .await?;
    Ok(IngestClient::new(channel))
}

#[tokio::test]
async fn mutual_tls_admits_gateways_with_a_certificate_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pki = make_pki(dir.path());
    let node = TestNode::start_with("tls", |config| {
        config.tls = Some(TlsConfig {
            cert_path: dir.path().join("server.pem"),
            key_path: dir.path().join("server.key"),
            client_ca_path: Some(dir.path().join("ca.pem")),
        });
    })
    .await;
    let server_ca = Certificate::from_pem(&pki.ca_pem);

    let with_cert = ClientTlsConfig::new()
        .ca_certificate(server_ca.clone())
        .domain_name("localhost")
        .identity(Identity::from_pem(
            &pki.client_cert_pem,
            &pki.client_key_pem,
        ));
    let mut client = connect(node.grpc_port(), with_cert)
        .await
        .expect("mTLS connect");
    let ack = client
        .publish_batch(node.authed(v1::EventBatch {
            gateway_id: support::GATEWAY_A.into(),
            batch_seq: 1,
            events: vec![event(1, support::CAMERA_A)],
        }))
        .await
        .expect("publish over mTLS")
        .into_inner();
    assert_eq!(ack.accepted, 1);

    let without_cert = ClientTlsConfig::new()
        .ca_certificate(server_ca)
        .domain_name("localhost");
    let refused = match connect(node.grpc_port(), without_cert).await {
        Err(_) => true,
        Ok(mut client) => client
            .publish_batch(node.authed(v1::EventBatch {
                gateway_id: support::GATEWAY_A.into(),
                batch_seq: 2,
                events: vec![event(2, support::CAMERA_A)],
            }))
            .await
            .is_err(),
    };
    assert!(refused, "a client without a certificate must be refused");
    assert_eq!(
        node.read_topic(1, std::time::Duration::from_secs(10)).len(),
        1
    );
    node.stop().await;
}
