//! Key rotation: EnableKeyRotation, DisableKeyRotation, GetKeyRotationStatus,
//! RotateKeyOnDemand, ListKeyRotations.

use ferrokms_core::imported::ImportedMaterial;
use ferrokms_core::key::{
    KeyMetadata, KeySpec, KeyState, Millis, Origin, DEFAULT_ROTATION_PERIOD_DAYS,
    MAX_ROTATION_PERIOD_DAYS, MIN_ROTATION_PERIOD_DAYS,
};
use ferrokms_core::material::{KeyMaterial, MaterialId};
use ferrokms_core::KmsError;
use ferrokms_store::{Intent, RotationType, StoreError, StoredMaterial};
use serde_json::{json, Value};

use super::authorize::Conditions;
use super::operations::On;
use super::resolve::{follow_primary, modify_key, resolve_key, update_key};
use super::{finish_page, finish_with_page, store_failure, Call, Services};
use crate::error::ApiError;
use crate::wire::{timestamp, Input};

/// Adds a new version of a symmetric key's material and makes it current, retrying if the
/// key changes meanwhile. Automatic rotations that another node already made are not
/// repeated: the key is re-read and must still be due.
pub async fn rotate_key(
    services: &Services,
    audit: &Intent,
    mut key: KeyMetadata,
    rotation: RotationType,
    now: Millis,
) -> Result<KeyMetadata, ApiError> {
    const ATTEMPTS: usize = 8;
    for _ in 0..ATTEMPTS {
        if rotation == RotationType::Automatic && !key.rotation_due(now) {
            return Ok(key);
        }
        if !key.is_primary() {
            return Err(KmsError::rotate_replica(&key.arn).into());
        }
        let material_id = MaterialId::generate()?;
        let limit = services.quotas.resources.on_demand_rotations_per_key;
        key.rotate(
            material_id,
            (rotation == RotationType::OnDemand).then_some(limit),
            now,
        )?;
        let material = KeyMaterial::generate_symmetric()?;
        let stored = StoredMaterial {
            material_id,
            wrapped: services
                .root
                .wrap_material(&key.arn, &material_id, &material)?,
            created: now,
            rotation_type: Some(rotation),
        };
        match services.store.rotate_key(audit, &key, &stored).await {
            Ok(revision) => {
                key.revision = revision;
                propagate_to_replicas(services, audit, &key, &stored, &material).await?;
                return Ok(key);
            }
            Err(StoreError::Conflict) => {
                key = services
                    .store
                    .key(key.region(), &key.id())
                    .await
                    .map_err(store_failure)?
                    .ok_or_else(|| KmsError::key_not_found(&key.arn))?;
            }
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(KmsError::internal().into())
}

/// Replicas share material with their primary: each gets the new version, sealed for its
/// own ARN, and the primary's rotation settings.
async fn propagate_to_replicas(
    services: &Services,
    audit: &Intent,
    primary: &KeyMetadata,
    stored: &StoredMaterial,
    material: &KeyMaterial,
) -> Result<(), ApiError> {
    for replica in super::multi_region::replicas_of(services, primary).await? {
        let copy = StoredMaterial {
            wrapped: services
                .root
                .wrap_material(&replica.arn, &stored.material_id, material)?,
            ..stored.clone()
        };
        let store = &services.store;
        let copy = &copy;
        modify_key(
            services,
            replica,
            |k| {
                k.current_material = primary.current_material;
                k.rotation = primary.rotation.clone();
                Ok(())
            },
            |k| async move { store.rotate_key(audit, &k, copy).await },
        )
        .await?;
    }
    Ok(())
}

/// Rotation of a multi-Region key is managed on its primary; its replicas follow.
fn only_primary(key: &KeyMetadata) -> Result<(), ApiError> {
    if key.is_primary() {
        Ok(())
    } else {
        Err(KmsError::rotation_of_replica(&key.arn).into())
    }
}

async fn sync_rotation_settings(call: &Call<'_>, primary: &KeyMetadata) -> Result<(), ApiError> {
    for replica in super::multi_region::replicas_of(call.services, primary).await? {
        let rotation = primary.rotation.clone();
        follow_primary(call.services, call.audit(), replica, move |k| {
            k.rotation = rotation.clone();
            Ok(())
        })
        .await?;
    }
    Ok(())
}

fn only_symmetric(key: &KeyMetadata) -> Result<(), ApiError> {
    if key.key_spec == KeySpec::SymmetricDefault {
        Ok(())
    } else {
        Err(KmsError::rotation_unsupported_for_key_spec().into())
    }
}

pub async fn enable_key_rotation(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let days = input.integer(
        "RotationPeriodInDays",
        i64::from(MIN_ROTATION_PERIOD_DAYS),
        i64::from(MAX_ROTATION_PERIOD_DAYS),
    )?;
    input.finish()?;
    let days = days
        .and_then(|d| i32::try_from(d).ok())
        .unwrap_or(DEFAULT_ROTATION_PERIOD_DAYS);
    let conditions = Conditions::none().with("kms:RotationPeriodInDays", vec![days.to_string()]);
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    only_primary(&key)?;
    let now = call.now;
    let key = update_key(call, key, |k| k.enable_rotation(days, now)).await?;
    sync_rotation_settings(call, &key).await?;
    Ok(json!({}))
}

pub async fn disable_key_rotation(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    only_primary(&key)?;
    let key = update_key(call, key, KeyMetadata::disable_rotation).await?;
    sync_rotation_settings(call, &key).await?;
    Ok(json!({}))
}

pub async fn get_key_rotation_status(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    key.check_rotatable_origin()?;
    // A key that cannot rotate (asymmetric, HMAC) reports rotation as off: Terraform's
    // provider reads every AWS_KMS key's status and fails on an error. A key pending
    // deletion reports it off too, as in AWS.
    let enabled = key.rotation.enabled
        && key.key_spec == KeySpec::SymmetricDefault
        && key.state != KeyState::PendingDeletion;
    let mut out = json!({ "KeyRotationEnabled": enabled, "KeyId": key.arn.to_string() });
    if enabled {
        if let Some(days) = key.rotation.period_days {
            out["RotationPeriodInDays"] = json!(days);
        }
        if let Some(next) = key.rotation.next {
            out["NextRotationDate"] = timestamp(next);
        }
    }
    Ok(out)
}

pub async fn rotate_key_on_demand(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    if key.origin == Origin::External {
        // Imported material rotates to the material imported for it, which waits.
        let now = call.now;
        let limit = call.services.quotas.resources.on_demand_rotations_per_key;
        let key = update_key(call, key, |k| k.rotate_imported(now, limit)).await?;
        return Ok(json!({ "KeyId": key.arn.to_string() }));
    }
    let key = rotate_key(
        call.services,
        call.audit(),
        key.into_metadata(),
        RotationType::OnDemand,
        call.now,
    )
    .await?;
    Ok(json!({ "KeyId": key.arn.to_string() }))
}

pub async fn list_key_rotations(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let include = input.enumeration(
        "IncludeKeyMaterial",
        |s| matches!(s, "ALL_KEY_MATERIAL" | "ROTATIONS_ONLY").then(|| s == "ALL_KEY_MATERIAL"),
        &["ALL_KEY_MATERIAL", "ROTATIONS_ONLY"],
    )?;
    let (limit, after) = finish_with_page(&mut input, 1000, 100)?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    only_symmetric(&key)?;
    let all = include.unwrap_or(false);
    if key.origin == Origin::External {
        return list_imported_rotations(&key, all, limit, after);
    }
    let materials = call
        .services
        .store
        .materials(key.region(), &key.id())
        .await
        .map_err(store_failure)?;
    let rows: Vec<StoredMaterial> = materials
        .into_iter()
        .filter(|m| all || m.rotation_type.is_some())
        .collect();
    let (rows, mut out) = page_of_materials(rows, after, limit, |m| m.material_id)?;
    let arn = key.arn.to_string();
    let entries: Vec<Value> = rows
        .iter()
        .map(|m| {
            let mut e = json!({
                "KeyId": arn,
                "KeyMaterialId": m.material_id.to_string(),
                "KeyMaterialState": if m.material_id == key.current_material { "CURRENT" } else { "NON_CURRENT" },
            });
            if let Some(kind) = m.rotation_type {
                e["RotationDate"] = timestamp(m.created);
                e["RotationType"] = json!(kind.as_str());
            }
            e
        })
        .collect();
    out.insert("Rotations".into(), Value::Array(entries));
    Ok(Value::Object(out))
}

/// One page of a key's materials, in their order, after the material the marker names.
fn page_of_materials<T>(
    mut rows: Vec<T>,
    after: Option<String>,
    limit: usize,
    id: impl Fn(&T) -> MaterialId,
) -> Result<(Vec<T>, serde_json::Map<String, Value>), ApiError> {
    if let Some(after) = &after {
        let position = rows
            .iter()
            .position(|m| &id(m).to_string() == after)
            .ok_or_else(KmsError::invalid_marker)?;
        rows.drain(..=position);
    }
    Ok(finish_page(rows, limit, |m| id(m).to_string()))
}

/// ListKeyRotations of a key of imported material: its materials as the key records them,
/// with their import state and expiry. ROTATIONS_ONLY lists the materials rotation made
/// current; ALL_KEY_MATERIAL adds the first one and the one pending rotation.
fn list_imported_rotations(
    key: &KeyMetadata,
    all: bool,
    limit: usize,
    after: Option<String>,
) -> Result<Value, ApiError> {
    let rows: Vec<&ImportedMaterial> = key
        .import
        .materials
        .iter()
        .filter(|m| all || m.rotated_at.is_some())
        .collect();
    let (rows, mut out) = page_of_materials(rows, after, limit, |m| m.id)?;
    let arn = key.arn.to_string();
    let entries: Vec<Value> = rows
        .iter()
        .map(|m| {
            let mut e = json!({
                "KeyId": arn,
                "KeyMaterialId": m.id.to_string(),
                "KeyMaterialState": m.state.as_str(),
                "ImportState": if m.imported { "IMPORTED" } else { "PENDING_IMPORT" },
            });
            if let Some(d) = &m.description {
                e["KeyMaterialDescription"] = json!(d);
            }
            if let Some(model) = &m.expiration_model {
                e["ExpirationModel"] = json!(model);
            }
            if let Some(valid_to) = m.valid_to {
                e["ValidTo"] = timestamp(valid_to);
            }
            if let Some(at) = m.rotated_at {
                e["RotationDate"] = timestamp(at);
                e["RotationType"] = json!(RotationType::OnDemand.as_str());
            }
            e
        })
        .collect();
    out.insert("Rotations".into(), Value::Array(entries));
    Ok(Value::Object(out))
}
