//! The JSON of the XKS Proxy API v1: requests, answers and errors, as the published
//! specification gives them (binary values in standard base64).

use serde::{Deserialize, Serialize};

/// `requestMetadata`: who asked KMS for what. Only the two fields every operation carries
/// are required here; each operation checks the others it needs.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aws_principal_arn: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_key_arn: Option<String>,
    pub kms_operation: String,
    pub kms_request_id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kms_via_service: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetadataOnly {
    pub request_metadata: RequestMetadata,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyMetadataAnswer {
    pub key_spec: String,
    pub key_usage: Vec<String>,
    pub key_status: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptRequest {
    pub request_metadata: RequestMetadata,
    pub plaintext: String,
    pub encryption_algorithm: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value_algorithm: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EncryptAnswer {
    pub ciphertext: String,
    pub initialization_vector: String,
    pub authentication_tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_data_integrity_value: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptRequest {
    pub request_metadata: RequestMetadata,
    pub ciphertext: String,
    pub encryption_algorithm: String,
    pub initialization_vector: String,
    pub authentication_tag: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ciphertext_metadata: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub additional_authenticated_data: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DecryptAnswer {
    pub plaintext: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EkmDetail {
    pub id: String,
    pub model: String,
    pub health_status: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthAnswer {
    pub xks_proxy_fleet_size: u32,
    pub xks_proxy_vendor: String,
    pub xks_proxy_model: String,
    pub ekm_vendor: String,
    pub ekm_fleet_details: Vec<EkmDetail>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorAnswer {
    pub error_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_message: Option<String>,
}

/// The errors a proxy answers, with their HTTP status codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxyError {
    Validation,
    InvalidState,
    InvalidCiphertext,
    InvalidKeyUsage,
    AuthenticationFailed,
    AccessDenied,
    KeyNotFound,
    InvalidUriPath,
    Throttling,
    UnsupportedOperation,
    DependencyTimeout,
    Internal,
}

const ALL: &[ProxyError] = &[
    ProxyError::Validation,
    ProxyError::InvalidState,
    ProxyError::InvalidCiphertext,
    ProxyError::InvalidKeyUsage,
    ProxyError::AuthenticationFailed,
    ProxyError::AccessDenied,
    ProxyError::KeyNotFound,
    ProxyError::InvalidUriPath,
    ProxyError::Throttling,
    ProxyError::UnsupportedOperation,
    ProxyError::DependencyTimeout,
    ProxyError::Internal,
];

impl ProxyError {
    pub fn name(self) -> &'static str {
        match self {
            ProxyError::Validation => "ValidationException",
            ProxyError::InvalidState => "InvalidStateException",
            ProxyError::InvalidCiphertext => "InvalidCiphertextException",
            ProxyError::InvalidKeyUsage => "InvalidKeyUsageException",
            ProxyError::AuthenticationFailed => "AuthenticationFailedException",
            ProxyError::AccessDenied => "AccessDeniedException",
            ProxyError::KeyNotFound => "KeyNotFoundException",
            ProxyError::InvalidUriPath => "InvalidUriPathException",
            ProxyError::Throttling => "ThrottlingException",
            ProxyError::UnsupportedOperation => "UnsupportedOperationException",
            ProxyError::DependencyTimeout => "DependencyTimeoutException",
            ProxyError::Internal => "InternalException",
        }
    }

    pub fn status(self) -> u16 {
        match self {
            ProxyError::Validation
            | ProxyError::InvalidState
            | ProxyError::InvalidCiphertext
            | ProxyError::InvalidKeyUsage => 400,
            ProxyError::AuthenticationFailed => 401,
            ProxyError::AccessDenied => 403,
            ProxyError::KeyNotFound | ProxyError::InvalidUriPath => 404,
            ProxyError::Throttling => 429,
            ProxyError::UnsupportedOperation => 501,
            ProxyError::DependencyTimeout => 503,
            ProxyError::Internal => 500,
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        ALL.iter().copied().find(|e| e.name() == name)
    }
}
