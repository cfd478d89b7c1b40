//! Parsing the SigV4 `Authorization` header and request date.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::ApiError;

pub const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, Clone)]
pub struct AuthorizationHeader {
    pub access_key_id: String,
    pub scope_date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
    pub signature: String,
}

impl AuthorizationHeader {
    /// `has_date` tells whether the request carries `X-Amz-Date` or `Date`: AWS lists its
    /// absence among the missing parts of an incomplete signature.
    pub fn parse(raw: &str, has_date: bool) -> Result<Self, ApiError> {
        let rest = raw
            .strip_prefix(ALGORITHM)
            .ok_or_else(|| ApiError::unsupported_authorization(raw))?;
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let part = part.trim();
            if part.is_empty() {
                continue;
            }
            let Some((k, v)) = part.split_once('=') else {
                return Err(ApiError::authorization_pair_without_equals(part, raw));
            };
            match k.trim() {
                "Credential" => credential = Some(v.trim()),
                "SignedHeaders" => signed_headers = Some(v.trim()),
                "Signature" => signature = Some(v.trim()),
                _ => {}
            }
        }
        let mut missing = Vec::new();
        if credential.is_none() {
            missing.push("Authorization header requires 'Credential' parameter.");
        }
        if signature.is_none() {
            missing.push("Authorization header requires 'Signature' parameter.");
        }
        if signed_headers.is_none() {
            missing.push("Authorization header requires 'SignedHeaders' parameter.");
        }
        if !has_date {
            missing.push(
                "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
            );
        }
        let (Some(credential), Some(signed_headers), Some(signature), true) =
            (credential, signed_headers, signature, missing.is_empty())
        else {
            return Err(ApiError::authorization_incomplete(&missing, raw));
        };
        let scope: Vec<&str> = credential.split('/').collect();
        let [access_key_id, date, region, service, terminator] = scope[..] else {
            return Err(ApiError::credential_scope_malformed(credential));
        };
        if terminator != "aws4_request" {
            return Err(ApiError::credential_terminator_invalid(terminator));
        }
        let signed_headers: Vec<String> = signed_headers
            .split(';')
            .map(str::to_ascii_lowercase)
            .collect();
        // `host` itself: over HTTP/2 its value is the request's authority, which is then
        // what is signed; a `:authority` entry would sign nothing.
        if !signed_headers.iter().any(|h| h == "host") {
            return Err(ApiError::host_not_signed());
        }
        Ok(AuthorizationHeader {
            access_key_id: access_key_id.to_owned(),
            scope_date: date.to_owned(),
            region: region.to_owned(),
            service: service.to_owned(),
            signed_headers,
            signature: signature.to_owned(),
        })
    }
}

/// Parses an ISO 8601 basic timestamp, `YYYYMMDDTHHMMSSZ`.
pub fn parse_amz_date(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = s.get(r)?;
        part.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits(4..6)?).ok()?).ok()?;
    let day = u8::try_from(digits(6..8)?).ok()?;
    let date = time::Date::from_calendar_date(year, month, day).ok()?;
    let t = time::Time::from_hms(
        u8::try_from(digits(9..11)?).ok()?,
        u8::try_from(digits(11..13)?).ok()?,
        u8::try_from(digits(13..15)?).ok()?,
    )
    .ok()?;
    let secs = time::PrimitiveDateTime::new(date, t)
        .assume_utc()
        .unix_timestamp();
    Some(UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

pub fn format_amz_date(t: SystemTime) -> String {
    let secs = t
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let dt = time::OffsetDateTime::from_unix_timestamp(i64::try_from(secs).unwrap_or(0))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        dt.year(),
        u8::from(dt.month()),
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_well_formed_header() {
        let h = AuthorizationHeader::parse(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws4_request, SignedHeaders=Host;x-amz-date, Signature=abc",
            true,
        )
        .unwrap();
        assert_eq!(
            (
                h.access_key_id.as_str(),
                h.region.as_str(),
                h.service.as_str()
            ),
            ("AKID", "us-east-1", "kms")
        );
        assert_eq!(h.signed_headers, ["host", "x-amz-date"]);
    }

    #[test]
    fn lists_every_missing_part_like_aws() {
        let raw = "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws4_request";
        match AuthorizationHeader::parse(raw, false) {
            Err(ApiError::IncompleteSignature(m)) => assert_eq!(
                m,
                format!("Authorization header requires 'Signature' parameter. Authorization header requires 'SignedHeaders' parameter. Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header. Authorization={raw}")
            ),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn amz_dates_round_trip() {
        let t = parse_amz_date("20150830T123600Z").unwrap();
        assert_eq!(format_amz_date(t), "20150830T123600Z");
        assert!(parse_amz_date("20151330T123600Z").is_none());
        assert!(parse_amz_date("2015-08-30T12:36:00Z").is_none());
    }
}
