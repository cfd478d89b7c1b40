//! Every error a caller can see, mapped to the awsJson1_1 wire form in this one place.

use std::fmt::Display;

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

/// The messages of the protocol and authentication layers, each with its constructor (the
/// KMS domain's are `KmsError`'s, in ferrokms-core).
impl ApiError {
    pub fn serialization(msg: impl Into<String>) -> Self {
        ApiError::Serialization(msg.into())
    }

    // SerializationException: a request body of the wrong JSON types.

    pub fn body_not_json() -> Self {
        Self::serialization("Could not parse the request body as JSON.")
    }

    /// An object where a scalar was expected.
    pub fn unexpected_structure() -> Self {
        Self::serialization("Start of structure or map found where not expected.")
    }

    /// A list where a scalar was expected.
    pub fn unexpected_list() -> Self {
        Self::serialization("Start of list found where not expected")
    }

    /// A scalar of JSON type `found` (`STRING_VALUE`, ...) where `expected` was.
    pub fn cannot_convert(found: impl Display, expected: impl Display) -> Self {
        Self::serialization(format!("{found} can not be converted to {expected}"))
    }

    pub fn invalid_base64(member: impl Display) -> Self {
        Self::serialization(format!("Invalid base64 in '{member}'"))
    }

    /// Member `member` is not an object.
    pub fn structure_expected(member: impl Display) -> Self {
        Self::serialization(format!("Start of structure or map expected for {member}."))
    }

    pub fn not_a_map(member: impl Display) -> Self {
        Self::serialization(format!("{member} must be a map"))
    }

    pub fn map_values_not_strings(member: impl Display) -> Self {
        Self::serialization(format!("{member} values must be strings"))
    }

    pub fn not_a_string(member: impl Display) -> Self {
        Self::serialization(format!("{member} must be a string"))
    }

    // IncompleteSignatureException: an Authorization header that is not a whole SigV4 one.

    pub fn authorization_not_ascii() -> Self {
        ApiError::IncompleteSignature(
            "The Authorization header holds characters that are not ASCII.".into(),
        )
    }

    /// An Authorization header of another scheme than AWS4-HMAC-SHA256.
    pub fn unsupported_authorization(raw: impl Display) -> Self {
        ApiError::IncompleteSignature(format!(
            "Unsupported authorization type or algorithm. Authorization={raw}"
        ))
    }

    pub fn authorization_pair_without_equals(part: impl Display, raw: impl Display) -> Self {
        ApiError::IncompleteSignature(format!(
            "'{part}' not a valid key=value pair (missing equal-sign) in Authorization header: '{raw}'."
        ))
    }

    /// The header lacks parts: `missing` holds AWS's sentence for each.
    pub fn authorization_incomplete(missing: &[&str], raw: impl Display) -> Self {
        ApiError::IncompleteSignature(format!("{} Authorization={raw}", missing.join(" ")))
    }

    /// A credential scope that is not keyid/date/region/service/term.
    pub fn credential_scope_malformed(credential: impl Display) -> Self {
        ApiError::IncompleteSignature(format!(
            "Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '{credential}'"
        ))
    }

    pub fn credential_terminator_invalid(terminator: impl Display) -> Self {
        ApiError::IncompleteSignature(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        ))
    }

    pub fn host_not_signed() -> Self {
        ApiError::IncompleteSignature(
            "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.".into(),
        )
    }

    /// The date header (`x-amz-date` or `date`) is not signed.
    pub fn date_not_signed(header: impl Display) -> Self {
        ApiError::IncompleteSignature(format!(
            "'{header}' must be a 'SignedHeader' in the AWS Authorization."
        ))
    }

    /// `x-amz-*` headers sent but not signed.
    pub fn headers_not_signed(unsigned: &[&str]) -> Self {
        ApiError::IncompleteSignature(format!(
            "There were headers present in the request which were not signed: {}",
            unsigned.join(", ")
        ))
    }

    // InvalidSignatureException: a signature that does not hold.

    pub fn credential_service_invalid() -> Self {
        ApiError::InvalidSignature("Credential should be scoped to correct service: 'kms'. ".into())
    }

    pub fn credential_region_invalid() -> Self {
        ApiError::InvalidSignature("Credential should be scoped to a valid region. ".into())
    }

    /// The credential scope's date is not the request's (`date`, its first 8 characters).
    pub fn credential_date_mismatch(
        scope_date: impl Display,
        date: impl Display,
        amz_date: impl Display,
    ) -> Self {
        ApiError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{scope_date}' != '{date}', from '{amz_date}'."
        ))
    }

    pub fn date_not_iso8601(amz_date: impl Display) -> Self {
        ApiError::InvalidSignature(format!(
            "Date must be in ISO-8601 'basic format'. Got '{amz_date}'. See http://en.wikipedia.org/wiki/ISO_8601"
        ))
    }

    /// A request dated before `earliest` (`now` less the `window` in minutes).
    pub fn signature_expired(
        amz_date: impl Display,
        earliest: impl Display,
        now: impl Display,
        window: impl Display,
    ) -> Self {
        ApiError::InvalidSignature(format!(
            "Signature expired: {amz_date} is now earlier than {earliest} ({now} - {window} min.)"
        ))
    }

    /// A request dated after `latest` (`now` plus the `window` in minutes).
    pub fn signature_not_yet_current(
        amz_date: impl Display,
        latest: impl Display,
        now: impl Display,
        window: impl Display,
    ) -> Self {
        ApiError::InvalidSignature(format!(
            "Signature not yet current: {amz_date} is still later than {latest} ({now} + {window} min.)"
        ))
    }

    pub fn signature_mismatch() -> Self {
        ApiError::InvalidSignature(
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.".into(),
        )
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

    /// Each recorded row that a `KmsError` constructor says (ferrokms-core checks their
    /// text; the rows none covers are listed there) reaches the caller with AWS's `__type`,
    /// status and message.
    #[test]
    fn recorded_errors_go_out_as_aws_sends_them() {
        use ferrokms_core::reference::{covered, expand, recorded_messages};
        let rows = recorded_messages();
        for (code, pattern, error) in covered() {
            assert!(
                rows.iter().any(|(c, m)| c == code && m == pattern),
                "no recorded row {code}\t{pattern}"
            );
            let (status, wire_code, message) = ApiError::Kms(error).wire();
            assert_eq!(status, StatusCode::BAD_REQUEST, "{code}: {pattern}");
            assert_eq!(wire_code, code, "{pattern}");
            assert_eq!(
                message.unwrap_or_default(),
                expand(pattern),
                "{code}: {pattern}"
            );
        }
    }
}
