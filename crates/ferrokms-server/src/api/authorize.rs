//! Authorization: the operation table says which permission an operation needs on which
//! resource; the key policy, the caller's identity policies and the key's grants decide it,
//! as in AWS. Only this module makes an [`AuthorizedKey`], the one form in which handlers
//! can use or change a key, so no handler can act on a key it was not allowed to.
//!
//! Every global and KMS condition key AWS sets for a request is set here or by the handler
//! that knows its value ([`Conditions`]); keys AWS leaves out of a request (aws:SourceVpce,
//! aws:SourceArn, kms:ViaService, ...) are absent, so negated conditions on them hold.

use std::collections::BTreeMap;
use std::net::IpAddr;

use ferrokms_core::context::EncryptionContext;
use ferrokms_core::grant::GrantConstraints;
use ferrokms_core::grant::{GrantRequest, GrantTerms};
use ferrokms_core::ids::Region;
use ferrokms_core::key::{KeyMetadata, Millis};
use ferrokms_core::key::{KeySpec, KeyUsage, Origin};
use ferrokms_core::policy::{
    decide, Decision, PolicyDocument, PolicyKind, RequestContext, Resource,
};
use ferrokms_core::KmsError;
use ferrokms_store::{GrantRecord, Page, Store};

use super::operations::{On, Permission, Policy, When};
use super::{store_failure, Call};
use crate::error::ApiError;
use crate::sigv4::Principal;

/// Request-specific condition keys an operation adds to the common ones, and what grant
/// constraints compare: the request's encryption context, and a new grant's terms.
#[derive(Default, Clone, Debug)]
pub struct Conditions {
    keys: Vec<(String, Vec<String>)>,
    /// The encryption context, for operations that take one (symmetric cryptography).
    encryption_context: Option<BTreeMap<String, String>>,
    /// CreateGrant: the grant asked for, which a grant may allow only if it is narrower.
    new_grant: Option<GrantTerms>,
    /// The request has `Tags`, so permissions needed only for tags apply.
    tags_given: bool,
}

impl Conditions {
    pub fn none() -> Self {
        Conditions::default()
    }

    pub fn with(mut self, key: &str, values: Vec<String>) -> Self {
        self.keys.push((key.to_owned(), values));
        self
    }

    /// A single-valued key, when the request has a value for it.
    pub fn with_some(self, key: &str, value: Option<String>) -> Self {
        match value {
            Some(v) => self.with(key, vec![v]),
            None => self,
        }
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
        self.tags_given = !tags.is_empty();
        self
    }

    /// `kms:EncryptionContext:<key>` for each pair and `kms:EncryptionContextKeys`, which
    /// condition keys see; and grant constraints see the context too.
    pub fn encryption_context(mut self, context: &EncryptionContext) -> Self {
        self = self.context_keys(context.entries());
        self.encryption_context = Some(context.entries().clone());
        self
    }

    /// The condition keys of encryption context pairs, without binding grant constraints
    /// (CreateGrant's constraints, RetireGrant's grant).
    pub fn context_keys(mut self, pairs: &BTreeMap<String, String>) -> Self {
        for (k, v) in pairs {
            self.keys
                .push((format!("kms:EncryptionContext:{k}"), vec![v.clone()]));
        }
        if !pairs.is_empty() {
            self.keys.push((
                "kms:EncryptionContextKeys".into(),
                pairs.keys().cloned().collect(),
            ));
        }
        self
    }

    /// The properties of a key (kms:KeySpec, kms:KeyUsage, kms:KeyOrigin, kms:MultiRegion,
    /// kms:MultiRegionKeyType, and the old CustomerMasterKey* names): of the key a request
    /// uses, or of the one CreateKey or ReplicateKey makes.
    pub fn key_properties(
        mut self,
        spec: KeySpec,
        usage: KeyUsage,
        origin: Origin,
        multi_region: Option<&'static str>,
    ) -> Self {
        for (k, v) in key_property_keys(spec, usage, origin, multi_region) {
            self.keys.push((k.to_owned(), vec![v.to_owned()]));
        }
        self
    }

    /// kms:BypassPolicyLockoutSafetyCheck, present only when the request sends it.
    pub fn bypass_lockout(self, given: Option<bool>) -> Self {
        self.with_some(
            "kms:BypassPolicyLockoutSafetyCheck",
            given.map(|b| b.to_string()),
        )
    }

    /// A grant's constraints as CreateGrant and RetireGrant conditions see them:
    /// kms:GrantConstraintType and the constrained encryption context pairs (which bind no
    /// grant constraint of this request).
    pub fn grant_constraints(mut self, constraints: Option<&GrantConstraints>) -> Self {
        let Some(c) = constraints else {
            return self;
        };
        let kinds = c.types();
        if !kinds.is_empty() {
            self = self.with("kms:GrantConstraintType", kinds);
        }
        match c.context_pairs() {
            Some(pairs) => self.context_keys(pairs),
            None => self,
        }
    }

    /// CreateGrant's grant, which a grantee's own CreateGrant grant must cover.
    pub fn new_grant(mut self, terms: GrantTerms) -> Self {
        self.new_grant = Some(terms);
        self
    }
}

/// The condition keys of a key's properties; kms:MultiRegionKeyType only for multi-Region
/// keys (`PRIMARY` or `REPLICA`).
fn key_property_keys(
    spec: KeySpec,
    usage: KeyUsage,
    origin: Origin,
    multi_region: Option<&'static str>,
) -> impl Iterator<Item = (&'static str, &'static str)> {
    [
        ("kms:KeySpec", spec.as_str()),
        ("kms:CustomerMasterKeySpec", spec.as_str()),
        ("kms:KeyUsage", usage.as_str()),
        ("kms:CustomerMasterKeyUsage", usage.as_str()),
        ("kms:KeyOrigin", origin.as_str()),
        (
            "kms:MultiRegion",
            if multi_region.is_some() {
                "true"
            } else {
                "false"
            },
        ),
    ]
    .into_iter()
    .chain(multi_region.map(|kind| ("kms:MultiRegionKeyType", kind)))
}

/// Where and when a request is made: what the global condition keys about the request say.
#[derive(Clone, Debug)]
pub struct Environment {
    /// `aws:RequestedRegion`.
    pub region: Region,
    pub now: Millis,
    /// `aws:SourceIp`.
    pub source_ip: IpAddr,
    /// `aws:SecureTransport`: whether the request came over TLS.
    pub secure_transport: bool,
}

fn iso8601(millis: Millis) -> String {
    time::OffsetDateTime::from_unix_timestamp(millis.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(time::macros::format_description!(
                "[year]-[month]-[day]T[hour]:[minute]:[second]Z"
            ))
            .ok()
        })
        .unwrap_or_default()
}

/// Whether any policy deciding the request has a condition.
fn conditions_asked(principal: &Principal, resource_policy: Option<&PolicyDocument>) -> bool {
    resource_policy.is_some_and(PolicyDocument::has_conditions)
        || principal
            .identity_policies()
            .iter()
            .any(PolicyDocument::has_conditions)
}

/// What the caller's identity policies decide for `action` on `resource`, an action no key
/// policy governs (another service's: cloudtrail:LookupEvents, iam:SimulatePrincipalPolicy).
/// An account's root may do anything in its account.
pub fn identity_decision(
    principal: &Principal,
    env: &Environment,
    action: &str,
    resource: &str,
) -> Decision {
    let ctx = request_context(principal, env, None, action, resource, &Conditions::none());
    decide(
        Resource::IdentityOnly,
        &principal.caller(),
        principal.identity_policies(),
        &ctx,
    )
}

/// The request context every request has (KMS, STS and the CloudTrail API alike), for
/// `action` (`kms:Decrypt`, `sts:AssumeRole`) on `resource`: who asks (aws:Principal*, aws:userid,
/// aws:username, kms:CallerAccount), from where and when (aws:SourceIp,
/// aws:SecureTransport, aws:RequestedRegion, aws:CurrentTime, aws:EpochTime), and the
/// operation's own keys.
/// `resource_policy` is the key's or role's policy when one takes part: where neither it
/// nor the caller's identity policies have a condition, no key can change the decision and
/// only the action and resource are filled in.
pub fn request_context(
    principal: &Principal,
    env: &Environment,
    resource_policy: Option<&PolicyDocument>,
    action: &str,
    resource: &str,
    extra: &Conditions,
) -> RequestContext {
    let mut ctx = RequestContext::new(action, resource);
    if !conditions_asked(principal, resource_policy) {
        return ctx;
    }
    let account = principal.account().to_string();
    let is_root = principal.caller().is_account_root();
    let (kind, principal_arn) = match principal.role_arn() {
        Some(role) => ("AssumedRole", role.to_owned()),
        None if is_root => ("Account", principal.arn().to_owned()),
        None => ("User", principal.arn().to_owned()),
    };
    ctx.set("kms:CallerAccount", vec![account.clone()])
        .set("aws:PrincipalArn", vec![principal_arn])
        .set("aws:PrincipalAccount", vec![account.clone()])
        .set("aws:PrincipalType", vec![kind.into()])
        .set(
            "aws:userid",
            vec![if is_root {
                account
            } else {
                principal.user_id().to_owned()
            }],
        )
        .set("aws:PrincipalIsAWSService", vec!["false".into()])
        .set("aws:ViaAWSService", vec!["false".into()])
        .set("aws:RequestedRegion", vec![env.region.to_string()])
        .set(
            "aws:SecureTransport",
            vec![env.secure_transport.to_string()],
        )
        .set("aws:CurrentTime", vec![iso8601(env.now)])
        .set("aws:EpochTime", vec![env.now.div_euclid(1000).to_string()])
        .set("aws:SourceIp", vec![env.source_ip.to_string()]);
    if let Some(issued) = principal.session_issued() {
        // Present for temporary credentials: "revoke older sessions" Denies compare it.
        ctx.set("aws:TokenIssueTime", vec![iso8601(issued)]);
    }
    if kind == "User" {
        // aws:username: "always included in the request context for IAM users" only.
        if let Some(name) = principal.arn().rsplit('/').next() {
            ctx.set("aws:username", vec![name.to_owned()]);
        }
    }
    for (k, v) in &extra.keys {
        ctx.add(k, v.clone());
    }
    ctx
}

/// The request context of an action on `key`: the common keys, the key's own (kms:KeySpec,
/// kms:KeyUsage, kms:KeyOrigin, kms:MultiRegion, kms:MultiRegionKeyType and their old
/// names), and, when a policy asks for them, its tags and aliases.
pub async fn key_request_context(
    store: &dyn Store,
    limits: &crate::quotas::ResourceQuotas,
    (principal, env): (&Principal, &Environment),
    key: &KeyMetadata,
    policy: &PolicyDocument,
    action: &str,
    extra: &Conditions,
) -> Result<RequestContext, ApiError> {
    let multi_region = match (key.is_multi_region(), key.is_primary()) {
        (false, _) => None,
        (true, true) => Some("PRIMARY"),
        (true, false) => Some("REPLICA"),
    };
    let mut ctx = request_context(
        principal,
        env,
        Some(policy),
        &format!("kms:{action}"),
        &key.arn.to_string(),
        extra,
    );
    if conditions_asked(principal, Some(policy)) {
        for (k, v) in key_property_keys(key.key_spec, key.key_usage, key.origin, multi_region) {
            ctx.set(k, vec![v.to_owned()]);
        }
    }
    let asks = |prefix: &str| {
        policy.uses_condition_key(prefix)
            || principal
                .identity_policies()
                .iter()
                .any(|p| p.uses_condition_key(prefix))
    };
    if asks("aws:resourcetag/") {
        let tags = store
            .list_tags(
                key.region(),
                &key.id(),
                Page {
                    after: None,
                    limit: limits.tags_per_key,
                },
            )
            .await
            .map_err(store_failure)?;
        for tag in tags {
            ctx.add(&format!("aws:ResourceTag/{}", tag.key), vec![tag.value]);
        }
    }
    if asks("kms:resourcealiases") {
        let aliases = store
            .list_aliases(
                key.region(),
                key.account(),
                Some(&key.id()),
                Page {
                    after: None,
                    limit: limits.aliases_per_key,
                },
            )
            .await
            .map_err(store_failure)?;
        ctx.set(
            "kms:ResourceAliases",
            aliases.iter().map(|a| a.name.to_string()).collect(),
        );
    }
    Ok(ctx)
}

/// A key's stored policy; one that no longer parses is an internal error, never an allow.
pub fn stored_policy(key: &KeyMetadata) -> Result<PolicyDocument, ApiError> {
    PolicyDocument::parse(&key.policy, PolicyKind::Key).map_err(|e| {
        tracing::error!(key = %key.arn, error = %e, "stored key policy is malformed");
        ApiError::from(KmsError::internal())
    })
}

/// Every grant of a key: as many as the configured quota lets a key have.
pub async fn grants_of(
    store: &dyn Store,
    limits: &crate::quotas::ResourceQuotas,
    key: &KeyMetadata,
) -> Result<Vec<GrantRecord>, ApiError> {
    store
        .grants_of_key(
            key.region(),
            &key.id(),
            Page {
                after: None,
                limit: limits.grants_per_key,
            },
        )
        .await
        .map_err(store_failure)
}

/// Whether `grant` lets `principal` do `action` with this request. A grant's CreateGrant
/// allows only grants narrower than itself.
pub fn grant_allows(
    grant: &GrantRecord,
    principal: &Principal,
    action: &str,
    extra: &Conditions,
) -> bool {
    let is_grantee = grant.grantee_principal == principal.arn()
        || Some(grant.grantee_principal.as_str()) == principal.role_arn();
    if !is_grantee {
        return false;
    }
    let Ok(terms) = serde_json::from_str::<GrantTerms>(&grant.document) else {
        return false;
    };
    let request = GrantRequest {
        encryption_context: extra.encryption_context.as_ref(),
        source_arn: None,
    };
    terms.allows(action, &request)
        && (action != "CreateGrant"
            || extra
                .new_grant
                .as_ref()
                .is_some_and(|new| terms.may_create(new)))
}

/// A key the caller was allowed to use for one permission of the running operation. Only
/// [`authorize_key`] makes one.
#[derive(Debug)]
pub struct AuthorizedKey {
    key: KeyMetadata,
    on: On,
}

impl std::ops::Deref for AuthorizedKey {
    type Target = KeyMetadata;
    fn deref(&self) -> &KeyMetadata {
        &self.key
    }
}

impl AuthorizedKey {
    /// The resource the key was authorized as.
    pub fn on(&self) -> On {
        self.on
    }

    /// The same key as stored after a change made through it.
    pub(super) fn changed(self, key: KeyMetadata) -> Result<AuthorizedKey, ApiError> {
        if key.arn != self.key.arn {
            tracing::error!(from = %self.key.arn, to = %key.arn, "an authorized key changed identity");
            return Err(KmsError::internal().into());
        }
        Ok(AuthorizedKey { key, on: self.on })
    }

    pub fn into_metadata(self) -> KeyMetadata {
        self.key
    }
}

/// How the request named a resource, for the AccessDenied message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Named {
    /// By its ARN, id or alias: the message shows its ARN.
    ByRequest,
    /// Only through a ciphertext (Decrypt without KeyId).
    ByCiphertext,
}

/// AWS's AccessDenied for a resource it will not describe: another account's, one that
/// does not exist there, or one its owner's policies keep from the caller.
pub fn hidden_resource(call: &Call<'_>, action: &str, named: Named) -> ApiError {
    let on = match named {
        Named::ByRequest => "this resource",
        Named::ByCiphertext => "the resource associated with this ciphertext",
    };
    KmsError::access_denied_hidden(call.request.principal().arn(), action, on).into()
}

impl Named {
    /// How AWS's messages name the resource: `resource: <arn>`, or the ciphertext's.
    fn resource(self, arn: &str) -> String {
        match self {
            Named::ByRequest => format!("resource: {arn}"),
            Named::ByCiphertext => "the resource associated with this ciphertext".to_owned(),
        }
    }
}

/// AccessDenied for `action` on `resource` (as [`Named::resource`] writes it).
fn denied(call: &Call<'_>, action: &str, resource: &str, decision: Decision) -> ApiError {
    KmsError::access_denied(
        call.request.principal().arn(),
        action,
        resource,
        decision.reason(&format!("kms:{action}")),
    )
    .into()
}

/// The permissions of the running operation on `on` that this request needs.
fn needed<'a>(
    call: &'a Call<'_>,
    on: On,
    extra: &'a Conditions,
) -> impl Iterator<Item = &'static Permission> + 'a {
    call.operation.permissions.iter().filter(move |p| {
        p.on == on
            && match p.when {
                When::Always | When::Otherwise => true,
                When::TagsGiven => extra.tags_given,
            }
    })
}

/// The one permission the running operation needs on key resource `on`; a handler asking
/// for one the table does not declare is a bug, and refused.
fn key_permission(call: &Call<'_>, on: On) -> Result<&'static Permission, ApiError> {
    match call.operation.permission(on) {
        Some(p) if on.policy() == Policy::Key => Ok(p),
        _ => {
            tracing::error!(
                operation = call.operation.name,
                ?on,
                "no key permission declared"
            );
            Err(KmsError::internal().into())
        }
    }
}

/// May the caller use `key` as resource `on` of the running operation? The key policy and
/// the caller's identity policies decide; where they do not allow it (and deny nothing), a
/// grant may. Cross-account use is refused where the table says so.
pub async fn authorize_key(
    call: &Call<'_>,
    key: KeyMetadata,
    on: On,
    named: Named,
    extra: &Conditions,
) -> Result<AuthorizedKey, ApiError> {
    let permission = key_permission(call, on)?;
    let action = permission.action;
    let other_account = key.account() != call.request.principal().account();
    if other_account && !call.operation.cross_account {
        return Err(hidden_resource(call, action, named));
    }
    let decision = key_decision(call, &key, action, extra, on, true).await?;
    if decision != Decision::Allowed {
        return Err(if other_account {
            hidden_resource(call, action, named)
        } else {
            denied(
                call,
                action,
                &named.resource(&key.arn.to_string()),
                decision,
            )
        });
    }
    call.checked(on);
    Ok(AuthorizedKey { key, on })
}

/// The decision for `action` on `key`, with its grants when `consult_grants`. `on` picks
/// the Region whose request it is: a replica's permission is asked in the replica's Region.
async fn key_decision(
    call: &Call<'_>,
    key: &KeyMetadata,
    action: &str,
    extra: &Conditions,
    on: On,
    consult_grants: bool,
) -> Result<Decision, ApiError> {
    let policy = stored_policy(key)?;
    let mut env = call.environment();
    if on == On::ReplicaKey {
        env.region = key.region().clone();
    }
    let principal = call.request.principal();
    let limits = &call.services.quotas.resources;
    let ctx = key_request_context(
        call.services.store.as_ref(),
        limits,
        (principal, &env),
        key,
        &policy,
        action,
        extra,
    )
    .await?;
    let decision = decide(
        Resource::WithPolicy {
            policy: &policy,
            account: key.account().as_str(),
        },
        &principal.caller(),
        principal.identity_policies(),
        &ctx,
    );
    if let (Decision::NotAllowed(_), true) = (decision, consult_grants) {
        // A grant is the key's side of a cross-account request: the caller's own account
        // must allow it too, as for a key policy that names the caller.
        let own_side = key.account() == principal.account()
            || principal.caller().is_account_root()
            || decide(
                Resource::IdentityOnly,
                &principal.caller(),
                principal.identity_policies(),
                &ctx,
            ) == Decision::Allowed;
        if own_side {
            let grants = grants_of(call.services.store.as_ref(), limits, key).await?;
            if grants
                .iter()
                .any(|g| grant_allows(g, principal, action, extra))
            {
                return Ok(Decision::Allowed);
            }
        }
    }
    Ok(decision)
}

/// RetireGrant: the grant's retiring principal, or its grantee when the grant allows
/// RetireGrant, may retire it (`named_by_grant`), unless a policy explicitly denies
/// kms:RetireGrant; anyone else needs the key policy (and IAM) to allow it. Other grants of
/// the key never count: a grant lets its grantee retire only itself.
pub async fn authorize_retire(
    call: &Call<'_>,
    key: KeyMetadata,
    named_by_grant: bool,
    extra: &Conditions,
) -> Result<(), ApiError> {
    let action = key_permission(call, On::Key)?.action;
    let decision = key_decision(call, &key, action, extra, On::Key, false).await?;
    let allowed = match decision {
        Decision::Allowed => true,
        Decision::NotAllowed(_) => named_by_grant,
        Decision::Denied(_) => false,
    };
    if !allowed {
        return Err(if key.account() != call.request.principal().account() {
            hidden_resource(call, action, Named::ByRequest)
        } else {
            denied(
                call,
                action,
                &Named::ByRequest.resource(&key.arn.to_string()),
                decision,
            )
        });
    }
    call.checked(On::Key);
    Ok(())
}

/// Records that resource `on` does not exist, so its permission protects nothing (an alias
/// whose key is gone).
pub fn no_resource(call: &Call<'_>, on: On) {
    call.checked(on);
}

/// May the caller do the running operation's actions on `on`, a resource no key policy
/// governs (`*` of its account, an alias, the replica Region)? Its identity policies decide;
/// an account's root may do anything in its account.
pub fn authorize_iam(
    call: &Call<'_>,
    on: On,
    resource: &str,
    region: Option<&Region>,
    extra: &Conditions,
) -> Result<(), ApiError> {
    let principal = call.request.principal();
    let mut env = call.environment();
    if let Some(r) = region {
        env.region = r.clone();
    }
    let mut any = false;
    for permission in needed(call, on, extra) {
        any = true;
        let ctx = request_context(
            principal,
            &env,
            None,
            &format!("kms:{}", permission.action),
            resource,
            extra,
        );
        let decision = decide(
            Resource::IdentityOnly,
            &principal.caller(),
            principal.identity_policies(),
            &ctx,
        );
        if decision != Decision::Allowed {
            return Err(denied(
                call,
                permission.action,
                &Named::ByRequest.resource(resource),
                decision,
            ));
        }
    }
    if !any {
        tracing::error!(
            operation = call.operation.name,
            ?on,
            "no IAM permission declared"
        );
        return Err(KmsError::internal().into());
    }
    call.checked(on);
    Ok(())
}

/// The policy lockout safety check: a new key policy must still let the caller change the
/// key policy afterwards.
pub fn check_lockout(
    call: &Call<'_>,
    new_policy: &PolicyDocument,
    key_arn: &str,
    key_account: &str,
) -> Result<(), ApiError> {
    let principal = call.request.principal();
    let ctx = request_context(
        principal,
        &call.environment(),
        Some(new_policy),
        "kms:PutKeyPolicy",
        key_arn,
        &Conditions::none(),
    );
    let decision = decide(
        Resource::WithPolicy {
            policy: new_policy,
            account: key_account,
        },
        &principal.caller(),
        principal.identity_policies(),
        &ctx,
    );
    if decision == Decision::Allowed {
        Ok(())
    } else {
        Err(KmsError::policy_lockout().into())
    }
}
