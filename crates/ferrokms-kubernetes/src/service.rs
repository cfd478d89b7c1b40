//! The KMS v2 gRPC service the API server calls, over the envelope.

use std::sync::Mutex;

use tonic::{Request, Response, Status};

use crate::envelope::{Envelope, EnvelopeError};
use crate::kms::CallError;
use crate::proto::key_management_service_server::KeyManagementService;
use crate::proto::{
    DecryptRequest, DecryptResponse, EncryptRequest, EncryptResponse, StatusRequest, StatusResponse,
};

/// The KMS v2 API version, which the EncryptionConfiguration's `apiVersion` must match.
pub const API_VERSION: &str = "v2";

pub struct PluginService {
    envelope: Envelope,
    /// The key id of the last successful Status or Encrypt, given while unhealthy.
    last_key_id: Mutex<String>,
}

impl PluginService {
    pub fn new(envelope: Envelope) -> PluginService {
        PluginService {
            envelope,
            last_key_id: Mutex::new(String::new()),
        }
    }

    fn remember(&self, key_id: &str) {
        if let Ok(mut last) = self.last_key_id.lock() {
            key_id.clone_into(&mut last);
        }
    }
}

/// The gRPC status of a failure: what the API server logs and retries on.
fn status_of(error: &EnvelopeError) -> Status {
    let message = error.to_string();
    match error {
        EnvelopeError::Kms(CallError::Kms { code, .. }) => match code.as_str() {
            "AccessDeniedException" => Status::permission_denied(message),
            "InvalidCiphertextException" | "IncorrectKeyException" => {
                Status::invalid_argument(message)
            }
            "NotFoundException"
            | "DisabledException"
            | "KMSInvalidStateException"
            | "KeyUnavailableException" => Status::failed_precondition(message),
            "ThrottlingException" | "LimitExceededException" => Status::resource_exhausted(message),
            "DependencyTimeoutException" => Status::unavailable(message),
            _ => Status::internal(message),
        },
        EnvelopeError::Kms(CallError::Unreachable(_) | CallError::TimedOut(_)) => {
            Status::unavailable(message)
        }
        EnvelopeError::InvalidCiphertext
        | EnvelopeError::KeyIdMismatch { .. }
        | EnvelopeError::TooLarge(_) => Status::invalid_argument(message),
        EnvelopeError::Kms(CallError::Invalid(_))
        | EnvelopeError::Incomplete(..)
        | EnvelopeError::Crypto => Status::internal(message),
    }
}

#[tonic::async_trait]
impl KeyManagementService for PluginService {
    async fn status(
        &self,
        _request: Request<StatusRequest>,
    ) -> Result<Response<StatusResponse>, Status> {
        let (healthz, key_id) = match self.envelope.current_key_id().await {
            Ok(key_id) => {
                self.remember(&key_id);
                ("ok".to_owned(), key_id)
            }
            Err(e) => {
                tracing::warn!(error = %e, "status: the key cannot be used");
                let last = self
                    .last_key_id
                    .lock()
                    .map(|l| l.clone())
                    .unwrap_or_default();
                (e.to_string(), last)
            }
        };
        Ok(Response::new(StatusResponse {
            version: API_VERSION.to_owned(),
            healthz,
            key_id,
        }))
    }

    async fn encrypt(
        &self,
        request: Request<EncryptRequest>,
    ) -> Result<Response<EncryptResponse>, Status> {
        let request = request.into_inner();
        match self.envelope.seal(&request.plaintext).await {
            Ok(sealed) => {
                self.remember(&sealed.key_id);
                tracing::info!(uid = %request.uid, key_id = %sealed.key_id, "encrypted");
                Ok(Response::new(EncryptResponse {
                    ciphertext: sealed.ciphertext,
                    key_id: sealed.key_id,
                    annotations: Default::default(),
                }))
            }
            Err(e) => {
                tracing::warn!(uid = %request.uid, error = %e, "encrypt failed");
                Err(status_of(&e))
            }
        }
    }

    async fn decrypt(
        &self,
        request: Request<DecryptRequest>,
    ) -> Result<Response<DecryptResponse>, Status> {
        let request = request.into_inner();
        match self
            .envelope
            .open(&request.ciphertext, &request.key_id)
            .await
        {
            Ok(plaintext) => {
                tracing::info!(uid = %request.uid, key_id = %request.key_id, "decrypted");
                Ok(Response::new(DecryptResponse {
                    plaintext: plaintext.to_vec(),
                }))
            }
            Err(e) => {
                tracing::warn!(uid = %request.uid, error = %e, "decrypt failed");
                Err(status_of(&e))
            }
        }
    }
}
