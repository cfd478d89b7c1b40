//! The STS calls a KMS user needs, in STS's query protocol (XML): GetCallerIdentity, and
//! AssumeRole for the common "the app runs as a role" setup.

use axum::http::StatusCode;
use ferrokms_core::policy::{decide, Decision, PolicyDocument, PolicyKind, Resource};
use ferrokms_store::PrincipalKind;

use crate::api::authorize::{request_context, Conditions, Environment};
use crate::api::Services;
use crate::error::ApiError;
use crate::identities;
use crate::sigv4::VerifiedRequest;

const NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// An STS answer, and the error code its audit record names.
pub struct StsReply {
    pub status: StatusCode,
    pub body: String,
    pub error_code: Option<&'static str>,
}

fn response(action: &str, result: &str, request_id: &str) -> StsReply {
    StsReply {
        status: StatusCode::OK,
        error_code: None,
        body:
        format!(
            "<{action}Response xmlns=\"{NS}\">\n  <{action}Result>\n{result}  </{action}Result>\n  <ResponseMetadata>\n    <RequestId>{request_id}</RequestId>\n  </ResponseMetadata>\n</{action}Response>\n"
        ),
    }
}

/// The `Action` of a query-protocol request.
pub fn action(body: &[u8]) -> String {
    form_urlencoded::parse(body)
        .find(|(k, _)| k == "Action")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

/// The STS actions served, as their audit records and metrics name them.
pub const ACTIONS: &[&str] = &["AssumeRole", "GetCallerIdentity"];

/// The action a request names if it is one of `ACTIONS`, else `Unknown`: names that reach
/// records and metrics come from this list, never from the request.
pub fn known_action(body: &[u8]) -> &'static str {
    let asked = action(body);
    ACTIONS
        .iter()
        .find(|a| **a == asked)
        .copied()
        .unwrap_or("Unknown")
}

/// How a refusal of the shared stages (authentication, the rate limit) reads in STS's
/// protocol: STS's code is KMS's without `Exception`; throttling is 400 `Throttling`, "Rate
/// exceeded", which the SDKs retry; refused credentials are 403.
pub fn refusal(err: &ApiError, request_id: &str) -> StsReply {
    let (_, code, message) = err.wire();
    match err {
        ApiError::Throttling => error(
            StatusCode::BAD_REQUEST,
            "Throttling",
            "Rate exceeded",
            request_id,
        ),
        _ => error(
            StatusCode::FORBIDDEN,
            code.trim_end_matches("Exception"),
            message.as_deref().unwrap_or_default(),
            request_id,
        ),
    }
}

/// Answers an STS request.
pub async fn handle(
    services: &Services,
    audit: &ferrokms_store::Intent,
    request: &VerifiedRequest,
    env: &Environment,
    body: &[u8],
    request_id: &str,
) -> StsReply {
    let params = Params(
        form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect(),
    );
    match params.get("Action").unwrap_or_default() {
        "GetCallerIdentity" => {
            let p = request.principal();
            let result = format!(
                "    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n",
                xml_escape(p.arn()),
                xml_escape(p.user_id()),
                xml_escape(p.account().as_str()),
            );
            response("GetCallerIdentity", &result, request_id)
        }
        "AssumeRole" => assume_role(services, audit, request, env, &params, request_id).await,
        other => error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            &format!("Could not find operation {other} for version 2011-06-15"),
            request_id,
        ),
    }
}

fn validation(message: &str, request_id: &str) -> StsReply {
    error(
        StatusCode::BAD_REQUEST,
        "ValidationError",
        message,
        request_id,
    )
}

/// The form parameters of a query-protocol request.
struct Params(Vec<(String, String)>);

impl Params {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

async fn assume_role(
    services: &Services,
    audit: &ferrokms_store::Intent,
    request: &VerifiedRequest,
    env: &Environment,
    params: &Params,
    request_id: &str,
) -> StsReply {
    let param = |name: &str| params.get(name);
    // A session policy, session tags or MFA would narrow or mark the session; accepting them
    // without applying them would hand out the whole role, so they are refused.
    const KNOWN: &[&str] = &[
        "Action",
        "Version",
        "RoleArn",
        "RoleSessionName",
        "DurationSeconds",
        "ExternalId",
    ];
    if let Some((name, _)) = params.0.iter().find(|(k, _)| !KNOWN.contains(&k.as_str())) {
        let name: String = name.chars().take(64).collect();
        return validation(
            &format!("The AssumeRole parameter {name} is not supported by ferrokms; the session would not be limited by it."),
            request_id,
        );
    }
    let (Some(role_arn), Some(session)) = (param("RoleArn"), param("RoleSessionName")) else {
        return validation("RoleArn and RoleSessionName are required", request_id);
    };
    let session_ok = (2..=64).contains(&session.len())
        && session
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b));
    if !session_ok {
        return validation(
            &format!("1 validation error detected: Value '{session}' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\w+=,.@-]*"),
            request_id,
        );
    }
    let duration: i64 = match param("DurationSeconds").map(|d| (d, d.parse::<i64>())) {
        None => 3600,
        Some((_, Ok(d))) if (900..=43_200).contains(&d) => d,
        Some((raw, Ok(d))) => {
            let bound = if d < 900 {
                "greater than or equal to 900"
            } else {
                "less than or equal to 43200"
            };
            return validation(
                &format!("1 validation error detected: Value '{raw}' at 'durationSeconds' failed to satisfy constraint: Member must have value {bound}"),
                request_id,
            );
        }
        Some((raw, Err(_))) => {
            return validation(
                &format!("Value '{raw}' at 'durationSeconds' is not a valid integer"),
                request_id,
            )
        }
    };
    let caller = request.principal();
    if caller.caller().is_account_root() {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            "Roles may not be assumed by root accounts.",
            request_id,
        );
    }
    // A role session assuming a role (role chaining) gets at most an hour.
    if caller.role_arn().is_some() && duration > 3600 {
        return validation(
            "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            request_id,
        );
    }
    let denied = || {
        error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!(
                "User: {} is not authorized to perform: sts:AssumeRole on resource: {role_arn}",
                caller.arn()
            ),
            request_id,
        )
    };
    let failed = || {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalFailure",
            "An internal error occurred.",
            request_id,
        )
    };
    let role = match services.store.principal(role_arn).await {
        Ok(Some(r)) if r.kind == PrincipalKind::Role => r,
        Ok(_) => return denied(),
        Err(_) => return failed(),
    };
    let trust = match services.store.trust_policy(role_arn).await {
        Ok(Some(t)) => t,
        Ok(None) => return denied(),
        Err(_) => return failed(),
    };
    let Ok(document) = PolicyDocument::parse(&trust.document, PolicyKind::Key) else {
        return failed();
    };
    let ctx = request_context(
        caller,
        env,
        Some(&document),
        "sts:AssumeRole",
        role_arn,
        &Conditions::none().with_some("sts:ExternalId", param("ExternalId").map(str::to_owned)),
    );
    let decision = decide(
        Resource::WithPolicy {
            policy: &document,
            account: role.account.as_str(),
        },
        &caller.caller(),
        caller.identity_policies(),
        &ctx,
    );
    if decision != Decision::Allowed {
        return denied();
    }
    if duration > trust.max_session_seconds {
        return validation(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            request_id,
        );
    }
    let expires = env.now + duration * 1000;
    let Ok(creds) = identities::issue_session(
        services.store.as_ref(),
        audit,
        services.root.as_ref(),
        &role,
        session,
        expires,
    )
    .await
    else {
        return failed();
    };
    let expiration = time::OffsetDateTime::from_unix_timestamp(expires / 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default();
    let result = format!(
        "    <Credentials>\n      <AccessKeyId>{}</AccessKeyId>\n      <SecretAccessKey>{}</SecretAccessKey>\n      <SessionToken>{}</SessionToken>\n      <Expiration>{expiration}</Expiration>\n    </Credentials>\n    <AssumedRoleUser>\n      <AssumedRoleId>{}</AssumedRoleId>\n      <Arn>{}</Arn>\n    </AssumedRoleUser>\n",
        creds.key.access_key_id,
        xml_escape(creds.key.secret_access_key.as_str()),
        xml_escape(creds.session_token.as_str()),
        xml_escape(&creds.assumed_role_id),
        xml_escape(&creds.assumed_role_arn),
    );
    response("AssumeRole", &result, request_id)
}

/// STS's error document.
pub fn error(status: StatusCode, code: &'static str, message: &str, request_id: &str) -> StsReply {
    StsReply {
        status,
        error_code: Some(code),
        body: format!(
            "<ErrorResponse xmlns=\"{NS}\">\n  <Error>\n    <Type>Sender</Type>\n    <Code>{}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{request_id}</RequestId>\n</ErrorResponse>\n",
            xml_escape(code),
            xml_escape(message)
        ),
    }
}
