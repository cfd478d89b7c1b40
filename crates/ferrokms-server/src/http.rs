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

use crate::api::operations::{Operation, OperationSpec};
use crate::api::{self, Call, Services};
use crate::audit::PendingIntent;
use crate::audit::{self, AuditLog};
use crate::clock::Clock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::quotas::RateClass;
use crate::sigv4::VerifiedRequest;
use crate::sigv4::{Authenticator, RequestParts, Service};
use crate::unauthenticated;
use crate::wire::Input;
use crate::{explain, jobs, sts, ServerError};
use ferrokms_core::key::Millis;
use ferrokms_core::KmsError;
use std::net::IpAddr;
use std::time::Instant;

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
    /// Serve Prometheus metrics at `GET /metrics` (off unless asked for: they name keys), to
    /// scrapers that present the bearer token when one is set.
    pub metrics: Option<MetricsAccess>,
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
    /// The audit trail's keys, checked against the public key kept outside the store.
    pub audit_keys: Arc<crate::audit::AuditKeys>,
    /// After the shutdown signal, how long `GET /ferrokms/health` answers 503 while requests
    /// are still served, so that a load balancer stops sending before the listener closes.
    pub drain: std::time::Duration,
    /// Serve the web console's files at `/console/`.
    pub console: bool,
}

/// Who may read `/metrics`.
#[derive(Clone, Default)]
pub struct MetricsAccess {
    /// The bearer token a scraper presents (Prometheus's `authorization` credentials); None
    /// lets any caller read them (dev mode only).
    pub token: Option<zeroize::Zeroizing<String>>,
}

impl std::fmt::Debug for MetricsAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsAccess")
            .field("token", &self.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

impl MetricsAccess {
    fn allows(&self, headers: &HeaderMap) -> bool {
        let Some(token) = &self.token else {
            return true;
        };
        let presented = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), token.as_bytes())
            .is_ok()
    }
}

struct App {
    services: Services,
    auth: Authenticator,
    audit: AuditLog,
    clock: Arc<Clock>,
    debug_clock: bool,
    metrics: Option<Metrics>,
    metrics_access: MetricsAccess,
    /// Which failed authentications are recorded.
    unauthenticated: unauthenticated::Limiter,
    /// Time a client has to send a request's body.
    body_timeout: Duration,
    /// Set once the shutdown signal came: the node is draining.
    draining: Arc<std::sync::atomic::AtomicBool>,
    /// Serve the console's files.
    console: bool,
}

async fn close_while_draining(
    State(draining): State<Arc<std::sync::atomic::AtomicBool>>,
    mut response: Response,
) -> Response {
    if draining.load(std::sync::atomic::Ordering::Relaxed) {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    response
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
    // Answers carry data keys, plaintexts and policies: no cache, the browser's included,
    // may keep them.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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
    let reply = sts::refusal(err, id);
    response(reply.status, "text/xml", reply.body, id)
}

fn looks_like_query_protocol(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
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

/// The three APIs one endpoint serves, told apart by the service the request is signed
/// for, with the operation it asks for looked up in that API's table: names that reach
/// records and metrics come from the tables, never from the request.
enum Api {
    Kms(Option<&'static OperationSpec>),
    Sts(&'static str),
    /// Whether the request is CloudTrail's LookupEvents, the one action served.
    CloudTrail(bool),
    /// ferrokms's own ExplainDecision (`explain::operation`), signed for KMS.
    Explain,
}

impl Api {
    fn of(service: Service, method: &Method, headers: &HeaderMap, body: &[u8]) -> Api {
        let target = headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let posted = method == Method::POST;
        match service {
            Service::Sts => Api::Sts(sts::known_action(body)),
            Service::CloudTrail => {
                Api::CloudTrail(posted && audit::lookup::names_lookup_events(target))
            }
            Service::Kms if posted && target == explain::operation::TARGET => Api::Explain,
            Service::Kms => Api::Kms(
                target
                    .strip_prefix(TARGET_PREFIX)
                    .filter(|_| posted)
                    .and_then(Operation::spec_named),
            ),
        }
    }

    fn event_source(&self) -> &'static str {
        match self {
            Api::Kms(_) | Api::Explain => "kms.amazonaws.com",
            Api::Sts(_) => "sts.amazonaws.com",
            Api::CloudTrail(_) => "cloudtrail.amazonaws.com",
        }
    }

    fn event_name(&self) -> &'static str {
        match self {
            Api::Kms(Some(spec)) => spec.name,
            Api::Sts(action) => action,
            Api::CloudTrail(true) => "LookupEvents",
            Api::Explain => explain::operation::NAME,
            Api::Kms(None) | Api::CloudTrail(false) => "Unknown",
        }
    }

    /// The request members the audit record may show.
    fn audited(&self) -> &'static [&'static str] {
        match self {
            Api::Kms(Some(spec)) => spec.audited,
            Api::CloudTrail(true) => audit::lookup::AUDITED,
            Api::Explain => explain::operation::AUDITED,
            _ => &[],
        }
    }

    /// Whether the answer is in the query protocol's XML (STS) rather than JSON.
    fn xml(&self) -> bool {
        matches!(self, Api::Sts(_))
    }
}

/// What running a request came to, before it is recorded and answered.
struct Outcome {
    result: Result<Reply, ApiError>,
    /// The keys the request touched.
    resources: Vec<String>,
}

enum Reply {
    Json(Value),
    Xml(sts::StsReply),
}

impl Outcome {
    fn failed(e: ApiError) -> Self {
        Outcome {
            result: Err(e),
            resources: Vec::new(),
        }
    }

    /// The error code (and message) the audit record and metrics show.
    fn error(&self) -> Option<(&'static str, Option<String>)> {
        match &self.result {
            Ok(Reply::Xml(reply)) => reply.error_code.map(|c| (c, None)),
            Ok(Reply::Json(_)) => None,
            Err(e) => {
                let (_, code, message) = e.wire();
                Some((code, message))
            }
        }
    }

    fn response(&self) -> Option<&Value> {
        match &self.result {
            Ok(Reply::Json(v)) => Some(v),
            _ => None,
        }
    }
}

impl App {
    /// Stage: the rate limit of the operation (an operation rated by its key's class is
    /// counted once its key is known).
    fn admit(&self, api: &Api, request: &VerifiedRequest) -> Result<(), ApiError> {
        let account = request.principal().account().as_str();
        let region = request.region().as_str();
        match api {
            Api::Kms(Some(spec)) => api::admit(&self.services, request, spec),
            Api::Sts(name) => self
                .services
                .quotas
                .admit(account, region, RateClass::Other(name)),
            // CloudTrail's own throttling error, not KMS's text.
            Api::CloudTrail(true) => self
                .services
                .quotas
                .admit(account, region, RateClass::Other("LookupEvents"))
                .map_err(|_| ApiError::Service("ThrottlingException", "Rate exceeded".into())),
            Api::Explain => self.services.quotas.admit(
                account,
                region,
                RateClass::Other(explain::operation::NAME),
            ),
            Api::Kms(None) | Api::CloudTrail(false) => Err(ApiError::UnknownOperation),
        }
    }

    /// Stage: authorize and run the handler. Every write it makes carries `audit`.
    async fn run(
        &self,
        ctx: &RequestContext<'_>,
        api: &Api,
        input: Result<Input, ApiError>,
        audit: &PendingIntent<'_>,
    ) -> Outcome {
        let input = match (api, input) {
            (Api::Sts(_), _) => None,
            (_, Ok(i)) => Some(i),
            (_, Err(e)) => return Outcome::failed(e),
        };
        match (api, input) {
            (Api::Sts(_), _) => {
                let reply = sts::handle(
                    &self.services,
                    audit.get(),
                    ctx.verified,
                    &ctx.env,
                    ctx.body,
                    ctx.id,
                )
                .await;
                Outcome {
                    result: Ok(Reply::Xml(reply)),
                    resources: Vec::new(),
                }
            }
            (Api::CloudTrail(true), Some(input)) => Outcome {
                result: audit::lookup::lookup_events(
                    self.services.store.as_ref(),
                    ctx.verified,
                    &ctx.env,
                    input,
                )
                .await
                .map(Reply::Json),
                resources: Vec::new(),
            },
            (Api::Explain, Some(input)) => {
                let (result, resources) = explain::operation::explain_decision(
                    &self.services,
                    ctx.verified,
                    &ctx.env,
                    audit,
                    input,
                )
                .await;
                Outcome {
                    result: result.map(Reply::Json),
                    resources,
                }
            }
            (Api::Kms(Some(spec)), Some(input)) => {
                let call = Call {
                    services: &self.services,
                    request: ctx.verified,
                    audit,
                    operation: spec,
                    now: ctx.env.now,
                    source_ip: ctx.env.source_ip,
                    secure_transport: ctx.env.secure_transport,
                    resources: Default::default(),
                    decided: Default::default(),
                };
                let result = api::dispatch(&call, input).await.map(Reply::Json);
                Outcome {
                    result,
                    resources: call.take_resources(),
                }
            }
            _ => Outcome::failed(ApiError::UnknownOperation),
        }
    }

    /// Stage: metrics and the log line, once per request.
    fn observe(
        &self,
        api: &Api,
        code: Option<&'static str>,
        outcome: &Outcome,
        started: Instant,
        ctx: &RequestContext<'_>,
    ) {
        if let Some(m) = &self.metrics {
            m.record(
                api.event_name(),
                code.unwrap_or("ok"),
                started.elapsed(),
                &outcome.resources,
            );
        }
        let principal = ctx.verified.principal();
        match code {
            None => {
                tracing::info!(request_id = %ctx.id, operation = api.event_name(), principal = principal.arn(), access_key = principal.access_key_id(), "ok")
            }
            Some(code) => {
                tracing::info!(request_id = %ctx.id, operation = api.event_name(), principal = principal.arn(), access_key = principal.access_key_id(), error = code, "refused")
            }
        }
    }

    /// A request that failed authentication: recorded compactly and only as often as
    /// `unauthenticated` allows, then refused.
    async fn refuse_unauthenticated(
        &self,
        error: ApiError,
        moment: &Moment,
        source: IpAddr,
        headers: &HeaderMap,
        body: &[u8],
        id: &str,
    ) -> Response {
        tracing::info!(request_id = %id, error = %error, "authentication failed");
        let claim = unauthenticated::claimed(headers, body);
        let mut error = error;
        if let Some(admitted) = self.unauthenticated.admit(source, moment.instant) {
            let (_, code, message) = error.wire();
            let message = message.map(|m| unauthenticated::bounded(&m).to_owned());
            let user_agent = user_agent(headers);
            let mut event = audit::event::build(audit::event::EventInput {
                request_id: id,
                event_id: &audit::event::new_event_id(),
                time: moment.now,
                event_source: claim.event_source,
                event_name: claim.event_name,
                region: &claim.region,
                source_ip: source.to_string(),
                user_agent: unauthenticated::bounded(&user_agent),
                principal: None,
                claimed_access_key: claim.access_key.as_deref().map(|k| (k, None)),
                request_parameters: None,
                response: None,
                error: Some((code, message)),
                resources: Vec::new(),
            });
            if admitted.dropped_before > 0 {
                audit::event::note_dropped(&mut event, admitted.dropped_before);
            }
            if self.audit.record(event, false).await.is_err() {
                error = ApiError::Kms(KmsError::internal());
            }
        }
        if let Some(m) = &self.metrics {
            m.record(
                claim.event_name,
                error.wire().1,
                moment.instant.elapsed(),
                &[],
            );
            m.set_unauthenticated_dropped(self.unauthenticated.dropped());
        }
        if looks_like_query_protocol(headers) {
            sts_error(&error, id)
        } else {
            json_error(&error, id)
        }
    }

    /// `GET /metrics`, for a scraper that presents the configured bearer token.
    async fn metrics(&self, headers: &HeaderMap, id: &str) -> Option<Response> {
        let metrics = self.metrics.as_ref()?;
        if !self.metrics_access.allows(headers) {
            let mut r = response(
                StatusCode::UNAUTHORIZED,
                "text/plain",
                "a bearer token is required\n".into(),
                id,
            );
            r.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"ferrokms metrics\""),
            );
            return Some(r);
        }
        let text = metrics.render(self.services.store.as_ref()).await;
        Some(response(
            StatusCode::OK,
            "text/plain; version=0.0.4",
            text,
            id,
        ))
    }
}

/// The one moment a request is handled at: its audit record's time, the time condition keys
/// and session expiries see, and (without the dev-mode offset) what SigV4 checks the
/// signature's date against.
struct Moment {
    instant: Instant,
    wall: SystemTime,
    now: Millis,
}

/// What the stages after authentication share.
struct RequestContext<'a> {
    id: &'a str,
    verified: &'a VerifiedRequest,
    env: crate::api::authorize::Environment,
    body: &'a [u8],
}

fn user_agent(headers: &HeaderMap) -> String {
    headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

/// One request through the stages: read and limit the body, authenticate, look the
/// operation up, rate-limit, authorize and run the handler, record, answer.
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
    let source = peer.ip().to_canonical();
    let body = match read_body(&headers, body, app.body_timeout).await {
        Ok(b) => b,
        Err(e) => {
            let mut r = json_error(&e, &id);
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            return r;
        }
    };
    if app.debug_clock && uri.path().starts_with("/ferrokms/debug/") {
        return debug(&app, &uri, &id).await;
    }
    // For load balancers: whether to send this node requests. It says nothing else.
    if method == Method::GET && uri.path() == "/ferrokms/health" {
        return if app.draining.load(std::sync::atomic::Ordering::Relaxed) {
            response(
                StatusCode::SERVICE_UNAVAILABLE,
                "application/json",
                r#"{"status":"draining"}"#.to_owned(),
                &id,
            )
        } else {
            response(
                StatusCode::OK,
                "application/json",
                r#"{"status":"serving"}"#.to_owned(),
                &id,
            )
        };
    }
    if app.console {
        if let Some(r) = crate::console::serve(&method, uri.path()) {
            return r;
        }
    }
    if method == Method::GET && uri.path() == "/metrics" {
        if let Some(r) = app.metrics(&headers, &id).await {
            return r;
        }
    }
    let wall = SystemTime::now();
    let moment = Moment {
        instant: Instant::now(),
        wall,
        now: app.clock.at(wall),
    };

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
        .authenticate(&parts, moment.wall, &app.services.regions)
        .await
    {
        Ok(v) => v,
        Err(e) => {
            return app
                .refuse_unauthenticated(e, &moment, source, &headers, &body, &id)
                .await
        }
    };

    let api = Api::of(verified.service(), &method, &headers, &body);
    let ctx = RequestContext {
        id: &id,
        verified: &verified,
        env: crate::api::authorize::Environment {
            region: verified.region().clone(),
            now: moment.now,
            source_ip: source,
            secure_transport: transport.is_some_and(|Extension(t)| t.tls),
        },
        body: &body,
    };
    // The audit record is made here and only here: before the handler runs, the version
    // its writes carry; after, the final one.
    // The body is parsed once (STS's is a form, read by its handler).
    let input = Input::parse(&body);
    let request_parameters = input
        .as_ref()
        .ok()
        .and_then(|i| audit::event::request_parameters(i.members(), api.audited()));
    let event_id = audit::event::new_event_id();
    let user_agent = user_agent(&headers);
    let region = verified.region().to_string();
    let record = |response, error, resources| audit::event::EventInput {
        request_id: &id,
        event_id: &event_id,
        time: moment.now,
        event_source: api.event_source(),
        event_name: api.event_name(),
        region: &region,
        source_ip: source.to_string(),
        user_agent: &user_agent,
        principal: Some(verified.principal()),
        claimed_access_key: None,
        request_parameters: request_parameters.clone(),
        response,
        error,
        resources,
    };
    let make_intent = || {
        app.audit
            .intent(audit::event::intent(record(None, None, Vec::new())).record)
    };
    let intent = PendingIntent::new(&make_intent);

    let mut outcome = match app.admit(&api, &verified) {
        Ok(()) => app.run(&ctx, &api, input, &intent).await,
        Err(e) => Outcome::failed(e),
    };

    let error = outcome.error();
    let mut code = error.as_ref().map(|(c, _)| *c);
    let event = audit::event::build(record(outcome.response(), error, outcome.resources.clone()));
    // No unaudited answers: if the record cannot be made durable, the caller gets an
    // internal error instead of the result.
    if app.audit.record(event, intent.written()).await.is_err() {
        outcome = Outcome::failed(ApiError::Kms(KmsError::internal()));
        code = outcome.error().map(|(c, _)| c);
    }
    app.observe(&api, code, &outcome, moment.instant, &ctx);
    match outcome.result {
        Ok(Reply::Json(out)) => response(StatusCode::OK, JSON_CONTENT_TYPE, out.to_string(), &id),
        Ok(Reply::Xml(reply)) => response(reply.status, "text/xml", reply.body, &id),
        Err(e) if api.xml() => sts_error(&e, &id),
        Err(e) => json_error(&e, &id),
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
                config.audit_keys.clone(),
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
        metrics: config.metrics.is_some().then(Metrics::default),
        metrics_access: config.metrics.clone().unwrap_or_default(),
        unauthenticated: Default::default(),
        body_timeout: config.limits.body_timeout,
        draining: Default::default(),
        console: config.console,
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
    let draining = app.draining.clone();
    // While draining, every answer closes its connection, so that clients holding a
    // keep-alive connection (or a balancer passing TCP through) reconnect elsewhere.
    let router = Router::new().fallback(handle).with_state(app).layer(
        axum::middleware::map_response_with_state(draining.clone(), close_while_draining),
    );
    let (listener, addr) = crate::listener::bind(config.listen).await?;
    if let Some(tls) = &config.tls {
        tls.reload_on_sighup()?;
    }
    on_listening(addr);
    // Drain first: report unhealthy while still serving, then stop accepting.
    let drain = config.drain;
    let shutdown = async move {
        shutdown.await;
        draining.store(true, std::sync::atomic::Ordering::Relaxed);
        if !drain.is_zero() {
            tracing::info!(seconds = drain.as_secs_f64(), "draining before shutdown");
            tokio::time::sleep(drain).await;
        }
    };
    crate::listener::serve(listener, router, config.tls, config.limits, shutdown).await;
    Ok(())
}
