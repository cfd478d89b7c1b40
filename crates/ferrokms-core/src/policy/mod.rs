//! IAM policy documents — key policies, role trust policies and identity (IAM) policies —
//! and their evaluation as AWS documents it: an explicit Deny wins, and access needs an
//! Allow from every side that must agree.
//!
//! Map:
//! - this module: documents and their grammar, the request context, the caller;
//! - `condition`: the condition operators and when one condition holds;
//! - `evaluate`: statements, documents and the decision over a resource policy and the
//!   caller's identity policies, with an explanation of every step.

mod condition;
#[cfg(test)]
mod corpus;
mod evaluate;

use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::KmsError;
use condition::{Condition, Operator, SetQualifier};

pub use evaluate::{
    decide, explain, Decision, DeniedBy, Explanation, Missing, PolicyReport, Resource,
    StatementOutcome, StatementReport,
};

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

#[derive(Clone, Debug, PartialEq)]
struct Statement {
    sid: Option<String>,
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

/// A string or a list of strings, as IAM allows for most elements.
fn strings(v: &Value, element: &str) -> Result<Vec<String>, KmsError> {
    let scalar = |v: &Value| -> Result<String, KmsError> {
        match v {
            Value::String(s) => Ok(s.clone()),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Number(n) => Ok(n.to_string()),
            _ => Err(KmsError::policy_element_not_strings(element)),
        }
    };
    match v {
        Value::Array(items) => items.iter().map(scalar).collect(),
        other => Ok(vec![scalar(other)?]),
    }
}

fn principals(v: &Value) -> Result<Principals, KmsError> {
    let invalid = KmsError::policy_invalid_principals;
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
                    _ => return Err(invalid()),
                }
            }
            if aws.iter().any(|a| a == "*") {
                return Ok(Principals::Any);
            }
            if !aws.iter().all(|a| is_valid_principal(a)) {
                return Err(invalid());
            }
            Ok(Principals::Listed { aws, service })
        }
        _ => Err(invalid()),
    }
}

/// The account of an AWS principal: a 12-digit account id, or an IAM or STS ARN; None for
/// anything else.
pub fn principal_account(p: &str) -> Option<&str> {
    let account_digits = |s: &str| s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit());
    if account_digits(p) {
        return Some(p);
    }
    match p.splitn(6, ':').collect::<Vec<_>>().as_slice() {
        ["arn", _, "iam" | "sts", "", acct, resource]
            if account_digits(acct) && !resource.is_empty() =>
        {
            Some(acct)
        }
        _ => None,
    }
}

fn is_valid_principal(p: &str) -> bool {
    principal_account(p).is_some()
}

fn conditions(v: &Value) -> Result<Vec<Condition>, KmsError> {
    let Value::Object(ops) = v else {
        return Err(KmsError::policy_condition_not_object());
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
            .ok_or_else(|| KmsError::policy_invalid_condition_operator(op_name))?;
        let Value::Object(keys) = keys else {
            return Err(KmsError::policy_condition_not_map(op_name));
        };
        for (key, values) in keys {
            out.push(Condition {
                operator,
                qualifier,
                if_exists,
                written: op_name.clone(),
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
        return Err(KmsError::policy_statement_not_object());
    };
    let effect = match map.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        _ => return Err(KmsError::policy_statement_without_effect()),
    };
    let principal = map.get("Principal").map(principals).transpose()?;
    let not_principal = map.get("NotPrincipal").map(principals).transpose()?;
    match kind {
        PolicyKind::Key if principal.is_none() && not_principal.is_none() => {
            return Err(KmsError::policy_statement_without_principal())
        }
        PolicyKind::Identity if principal.is_some() || not_principal.is_some() => {
            return Err(KmsError::policy_identity_with_principal())
        }
        _ => {}
    }
    if principal.is_some() && not_principal.is_some() {
        return Err(KmsError::policy_principal_and_not_principal());
    }
    let action = optional_strings(map, "Action")?;
    let not_action = optional_strings(map, "NotAction")?;
    if action.is_none() == not_action.is_none() {
        return Err(KmsError::policy_action_and_not_action());
    }
    let resource = optional_strings(map, "Resource")?;
    let not_resource = optional_strings(map, "NotResource")?;
    if resource.is_some() && not_resource.is_some() {
        return Err(KmsError::policy_resource_and_not_resource());
    }
    if kind == PolicyKind::Identity && resource.is_none() && not_resource.is_none() {
        return Err(KmsError::policy_statement_without_resource());
    }
    let conditions = map
        .get("Condition")
        .map(conditions)
        .transpose()?
        .unwrap_or_default();
    Ok(Statement {
        sid: map.get("Sid").and_then(Value::as_str).map(str::to_owned),
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
        let doc: Value = serde_json::from_str(text).map_err(|_| KmsError::policy_not_json())?;
        let Value::Object(map) = doc else {
            return Err(KmsError::policy_not_object());
        };
        let statements = match map.get("Statement") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|s| statement(s, kind))
                .collect::<Result<Vec<_>, _>>()?,
            Some(single @ Value::Object(_)) => vec![statement(single, kind)?],
            _ => return Err(KmsError::policy_without_statement()),
        };
        Ok(PolicyDocument { statements })
    }

    /// The checks a policy must pass to be stored (a key policy, an identity or trust
    /// policy), beyond its grammar: what AWS's validator refuses, and what ferrokms could
    /// not evaluate as written.
    /// - `ForAllValues` on a single-valued encryption context or request tag key, which
    ///   would match requests without that pair at all (KMS's OverlyPermissiveCondition);
    /// - wildcards in a principal's ARN (only `"*"` alone means everyone);
    /// - policy variables (`${aws:username}`), which ferrokms does not substitute;
    /// - empty lists of actions, resources, principals or condition values.
    pub fn check_new_policy(&self) -> Result<(), KmsError> {
        let invalid_principals = KmsError::policy_invalid_principals;
        for s in &self.statements {
            for p in [&s.principal, &s.not_principal].into_iter().flatten() {
                if let Principals::Listed { aws, service } = p {
                    if aws.is_empty() && service.is_empty() {
                        return Err(invalid_principals());
                    }
                    if aws.iter().any(|a| a.contains(['*', '?'])) {
                        return Err(invalid_principals());
                    }
                }
            }
            for list in [&s.action, &s.not_action, &s.resource, &s.not_resource]
                .into_iter()
                .flatten()
            {
                if list.is_empty() {
                    return Err(KmsError::policy_empty_list());
                }
            }
            for c in &s.conditions {
                if c.values.is_empty() {
                    return Err(KmsError::policy_condition_without_values(
                        &c.written, &c.key,
                    ));
                }
                if c.values.iter().any(|v| v.contains("${")) {
                    return Err(KmsError::policy_variable_in_condition(&c.written, &c.key));
                }
                if c.qualifier != SetQualifier::ForAllValues {
                    continue;
                }
                if c.key.starts_with("kms:encryptioncontext:") {
                    return Err(KmsError::policy_for_all_values_on_encryption_context());
                }
                if c.key.starts_with("aws:requesttag/") {
                    return Err(KmsError::policy_for_all_values_on_request_tag());
                }
            }
        }
        Ok(())
    }

    /// Whether any statement has a condition: without one, no condition key can change the
    /// decision, and a request's context need not be built.
    pub fn has_conditions(&self) -> bool {
        self.statements.iter().any(|s| !s.conditions.is_empty())
    }

    /// Whether any condition uses a key starting with `prefix` (lowercase), so that costly
    /// context such as resource tags is fetched only when a policy asks for it.
    pub fn uses_condition_key(&self, prefix: &str) -> bool {
        self.statements
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| c.key.starts_with(prefix))
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

/// Everything a policy may ask about one request.
#[derive(Clone, Debug, Default)]
pub struct RequestContext {
    pub action: String,
    pub resource: String,
    /// Condition keys (lowercased) and their values; multivalued keys have several.
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

    /// Adds values to a key, keeping those it has: condition key names ignore case, so
    /// `kms:EncryptionContext:Tenant` and `...:tenant` of one request are one key with both
    /// values, never whichever came last.
    pub fn add(&mut self, key: &str, values: Vec<String>) -> &mut Self {
        self.keys
            .entry(key.to_lowercase())
            .or_default()
            .extend(values);
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
        self.arn
            .strip_prefix("arn:aws:iam::")
            .and_then(|r| r.strip_suffix(":root"))
            == Some(self.account)
    }
}

/// The identity policy of an administrator: every action on every resource.
pub const ADMINISTRATOR_ACCESS: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

#[cfg(test)]
mod tests {
    use super::*;

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

    /// KMS-COND: "If you create or update a policy that includes a ForAllValues set operator
    /// with the kms:EncryptionContext:context-key or aws:RequestTag/tag-key condition keys,
    /// AWS KMS returns the following error message: OverlyPermissiveCondition..."
    #[test]
    fn for_all_values_on_single_valued_keys_is_refused_in_new_policies() {
        for key in ["kms:EncryptionContext:Dept", "aws:RequestTag/Project"] {
            let text = format!(
                r#"{{"Statement":[{{"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":{{"ForAllValues:StringEquals":{{"{key}":"IT"}}}}}}]}}"#
            );
            let doc = PolicyDocument::parse(&text, PolicyKind::Key).unwrap();
            match doc.check_new_policy() {
                Err(KmsError::MalformedPolicyDocument(m)) => {
                    assert!(m.starts_with("OverlyPermissiveCondition"), "{m}")
                }
                other => panic!("{other:?}"),
            }
        }
        let fine = PolicyDocument::parse(
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":{"ForAllValues:StringEquals":{"kms:EncryptionContextKeys":"a"}}}]}"#,
            PolicyKind::Key,
        )
        .unwrap();
        assert!(fine.check_new_policy().is_ok());
    }

    #[test]
    fn policies_ferrokms_could_not_evaluate_as_written_are_refused() {
        for bad in [
            r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":"arn:aws:iam::111122223333:role/contractor-*"},"Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Principal":{"AWS":[]},"Action":"kms:*"}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":[],"Resource":"*"}]}"#,
            r#"{"Statement":[{"Effect":"Allow","Principal":"*","Action":"kms:*","Condition":{"StringNotEquals":{"kms:CallerAccount":[]}}}]}"#,
            r#"{"Statement":[{"Effect":"Deny","Principal":"*","Action":"kms:CreateGrant","Condition":{"StringEquals":{"kms:GranteePrincipal":"${aws:PrincipalArn}"}}}]}"#,
        ] {
            let doc = PolicyDocument::parse(bad, PolicyKind::Key).unwrap();
            assert!(
                matches!(
                    doc.check_new_policy(),
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

    #[test]
    fn roots_are_told_by_their_arn() {
        let root = Caller {
            arn: "arn:aws:iam::111122223333:root",
            account: "111122223333",
            role_arn: None,
        };
        assert!(root.is_account_root());
        let other = Caller {
            account: "444455556666",
            ..root.clone()
        };
        assert!(!other.is_account_root());
    }
}
