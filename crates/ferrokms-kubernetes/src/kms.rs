//! The plugin's calls to a ferrokms node: the KMS JSON protocol (awsJson1_1) over HTTP or
//! HTTPS, each request signed with SigV4 like any AWS SDK's, so that the node's key policy,
//! grants, quotas and audit trail apply to the plugin as to any client.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
pub use ferrokms_server::client::Endpoint;
use ferrokms_server::client::{sign_post, tls_client_config, SignedPost, SigningKey};
use http_body_util::{BodyExt, Full, Limited};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use zeroize::Zeroizing;

/// The most of an answer read: KMS answers of the operations used here are a few KiB.
const MAX_ANSWER_BYTES: usize = 256 * 1024;
const TIMEOUT: Duration = Duration::from_secs(10);

/// An access key pair (and session token, for a role's temporary credentials).
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Why a call did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The node answered with a KMS error.
    #[error("{code}: {message}")]
    Kms { code: String, message: String },
    #[error("cannot reach the KMS endpoint: {0}")]
    Unreachable(String),
    #[error("the KMS endpoint did not answer within {0:?}")]
    TimedOut(Duration),
    #[error("the KMS answer is not what the protocol allows: {0}")]
    Invalid(String),
}

pub struct KmsClient {
    endpoint: Endpoint,
    region: String,
    credentials: Credentials,
    tls: TlsConnector,
}

impl KmsClient {
    pub fn new(
        endpoint: Endpoint,
        region: String,
        credentials: Credentials,
        ca_bundle: Option<&Path>,
    ) -> Result<KmsClient, String> {
        let tls = tls_client_config(ca_bundle).map_err(|e| e.to_string())?;
        Ok(KmsClient {
            endpoint,
            region,
            credentials,
            tls: TlsConnector::from(Arc::new(tls)),
        })
    }

    /// Calls `operation` (`Encrypt`, `Decrypt`, ...) with `body`; its answer's JSON.
    pub async fn call(&self, operation: &str, body: &Value) -> Result<Value, CallError> {
        tokio::time::timeout(TIMEOUT, self.exchange(operation, body))
            .await
            .map_err(|_| CallError::TimedOut(TIMEOUT))?
    }

    async fn exchange(&self, operation: &str, body: &Value) -> Result<Value, CallError> {
        let invalid = |e: String| CallError::Invalid(e);
        let body = serde_json::to_vec(body).map_err(|e| invalid(e.to_string()))?;
        let target = format!("TrentService.{operation}");
        let mut signed: Vec<(&str, &str)> = vec![("x-amz-target", &target)];
        if let Some(token) = &self.credentials.session_token {
            signed.push(("x-amz-security-token", token));
        }
        let key = SigningKey {
            access_key_id: &self.credentials.access_key_id,
            secret: self.credentials.secret_access_key.as_bytes(),
        };
        let post = SignedPost {
            region: &self.region,
            service: "kms",
            host: self.endpoint.authority(),
            path: "/",
            headers: &signed,
            body: &body,
        };
        let (amz_date, authorization) =
            sign_post(&key, &post, SystemTime::now()).map_err(invalid)?;
        let mut request = Request::builder()
            .method(Method::POST)
            .uri("/")
            .header("host", self.endpoint.authority())
            .header("content-type", "application/x-amz-json-1.1")
            .header("x-amz-date", amz_date)
            .header("authorization", authorization)
            .header(
                "user-agent",
                concat!("ferrokms-kubernetes-kms-plugin/", env!("CARGO_PKG_VERSION")),
            );
        for (name, value) in &signed {
            request = request.header(*name, *value);
        }
        let request = request
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| invalid(e.to_string()))?;
        let answer = self.send(request).await?;
        let status = answer.status();
        let bytes = Limited::new(answer.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|_| invalid("the answer could not be read".into()))?
            .to_bytes();
        let parsed = serde_json::from_slice::<Value>(&bytes);
        // The answer may hold a data key in base64: the copy this process owns is cleared.
        if let Ok(mut owned) = bytes.try_into_mut() {
            zeroize::Zeroize::zeroize(owned.as_mut());
        }
        let json = parsed.map_err(|_| invalid(format!("HTTP {status}: the answer is not JSON")))?;
        if status.is_success() {
            return Ok(json);
        }
        // awsJson1_1: `__type` names the error, maybe after a `namespace#`.
        let code = json["__type"]
            .as_str()
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_owned())
            .ok_or_else(|| invalid(format!("HTTP {status} without an error type")))?;
        let message = json["message"]
            .as_str()
            .or_else(|| json["Message"].as_str())
            .unwrap_or_default()
            .to_owned();
        Err(CallError::Kms { code, message })
    }

    /// One request on a new connection: the plugin calls rarely (a data key per DEK
    /// rotation, a decryption per DEK at the API server's start, a status a minute).
    async fn send(
        &self,
        request: Request<Full<Bytes>>,
    ) -> Result<hyper::Response<hyper::body::Incoming>, CallError> {
        let unreachable = |e: String| CallError::Unreachable(e);
        let tcp = TcpStream::connect(self.endpoint.address())
            .await
            .map_err(|e| unreachable(format!("{}: {e}", self.endpoint.address())))?;
        if self.endpoint.is_tls() {
            let name = ServerName::try_from(self.endpoint.host().to_owned())
                .map_err(|e| unreachable(e.to_string()))?;
            let stream = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| unreachable(format!("TLS: {e}")))?;
            send_on(stream, request).await
        } else {
            send_on(tcp, request).await
        }
    }
}

/// One HTTP/1.1 exchange on a connection.
async fn send_on<S>(
    stream: S,
    request: Request<Full<Bytes>>,
) -> Result<hyper::Response<hyper::body::Incoming>, CallError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let unreachable = |e: hyper::Error| CallError::Unreachable(e.to_string());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(unreachable)?;
    tokio::spawn(connection);
    sender.send_request(request).await.map_err(unreachable)
}
