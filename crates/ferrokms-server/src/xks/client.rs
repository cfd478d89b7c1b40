//! The side of ferrokms that calls an XKS proxy: HTTPS, requests signed with SigV4 for the
//! `kms-xks-proxy` service (signed headers `host;x-amz-date`), answers checked before use.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::Bytes;
use axum::http::{Method, Request};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

use super::wire::{
    DecryptAnswer, DecryptRequest, EncryptAnswer, EncryptRequest, ErrorAnswer, HealthAnswer,
    KeyMetadataAnswer, MetadataOnly, ProxyError, RequestMetadata,
};
use super::SERVICE;
use crate::client::{sign_post, tls_client_config, SignedPost, SigningKey};
use crate::ServerError;
use ferrokms_core::ciphertext::ExternalSeal;

const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// Idle connections kept per proxy address.
const IDLE_CONNECTIONS: usize = 16;

type Sender = hyper::client::conn::http1::SendRequest<Full<Bytes>>;
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// `[xks]` in the config file: how this node reaches external key store proxies.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct XksClientConfig {
    /// PEM certificates of CAs trusted for proxies, besides the system's.
    pub ca_bundle: Option<PathBuf>,
    /// Where to connect for a proxy host instead of `<host>:443`, e.g.
    /// `"xks.example.com" = "10.0.0.5:8443"`; the certificate must still name the host.
    #[serde(default)]
    pub connect_to: HashMap<String, String>,
    /// How long to wait for a proxy's answer, in milliseconds (AWS waits 250).
    pub timeout_ms: Option<u64>,
}

/// Where a store's proxy is and how to sign for it.
pub struct XksEndpoint {
    /// `https://host`, without port or path.
    pub uri_endpoint: String,
    /// `[/prefix]/kms/xks/v1`.
    pub uri_path: String,
    pub access_key_id: String,
    pub secret: Zeroizing<String>,
}

/// Why a call to a proxy failed.
#[derive(Debug)]
pub enum XksFailure {
    /// The proxy answered with one of its errors.
    Proxy(ProxyError),
    /// No connection could be made.
    Unreachable(String),
    /// The TLS handshake failed (certificate, name, versions).
    Tls(String),
    TimedOut,
    /// The answer is not what the specification allows.
    InvalidResponse(String),
}

impl std::fmt::Display for XksFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            XksFailure::Proxy(e) => write!(f, "the proxy answered {}", e.name()),
            XksFailure::Unreachable(e) => write!(f, "the proxy is not reachable: {e}"),
            XksFailure::Tls(e) => write!(f, "TLS with the proxy failed: {e}"),
            XksFailure::TimedOut => f.write_str("the proxy did not answer in time"),
            XksFailure::InvalidResponse(e) => write!(f, "the proxy's answer is invalid: {e}"),
        }
    }
}

pub struct XksClient {
    tls: TlsConnector,
    connect_to: HashMap<String, String>,
    timeout: Duration,
    /// False only for a client that must never leave the process (the fuzz targets').
    dials: bool,
    /// Open connections to proxies, by `host@address`, that wait for their next request.
    idle: std::sync::Mutex<HashMap<String, Vec<Sender>>>,
}

fn invalid(what: &str) -> XksFailure {
    XksFailure::InvalidResponse(what.to_owned())
}

fn decode(value: &str, what: &str) -> Result<Vec<u8>, XksFailure> {
    STANDARD
        .decode(value)
        .map_err(|_| invalid(&format!("{what} is not base64")))
}

impl XksClient {
    pub fn new(config: &XksClientConfig) -> Result<Self, ServerError> {
        let tls = tls_client_config(config.ca_bundle.as_deref())?;
        Ok(XksClient {
            tls: TlsConnector::from(Arc::new(tls)),
            connect_to: config.connect_to.clone(),
            timeout: config
                .timeout_ms
                .map(Duration::from_millis)
                .unwrap_or(DEFAULT_TIMEOUT),
            dials: true,
            idle: Default::default(),
        })
    }

    /// A client for which every proxy is unreachable: it opens no connection at all.
    #[doc(hidden)]
    pub fn offline() -> Result<Self, ServerError> {
        let mut client = Self::new(&XksClientConfig::default())?;
        client.dials = false;
        Ok(client)
    }

    async fn call<T: DeserializeOwned>(
        &self,
        endpoint: &XksEndpoint,
        region: &str,
        suffix: &str,
        body: &impl Serialize,
    ) -> Result<T, XksFailure> {
        let body = serde_json::to_vec(body).map_err(|e| invalid(&e.to_string()))?;
        tokio::time::timeout(self.timeout, self.exchange(endpoint, region, suffix, body))
            .await
            .map_err(|_| XksFailure::TimedOut)?
    }

    async fn exchange<T: DeserializeOwned>(
        &self,
        endpoint: &XksEndpoint,
        region: &str,
        suffix: &str,
        body: Vec<u8>,
    ) -> Result<T, XksFailure> {
        let host = endpoint
            .uri_endpoint
            .strip_prefix("https://")
            .ok_or_else(|| XksFailure::Unreachable("the endpoint is not https".into()))?;
        if !self.dials {
            return Err(XksFailure::Unreachable(
                "this client opens no connections".into(),
            ));
        }
        let address = self
            .connect_to
            .get(host)
            .cloned()
            .unwrap_or_else(|| format!("{host}:443"));
        let pool_key = format!("{host}@{address}");
        let path = format!("{}{suffix}", endpoint.uri_path);
        let (amz_date, authorization) = sign(endpoint, region, host, &path, &body)?;
        let request = Request::builder()
            .method(Method::POST)
            .uri(&path)
            .header("host", host)
            .header("x-amz-date", &amz_date)
            .header("content-type", "application/json")
            .header("authorization", authorization)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| invalid(&e.to_string()))?;
        let answer = match self.idle_connection(&pool_key) {
            Some(mut sender) => match sender.send_request(request.clone()).await {
                Ok(answer) => Some((sender, answer)),
                // The proxy closed it while idle: a new connection takes the request.
                Err(_) => None,
            },
            None => None,
        };
        let (sender, answer) = match answer {
            Some(done) => done,
            None => {
                let mut sender = self.connect(host, &address).await?;
                let answer = sender
                    .send_request(request)
                    .await
                    .map_err(|e| XksFailure::Unreachable(e.to_string()))?;
                (sender, answer)
            }
        };
        let status = answer.status();
        let bytes = Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|_| invalid("the answer could not be read"))?
            .to_bytes();
        self.keep(pool_key, sender);
        if status.is_success() {
            return serde_json::from_slice(&bytes)
                .map_err(|_| invalid("the answer is not the JSON expected"));
        }
        let error: ErrorAnswer = serde_json::from_slice(&bytes)
            .map_err(|_| invalid(&format!("HTTP {status} without an error name")))?;
        ProxyError::parse(&error.error_name)
            .map(XksFailure::Proxy)
            .ok_or_else(|| invalid(&format!("unknown error {}", error.error_name)))
            .and_then(Err)
    }

    /// An open connection to the proxy at `pool_key`, if one waits.
    fn idle_connection(&self, pool_key: &str) -> Option<Sender> {
        let mut idle = self.idle.lock().ok()?;
        let waiting = idle.get_mut(pool_key)?;
        while let Some(sender) = waiting.pop() {
            if !sender.is_closed() {
                return Some(sender);
            }
        }
        None
    }

    /// Keeps a connection whose exchange is over for the next request, if room remains.
    fn keep(&self, pool_key: String, sender: Sender) {
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            let waiting = idle.entry(pool_key).or_default();
            if waiting.len() < IDLE_CONNECTIONS {
                waiting.push(sender);
            }
        }
    }

    /// A new HTTPS connection to the proxy `host` at `address`.
    async fn connect(&self, host: &str, address: &str) -> Result<Sender, XksFailure> {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| XksFailure::Unreachable(format!("{address}: {e}")))?;
        let name =
            ServerName::try_from(host.to_owned()).map_err(|e| XksFailure::Tls(e.to_string()))?;
        let stream = self
            .tls
            .connect(name, tcp)
            .await
            .map_err(|e| XksFailure::Tls(e.to_string()))?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| XksFailure::Unreachable(e.to_string()))?;
        tokio::spawn(connection);
        Ok(sender)
    }

    pub async fn health(
        &self,
        endpoint: &XksEndpoint,
        region: &str,
        metadata: RequestMetadata,
    ) -> Result<HealthAnswer, XksFailure> {
        let answer: HealthAnswer = self
            .call(
                endpoint,
                region,
                "/health",
                &MetadataOnly {
                    request_metadata: metadata,
                },
            )
            .await?;
        if answer.ekm_fleet_details.is_empty()
            || answer
                .ekm_fleet_details
                .iter()
                .all(|e| e.health_status == "UNAVAILABLE")
        {
            return Err(XksFailure::Unreachable(
                "every external key manager is unavailable".into(),
            ));
        }
        Ok(answer)
    }

    pub async fn key_metadata(
        &self,
        endpoint: &XksEndpoint,
        region: &str,
        key_id: &str,
        metadata: RequestMetadata,
    ) -> Result<KeyMetadataAnswer, XksFailure> {
        self.call(
            endpoint,
            region,
            &format!("/keys/{key_id}/metadata"),
            &MetadataOnly {
                request_metadata: metadata,
            },
        )
        .await
    }

    /// Encrypts `plaintext` under the external key, checking the answer's integrity value.
    pub async fn encrypt(
        &self,
        endpoint: &XksEndpoint,
        region: &str,
        key_id: &str,
        metadata: RequestMetadata,
        plaintext: &[u8],
        aad: &[u8],
    ) -> Result<ExternalSeal, XksFailure> {
        let request = EncryptRequest {
            request_metadata: metadata,
            plaintext: STANDARD.encode(plaintext),
            encryption_algorithm: "AES_GCM".into(),
            additional_authenticated_data: Some(STANDARD.encode(aad)),
            ciphertext_data_integrity_value_algorithm: Some("SHA_256".into()),
        };
        let answer: EncryptAnswer = self
            .call(
                endpoint,
                region,
                &format!("/keys/{key_id}/encrypt"),
                &request,
            )
            .await?;
        let ciphertext = decode(&answer.ciphertext, "ciphertext")?;
        let iv: [u8; 12] = decode(&answer.initialization_vector, "initializationVector")?
            .try_into()
            .map_err(|_| invalid("the IV is not 12 bytes"))?;
        let tag: [u8; 16] = decode(&answer.authentication_tag, "authenticationTag")?
            .try_into()
            .map_err(|_| invalid("the tag is not 16 bytes"))?;
        let cipher_metadata = match &answer.ciphertext_metadata {
            Some(m) => decode(m, "ciphertextMetadata")?,
            None => Vec::new(),
        };
        if ciphertext.len() != plaintext.len()
            || cipher_metadata.len() > ferrokms_core::ciphertext::MAX_EXTERNAL_METADATA
        {
            return Err(invalid(
                "the ciphertext or its metadata has the wrong length",
            ));
        }
        let integrity = answer
            .ciphertext_data_integrity_value
            .as_deref()
            .ok_or_else(|| invalid("no ciphertextDataIntegrityValue"))?;
        let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
        for part in [aad, &cipher_metadata, &iv, &ciphertext, &tag] {
            ctx.update(part);
        }
        let expected = ctx.finish();
        aws_lc_rs::constant_time::verify_slices_are_equal(
            expected.as_ref(),
            &decode(integrity, "ciphertextDataIntegrityValue")?,
        )
        .map_err(|_| invalid("the ciphertextDataIntegrityValue does not match"))?;
        Ok(ExternalSeal {
            iv,
            tag,
            metadata: cipher_metadata,
            ciphertext,
        })
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn decrypt(
        &self,
        endpoint: &XksEndpoint,
        region: &str,
        key_id: &str,
        metadata: RequestMetadata,
        sealed: &ExternalSeal,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, XksFailure> {
        let request = DecryptRequest {
            request_metadata: metadata,
            ciphertext: STANDARD.encode(&sealed.ciphertext),
            encryption_algorithm: "AES_GCM".into(),
            initialization_vector: STANDARD.encode(sealed.iv),
            authentication_tag: STANDARD.encode(sealed.tag),
            ciphertext_metadata: (!sealed.metadata.is_empty())
                .then(|| STANDARD.encode(&sealed.metadata)),
            additional_authenticated_data: Some(STANDARD.encode(aad)),
        };
        let answer: DecryptAnswer = self
            .call(
                endpoint,
                region,
                &format!("/keys/{key_id}/decrypt"),
                &request,
            )
            .await?;
        let plaintext = Zeroizing::new(decode(&answer.plaintext, "plaintext")?);
        if plaintext.len() != sealed.ciphertext.len() {
            return Err(invalid("the plaintext has the wrong length"));
        }
        Ok(plaintext)
    }
}

/// The `Authorization` header of a proxy request.
fn sign(
    endpoint: &XksEndpoint,
    region: &str,
    host: &str,
    path: &str,
    body: &[u8],
) -> Result<(String, String), XksFailure> {
    let key = SigningKey {
        access_key_id: &endpoint.access_key_id,
        secret: endpoint.secret.as_bytes(),
    };
    let post = SignedPost {
        region,
        service: SERVICE,
        host,
        path,
        headers: &[],
        body,
    };
    sign_post(&key, &post, SystemTime::now()).map_err(|e| invalid(&e))
}
