//! HMAC keys: GenerateMac and VerifyMac.

use ferrokms_core::asymmetric::{self, MAX_MESSAGE_BYTES};
use ferrokms_core::key::{KeyUsage, MacAlgorithm};
use ferrokms_core::KmsError;
use serde_json::{json, Value};

use super::authorize::{AuthorizedKey, Conditions};
use super::crypto::{load_material, read_dry_run, read_grant_tokens};
use super::operations::On;
use super::resolve::resolve_key;
use super::Call;
use crate::error::ApiError;
use crate::wire::{blob, Input};

const MAX_MAC_BYTES: usize = 6144;

struct MacRequest {
    key_id: String,
    message: Vec<u8>,
    algorithm: MacAlgorithm,
    dry_run: bool,
}

fn read_mac_request(input: &mut Input) -> Result<MacRequest, ApiError> {
    let message = input.required_blob("Message", 1, MAX_MESSAGE_BYTES)?;
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let algorithm = input.required_enumeration(
        "MacAlgorithm",
        MacAlgorithm::parse,
        MacAlgorithm::ALL,
        MacAlgorithm::HmacSha256,
    )?;
    read_grant_tokens(input)?;
    let (dry_run, _) = read_dry_run(input, false)?;
    Ok(MacRequest {
        key_id,
        message,
        algorithm,
        dry_run,
    })
}

async fn mac_key(
    call: &Call<'_>,
    req: &MacRequest,
    operation: &str,
) -> Result<AuthorizedKey, ApiError> {
    let conditions =
        Conditions::none().with("kms:MacAlgorithm", vec![req.algorithm.as_str().into()]);
    let key = resolve_key(call, &req.key_id, On::Key, &conditions).await?;
    key.check_usage(KeyUsage::GenerateVerifyMac, operation)?;
    key.check_usable()?;
    if key.key_spec.mac_algorithm() != Some(req.algorithm) {
        return Err(KmsError::algorithm_incompatible(
            req.algorithm.as_str(),
            key.key_spec.as_str(),
        )
        .into());
    }
    if req.dry_run {
        return Err(KmsError::dry_run().into());
    }
    Ok(key)
}

pub async fn generate_mac(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let req = read_mac_request(&mut input)?;
    input.finish()?;
    let key = mac_key(call, &req, "GenerateMac").await?;
    let material = load_material(call, &key, &key.current_material).await?;
    let tag = asymmetric::mac(&material, req.algorithm, &req.message);
    Ok(json!({
        "Mac": blob(&tag),
        "MacAlgorithm": req.algorithm.as_str(),
        "KeyId": key.arn.to_string(),
    }))
}

pub async fn verify_mac(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let req = read_mac_request(&mut input)?;
    let tag = input.required_blob("Mac", 1, MAX_MAC_BYTES)?;
    input.finish()?;
    let key = mac_key(call, &req, "VerifyMac").await?;
    let material = load_material(call, &key, &key.current_material).await?;
    if !asymmetric::verify_mac(&material, req.algorithm, &req.message, &tag) {
        return Err(KmsError::invalid_mac().into());
    }
    Ok(json!({
        "KeyId": key.arn.to_string(),
        "MacValid": true,
        "MacAlgorithm": req.algorithm.as_str(),
    }))
}
