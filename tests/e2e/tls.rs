//! HTTPS: the SDK and the aws CLI over TLS with the server's certificate as their CA
//! bundle; TLS 1.1 refused and TLS 1.2 only with forward-secret suites; a certificate
//! reloaded on SIGHUP while connections made before keep working; plain HTTP refused beyond
//! loopback unless asked for.

use std::io::{Read, Write};
use std::path::Path;
use std::sync::Arc;

use aws_sdk_kms::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_http_client::tls;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::{Server, REGION};
use crate::{decrypt, encrypt, new_key};

pub fn sdk_trusting(server: &Server, ca_pem: &[u8]) -> aws_sdk_kms::Client {
    let http = aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::AwsLc,
        ))
        .tls_context(
            tls::TlsContext::builder()
                .with_trust_store(tls::TrustStore::empty().with_pem_certificate(ca_pem.to_vec()))
                .build()
                .unwrap(),
        )
        .build_https();
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            &server.access_key_id,
            &server.secret_access_key,
            None,
            None,
            "test",
        ))
        .endpoint_url(&server.endpoint)
        .http_client(http)
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

/// A self-signed certificate for 127.0.0.1, written as `<name>-cert.pem` and
/// `<name>-key.pem` in `dir`.
pub fn certificate(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).unwrap();
    let (cert, key) = (
        dir.join(format!("{name}-cert.pem")),
        dir.join(format!("{name}-key.pem")),
    );
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    (cert, key, made.cert.der().to_vec())
}

/// A strict-mode server with a fresh certificate `name`: the server, the certificate and
/// key files it serves, and the certificate's DER.
fn serve_with_certificate(
    temp: &tempfile::TempDir,
    name: &str,
) -> (Server, std::path::PathBuf, std::path::PathBuf, Vec<u8>) {
    let (cert, key, der) = certificate(temp.path(), name);
    let server = Server::start_in(
        &temp.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    (server, cert, key, der)
}

fn client_config(
    roots: &[&Path],
    versions: &[&'static rustls::SupportedProtocolVersion],
) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for root in roots {
        store
            .add(CertificateDer::from_pem_file(root).unwrap())
            .unwrap();
    }
    Arc::new(
        rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::aws_lc_rs::default_provider(),
        ))
        .with_protocol_versions(versions)
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth(),
    )
}

async fn connect(
    server: &Server,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(&server.addr).await?;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}

#[tokio::test]
async fn the_sdk_and_the_aws_cli_work_over_https_with_the_ca_bundle() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &["--dev", "--dev-tls"]);
    assert!(
        server.endpoint.starts_with("https://"),
        "{}",
        server.endpoint
    );
    let ca = temp.path().join("dev-tls-cert.pem");
    let kms = sdk_trusting(&server, &std::fs::read(&ca).unwrap());
    let (id, _) = new_key(&kms).await;
    let blob = encrypt(&kms, &id, "over TLS")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    assert_eq!(
        decrypt(&kms, blob)
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref(),
        b"over TLS"
    );

    // A client that does not trust the certificate gets no answer.
    let other = tempfile::tempdir().unwrap();
    let (_, _, _) = certificate(other.path(), "stranger");
    let stranger = sdk_trusting(
        &server,
        &std::fs::read(other.path().join("stranger-cert.pem")).unwrap(),
    );
    assert!(stranger.list_keys().send().await.is_err());

    let out = std::process::Command::new("aws")
        .args(["--endpoint-url", &server.endpoint, "--ca-bundle"])
        .arg(&ca)
        .args(["kms", "describe-key", "--key-id", &id, "--output", "json"])
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", REGION)
        .output()
        .expect("the aws CLI (pip install awscli)");
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains(&id));
}

/// A TLS 1.1 ClientHello (no supported_versions extension) offering
/// TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA and TLS_RSA_WITH_AES_128_CBC_SHA.
fn tls11_client_hello() -> Vec<u8> {
    let mut body = vec![0x03, 0x02];
    body.extend([0x42; 32]); // random
    body.push(0); // no session id
    body.extend([0x00, 0x04, 0xc0, 0x13, 0x00, 0x2f]);
    body.extend([0x01, 0x00]); // null compression
    let mut handshake = vec![0x01, 0x00];
    handshake.extend(u16::try_from(body.len()).unwrap().to_be_bytes());
    handshake.extend(body);
    let mut record = vec![0x16, 0x03, 0x01];
    record.extend(u16::try_from(handshake.len()).unwrap().to_be_bytes());
    record.extend(handshake);
    record
}

#[tokio::test]
async fn tls_1_1_is_refused_and_tls_1_2_gets_a_forward_secret_suite() {
    let temp = tempfile::tempdir().unwrap();
    let (server, cert, _, _) = serve_with_certificate(&temp, "server");
    let mut tcp = std::net::TcpStream::connect(&server.addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    tcp.write_all(&tls11_client_hello()).unwrap();
    let mut reply = [0u8; 7];
    tcp.read_exact(&mut reply).unwrap();
    assert_eq!(reply[0], 0x15, "an alert, not a ServerHello: {reply:?}");
    assert_eq!(reply[5], 2, "a fatal alert");

    let tls12 = connect(&server, client_config(&[&cert], &[&rustls::version::TLS12]))
        .await
        .unwrap();
    let (_, session) = tls12.get_ref();
    assert_eq!(
        session.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_2)
    );
    let suite = format!("{:?}", session.negotiated_cipher_suite().unwrap().suite());
    assert!(suite.contains("ECDHE"), "{suite}");
    let tls13 = connect(&server, client_config(&[&cert], &[&rustls::version::TLS13]))
        .await
        .unwrap();
    assert_eq!(
        tls13.get_ref().1.protocol_version(),
        Some(rustls::ProtocolVersion::TLSv1_3)
    );
}

fn peer_certificate(stream: &tokio_rustls::client::TlsStream<tokio::net::TcpStream>) -> Vec<u8> {
    stream.get_ref().1.peer_certificates().unwrap()[0].to_vec()
}

/// Sends an unsigned request and returns the status line of the answer.
async fn status_line(
    stream: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>,
) -> String {
    stream
        .write_all(
            b"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: TrentService.ListKeys\r\n\
              Content-Type: application/x-amz-json-1.1\r\nContent-Length: 2\r\n\r\n{}",
        )
        .await
        .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = stream.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn sighup_reloads_the_certificate_without_dropping_connections() {
    let temp = tempfile::tempdir().unwrap();
    let (server, cert, key, first_der) = serve_with_certificate(&temp, "live");
    let first_copy = temp.path().join("first.pem");
    std::fs::copy(&cert, &first_copy).unwrap();
    let mut before = connect(
        &server,
        client_config(&[&first_copy], &[&rustls::version::TLS13]),
    )
    .await
    .unwrap();
    assert_eq!(peer_certificate(&before), first_der);
    assert_eq!(status_line(&mut before).await, "HTTP/1.1 400 Bad Request");

    let (second_cert, second_key, second_der) = certificate(temp.path(), "next");
    std::fs::rename(&second_cert, &cert).unwrap();
    std::fs::rename(&second_key, &key).unwrap();
    assert!(std::process::Command::new("kill")
        .args(["-HUP", &server.pid().to_string()])
        .status()
        .unwrap()
        .success());
    let roots = client_config(&[&first_copy, &cert], &[&rustls::version::TLS13]);
    let mut seen = Vec::new();
    for _ in 0..50 {
        seen = peer_certificate(&connect(&server, roots.clone()).await.unwrap());
        if seen == second_der {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(seen, second_der, "new connections get the new certificate");
    assert_eq!(
        status_line(&mut before).await,
        "HTTP/1.1 400 Bad Request",
        "the connection made before the reload still answers"
    );
}

#[test]
fn plain_http_beyond_loopback_needs_insecure_http() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().to_str().unwrap();
    let refused = crate::harness::ferrokms_command(temp.path())
        .args(["serve", "--listen", "0.0.0.0:0", "--data-dir", dir])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let text = String::from_utf8_lossy(&refused.stderr);
    assert!(text.contains("--tls-cert"), "{text}");

    let server = Server::start_with_args(
        &[
            "serve",
            "--listen",
            "0.0.0.0:0",
            "--data-dir",
            dir,
            "--insecure-http",
        ],
        temp.path(),
    );
    assert!(
        server.endpoint.starts_with("http://0.0.0.0:"),
        "{}",
        server.endpoint
    );
}
