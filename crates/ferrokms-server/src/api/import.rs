//! Imported key material: GetParametersForImport, ImportKeyMaterial,
//! DeleteImportedKeyMaterial.

use ferrokms_core::import::{
    accept_material, check_importable_spec, imported_material_id, legacy_imported_material_id,
    new_import_parameters, open_import_token, unwrap_material, wrapping_key_size,
    WrappingAlgorithm, WRAPPING_KEY_SPECS,
};
use ferrokms_core::imported::{ImportRequest, ImportType, DOES_NOT_EXPIRE, EXPIRES};
use ferrokms_core::key::{KeyMetadata, KeySpec, Millis};
use ferrokms_core::material::MaterialId;
use ferrokms_core::KmsError;
use ferrokms_store::{Removal, StoredMaterial};
use serde_json::{json, Value};

use super::authorize::Conditions;
use super::operations::On;
use super::resolve::{modify_authorized, modify_key_deciding, resolve_key};
use super::Call;
use crate::error::ApiError;
use crate::wire::{blob, timestamp, Input};

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
    check_importable_spec(key.key_spec)?;
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
    let import_type = input.enumeration("ImportType", ImportType::parse, ImportType::ALL)?;
    let description = input.string("KeyMaterialDescription", 0, 256)?;
    if let Some(d) = &description {
        if !d
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c.is_whitespace() || ":/_.-".contains(c))
            || d.is_empty()
        {
            input.pattern_violated("KeyMaterialDescription", d, r"^[a-zA-Z0-9:/_\s.-]+$");
        }
    }
    let claimed = material_id_member(&mut input, "KeyMaterialId")?;
    input.finish()?;
    if import_type == Some(ImportType::NewKeyMaterial) && claimed.is_some() {
        return Err(KmsError::material_id_with_new_material().into());
    }
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
    check_importable_spec(key.key_spec)?;
    let (algorithm, wrapping_key) =
        open_import_token(call.services.root.as_ref(), &key.arn, &token, call.now)?;
    let accepted = accept_material(
        key.key_spec,
        unwrap_material(algorithm, &wrapping_key, &encrypted)?,
    )?;
    // Material imported by an earlier version carries the id that version derived.
    let legacy = (key.key_spec == KeySpec::SymmetricDefault)
        .then(|| legacy_imported_material_id(&accepted.material));
    let material_id = if let Some(legacy) = legacy.filter(|l| key.import.get(l).is_some()) {
        legacy
    } else {
        imported_material_id(key.id(), &accepted.material)
    };
    let stored = StoredMaterial {
        material_id,
        wrapped: call
            .services
            .root
            .wrap_material(&key.arn, &material_id, &accepted.material)?,
        created: call.now,
        rotation_type: None,
    };
    let request = ImportRequest {
        material: material_id,
        import_type,
        claimed,
        description: description.as_deref(),
        expiration_model: &model,
        valid_to,
    };
    let store = &call.services.store;
    let stored = &stored;
    let public_key = &accepted.public_key;
    let key = modify_authorized(
        call,
        key,
        |k| {
            k.import_material(&request)?;
            if k.public_key.is_none() {
                k.public_key.clone_from(public_key);
            }
            Ok(())
        },
        |k| async move {
            store
                .change_materials(call.audit(), &k, Some(stored), Removal::Only(&[]))
                .await
        },
    )
    .await?;
    Ok(json!({
        "KeyId": key.arn.to_string(),
        "KeyMaterialId": material_id.to_string(),
    }))
}

/// A KeyMaterialId member: 64 lowercase hex digits.
fn material_id_member(input: &mut Input, member: &str) -> Result<Option<MaterialId>, ApiError> {
    let Some(given) = input.string(member, 64, 64)? else {
        return Ok(None);
    };
    let parsed = MaterialId::parse(&given);
    if parsed.is_none() {
        input.pattern_violated(member, &given, "^[a-f0-9]+$");
    }
    Ok(parsed)
}

pub async fn delete_imported_key_material(
    call: &Call<'_>,
    mut input: Input,
) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let material = material_id_member(&mut input, "KeyMaterialId")?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    let (key, removed) =
        remove_imported_material(call.services, call.audit(), key.into_metadata(), material)
            .await?;
    let mut out = json!({ "KeyId": key.arn.to_string() });
    if let Some(removed) = removed {
        out["KeyMaterialId"] = json!(removed.to_string());
    }
    Ok(out)
}

/// Destroys one of a key's imported materials on request; unless it was only pending
/// rotation, the key goes back to PendingImport.
pub async fn remove_imported_material(
    services: &super::Services,
    audit: &ferrokms_store::Intent,
    key: KeyMetadata,
    material: Option<MaterialId>,
) -> Result<(KeyMetadata, Option<MaterialId>), ApiError> {
    let (key, removed) = change_imported_materials(services, audit, key, |k| {
        Ok(k.remove_imported_material(material)?.into_iter().collect())
    })
    .await?;
    Ok((key, removed.first().copied()))
}

/// Destroys the imported materials whose ValidTo has passed.
pub async fn expire_imported_materials(
    services: &super::Services,
    audit: &ferrokms_store::Intent,
    key: KeyMetadata,
    now: Millis,
) -> Result<KeyMetadata, ApiError> {
    let (key, _) =
        change_imported_materials(services, audit, key, |k| k.expire_imported_materials(now))
            .await?;
    Ok(key)
}

/// Applies a change that deletes imported materials, and deletes their stored versions in
/// the same write. The change decides again on every retry, from the key as it is then.
async fn change_imported_materials(
    services: &super::Services,
    audit: &ferrokms_store::Intent,
    key: KeyMetadata,
    change: impl FnMut(&mut KeyMetadata) -> Result<Vec<MaterialId>, KmsError>,
) -> Result<(KeyMetadata, Vec<MaterialId>), ApiError> {
    let store = &services.store;
    let arn = key.arn.clone();
    let changed = modify_key_deciding(services, key, change, |k, gone| async move {
        store
            .change_materials(audit, &k, None, Removal::Only(&gone))
            .await
    })
    .await?;
    services.materials.forget_key(&arn);
    Ok(changed)
}
