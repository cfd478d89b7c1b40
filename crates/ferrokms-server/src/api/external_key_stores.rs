//! What is particular to EXTERNAL_KEY_STORE custom key stores: their members and how they
//! are checked, and how the failures of their proxy read as AWS's errors, which differ by
//! operation (the XKS specification's table).

use ferrokms_core::KmsError;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::Call;
use crate::error::ApiError;
use crate::wire::Input;
use crate::xks::client::{XksEndpoint, XksFailure};
use crate::xks::wire::{ProxyError, RequestMetadata};

pub(super) const CONNECTIVITIES: &[&str] = &["PUBLIC_ENDPOINT", "VPC_ENDPOINT_SERVICE"];
const URI_PATH_PATTERN: &str = r"^(/[a-zA-Z0-9\/_-]+/kms/xks/v\d{1,2})$|^(/kms/xks/v\d{1,2})$";

/// Where a store's proxy is (the secret half of its credential is kept wrapped beside).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(super) struct XksSettings {
    pub uri_endpoint: String,
    pub uri_path: String,
    pub connectivity: String,
    pub access_key_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_service_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vpc_endpoint_service_owner: Option<String>,
}

impl XksSettings {
    pub fn configuration(&self) -> Value {
        let mut c = json!({
            "Connectivity": self.connectivity,
            "AccessKeyId": self.access_key_id,
            "UriEndpoint": self.uri_endpoint,
            "UriPath": self.uri_path,
        });
        if let Some(name) = &self.vpc_endpoint_service_name {
            c["VpcEndpointServiceName"] = json!(name);
        }
        if let Some(owner) = &self.vpc_endpoint_service_owner {
            c["VpcEndpointServiceOwner"] = json!(owner);
        }
        c
    }

    pub fn endpoint(&self, secret: Zeroizing<String>) -> XksEndpoint {
        XksEndpoint {
            uri_endpoint: self.uri_endpoint.clone(),
            uri_path: self.uri_path.clone(),
            access_key_id: self.access_key_id.clone(),
            secret,
        }
    }
}

/// The XksProxy* members of a Create or Update request, each checked as the model says.
#[derive(Default)]
pub(super) struct XksMembers {
    pub uri_endpoint: Option<String>,
    pub uri_path: Option<String>,
    pub vpc_endpoint_service_name: Option<String>,
    pub vpc_endpoint_service_owner: Option<String>,
    pub credential: Option<(String, Zeroizing<String>)>,
    pub connectivity: Option<String>,
}

impl XksMembers {
    pub fn any(&self) -> bool {
        self.uri_endpoint.is_some()
            || self.uri_path.is_some()
            || self.vpc_endpoint_service_name.is_some()
            || self.vpc_endpoint_service_owner.is_some()
            || self.credential.is_some()
            || self.connectivity.is_some()
    }
}

fn valid_uri_path(path: &str) -> bool {
    let Some(at) = path.rfind("/kms/xks/v") else {
        return false;
    };
    let version = &path[at + "/kms/xks/v".len()..];
    let prefix = &path[..at];
    (1..=2).contains(&version.len())
        && version.bytes().all(|b| b.is_ascii_digit())
        && (prefix.is_empty()
            || (prefix.starts_with('/')
                && prefix.len() > 1
                && prefix
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"/_-".contains(&b))))
}

/// Reads the XksProxy* members; their values are checked before anything else is done.
pub(super) fn read_members(input: &mut Input) -> Result<XksMembers, ApiError> {
    let uri_endpoint = input.string("XksProxyUriEndpoint", 10, 128)?;
    if let Some(e) = &uri_endpoint {
        let host = e.strip_prefix("https://").unwrap_or_default();
        if host.is_empty()
            || !host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-')
        {
            input.pattern_violated("XksProxyUriEndpoint", e, "^https://[a-zA-Z0-9.-]+$");
        }
    }
    let uri_path = input.string("XksProxyUriPath", 10, 128)?;
    if let Some(p) = &uri_path {
        if !valid_uri_path(p) {
            input.pattern_violated("XksProxyUriPath", p, URI_PATH_PATTERN);
        }
    }
    let vpc_endpoint_service_name = input.string("XksProxyVpcEndpointServiceName", 20, 64)?;
    let vpc_endpoint_service_owner = input.string("XksProxyVpcEndpointServiceOwner", 12, 12)?;
    if let Some(o) = &vpc_endpoint_service_owner {
        if !o.bytes().all(|b| b.is_ascii_digit()) {
            input.pattern_violated("XksProxyVpcEndpointServiceOwner", o, "[0-9]{12}");
        }
    }
    let connectivity = input
        .enumeration(
            "XksProxyConnectivity",
            |s| CONNECTIVITIES.iter().copied().find(|c| *c == s),
            CONNECTIVITIES,
        )?
        .map(str::to_owned);
    let credential = match input.raw("XksProxyAuthenticationCredential") {
        None => None,
        Some(v) => Some(read_credential(&v)?),
    };
    Ok(XksMembers {
        uri_endpoint,
        uri_path,
        vpc_endpoint_service_name,
        vpc_endpoint_service_owner,
        credential,
        connectivity,
    })
}

/// `{AccessKeyId, RawSecretAccessKey}`, both required; neither is ever shown in a message.
fn read_credential(v: &Value) -> Result<(String, Zeroizing<String>), ApiError> {
    let member = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_owned);
    let access = member("AccessKeyId")
        .ok_or_else(|| ApiError::from(KmsError::xks_access_key_id_missing()))?;
    let secret = Zeroizing::new(
        member("RawSecretAccessKey")
            .ok_or_else(|| ApiError::from(KmsError::xks_secret_access_key_missing()))?,
    );
    if !(20..=30).contains(&access.len())
        || !access
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
    {
        return Err(KmsError::xks_access_key_id_invalid().into());
    }
    if !(43..=64).contains(&secret.len())
        || !secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/+=".contains(&b))
    {
        return Err(KmsError::xks_secret_access_key_invalid().into());
    }
    Ok((access, secret))
}

/// The metadata of a request to a proxy on behalf of `call`.
pub(super) fn request_metadata(
    call: &Call<'_>,
    key_arn: Option<String>,
    operation: &str,
) -> RequestMetadata {
    RequestMetadata {
        aws_principal_arn: Some(call.request.principal().arn().to_owned()),
        kms_key_arn: key_arn,
        kms_operation: operation.to_owned(),
        kms_request_id: uuid::Uuid::new_v4().to_string(),
        kms_via_service: None,
    }
}

const CANNOT_INTERPRET: &str = "AWS KMS cannot interpret the response from the external key store proxy. If you see this error repeatedly, report it to your external key store proxy administrator.";
const NOT_AUTHENTICATED: &str = "The external key store proxy rejected the request because it could not authenticate AWS KMS. Verify the XKS proxy authentication credentials for your external key store and update if necessary.";
const BAD_URI_PATH: &str = "The external key store proxy rejected the request because of an invalid URI path. Verify the URI path for your external key store and update if necessary.";
const UNREACHABLE: &str = "AWS KMS cannot communicate with the external key store proxy. This might be a transient network issue. If you see this error repeatedly, verify that your external key store proxy is active and is connected to the network, and that its endpoint URI is correct in your external keystore.";
const NO_TLS: &str = "AWS KMS cannot establish a TLS connection to the external key store proxy. Verify the TLS configuration, including its certificate.";
const TIMED_OUT: &str = "AWS KMS rejected the request because the external key store proxy did not respond in time. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.";
const THROTTLED: &str = "The external key store proxy rejected the request due to a very high request rate. Reduce the frequency of your calls using KMS keys in this external key store.";
const NO_EKM: &str = "The external key store proxy rejected the request because it cannot communicate with the external key manager. Verify that the external key store proxy configuration is correct and that the external key manager is available.";
const DEPENDENCY_TIMEOUT: &str = "The external key store proxy did not respond to the request in the time allotted. Retry the request. If you see this error repeatedly, report it to your external key store proxy administrator.";
const KEY_DISABLED: &str = "The external key associated with this KMS key in an external key store is not enabled in the external key manager. Enable the external key in the external key manager and retry the request.";
const KEY_NOT_FOUND: &str = "The external key associated with this KMS key in an external key store was not found in its external key manager. If the external key ID associated with this KMS key is incorrect, create a new KMS key with the correct external key ID.";
const KEY_USAGE: &str = "The external key associated with this KMS key in an external key store does not support the requested operation. Enable the operation on the key in your external key manager, and try the request again.";
const ACCESS_DENIED: &str = "The external key store proxy denied access to the operation. Verify that the user and the external key are both authorized for this operation, and try the request again.";
const BAD_CIPHERTEXT: &str = "The external key store proxy rejected the request because the specified ciphertext or encryption context is corrupted, missing, or otherwise invalid.";
const UNSUPPORTED: &str = "The external key store proxy rejected the request because it does not support the requested operation. If you see this error repeatedly, report it to your external key store proxy administrator.";

/// The specification's message for each failure.
fn message(f: &XksFailure) -> &'static str {
    match f {
        XksFailure::Proxy(e) => match e {
            ProxyError::Validation => CANNOT_INTERPRET,
            ProxyError::InvalidState => KEY_DISABLED,
            ProxyError::InvalidCiphertext => BAD_CIPHERTEXT,
            ProxyError::InvalidKeyUsage => KEY_USAGE,
            ProxyError::AuthenticationFailed => NOT_AUTHENTICATED,
            ProxyError::AccessDenied => ACCESS_DENIED,
            ProxyError::KeyNotFound => KEY_NOT_FOUND,
            ProxyError::InvalidUriPath => BAD_URI_PATH,
            ProxyError::Throttling => THROTTLED,
            ProxyError::UnsupportedOperation => UNSUPPORTED,
            ProxyError::DependencyTimeout => DEPENDENCY_TIMEOUT,
            ProxyError::Internal => NO_EKM,
        },
        XksFailure::Unreachable(_) => UNREACHABLE,
        XksFailure::Tls(_) => NO_TLS,
        XksFailure::TimedOut => TIMED_OUT,
        XksFailure::InvalidResponse(_) => CANNOT_INTERPRET,
    }
}

/// A failure during CreateCustomKeyStore or UpdateCustomKeyStore.
pub(super) fn management_failure(f: &XksFailure) -> ApiError {
    let m = message(f).to_owned();
    match f {
        XksFailure::Proxy(ProxyError::AuthenticationFailed) => {
            KmsError::XksProxyIncorrectAuthenticationCredential(m)
        }
        XksFailure::Proxy(ProxyError::InvalidUriPath) => KmsError::XksProxyInvalidConfiguration(m),
        XksFailure::Proxy(
            ProxyError::Validation | ProxyError::Internal | ProxyError::UnsupportedOperation,
        )
        | XksFailure::InvalidResponse(_) => KmsError::XksProxyInvalidResponse(m),
        _ => KmsError::XksProxyUriUnreachable(m),
    }
    .into()
}

/// A failure during CreateKey (GetKeyMetadata).
pub(super) fn create_key_failure(f: &XksFailure) -> ApiError {
    let m = message(f).to_owned();
    match f {
        XksFailure::Proxy(ProxyError::KeyNotFound) => KmsError::XksKeyNotFound(m),
        XksFailure::Proxy(ProxyError::InvalidState | ProxyError::InvalidKeyUsage) => {
            KmsError::XksKeyInvalidConfiguration(m)
        }
        XksFailure::Proxy(ProxyError::AccessDenied) => KmsError::InvalidState(m),
        _ => KmsError::CustomKeyStoreInvalidState(m),
    }
    .into()
}

/// A failure during a cryptographic operation: always KMSInvalidStateException.
pub(super) fn crypto_failure(f: &XksFailure) -> ApiError {
    KmsError::InvalidState(message(f).to_owned()).into()
}

/// The ConnectionErrorCode of a failed connection.
pub(super) fn connection_error_code(f: &XksFailure) -> &'static str {
    match f {
        XksFailure::Proxy(ProxyError::AuthenticationFailed) => "INVALID_CREDENTIALS",
        XksFailure::Proxy(ProxyError::AccessDenied) => "XKS_PROXY_ACCESS_DENIED",
        XksFailure::Proxy(ProxyError::InvalidUriPath) => "XKS_PROXY_INVALID_CONFIGURATION",
        XksFailure::Proxy(ProxyError::DependencyTimeout) | XksFailure::TimedOut => {
            "XKS_PROXY_TIMED_OUT"
        }
        XksFailure::Tls(_) => "XKS_PROXY_INVALID_TLS_CONFIGURATION",
        XksFailure::Unreachable(_) | XksFailure::Proxy(ProxyError::Throttling) => {
            "XKS_PROXY_NOT_REACHABLE"
        }
        _ => "XKS_PROXY_INVALID_RESPONSE",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_follow_the_model_pattern() {
        for ok in ["/kms/xks/v1", "/a/kms/xks/v1", "/x_y-z/1/kms/xks/v12"] {
            assert!(valid_uri_path(ok), "{ok}");
        }
        for bad in [
            "kms/xks/v1",
            "/kms/xks/v",
            "/kms/xks/v123",
            "/a b/kms/xks/v1",
            "//kms/xks/v1x",
        ] {
            assert!(!valid_uri_path(bad), "{bad}");
        }
    }
}
