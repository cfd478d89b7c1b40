//! Evaluation: whether a statement applies to a request, what a document says, and the
//! decision over a resource's policy (a key policy, a role's trust policy) and the caller's
//! identity policies. [`explain`] walks the same functions and keeps every step.

use std::fmt;

use super::condition::{Condition, Truth};
use super::{glob, Caller, Effect, PolicyDocument, Principals, RequestContext, Statement};

/// How a key policy allowed a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum KeyPolicyGrant {
    /// It names the caller (or `*`): no IAM policy is needed in the key's account.
    Caller,
    /// It names the caller's account: the account's IAM policies decide.
    CallerAccount,
}

/// The result of evaluating one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Evaluation {
    ExplicitDeny,
    Allow(KeyPolicyGrant),
    NotApplicable,
}

/// Why a statement did or did not apply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatementOutcome {
    Applies,
    PrincipalNotMatched,
    ActionNotMatched,
    ResourceNotMatched,
    /// The condition, as written, that did not hold (for a Deny: that was false).
    ConditionNotMet(String),
}

impl fmt::Display for StatementOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatementOutcome::Applies => f.write_str("applies"),
            StatementOutcome::PrincipalNotMatched => f.write_str("principal does not match"),
            StatementOutcome::ActionNotMatched => f.write_str("action does not match"),
            StatementOutcome::ResourceNotMatched => f.write_str("resource does not match"),
            StatementOutcome::ConditionNotMet(c) => write!(f, "condition not met: {c}"),
        }
    }
}

/// How (if at all) `principals` covers the caller.
fn principal_match(principals: &Principals, caller: &Caller<'_>) -> Option<KeyPolicyGrant> {
    let Principals::Listed { aws, .. } = principals else {
        return Some(KeyPolicyGrant::Caller);
    };
    let mut best = None;
    for p in aws {
        let account_of = |p: &str| -> Option<String> {
            if p.len() == 12 && p.bytes().all(|b| b.is_ascii_digit()) {
                return Some(p.to_owned());
            }
            p.strip_prefix("arn:aws:iam::")
                .and_then(|r| r.strip_suffix(":root"))
                .map(str::to_owned)
        };
        if let Some(account) = account_of(p) {
            if account == caller.account {
                if caller.is_account_root() {
                    return Some(KeyPolicyGrant::Caller);
                }
                best = Some(KeyPolicyGrant::CallerAccount);
            }
        } else if p == caller.arn || Some(p.as_str()) == caller.role_arn {
            return Some(KeyPolicyGrant::Caller);
        }
    }
    best
}

/// Whether a NotPrincipal list names any of the caller's identities, and whether it names
/// all of them (the account, and the user, or the role and its session).
fn not_principal_listing(principals: &Principals, caller: &Caller<'_>) -> (bool, bool) {
    let Principals::Listed { aws, .. } = principals else {
        return (true, true);
    };
    let names_account = aws.iter().any(|p| {
        p == caller.account
            || p.strip_prefix("arn:aws:iam::")
                .and_then(|r| r.strip_suffix(":root"))
                == Some(caller.account)
    });
    let names = |arn: &str| aws.iter().any(|p| p == arn);
    if caller.is_account_root() {
        return (names_account, names_account);
    }
    let mut identities = vec![names(caller.arn)];
    if let Some(role) = caller.role_arn {
        identities.push(names(role));
    }
    let any = names_account || identities.iter().any(|&n| n);
    let all = names_account && identities.iter().all(|&n| n);
    (any, all)
}

fn describe(c: &Condition, request: Option<&[String]>) -> String {
    let shown = match request.filter(|v| !v.is_empty()) {
        Some(v) => format!("request has {v:?}"),
        None => "request has no value".to_owned(),
    };
    format!("{} {{{}: {:?}}} ({shown})", c.written, c.key, c.values)
}

/// Whether `s` applies to the request, and how its principal covered the caller.
/// `caller` is None for an identity policy, whose statements name no principal.
fn match_statement(
    s: &Statement,
    caller: Option<&Caller<'_>>,
    ctx: &RequestContext,
) -> Result<KeyPolicyGrant, StatementOutcome> {
    let grant = match (caller, &s.principal, &s.not_principal) {
        (Some(c), Some(p), _) => {
            principal_match(p, c).ok_or(StatementOutcome::PrincipalNotMatched)?
        }
        // NotPrincipal: AWS checks each identity of the caller (its account, its role, its
        // session or user) and documents that a Deny spares a principal only when the list
        // names all of them. An Allow is kept from the caller when any of them is listed.
        (Some(c), None, Some(np)) => {
            let (listed, all) = not_principal_listing(np, c);
            let excluded = match s.effect {
                Effect::Deny => all,
                Effect::Allow => listed,
            };
            if excluded {
                return Err(StatementOutcome::PrincipalNotMatched);
            }
            KeyPolicyGrant::Caller
        }
        _ => KeyPolicyGrant::Caller,
    };
    let action_ok = match (&s.action, &s.not_action) {
        (Some(a), _) => a.iter().any(|p| glob(p, &ctx.action, true)),
        (None, Some(na)) => !na.iter().any(|p| glob(p, &ctx.action, true)),
        (None, None) => false,
    };
    if !action_ok {
        return Err(StatementOutcome::ActionNotMatched);
    }
    let resource_ok = match (&s.resource, &s.not_resource) {
        (Some(r), _) => r.iter().any(|p| glob(p, &ctx.resource, false)),
        (None, Some(nr)) => !nr.iter().any(|p| glob(p, &ctx.resource, false)),
        // Key policies may leave Resource out: it is the key itself.
        (None, None) => true,
    };
    if !resource_ok {
        return Err(StatementOutcome::ResourceNotMatched);
    }
    for c in &s.conditions {
        let request = ctx.keys.get(&c.key).map(Vec::as_slice);
        let holds = match (c.holds(request, s.effect == Effect::Deny), s.effect) {
            (Truth::True, _) => true,
            (Truth::False, _) => false,
            // A value that cannot be compared never lets an Allow apply, and never lets a
            // Deny off.
            (Truth::Invalid, Effect::Allow) => false,
            (Truth::Invalid, Effect::Deny) => true,
        };
        if !holds {
            return Err(StatementOutcome::ConditionNotMet(describe(c, request)));
        }
    }
    Ok(grant)
}

impl PolicyDocument {
    /// Evaluates a resource policy (`caller` given) or an identity policy (`caller` None:
    /// the document belongs to the caller).
    pub(super) fn evaluate(&self, caller: Option<&Caller<'_>>, ctx: &RequestContext) -> Evaluation {
        let mut allow: Option<KeyPolicyGrant> = None;
        for s in &self.statements {
            let Ok(grant) = match_statement(s, caller, ctx) else {
                continue;
            };
            match s.effect {
                Effect::Deny => return Evaluation::ExplicitDeny,
                Effect::Allow => {
                    allow = match allow {
                        Some(KeyPolicyGrant::Caller) => Some(KeyPolicyGrant::Caller),
                        _ => Some(grant),
                    }
                }
            }
        }
        allow.map_or(Evaluation::NotApplicable, Evaluation::Allow)
    }

    fn report(
        &self,
        name: String,
        caller: Option<&Caller<'_>>,
        ctx: &RequestContext,
    ) -> PolicyReport {
        let statements = self
            .statements
            .iter()
            .enumerate()
            .map(|(index, s)| StatementReport {
                index,
                sid: s.sid.clone(),
                effect: match s.effect {
                    Effect::Allow => "Allow",
                    Effect::Deny => "Deny",
                },
                outcome: match match_statement(s, caller, ctx) {
                    Ok(_) => StatementOutcome::Applies,
                    Err(why) => why,
                },
                conditions: s
                    .conditions
                    .iter()
                    .map(|c| describe(c, ctx.keys.get(&c.key).map(Vec::as_slice)))
                    .collect(),
            })
            .collect();
        PolicyReport { name, statements }
    }
}

fn evaluate_identity(policies: &[PolicyDocument], ctx: &RequestContext) -> Evaluation {
    let mut result = Evaluation::NotApplicable;
    for p in policies {
        match p.evaluate(None, ctx) {
            Evaluation::ExplicitDeny => return Evaluation::ExplicitDeny,
            Evaluation::Allow(g) => result = Evaluation::Allow(g),
            Evaluation::NotApplicable => {}
        }
    }
    result
}

/// What governs access to the resource of a request.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    /// A resource with a policy of its own (a key, a role), owned by `account`: the policy
    /// must allow the caller, and where it names only the caller's account, or the caller
    /// is in another account, the caller's identity policies must allow it too.
    WithPolicy {
        policy: &'a PolicyDocument,
        account: &'a str,
    },
    /// A resource of the caller's own account that has no policy (CreateKey, an alias, a
    /// custom key store, the audit trail): the caller's identity policies decide, and an
    /// account's root may do anything in it.
    IdentityOnly,
}

/// Which side was missing an Allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missing {
    ResourcePolicy,
    IdentityPolicy,
}

/// Which side denied explicitly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeniedBy {
    ResourcePolicy,
    IdentityPolicy,
}

/// What the policies decide about one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// No policy allowed it (and none denied it): a grant still may.
    NotAllowed(Missing),
    /// A Deny statement applied: nothing, not even a grant, can allow the request.
    Denied(DeniedBy),
}

impl Decision {
    /// AWS's reason for an AccessDeniedException, after "User: X is not authorized to
    /// perform: A on resource: R".
    pub fn reason(&self, action: &str) -> String {
        match self {
            Decision::Allowed => String::new(),
            Decision::NotAllowed(Missing::ResourcePolicy) => {
                format!("because no resource-based policy allows the {action} action")
            }
            Decision::NotAllowed(Missing::IdentityPolicy) => {
                format!("because no identity-based policy allows the {action} action")
            }
            Decision::Denied(DeniedBy::ResourcePolicy) => {
                "with an explicit deny in a resource-based policy".to_owned()
            }
            Decision::Denied(DeniedBy::IdentityPolicy) => {
                "with an explicit deny in an identity-based policy".to_owned()
            }
        }
    }
}

/// The one decision for every service: KMS key policies, STS trust policies and identity
/// policies alone (account-level actions, aliases, the CloudTrail API).
pub fn decide(
    resource: Resource<'_>,
    caller: &Caller<'_>,
    identity_policies: &[PolicyDocument],
    ctx: &RequestContext,
) -> Decision {
    let identity = evaluate_identity(identity_policies, ctx);
    let identity_allows = caller.is_account_root() || matches!(identity, Evaluation::Allow(_));
    match resource {
        Resource::IdentityOnly => match identity {
            _ if caller.is_account_root() => Decision::Allowed,
            Evaluation::ExplicitDeny => Decision::Denied(DeniedBy::IdentityPolicy),
            Evaluation::Allow(_) => Decision::Allowed,
            Evaluation::NotApplicable => Decision::NotAllowed(Missing::IdentityPolicy),
        },
        Resource::WithPolicy { policy, account } => {
            let own = policy.evaluate(Some(caller), ctx);
            if own == Evaluation::ExplicitDeny {
                return Decision::Denied(DeniedBy::ResourcePolicy);
            }
            if identity == Evaluation::ExplicitDeny {
                return Decision::Denied(DeniedBy::IdentityPolicy);
            }
            match own {
                // Named outright: enough within the resource's account; across accounts
                // the caller's own account must agree.
                Evaluation::Allow(KeyPolicyGrant::Caller)
                    if caller.account == account || identity_allows =>
                {
                    Decision::Allowed
                }
                Evaluation::Allow(KeyPolicyGrant::CallerAccount) if identity_allows => {
                    Decision::Allowed
                }
                Evaluation::Allow(_) => Decision::NotAllowed(Missing::IdentityPolicy),
                _ => Decision::NotAllowed(Missing::ResourcePolicy),
            }
        }
    }
}

/// One statement's part in a decision.
#[derive(Clone, Debug)]
pub struct StatementReport {
    pub index: usize,
    pub sid: Option<String>,
    pub effect: &'static str,
    pub outcome: StatementOutcome,
    /// Each condition of the statement with the request's values for its key.
    pub conditions: Vec<String>,
}

/// Every statement of one document and whether it applied.
#[derive(Clone, Debug)]
pub struct PolicyReport {
    pub name: String,
    pub statements: Vec<StatementReport>,
}

/// A decision with every statement that was looked at.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub decision: Decision,
    pub policies: Vec<PolicyReport>,
}

/// [`decide`], keeping the outcome of every statement of every document.
pub fn explain(
    resource: Resource<'_>,
    caller: &Caller<'_>,
    identity_policies: &[PolicyDocument],
    ctx: &RequestContext,
) -> Explanation {
    let mut policies = Vec::new();
    if let Resource::WithPolicy { policy, .. } = resource {
        policies.push(policy.report("resource policy".into(), Some(caller), ctx));
    }
    for (i, p) in identity_policies.iter().enumerate() {
        policies.push(p.report(format!("identity policy {}", i + 1), None, ctx));
    }
    Explanation {
        decision: decide(resource, caller, identity_policies, ctx),
        policies,
    }
}
