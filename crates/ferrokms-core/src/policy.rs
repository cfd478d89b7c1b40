//! IAM policy documents — key policies and identity (IAM) policies — and their evaluation as
//! AWS documents it: an explicit Deny wins, and access needs an Allow.

use std::collections::HashMap;
use std::net::IpAddr;

use serde_json::{Map, Value};

use crate::KmsError;

/// Which kind of document is being read: key policies name principals, identity policies
/// must not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PolicyKind {
    Key,
    Identity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Effect {
    Allow,
    Deny,
}

/// The principals a key-policy statement names.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Principals {
    Any,
    Listed {
        aws: Vec<String>,
        service: Vec<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SetQualifier {
    Single,
    ForAllValues,
    ForAnyValue,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Operator {
    StringEquals,
    StringNotEquals,
    StringEqualsIgnoreCase,
    StringNotEqualsIgnoreCase,
    StringLike,
    StringNotLike,
    NumericEquals,
    NumericNotEquals,
    NumericLessThan,
    NumericLessThanEquals,
    NumericGreaterThan,
    NumericGreaterThanEquals,
    DateEquals,
    DateNotEquals,
    DateLessThan,
    DateLessThanEquals,
    DateGreaterThan,
    DateGreaterThanEquals,
    Bool,
    IpAddress,
    NotIpAddress,
    ArnEquals,
    ArnNotEquals,
    ArnLike,
    ArnNotLike,
    Null,
}

impl Operator {
    fn parse(s: &str) -> Option<Self> {
        use Operator::*;
        Some(match s {
            "StringEquals" => StringEquals,
            "StringNotEquals" => StringNotEquals,
            "StringEqualsIgnoreCase" => StringEqualsIgnoreCase,
            "StringNotEqualsIgnoreCase" => StringNotEqualsIgnoreCase,
            "StringLike" => StringLike,
            "StringNotLike" => StringNotLike,
            "NumericEquals" => NumericEquals,
            "NumericNotEquals" => NumericNotEquals,
            "NumericLessThan" => NumericLessThan,
            "NumericLessThanEquals" => NumericLessThanEquals,
            "NumericGreaterThan" => NumericGreaterThan,
            "NumericGreaterThanEquals" => NumericGreaterThanEquals,
            "DateEquals" => DateEquals,
            "DateNotEquals" => DateNotEquals,
            "DateLessThan" => DateLessThan,
            "DateLessThanEquals" => DateLessThanEquals,
            "DateGreaterThan" => DateGreaterThan,
            "DateGreaterThanEquals" => DateGreaterThanEquals,
            "Bool" => Bool,
            "IpAddress" => IpAddress,
            "NotIpAddress" => NotIpAddress,
            "ArnEquals" => ArnEquals,
            "ArnNotEquals" => ArnNotEquals,
            "ArnLike" => ArnLike,
            "ArnNotLike" => ArnNotLike,
            "Null" => Null,
            _ => return None,
        })
    }

    /// Negated operators hold when no request value matches any policy value.
    fn is_negated(self) -> bool {
        use Operator::*;
        matches!(
            self,
            StringNotEquals
                | StringNotEqualsIgnoreCase
                | StringNotLike
                | NumericNotEquals
                | DateNotEquals
                | NotIpAddress
                | ArnNotEquals
                | ArnNotLike
        )
    }

    /// Whether one request value matches one policy value (for negated operators: the
    /// positive form).
    fn matches(self, request: &str, policy: &str) -> bool {
        use Operator::*;
        match self {
            StringEquals | StringNotEquals => request == policy,
            StringEqualsIgnoreCase | StringNotEqualsIgnoreCase => {
                request.to_lowercase() == policy.to_lowercase()
            }
            StringLike | StringNotLike => glob(policy, request, false),
            NumericEquals | NumericNotEquals => compare_numbers(request, policy) == Some(0),
            NumericLessThan => compare_numbers(request, policy) == Some(-1),
            NumericLessThanEquals => matches!(compare_numbers(request, policy), Some(-1 | 0)),
            NumericGreaterThan => compare_numbers(request, policy) == Some(1),
            NumericGreaterThanEquals => matches!(compare_numbers(request, policy), Some(0 | 1)),
            DateEquals | DateNotEquals => compare_dates(request, policy) == Some(0),
            DateLessThan => compare_dates(request, policy) == Some(-1),
            DateLessThanEquals => matches!(compare_dates(request, policy), Some(-1 | 0)),
            DateGreaterThan => compare_dates(request, policy) == Some(1),
            DateGreaterThanEquals => matches!(compare_dates(request, policy), Some(0 | 1)),
            Bool => request.eq_ignore_ascii_case(policy),
            IpAddress | NotIpAddress => ip_in_cidr(request, policy),
            ArnEquals | ArnNotEquals => request == policy,
            ArnLike | ArnNotLike => arn_like(request, policy),
            Null => false,
        }
    }
}

#[derive(Clone, Debug, PartialEq)]
struct Condition {
    operator: Operator,
    qualifier: SetQualifier,
    if_exists: bool,
    /// Condition keys are case-insensitive; kept lowercased.
    key: String,
    values: Vec<String>,
}

#[derive(Clone, Debug, PartialEq)]
struct Statement {
    effect: Effect,
    principal: Option<Principals>,
    not_principal: Option<Principals>,
    action: Option<Vec<String>>,
    not_action: Option<Vec<String>>,
    resource: Option<Vec<String>>,
    not_resource: Option<Vec<String>>,
    conditions: Vec<Condition>,
}

/// A parsed policy document.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyDocument {
    statements: Vec<Statement>,
}

fn malformed(msg: impl Into<String>) -> KmsError {
    KmsError::MalformedPolicyDocument(msg.into())
}

/// A string or a list of strings, as IAM allows for most elements.
fn strings(v: &Value, element: &str) -> Result<Vec<String>, KmsError> {
    let scalar = |v: &Value| -> Result<String, KmsError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(malformed(format!(
                "{element} must be a string or a list of strings"
            ))),
        }
    };
    match v {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn principals(v: &Value) -> Result<Principals, KmsError> {
    match v {
        Value::String(s) if s == "*" => Ok(Principals::Any),
        Value::Object(map) => {
            let mut aws = Vec::new();
            let mut service = Vec::new();
            for (kind, value) in map {
                match kind.as_str() {
                    "AWS" => aws.extend(strings(value, "Principal")?),
                    "Service" => service.extend(strings(value, "Principal")?),
                    "Federated" | "CanonicalUser" => {}
                    _ => {
                        return Err(malformed(
                            "Policy contains a statement with one or more invalid principals.",
                        ))
                    }
                }
            }
            if aws.iter().any(|a| a == "*") {
                return Ok(Principals::Any);
            }
            for a in &aws {
                if !is_valid_principal(a) {
                    return Err(malformed(
                        "Policy contains a statement with one or more invalid principals.",
                    ));
                }
            }
            Ok(Principals::Listed { aws, service })
        }
        _ => Err(malformed(
            "Policy contains a statement with one or more invalid principals.",
        )),
    }
}

/// An AWS principal: a 12-digit account, or an IAM/STS ARN.
fn is_valid_principal(p: &str) -> bool {
    let account_digits = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if account_digits(p) {
        return true;
    }
    let parts: Vec<&str> = p.splitn(6, ':').collect();
    matches!(parts.as_slice(), ["arn", _, "iam" | "sts", "", acct, resource]
        if account_digits(acct) && !resource.is_empty())
}

fn conditions(v: &Value) -> Result<Vec<Condition>, KmsError> {
    let Value::Object(ops) = v else {
        return Err(malformed("Condition must be an object"));
    };
    let mut out = Vec::new();
    for (op_name, keys) in ops {
        let (qualifier, rest) = if let Some(r) = op_name.strip_prefix("ForAllValues:") {
            (SetQualifier::ForAllValues, r)
        } else if let Some(r) = op_name.strip_prefix("ForAnyValue:") {
            (SetQualifier::ForAnyValue, r)
        } else {
            (SetQualifier::Single, op_name.as_str())
        };
        let (if_exists, base) = match rest.strip_suffix("IfExists") {
            Some(b) if b != "Null" => (true, b),
            _ => (false, rest),
        };
        let operator = Operator::parse(base)
            .ok_or_else(|| malformed(format!("Invalid condition operator: {op_name}")))?;
        let Value::Object(keys) = keys else {
            return Err(malformed(format!(
                "Condition {op_name} must map keys to values"
            )));
        };
        for (key, values) in keys {
            out.push(Condition {
                operator,
                qualifier,
                if_exists,
                key: key.to_lowercase(),
                values: strings(values, "Condition")?,
            });
        }
    }
    Ok(out)
}

fn optional_strings(
    map: &Map<String, Value>,
    element: &str,
) -> Result<Option<Vec<String>>, KmsError> {
    map.get(element).map(|v| strings(v, element)).transpose()
}

fn statement(v: &Value, kind: PolicyKind) -> Result<Statement, KmsError> {
    let Value::Object(map) = v else {
        return Err(malformed("Each statement must be an object"));
    };
    let effect = match map.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(malformed("Each statement needs an Effect of Allow or Deny")),
    };
    let principal = map.get("Principal").map(principals).transpose()?;
    let not_principal = map.get("NotPrincipal").map(principals).transpose()?;
    match kind {
        PolicyKind::Key if principal.is_none() && not_principal.is_none() => {
            return Err(malformed(
                "Policy contains a statement with no principal (key policy statements need Principal or NotPrincipal).",
            ))
        }
        PolicyKind::Identity if principal.is_some() || not_principal.is_some() => {
            return Err(malformed("Identity policies must not name a Principal."))
        }
        _ => {}
    }
    let action = optional_strings(map, "Action")?;
    let not_action = optional_strings(map, "NotAction")?;
    if action.is_none() == not_action.is_none() {
        return Err(malformed(
            "Each statement needs exactly one of Action or NotAction",
        ));
    }
    let resource = optional_strings(map, "Resource")?;
    let not_resource = optional_strings(map, "NotResource")?;
    if resource.is_some() && not_resource.is_some() {
        return Err(malformed(
            "A statement may not have both Resource and NotResource",
        ));
    }
    if kind == PolicyKind::Identity && resource.is_none() && not_resource.is_none() {
        return Err(malformed("Each statement needs Resource or NotResource"));
    }
    let conditions = map
        .get("Condition")
        .map(conditions)
        .transpose()?
        .unwrap_or_default();
    Ok(Statement {
        effect,
        principal,
        not_principal,
        action,
        not_action,
        resource,
        not_resource,
        conditions,
    })
}

impl PolicyDocument {
    /// Parses a policy; any problem is a MalformedPolicyDocumentException.
    pub fn parse(text: &str, kind: PolicyKind) -> Result<Self, KmsError> {
        let doc: Value = serde_json::from_str(text)
            .map_err(|_| malformed("The policy is not a valid JSON document."))?;
        let Value::Object(map) = doc else {
            return Err(malformed("The policy must be a JSON object."));
        };
        let statements = match map.get("Statement") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| statement(s, kind))
                .collect::<Result<Vec<_>, _>>()?,
            Some(single @ Value::Object(_)) => vec![statement(single, kind)?],
            _ => return Err(malformed("The policy needs a Statement.")),
        };
        Ok(PolicyDocument { statements })
    }
}

/// `*` and `?` wildcards; `case_insensitive` for action names.
pub fn glob(pattern: &str, text: &str, case_insensitive: bool) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = if case_insensitive {
        (
            pattern.to_lowercase().chars().collect(),
            text.to_lowercase().chars().collect(),
        )
    } else {
        (pattern.chars().collect(), text.chars().collect())
    };
    // Iterative matching with one backtrack point for the last `*`.
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

fn compare_numbers(a: &str, b: &str) -> Option<i8> {
    let (a, b): (f64, f64) = (a.parse().ok()?, b.parse().ok()?);
    a.partial_cmp(&b).map(|o| o as i8)
}

/// Dates are ISO 8601 or epoch seconds.
fn parse_date(s: &str) -> Option<i64> {
    if let Ok(n) = s.parse::<i64>() {
        return Some(n);
    }
    let format = time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(s, &format)
        .ok()
        .map(|t| t.unix_timestamp())
        .or_else(|| {
            // A bare date: midnight UTC.
            let d = time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
                .ok()?;
            Some(d.midnight().assume_utc().unix_timestamp())
        })
}

fn compare_dates(a: &str, b: &str) -> Option<i8> {
    Some(parse_date(a)?.cmp(&parse_date(b)?) as i8)
}

fn ip_in_cidr(ip: &str, cidr: &str) -> bool {
    let (net, bits) = match cidr.split_once('/') {
        Some((n, b)) => (n, b.parse::<u32>().ok()),
        None => (cidr, None),
    };
    match (ip.parse::<IpAddr>(), net.parse::<IpAddr>()) {
        (Ok(IpAddr::V4(a)), Ok(IpAddr::V4(n))) => {
            let bits = bits.unwrap_or(32).min(32);
            let mask = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (Ok(IpAddr::V6(a)), Ok(IpAddr::V6(n))) => {
            let bits = bits.unwrap_or(128).min(128);
            let mask = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// ArnLike compares the six colon-separated parts, each with wildcards.
fn arn_like(arn: &str, pattern: &str) -> bool {
    let a: Vec<&str> = arn.splitn(6, ':').collect();
    let p: Vec<&str> = pattern.splitn(6, ':').collect();
    a.len() == p.len() && a.iter().zip(&p).all(|(x, y)| glob(y, x, false))
}

/// Everything a policy may ask about one request.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub action: String,
    pub resource: String,
    /// Condition keys (lowercased) and their values; multi-valued keys have several.
    pub keys: HashMap<String, Vec<String>>,
}

impl RequestContext {
    pub fn new(action: impl Into<String>, resource: impl Into<String>) -> Self {
        RequestContext {
            action: action.into(),
            resource: resource.into(),
            keys: HashMap::new(),
        }
    }

    pub fn set(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.keys.insert(key.to_lowercase(), values);
        self
    }
}

/// The identity asking: its ARN, its account, and the role it acts for if it is a role
/// session.
#[derive(Clone, Debug)]
pub struct Caller<'a> {
    pub arn: &'a str,
    pub account: &'a str,
    pub role_arn: Option<&'a str>,
}

impl Caller<'_> {
    pub fn is_account_root(&self) -> bool {
        self.arn == format!("arn:aws:iam::{}:root", self.account)
    }
}

/// How a key policy allowed a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyPolicyGrant {
    /// It names the caller (or `*`): no IAM policy is needed in the key's account.
    Caller,
    /// It names the caller's account: the account's IAM policies decide.
    CallerAccount,
}

/// The result of evaluating one document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evaluation {
    ExplicitDeny,
    Allow(KeyPolicyGrant),
    NotApplicable,
}

fn condition_holds(c: &Condition, ctx: &RequestContext) -> bool {
    let request = ctx.keys.get(&c.key).filter(|v| !v.is_empty());
    if c.operator == Operator::Null {
        // Null: "true" holds when the key is absent, "false" when present.
        let wants_absent = c.values.iter().any(|v| v.eq_ignore_ascii_case("true"));
        return wants_absent == request.is_none();
    }
    let Some(request) = request else {
        return match c.qualifier {
            SetQualifier::ForAllValues => true,
            _ => c.if_exists,
        };
    };
    let any_match = |r: &String| c.values.iter().any(|v| c.operator.matches(r, v));
    let negated = c.operator.is_negated();
    match c.qualifier {
        SetQualifier::Single | SetQualifier::ForAnyValue => {
            if negated {
                !request.iter().any(any_match)
            } else {
                request.iter().any(any_match)
            }
        }
        SetQualifier::ForAllValues => {
            if negated {
                request.iter().all(|r| !any_match(r))
            } else {
                request.iter().all(any_match)
            }
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

fn statement_applies(
    s: &Statement,
    caller: Option<&Caller<'_>>,
    ctx: &RequestContext,
) -> Option<KeyPolicyGrant> {
    let grant = match (caller, &s.principal, &s.not_principal) {
        (Some(c), Some(p), _) => principal_match(p, c)?,
        // NotPrincipal excludes only the principals it names exactly: naming an account
        // excludes its root, not every user of the account (as AWS documents).
        (Some(c), None, Some(np)) => match principal_match(np, c) {
            Some(KeyPolicyGrant::Caller) => return None,
            _ => KeyPolicyGrant::Caller,
        },
        _ => KeyPolicyGrant::Caller,
    };
    let action_ok = match (&s.action, &s.not_action) {
        (Some(a), _) => a.iter().any(|p| glob(p, &ctx.action, true)),
        (None, Some(na)) => !na.iter().any(|p| glob(p, &ctx.action, true)),
        (None, None) => false,
    };
    let resource_ok = match (&s.resource, &s.not_resource) {
        (Some(r), _) => r.iter().any(|p| glob(p, &ctx.resource, false)),
        (None, Some(nr)) => !nr.iter().any(|p| glob(p, &ctx.resource, false)),
        // Key policies may leave Resource out: it is the key itself.
        (None, None) => true,
    };
    (action_ok && resource_ok && s.conditions.iter().all(|c| condition_holds(c, ctx)))
        .then_some(grant)
}

impl PolicyDocument {
    /// Whether any condition uses a key starting with `prefix` (lowercase), so that costly
    /// context such as resource tags is fetched only when a policy asks for it.
    pub fn uses_condition_key(&self, prefix: &str) -> bool {
        self.statements
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| c.key.starts_with(prefix))
    }

    /// Evaluates a key policy (`caller` given) or an identity policy (`caller` None: the
    /// document belongs to the caller).
    pub fn evaluate(&self, caller: Option<&Caller<'_>>, ctx: &RequestContext) -> Evaluation {
        let mut allow: Option<KeyPolicyGrant> = None;
        for s in &self.statements {
            let Some(grant) = statement_applies(s, caller, ctx) else {
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
}

/// What the policies say about one request on a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyAccess {
    Allowed,
    /// A Deny statement matched: nothing, not even a grant, can allow the request.
    ExplicitlyDenied,
    /// No policy allowed it; a grant still may.
    NotAllowed,
}

/// Whether `caller` may do `ctx.action` on a key, given its key policy and the caller's own
/// identity policies. Roots of an account are allowed by IAM implicitly.
pub fn key_access(
    key_policy: &PolicyDocument,
    key_account: &str,
    caller: &Caller<'_>,
    identity_policies: &[PolicyDocument],
    ctx: &RequestContext,
) -> KeyAccess {
    let key = key_policy.evaluate(Some(caller), ctx);
    let identity = evaluate_identity(identity_policies, ctx);
    if key == Evaluation::ExplicitDeny || identity == Evaluation::ExplicitDeny {
        return KeyAccess::ExplicitlyDenied;
    }
    let identity_allows = caller.is_account_root() || matches!(identity, Evaluation::Allow(_));
    let allowed = match key {
        Evaluation::Allow(KeyPolicyGrant::Caller) => {
            caller.account == key_account || identity_allows
        }
        Evaluation::Allow(KeyPolicyGrant::CallerAccount) => identity_allows,
        _ => false,
    };
    if allowed {
        KeyAccess::Allowed
    } else {
        KeyAccess::NotAllowed
    }
}

/// [`key_access`] as a yes or no.
pub fn authorize_key_access(
    key_policy: &PolicyDocument,
    key_account: &str,
    caller: &Caller<'_>,
    identity_policies: &[PolicyDocument],
    ctx: &RequestContext,
) -> bool {
    key_access(key_policy, key_account, caller, identity_policies, ctx) == KeyAccess::Allowed
}

/// Identity policies alone decide for actions on `*` (CreateKey, ListKeys, ...).
pub fn evaluate_identity(policies: &[PolicyDocument], ctx: &RequestContext) -> Evaluation {
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

/// The identity policy of an administrator: every action on every resource.
pub const ADMINISTRATOR_ACCESS: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::AccountId;
    use crate::key::default_key_policy;

    const ACCT: &str = "111122223333";
    const OTHER: &str = "444455556666";
    const KEY: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";

    fn key_policy(statements: &str) -> PolicyDocument {
        PolicyDocument::parse(
            &format!(r#"{{"Version":"2012-10-17","Statement":[{statements}]}}"#),
            PolicyKind::Key,
        )
        .unwrap()
    }

    fn user<'a>(arn: &'a str, account: &'a str) -> Caller<'a> {
        Caller {
            arn,
            account,
            role_arn: None,
        }
    }

    fn ctx(action: &str) -> RequestContext {
        RequestContext::new(action, KEY)
    }

    fn admin() -> Vec<PolicyDocument> {
        vec![PolicyDocument::parse(ADMINISTRATOR_ACCESS, PolicyKind::Identity).unwrap()]
    }

    #[test]
    fn default_key_policy_delegates_to_the_accounts_iam_policies() {
        let policy = PolicyDocument::parse(
            &default_key_policy(&AccountId::parse(ACCT).unwrap()),
            PolicyKind::Key,
        )
        .unwrap();
        let alice = user("arn:aws:iam::111122223333:user/alice", ACCT);
        let root = user("arn:aws:iam::111122223333:root", ACCT);
        let stranger = user("arn:aws:iam::444455556666:user/eve", OTHER);
        let c = ctx("kms:Encrypt");
        assert!(authorize_key_access(&policy, ACCT, &alice, &admin(), &c));
        assert!(
            !authorize_key_access(&policy, ACCT, &alice, &[], &c),
            "no IAM allow"
        );
        assert!(
            authorize_key_access(&policy, ACCT, &root, &[], &c),
            "root needs no IAM policy"
        );
        assert!(!authorize_key_access(
            &policy,
            ACCT,
            &stranger,
            &admin(),
            &c
        ));
    }

    #[test]
    fn a_named_principal_needs_no_iam_policy_and_deny_wins() {
        let policy = key_policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:user/alice"},"Action":["kms:Encrypt","kms:GenerateDataKey*"],"Resource":"*"},
               {"Effect":"Deny","Principal":"*","Action":"kms:GenerateDataKeyWithoutPlaintext","Resource":"*"}"#,
        );
        let alice = user("arn:aws:iam::111122223333:user/alice", ACCT);
        let bob = user("arn:aws:iam::111122223333:user/bob", ACCT);
        assert!(authorize_key_access(
            &policy,
            ACCT,
            &alice,
            &[],
            &ctx("kms:Encrypt")
        ));
        assert!(authorize_key_access(
            &policy,
            ACCT,
            &alice,
            &[],
            &ctx("kms:generatedatakey")
        ));
        assert!(!authorize_key_access(
            &policy,
            ACCT,
            &alice,
            &admin(),
            &ctx("kms:GenerateDataKeyWithoutPlaintext")
        ));
        assert!(!authorize_key_access(
            &policy,
            ACCT,
            &alice,
            &[],
            &ctx("kms:Decrypt")
        ));
        assert!(!authorize_key_access(
            &policy,
            ACCT,
            &bob,
            &admin(),
            &ctx("kms:Encrypt")
        ));
        let deny_iam = PolicyDocument::parse(
            r#"{"Statement":{"Effect":"Deny","Action":"kms:*","Resource":"*"}}"#,
            PolicyKind::Identity,
        )
        .unwrap();
        assert!(!authorize_key_access(
            &policy,
            ACCT,
            &alice,
            &[deny_iam],
            &ctx("kms:Encrypt")
        ));
    }

    #[test]
    fn cross_account_use_needs_both_sides() {
        let policy = key_policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"444455556666"},"Action":"kms:Decrypt","Resource":"*"}"#,
        );
        let eve = user("arn:aws:iam::444455556666:user/eve", OTHER);
        let other_root = user("arn:aws:iam::444455556666:root", OTHER);
        let c = ctx("kms:Decrypt");
        assert!(authorize_key_access(&policy, ACCT, &eve, &admin(), &c));
        assert!(!authorize_key_access(&policy, ACCT, &eve, &[], &c));
        assert!(authorize_key_access(&policy, ACCT, &other_root, &[], &c));
    }

    #[test]
    fn not_principal_naming_an_account_spares_only_its_root() {
        let policy = key_policy(
            r#"{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*"},
               {"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::111122223333:root","arn:aws:iam::111122223333:user/admin"]},"Action":"kms:*","Resource":"*"}"#,
        );
        let c = ctx("kms:Encrypt");
        assert!(authorize_key_access(
            &policy,
            ACCT,
            &user("arn:aws:iam::111122223333:root", ACCT),
            &[],
            &c
        ));
        assert!(authorize_key_access(
            &policy,
            ACCT,
            &user("arn:aws:iam::111122223333:user/admin", ACCT),
            &[],
            &c
        ));
        assert!(!authorize_key_access(
            &policy,
            ACCT,
            &user("arn:aws:iam::111122223333:user/alice", ACCT),
            &admin(),
            &c
        ));
    }

    #[test]
    fn role_sessions_match_their_role() {
        let policy = key_policy(
            r#"{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/app"},"Action":"kms:Decrypt","Resource":"*"}"#,
        );
        let session = Caller {
            arn: "arn:aws:sts::111122223333:assumed-role/app/s1",
            account: ACCT,
            role_arn: Some("arn:aws:iam::111122223333:role/app"),
        };
        assert!(authorize_key_access(
            &policy,
            ACCT,
            &session,
            &[],
            &ctx("kms:Decrypt")
        ));
    }

    fn allowed_when(condition: &str, set: &[(&str, &[&str])]) -> bool {
        let policy = key_policy(&format!(
            r#"{{"Effect":"Allow","Principal":"*","Action":"kms:*","Resource":"*","Condition":{condition}}}"#
        ));
        let mut c = ctx("kms:Decrypt");
        for (k, v) in set {
            c.set(k, v.iter().map(|s| s.to_string()).collect());
        }
        let alice = user("arn:aws:iam::111122223333:user/alice", ACCT);
        authorize_key_access(&policy, ACCT, &alice, &[], &c)
    }

    #[test]
    fn condition_operators() {
        let purpose = r#"{"StringEquals":{"kms:EncryptionContext:purpose":"backup"}}"#;
        assert!(allowed_when(
            purpose,
            &[("kms:EncryptionContext:Purpose", &["backup"])]
        ));
        assert!(!allowed_when(
            purpose,
            &[("kms:EncryptionContext:purpose", &["Backup"])]
        ));
        assert!(!allowed_when(purpose, &[]));
        let if_exists = r#"{"StringEqualsIfExists":{"kms:EncryptionContext:purpose":"backup"}}"#;
        assert!(allowed_when(if_exists, &[]));
        let all_keys = r#"{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":["a","b"]}}"#;
        assert!(allowed_when(
            all_keys,
            &[("kms:EncryptionContextKeys", &["a"])]
        ));
        assert!(
            allowed_when(all_keys, &[]),
            "ForAllValues holds for no values"
        );
        assert!(!allowed_when(
            all_keys,
            &[("kms:EncryptionContextKeys", &["a", "c"])]
        ));
        let any_key = r#"{"ForAnyValue:StringLike":{"kms:EncryptionContextKeys":"app*"}}"#;
        assert!(allowed_when(
            any_key,
            &[("kms:EncryptionContextKeys", &["x", "app-id"])]
        ));
        assert!(!allowed_when(any_key, &[]));
        let not_eq = r#"{"StringNotEquals":{"kms:CallerAccount":"999999999999"}}"#;
        assert!(allowed_when(not_eq, &[("kms:CallerAccount", &[ACCT])]));
        assert!(!allowed_when(
            not_eq,
            &[("kms:CallerAccount", &["999999999999"])]
        ));
        let null = r#"{"Null":{"kms:EncryptionContextKeys":"false"}}"#;
        assert!(allowed_when(null, &[("kms:EncryptionContextKeys", &["a"])]));
        assert!(!allowed_when(null, &[]));
        let bool_ = r#"{"Bool":{"aws:SecureTransport":"true"}}"#;
        assert!(allowed_when(bool_, &[("aws:SecureTransport", &["true"])]));
        assert!(!allowed_when(bool_, &[("aws:SecureTransport", &["false"])]));
        let num = r#"{"NumericLessThanEquals":{"kms:ExpirationModel":"10"}}"#;
        assert!(allowed_when(num, &[("kms:ExpirationModel", &["9.5"])]));
        assert!(!allowed_when(num, &[("kms:ExpirationModel", &["11"])]));
        let date = r#"{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}"#;
        assert!(allowed_when(
            date,
            &[("aws:CurrentTime", &["2026-11-24T00:00:00Z"])]
        ));
        assert!(!allowed_when(
            date,
            &[("aws:CurrentTime", &["2031-01-01T00:00:00Z"])]
        ));
        let ip = r#"{"IpAddress":{"aws:SourceIp":["10.0.0.0/8","127.0.0.1/32"]}}"#;
        assert!(allowed_when(ip, &[("aws:SourceIp", &["127.0.0.1"])]));
        assert!(!allowed_when(ip, &[("aws:SourceIp", &["192.168.1.1"])]));
        let arn = r#"{"ArnLike":{"aws:PrincipalArn":"arn:aws:iam::111122223333:user/a*"}}"#;
        assert!(allowed_when(
            arn,
            &[(
                "aws:PrincipalArn",
                &["arn:aws:iam::111122223333:user/alice"]
            )]
        ));
        assert!(!allowed_when(
            arn,
            &[("aws:PrincipalArn", &["arn:aws:iam::111122223333:user/bob"])]
        ));
    }

    #[test]
    fn malformed_documents_are_refused() {
        for bad in [
            "not json",
            r#"{"Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":{"AWS":"bob"},"Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":{"StringSorta":{"a":"b"}}}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*"}]}"#,
            r#"{"Version":"2012-10-17"}"#,
        ] {
            assert!(
                matches!(
                    PolicyDocument::parse(bad, PolicyKind::Key),
                    Err(KmsError::MalformedPolicyDocument(_))
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn globs() {
        assert!(glob("kms:Generate*", "kms:GenerateDataKeyPair", false));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "abbc", false));
        assert!(glob("*", "", false));
        assert!(glob("KMS:ENCRYPT", "kms:Encrypt", true));
        assert!(!glob("kms:Encrypt", "kms:EncryptX", false));
        assert!(glob("*a*b", "xxaxxbxb", false));
    }
}
