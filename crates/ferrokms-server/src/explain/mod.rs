//! `ferrokms policy explain`: the decision the server would make for a caller, an action, a
//! key and a request's conditions, with every statement and grant that applied or did not
//! and the condition that failed. It builds the request context and decides with the same
//! functions the server authorizes with; only the caller's request is imagined.
//! `operation` serves the same report over the API (ExplainDecision), for the console.

pub mod operation;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

use ferrokms_core::context::EncryptionContext;
use ferrokms_core::ids::Region;
use ferrokms_core::key::{KeyMetadata, Millis};
use ferrokms_core::policy::{explain, Decision, Explanation, Resource, StatementOutcome};
use ferrokms_store::Store;

use crate::api::authorize::{
    grant_allows, grants_of, key_request_context, request_context, stored_policy, Conditions,
    Environment,
};
use crate::api::operations::{Operation, Policy};
use crate::error::ApiError;
use crate::quotas::ResourceQuotas;
use crate::ServerError;

/// What to explain: a request as a caller would make it.
#[derive(Debug, Clone)]
pub struct Question {
    /// The caller's ARN: `arn:aws:iam::<account>:root`, `...:user/<name>`, or
    /// `arn:aws:sts::<account>:assumed-role/<role>/<session>`.
    pub caller: String,
    /// `kms:Decrypt`, say (the `kms:` prefix may be left out).
    pub action: String,
    /// The key, by id, ARN, alias name or alias ARN; none for actions on `*`.
    pub key: Option<String>,
    pub region: Region,
    pub encryption_context: BTreeMap<String, String>,
    /// Further condition keys of the request (`kms:SigningAlgorithm=ECDSA_SHA_256`).
    pub conditions: Vec<(String, String)>,
    pub source_ip: IpAddr,
    pub secure_transport: bool,
    pub now: Millis,
}

/// The answer: the decision and the report behind it.
#[derive(Debug)]
pub struct Answer {
    pub allowed: bool,
    pub text: String,
}

fn fail(msg: impl Into<String>) -> ServerError {
    ServerError::Config(msg.into())
}

fn write_explanation(out: &mut String, explanation: &Explanation) {
    for policy in &explanation.policies {
        let _ = writeln!(out, "{}:", policy.name);
        if policy.statements.is_empty() {
            let _ = writeln!(out, "  (no statements)");
        }
        for s in &policy.statements {
            let sid = s
                .sid
                .as_deref()
                .map(|sid| format!(" \"{sid}\""))
                .unwrap_or_default();
            let mark = if s.outcome == StatementOutcome::Applies {
                "*"
            } else {
                " "
            };
            let _ = writeln!(
                out,
                " {mark} statement {}{sid} ({}): {}",
                s.index, s.effect, s.outcome
            );
            if s.outcome == StatementOutcome::Applies {
                for c in &s.conditions {
                    let _ = writeln!(out, "      condition holds: {c}");
                }
            }
        }
    }
}

async fn find_key(
    store: &dyn Store,
    region: &Region,
    account: &ferrokms_core::ids::AccountId,
    raw: &str,
) -> Result<(KeyMetadata, Option<String>), ServerError> {
    let named = crate::api::resolve::named_key(store, region, account, raw)
        .await?
        .ok_or_else(|| fail(format!("{raw} names no key (or no such alias)")))?;
    let key = store
        .key(&named.region, &named.id)
        .await?
        .filter(|k| k.account() == &named.account)
        .ok_or_else(|| {
            fail(format!(
                "no key {raw} in {} {}",
                named.account, named.region
            ))
        })?;
    Ok((key, named.alias.map(|a| a.to_string())))
}

/// Decides `question` as the server would, and says why.
pub async fn explain_request(
    store: &dyn Store,
    limits: &ResourceQuotas,
    question: &Question,
) -> Result<Answer, ServerError> {
    let principal = crate::sigv4::principal_named(store, &question.caller)
        .await
        .map_err(fail)?;
    let key = match &question.key {
        Some(raw) => Some(find_key(store, &question.region, principal.account(), raw).await?),
        None => None,
    };
    report(store, limits, question, &principal, key)
        .await
        .map_err(|e| fail(e.to_string()))
}

/// The report for `question` about `key` (found already, with the alias it was named by),
/// as `principal` would be decided; `question.key` is not read.
pub(crate) async fn report(
    store: &dyn Store,
    limits: &ResourceQuotas,
    question: &Question,
    principal: &crate::sigv4::Principal,
    key: Option<(KeyMetadata, Option<String>)>,
) -> Result<Answer, ApiError> {
    let action = question
        .action
        .strip_prefix("kms:")
        .unwrap_or(&question.action)
        .to_owned();
    let spec = Operation::spec_named(&action);
    let mut conditions = Conditions::none();
    if !question.encryption_context.is_empty() {
        conditions = conditions
            .encryption_context(&EncryptionContext::new(question.encryption_context.clone()));
    }
    for (k, v) in &question.conditions {
        conditions = conditions.with(k, vec![v.clone()]);
    }
    let env = Environment {
        region: question.region.clone(),
        now: question.now,
        source_ip: question.source_ip,
        secure_transport: question.secure_transport,
    };
    let caller = principal.caller();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "caller: {} (account {})",
        principal.arn(),
        principal.account()
    );
    let Some((key, alias)) = key else {
        let ctx = request_context(
            principal,
            &env,
            None,
            &format!("kms:{action}"),
            "*",
            &conditions,
        );
        let explanation = explain(
            Resource::IdentityOnly,
            &caller,
            principal.identity_policies(),
            &ctx,
        );
        let _ = writeln!(out, "action: kms:{action} on *");
        if caller.is_account_root() {
            let _ = writeln!(out, "the account's root may do anything in its account");
        }
        write_explanation(&mut out, &explanation);
        return Ok(finish(
            out,
            explanation.decision,
            &format!("kms:{action}"),
            None,
        ));
    };
    if let Some(name) = &alias {
        conditions = conditions.with("kms:RequestAlias", vec![name.clone()]);
    }
    let _ = writeln!(out, "action: kms:{action} on {}", key.arn);
    if key.account() != principal.account() {
        let cross = spec.is_some_and(|s| s.cross_account);
        if !cross {
            let _ = writeln!(
                out,
                "kms:{action} is not an operation another account may perform on a key"
            );
            let _ = writeln!(out, "decision: DENIED (cross-account use is not allowed)");
            return Ok(Answer {
                allowed: false,
                text: out,
            });
        }
    }
    if let Some(spec) = spec {
        if !spec
            .permissions
            .iter()
            .any(|p| p.on.policy() == Policy::Key && p.action == action)
        {
            let _ = writeln!(
                out,
                "note: {} needs no kms:{action} on a key; the table's permissions are {:?}",
                spec.name,
                spec.permissions
                    .iter()
                    .map(|p| p.action)
                    .collect::<Vec<_>>()
            );
        }
    }
    let policy = stored_policy(&key)?;
    let ctx = key_request_context(
        store,
        limits,
        (principal, &env),
        &key,
        &policy,
        &action,
        &conditions,
    )
    .await?;
    let explanation = explain(
        Resource::WithPolicy {
            policy: &policy,
            account: key.account().as_str(),
        },
        &caller,
        principal.identity_policies(),
        &ctx,
    );
    write_explanation(&mut out, &explanation);
    let grants = grants_of(store, limits, &key).await?;
    let mut granted = None;
    let _ = writeln!(out, "grants: {}", grants.len());
    for g in &grants {
        let allows = grant_allows(g, principal, &action, &conditions);
        let _ = writeln!(
            out,
            " {} grant {} to {}: {}",
            if allows { "*" } else { " " },
            g.grant_id,
            g.grantee_principal,
            if allows {
                "allows this request"
            } else {
                "does not allow this request"
            }
        );
        if allows && granted.is_none() {
            granted = Some(g.grant_id.clone());
        }
    }
    Ok(finish(
        out,
        explanation.decision,
        &format!("kms:{action}"),
        granted,
    ))
}

fn finish(mut out: String, decision: Decision, action: &str, grant: Option<String>) -> Answer {
    let allowed = match (decision, &grant) {
        (Decision::Allowed, _) => {
            let _ = writeln!(out, "decision: ALLOWED");
            true
        }
        (Decision::NotAllowed(_), Some(id)) => {
            let _ = writeln!(out, "decision: ALLOWED by grant {id}");
            true
        }
        (d, _) => {
            let _ = writeln!(out, "decision: DENIED ({})", d.reason(action));
            false
        }
    };
    Answer { allowed, text: out }
}
