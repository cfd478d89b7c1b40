//! Authorization: the key policy and the caller's identity policies decide every request, as
//! in AWS. Key-level decisions happen when a key is resolved (see `resolve`), so that no
//! operation can use a key it was not allowed to.

use std::collections::BTreeMap;

use ferrokms_core::context::EncryptionContext;
use ferrokms_core::grant::GrantTerms;
use ferrokms_core::key::KeyMetadata;
use ferrokms_core::policy::{
    authorize_key_access, evaluate_identity, key_access, Caller, Evaluation, KeyAccess,
    PolicyDocument, PolicyKind, RequestContext,
};
use ferrokms_core::KmsError;
use ferrokms_store::Page;

use super::{store_failure, Call};
use crate::error::ApiError;

/// Request-specific condition keys an operation adds to the common ones, and the request's
/// encryption context (which grant constraints compare exactly).
#[derive(Default, Clone, Debug)]
pub struct Conditions {
    keys: Vec<(String, Vec<String>)>,
    encryption_context: BTreeMap<String, String>,
}

impl Conditions {
    pub fn none() -> Self {
        Conditions::default()
    }

    pub fn with(mut self, key: &str, values: Vec<String>) -> Self {
        self.keys.push((key.to_owned(), values));
        self
    }

    /// `aws:RequestTag/<key>` for each tag and `aws:TagKeys`.
    pub fn request_tags(mut self, tags: &[ferrokms_core::tags::Tag]) -> Self {
        for t in tags {
            self.keys
                .push((format!("aws:RequestTag/{}", t.key), vec![t.value.clone()]));
        }
        self.keys.push((
            "aws:TagKeys".into(),
            tags.iter().map(|t| t.key.clone()).collect(),
        ));
        self
    }

    /// `kms:EncryptionContext:<key>` for each entry and `kms:EncryptionContextKeys`.
    pub fn encryption_context(mut self, context: &EncryptionContext) -> Self {
        for (k, v) in context.entries() {
            self.keys
                .push((format!("kms:EncryptionContext:{k}"), vec![v.clone()]));
        }
        if !context.entries().is_empty() {
            self.keys.push((
                "kms:EncryptionContextKeys".into(),
                context.entries().keys().cloned().collect(),
            ));
        }
        self.encryption_context = context.entries().clone();
        self
    }
}

fn caller<'a>(call: &'a Call<'_>) -> Caller<'a> {
    let p = call.request.principal();
    Caller {
        arn: p.arn(),
        account: p.account().as_str(),
        role_arn: p.role_arn(),
    }
}

fn context(call: &Call<'_>, action: &str, resource: &str, extra: &Conditions) -> RequestContext {
    let p = call.request.principal();
    let mut ctx = RequestContext::new(format!("kms:{action}"), resource);
    ctx.set("kms:CallerAccount", vec![p.account().to_string()])
        .set("aws:PrincipalArn", vec![p.arn().to_owned()])
        .set("aws:PrincipalAccount", vec![p.account().to_string()])
        .set("aws:SecureTransport", vec!["false".into()])
        .set("aws:CurrentTime", vec![(call.now / 1000).to_string()])
        .set("aws:SourceIp", vec![call.source_ip.to_string()]);
    for (k, v) in &extra.keys {
        ctx.set(k, v.clone());
    }
    ctx
}

fn denied(call: &Call<'_>, action: &str, resource: &str, why: &str) -> ApiError {
    KmsError::AccessDenied(format!(
        "User: {} is not authorized to perform: kms:{action} on resource: {resource} {why}",
        call.request.principal().arn()
    ))
    .into()
}

/// Whether one of the key's grants lets the caller do `action` with this encryption context.
async fn granted(
    call: &Call<'_>,
    key: &KeyMetadata,
    action: &str,
    extra: &Conditions,
) -> Result<bool, ApiError> {
    let principal = call.request.principal();
    let is_caller =
        |grantee: &str| grantee == principal.arn() || Some(grantee) == principal.role_arn();
    let grants = super::grants::all_grants(call, key).await?;
    Ok(grants.iter().any(|g| {
        is_caller(&g.grantee_principal)
            && serde_json::from_str::<GrantTerms>(&g.document)
                .is_ok_and(|terms| terms.allows(action, &extra.encryption_context))
    }))
}

/// May the caller do `action` on `key`? The key policy and the caller's identity policies
/// decide; where they do not allow it (and deny nothing), a grant may.
pub async fn authorize_key(
    call: &Call<'_>,
    key: &KeyMetadata,
    action: &str,
    extra: &Conditions,
) -> Result<(), ApiError> {
    let arn = key.arn.to_string();
    let mut ctx = context(call, action, &arn, extra);
    ctx.set("kms:KeySpec", vec![key.key_spec.as_str().into()])
        .set("kms:KeyUsage", vec![key.key_usage.as_str().into()])
        .set("kms:KeyOrigin", vec![key.origin.as_str().into()])
        .set("kms:MultiRegion", vec![key.is_multi_region().to_string()]);
    let policy = PolicyDocument::parse(&key.policy, PolicyKind::Key).map_err(|e| {
        tracing::error!(key = %arn, error = %e, "stored key policy is malformed");
        ApiError::from(KmsError::internal())
    })?;
    let principal = call.request.principal();
    let asks = |prefix: &str| {
        policy.uses_condition_key(prefix)
            || principal
                .identity_policies()
                .iter()
                .any(|p| p.uses_condition_key(prefix))
    };
    if asks("aws:resourcetag/") {
        let tags = call
            .services
            .store
            .list_tags(
                key.region(),
                &key.id(),
                Page {
                    after: None,
                    limit: call.services.quotas.resources.tags_per_key,
                },
            )
            .await
            .map_err(store_failure)?;
        for tag in tags {
            ctx.set(&format!("aws:ResourceTag/{}", tag.key), vec![tag.value]);
        }
    }
    if asks("kms:resourcealiases") {
        let aliases = call
            .services
            .store
            .list_aliases(
                key.region(),
                key.account(),
                Some(&key.id()),
                Page {
                    after: None,
                    limit: 50,
                },
            )
            .await
            .map_err(store_failure)?;
        ctx.set(
            "kms:ResourceAliases",
            aliases.iter().map(|a| a.name.to_string()).collect(),
        );
    }
    let access = key_access(
        &policy,
        key.account().as_str(),
        &caller(call),
        principal.identity_policies(),
        &ctx,
    );
    let allowed = match access {
        KeyAccess::Allowed => true,
        KeyAccess::ExplicitlyDenied => false,
        KeyAccess::NotAllowed => granted(call, key, action, extra).await?,
    };
    if allowed {
        Ok(())
    } else {
        Err(denied(
            call,
            action,
            &arn,
            &format!("because no resource-based policy allows the kms:{action} action"),
        ))
    }
}

/// The policy lockout safety check: a new key policy must still let the caller change the
/// key policy afterwards.
pub fn check_lockout(
    call: &Call<'_>,
    new_policy: &PolicyDocument,
    key_arn: &str,
    key_account: &str,
) -> Result<(), ApiError> {
    let ctx = context(call, "PutKeyPolicy", key_arn, &Conditions::none());
    if authorize_key_access(
        new_policy,
        key_account,
        &caller(call),
        call.request.principal().identity_policies(),
        &ctx,
    ) {
        Ok(())
    } else {
        Err(KmsError::MalformedPolicyDocument(
            "The new key policy will not allow you to update the key policy in the future.".into(),
        )
        .into())
    }
}

/// May the caller do `action` where there is no key yet (CreateKey, ListKeys, ...)? Only
/// its identity policies decide; an account's root may do anything in its account.
pub fn authorize_account(
    call: &Call<'_>,
    action: &str,
    extra: &Conditions,
) -> Result<(), ApiError> {
    if caller(call).is_account_root() {
        return Ok(());
    }
    let ctx = context(call, action, "*", extra);
    match evaluate_identity(call.request.principal().identity_policies(), &ctx) {
        Evaluation::Allow(_) => Ok(()),
        _ => Err(denied(
            call,
            action,
            "*",
            &format!("because no identity-based policy allows the kms:{action} action"),
        )),
    }
}
