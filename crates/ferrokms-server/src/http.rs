//! The HTTP front: one `POST /` route. A request flows one way: authenticate (SigV4), route
//! by the signed service and `X-Amz-Target`, run the operation, answer in AWS's wire format.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use std::time::SystemTime;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, Extension, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::Response;
use axum::Router;
use ferrokms_core::ids::AccountId;
use ferrokms_core::material::RootKeyProvider;
use ferrokms_store::Store;
use serde_json::{json, Value};

use crate::api::operations::Operation;
use crate::api::{self, Call, Services};
use crate::audit::{self, AuditLog};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::sigv4::{Authenticator, RequestParts, Service};
use crate::wire::Input;
use crate::{jobs, sts, ServerError};
use ferrokms_core::KmsError;

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
    /// Serve `/ferrokms/debug/*` (advance the clock, run jobs now); dev mode only.
    pub debug_clock: bool,
    /// How often background jobs (rotation, deletion) run.
    pub job_interval: std::time::Duration,
    /// Serve Prometheus metrics at `GET /metrics` (off unless asked for: they name keys).
    pub metrics: bool,
    /// Record nothing in the audit log; dev mode only, to measure what auditing costs.
    pub unaudited: bool,
    /// This node's id (from its data directory), which its outbox records carry.
    pub node: String,
    /// Request-rate and resource quotas.
    pub quotas: crate::QuotaConfig,
    /// HTTPS settings; plain HTTP when None.
    pub tls: Option<Arc<crate::tls::Tls>>,
    /// Caps and timeouts per connection.
    pub limits: crate::listener::ConnectionLimits,
    /// The PKCS#11 tokens that AWS_CLOUDHSM custom key stores may name as clusters.
    pub cloudhsm_clusters: Vec<crate::key_stores::CloudHsmCluster>,
    /// How EXTERNAL_KEY_STORE custom key stores reach their proxies.
    pub xks: crate::xks::client::XksClientConfig,
    /// The Regions requests may be signed for.
    pub regions: crate::regions::Regions,
    /// Where each signed audit digest is also written (`audit::anchor`).
    pub audit_digest_dir: Option<std::path::PathBuf>,
}

struct App {
    services: Services,
    auth: Authenticator,
    audit: AuditLog,
    clock: Arc<Clock>,
    debug_clock: bool,
    metrics: Option<Metrics>,
    /// Time a client has to send a request's body.
    body_timeout: Duration,
}

/// The dev-mode debug endpoints: `POST /ferrokms/debug/advance-clock?seconds=N` and
/// `POST /ferrokms/debug/run-jobs`.
async fn debug(app: &App, uri: &Uri, id: &str) -> Response {
    let json =
        |status: StatusCode, v: Value| response(status, "application/json", v.to_string(), id);
    match uri.path() {
        "/ferrokms/debug/advance-clock" => {
            let seconds = uri
                .query()
                .and_then(|q| {
                    form_urlencoded::parse(q.as_bytes())
                        .find(|(k, _)| k == "seconds")
                        .and_then(|(_, v)| v.parse::<i64>().ok())
                })
                .unwrap_or(0);
            let now = app.clock.advance(seconds.saturating_mul(1000));
            json(StatusCode::OK, json!({ "Now": now / 1000 }))
        }
        "/ferrokms/debug/run-jobs" => {
            match jobs::run_due(&app.services, &app.audit, app.clock.now()).await {
                Ok(r) => json(
                    StatusCode::OK,
                    json!({ "Rotated": r.rotated, "Deleted": r.deleted, "Expired": r.expired }),
                ),
                Err(e) => json(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "Error": e.to_string() }),
                ),
            }
        }
        _ => json(
            StatusCode::NOT_FOUND,
            json!({ "Error": "no such debug endpoint" }),
        ),
    }
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
    let reply = sts::error(
        StatusCode::FORBIDDEN,
        code,
        message.as_deref().unwrap_or_default(),
        id,
    );
    response(reply.status, "text/xml", reply.body, id)
}

fn looks_like_query_protocol(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

/// The parts of a request an audit record needs before authentication.
struct Claimed {
    event_name: String,
    event_source: &'static str,
    region: String,
    access_key: Option<String>,
}

/// Reads what a request claims to be, without trusting it: for the audit record of a request
/// that fails authentication.
fn claimed(headers: &HeaderMap, body: &[u8]) -> Claimed {
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let scope: Vec<&str> = auth
        .split("Credential=")
        .nth(1)
        .and_then(|c| c.split([',', ' ']).next())
        .map(|c| c.split('/').collect())
        .unwrap_or_default();
    let service = scope.get(3).copied().unwrap_or("kms");
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let event_name = match service {
        "sts" => Some(sts::action(body)),
        _ => target.rsplit('.').next().map(str::to_owned),
    }
    .filter(|n| !n.is_empty())
    .unwrap_or_else(|| "Unknown".into());
    Claimed {
        event_name,
        event_source: event_source(service),
        region: scope.get(2).map(|r| r.to_string()).unwrap_or_default(),
        access_key: scope
            .first()
            .filter(|k| !k.is_empty())
            .map(|k| k.to_string()),
    }
}

fn event_source(service: &str) -> &'static str {
    match service {
        "sts" => "sts.amazonaws.com",
        "cloudtrail" => "cloudtrail.amazonaws.com",
        _ => "kms.amazonaws.com",
    }
}

/// The whole body, or the error that ends the connection: too large, or not sent in time
/// (a client that starts a body and stalls must not hold its connection for ever).
async fn read_body(headers: &HeaderMap, body: Body, within: Duration) -> Result<Bytes, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES as u64) {
        return Err(ApiError::RequestTooLarge(MAX_BODY_BYTES));
    }
    match tokio::time::timeout(within, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        // Over the limit while streaming (or the client went away, which no answer reaches).
        Ok(Err(_)) => Err(ApiError::RequestTooLarge(MAX_BODY_BYTES)),
        Err(_) => Err(ApiError::RequestTimeout(within.as_secs())),
    }
}

async fn handle(
    State(app): State<Arc<App>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    transport: Option<Extension<crate::listener::Transport>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let id = request_id();
    // An IPv4 client of a dual-stack listener arrives as ::ffff:a.b.c.d; aws:SourceIp and
    // the audit record see a.b.c.d.
    let source_addr = peer.ip().to_canonical();
    let body = match read_body(&headers, body, app.body_timeout).await {
        Ok(b) => b,
        Err(e) => {
            let mut r = json_error(&e, &id);
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    let started = std::time::Instant::now();
    if app.debug_clock && uri.path().starts_with("/ferrokms/debug/") {
        return debug(&app, &uri, &id).await;
    }
    if let (Some(metrics), true) = (
        &app.metrics,
        method == Method::GET && uri.path() == "/metrics",
    ) {
        let text = metrics.render(app.services.store.as_ref()).await;
        return response(StatusCode::OK, "text/plain; version=0.0.4", text, &id);
    }
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let now = app.clock.now();
    let parts = RequestParts {
        method: &method,
        authority: uri.authority().map(|a| a.as_str()),
        path: uri.path(),
        query: uri.query(),
        headers: &headers,
        body: &body,
    };
    let verified = match app
        .auth
        .authenticate(&parts, SystemTime::now(), &app.services.regions)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            tracing::info!(request_id = %id, error = %e, "authentication failed");
            let claim = claimed(&headers, &body);
            // When the store itself failed, asking it again would only wait again.
            let store_failed = matches!(e, ApiError::Kms(KmsError::Internal(_)));
            let account = match &claim.access_key {
                Some(k) if !store_failed => app
                    .services
                    .store
                    .access_key(k)
                    .await
                    .ok()
                    .flatten()
                    .map(|r| r.account.to_string()),
                _ => None,
            };
            let (_, code, message) = e.wire();
            let event = audit::event::build(audit::event::EventInput {
                request_id: &id,
                event_id: &audit::event::new_event_id(),
                time: now,
                event_source: claim.event_source,
                event_name: &claim.event_name,
                region: &claim.region,
                source_ip: source_addr.to_string(),
                user_agent: &user_agent,
                principal: None,
                claimed_access_key: claim.access_key.as_deref().map(|k| (k, account)),
                request_parameters: None,
                response: None,
                error: Some((code, message)),
                resources: Vec::new(),
            });
            let e = match app.audit.record(event, false).await {
                Ok(()) => e,
                Err(_) => ApiError::Kms(KmsError::internal()),
            };
            if let Some(m) = &app.metrics {
                m.record(&claim.event_name, e.wire().1, started.elapsed(), &[]);
            }
            return if looks_like_query_protocol(&headers) {
                sts_error(&e, &id)
            } else {
                json_error(&e, &id)
            };
        }
    };
    let region = verified.region().to_string();
    let secure_transport = transport.is_some_and(|Extension(t)| t.tls);
    let env = crate::api::authorize::Environment {
        region: verified.region().clone(),
        now,
        source_ip: source_addr,
        secure_transport,
    };
    if verified.service() == Service::Sts {
        let action = sts::action(&body);
        let event_id = audit::event::new_event_id();
        let source_ip = source_addr.to_string();
        let event_input = |error| audit::event::EventInput {
            request_id: &id,
            event_id: &event_id,
            time: now,
            event_source: "sts.amazonaws.com",
            event_name: &action,
            region: &region,
            source_ip: source_ip.clone(),
            user_agent: &user_agent,
            principal: Some(verified.principal()),
            claimed_access_key: None,
            request_parameters: None,
            response: None,
            error,
            resources: Vec::new(),
        };
        let intent = app
            .audit
            .intent(audit::event::intent(event_input(None)).record);
        let reply = app
            .audit
            .scope(
                intent.clone(),
                sts::handle(&app.services, &verified, &env, &body, &id),
            )
            .await;
        let event =
            audit::event::build(event_input(reply.error_code.as_deref().map(|c| (c, None))));
        if app.audit.record(event, intent.written()).await.is_err() {
            return sts_error(&ApiError::Kms(KmsError::internal()), &id);
        }
        return response(reply.status, "text/xml", reply.body, &id);
    }
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let cloudtrail = verified.service() == Service::CloudTrail;
    let operation = target
        .strip_prefix(TARGET_PREFIX)
        .filter(|_| method == Method::POST && !cloudtrail)
        .and_then(Operation::spec_named);
    // The body is parsed once; the members the operation's audit record may show are kept
    // before the operation consumes them.
    let input = Input::parse(&body);
    let audited: &[&str] = match operation {
        Some(spec) => spec.audited,
        None if cloudtrail => audit::lookup::AUDITED,
        None => &[],
    };
    let request_parameters = input
        .as_ref()
        .ok()
        .and_then(|i| audit::event::request_parameters(i.members(), audited));
    let (event_name, source) = if cloudtrail {
        (
            target.rsplit('.').next().unwrap_or("Unknown").to_owned(),
            "cloudtrail.amazonaws.com",
        )
    } else {
        match target
            .strip_prefix(TARGET_PREFIX)
            .filter(|_| method == Method::POST)
        {
            Some(operation) => (operation.to_owned(), "kms.amazonaws.com"),
            None => ("Unknown".to_owned(), "kms.amazonaws.com"),
        }
    };
    let event_id = audit::event::new_event_id();
    let source_ip = source_addr.to_string();
    let event_input = |request_parameters, response, error, resources| audit::event::EventInput {
        request_id: &id,
        event_id: &event_id,
        time: now,
        event_source: source,
        event_name: &event_name,
        region: &region,
        source_ip: source_ip.clone(),
        user_agent: &user_agent,
        principal: Some(verified.principal()),
        claimed_access_key: None,
        request_parameters,
        response,
        error,
        resources,
    };
    // Every write the operation makes carries this record, so that no change is durable
    // without a durable record of the request that made it.
    let intent = app.audit.intent(
        audit::event::intent(event_input(
            request_parameters.clone(),
            None,
            None,
            Vec::new(),
        ))
        .record,
    );
    let mut touched_keys = Vec::new();
    let result = app
        .audit
        .scope(intent.clone(), async {
            match input {
                _ if cloudtrail && (target != audit::lookup::TARGET || method != Method::POST) => {
                    Err(ApiError::UnknownOperation)
                }
                Ok(input) if cloudtrail => {
                    audit::lookup::lookup_events(
                        app.services.store.as_ref(),
                        &verified,
                        &env,
                        input,
                    )
                    .await
                }
                Ok(input) => match operation {
                    Some(spec) => {
                        let call = Call {
                            services: &app.services,
                            request: &verified,
                            operation: spec,
                            now,
                            source_ip: source_addr,
                            secure_transport,
                            resources: Default::default(),
                            decided: Default::default(),
                        };
                        let result = api::dispatch(&call, input).await;
                        touched_keys = call.take_resources();
                        result
                    }
                    None => Err(ApiError::UnknownOperation),
                },
                Err(e) => Err(e),
            }
        })
        .await;
    let (response_json, error) = match &result {
        Ok(v) => (Some(v), None),
        Err(e) => {
            let (_, code, message) = e.wire();
            (None, Some((code, message)))
        }
    };
    let event = audit::event::build(event_input(
        request_parameters,
        response_json,
        error,
        touched_keys,
    ));
    let touched = event.record.resources.clone();
    // No unaudited answers: if the record cannot be made durable, the caller gets an
    // internal error instead of the result.
    if app.audit.record(event, intent.written()).await.is_err() {
        return json_error(&ApiError::Kms(KmsError::internal()), &id);
    }
    if let Some(m) = &app.metrics {
        let outcome = match &result {
            Ok(_) => "ok",
            Err(e) => e.wire().1,
        };
        m.record(&event_name, outcome, started.elapsed(), &touched);
    }
    match result {
        Ok(out) => {
            tracing::info!(request_id = %id, operation = %event_name, principal = verified.principal().arn(), access_key = verified.principal().access_key_id(), "ok");
            response(StatusCode::OK, JSON_CONTENT_TYPE, out.to_string(), &id)
        }
        Err(e) => {
            tracing::info!(request_id = %id, operation = %event_name, principal = verified.principal().arn(), access_key = verified.principal().access_key_id(), error = e.wire().1, "refused");
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
    let clock = Arc::new(Clock::default());
    let audit = match (&config.mode, config.unaudited) {
        (Mode::Dev { .. }, true) => AuditLog::disabled(),
        _ => {
            AuditLog::start(
                store.clone(),
                root.as_ref(),
                &config.node,
                config.audit_digest_dir.clone(),
            )
            .await?
        }
    };
    let app = Arc::new(App {
        services: Services {
            store,
            root,
            quotas: Arc::new(crate::quotas::Quotas::new(
                config.quotas.clone(),
                matches!(config.mode, Mode::Dev { .. }),
            )),
            materials: Default::default(),
            key_stores: Arc::new(crate::key_stores::KeyStores::new(
                config.cloudhsm_clusters.clone(),
            )?),
            xks: Arc::new(crate::xks::client::XksClient::new(&config.xks)?),
            regions: Arc::new(config.regions.clone()),
        },
        auth,
        audit,
        clock: clock.clone(),
        debug_clock: config.debug_clock,
        metrics: config.metrics.then(Metrics::default),
        body_timeout: config.limits.body_timeout,
    });
    let job_app = app.clone();
    let job_interval = config.job_interval;
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(job_interval);
        loop {
            ticks.tick().await;
            if let Err(e) =
                jobs::run_due(&job_app.services, &job_app.audit, job_app.clock.now()).await
            {
                tracing::error!(error = %e, "background jobs failed");
            }
        }
    });
    let router = Router::new().fallback(handle).with_state(app);
    let (listener, addr) = crate::listener::bind(config.listen).await?;
    if let Some(tls) = &config.tls {
        tls.reload_on_sighup()?;
    }
    on_listening(addr);
    crate::listener::serve(listener, router, config.tls, config.limits, shutdown).await;
    Ok(())
}
