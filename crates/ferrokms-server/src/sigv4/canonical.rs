//! The SigV4 canonical request, string to sign and signature (HMAC-SHA256 from aws-lc-rs).

use aws_lc_rs::{digest, hmac};
use axum::http::{HeaderMap, Method};
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use super::header::{AuthorizationHeader, ALGORITHM};

/// Everything but RFC 3986 unreserved characters is encoded.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
const PATH_UNRESERVED: &AsciiSet = &UNRESERVED.remove(b'/');

pub fn hex(bytes: &[u8]) -> String {
    ferrokms_core::hex::encode(bytes)
}

pub fn sha256_hex(data: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, data).as_ref())
}

/// Non-S3 services normalise the path and encode it twice (each `%` becomes `%25`).
fn canonical_uri(path: &str) -> String {
    let mut segments: Vec<&str> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                segments.pop();
            }
            s => segments.push(s),
        }
    }
    let mut out = String::from("/");
    out.push_str(&segments.join("/"));
    if path.ends_with('/') && !segments.is_empty() {
        out.push('/');
    }
    utf8_percent_encode(&out, PATH_UNRESERVED).to_string()
}

fn canonical_query(query: Option<&str>) -> String {
    let Some(q) = query.filter(|q| !q.is_empty()) else {
        return String::new();
    };
    let enc = |s: &str| {
        let decoded = percent_decode_str(s).decode_utf8_lossy();
        utf8_percent_encode(&decoded, UNRESERVED).to_string()
    };
    let mut pairs: Vec<(String, String)> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => (enc(k), enc(v)),
            None => (enc(p), String::new()),
        })
        .collect();
    pairs.sort();
    pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// A header value as SigV4 signs it: the raw bytes, trimmed, with each run of spaces (and
/// tabs) made one space. Bytes, not text: two different values never sign alike, as they
/// would if invalid UTF-8 were replaced first.
fn canonical_header_value(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(v.len());
    for word in v
        .split(|b| *b == b' ' || *b == b'\t')
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(b' ');
        }
        out.extend_from_slice(word);
    }
    out
}

pub struct RequestParts<'a> {
    pub method: &'a Method,
    /// The request target's authority: HTTP/2 carries the host there (`:authority`), not
    /// in a `host` header, and SigV4 signs it as `host`.
    pub authority: Option<&'a str>,
    pub path: &'a str,
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The canonical request, as bytes.
pub fn canonical_request(req: &RequestParts<'_>, auth: &AuthorizationHeader) -> Vec<u8> {
    let mut out = Vec::with_capacity(512 + req.headers.len() * 64);
    let line = |out: &mut Vec<u8>, part: &[u8]| {
        out.extend_from_slice(part);
        out.push(b'\n');
    };
    line(&mut out, req.method.as_str().as_bytes());
    line(&mut out, canonical_uri(req.path).as_bytes());
    line(&mut out, canonical_query(req.query).as_bytes());
    for name in &auth.signed_headers {
        out.extend_from_slice(name.as_bytes());
        out.push(b':');
        let mut values = req.headers.get_all(name.as_str()).iter().peekable();
        match req.authority {
            Some(authority) if name == "host" && values.peek().is_none() => {
                out.extend_from_slice(authority.as_bytes());
            }
            _ => {
                for (i, v) in values.enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(&canonical_header_value(v.as_bytes()));
                }
            }
        }
        out.push(b'\n');
    }
    out.push(b'\n');
    line(&mut out, auth.signed_headers.join(";").as_bytes());
    out.extend_from_slice(sha256_hex(req.body).as_bytes());
    out
}

pub fn string_to_sign(amz_date: &str, auth: &AuthorizationHeader, canonical: &[u8]) -> String {
    format!(
        "{ALGORITHM}\n{amz_date}\n{}/{}/{}/aws4_request\n{}",
        auth.scope_date,
        auth.region,
        auth.service,
        sha256_hex(canonical)
    )
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
}

/// The hex signature for `string_to_sign` under the key derived from `secret` and the scope.
pub fn signature(secret: &[u8], auth: &AuthorizationHeader, string_to_sign: &str) -> String {
    let mut k_secret = b"AWS4".to_vec();
    k_secret.extend_from_slice(secret);
    let k_date = hmac_sha256(&k_secret, auth.scope_date.as_bytes());
    zeroize::Zeroize::zeroize(&mut k_secret);
    let k_region = hmac_sha256(k_date.as_ref(), auth.region.as_bytes());
    let k_service = hmac_sha256(k_region.as_ref(), auth.service.as_bytes());
    let k_signing = hmac_sha256(k_service.as_ref(), b"aws4_request");
    hex(hmac_sha256(k_signing.as_ref(), string_to_sign.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    /// Finding 11: one signature must not cover two different header values. Invalid UTF-8
    /// bytes that a lossy reading would turn into the same U+FFFD differ here.
    #[test]
    fn header_bytes_are_signed_as_they_are() {
        let auth = AuthorizationHeader::parse(
            "AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/kms/aws4_request, SignedHeaders=host;x-amz-date;x-custom, Signature=00",
            true,
        )
        .unwrap();
        let canonical = |custom: &[u8]| {
            let mut headers = HeaderMap::new();
            headers.insert("host", HeaderValue::from_static("example"));
            headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
            headers.insert("x-custom", HeaderValue::from_bytes(custom).unwrap());
            let req = RequestParts {
                method: &Method::POST,
                authority: None,
                path: "/",
                query: None,
                headers: &headers,
                body: b"",
            };
            canonical_request(&req, &auth)
        };
        assert_ne!(canonical(b"a\xff"), canonical(b"a\xfe"));
        assert!(canonical(b"a\xff")
            .windows(b"x-custom:a\xff\n".len())
            .any(|w| w == b"x-custom:a\xff\n"));
    }

    /// The `get-vanilla` case of AWS's published SigV4 test suite.
    #[test]
    fn matches_the_aws_test_suite_get_vanilla() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
        headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
        let auth = AuthorizationHeader::parse(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            true,
        )
        .unwrap();
        let req = RequestParts {
            method: &Method::GET,
            authority: None,
            path: "/",
            query: None,
            headers: &headers,
            body: b"",
        };
        let canonical = canonical_request(&req, &auth);
        assert_eq!(
            String::from_utf8(canonical.clone()).unwrap(),
            "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let sts = string_to_sign("20150830T123600Z", &auth, &canonical);
        assert_eq!(
            sts,
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\nbb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63"
        );
        assert_eq!(
            signature(b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", &auth, &sts),
            "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
        );
    }

    /// The `get-vanilla-query-order-key-case` and `get-space-normalized` ideas: sorted,
    /// re-encoded query parameters and collapsed header whitespace.
    #[test]
    fn canonicalises_query_and_header_values() {
        assert_eq!(
            canonical_query(Some("Param2=value2&Param1=value1")),
            "Param1=value1&Param2=value2"
        );
        assert_eq!(canonical_query(Some("a=%7e b")), "a=~%20b");
        assert_eq!(canonical_header_value(b"  a   b  "), b"a b");
        assert_eq!(canonical_header_value(b"a\tb"), b"a b");
        assert_eq!(canonical_uri("/example/../x/./y"), "/x/y");
        assert_eq!(canonical_uri("/a%20b"), "/a%2520b");
    }
}
