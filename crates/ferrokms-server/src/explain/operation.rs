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

use ferrokms_core::policy::{decide, Decision, Resource};
use ferrokms_core::KmsError;
use serde_json::{json, Value};

use super::{explain_request, Question};
use crate::api::authorize::{request_context, Conditions, Environment};
use crate::api::operations::{On, Operation};
use crate::api::resolve::{named_key, resolve_key};
use crate::api::{store_failure, Call, Services};
use crate::audit::PendingIntent;
use crate::error::ApiError;
use crate::sigv4::VerifiedRequest;
use crate::wire::Input;

pub const TARGET: &str = "FerroKMS_20261201.ExplainDecision";

/// The request members its audit record shows.
pub const AUDITED: &[&str] = &["Action", "KeyId", "Principal", "EncryptionContext"];

/// At most this many further condition keys in one question.
const MAX_CONDITIONS: usize = 32;

/// The account an IAM or STS principal ARN names.
fn account_of(arn: &str) -> Option<&str> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    match parts.as_slice() {
        ["arn", _, "iam" | "sts", "", account, _] => Some(account),
        _ => None,
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
    let refused = || {
        ApiError::Kms(KmsError::AccessDenied(format!(
            "User: {} is not authorized to perform: iam:SimulatePrincipalPolicy on resource: {subject}",
            p.arn()
        )))
    };
    // Only principals of one's own account: another account's policies are its own.
    if account_of(subject) != Some(p.account().as_str()) {
        return Err(refused());
    }
    let ctx = request_context(
        p,
        env,
        None,
        "iam:SimulatePrincipalPolicy",
        subject,
        &Conditions::none(),
    );
    match decide(
        Resource::IdentityOnly,
        &p.caller(),
        p.identity_policies(),
        &ctx,
    ) {
        Decision::Allowed => Ok(()),
        _ => Err(refused()),
    }
}

/// Answers one ExplainDecision request; the key's ARN is the record's resource.
pub async fn explain_decision(
    services: &Services,
    request: &VerifiedRequest,
    env: &Environment,
    audit: &PendingIntent<'_>,
    mut input: Input,
) -> Result<(Value, Vec<String>), ApiError> {
    let action = input.required_string("Action", 1, 128)?;
    let key = input.string("KeyId", 1, 2048)?;
    let subject = input.string("Principal", 1, 2048)?;
    let context = input.string_map("EncryptionContext")?.unwrap_or_default();
    let conditions: BTreeMap<String, String> = input.string_map("Conditions")?.unwrap_or_default();
    input.finish()?;
    if conditions.len() > MAX_CONDITIONS {
        return Err(KmsError::Validation(format!(
            "at most {MAX_CONDITIONS} conditions may be given"
        ))
        .into());
    }
    let subject = subject.unwrap_or_else(|| request.principal().arn().to_owned());
    authorize_subject(request, env, &subject)?;

    let mut resources = Vec::new();
    if let Some(raw) = &key {
        let caller_account = request.principal().account();
        let named = named_key(
            services.store.as_ref(),
            request.region(),
            caller_account,
            raw,
        )
        .await
        .map_err(store_failure)?;
        let Some(named) = named else {
            return Err(if raw.contains("alias/") {
                KmsError::alias_not_found(raw)
            } else {
                KmsError::invalid_key_id(raw)
            }
            .into());
        };
        // Both permissions are decided as their own operations decide them; the key is
        // named by id, so each sees the key itself (GetKeyPolicy takes no alias).
        let id = named.id.to_string();
        for operation in [Operation::GetKeyPolicy, Operation::ListGrants] {
            let call = Call {
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
            let target = if named.account == *caller_account {
                id.clone()
            } else {
                // Another account's key: refused as GetKeyPolicy refuses it, unseen.
                format!(
                    "arn:aws:kms:{}:{}:key/{}",
                    named.region, named.account, named.id
                )
            };
            let authorized = resolve_key(&call, &target, On::Key, &Conditions::none()).await?;
            if operation == Operation::GetKeyPolicy {
                resources.push(authorized.arn.to_string());
            }
        }
    }
    let answer = explain_request(
        services.store.as_ref(),
        &services.quotas.resources,
        &Question {
            caller: subject,
            action,
            key,
            region: request.region().clone(),
            encryption_context: context,
            conditions: conditions.into_iter().collect(),
            source_ip: env.source_ip,
            secure_transport: env.secure_transport,
            now: env.now,
        },
    )
    .await
    .map_err(|e| ApiError::Kms(KmsError::Validation(e.to_string())))?;
    Ok((
        json!({ "Allowed": answer.allowed, "Explanation": answer.text }),
        resources,
    ))
}
