//! Imported key material: GetParametersForImport, ImportKeyMaterial,
//! DeleteImportedKeyMaterial.

use ferrokms_core::import::{
    imported_material_id, new_import_parameters, open_import_token, unwrap_material,
    wrapping_key_size, WrappingAlgorithm, WRAPPING_KEY_SPECS,
};
use ferrokms_core::material::{KeyMaterial, SYMMETRIC_MATERIAL_BYTES};
use ferrokms_core::KmsError;
use ferrokms_store::StoredMaterial;
use serde_json::{json, Value};

use super::authorize::Conditions;
use super::operations::On;
use super::resolve::{modify_authorized, modify_key, resolve_key};
use super::Call;
use crate::error::ApiError;
use crate::wire::{blob, timestamp, Input};

const EXPIRES: &str = "KEY_MATERIAL_EXPIRES";
const DOES_NOT_EXPIRE: &str = "KEY_MATERIAL_DOES_NOT_EXPIRE";
/// Imported material may be given at most a year of validity.
const MAX_VALIDITY_MS: i64 = 365 * 24 * 60 * 60 * 1000;

pub async fn get_parameters_for_import(
    call: &Call<'_>,
    mut input: Input,
) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let algorithm = input.required_enumeration(
        "WrappingAlgorithm",
        WrappingAlgorithm::parse,
        WrappingAlgorithm::ALL,
        Ok(WrappingAlgorithm::RsaesOaepSha256),
    )?;
    let spec = input.required_enumeration(
        "WrappingKeySpec",
        |s| WRAPPING_KEY_SPECS.contains(&s).then(|| s.to_owned()),
        WRAPPING_KEY_SPECS,
        String::new(),
    )?;
    input.finish()?;
    let algorithm = algorithm?;
    let size = wrapping_key_size(&spec)?;
    let conditions = Conditions::none()
        .with("kms:WrappingAlgorithm", vec![algorithm.as_str().into()])
        .with("kms:WrappingKeySpec", vec![spec.clone()]);
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    key.check_importable()?;
    let arn = key.arn.clone();
    let root = call.services.root.clone();
    let now = call.now;
    let params = tokio::task::spawn_blocking(move || {
        new_import_parameters(root.as_ref(), &arn, algorithm, size, now)
    })
    .await
    .map_err(|_| KmsError::internal())??;
    Ok(json!({
        "KeyId": key.arn.to_string(),
        "ImportToken": blob(&params.token),
        "PublicKey": blob(&params.public_key),
        "ParametersValidTo": timestamp(params.valid_to),
    }))
}

pub async fn import_key_material(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let token = input.required_blob("ImportToken", 1, 6144)?;
    let encrypted = input.required_blob("EncryptedKeyMaterial", 1, 6144)?;
    let valid_to = input.timestamp("ValidTo")?;
    let model = input.enumeration(
        "ExpirationModel",
        |s| {
            [EXPIRES, DOES_NOT_EXPIRE]
                .contains(&s)
                .then(|| s.to_owned())
        },
        &[EXPIRES, DOES_NOT_EXPIRE],
    )?;
    let _import_type = input.string("ImportType", 1, 64)?;
    let _description = input.string("KeyMaterialDescription", 0, 256)?;
    let _material_id = input.string("KeyMaterialId", 64, 64)?;
    input.finish()?;
    // kms:ExpirationModel and kms:ValidTo are in the request only when it sends them.
    let conditions = Conditions::none()
        .with_some("kms:ExpirationModel", model.clone())
        .with_some(
            "kms:ValidTo",
            valid_to.map(|v| v.div_euclid(1000).to_string()),
        );
    let model = model.unwrap_or_else(|| EXPIRES.to_owned());
    match (model.as_str(), valid_to) {
        (EXPIRES, None) => return Err(KmsError::valid_to_required().into()),
        (DOES_NOT_EXPIRE, Some(_)) => return Err(KmsError::valid_to_not_allowed().into()),
        (_, Some(v)) if v <= call.now || v > call.now + MAX_VALIDITY_MS => {
            return Err(KmsError::valid_to_out_of_range().into())
        }
        _ => {}
    }
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    key.check_importable()?;
    let (algorithm, wrapping_key) =
        open_import_token(call.services.root.as_ref(), &key.arn, &token, call.now)?;
    let material = unwrap_material(algorithm, &wrapping_key, &encrypted)?;
    if material.len() != SYMMETRIC_MATERIAL_BYTES {
        return Err(KmsError::symmetric_material_wrong_length().into());
    }
    let material = KeyMaterial::from_bytes(material);
    let material_id = imported_material_id(&material);
    let stored = StoredMaterial {
        material_id,
        wrapped: call
            .services
            .root
            .wrap_material(&key.arn, &material_id, &material)?,
        created: call.now,
        rotation_type: None,
    };
    let store = &call.services.store;
    let stored = &stored;
    let key = modify_authorized(
        call,
        key,
        |k| k.import_material(material_id, &model, valid_to),
        |k| async move { store.replace_material(call.audit(), &k, Some(stored)).await },
    )
    .await?;
    Ok(json!({
        "KeyId": key.arn.to_string(),
        "KeyMaterialId": material_id.to_string(),
    }))
}

pub async fn delete_imported_key_material(
    call: &Call<'_>,
    mut input: Input,
) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let _material_id = input.string("KeyMaterialId", 64, 64)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    let key = remove_imported_material(call.services, call.audit(), key.into_metadata()).await?;
    Ok(json!({
        "KeyId": key.arn.to_string(),
        "KeyMaterialId": key.current_material.to_string(),
    }))
}

/// Destroys a key's imported material (on request, or when it expires); the key goes back
/// to PendingImport.
pub async fn remove_imported_material(
    services: &super::Services,
    audit: &ferrokms_store::Intent,
    key: ferrokms_core::key::KeyMetadata,
) -> Result<ferrokms_core::key::KeyMetadata, ApiError> {
    let store = &services.store;
    let arn = key.arn.clone();
    let removed = modify_key(
        services,
        key,
        ferrokms_core::key::KeyMetadata::remove_imported_material,
        |k| async move { store.replace_material(audit, &k, None).await },
    )
    .await?;
    services.materials.forget_key(&arn);
    Ok(removed)
}
