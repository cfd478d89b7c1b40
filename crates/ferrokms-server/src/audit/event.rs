//! Building CloudTrail records. Request and response members are copied only from an
//! allow-list, so no plaintext, data key, private key, signature, MAC, ciphertext or token can
//! reach the log; the encryption context, which is public metadata, does.

use ferrokms_core::ids::{KeyArn, KeyReference};
use ferrokms_core::key::Millis;
use ferrokms_store::{AuditRecord, KeyUsageMark};
use serde_json::{json, Map, Value};

use super::log::PendingEvent;
use crate::sigv4::Principal;

/// Response members that are safe to record.
const RESPONSE_MEMBERS: &[&str] = &[
    "KeyId",
    "SourceKeyId",
    "KeyMetadata",
    "GrantId",
    "KeyState",
    "DeletionDate",
    "PendingWindowInDays",
    "EncryptionAlgorithm",
    "SourceEncryptionAlgorithm",
    "DestinationEncryptionAlgorithm",
    "SigningAlgorithm",
    "MacAlgorithm",
    "KeyPairSpec",
    "KeyAgreementAlgorithm",
    "ReplicaKeyMetadata",
    "CustomKeyStoreId",
];

fn lower_camel(member: &str) -> String {
    let mut c = member.chars();
    c.next()
        .map(|f| f.to_lowercase().chain(c).collect())
        .unwrap_or_default()
}

fn allowed(source: &Map<String, Value>, members: &[&str]) -> Option<Value> {
    let picked: Map<String, Value> = source
        .iter()
        .filter(|(k, _)| members.contains(&k.as_str()))
        .map(|(k, v)| (lower_camel(k), v.clone()))
        .collect();
    (!picked.is_empty()).then_some(Value::Object(picked))
}

/// The members of a request that its audit record may show: the operation table's list
/// for a KMS operation (never plaintexts, ciphertexts, tokens or passwords).
pub fn request_parameters(members: &Map<String, Value>, audited: &[&str]) -> Option<Value> {
    allowed(members, audited)
}

/// CloudTrail marks reads and cryptographic operations as read-only: for KMS, the
/// operations the table says change nothing.
pub fn is_read_only(event_source: &str, event_name: &str) -> bool {
    match event_source {
        "kms.amazonaws.com" => {
            (event_name == crate::explain::operation::NAME && crate::explain::operation::READ_ONLY)
                || crate::api::operations::Operation::spec_named(event_name)
                    .is_some_and(|spec| spec.read_only())
        }
        "sts.amazonaws.com" => event_name == "GetCallerIdentity",
        "cloudtrail.amazonaws.com" => event_name.starts_with("Lookup"),
        _ => false,
    }
}

/// Everything a record is made from.
pub struct EventInput<'a> {
    pub request_id: &'a str,
    /// From [`new_event_id`]; the intent and the final record of a request share it.
    pub event_id: &'a str,
    pub time: Millis,
    pub event_source: &'a str,
    pub event_name: &'a str,
    pub region: &'a str,
    pub source_ip: String,
    pub user_agent: &'a str,
    pub principal: Option<&'a Principal>,
    /// The access key a rejected request claimed, and the account it belongs to if known.
    pub claimed_access_key: Option<(&'a str, Option<String>)>,
    /// From [`request_parameters`].
    pub request_parameters: Option<Value>,
    pub response: Option<&'a Value>,
    pub error: Option<(&'a str, Option<String>)>,
    pub resources: Vec<String>,
}

fn iso8601(ms: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn user_identity(p: &Principal) -> Value {
    let arn = p.arn();
    let kind = if arn.ends_with(":root") {
        "Root"
    } else if arn.contains(":assumed-role/") {
        "AssumedRole"
    } else {
        "IAMUser"
    };
    let mut id = json!({
        "type": kind,
        "principalId": p.user_id(),
        "arn": arn,
        "accountId": p.account().as_str(),
        "accessKeyId": p.access_key_id(),
    });
    if let Some(name) = arn.split_once(":user/").map(|(_, n)| n) {
        id["userName"] = json!(name);
    }
    id
}

pub fn new_event_id() -> String {
    uuid::Builder::from_random_bytes(ferrokms_core::random::array().unwrap_or([0; 16]))
        .into_uuid()
        .to_string()
}

/// The record a request's writes carry before its answer is known. It reaches the chain only
/// if the final record never does (the server stopped in between), and says so.
pub fn intent(input: EventInput<'_>) -> PendingEvent {
    record(input, Some(json!({ "answerRecorded": false })))
}

/// Builds the CloudTrail record of one request.
pub fn build(input: EventInput<'_>) -> PendingEvent {
    record(input, None)
}

/// The record, with `additional` as its `additionalEventData` when given.
fn record(input: EventInput<'_>, additional: Option<Value>) -> PendingEvent {
    let event_id = input.event_id.to_owned();
    let (identity, account, access_key, username) =
        match (input.principal, &input.claimed_access_key) {
            (Some(p), _) => (
                user_identity(p),
                p.account().to_string(),
                p.access_key_id().to_owned(),
                p.arn().rsplit('/').next().unwrap_or_default().to_owned(),
            ),
            (None, Some((key, account))) => (
                json!({"type": "Unknown", "accessKeyId": key, "accountId": account}),
                account.clone().unwrap_or_else(|| "unknown".into()),
                (*key).to_owned(),
                String::new(),
            ),
            (None, None) => (
                json!({"type": "Unknown"}),
                "unknown".into(),
                String::new(),
                String::new(),
            ),
        };
    let read_only = is_read_only(input.event_source, input.event_name);
    let mut additional_event_data = input
        .response
        .and_then(|r| r.get("KeyMaterialId"))
        .map(|id| json!({ "keyMaterialId": id }));
    if additional.is_some() {
        additional_event_data = additional;
    }
    let (error_code, error_message) = match &input.error {
        Some((code, message)) => (Some(*code), message.as_deref()),
        None => (None, None),
    };
    let event = Event {
        event_version: "1.09",
        user_identity: &identity,
        event_time: iso8601(input.time),
        event_source: input.event_source,
        event_name: input.event_name,
        aws_region: input.region,
        source_ip_address: &input.source_ip,
        user_agent: input.user_agent,
        request_parameters: input.request_parameters.as_ref(),
        response_elements: input
            .response
            .and_then(Value::as_object)
            .and_then(|m| allowed(m, RESPONSE_MEMBERS)),
        request_id: input.request_id,
        event_id: &event_id,
        read_only,
        resources: input
            .resources
            .iter()
            .map(|arn| Resource {
                account_id: arn.split(':').nth(4).unwrap_or_default(),
                kind: "AWS::KMS::Key",
                arn,
            })
            .collect(),
        event_type: "AwsApiCall",
        management_event: true,
        recipient_account_id: &account,
        event_category: "Management",
        error_code,
        error_message,
        additional_event_data,
    };
    // A struct of borrowed fields, not a `Value` tree: one of these is written per request.
    let event = serde_json::to_string(&event).unwrap_or_default();
    let usage = match (&input.error, input.response) {
        (None, Some(_)) => key_usage(&input, &event_id),
        _ => Vec::new(),
    };
    PendingEvent {
        usage,
        record: AuditRecord {
            seq: 0,
            event_id,
            event_time: input.time,
            account,
            event_name: input.event_name.to_owned(),
            event_source: input.event_source.to_owned(),
            read_only,
            username,
            access_key_id: access_key,
            resources: input.resources,
            event,
            prev_hash: String::new(),
            hash: String::new(),
        },
    }
}

/// The operations whose success is a key's use for GetKeyLastUsage (the model's
/// KeyLastUsageTrackingOperation).
const TRACKED_OPERATIONS: [&str; 12] = [
    "Decrypt",
    "DeriveSharedSecret",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "ReEncrypt",
    "Sign",
    "Verify",
    "VerifyMac",
];

/// Each key a successful cryptographic call used (ReEncrypt: both), as its last use.
fn key_usage(input: &EventInput<'_>, event_id: &str) -> Vec<KeyUsageMark> {
    if input.event_source != "kms.amazonaws.com" || !TRACKED_OPERATIONS.contains(&input.event_name)
    {
        return Vec::new();
    }
    input
        .resources
        .iter()
        .filter_map(|arn| match KeyReference::parse(arn) {
            KeyReference::Arn(arn) => Some(KeyUsageMark {
                region: arn.region,
                key_id: arn.key_id,
                operation: input.event_name.to_owned(),
                at: input.time,
                event_id: event_id.to_owned(),
                request_id: input.request_id.to_owned(),
            }),
            _ => None,
        })
        .collect()
}

/// A CloudTrail record, with its members in CloudTrail's order.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct Event<'a> {
    event_version: &'static str,
    user_identity: &'a Value,
    event_time: String,
    event_source: &'a str,
    event_name: &'a str,
    aws_region: &'a str,
    #[serde(rename = "sourceIPAddress")]
    source_ip_address: &'a str,
    user_agent: &'a str,
    request_parameters: Option<&'a Value>,
    response_elements: Option<Value>,
    #[serde(rename = "requestID")]
    request_id: &'a str,
    #[serde(rename = "eventID")]
    event_id: &'a str,
    read_only: bool,
    resources: Vec<Resource<'a>>,
    event_type: &'static str,
    management_event: bool,
    recipient_account_id: &'a str,
    event_category: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error_message: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    additional_event_data: Option<Value>,
}

#[derive(serde::Serialize)]
struct Resource<'a> {
    #[serde(rename = "accountId")]
    account_id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(rename = "ARN")]
    arn: &'a str,
}

/// Notes in the record of a failed authentication how many from the same address went
/// unrecorded before it (`unauthenticated`).
pub fn note_dropped(event: &mut PendingEvent, dropped: u64) {
    if let Ok(mut value) = serde_json::from_str::<Value>(&event.record.event) {
        value["additionalEventData"] = json!({ "unrecordedBefore": dropped });
        event.record.event = value.to_string();
    }
}

/// The record of something KMS did to a key by itself (CloudTrail's `AwsServiceEvent`):
/// deleting it when its waiting period ends, rotating it, expiring imported material.
pub fn service_event(
    event_name: &str,
    key: &KeyArn,
    time: Millis,
    additional: Option<Value>,
) -> PendingEvent {
    let event_id = new_event_id();
    let account = key.account.to_string();
    let arn = key.to_string();
    let mut event = json!({
        "eventVersion": "1.09",
        "userIdentity": { "accountId": account, "invokedBy": "kms.amazonaws.com" },
        "eventTime": iso8601(time),
        "eventSource": "kms.amazonaws.com",
        "eventName": event_name,
        "awsRegion": key.region.as_str(),
        "sourceIPAddress": "kms.amazonaws.com",
        "userAgent": "kms.amazonaws.com",
        "requestParameters": null,
        "responseElements": null,
        "eventID": event_id,
        "readOnly": false,
        "resources": [{ "accountId": account, "type": "AWS::KMS::Key", "ARN": arn }],
        "eventType": "AwsServiceEvent",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    });
    if let Some(extra) = additional {
        event["additionalEventData"] = extra;
    }
    PendingEvent {
        usage: Vec::new(),
        record: AuditRecord {
            seq: 0,
            event_id,
            event_time: time,
            account,
            event_name: event_name.to_owned(),
            event_source: "kms.amazonaws.com".into(),
            read_only: false,
            username: String::new(),
            access_key_id: String::new(),
            resources: vec![arn],
            event: event.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        },
    }
}

/// Who made a change that no request asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeSource {
    /// An operator's `ferrokms admin` command.
    AdminCommand,
    /// The users and roles of the config file, applied at start.
    ConfigFile,
    /// The admin user a new data directory is given at its first start.
    FirstStart,
}

impl ChangeSource {
    pub fn invoked_by(self) -> &'static str {
        match self {
            ChangeSource::AdminCommand => "ferrokms admin",
            ChangeSource::ConfigFile => "ferrokms config file",
            ChangeSource::FirstStart => "ferrokms first start",
        }
    }
}

/// The record of a change made by the operator or the config file: IAM-style (eventSource
/// `iam.amazonaws.com`, in us-east-1, as CloudTrail records IAM's own API) for users, roles,
/// access keys and identity policies. It is written with the change, in its transaction.
pub fn operator_event(
    by: ChangeSource,
    event_source: &str,
    event_name: &str,
    account: &str,
    parameters: Value,
    resource: (&str, &str),
    time: Millis,
) -> PendingEvent {
    let event_id = new_event_id();
    let (resource_type, arn) = resource;
    let event = json!({
        "eventVersion": "1.09",
        "userIdentity": { "type": "ferrokms", "accountId": account, "invokedBy": by.invoked_by() },
        "eventTime": iso8601(time),
        "eventSource": event_source,
        "eventName": event_name,
        "awsRegion": "us-east-1",
        "sourceIPAddress": by.invoked_by(),
        "userAgent": by.invoked_by(),
        "requestParameters": parameters,
        "responseElements": null,
        "eventID": event_id,
        "readOnly": false,
        "resources": [{ "accountId": account, "type": resource_type, "ARN": arn }],
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
    });
    PendingEvent {
        usage: Vec::new(),
        record: AuditRecord {
            seq: 0,
            event_id,
            event_time: time,
            account: account.to_owned(),
            event_name: event_name.to_owned(),
            event_source: event_source.to_owned(),
            read_only: false,
            username: String::new(),
            access_key_id: String::new(),
            resources: vec![arn.to_owned()],
            event: event.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_reach_the_record() {
        let request = json!({
            "KeyId": "alias/x",
            "Plaintext": "c2VjcmV0",
            "EncryptionContext": {"purpose": "test"},
            "GrantTokens": ["token"],
        });
        let response = json!({
            "CiphertextBlob": "AQID",
            "Plaintext": "c2VjcmV0",
            "PrivateKeyPlaintext": "AAAA",
            "KeyId": "arn:aws:kms:us-east-1:111122223333:key/k",
            "KeyMaterialId": "ab",
        });
        let e = build(EventInput {
            request_id: "r",
            event_id: "e",
            time: 0,
            event_source: "kms.amazonaws.com",
            event_name: "GenerateDataKey",
            region: "us-east-1",
            source_ip: "127.0.0.1".into(),
            user_agent: "test",
            principal: None,
            claimed_access_key: None,
            request_parameters: request.as_object().and_then(|m| {
                request_parameters(
                    m,
                    crate::api::operations::Operation::GenerateDataKey
                        .spec()
                        .audited,
                )
            }),
            response: Some(&response),
            error: None,
            resources: vec![],
        });
        let text = e.record.event;
        assert!(!text.contains("c2VjcmV0") && !text.contains("AQID") && !text.contains("AAAA"));
        assert!(!text.contains("token"));
        assert!(
            text.contains("\"encryptionContext\":{\"purpose\":\"test\"}"),
            "{text}"
        );
        assert!(text.contains("\"keyMaterialId\":\"ab\""));
        assert!(e.record.read_only);
    }

    #[test]
    fn custom_key_store_secrets_never_reach_the_record() {
        let request = json!({
            "CustomKeyStoreName": "ext",
            "KeyStorePassword": "kmsuser-password",
            "XksProxyUriPath": "/kms/xks/v1",
            "XksProxyAuthenticationCredential": {
                "AccessKeyId": "XKSPROXYACCESSKEY2345",
                "RawSecretAccessKey": "raw-secret-of-the-proxy",
            },
        });
        let parameters = request
            .as_object()
            .and_then(|m| {
                request_parameters(
                    m,
                    crate::api::operations::Operation::CreateCustomKeyStore
                        .spec()
                        .audited,
                )
            })
            .unwrap();
        let text = parameters.to_string();
        assert!(!text.contains("kmsuser-password") && !text.contains("raw-secret-of-the-proxy"));
        assert!(!text.contains("XKSPROXYACCESSKEY2345"));
        assert_eq!(parameters["customKeyStoreName"], "ext");
        assert_eq!(parameters["xksProxyUriPath"], "/kms/xks/v1");
    }
}
