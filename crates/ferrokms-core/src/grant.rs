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
}

/// What a grant allows, as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantTerms {
    pub operations: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub constraints: Option<GrantConstraints>,
}

impl GrantTerms {
    /// Whether the grant allows `operation` for a request with this encryption context.
    /// Constraints bind the encryption context exactly (`Equals`) or at least (`Subset`).
    pub fn allows(&self, operation: &str, context: &BTreeMap<String, String>) -> bool {
        if !self.operations.iter().any(|o| o == operation) {
            return false;
        }
        let Some(c) = &self.constraints else {
            return true;
        };
        if let Some(equals) = &c.encryption_context_equals {
            if equals != context {
                return false;
            }
        }
        if let Some(subset) = &c.encryption_context_subset {
            if !subset.iter().all(|(k, v)| context.get(k) == Some(v)) {
                return false;
            }
        }
        true
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

    #[test]
    fn constraints_bind_the_encryption_context() {
        let subset = GrantTerms {
            operations: vec!["Decrypt".into()],
            constraints: Some(GrantConstraints {
                encryption_context_subset: Some(ctx(&[("app", "x")])),
                encryption_context_equals: None,
            }),
        };
        assert!(subset.allows("Decrypt", &ctx(&[("app", "x"), ("more", "y")])));
        assert!(!subset.allows("Decrypt", &ctx(&[("app", "z")])));
        assert!(!subset.allows("Decrypt", &ctx(&[])));
        assert!(!subset.allows("Encrypt", &ctx(&[("app", "x")])));
        let equals = GrantTerms {
            operations: vec!["Encrypt".into()],
            constraints: Some(GrantConstraints {
                encryption_context_subset: None,
                encryption_context_equals: Some(ctx(&[("app", "x")])),
            }),
        };
        assert!(equals.allows("Encrypt", &ctx(&[("app", "x")])));
        assert!(!equals.allows("Encrypt", &ctx(&[("app", "x"), ("more", "y")])));
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
