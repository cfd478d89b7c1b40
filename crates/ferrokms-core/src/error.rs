//! The errors of the KMS domain: each variant is an AWS KMS error shape, the text is its message.

/// An error a KMS operation returns to its caller. The wire layer maps each variant to the
/// AWS `__type` and HTTP status; the message is what AWS would say and never holds secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidMarker(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Tag(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    CustomKeyStoreNotFound(String),
    #[error("{0}")]
    CustomKeyStoreInvalidState(String),
    #[error("{0}")]
    CustomKeyStoreNameInUse(String),
    #[error("{0}")]
    CustomKeyStoreHasCMKs(String),
    #[error("{0}")]
    CloudHsmClusterNotFound(String),
    #[error("{0}")]
    CloudHsmClusterInUse(String),
    #[error("{0}")]
    CloudHsmClusterNotRelated(String),
    #[error("{0}")]
    IncorrectTrustAnchor(String),
    #[error("{0}")]
    XksProxyUriInUse(String),
    #[error("{0}")]
    XksProxyUriUnreachable(String),
    #[error("{0}")]
    XksProxyIncorrectAuthenticationCredential(String),
    #[error("{0}")]
    XksProxyInvalidResponse(String),
    #[error("{0}")]
    XksProxyInvalidConfiguration(String),
    #[error("{0}")]
    XksKeyNotFound(String),
    #[error("{0}")]
    XksKeyInvalidConfiguration(String),
    #[error("{0}")]
    XksKeyAlreadyInUse(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    DryRunOperation(String),
    #[error("{0}")]
    InvalidImportToken(String),
    #[error("{0}")]
    ExpiredImportToken(String),
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    #[error("{0}")]
    InvalidGrantToken(String),
    #[error("{0}")]
    InvalidGrantId(String),
    /// Verify found the signature wrong.
    #[error("{0}")]
    InvalidSignature(String),
    /// VerifyMac found the MAC wrong.
    #[error("{0}")]
    InvalidMac(String),
    /// Something went wrong on our side; the message is generic on purpose.
    #[error("{0}")]
    Internal(String),
}

impl KmsError {
    pub fn internal() -> Self {
        KmsError::Internal("An internal error occurred.".into())
    }

    pub fn invalid_ciphertext() -> Self {
        // AWS says nothing about which part of a ciphertext failed; neither do we.
        KmsError::InvalidCiphertext(String::new())
    }

    pub fn dry_run() -> Self {
        KmsError::DryRunOperation(
            "The request would have succeeded, but the DryRun option is set.".into(),
        )
    }
}
