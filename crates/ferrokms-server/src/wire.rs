//! Reading awsJson1_1 request members with the KMS model's types and constraints, and
//! writing blobs and timestamps the way AWS does.

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ferrokms_core::error::{null_violation, violation};
use ferrokms_core::key::Millis;
use ferrokms_core::tags::Tag;
use ferrokms_core::KmsError;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// The members of one request. Type errors stop reading at once (SerializationException);
/// constraint violations are collected and reported together by [`Input::finish`]
/// (ValidationException), as AWS does.
pub struct Input {
    members: Map<String, Value>,
    violations: Vec<String>,
}

/// The lowerCamel name AWS uses for a member in validation messages.
fn camel(member: &str) -> String {
    let mut chars = member.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn type_error(expected: &str, got: &Value) -> ApiError {
    let found = match got {
        Value::Object(_) => return ApiError::unexpected_structure(),
        Value::Array(_) => return ApiError::unexpected_list(),
        Value::String(_) => "STRING_VALUE",
        Value::Number(_) => "NUMBER_VALUE",
        Value::Bool(_) => "BOOLEAN_VALUE",
        Value::Null => "NULL_VALUE",
    };
    ApiError::cannot_convert(found, expected)
}

fn as_str(v: &Value) -> Result<&str, ApiError> {
    v.as_str().ok_or_else(|| type_error("a String", v))
}

impl Input {
    pub fn parse(body: &[u8]) -> Result<Self, ApiError> {
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(Self::from_map(Map::new()));
        }
        match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(members)) => Ok(Self::from_map(members)),
            Ok(other) => Err(type_error("a structure", &other)),
            Err(_) => Err(ApiError::body_not_json()),
        }
    }

    /// The members not read yet.
    pub fn members(&self) -> &Map<String, Value> {
        &self.members
    }

    fn from_map(members: Map<String, Value>) -> Self {
        Input {
            members,
            violations: Vec::new(),
        }
    }

    /// A member's value; JSON null counts as absent, as it does for AWS.
    fn take(&mut self, member: &str) -> Option<Value> {
        self.members.remove(member).filter(|v| !v.is_null())
    }

    fn violate(&mut self, value: Option<&str>, member: &str, constraint: String) {
        self.violations
            .push(violation(value, camel(member), constraint));
    }

    fn missing(&mut self, member: &str) {
        self.violations.push(null_violation(camel(member)));
    }

    fn check_length(
        &mut self,
        shown: Option<&str>,
        path: &str,
        len: usize,
        min: usize,
        max: usize,
    ) {
        if len < min {
            self.violate(
                shown,
                path,
                format!("Member must have length greater than or equal to {min}"),
            );
        } else if len > max {
            self.violate(
                shown,
                path,
                format!("Member must have length less than or equal to {max}"),
            );
        }
    }

    pub fn string(
        &mut self,
        member: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<String>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        let s = as_str(&v)?.to_owned();
        self.check_length(Some(&s), member, s.chars().count(), min, max);
        Ok(Some(s))
    }

    /// Makes a member required: when absent the violation is recorded and a default stands
    /// in, which [`Input::finish`] guarantees no handler ever sees.
    pub fn required<T: Default>(&mut self, member: &str, value: Option<T>) -> T {
        if value.is_none() {
            self.missing(member);
        }
        value.unwrap_or_default()
    }

    /// A sensitive string (a password): its value never appears in a message.
    pub fn secret_string(
        &mut self,
        member: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<zeroize::Zeroizing<String>>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        let s = zeroize::Zeroizing::new(as_str(&v)?.to_owned());
        self.check_length(None, member, s.chars().count(), min, max);
        Ok(Some(s))
    }

    /// Records that `value` of `member` does not match the model's `pattern`.
    pub fn pattern_violated(&mut self, member: &str, value: &str, pattern: &str) {
        self.violate(
            Some(value),
            member,
            format!("Member must satisfy regular expression pattern: {pattern}"),
        );
    }

    pub fn required_string(
        &mut self,
        member: &str,
        min: usize,
        max: usize,
    ) -> Result<String, ApiError> {
        let s = self.string(member, min, max)?;
        Ok(self.required(member, s))
    }

    /// A base64 blob. Blob values never appear in messages: they may be secrets.
    pub fn blob(
        &mut self,
        member: &str,
        min: usize,
        max: usize,
    ) -> Result<Option<Vec<u8>>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        let text = as_str(&v)?;
        let bytes = BASE64
            .decode(text)
            .map_err(|_| ApiError::invalid_base64(camel(member)))?;
        self.check_length(None, member, bytes.len(), min, max);
        Ok(Some(bytes))
    }

    pub fn required_blob(
        &mut self,
        member: &str,
        min: usize,
        max: usize,
    ) -> Result<Vec<u8>, ApiError> {
        let b = self.blob(member, min, max)?;
        Ok(self.required(member, b))
    }

    pub fn integer(&mut self, member: &str, min: i64, max: i64) -> Result<Option<i64>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        let n = v.as_i64().ok_or_else(|| type_error("an Integer", &v))?;
        let shown = n.to_string();
        if n < min {
            self.violate(
                Some(&shown),
                member,
                format!("Member must have value greater than or equal to {min}"),
            );
        } else if n > max {
            self.violate(
                Some(&shown),
                member,
                format!("Member must have value less than or equal to {max}"),
            );
        }
        Ok(Some(n))
    }

    /// A timestamp: epoch seconds, possibly fractional; returned in milliseconds.
    pub fn timestamp(&mut self, member: &str) -> Result<Option<Millis>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        let seconds = v.as_f64().ok_or_else(|| type_error("a Timestamp", &v))?;
        Ok(Some((seconds * 1000.0).round() as Millis))
    }

    pub fn boolean(&mut self, member: &str) -> Result<Option<bool>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        v.as_bool()
            .map(Some)
            .ok_or_else(|| type_error("a Boolean", &v))
    }

    /// A member of a model enum: an unknown value is a validation error naming the set.
    pub fn enumeration<T>(
        &mut self,
        member: &str,
        parse: fn(&str) -> Option<T>,
        all: &[&str],
    ) -> Result<Option<T>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        let s = as_str(&v)?;
        match parse(s) {
            Some(t) => Ok(Some(t)),
            None => {
                let s = s.to_owned();
                self.violate(
                    Some(&s),
                    member,
                    format!("Member must satisfy enum value set: [{}]", all.join(", ")),
                );
                Ok(None)
            }
        }
    }

    /// A member's raw JSON, for structures read by hand.
    pub fn raw(&mut self, member: &str) -> Option<Value> {
        self.take(member)
    }

    /// Whether a member is present (not null), without reading it.
    pub fn present(&mut self, member: &str) -> bool {
        self.take(member).is_some()
    }

    /// A required enum member. `placeholder` stands in when it is absent or invalid; the
    /// violation recorded for that makes [`Input::finish`] fail, so no handler sees it.
    pub fn required_enumeration<T>(
        &mut self,
        member: &str,
        parse: fn(&str) -> Option<T>,
        all: &[&str],
        placeholder: T,
    ) -> Result<T, ApiError> {
        if self.members.get(member).is_none_or(|v| v.is_null()) {
            self.missing(member);
            return Ok(placeholder);
        }
        Ok(self.enumeration(member, parse, all)?.unwrap_or(placeholder))
    }

    /// A string-to-string map such as EncryptionContext.
    pub fn string_map(
        &mut self,
        member: &str,
    ) -> Result<Option<BTreeMap<String, String>>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        let Value::Object(entries) = v else {
            return Err(type_error("a Map", &v));
        };
        let mut out = BTreeMap::new();
        for (k, v) in entries {
            let v = as_str(&v)?;
            out.insert(k, v.to_owned());
        }
        Ok(Some(out))
    }

    fn list(&mut self, member: &str) -> Result<Option<Vec<Value>>, ApiError> {
        let Some(v) = self.take(member) else {
            return Ok(None);
        };
        match v {
            Value::Array(items) => Ok(Some(items)),
            other => Err(type_error("a List", &other)),
        }
    }

    /// A list of strings, each `item_min..=item_max` long, at most `max_items` of them.
    pub fn string_list(
        &mut self,
        member: &str,
        item_min: usize,
        item_max: usize,
        max_items: usize,
    ) -> Result<Option<Vec<String>>, ApiError> {
        let Some(items) = self.list(member)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(items.len());
        for item in &items {
            let s = as_str(item)?.to_owned();
            let len = s.chars().count();
            if len < item_min || len > item_max {
                let path = format!("{}.member", camel(member));
                self.check_length(Some(&s), &path, len, item_min, item_max);
            }
            out.push(s);
        }
        if out.len() > max_items {
            self.violate(
                None,
                member,
                format!("Member must have length less than or equal to {max_items}"),
            );
        }
        Ok(Some(out))
    }

    /// A list of `{TagKey, TagValue}`; violations name `tags.N.member.tagKey` (1-based).
    pub fn tags(&mut self, member: &str) -> Result<Option<Vec<Tag>>, ApiError> {
        let Some(items) = self.list(member)? else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let Value::Object(fields) = item else {
                return Err(type_error("a structure", item));
            };
            let prefix = format!("{}.{}.member", camel(member), i + 1);
            let text = |name: &str| -> Result<Option<String>, ApiError> {
                match fields.get(name).filter(|v| !v.is_null()) {
                    None => Ok(None),
                    Some(v) => Ok(Some(as_str(v)?.to_owned())),
                }
            };
            let key = text("TagKey")?;
            let value = text("TagValue")?;
            match &key {
                None => self.missing(&format!("{prefix}.tagKey")),
                Some(k) => self.check_length(
                    Some(k),
                    &format!("{prefix}.tagKey"),
                    k.chars().count(),
                    1,
                    128,
                ),
            }
            match &value {
                None => self.missing(&format!("{prefix}.tagValue")),
                Some(v) => self.check_length(
                    Some(v),
                    &format!("{prefix}.tagValue"),
                    v.chars().count(),
                    0,
                    256,
                ),
            }
            out.push(Tag {
                key: key.unwrap_or_default(),
                value: value.unwrap_or_default(),
            });
        }
        Ok(Some(out))
    }

    /// Reports every constraint violation found so far, in AWS's words.
    pub fn finish(&mut self) -> Result<(), ApiError> {
        if self.violations.is_empty() {
            Ok(())
        } else {
            Err(KmsError::validation_errors(&self.violations).into())
        }
    }
}

pub fn blob(bytes: &[u8]) -> Value {
    Value::String(BASE64.encode(bytes))
}

/// AWS timestamps are epoch seconds, fractional where there are milliseconds.
pub fn timestamp(ms: Millis) -> Value {
    if ms % 1000 == 0 {
        Value::from(ms / 1000)
    } else {
        Value::from(ms as f64 / 1000.0)
    }
}

/// Pagination markers are opaque to callers: the sort key of the last item, base64url.
pub fn encode_marker(sort_key: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sort_key)
}

pub fn decode_marker(marker: Option<&str>) -> Result<Option<String>, KmsError> {
    let Some(marker) = marker else {
        return Ok(None);
    };
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(marker)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .map(Some)
        .ok_or_else(KmsError::invalid_marker)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(json: &str) -> Input {
        Input::parse(json.as_bytes()).unwrap()
    }

    fn validation_message(mut i: Input) -> String {
        match i.finish() {
            Err(ApiError::Kms(KmsError::Validation(m))) => m,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn missing_and_out_of_range_members_read_like_aws() {
        let mut i = input(r#"{"NumberOfBytes": 0}"#);
        i.integer("NumberOfBytes", 1, 1024).unwrap();
        assert_eq!(
            validation_message(i),
            "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"
        );
        let mut i = input("{}");
        i.required_string("KeyId", 1, 2048).unwrap();
        i.required_blob("Plaintext", 1, 4096).unwrap();
        assert_eq!(
            validation_message(i),
            "2 validation errors detected: Value null at 'keyId' failed to satisfy constraint: Member must not be null; Value null at 'plaintext' failed to satisfy constraint: Member must not be null"
        );
    }

    #[test]
    fn blobs_are_never_echoed() {
        let big = BASE64.encode(vec![0u8; 4097]);
        let mut i = input(&format!(r#"{{"Plaintext": "{big}"}}"#));
        i.blob("Plaintext", 1, 4096).unwrap();
        assert_eq!(
            validation_message(i),
            "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
        );
    }

    #[test]
    fn enums_and_tags_name_their_paths() {
        let mut i = input(
            r#"{"KeySpec": "HMAC_random", "Tags": [{"TagKey": "k", "TagValue": "v"}, {"TagKey": ""}]}"#,
        );
        i.enumeration("KeySpec", |s| (s == "A").then_some(()), &["A", "B"])
            .unwrap();
        i.tags("Tags").unwrap();
        let m = validation_message(i);
        assert!(m.starts_with("3 validation errors detected: Value 'HMAC_random' at 'keySpec' failed to satisfy constraint: Member must satisfy enum value set: [A, B]; "), "{m}");
        assert!(m.contains("Value '' at 'tags.2.member.tagKey' failed to satisfy constraint: Member must have length greater than or equal to 1"), "{m}");
        assert!(m.contains("Value null at 'tags.2.member.tagValue'"), "{m}");
    }

    #[test]
    fn wrong_types_are_serialization_errors() {
        let mut i = input(r#"{"NumberOfBytes": "12"}"#);
        assert!(matches!(
            i.integer("NumberOfBytes", 1, 1024),
            Err(ApiError::Serialization(m)) if m == "STRING_VALUE can not be converted to an Integer"
        ));
        assert!(matches!(
            Input::parse(b"{not json"),
            Err(ApiError::Serialization(_))
        ));
        assert!(matches!(
            Input::parse(b"[1]"),
            Err(ApiError::Serialization(_))
        ));
        let mut i = input(r#"{"Plaintext": "***"}"#);
        assert!(matches!(
            i.blob("Plaintext", 1, 10),
            Err(ApiError::Serialization(_))
        ));
    }

    #[test]
    fn markers_round_trip_and_garbage_is_rejected() {
        let m = encode_marker("alias/x");
        assert_eq!(decode_marker(Some(&m)).unwrap().as_deref(), Some("alias/x"));
        assert!(decode_marker(Some("!!!")).is_err());
    }
}
