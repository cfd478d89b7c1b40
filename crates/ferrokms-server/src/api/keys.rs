//! Key lifecycle: CreateKey, DescribeKey, ListKeys, UpdateKeyDescription, EnableKey,
//! DisableKey, ScheduleKeyDeletion, CancelKeyDeletion.

use ferrokms_core::asymmetric;
use ferrokms_core::ids::{KeyArn, KeyId};
use ferrokms_core::key::{
    default_key_policy, CustomerMasterKeySpec, KeyManager, KeyMetadata, KeySpec, KeyState,
    KeyUsage, Origin, Replication, DEFAULT_PENDING_WINDOW_DAYS,
};
use ferrokms_core::material::MaterialId;
use ferrokms_core::tags::check_new_tags;
use ferrokms_core::KmsError;
use ferrokms_store::{Page, StoredMaterial};
use serde_json::{json, Value};

use super::authorize::{authorize_iam, check_lockout, Conditions};
use super::operations::On;
use super::resolve::{resolve_key, update_key};
use super::{finish_page, finish_with_page, store_failure, Call};
use crate::error::ApiError;
use crate::wire::{timestamp, Input};

/// KeyMetadata as DescribeKey and CreateKey return it. Here, as in AWS, `KeyId` is the bare
/// id and `Arn` the ARN.
pub fn metadata_json(key: &KeyMetadata) -> Value {
    let arn = key.arn.to_string();
    let mut m = json!({
        "AWSAccountId": key.account().as_str(),
        "KeyId": key.id().to_string(),
        "Arn": arn,
        "CreationDate": timestamp(key.creation_date),
        "Enabled": key.state == KeyState::Enabled,
        "Description": key.description,
        "KeyUsage": key.key_usage.as_str(),
        "KeyState": key.state.as_str(),
        "Origin": key.origin.as_str(),
        "KeyManager": key.key_manager.as_str(),
        "KeySpec": key.key_spec.as_str(),
        "MultiRegion": key.is_multi_region(),
    });
    // AWS: "present for symmetric encryption keys with AWS_KMS or EXTERNAL origin"; an
    // imported key has none while its current material is not imported (before the first
    // import, or a replica's before its own).
    if key.key_spec == KeySpec::SymmetricDefault
        && (key.origin == Origin::AwsKms
            || (key.origin == Origin::External && key.import.current().is_some_and(|c| c.imported)))
    {
        m["CurrentKeyMaterialId"] = json!(key.current_material.to_string());
    }
    if let Some(link) = &key.custom_key_store {
        m["CustomKeyStoreId"] = json!(link.id);
        if let Some(cluster) = &link.cloud_hsm_cluster_id {
            m["CloudHsmClusterId"] = json!(cluster);
        }
        if let Some(external) = &link.xks_key_id {
            m["XksKeyConfiguration"] = json!({ "Id": external });
        }
    }
    if let Some(model) = key
        .import
        .current()
        .and_then(|c| c.expiration_model.as_ref())
    {
        m["ExpirationModel"] = json!(model);
    }
    if let Some(valid_to) = key.import.valid_to() {
        m["ValidTo"] = timestamp(valid_to);
    }
    add_spec_details(&mut m, key);
    if let Some(date) = key.deletion_date {
        m["DeletionDate"] = timestamp(date);
    }
    if key.state == KeyState::PendingReplicaDeletion {
        if let Some(days) = key.pending_window_days {
            m["PendingDeletionWindowInDays"] = json!(days);
        }
    }
    if let Some(r) = &key.replication {
        let entry = |region: &ferrokms_core::ids::Region| json!({"Arn": key.arn_in(region).to_string(), "Region": region.as_str()});
        m["MultiRegionConfiguration"] = json!({
            "MultiRegionKeyType": if key.is_primary() { "PRIMARY" } else { "REPLICA" },
            "PrimaryKey": entry(&r.primary_region),
            "ReplicaKeys": r.replica_regions.iter().map(entry).collect::<Vec<_>>(),
        });
    }
    m
}

/// The deprecated CustomerMasterKeySpec (for specs it knows) and the algorithm lists that
/// apply to the key; AWS leaves out the lists that do not.
pub fn add_spec_details(m: &mut Value, key: &KeyMetadata) {
    if CustomerMasterKeySpec::parse(key.key_spec.as_str()).is_some() {
        m["CustomerMasterKeySpec"] = json!(key.key_spec.as_str());
    }
    let names = |v: Vec<&'static str>| (!v.is_empty()).then(|| json!(v));
    let lists = [
        (
            "EncryptionAlgorithms",
            names(
                key.encryption_algorithms()
                    .iter()
                    .map(|a| a.as_str())
                    .collect(),
            ),
        ),
        (
            "SigningAlgorithms",
            names(
                key.signing_algorithms()
                    .iter()
                    .map(|a| a.as_str())
                    .collect(),
            ),
        ),
        (
            "MacAlgorithms",
            names(key.mac_algorithms().iter().map(|a| a.as_str()).collect()),
        ),
        (
            "KeyAgreementAlgorithms",
            names(
                key.key_agreement_algorithms()
                    .iter()
                    .map(|a| a.as_str())
                    .collect(),
            ),
        ),
    ];
    for (member, list) in lists {
        if let Some(list) = list {
            m[member] = list;
        }
    }
}

/// Generates key material on a blocking thread: RSA key generation takes long enough to
/// stall other requests if it ran on the async runtime.
pub async fn generate_off_runtime(spec: KeySpec) -> Result<asymmetric::NewMaterial, KmsError> {
    tokio::task::spawn_blocking(move || asymmetric::generate(spec))
        .await
        .map_err(|_| KmsError::internal())?
}

pub async fn create_key(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let policy = input.string("Policy", 1, 131_072)?;
    let description = input.string("Description", 0, 8192)?;
    let usage = input.enumeration("KeyUsage", KeyUsage::parse, KeyUsage::ALL)?;
    let cmk_spec = input.enumeration(
        "CustomerMasterKeySpec",
        CustomerMasterKeySpec::parse,
        CustomerMasterKeySpec::ALL,
    )?;
    let spec = input.enumeration("KeySpec", KeySpec::parse, KeySpec::ALL)?;
    let origin = input.enumeration("Origin", Origin::parse, Origin::ALL)?;
    let custom_key_store = input.string("CustomKeyStoreId", 1, 64)?;
    let bypass_given = input.boolean("BypassPolicyLockoutSafetyCheck")?;
    let bypass_lockout_check = bypass_given.unwrap_or(false);
    let tags = input.tags("Tags")?.unwrap_or_default();
    let multi_region = input.boolean("MultiRegion")?.unwrap_or(false);
    let xks_key_id = input.string("XksKeyId", 1, 128)?;
    if let Some(x) = &xks_key_id {
        if !x
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            input.pattern_violated("XksKeyId", x, "^[a-zA-Z0-9-_.]+$");
        }
    }
    input.finish()?;

    if spec.is_some() && cmk_spec.is_some() {
        return Err(KmsError::key_spec_conflict().into());
    }
    let spec = spec
        .or(cmk_spec.map(CustomerMasterKeySpec::key_spec))
        .unwrap_or(KeySpec::SymmetricDefault);
    let usage = match (usage, spec) {
        (Some(u), _) => u,
        (None, KeySpec::SymmetricDefault) => KeyUsage::EncryptDecrypt,
        (None, _) => return Err(KmsError::key_usage_required().into()),
    };
    if !spec.usages().contains(&usage) {
        return Err(KmsError::key_usage_incompatible(usage.as_str(), spec.as_str()).into());
    }
    if spec == KeySpec::Sm2 {
        return Err(KmsError::key_spec_unsupported(spec.as_str()).into());
    }
    ferrokms_core::fips::check_key_spec(spec)?;
    let origin = origin.unwrap_or(Origin::AwsKms);
    if custom_key_store.is_some()
        && (spec != KeySpec::SymmetricDefault || usage != KeyUsage::EncryptDecrypt || multi_region)
    {
        return Err(KmsError::custom_key_store_key_kind().into());
    }
    if custom_key_store.is_none()
        && (matches!(origin, Origin::AwsCloudhsm | Origin::ExternalKeyStore)
            || xks_key_id.is_some())
    {
        return Err(KmsError::origin_needs_custom_key_store(origin.as_str()).into());
    }
    let importing = origin == Origin::External;
    if importing {
        ferrokms_core::import::check_importable_spec(spec)?;
    }
    if custom_key_store.is_none() && origin != Origin::AwsKms && !importing {
        return Err(KmsError::origin_unsupported(origin.as_str()).into());
    }
    check_new_tags(&tags, call.services.quotas.resources.tags_per_key)?;
    let conditions = Conditions::none()
        .key_properties(spec, usage, origin, multi_region.then_some("PRIMARY"))
        .bypass_lockout(bypass_given)
        .request_tags(&tags);
    authorize_iam(call, On::Account, "*", None, &conditions)?;
    let account = call.request.principal().account().clone();
    let arn = KeyArn {
        region: call.request.region().clone(),
        account: account.clone(),
        key_id: KeyId::generate(multi_region)?,
    };
    let policy = match policy {
        Some(p) => {
            let document = super::policies::parse_key_policy(call, &p)?;
            if !bypass_lockout_check {
                check_lockout(call, &document, &arn.to_string(), account.as_str())?;
            }
            p
        }
        None => default_key_policy(&account),
    };

    check_key_quota(call, call.request.region(), &account).await?;
    let material_id = MaterialId::generate()?;
    // A key in a custom key store has its key made in the store's token, named by the
    // material id; a key for imported material has none until ImportKeyMaterial.
    let in_store = match &custom_key_store {
        Some(store) => Some(
            super::custom_key_stores::make_key_in_store(
                call,
                store,
                origin,
                xks_key_id.as_deref(),
                &material_id,
            )
            .await?,
        ),
        None => None,
    };
    // An external key store's key has material of its own too: the inner layer.
    let generated = if importing || in_store.as_ref().is_some_and(|l| l.in_token()) {
        None
    } else {
        Some(generate_off_runtime(spec).await?)
    };
    let stored = match &generated {
        Some(g) => Some(StoredMaterial {
            material_id,
            wrapped: call
                .services
                .root
                .wrap_material(&arn, &material_id, &g.material)?,
            created: call.now,
            rotation_type: None,
        }),
        None => None,
    };
    let key = KeyMetadata {
        arn,
        creation_date: call.now,
        description: description.unwrap_or_default(),
        key_usage: usage,
        key_spec: spec,
        origin,
        key_manager: KeyManager::Customer,
        state: if importing {
            KeyState::PendingImport
        } else {
            KeyState::Enabled
        },
        deletion_date: None,
        pending_window_days: None,
        current_material: material_id,
        policy: policy.into(),
        public_key: generated.and_then(|g| g.public_key),
        rotation: Default::default(),
        import: Default::default(),
        replication: multi_region.then(|| Replication {
            primary_region: call.request.region().clone(),
            replica_regions: Vec::new(),
        }),
        custom_key_store: in_store,
        revision: 0,
    };
    call.touched(key.arn.to_string());
    let created = call
        .services
        .store
        .create_key(call.audit(), &key, stored.as_slice(), &tags)
        .await;
    if let Err(e) = created {
        if let Some(store) = &custom_key_store {
            super::custom_key_stores::forget_key_in_store(call, store, &material_id);
        }
        return Err(store_failure(e));
    }
    Ok(json!({ "KeyMetadata": metadata_json(&key) }))
}

/// Refuses a new customer managed key beyond the account's quota in `region`. (Nodes
/// creating keys at the same moment may pass it by a few.)
pub async fn check_key_quota(
    call: &Call<'_>,
    region: &ferrokms_core::ids::Region,
    account: &ferrokms_core::ids::AccountId,
) -> Result<(), ApiError> {
    let max = call.services.quotas.resources.keys_per_region;
    let in_use = call
        .services
        .store
        .key_count(region, account)
        .await
        .map_err(store_failure)?;
    if in_use >= max {
        return Err(KmsError::keys_per_region_limit(max, in_use).into());
    }
    Ok(())
}

pub async fn describe_key(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    super::crypto::read_grant_tokens(&mut input)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    let mut metadata = metadata_json(&key);
    // A key whose custom key store is not connected is Unavailable until it is, whatever
    // its own state was (pending deletion stays shown).
    if matches!(key.state, KeyState::Enabled | KeyState::Disabled)
        && !super::custom_key_stores::store_connected(call, &key).await?
    {
        metadata["KeyState"] = json!(KeyState::Unavailable.as_str());
        metadata["Enabled"] = json!(false);
    }
    Ok(json!({ "KeyMetadata": metadata }))
}

pub async fn list_keys(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let (limit, after) = finish_with_page(&mut input, 1000, 100)?;
    if let Some(a) = &after {
        if KeyId::parse(a).is_none() {
            return Err(KmsError::invalid_marker().into());
        }
    }
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
    let rows = call
        .services
        .store
        .list_keys(
            call.request.region(),
            call.request.principal().account(),
            Page {
                after: after.as_deref(),
                limit,
            },
        )
        .await
        .map_err(store_failure)?;
    let (keys, mut out) = finish_page(rows, limit, |k| k.id().to_string());
    let entries: Vec<Value> = keys
        .iter()
        .map(|k| json!({"KeyId": k.id().to_string(), "KeyArn": k.arn.to_string()}))
        .collect();
    out.insert("Keys".into(), Value::Array(entries));
    Ok(Value::Object(out))
}

/// Reads the one `KeyId` member that key-management operations take (no aliases).
fn managed_key_id(input: &mut Input) -> Result<String, ApiError> {
    input.required_string("KeyId", 1, 2048)
}

pub async fn update_key_description(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = managed_key_id(&mut input)?;
    let description = input.required_string("Description", 0, 8192)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    update_key(call, key, |k| {
        k.check_not_pending_deletion()?;
        k.description = description.clone();
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn enable_key(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = managed_key_id(&mut input)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    update_key(call, key, KeyMetadata::enable).await?;
    Ok(json!({}))
}

pub async fn disable_key(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = managed_key_id(&mut input)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    update_key(call, key, KeyMetadata::disable).await?;
    Ok(json!({}))
}

pub async fn schedule_key_deletion(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = managed_key_id(&mut input)?;
    let window = input.integer("PendingWindowInDays", 1, 365)?;
    input.finish()?;
    let window = window
        .and_then(|w| i32::try_from(w).ok())
        .unwrap_or(DEFAULT_PENDING_WINDOW_DAYS);
    let conditions = Conditions::none().with(
        "kms:ScheduleKeyDeletionPendingWindowInDays",
        vec![window.to_string()],
    );
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    let now = call.now;
    let key = update_key(call, key, |k| k.schedule_deletion(window, now)).await?;
    let mut out = json!({
        "KeyId": key.arn.to_string(),
        "KeyState": key.state.as_str(),
        "PendingWindowInDays": window,
    });
    if let Some(date) = key.deletion_date {
        out["DeletionDate"] = timestamp(date);
    }
    Ok(out)
}

pub async fn cancel_key_deletion(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = managed_key_id(&mut input)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    let key = update_key(call, key, KeyMetadata::cancel_deletion).await?;
    Ok(json!({ "KeyId": key.arn.to_string() }))
}

/// GetKeyLastUsage: the last successful cryptographic operation with the key, recorded with
/// its request's audit batch, since tracking began (this store's first use of the
/// operation's table, or the key's creation, whichever is later). `KeyId` is the bare id,
/// as in KeyMetadata, whose member of that name the model describes in the same words.
pub async fn get_key_last_usage(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    let store = &call.services.store;
    let started = store
        .usage_tracking_start(call.now)
        .await
        .map_err(store_failure)?;
    let used = store
        .key_last_usage(key.region(), &key.id())
        .await
        .map_err(store_failure)?;
    let mut out = json!({
        "KeyId": key.id().to_string(),
        "KeyCreationDate": timestamp(key.creation_date),
        "TrackingStartDate": timestamp(started.max(key.creation_date)),
    });
    if let Some(used) = used.filter(|u| u.at >= key.creation_date) {
        out["KeyLastUsage"] = json!({
            "Operation": used.operation,
            "Timestamp": timestamp(used.at),
            "CloudTrailEventId": used.event_id,
            "KmsRequestId": used.request_id,
        });
    }
    Ok(out)
}
