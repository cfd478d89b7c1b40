//! ferrokms as the client of an AWS-style API (an XKS proxy; a ferrokms node, for the
//! Kubernetes plugin): SigV4 signing of a request with the verifier's own canonical form,
//! and the TLS settings such a client trusts servers with.

use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

use axum::http::{HeaderMap, HeaderName, HeaderValue, Method};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

use crate::sigv4::canonical::{canonical_request, signature, string_to_sign, RequestParts};
use crate::sigv4::header::{format_amz_date, AuthorizationHeader, ALGORITHM};
use crate::ServerError;

/// Where the node is: `http://host:port` or `https://host[:port]`, without a path.
#[derive(Clone, Debug)]
pub struct Endpoint {
    tls: bool,
    /// As the `Host` header and the signature carry it.
    authority: String,
    /// The name the certificate must have (without brackets or port).
    host: String,
    /// Where to connect.
    address: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Endpoint, String> {
        let (tls, rest) = if let Some(rest) = url.strip_prefix("https://") {
            (true, rest)
        } else if let Some(rest) = url.strip_prefix("http://") {
            (false, rest)
        } else {
            return Err(format!(
                "{url}: the endpoint must start with https:// or http://"
            ));
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "{url}: the endpoint is a scheme and a host[:port], no path"
            ));
        }
        let bad_port = |p: &str| format!("{url}: bad port {p:?}");
        let (host, port) = if let Some(after) = authority.strip_prefix('[') {
            let (inside, rest) = after
                .split_once(']')
                .ok_or_else(|| format!("{url}: unclosed ["))?;
            let port = match rest.strip_prefix(':') {
                Some(p) => Some(p.parse::<u16>().map_err(|_| bad_port(p))?),
                None if rest.is_empty() => None,
                None => return Err(bad_port(rest)),
            };
            (format!("[{inside}]"), port)
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (
                    h.to_owned(),
                    Some(p.parse::<u16>().map_err(|_| bad_port(p))?),
                ),
                None => (authority.to_owned(), None),
            }
        };
        let port = port.unwrap_or(if tls { 443 } else { 80 });
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        if bare.is_empty() {
            return Err(format!("{url}: no host"));
        }
        Ok(Endpoint {
            tls,
            authority: authority.to_owned(),
            host: bare.to_owned(),
            address: format!("{host}:{port}"),
        })
    }
}

impl Endpoint {
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// `host[:port]`, as the `Host` header and a signature carry it.
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// The name a certificate must have.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// `host:port` to connect to.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Plain HTTP to another machine: decrypted data keys would cross the network in the
    /// clear.
    pub fn is_plain_beyond_loopback(&self) -> bool {
        let loopback = self.host == "localhost"
            || self
                .host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        !self.tls && !loopback
    }
}

/// An access key pair to sign with.
pub struct SigningKey<'a> {
    pub access_key_id: &'a str,
    pub secret: &'a [u8],
}

/// One POST to sign: `headers` are the ones to sign besides `host` and `x-amz-date`
/// (lower-case names), e.g. `x-amz-target` or `x-amz-security-token`.
pub struct SignedPost<'a> {
    pub region: &'a str,
    pub service: &'a str,
    pub host: &'a str,
    pub path: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

/// The `X-Amz-Date` and `Authorization` values of `post` signed at `now`.
pub fn sign_post(
    key: &SigningKey<'_>,
    post: &SignedPost<'_>,
    now: SystemTime,
) -> Result<(String, String), String> {
    let amz_date = format_amz_date(now);
    let mut headers = HeaderMap::new();
    let mut put = |name: &str, value: &str| -> Result<(), String> {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| e.to_string())?;
        let value = HeaderValue::from_str(value).map_err(|e| e.to_string())?;
        headers.insert(name, value);
        Ok(())
    };
    put("host", post.host)?;
    put("x-amz-date", &amz_date)?;
    for (name, value) in post.headers {
        put(name, value)?;
    }
    let mut signed_headers: Vec<String> = headers.keys().map(|n| n.as_str().to_owned()).collect();
    signed_headers.sort();
    let scope_date = amz_date.get(..8).unwrap_or_default().to_owned();
    let auth = AuthorizationHeader {
        access_key_id: key.access_key_id.to_owned(),
        scope_date,
        region: post.region.to_owned(),
        service: post.service.to_owned(),
        signed_headers,
        signature: String::new(),
    };
    let request = RequestParts {
        method: &Method::POST,
        authority: None,
        path: post.path,
        query: None,
        headers: &headers,
        body: post.body,
    };
    let canonical = canonical_request(&request, &auth);
    let signed = signature(
        key.secret,
        &auth,
        &string_to_sign(&amz_date, &auth, &canonical),
    );
    let authorization = format!(
        "{ALGORITHM} Credential={}/{}/{}/{}/aws4_request, SignedHeaders={}, Signature={signed}",
        auth.access_key_id,
        auth.scope_date,
        auth.region,
        auth.service,
        auth.signed_headers.join(";"),
    );
    Ok((amz_date, authorization))
}

/// TLS for calling servers: the system's CAs and those of `ca_bundle` (PEM), TLS 1.2 and
/// 1.3 on aws-lc-rs.
pub fn tls_client_config(ca_bundle: Option<&Path>) -> Result<rustls::ClientConfig, ServerError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_bundle {
        let io = |e: String| ServerError::Config(format!("{}: {e}", path.display()));
        for cert in CertificateDer::pem_file_iter(path).map_err(|e| io(e.to_string()))? {
            roots
                .add(cert.map_err(|e| io(e.to_string()))?)
                .map_err(|e| io(e.to_string()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServerError::Config(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_a_scheme_and_an_authority() {
        let e = Endpoint::parse("http://127.0.0.1:8080").unwrap();
        assert_eq!((e.tls, e.address.as_str()), (false, "127.0.0.1:8080"));
        let e = Endpoint::parse("https://kms.example.com/").unwrap();
        assert_eq!(
            (
                e.tls,
                e.authority.as_str(),
                e.host.as_str(),
                e.address.as_str()
            ),
            (
                true,
                "kms.example.com",
                "kms.example.com",
                "kms.example.com:443"
            )
        );
        let e = Endpoint::parse("https://[::1]:8443").unwrap();
        assert_eq!((e.host.as_str(), e.address.as_str()), ("::1", "[::1]:8443"));
        for bad in [
            "kms.example.com",
            "ftp://x",
            "https://",
            "https://h/path",
            "http://h:port",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }
    use crate::sigv4::canonical::{canonical_request, signature, string_to_sign, RequestParts};

    /// What the verifier computes for the signed request is what the signer sent.
    #[test]
    fn a_signed_post_verifies_and_a_changed_body_does_not() {
        let key = SigningKey {
            access_key_id: "AKIDEXAMPLE",
            secret: b"wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        };
        let post = SignedPost {
            region: "eu-west-1",
            service: "kms",
            host: "kms.example:8443",
            path: "/",
            headers: &[("x-amz-target", "TrentService.Encrypt")],
            body: b"{}",
        };
        let (date, authorization) = sign_post(&key, &post, SystemTime::now()).unwrap();
        let parsed = AuthorizationHeader::parse(&authorization, true).unwrap();
        assert_eq!(
            parsed.signed_headers,
            ["host", "x-amz-date", "x-amz-target"]
        );
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("kms.example:8443"));
        headers.insert("x-amz-date", HeaderValue::from_str(&date).unwrap());
        headers.insert(
            "x-amz-target",
            HeaderValue::from_static("TrentService.Encrypt"),
        );
        let verify = |body: &[u8]| {
            let parts = RequestParts {
                method: &Method::POST,
                authority: None,
                path: "/",
                query: None,
                headers: &headers,
                body,
            };
            let canonical = canonical_request(&parts, &parsed);
            signature(
                key.secret,
                &parsed,
                &string_to_sign(&date, &parsed, &canonical),
            )
        };
        assert_eq!(verify(b"{}"), parsed.signature);
        assert_ne!(verify(b"{ }"), parsed.signature);
    }
}
