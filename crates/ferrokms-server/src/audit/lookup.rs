//! CloudTrail's LookupEvents, so that `aws cloudtrail lookup-events --endpoint-url ...` reads
//! the audit trail of the caller's account.

use ferrokms_core::policy::Decision;
use ferrokms_core::KmsError;
use ferrokms_store::{AuditAttribute, AuditQuery, Store};
use serde_json::{json, Value};

use crate::api::authorize::{identity_decision, Environment};
use crate::error::ApiError;
use crate::sigv4::VerifiedRequest;
use crate::wire::{timestamp, Input};

/// The request members a LookupEvents audit record shows.
pub const AUDITED: &[&str] = &["LookupAttributes", "StartTime", "EndTime", "MaxResults"];

pub const TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101.LookupEvents";

/// Whether a request's `X-Amz-Target` names LookupEvents: botocore sends the model's whole
/// target prefix, the SDKs generated from the Smithy model (JavaScript v3, Rust) the service
/// shape's name alone.
pub fn names_lookup_events(target: &str) -> bool {
    target == TARGET || target == "CloudTrail_20131101.LookupEvents"
}

fn cloudtrail_error(code: &'static str, message: &str) -> ApiError {
    ApiError::Service(code, message.to_owned())
}

/// Only the account's root, or a principal whose IAM policies allow
/// `cloudtrail:LookupEvents`, may read the trail; the same evaluator as KMS decides.
fn authorize(request: &VerifiedRequest, env: &Environment) -> Result<(), ApiError> {
    let p = request.principal();
    match identity_decision(p, env, "cloudtrail:LookupEvents", "*") {
        Decision::Allowed => Ok(()),
        decision => Err(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: cloudtrail:LookupEvents {}",
            p.arn(),
            decision.reason("cloudtrail:LookupEvents")
        ))
        .into()),
    }
}

pub async fn lookup_events(
    store: &dyn Store,
    request: &VerifiedRequest,
    env: &Environment,
    mut input: Input,
) -> Result<Value, ApiError> {
    let attributes = input.raw("LookupAttributes");
    let start = input.timestamp("StartTime")?;
    let end = input.timestamp("EndTime")?;
    let max = input.integer("MaxResults", 1, 50)?;
    let token = input.string("NextToken", 1, 1024)?;
    let _category = input.string("EventCategory", 1, 32)?;
    input.finish()?;
    authorize(request, env)?;
    let attribute = match attributes {
        None => None,
        Some(Value::Array(items)) if items.is_empty() => None,
        Some(Value::Array(items)) if items.len() == 1 => {
            let key = items[0]
                .get("AttributeKey")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let value = items[0]
                .get("AttributeValue")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let key = AuditAttribute::parse(key).ok_or_else(|| {
                cloudtrail_error(
                    "InvalidLookupAttributesException",
                    &format!("Unsupported lookup attribute key: {key}"),
                )
            })?;
            Some((key, value.to_owned()))
        }
        Some(_) => {
            return Err(cloudtrail_error(
                "InvalidLookupAttributesException",
                "You cannot specify more than one lookup attribute.",
            ))
        }
    };
    if let (Some(s), Some(e)) = (start, end) {
        if s > e {
            return Err(cloudtrail_error(
                "InvalidTimeRangeException",
                "Start time must be earlier than end time.",
            ));
        }
    }
    let before = match token {
        Some(t) => Some(
            t.parse::<i64>()
                .map_err(|_| cloudtrail_error("InvalidNextTokenException", "Invalid NextToken."))?,
        ),
        None => None,
    };
    let limit = max.and_then(|m| usize::try_from(m).ok()).unwrap_or(50);
    let query = AuditQuery {
        account: request.principal().account().to_string(),
        attribute,
        start,
        end,
    };
    let mut rows = store
        .lookup_audit_events(&query, before, limit + 1)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "audit lookup failed");
            ApiError::from(KmsError::internal())
        })?;
    let more = rows.len() > limit;
    rows.truncate(limit);
    let events: Vec<Value> = rows
        .iter()
        .map(|r| {
            json!({
                "EventId": r.event_id,
                "EventName": r.event_name,
                "ReadOnly": r.read_only.to_string(),
                "AccessKeyId": r.access_key_id,
                "EventTime": timestamp(r.event_time),
                "EventSource": r.event_source,
                "Username": r.username,
                "Resources": r.resources.iter().map(|arn| json!({
                    "ResourceType": "AWS::KMS::Key",
                    "ResourceName": arn,
                })).collect::<Vec<_>>(),
                "CloudTrailEvent": r.event,
            })
        })
        .collect();
    let mut out = json!({ "Events": events });
    if more {
        if let Some(last) = rows.last() {
            out["NextToken"] = json!(last.seq.to_string());
        }
    }
    Ok(out)
}
