//! The HTTP front: one `POST /` route. A request flows one way: authenticate (SigV4), route
//! by the signed service and `X-Amz-Target`, run the operation, answer in AWS's wire format.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use ferrokms_core::ids::AccountId;
use ferrokms_core::material::RootKeyProvider;
use ferrokms_store::Store;
use serde_json::{json, Value};

use crate::api::{self, Call, Services};
use crate::error::ApiError;
use crate::sigv4::{Authenticator, RequestParts, Service};
use crate::wire::Input;
use crate::{bootstrap, sts, ServerError};

/// Largest request body read. The biggest KMS request (a 32 KiB policy, or a 6 KiB blob in
/// base64) is far below it.
const MAX_BODY_BYTES: usize = 256 * 1024;
const JSON_CONTENT_TYPE: &str = "application/x-amz-json-1.1";
const TARGET_PREFIX: &str = "TrentService.";

/// How callers are authenticated.
#[derive(Debug, Clone)]
pub enum Mode {
    /// SigV4 signatures verified against stored access keys.
    Strict,
    /// Local testing: any credentials; a 12-digit access key id is the account, else this one.
    Dev { default_account: AccountId },
}

pub struct ServerConfig {
    pub listen: SocketAddr,
    pub mode: Mode,
}

struct App {
    services: Services,
    auth: Authenticator,
}

fn request_id() -> String {
    let bytes: [u8; 16] = ferrokms_core::random::array().unwrap_or([0; 16]);
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .to_string()
}

fn response(status: StatusCode, content_type: &'static str, body: String, id: &str) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(id) {
        h.insert("x-amzn-RequestId", v);
    }
    r
}

fn json_error(err: &ApiError, id: &str) -> Response {
    let (status, code, message) = err.wire();
    if status.is_server_error() {
        tracing::error!(request_id = id, code, "request failed");
    }
    let mut body = json!({ "__type": code });
    if let Some(m) = message {
        body["message"] = Value::String(m);
    }
    let mut r = response(status, JSON_CONTENT_TYPE, body.to_string(), id);
    r.headers_mut()
        .insert("x-amzn-ErrorType", HeaderValue::from_static(code));
    r
}

fn sts_error(err: &ApiError, id: &str) -> Response {
    let (_, code, message) = err.wire();
    let code = code.trim_end_matches("Exception");
    let (status, body) = sts::error(
        StatusCode::FORBIDDEN,
        code,
        message.as_deref().unwrap_or_default(),
        id,
    );
    response(status, "text/xml", body, id)
}

fn looks_like_query_protocol(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let id = request_id();
    let parts = RequestParts {
        method: &method,
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
        body: &body,
    };
    let verified = match app.auth.authenticate(&parts, SystemTime::now()).await {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(request_id = %id, error = %e, "authentication failed");
            return if looks_like_query_protocol(&headers) {
                sts_error(&e, &id)
            } else {
                json_error(&e, &id)
            };
        }
    };
    if verified.service() == Service::Sts {
        let (status, xml) = sts::handle(&app.services, &verified, &body, &id).await;
        return response(status, "text/xml", xml, &id);
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let Some(operation) = target
        .strip_prefix(TARGET_PREFIX)
        .filter(|_| method == Method::POST)
    else {
        return json_error(&ApiError::UnknownOperation, &id);
    };
    let call = Call {
        services: &app.services,
        request: &verified,
        now: bootstrap::now_millis(),
        source_ip: peer.ip(),
    };
    let result = match Input::parse(&body) {
        Ok(input) => api::dispatch(&call, operation, input).await,
        Err(e) => Err(e),
    };
    match result {
        Ok(out) => {
            tracing::info!(request_id = %id, operation, principal = verified.principal().arn(), access_key = verified.principal().access_key_id(), "ok");
            response(StatusCode::OK, JSON_CONTENT_TYPE, out.to_string(), &id)
        }
        Err(e) => {
            tracing::info!(request_id = %id, operation, principal = verified.principal().arn(), access_key = verified.principal().access_key_id(), error = e.wire().1, "refused");
            json_error(&e, &id)
        }
    }
}

/// Serves until `shutdown` completes. `on_listening` gets the bound address (useful with
/// port 0) before the first request is accepted.
pub async fn serve(
    config: ServerConfig,
    store: Arc<dyn Store>,
    root: Arc<dyn RootKeyProvider>,
    on_listening: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServerError> {
    let auth = match &config.mode {
        Mode::Strict => Authenticator::Strict {
            store: store.clone(),
            root: root.clone(),
        },
        Mode::Dev { default_account } => Authenticator::Dev {
            default_account: default_account.clone(),
            store: store.clone(),
        },
    };
    let app = Arc::new(App {
        services: Services { store, root },
        auth,
    });
    let router = Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(app);
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| ServerError::Io(format!("binding {}: {e}", config.listen)))?;
    let addr = listener
        .local_addr()
        .map_err(|e| ServerError::Io(e.to_string()))?;
    on_listening(addr);
    axum::serve(
        listener,
        router.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
    .map_err(|e| ServerError::Io(e.to_string()))
}
