//! Identifiers: accounts, regions, key ids, key and alias ARNs, and the forms a caller may use
//! to name a key. Each is its own type so that a key id cannot be mistaken for an alias.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{random, KmsError};

pub const PARTITION: &str = "aws";

/// A 12-digit AWS account id.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountId(String);

impl AccountId {
    pub fn parse(s: &str) -> Option<Self> {
        (s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())).then(|| AccountId(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
    /// The ARN of the account's root principal, as default key policies name it.
    pub fn root_arn(&self) -> String {
        format!("arn:{PARTITION}:iam::{}:root", self.0)
    }
}

impl TryFrom<String> for AccountId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        AccountId::parse(&s).ok_or_else(|| format!("invalid account id {s:?}"))
    }
}
impl From<AccountId> for String {
    fn from(a: AccountId) -> String {
        a.0
    }
}
impl fmt::Display for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for AccountId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AccountId({})", self.0)
    }
}

/// A region name such as `us-east-1`: lowercase letters, digits and dashes.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.len() <= 32
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !s.starts_with('-')
            && !s.ends_with('-');
        ok.then(|| Region(s.to_owned()))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}
impl TryFrom<String> for Region {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        Region::parse(&s).ok_or_else(|| format!("invalid region {s:?}"))
    }
}
impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}
impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Region({})", self.0)
    }
}

/// A KMS key id: a lowercase UUID, or `mrk-` and 32 lowercase hex digits for a multi-Region key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyId {
    multi_region: bool,
    bytes: [u8; 16],
}

/// Length of a key id in binary form (inside ciphertext headers).
pub const KEY_ID_BYTES: usize = 17;

impl KeyId {
    pub fn generate(multi_region: bool) -> Result<Self, KmsError> {
        let mut bytes: [u8; 16] = random::array()?;
        if !multi_region {
            // RFC 4122 version 4, variant 1, so that standard UUID parsers accept it.
            bytes[6] = (bytes[6] & 0x0f) | 0x40;
            bytes[8] = (bytes[8] & 0x3f) | 0x80;
        }
        Ok(KeyId {
            multi_region,
            bytes,
        })
    }

    pub fn parse(s: &str) -> Option<Self> {
        if let Some(hex) = s.strip_prefix("mrk-") {
            return Some(KeyId {
                multi_region: true,
                bytes: decode_lower_hex(hex)?,
            });
        }
        let b = s.as_bytes();
        if b.len() != 36 || [8, 13, 18, 23].iter().any(|&i| b[i] != b'-') {
            return None;
        }
        let hex: String = s.chars().filter(|&c| c != '-').collect();
        Some(KeyId {
            multi_region: false,
            bytes: decode_lower_hex(&hex)?,
        })
    }

    pub fn is_multi_region(&self) -> bool {
        self.multi_region
    }

    pub fn to_bytes(&self) -> [u8; KEY_ID_BYTES] {
        let mut out = [0u8; KEY_ID_BYTES];
        out[0] = u8::from(self.multi_region);
        out[1..].copy_from_slice(&self.bytes);
        out
    }

    pub fn from_bytes(b: &[u8]) -> Option<Self> {
        if b.len() != KEY_ID_BYTES || b[0] > 1 {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&b[1..]);
        Some(KeyId {
            multi_region: b[0] == 1,
            bytes,
        })
    }
}

fn decode_lower_hex<const N: usize>(s: &str) -> Option<[u8; N]> {
    if s.len() != N * 2 {
        return None;
    }
    let mut out = [0u8; N];
    for (i, pair) in s.as_bytes().chunks(2).enumerate() {
        let hi = lower_hex_value(pair[0])?;
        let lo = lower_hex_value(pair[1])?;
        out[i] = hi << 4 | lo;
    }
    Some(out)
}

fn lower_hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

pub(crate) fn lower_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 0xf)] as char);
    }
    s
}

impl fmt::Display for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let h = lower_hex(&self.bytes);
        if self.multi_region {
            write!(f, "mrk-{h}")
        } else {
            write!(
                f,
                "{}-{}-{}-{}-{}",
                &h[0..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..32]
            )
        }
    }
}
impl fmt::Debug for KeyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyId({self})")
    }
}
impl TryFrom<String> for KeyId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        KeyId::parse(&s).ok_or_else(|| format!("invalid key id {s:?}"))
    }
}
impl From<KeyId> for String {
    fn from(k: KeyId) -> String {
        k.to_string()
    }
}

/// The ARN of a KMS key: `arn:aws:kms:<region>:<account>:key/<key id>`.
#[derive(Clone, PartialEq, Eq, Hash, Debug, Serialize, Deserialize)]
pub struct KeyArn {
    pub region: Region,
    pub account: AccountId,
    pub key_id: KeyId,
}

impl fmt::Display for KeyArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{PARTITION}:kms:{}:{}:key/{}",
            self.region, self.account, self.key_id
        )
    }
}

/// An alias name, always `alias/...`, checked against the AWS naming rules.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AliasName(String);

/// Why a string is not a usable alias name, in the words AWS uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AliasNameError {
    /// Fails the model's length or character-set constraint (a ValidationException).
    Pattern,
    /// Does not start with `alias/` (a ValidationException with its own message).
    Prefix,
    /// Uses the `alias/aws/` prefix that AWS keeps for its managed keys.
    Reserved,
    /// Has a colon after `alias/`: the model's pattern allows one, but the documented
    /// character set of a new alias (letters, digits, `/`, `_`, `-`) does not.
    Colon,
}

pub const ALIAS_PATTERN: &str = "^[a-zA-Z0-9:/_-]+$";

impl AliasName {
    /// Parses a name a caller may create.
    pub fn parse_new(s: &str) -> Result<Self, AliasNameError> {
        let name = Self::parse_existing(s)?;
        if s.starts_with("alias/aws/") {
            return Err(AliasNameError::Reserved);
        }
        if s["alias/".len()..].contains(':') {
            return Err(AliasNameError::Colon);
        }
        Ok(name)
    }

    /// Parses a name that may refer to an existing alias, including the reserved prefix.
    pub fn parse_existing(s: &str) -> Result<Self, AliasNameError> {
        let ok = !s.is_empty()
            && s.len() <= 256
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'/' | b'_' | b'-'));
        if !ok {
            return Err(AliasNameError::Pattern);
        }
        match s.strip_prefix("alias/") {
            Some(rest) if !rest.is_empty() => Ok(AliasName(s.to_owned())),
            _ => Err(AliasNameError::Prefix),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn arn(&self, region: &Region, account: &AccountId) -> String {
        format!("arn:{PARTITION}:kms:{region}:{account}:{}", self.0)
    }
}
impl TryFrom<String> for AliasName {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        AliasName::parse_existing(&s).map_err(|_| format!("invalid alias name {s:?}"))
    }
}
impl From<AliasName> for String {
    fn from(a: AliasName) -> String {
        a.0
    }
}
impl fmt::Display for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
impl fmt::Debug for AliasName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AliasName({})", self.0)
    }
}

/// How a caller named a key in a request's `KeyId` (or similar) member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyReference {
    Id(KeyId),
    Arn(KeyArn),
    Alias(AliasName),
    AliasArn {
        region: Region,
        account: AccountId,
        name: AliasName,
    },
    /// An ARN whose service is kms but whose parts are not a key or alias we could hold.
    MalformedArn(String),
    /// Anything else: AWS answers `Invalid keyId '<value>'`.
    Invalid(String),
}

impl KeyReference {
    pub fn parse(s: &str) -> Self {
        if let Some(rest) = s.strip_prefix("arn:") {
            return Self::parse_arn(s, rest);
        }
        if s.starts_with("alias/") {
            return match AliasName::parse_existing(s) {
                Ok(name) => KeyReference::Alias(name),
                Err(_) => KeyReference::Invalid(s.to_owned()),
            };
        }
        match KeyId::parse(s) {
            Some(id) => KeyReference::Id(id),
            None => KeyReference::Invalid(s.to_owned()),
        }
    }

    fn parse_arn(whole: &str, rest: &str) -> Self {
        let malformed = || KeyReference::MalformedArn(whole.to_owned());
        let mut parts = rest.splitn(5, ':');
        let (Some(_partition), Some(service), Some(region), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return malformed();
        };
        let (Some(region), Some(account)) = (Region::parse(region), AccountId::parse(account))
        else {
            return malformed();
        };
        if service != "kms" {
            return malformed();
        }
        if let Some(id) = resource.strip_prefix("key/") {
            return match KeyId::parse(id) {
                Some(key_id) => KeyReference::Arn(KeyArn {
                    region,
                    account,
                    key_id,
                }),
                None => malformed(),
            };
        }
        match AliasName::parse_existing(resource) {
            Ok(name) => KeyReference::AliasArn {
                region,
                account,
                name,
            },
            Err(_) => malformed(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_ids_round_trip_through_text_and_bytes() {
        for mrk in [false, true] {
            let id = KeyId::generate(mrk).unwrap();
            let text = id.to_string();
            assert_eq!(KeyId::parse(&text), Some(id));
            assert_eq!(KeyId::from_bytes(&id.to_bytes()), Some(id));
            assert_eq!(text.starts_with("mrk-"), mrk);
            assert_eq!(text.len(), 36);
        }
    }

    #[test]
    fn malformed_key_ids_are_rejected() {
        for bad in [
            "fake-key-id",
            "134f2428cec14b25a1ae9048164dba47",
            "mrk-fake-key-id",
            "1234ABCD-12ab-34cd-56ef-1234567890ab",
            "1234abcd-12ab-34cd-56ef-1234567890abc",
            "",
        ] {
            assert_eq!(KeyId::parse(bad), None, "{bad}");
        }
        assert!(KeyId::parse("1234abcd-12ab-34cd-56ef-1234567890ab").is_some());
    }

    #[test]
    fn references_distinguish_ids_arns_and_aliases() {
        let id = "1234abcd-12ab-34cd-56ef-1234567890ab";
        assert!(matches!(KeyReference::parse(id), KeyReference::Id(_)));
        let arn = format!("arn:aws:kms:us-east-1:111122223333:key/{id}");
        match KeyReference::parse(&arn) {
            KeyReference::Arn(a) => assert_eq!(a.to_string(), arn),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            KeyReference::parse("alias/my-app"),
            KeyReference::Alias(_)
        ));
        assert!(matches!(
            KeyReference::parse("arn:aws:kms:eu-west-1:111122223333:alias/x"),
            KeyReference::AliasArn { .. }
        ));
        assert!(matches!(
            KeyReference::parse("arn:aws:s3:::bucket"),
            KeyReference::MalformedArn(_)
        ));
        assert!(matches!(
            KeyReference::parse("nonsense"),
            KeyReference::Invalid(_)
        ));
    }

    #[test]
    fn alias_rules_follow_aws() {
        assert!(AliasName::parse_new("alias/app_1/y-z").is_ok());
        assert_eq!(
            AliasName::parse_new("alias/my:alias"),
            Err(AliasNameError::Colon)
        );
        assert!(AliasName::parse_existing("alias/my:alias").is_ok());
        assert_eq!(
            AliasName::parse_new("alias/aws/ebs"),
            Err(AliasNameError::Reserved)
        );
        assert!(AliasName::parse_existing("alias/aws/ebs").is_ok());
        assert_eq!(AliasName::parse_new("app"), Err(AliasNameError::Prefix));
        assert_eq!(AliasName::parse_new("alias/"), Err(AliasNameError::Prefix));
        assert_eq!(
            AliasName::parse_new("alias/sp ace"),
            Err(AliasNameError::Pattern)
        );
        let long = format!("alias/{}", "a".repeat(251));
        assert_eq!(AliasName::parse_new(&long), Err(AliasNameError::Pattern));
    }
}
