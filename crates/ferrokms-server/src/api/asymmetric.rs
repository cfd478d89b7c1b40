//! Asymmetric key operations: Sign, Verify, GetPublicKey and DeriveSharedSecret.

use ferrokms_core::asymmetric::{self, MAX_MESSAGE_BYTES};
use ferrokms_core::key::{
    KeyAgreementAlgorithm, KeyMetadata, KeyUsage, MessageType, SigningAlgorithm,
};
use ferrokms_core::KmsError;
use serde_json::{json, Value};

use super::authorize::{AuthorizedKey, Conditions};
use super::crypto::{load_material, read_dry_run, read_grant_tokens, refuse_recipient};
use super::keys::add_spec_details;
use super::operations::On;
use super::resolve::resolve_key;
use super::Call;
use crate::error::ApiError;
use crate::wire::{blob, Input};

/// Largest signature Verify takes (the model's limit).
const MAX_SIGNATURE_BYTES: usize = 6144;
/// Largest peer public key DeriveSharedSecret takes.
const MAX_PUBLIC_KEY_BYTES: usize = 8192;

fn algorithm_mismatch(algorithm: &str, key: &KeyMetadata) -> KmsError {
    KmsError::algorithm_incompatible(algorithm, key.key_spec.as_str())
}

/// The key named for Sign or Verify, checked for state, usage and algorithm.
async fn signing_key(
    call: &Call<'_>,
    key_id: &str,
    algorithm: SigningAlgorithm,
    message_type: MessageType,
    operation: &str,
) -> Result<AuthorizedKey, ApiError> {
    let conditions = Conditions::none()
        .with("kms:SigningAlgorithm", vec![algorithm.as_str().into()])
        .with("kms:MessageType", vec![message_type.as_str().into()]);
    let key = resolve_key(call, key_id, On::Key, &conditions).await?;
    key.check_usage(KeyUsage::SignVerify, operation)?;
    key.check_usable()?;
    if !key.signing_algorithms().contains(&algorithm) {
        return Err(algorithm_mismatch(algorithm.as_str(), &key).into());
    }
    Ok(key)
}

/// The members Sign and Verify share.
struct SigningRequest {
    key_id: String,
    message: Vec<u8>,
    message_type: MessageType,
    algorithm: SigningAlgorithm,
    dry_run: bool,
}

fn read_signing_request(input: &mut Input) -> Result<SigningRequest, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let message = input.required_blob("Message", 1, MAX_MESSAGE_BYTES)?;
    let message_type = input
        .enumeration("MessageType", MessageType::parse, MessageType::ALL)?
        .unwrap_or(MessageType::Raw);
    read_grant_tokens(input)?;
    let algorithm = input.required_enumeration(
        "SigningAlgorithm",
        SigningAlgorithm::parse,
        SigningAlgorithm::ALL,
        SigningAlgorithm::RsassaPssSha256,
    )?;
    let (dry_run, _) = read_dry_run(input, false)?;
    Ok(SigningRequest {
        key_id,
        message,
        message_type,
        algorithm,
        dry_run,
    })
}

pub async fn sign(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let req = read_signing_request(&mut input)?;
    input.finish()?;
    let key = signing_key(call, &req.key_id, req.algorithm, req.message_type, "Sign").await?;
    if req.dry_run {
        return Err(KmsError::dry_run().into());
    }
    let material = load_material(call, &key, &key.current_material).await?;
    let signature = asymmetric::sign(
        key.key_spec,
        &material,
        req.algorithm,
        req.message_type,
        &req.message,
    )?;
    Ok(json!({
        "KeyId": key.arn.to_string(),
        "Signature": blob(&signature),
        "SigningAlgorithm": req.algorithm.as_str(),
    }))
}

pub async fn verify(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let req = read_signing_request(&mut input)?;
    let signature = input.required_blob("Signature", 1, MAX_SIGNATURE_BYTES)?;
    input.finish()?;
    let key = signing_key(call, &req.key_id, req.algorithm, req.message_type, "Verify").await?;
    if req.dry_run {
        return Err(KmsError::dry_run().into());
    }
    let public = key.public_key.as_deref().ok_or_else(KmsError::internal)?;
    let valid = asymmetric::verify(
        key.key_spec,
        public,
        req.algorithm,
        req.message_type,
        &req.message,
        &signature,
    )?;
    if !valid {
        // As in AWS, a signature that does not verify is an error, never `false`.
        return Err(KmsError::invalid_signature().into());
    }
    Ok(json!({
        "KeyId": key.arn.to_string(),
        "SignatureValid": true,
        "SigningAlgorithm": req.algorithm.as_str(),
    }))
}

pub async fn get_public_key(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    read_grant_tokens(&mut input)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    // AWS hands out the public key of a disabled key too, but not of one pending deletion.
    key.check_not_pending_deletion()?;
    // An imported key has no public key until its material comes (AWS's key-state table).
    if key.state == ferrokms_core::key::KeyState::PendingImport {
        return Err(KmsError::key_pending_import(&key.arn).into());
    }
    let Some(public) = key.public_key.as_deref() else {
        // AWS sends this one without a message.
        return Err(KmsError::no_public_key().into());
    };
    let mut out = json!({
        "KeyId": key.arn.to_string(),
        "PublicKey": blob(public),
        "KeySpec": key.key_spec.as_str(),
        "KeyUsage": key.key_usage.as_str(),
    });
    add_spec_details(&mut out, &key);
    Ok(out)
}

pub async fn derive_shared_secret(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let algorithm = input.required_enumeration(
        "KeyAgreementAlgorithm",
        KeyAgreementAlgorithm::parse,
        KeyAgreementAlgorithm::ALL,
        KeyAgreementAlgorithm::Ecdh,
    )?;
    let peer = input.required_blob("PublicKey", 1, MAX_PUBLIC_KEY_BYTES)?;
    read_grant_tokens(&mut input)?;
    let (dry_run, _) = read_dry_run(&mut input, false)?;
    refuse_recipient(&mut input)?;
    input.finish()?;
    let key = resolve_key(
        call,
        &key_id,
        On::Key,
        &Conditions::none().with("kms:KeyAgreementAlgorithm", vec![algorithm.as_str().into()]),
    )
    .await?;
    key.check_usage(KeyUsage::KeyAgreement, "DeriveSharedSecret")?;
    key.check_usable()?;
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    let material = load_material(call, &key, &key.current_material).await?;
    let secret = asymmetric::derive_shared_secret(key.key_spec, &material, &peer)?;
    Ok(json!({
        "KeyId": key.arn.to_string(),
        "SharedSecret": blob(&secret),
        "KeyAgreementAlgorithm": algorithm.as_str(),
        "KeyOrigin": key.origin.as_str(),
    }))
}
