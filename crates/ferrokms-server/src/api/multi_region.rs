//! Multi-Region keys: ReplicateKey and UpdatePrimaryRegion. Every copy of a key shares its id
//! and material versions, so a ciphertext from one region decrypts in another.

use ferrokms_core::ids::Region;
use ferrokms_core::key::{default_key_policy, KeyMetadata, KeyState, Replication};
use ferrokms_core::tags::check_new_tags;
use ferrokms_core::KmsError;
use ferrokms_store::{StoreError, StoredMaterial};
use serde_json::{json, Value};

use super::authorize::{authorize_iam, authorize_key, check_lockout, Conditions, Named};
use super::keys::metadata_json;
use super::operations::On;
use super::resolve::{follow_primary, resolve_key};
use super::{store_failure, Call, Services};
use crate::error::ApiError;
use crate::wire::Input;

fn not_multi_region(key: &KeyMetadata) -> ApiError {
    KmsError::not_multi_region(&key.arn).into()
}

/// A Region of the request, which must be one this service serves.
fn read_region(call: &Call<'_>, raw: &str, member: &str) -> Result<Region, ApiError> {
    let region =
        Region::parse(raw).ok_or_else(|| ApiError::from(KmsError::region_invalid(raw, member)))?;
    if !call.services.regions.serves(&region) {
        return Err(KmsError::region_not_served(raw, member).into());
    }
    Ok(region)
}

/// Writes `replication` into every copy of the key.
async fn sync_replication(
    call: &Call<'_>,
    any_copy: &KeyMetadata,
    replication: &Replication,
) -> Result<(), ApiError> {
    let regions = std::iter::once(&replication.primary_region).chain(&replication.replica_regions);
    for region in regions {
        let Some(copy) = call
            .services
            .store
            .key(region, &any_copy.id())
            .await
            .map_err(store_failure)?
        else {
            continue;
        };
        // Every copy follows the authorized change of its primary.
        follow_primary(call.services, call.audit(), copy, |k| {
            k.replication = Some(replication.clone());
            Ok(())
        })
        .await?;
    }
    Ok(())
}

pub async fn replicate_key(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let region = input.required_string("ReplicaRegion", 1, 32)?;
    let policy = input.string("Policy", 1, 131_072)?;
    let bypass_given = input.boolean("BypassPolicyLockoutSafetyCheck")?;
    let bypass = bypass_given.unwrap_or(false);
    let description = input.string("Description", 0, 8192)?;
    let tags = input.tags("Tags")?.unwrap_or_default();
    input.finish()?;
    let replica_region = read_region(call, &region, "replicaRegion")?;
    check_new_tags(&tags, call.services.quotas.resources.tags_per_key)?;
    let conditions = Conditions::none()
        .with("kms:ReplicaRegion", vec![replica_region.to_string()])
        .bypass_lockout(bypass_given);
    let primary = resolve_key(call, &key_id, On::Key, &conditions).await?;
    // The replica is a new key in the replica Region: kms:CreateKey there, and
    // kms:TagResource for its tags, in the caller's IAM policies.
    let replica_conditions = Conditions::none()
        .key_properties(
            primary.key_spec,
            primary.key_usage,
            primary.origin,
            Some("REPLICA"),
        )
        .request_tags(&tags);
    authorize_iam(
        call,
        On::ReplicaRegion,
        "*",
        Some(&replica_region),
        &replica_conditions,
    )?;
    let Some(replication) = primary.replication.clone() else {
        return Err(not_multi_region(&primary));
    };
    if !primary.is_primary() {
        return Err(KmsError::not_multi_region_primary(&primary.arn).into());
    }
    primary.check_usable()?;
    if replica_region == replication.primary_region
        || replication.replica_regions.contains(&replica_region)
    {
        return Err(KmsError::replica_exists(primary.arn_in(&replica_region)).into());
    }
    let replica_arn = primary.arn_in(&replica_region);
    let policy = match policy {
        Some(p) => {
            let document = super::policies::parse_key_policy(call, &p)?;
            if !bypass {
                check_lockout(
                    call,
                    &document,
                    &replica_arn.to_string(),
                    primary.account().as_str(),
                )?;
            }
            p
        }
        None => default_key_policy(primary.account()),
    };
    let mut replicas = replication.replica_regions.clone();
    replicas.push(replica_region.clone());
    let replication = Replication {
        primary_region: replication.primary_region,
        replica_regions: replicas,
    };

    // The replica holds every material version, sealed for its own ARN; a replica of
    // imported material knows which materials are its, and waits for them to be imported
    // into it (AWS: "import the same key material into the replica key").
    let imported = primary.origin == ferrokms_core::key::Origin::External;
    let mut materials = Vec::new();
    let copied = if imported {
        Vec::new()
    } else {
        call.services
            .store
            .materials(primary.region(), &primary.id())
            .await
            .map_err(store_failure)?
    };
    for m in copied {
        let plain = call
            .services
            .root
            .unwrap_material(&primary.arn, &m.material_id, &m.wrapped)?;
        materials.push(StoredMaterial {
            wrapped: call
                .services
                .root
                .wrap_material(&replica_arn, &m.material_id, &plain)?,
            ..m
        });
    }
    let replica = KeyMetadata {
        arn: replica_arn,
        creation_date: call.now,
        // A replica's description is its own: AWS defaults it to empty, not the primary's.
        description: description.unwrap_or_default(),
        state: if imported {
            KeyState::PendingImport
        } else {
            KeyState::Enabled
        },
        import: primary.import.awaiting_import(),
        deletion_date: None,
        pending_window_days: None,
        policy: policy.clone().into(),
        replication: Some(replication.clone()),
        custom_key_store: None,
        revision: 0,
        ..primary.clone()
    };
    super::keys::check_key_quota(call, replica.region(), replica.account()).await?;
    match call
        .services
        .store
        .create_key(call.audit(), &replica, &materials, &tags)
        .await
    {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => return Err(KmsError::replica_exists(&replica.arn).into()),
        Err(e) => return Err(store_failure(e)),
    }
    sync_replication(call, &primary, &replication).await?;
    let tags: Vec<Value> = tags
        .iter()
        .map(|t| json!({"TagKey": t.key, "TagValue": t.value}))
        .collect();
    Ok(json!({
        "ReplicaKeyMetadata": metadata_json(&replica),
        "ReplicaPolicy": policy,
        "ReplicaTags": tags,
    }))
}

pub async fn update_primary_region(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let region = input.required_string("PrimaryRegion", 1, 32)?;
    input.finish()?;
    let new_primary = read_region(call, &region, "primaryRegion")?;
    let conditions = Conditions::none().with("kms:PrimaryRegion", vec![new_primary.to_string()]);
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    let Some(replication) = key.replication.clone() else {
        return Err(not_multi_region(&key));
    };
    // KeyId "identifies the current primary key": a replica cannot hand over a role it
    // does not hold.
    if !key.is_primary() {
        return Err(KmsError::not_current_primary(&key.arn).into());
    }
    key.check_usable()?;
    if new_primary == replication.primary_region {
        // The replica that would take over is the key itself.
        let copy = KeyMetadata::clone(&key);
        authorize_key(call, copy, On::ReplicaKey, Named::ByRequest, &conditions).await?;
        return Ok(json!({}));
    }
    if !replication.replica_regions.contains(&new_primary) {
        return Err(KmsError::key_not_found(key.arn_in(&new_primary)).into());
    }
    // kms:UpdatePrimaryRegion on the replica too, under its own key policy and in its
    // Region.
    let replica = call
        .services
        .store
        .key(&new_primary, &key.id())
        .await
        .map_err(store_failure)?
        .filter(|r| r.account() == key.account())
        .ok_or_else(|| ApiError::from(KmsError::key_not_found(key.arn_in(&new_primary))))?;
    call.touched(replica.arn.to_string());
    let replica =
        authorize_key(call, replica, On::ReplicaKey, Named::ByRequest, &conditions).await?;
    replica.check_usable()?;
    let mut replicas: Vec<Region> = replication
        .replica_regions
        .into_iter()
        .filter(|r| r != &new_primary)
        .collect();
    replicas.push(replication.primary_region);
    let updated = Replication {
        primary_region: new_primary,
        replica_regions: replicas,
    };
    sync_replication(call, &key, &updated).await?;
    Ok(json!({}))
}

/// The replicas of a primary key, as stored in their regions.
pub async fn replicas_of(
    services: &Services,
    primary: &KeyMetadata,
) -> Result<Vec<KeyMetadata>, ApiError> {
    let mut out = Vec::new();
    if let Some(r) = &primary.replication {
        for region in &r.replica_regions {
            if let Some(k) = services
                .store
                .key(region, &primary.id())
                .await
                .map_err(store_failure)?
            {
                out.push(k);
            }
        }
    }
    Ok(out)
}
