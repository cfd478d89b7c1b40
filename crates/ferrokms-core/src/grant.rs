//! Grants: what a grant allows (operations, encryption-context constraints) and grant tokens.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::ids::{lower_hex, KeyId, KEY_ID_BYTES};
use crate::{random, KmsError};

/// The operations a grant may allow (the model's GrantOperation enum).
pub const GRANT_OPERATIONS: &[&str] = &[
    "Decrypt",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyWithoutPlaintext",
    "ReEncryptFrom",
    "ReEncryptTo",
    "Sign",
    "Verify",
    "GetPublicKey",
    "CreateGrant",
    "RetireGrant",
    "DescribeKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateMac",
    "VerifyMac",
    "DeriveSharedSecret",
];

/// AWS quota: grants per key.
pub const MAX_GRANTS_PER_KEY: usize = 50_000;

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantConstraints {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_subset: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_context_equals: Option<BTreeMap<String, String>>,
    /// The resource on whose behalf a request must be made (`aws:SourceArn`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_arn: Option<String>,
}

/// What a request offers a grant's constraints: its encryption context, and the resource
/// it is made for when an AWS service makes it.
#[derive(Clone, Copy, Debug, Default)]
pub struct GrantRequest<'a> {
    pub encryption_context: Option<&'a BTreeMap<String, String>>,
    pub source_arn: Option<&'a str>,
}

/// Constraint keys are compared without case, values exactly: "in a grant constraint, the
/// key in each key-value pair is not case sensitive, but the value is case sensitive".
fn context_has(context: &BTreeMap<String, String>, key: &str, value: &str) -> bool {
    context
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case(key) && v == value)
}

/// Whether `context` holds every pair of `pairs`.
fn holds_all(context: &BTreeMap<String, String>, pairs: &BTreeMap<String, String>) -> bool {
    pairs.iter().all(|(k, v)| context_has(context, k, v))
}

/// Whether two contexts are the same pairs, keys compared without case.
fn same_pairs(a: &BTreeMap<String, String>, b: &BTreeMap<String, String>) -> bool {
    a.len() == b.len() && holds_all(a, b) && holds_all(b, a)
}

impl GrantConstraints {
    /// The `kms:GrantConstraintType` values of these constraints: the encryption context
    /// kinds (SourceArn has a key of its own, `kms:GrantConstraintSourceArn`).
    pub fn types(&self) -> Vec<String> {
        let mut kinds = Vec::new();
        if self.encryption_context_equals.is_some() {
            kinds.push("EncryptionContextEquals".to_owned());
        }
        if self.encryption_context_subset.is_some() {
            kinds.push("EncryptionContextSubset".to_owned());
        }
        kinds
    }

    /// The encryption context pairs the constraints name (Equals or Subset).
    pub fn context_pairs(&self) -> Option<&BTreeMap<String, String>> {
        self.encryption_context_equals
            .as_ref()
            .or(self.encryption_context_subset.as_ref())
    }

    /// Whether a request meets every constraint. Encryption context constraints apply only
    /// to operations that take an encryption context (`request.encryption_context` given).
    fn admit(&self, request: &GrantRequest<'_>) -> bool {
        if let Some(arn) = &self.source_arn {
            if request.source_arn != Some(arn.as_str()) {
                return false;
            }
        }
        let Some(context) = request.encryption_context else {
            return true;
        };
        if let Some(equals) = &self.encryption_context_equals {
            if !same_pairs(equals, context) {
                return false;
            }
        }
        if let Some(subset) = &self.encryption_context_subset {
            if !holds_all(context, subset) {
                return false;
            }
        }
        true
    }

    /// Whether every request these constraints admit, `wider` admits too: the new grant of
    /// a grantee is at least as strict as the grant that let it create one.
    fn at_least_as_strict_as(&self, wider: &GrantConstraints) -> bool {
        if wider.source_arn.is_some() && self.source_arn != wider.source_arn {
            return false;
        }
        if let Some(equals) = &wider.encryption_context_equals {
            // Only the same exact context is as strict as an exact context.
            let same = self
                .encryption_context_equals
                .as_ref()
                .is_some_and(|mine| same_pairs(mine, equals));
            if !same {
                return false;
            }
        }
        if let Some(subset) = &wider.encryption_context_subset {
            // Every context this admits must hold the wider grant's pairs.
            let holds = match (
                &self.encryption_context_equals,
                &self.encryption_context_subset,
            ) {
                (Some(equals), _) if holds_all(equals, subset) => true,
                (_, Some(mine)) => holds_all(mine, subset),
                _ => false,
            };
            if !holds {
                return false;
            }
        }
        true
    }
}

/// What a grant allows, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTerms {
    pub operations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraints>,
}

impl GrantTerms {
    /// Whether the grant allows `operation` for this request. Constraints bind the
    /// encryption context exactly (`Equals`) or at least (`Subset`), and the resource a
    /// service acts for (`SourceArn`).
    pub fn allows(&self, operation: &str, request: &GrantRequest<'_>) -> bool {
        self.operations.iter().any(|o| o == operation)
            && self.constraints.as_ref().is_none_or(|c| c.admit(request))
    }

    /// Whether a grantee holding these terms may create a grant of `new` terms with them:
    /// the new grant's operations are among these, and its constraints at least as strict.
    pub fn may_create(&self, new: &GrantTerms) -> bool {
        let none = GrantConstraints::default();
        let operations = new
            .operations
            .iter()
            .all(|o| self.operations.iter().any(|mine| mine == o));
        let strict = match &self.constraints {
            None => true,
            Some(mine) => new
                .constraints
                .as_ref()
                .unwrap_or(&none)
                .at_least_as_strict_as(mine),
        };
        operations && strict
    }
}

/// A new grant id: 64 lowercase hex digits, like AWS's.
pub fn new_grant_id() -> Result<String, KmsError> {
    Ok(lower_hex(&random::array::<32>()?))
}

/// A grant token names the key and the grant; a random tail makes each token issued unique,
/// as AWS's are.
pub fn new_grant_token(key: KeyId, grant_id: &str) -> Result<String, KmsError> {
    let tail = lower_hex(&random::array::<16>()?);
    Ok(format!(
        "fkgt1.{}.{grant_id}.{tail}",
        lower_hex(&key.to_bytes())
    ))
}

/// Reads a grant token back into the key and grant it names.
pub fn parse_grant_token(token: &str) -> Option<(KeyId, String)> {
    let mut parts = token.split('.');
    let (Some("fkgt1"), Some(key), Some(grant), Some(tail), None) = (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) else {
        return None;
    };
    let hex = |s: &str, n: usize| {
        s.len() == n && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    };
    if !hex(key, KEY_ID_BYTES * 2) || !hex(grant, 64) || !hex(tail, 32) {
        return None;
    }
    let bytes: Vec<u8> = (0..key.len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(&key[i..i + 2], 16).ok())
        .collect();
    Some((KeyId::from_bytes(&bytes)?, grant.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn terms(operations: &[&str], constraints: Option<GrantConstraints>) -> GrantTerms {
        GrantTerms {
            operations: operations.iter().map(|o| o.to_string()).collect(),
            constraints,
        }
    }

    fn subset(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
        Some(GrantConstraints {
            encryption_context_subset: Some(ctx(pairs)),
            ..Default::default()
        })
    }

    fn equals(pairs: &[(&str, &str)]) -> Option<GrantConstraints> {
        Some(GrantConstraints {
            encryption_context_equals: Some(ctx(pairs)),
            ..Default::default()
        })
    }

    fn with_context(c: &BTreeMap<String, String>) -> GrantRequest<'_> {
        GrantRequest {
            encryption_context: Some(c),
            source_arn: None,
        }
    }

    #[test]
    fn constraints_bind_the_encryption_context() {
        let sub = terms(&["Decrypt", "DescribeKey"], subset(&[("app", "x")]));
        assert!(sub.allows(
            "Decrypt",
            &with_context(&ctx(&[("app", "x"), ("more", "y")]))
        ));
        assert!(!sub.allows("Decrypt", &with_context(&ctx(&[("app", "z")]))));
        assert!(!sub.allows("Decrypt", &with_context(&ctx(&[]))));
        assert!(!sub.allows("Encrypt", &with_context(&ctx(&[("app", "x")]))));
        // "the constraint doesn't apply to these operations" (DescribeKey, RetireGrant).
        assert!(sub.allows("DescribeKey", &GrantRequest::default()));
        let eq = terms(&["Encrypt"], equals(&[("app", "x")]));
        assert!(eq.allows("Encrypt", &with_context(&ctx(&[("app", "x")]))));
        assert!(!eq.allows(
            "Encrypt",
            &with_context(&ctx(&[("app", "x"), ("more", "y")]))
        ));
    }

    /// "in a grant constraint, the key in each key-value pair is not case sensitive, but the
    /// value is case sensitive."
    #[test]
    fn constraint_keys_ignore_case_and_values_do_not() {
        let sub = terms(&["Decrypt"], subset(&[("App", "x")]));
        assert!(sub.allows("Decrypt", &with_context(&ctx(&[("app", "x")]))));
        assert!(!sub.allows("Decrypt", &with_context(&ctx(&[("app", "X")]))));
        let eq = terms(&["Decrypt"], equals(&[("APP", "x")]));
        assert!(eq.allows("Decrypt", &with_context(&ctx(&[("app", "x")]))));
        assert!(!eq.allows("Decrypt", &with_context(&ctx(&[("app", "X")]))));
    }

    /// The SourceArn constraint admits only requests made on behalf of that resource.
    #[test]
    fn source_arn_binds_the_resource() {
        let arn = "arn:aws:s3:::bucket-of-111122223333";
        let t = terms(
            &["Decrypt"],
            Some(GrantConstraints {
                source_arn: Some(arn.into()),
                ..Default::default()
            }),
        );
        let empty = ctx(&[]);
        assert!(!t.allows("Decrypt", &with_context(&empty)));
        assert!(t.allows(
            "Decrypt",
            &GrantRequest {
                encryption_context: Some(&empty),
                source_arn: Some(arn),
            }
        ));
        assert!(!t.allows(
            "Decrypt",
            &GrantRequest {
                encryption_context: Some(&empty),
                source_arn: Some("arn:aws:s3:::other"),
            }
        ));
    }

    /// A grantee may create grants of its own operations or fewer, with constraints
    /// "equally strict or stricter".
    #[test]
    fn grantees_create_only_narrower_grants() {
        let mine = terms(&["Encrypt", "CreateGrant"], None);
        assert!(mine.may_create(&terms(&["Encrypt"], None)));
        assert!(mine.may_create(&terms(&["Encrypt", "CreateGrant"], subset(&[("a", "1")]))));
        assert!(!mine.may_create(&terms(&["Decrypt"], None)));
        assert!(!mine.may_create(&terms(&["Encrypt", "Decrypt"], None)));

        let sub = terms(&["Decrypt", "CreateGrant"], subset(&[("a", "1")]));
        assert!(
            !sub.may_create(&terms(&["Decrypt"], None)),
            "drops the constraint"
        );
        assert!(sub.may_create(&terms(&["Decrypt"], subset(&[("a", "1")]))));
        assert!(sub.may_create(&terms(&["Decrypt"], subset(&[("A", "1"), ("b", "2")]))));
        assert!(sub.may_create(&terms(&["Decrypt"], equals(&[("a", "1"), ("b", "2")]))));
        assert!(!sub.may_create(&terms(&["Decrypt"], subset(&[("a", "2")]))));
        assert!(!sub.may_create(&terms(&["Decrypt"], equals(&[("b", "2")]))));

        let eq = terms(&["Decrypt", "CreateGrant"], equals(&[("a", "1")]));
        assert!(eq.may_create(&terms(&["Decrypt"], equals(&[("A", "1")]))));
        assert!(!eq.may_create(&terms(&["Decrypt"], subset(&[("a", "1")]))));
        assert!(!eq.may_create(&terms(&["Decrypt"], equals(&[("a", "1"), ("b", "2")]))));

        let src = terms(
            &["Decrypt", "CreateGrant"],
            Some(GrantConstraints {
                source_arn: Some("arn:aws:s3:::b".into()),
                ..Default::default()
            }),
        );
        assert!(!src.may_create(&terms(&["Decrypt"], None)));
    }

    #[test]
    fn tokens_name_key_and_grant_and_differ_each_time() {
        let key = KeyId::generate(false).unwrap();
        let id = new_grant_id().unwrap();
        let a = new_grant_token(key, &id).unwrap();
        let b = new_grant_token(key, &id).unwrap();
        assert_ne!(a, b);
        assert_eq!(parse_grant_token(&a), Some((key, id)));
        assert_eq!(parse_grant_token("garbage"), None);
        assert_eq!(parse_grant_token(&a.replace("fkgt1", "fkgt2")), None);
    }
}
