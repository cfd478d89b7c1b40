//! `ferrokms xks-proxy`: the XKS Proxy API in front of a PKCS#11 token, so that one ferrokms
//! (or AWS KMS) can keep the outer layer of its ciphertexts under keys that never leave that
//! token. An external key id is the label of an AES key in the token.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_lc_rs::constant_time::verify_slices_are_equal;
use aws_lc_rs::digest;
use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use ferrokms_core::random;
use ferrokms_hsm::{HsmError, Token, TokenSpec};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::wire::{
    DecryptAnswer, DecryptRequest, EkmDetail, EncryptAnswer, EncryptRequest, ErrorAnswer,
    HealthAnswer, KeyMetadataAnswer, MetadataOnly, ProxyError,
};
use super::{gcm_aad, API_PATH, SERVICE};
use crate::sigv4::canonical::{canonical_request, signature, string_to_sign, RequestParts};
use crate::sigv4::header::{parse_amz_date, AuthorizationHeader};
use crate::ServerError;

/// The most plaintext, ciphertext or AAD the proxy takes (the specification asks for at
/// least 4300 bytes of data and 8192 of AAD).
const MAX_DATA_BYTES: usize = 8192;
/// How far a request's date may be from the proxy's clock.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// An access key pair KMS signs its requests to the proxy with (the store's
/// XksProxyAuthenticationCredential).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyCredential {
    pub access_key_id: String,
    #[serde(deserialize_with = "secret")]
    pub secret_access_key: Zeroizing<String>,
}

fn secret<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Zeroizing<String>, D::Error> {
    String::deserialize(d).map(Zeroizing::new)
}

impl std::fmt::Debug for ProxyCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProxyCredential({}, <redacted>)", self.access_key_id)
    }
}

/// The proxy's TOML configuration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProxyConfig {
    pub listen: SocketAddr,
    /// HTTPS certificate chain and key (PEM): the specification allows only HTTPS.
    pub tls_cert: PathBuf,
    pub tls_key: PathBuf,
    /// Put before `/kms/xks/v1` in every path (the store's XksProxyUriPath prefix).
    #[serde(default)]
    pub uri_path_prefix: String,
    pub module: PathBuf,
    pub token_label: String,
    /// The token's slot, where labels alone are not unique.
    #[serde(default)]
    pub slot: Option<u64>,
    #[serde(default)]
    pub pin_file: Option<PathBuf>,
    #[serde(default)]
    pub pin_env: Option<String>,
    /// Accepted credentials; two at once let one be rotated.
    pub credentials: Vec<ProxyCredential>,
}

impl ProxyConfig {
    /// Logs in to the proxy's token.
    fn token(&self) -> Result<Token, ServerError> {
        let pin =
            crate::root_of_trust::read_pin(self.pin_file.as_deref(), self.pin_env.as_deref())?;
        Token::open(&TokenSpec {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            slot: self.slot,
            pin,
        })
        .map_err(|e| ServerError::Config(format!("token {:?}: {e}", self.token_label)))
    }
}

struct Proxy {
    token: Arc<Token>,
    prefix: String,
    credentials: Vec<ProxyCredential>,
}

/// A request the proxy turns down, and why; it answers as the specification's error body.
struct Refusal {
    error: ProxyError,
    message: String,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = ErrorAnswer {
            error_name: self.error.name().to_owned(),
            error_message: Some(self.message),
        };
        let status =
            StatusCode::from_u16(self.error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, axum::Json(body)).into_response()
    }
}

fn error(error: ProxyError, message: &str) -> Refusal {
    Refusal {
        error,
        message: message.to_owned(),
    }
}

fn token_error(e: HsmError) -> Refusal {
    match e {
        HsmError::KeyNotFound(_) => error(ProxyError::KeyNotFound, "No such external key."),
        HsmError::KeyExtractable(_) => error(
            ProxyError::InvalidState,
            "The external key can leave its token.",
        ),
        HsmError::Unauthentic => error(
            ProxyError::InvalidCiphertext,
            "The ciphertext, IV, tag or AAD is corrupted, missing or otherwise invalid.",
        ),
        e => {
            tracing::error!(error = %e, "the token failed");
            error(ProxyError::Internal, "The external key manager failed.")
        }
    }
}

/// Opens the token and builds the proxy's router.
pub fn router(config: &ProxyConfig) -> Result<Router, ServerError> {
    if config.credentials.is_empty() {
        return Err(ServerError::Config(
            "the proxy needs at least one [[credentials]] entry".into(),
        ));
    }
    let prefix = config.uri_path_prefix.trim_end_matches('/').to_owned();
    if !prefix.is_empty()
        && (!prefix.starts_with('/')
            || !prefix[1..]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b)))
    {
        return Err(ServerError::Config(format!(
            "uri_path_prefix {prefix:?} must start with / and hold only letters, digits, /, _ and -"
        )));
    }
    let token = config.token()?;
    let proxy = Arc::new(Proxy {
        token: Arc::new(token),
        prefix,
        credentials: config.credentials.clone(),
    });
    Ok(Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let proxy = proxy.clone();
            async move { proxy.handle(method, uri, headers, body).await }
        },
    ))
}

enum Route {
    Health,
    Metadata(String),
    Encrypt(String),
    Decrypt(String),
}

impl Proxy {
    fn route(&self, path: &str) -> Option<Route> {
        let rest = path.strip_prefix(&self.prefix)?.strip_prefix(API_PATH)?;
        if rest == "/health" {
            return Some(Route::Health);
        }
        let (key, operation) = rest.strip_prefix("/keys/")?.split_once('/')?;
        let valid_key = !key.is_empty()
            && key.len() <= 128
            && key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b));
        if !valid_key {
            return None;
        }
        match operation {
            "metadata" => Some(Route::Metadata(key.to_owned())),
            "encrypt" => Some(Route::Encrypt(key.to_owned())),
            "decrypt" => Some(Route::Decrypt(key.to_owned())),
            _ => None,
        }
    }

    async fn handle(&self, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
        let Some(route) = self.route(uri.path()) else {
            return error(ProxyError::InvalidUriPath, "No such URI path.").into_response();
        };
        if method != Method::POST {
            return StatusCode::METHOD_NOT_ALLOWED.into_response();
        }
        if let Err(message) = self.authenticate(&method, &uri, &headers, &body) {
            return error(ProxyError::AuthenticationFailed, message).into_response();
        }
        let token = self.token.clone();
        // PKCS#11 calls block: they run off the async workers.
        let answer = tokio::task::spawn_blocking(move || match route {
            Route::Health => health(&token, &body),
            Route::Metadata(key) => key_metadata(&token, &key, &body),
            Route::Encrypt(key) => encrypt(&token, &key, &body),
            Route::Decrypt(key) => decrypt(&token, &key, &body),
        })
        .await;
        match answer {
            Ok(Ok(response)) => response,
            Ok(Err(refusal)) => refusal.into_response(),
            Err(_) => error(ProxyError::Internal, "The request failed.").into_response(),
        }
    }

    /// SigV4 with service `kms-xks-proxy`, by one of the configured credentials.
    fn authenticate(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<(), &'static str> {
        let text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let raw = text("authorization").ok_or("The request is not signed.")?;
        let date = text("x-amz-date").ok_or("The request has no X-Amz-Date.")?;
        let auth =
            AuthorizationHeader::parse(raw, true).map_err(|_| "The signature is malformed.")?;
        if auth.service != SERVICE
            || !auth.signed_headers.iter().any(|h| h == "host")
            || !auth.signed_headers.iter().any(|h| h == "x-amz-date")
        {
            return Err("The signature does not cover what it must.");
        }
        let when = parse_amz_date(date).ok_or("X-Amz-Date is malformed.")?;
        let now = SystemTime::now();
        let skew = now
            .duration_since(when)
            .or_else(|_| when.duration_since(now))
            .unwrap_or(Duration::MAX);
        if skew > MAX_SKEW || !date.starts_with(&auth.scope_date) {
            return Err("The request's date is too far from the proxy's.");
        }
        let credential = self
            .credentials
            .iter()
            .find(|c| c.access_key_id == auth.access_key_id)
            .ok_or("The access key is not known to this proxy.")?;
        // Over HTTP/2 the host travels as :authority, which signs in Host's place.
        let request = RequestParts {
            method,
            authority: uri.authority().map(|a| a.as_str()),
            path: uri.path(),
            query: uri.query(),
            headers,
            body,
        };
        let canonical = canonical_request(&request, &auth);
        tracing::debug!(canonical = %String::from_utf8_lossy(&canonical), "the canonical request of a proxy call");
        let expected = signature(
            credential.secret_access_key.as_bytes(),
            &auth,
            &string_to_sign(date, &auth, &canonical),
        );
        verify_slices_are_equal(expected.as_bytes(), auth.signature.as_bytes())
            .map_err(|_| "The signature does not match.")
    }
}

fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, Refusal> {
    serde_json::from_slice(body)
        .map_err(|_| error(ProxyError::Validation, "The request body is not valid."))
}

fn decode(value: &str, what: &str, max: usize) -> Result<Vec<u8>, Refusal> {
    let bytes = STANDARD
        .decode(value)
        .map_err(|_| error(ProxyError::Validation, &format!("{what} is not base64.")))?;
    if bytes.len() > max {
        return Err(error(
            ProxyError::UnsupportedOperation,
            &format!("{what} is longer than {max} bytes."),
        ));
    }
    Ok(bytes)
}

fn require_principal(metadata: &super::wire::RequestMetadata) -> Result<(), Refusal> {
    match &metadata.aws_principal_arn {
        Some(_) => Ok(()),
        None => Err(error(
            ProxyError::Validation,
            "requestMetadata.awsPrincipalArn is required.",
        )),
    }
}

fn json<T: serde::Serialize>(value: &T) -> Response {
    axum::Json(value).into_response()
}

fn health(token: &Token, body: &[u8]) -> Result<Response, Refusal> {
    parse::<MetadataOnly>(body)?;
    let status = match token.check() {
        Ok(()) => "ACTIVE",
        Err(e) => {
            tracing::warn!(error = %e, "the token does not answer");
            "UNAVAILABLE"
        }
    };
    Ok(json(&HealthAnswer {
        xks_proxy_fleet_size: 1,
        xks_proxy_vendor: "ferrokms".into(),
        xks_proxy_model: format!("ferrokms xks-proxy {}", env!("CARGO_PKG_VERSION")),
        ekm_vendor: "PKCS#11".into(),
        ekm_fleet_details: vec![EkmDetail {
            id: token.label().to_owned(),
            model: "PKCS#11 token".into(),
            health_status: status.into(),
        }],
    }))
}

fn key_metadata(token: &Token, key: &str, body: &[u8]) -> Result<Response, Refusal> {
    let request: MetadataOnly = parse(body)?;
    require_principal(&request.request_metadata)?;
    token.find_key(key).map_err(token_error)?;
    Ok(json(&KeyMetadataAnswer {
        key_spec: "AES_256".into(),
        key_usage: vec!["ENCRYPT".into(), "DECRYPT".into()],
        key_status: "ENABLED".into(),
    }))
}

fn encrypt(token: &Token, key: &str, body: &[u8]) -> Result<Response, Refusal> {
    {
        let request: EncryptRequest = parse(body)?;
        require_principal(&request.request_metadata)?;
        if request.encryption_algorithm != "AES_GCM" {
            return Err(error(
                ProxyError::Validation,
                "encryptionAlgorithm must be AES_GCM.",
            ));
        }
        let integrity = match request.ciphertext_data_integrity_value_algorithm.as_deref() {
            None => false,
            Some("SHA_256") => true,
            Some(_) => {
                return Err(error(
                    ProxyError::Validation,
                    "ciphertextDataIntegrityValueAlgorithm must be SHA_256.",
                ))
            }
        };
        let plaintext = Zeroizing::new(decode(&request.plaintext, "plaintext", MAX_DATA_BYTES)?);
        let aad = match &request.additional_authenticated_data {
            Some(a) => decode(a, "additionalAuthenticatedData", MAX_DATA_BYTES)?,
            None => Vec::new(),
        };
        let handle = token.find_key(key).map_err(token_error)?;
        let iv: [u8; 12] =
            random::array().map_err(|_| error(ProxyError::Internal, "No randomness available."))?;
        let sealed = token
            .seal(handle, &iv, &gcm_aad(&aad, &[]), &plaintext)
            .map_err(token_error)?;
        let (ciphertext, tag) = sealed.split_at(sealed.len().saturating_sub(16));
        let integrity_value = integrity.then(|| {
            let mut ctx = digest::Context::new(&digest::SHA256);
            for part in [&aad[..], &iv, ciphertext, tag] {
                ctx.update(part);
            }
            STANDARD.encode(ctx.finish().as_ref())
        });
        Ok(json(&EncryptAnswer {
            ciphertext: STANDARD.encode(ciphertext),
            initialization_vector: STANDARD.encode(iv),
            authentication_tag: STANDARD.encode(tag),
            ciphertext_metadata: None,
            ciphertext_data_integrity_value: integrity_value,
        }))
    }
}

fn decrypt(token: &Token, key: &str, body: &[u8]) -> Result<Response, Refusal> {
    {
        let request: DecryptRequest = parse(body)?;
        require_principal(&request.request_metadata)?;
        if request.encryption_algorithm != "AES_GCM" {
            return Err(error(
                ProxyError::Validation,
                "encryptionAlgorithm must be AES_GCM.",
            ));
        }
        let mut sealed = decode(&request.ciphertext, "ciphertext", MAX_DATA_BYTES)?;
        let iv: [u8; 12] = decode(&request.initialization_vector, "initializationVector", 16)?
            .try_into()
            .map_err(|_| {
                error(
                    ProxyError::Validation,
                    "initializationVector must be 12 bytes.",
                )
            })?;
        let tag = decode(&request.authentication_tag, "authenticationTag", 16)?;
        if tag.len() != 16 {
            return Err(error(
                ProxyError::Validation,
                "authenticationTag must be 16 bytes.",
            ));
        }
        let aad = match &request.additional_authenticated_data {
            Some(a) => decode(a, "additionalAuthenticatedData", MAX_DATA_BYTES)?,
            None => Vec::new(),
        };
        let metadata = match &request.ciphertext_metadata {
            Some(m) => decode(m, "ciphertextMetadata", 20)?,
            None => Vec::new(),
        };
        sealed.extend_from_slice(&tag);
        let handle = token.find_key(key).map_err(token_error)?;
        let plaintext = token
            .open_sealed(handle, &iv, &gcm_aad(&aad, &metadata), &sealed)
            .map_err(token_error)?;
        Ok(json(&DecryptAnswer {
            plaintext: STANDARD.encode(&plaintext),
        }))
    }
}

/// Makes an external key: a non-extractable AES-256 key labelled `key_id` in the proxy's
/// token. Refused if the token has one of that label already.
pub fn create_key(config: &ProxyConfig, key_id: &str) -> Result<(), ServerError> {
    let token = config.token()?;
    match token.find_key(key_id) {
        Err(HsmError::KeyNotFound(_)) => {}
        Ok(_) | Err(HsmError::KeyExtractable(_)) => {
            return Err(ServerError::Config(format!(
                "the token has a key labelled {key_id:?} already"
            )))
        }
        Err(e) => return Err(ServerError::Config(e.to_string())),
    }
    token
        .generate_key(key_id)
        .map(|_| ())
        .map_err(|e| ServerError::Config(e.to_string()))
}

/// Serves the proxy on its HTTPS listener until `shutdown` completes; `on_listening` is
/// given the bound address first.
pub async fn serve(
    config: ProxyConfig,
    on_listening: impl FnOnce(SocketAddr, &str),
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<(), ServerError> {
    let router = router(&config)?;
    let tls = crate::tls::Tls::load(crate::tls::TlsFiles {
        cert: config.tls_cert.clone(),
        key: config.tls_key.clone(),
    })?;
    // SIGHUP reloads the certificate, as it does for the service.
    tls.reload_on_sighup()?;
    let (listener, addr) = crate::listener::bind(config.listen).await?;
    let path = format!("{}{API_PATH}", config.uri_path_prefix.trim_end_matches('/'));
    on_listening(addr, &path);
    crate::listener::serve(
        listener,
        router,
        Some(tls),
        crate::listener::ConnectionLimits::default(),
        shutdown,
    )
    .await;
    Ok(())
}
