//! Every error a caller can see, mapped to the awsJson1_1 wire form in this one place.

use axum::http::StatusCode;
use ferrokms_core::KmsError;

/// An error on its way to the caller: a KMS domain error, or one raised by the protocol or
/// authentication layers before any operation ran.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Kms(#[from] KmsError),
    #[error("{0}")]
    Serialization(String),
    #[error("unknown operation")]
    UnknownOperation,
    #[error("Missing Authentication Token")]
    MissingAuthenticationToken,
    #[error("The security token included in the request is invalid.")]
    UnrecognizedClient,
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// An error of another AWS service answered here (CloudTrail's LookupEvents).
    #[error("{1}")]
    Service(&'static str, String),
    #[error("{0}")]
    InvalidSignature(String),
    #[error("{0}")]
    IncompleteSignature(String),
    #[error(
        "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
    )]
    Throttling,
    /// A body over the limit (the largest legal KMS request, with a margin). AWS's own front
    /// end answers such requests before KMS sees them; the name and status here are HTTP's.
    #[error("The request body is larger than {0} bytes.")]
    RequestTooLarge(usize),
    /// A body that did not arrive in time.
    #[error("The request body was not received within {0} seconds.")]
    RequestTimeout(u64),
}

impl ApiError {
    pub fn serialization(msg: impl Into<String>) -> Self {
        ApiError::Serialization(msg.into())
    }

    /// The `__type`, HTTP status and message the caller receives. AWS KMS answers every
    /// client error with 400, DryRunOperation included: recorded responses and SDK traces
    /// show 400 where the Smithy model lists 404, 409 or 412.
    pub fn wire(&self) -> (StatusCode, &'static str, Option<String>) {
        use KmsError as K;
        let bad = StatusCode::BAD_REQUEST;
        let msg = |m: &String| (!m.is_empty()).then(|| m.clone());
        match self {
            ApiError::Kms(e) => {
                let (status, code, m) = match e {
                    K::NotFound(m) => (bad, "NotFoundException", m),
                    K::Disabled(m) => (bad, "DisabledException", m),
                    K::InvalidState(m) => (bad, "KMSInvalidStateException", m),
                    K::AlreadyExists(m) => (bad, "AlreadyExistsException", m),
                    K::InvalidCiphertext(m) => (bad, "InvalidCiphertextException", m),
                    K::IncorrectKey(m) => (bad, "IncorrectKeyException", m),
                    K::InvalidAliasName(m) => (bad, "InvalidAliasNameException", m),
                    K::InvalidArn(m) => (bad, "InvalidArnException", m),
                    K::InvalidMarker(m) => (bad, "InvalidMarkerException", m),
                    K::InvalidKeyUsage(m) => (bad, "InvalidKeyUsageException", m),
                    K::LimitExceeded(m) => (bad, "LimitExceededException", m),
                    K::Tag(m) => (bad, "TagException", m),
                    K::MalformedPolicyDocument(m) => (bad, "MalformedPolicyDocumentException", m),
                    K::UnsupportedOperation(m) => (bad, "UnsupportedOperationException", m),
                    K::CustomKeyStoreNotFound(m) => (bad, "CustomKeyStoreNotFoundException", m),
                    K::CustomKeyStoreInvalidState(m) => {
                        (bad, "CustomKeyStoreInvalidStateException", m)
                    }
                    K::CustomKeyStoreNameInUse(m) => (bad, "CustomKeyStoreNameInUseException", m),
                    K::CustomKeyStoreHasCMKs(m) => (bad, "CustomKeyStoreHasCMKsException", m),
                    K::CloudHsmClusterNotFound(m) => (bad, "CloudHsmClusterNotFoundException", m),
                    K::CloudHsmClusterInUse(m) => (bad, "CloudHsmClusterInUseException", m),
                    K::CloudHsmClusterNotRelated(m) => {
                        (bad, "CloudHsmClusterNotRelatedException", m)
                    }
                    K::IncorrectTrustAnchor(m) => (bad, "IncorrectTrustAnchorException", m),
                    K::XksProxyUriInUse(m) => (bad, "XksProxyUriInUseException", m),
                    K::XksProxyUriUnreachable(m) => (bad, "XksProxyUriUnreachableException", m),
                    K::XksProxyIncorrectAuthenticationCredential(m) => {
                        (bad, "XksProxyIncorrectAuthenticationCredentialException", m)
                    }
                    K::XksProxyInvalidResponse(m) => (bad, "XksProxyInvalidResponseException", m),
                    K::XksProxyInvalidConfiguration(m) => {
                        (bad, "XksProxyInvalidConfigurationException", m)
                    }
                    K::XksKeyNotFound(m) => (bad, "XksKeyNotFoundException", m),
                    K::XksKeyInvalidConfiguration(m) => {
                        (bad, "XksKeyInvalidConfigurationException", m)
                    }
                    K::XksKeyAlreadyInUse(m) => (bad, "XksKeyAlreadyInUseException", m),
                    K::Validation(m) => (bad, "ValidationException", m),
                    K::AccessDenied(m) => (bad, "AccessDeniedException", m),
                    K::InvalidGrantToken(m) => (bad, "InvalidGrantTokenException", m),
                    K::InvalidImportToken(m) => (bad, "InvalidImportTokenException", m),
                    K::ExpiredImportToken(m) => (bad, "ExpiredImportTokenException", m),
                    K::IncorrectKeyMaterial(m) => (bad, "IncorrectKeyMaterialException", m),
                    K::InvalidGrantId(m) => (bad, "InvalidGrantIdException", m),
                    K::InvalidSignature(m) => (bad, "KMSInvalidSignatureException", m),
                    K::InvalidMac(m) => (bad, "KMSInvalidMacException", m),
                    K::DryRunOperation(m) => (bad, "DryRunOperationException", m),
                    K::Internal(m) => {
                        (StatusCode::INTERNAL_SERVER_ERROR, "KMSInternalException", m)
                    }
                };
                (status, code, msg(m))
            }
            ApiError::Serialization(m) => (bad, "SerializationException", msg(m)),
            ApiError::UnknownOperation => (bad, "UnknownOperationException", None),
            ApiError::MissingAuthenticationToken => (
                bad,
                "MissingAuthenticationTokenException",
                Some(self.to_string()),
            ),
            ApiError::UnrecognizedClient => {
                (bad, "UnrecognizedClientException", Some(self.to_string()))
            }
            ApiError::ExpiredToken => (bad, "ExpiredTokenException", Some(self.to_string())),
            ApiError::Service(code, m) => (bad, code, msg(m)),
            ApiError::InvalidSignature(m) => (bad, "InvalidSignatureException", msg(m)),
            ApiError::IncompleteSignature(m) => (bad, "IncompleteSignatureException", msg(m)),
            ApiError::Throttling => (bad, "ThrottlingException", Some(self.to_string())),
            ApiError::RequestTooLarge(_) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLargeException",
                Some(self.to_string()),
            ),
            ApiError::RequestTimeout(_) => (
                StatusCode::REQUEST_TIMEOUT,
                "RequestTimeoutException",
                Some(self.to_string()),
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_follow_aws() {
        assert_eq!(
            ApiError::Kms(KmsError::NotFound("x".into())).wire().0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            ApiError::Kms(KmsError::internal()).wire().0,
            StatusCode::INTERNAL_SERVER_ERROR
        );
        assert_eq!(
            ApiError::Kms(KmsError::dry_run()).wire().0,
            StatusCode::BAD_REQUEST
        );
        let (_, code, message) = ApiError::Kms(KmsError::invalid_ciphertext()).wire();
        assert_eq!((code, message), ("InvalidCiphertextException", None));
    }
}
