//! `ExplainDecision`, the API behind the console's "why was I denied?": the report of
//! `ferrokms policy explain`, for a caller signed in like any other. It is ferrokms's own
//! operation (AWS has none like it; IAM's SimulatePrincipalPolicy is the nearest), so it has
//! its own target, `FerroKMS_20261201.ExplainDecision`, signed for `kms`, and no name in
//! AWS's `TrentService` namespace.
//!
//! The report shows the key policy, the grants and the IAM policies that decided, so asking
//! needs what reading them needs:
//! - on the key (which must be in the caller's account): kms:GetKeyPolicy and
//!   kms:ListGrants, decided exactly as GetKeyPolicy and ListGrants decide them;
//! - about another principal (of the caller's account only): iam:SimulatePrincipalPolicy
//!   on that principal's ARN in the caller's IAM policies, as IAM asks of its simulator.
//!
//! Asking about oneself needs no IAM permission: one's own identity policies decided one's
//! own request.

use std::collections::BTreeMap;

use ferrokms_core::context::{EncryptionContext, MAX_CONTEXT_BYTES};
use ferrokms_core::ids::{AliasName, KeyReference};
use ferrokms_core::policy::Decision;
use ferrokms_core::KmsError;
use serde_json::{json, Value};

use super::{report, Question};
use crate::api::authorize::{authorize_key, identity_decision, Conditions, Environment, Named};
use crate::api::operations::{On, Operation};
use crate::api::resolve::{named_key, resolve_key};
use crate::api::{store_failure, Call, Services};
use crate::audit::PendingIntent;
use crate::error::ApiError;
use crate::sigv4::VerifiedRequest;
use crate::wire::Input;

/// The operation's facts, declared here only: its name (in audit records, metrics and
/// logs), its target, that it changes nothing, and the members its audit record shows. Its
/// request rate is ListGrants's (`quotas`).
pub const NAME: &str = "ExplainDecision";
pub const TARGET: &str = "FerroKMS_20261201.ExplainDecision";
pub const READ_ONLY: bool = true;

/// The request members its audit record shows.
pub const AUDITED: &[&str] = &[
    "Action",
    "KeyId",
    "Principal",
    "EncryptionContext",
    "Conditions",
];

/// At most this many further condition keys in one question, each this long.
const MAX_CONDITIONS: usize = 32;
const MAX_CONDITION_KEY: usize = 128;
const MAX_CONDITION_VALUE: usize = 1024;

/// The account an IAM or STS principal ARN of AWS's commercial partition names.
fn account_of(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", "aws", "iam" | "sts", "", account, _] => Some(account),
        _ => None,
    }
}

/// The IAM resource whose policies decide for `subject`: a role's session is its role, as
/// IAM's simulator takes only users, groups and roles.
fn policy_source(subject: &str) -> String {
    match subject
        .strip_prefix("arn:aws:sts::")
        .and_then(|rest| rest.split_once(":assumed-role/"))
    {
        Some((account, rest)) => {
            let role = rest.split('/').next().unwrap_or_default();
            format!("arn:aws:iam::{account}:role/{role}")
        }
        None => subject.to_owned(),
    }
}

/// May the caller read the policies that decide for `subject`?
fn authorize_subject(
    request: &VerifiedRequest,
    env: &Environment,
    subject: &str,
) -> Result<(), ApiError> {
    let p = request.principal();
    if subject == p.arn() {
        return Ok(());
    }
    let source = policy_source(subject);
    let refused = || {
        ApiError::Kms(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: iam:SimulatePrincipalPolicy on resource: {source}",
            p.arn()
        )))
    };
    // Only principals of one's own account: another account's policies are its own.
    if account_of(subject) != Some(p.account().as_str()) {
        return Err(refused());
    }
    match identity_decision(p, env, "iam:SimulatePrincipalPolicy", &source) {
        Decision::Allowed => Ok(()),
        _ => Err(refused()),
    }
}

/// The key `raw` names, as the ARN to authorize, and the alias it was named by. Looked up
/// once: what is authorized is what is explained. Another Region's ARN is refused as every
/// operation refuses it; another account's alias is not looked up at all (nothing may say
/// whether it exists).
async fn key_named(
    services: &Services,
    request: &VerifiedRequest,
    raw: &str,
) -> Result<(String, Option<AliasName>), ApiError> {
    let region = request.region();
    let account = request.principal().account();
    match KeyReference::parse(raw) {
        KeyReference::Arn(arn) if &arn.region != region => {
            return Err(KmsError::invalid_arn_region(&arn.region).into())
        }
        KeyReference::AliasArn { region: r, .. } if &r != region => {
            return Err(KmsError::invalid_arn_region(&r).into())
        }
        KeyReference::AliasArn { account: a, .. } if &a != account => {
            return Err(KmsError::access_denied_hidden(
                request.principal().arn(),
                Operation::GetKeyPolicy.spec().name,
                raw,
            )
            .into())
        }
        KeyReference::MalformedArn(_) | KeyReference::Invalid(_) => {
            return Err(KmsError::invalid_key_id(raw).into())
        }
        _ => {}
    }
    let Some(named) = named_key(services.store.as_ref(), region, account, raw)
        .await
        .map_err(store_failure)?
    else {
        // Only an alias of the caller's own account can be missing here.
        let name = raw.rsplit_once(':').map_or(raw, |(_, n)| n);
        return Err(
            KmsError::alias_not_found(format!("arn:aws:kms:{region}:{account}:{name}")).into(),
        );
    };
    Ok((
        format!(
            "arn:aws:kms:{}:{}:key/{}",
            named.region, named.account, named.id
        ),
        named.alias,
    ))
}

/// Answers one ExplainDecision request. The keys it touched are the record's resources,
/// refused or not.
pub async fn explain_decision(
    services: &Services,
    request: &VerifiedRequest,
    env: &Environment,
    audit: &PendingIntent<'_>,
    input: Input,
) -> (Result<Value, ApiError>, Vec<String>) {
    let mut resources = Vec::new();
    let result = answer(services, request, env, audit, input, &mut resources).await;
    (result, resources)
}

async fn answer(
    services: &Services,
    request: &VerifiedRequest,
    env: &Environment,
    audit: &PendingIntent<'_>,
    mut input: Input,
    resources: &mut Vec<String>,
) -> Result<Value, ApiError> {
    let action = input.required_string("Action", 1, 128)?;
    let key = input.string("KeyId", 1, 2048)?;
    let subject = input.string("Principal", 1, 2048)?;
    let context =
        EncryptionContext::new(input.string_map("EncryptionContext")?.unwrap_or_default());
    let conditions: BTreeMap<String, String> = input.string_map("Conditions")?.unwrap_or_default();
    input.finish()?;
    if context.size_bytes() > MAX_CONTEXT_BYTES {
        return Err(KmsError::encryption_context_too_large().into());
    }
    if conditions.len() > MAX_CONDITIONS
        || conditions
            .iter()
            .any(|(k, v)| k.len() > MAX_CONDITION_KEY || v.len() > MAX_CONDITION_VALUE)
    {
        return Err(KmsError::Validation(format!(
            "at most {MAX_CONDITIONS} conditions, each key at most {MAX_CONDITION_KEY} and each value at most {MAX_CONDITION_VALUE} characters"
        ))
        .into());
    }
    let subject = subject.unwrap_or_else(|| request.principal().arn().to_owned());
    authorize_subject(request, env, &subject)?;

    let mut explained = None;
    if let Some(raw) = &key {
        let (arn, alias) = key_named(services, request, raw).await?;
        // Both permissions are decided as their own operations decide them: GetKeyPolicy's
        // on the key's ARN (so another account's key is refused unseen, as GetKeyPolicy
        // refuses it), then ListGrants's, with its condition keys, on the key it found.
        let call = |operation: Operation| Call {
            services,
            request,
            audit,
            operation: operation.spec(),
            now: env.now,
            source_ip: env.source_ip,
            secure_transport: env.secure_transport,
            resources: Default::default(),
            decided: Default::default(),
        };
        let read_policy = call(Operation::GetKeyPolicy);
        let found = resolve_key(&read_policy, &arn, On::Key, &Conditions::none()).await;
        resources.extend(read_policy.take_resources());
        let key = authorize_key(
            &call(Operation::ListGrants),
            found?.into_metadata(),
            On::Key,
            Named::ByRequest,
            &crate::api::grants::list_grants_conditions(),
        )
        .await?;
        explained = Some((key.into_metadata(), alias.map(|a| a.to_string())));
    }
    let principal = crate::sigv4::principal_named(services.store.as_ref(), &subject)
        .await
        .map_err(|m| ApiError::Kms(KmsError::NotFound(m)))?;
    let answer = report(
        services.store.as_ref(),
        &services.quotas.resources,
        &Question {
            caller: subject,
            action,
            key: None,
            region: request.region().clone(),
            encryption_context: context.entries().clone(),
            conditions: conditions.into_iter().collect(),
            source_ip: env.source_ip,
            secure_transport: env.secure_transport,
            now: env.now,
        },
        &principal,
        explained,
    )
    .await?;
    Ok(json!({ "Allowed": answer.allowed, "Explanation": answer.text }))
}
