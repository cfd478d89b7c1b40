//! The KMS operations, one module per API group, behind a small router.

mod aliases;
mod asymmetric;
mod authorize;
mod crypto;
mod custom_key_stores;
mod external_key_stores;
mod grants;
mod import;
mod keys;
mod mac;
mod managed;
mod multi_region;
mod policies;
mod resolve;
mod rotation;
mod tags;

use std::sync::Arc;

use ferrokms_core::key::Millis;
use ferrokms_core::material::RootKeyProvider;
use ferrokms_core::KmsError;
use ferrokms_store::{Store, StoreError};
use serde_json::Value;

use crate::error::ApiError;
use crate::sigv4::VerifiedRequest;
use crate::wire::Input;

pub use import::remove_imported_material;
pub use rotation::rotate_key;

/// What every operation may use.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub root: Arc<dyn RootKeyProvider>,
    pub quotas: Arc<crate::quotas::Quotas>,
    pub materials: Arc<crate::material_cache::MaterialCache>,
    pub key_stores: Arc<crate::key_stores::KeyStores>,
    pub xks: Arc<crate::xks::client::XksClient>,
}

/// One authenticated call: who is calling, in which region, at what time.
pub struct Call<'a> {
    pub services: &'a Services,
    pub request: &'a VerifiedRequest,
    pub now: Millis,
    /// The address the request came from (`aws:SourceIp`).
    pub source_ip: std::net::IpAddr,
    /// The keys this call touched, for its audit record.
    pub resources: std::sync::Mutex<Vec<String>>,
}

impl Call<'_> {
    /// Notes a key the call touched (once each), for the audit record.
    pub fn touched(&self, key_arn: String) {
        if let Ok(mut r) = self.resources.lock() {
            if !r.contains(&key_arn) {
                r.push(key_arn);
            }
        }
    }

    pub fn take_resources(&self) -> Vec<String> {
        self.resources
            .lock()
            .map(|mut r| std::mem::take(&mut *r))
            .unwrap_or_default()
    }
}

/// Every operation of the KMS model, so that one we do not serve yet is told apart from a
/// name KMS does not have.
pub const MODEL_OPERATIONS: &[&str] = &[
    "CancelKeyDeletion",
    "ConnectCustomKeyStore",
    "CreateAlias",
    "CreateCustomKeyStore",
    "CreateGrant",
    "CreateKey",
    "Decrypt",
    "DeleteAlias",
    "DeleteCustomKeyStore",
    "DeleteImportedKeyMaterial",
    "DeriveSharedSecret",
    "DescribeCustomKeyStores",
    "DescribeKey",
    "DisableKey",
    "DisableKeyRotation",
    "DisconnectCustomKeyStore",
    "EnableKey",
    "EnableKeyRotation",
    "Encrypt",
    "GenerateDataKey",
    "GenerateDataKeyPair",
    "GenerateDataKeyPairWithoutPlaintext",
    "GenerateDataKeyWithoutPlaintext",
    "GenerateMac",
    "GenerateRandom",
    "GetKeyLastUsage",
    "GetKeyPolicy",
    "GetKeyRotationStatus",
    "GetParametersForImport",
    "GetPublicKey",
    "ImportKeyMaterial",
    "ListAliases",
    "ListGrants",
    "ListKeyPolicies",
    "ListKeyRotations",
    "ListKeys",
    "ListResourceTags",
    "ListRetirableGrants",
    "PutKeyPolicy",
    "ReEncrypt",
    "ReplicateKey",
    "RetireGrant",
    "RevokeGrant",
    "RotateKeyOnDemand",
    "ScheduleKeyDeletion",
    "Sign",
    "TagResource",
    "UntagResource",
    "UpdateAlias",
    "UpdateCustomKeyStore",
    "UpdateKeyDescription",
    "UpdatePrimaryRegion",
    "Verify",
    "VerifyMac",
];

pub async fn dispatch(call: &Call<'_>, operation: &str, input: Input) -> Result<Value, ApiError> {
    if MODEL_OPERATIONS.contains(&operation) {
        call.services.quotas.admit_operation(
            call.request.principal().account().as_str(),
            call.request.region().as_str(),
            operation,
        )?;
    }
    match operation {
        "CreateKey" => keys::create_key(call, input).await,
        "DescribeKey" => keys::describe_key(call, input).await,
        "ListKeys" => keys::list_keys(call, input).await,
        "UpdateKeyDescription" => keys::update_key_description(call, input).await,
        "EnableKey" => keys::enable_key(call, input).await,
        "DisableKey" => keys::disable_key(call, input).await,
        "ScheduleKeyDeletion" => keys::schedule_key_deletion(call, input).await,
        "CancelKeyDeletion" => keys::cancel_key_deletion(call, input).await,
        "Encrypt" => crypto::encrypt(call, input).await,
        "Decrypt" => crypto::decrypt(call, input).await,
        "ReEncrypt" => crypto::re_encrypt(call, input).await,
        "GenerateDataKey" => crypto::generate_data_key(call, input, true).await,
        "GenerateDataKeyWithoutPlaintext" => crypto::generate_data_key(call, input, false).await,
        "GenerateRandom" => crypto::generate_random(call, input).await,
        "GenerateDataKeyPair" => crypto::generate_data_key_pair(call, input, true).await,
        "GenerateDataKeyPairWithoutPlaintext" => {
            crypto::generate_data_key_pair(call, input, false).await
        }
        "Sign" => asymmetric::sign(call, input).await,
        "Verify" => asymmetric::verify(call, input).await,
        "GetPublicKey" => asymmetric::get_public_key(call, input).await,
        "DeriveSharedSecret" => asymmetric::derive_shared_secret(call, input).await,
        "GenerateMac" => mac::generate_mac(call, input).await,
        "GetKeyPolicy" => policies::get_key_policy(call, input).await,
        "ReplicateKey" => multi_region::replicate_key(call, input).await,
        "UpdatePrimaryRegion" => multi_region::update_primary_region(call, input).await,
        "GetParametersForImport" => import::get_parameters_for_import(call, input).await,
        "ImportKeyMaterial" => import::import_key_material(call, input).await,
        "DeleteImportedKeyMaterial" => import::delete_imported_key_material(call, input).await,
        "EnableKeyRotation" => rotation::enable_key_rotation(call, input).await,
        "DisableKeyRotation" => rotation::disable_key_rotation(call, input).await,
        "GetKeyRotationStatus" => rotation::get_key_rotation_status(call, input).await,
        "RotateKeyOnDemand" => rotation::rotate_key_on_demand(call, input).await,
        "ListKeyRotations" => rotation::list_key_rotations(call, input).await,
        "CreateGrant" => grants::create_grant(call, input).await,
        "ListGrants" => grants::list_grants(call, input).await,
        "ListRetirableGrants" => grants::list_retirable_grants(call, input).await,
        "RetireGrant" => grants::retire_grant(call, input).await,
        "RevokeGrant" => grants::revoke_grant(call, input).await,
        "PutKeyPolicy" => policies::put_key_policy(call, input).await,
        "ListKeyPolicies" => policies::list_key_policies(call, input).await,
        "VerifyMac" => mac::verify_mac(call, input).await,
        "CreateCustomKeyStore" => custom_key_stores::create_custom_key_store(call, input).await,
        "DescribeCustomKeyStores" => {
            custom_key_stores::describe_custom_key_stores(call, input).await
        }
        "UpdateCustomKeyStore" => custom_key_stores::update_custom_key_store(call, input).await,
        "DeleteCustomKeyStore" => custom_key_stores::delete_custom_key_store(call, input).await,
        "ConnectCustomKeyStore" => custom_key_stores::connect_custom_key_store(call, input).await,
        "DisconnectCustomKeyStore" => {
            custom_key_stores::disconnect_custom_key_store(call, input).await
        }
        "CreateAlias" => aliases::create_alias(call, input).await,
        "UpdateAlias" => aliases::update_alias(call, input).await,
        "DeleteAlias" => aliases::delete_alias(call, input).await,
        "ListAliases" => aliases::list_aliases(call, input).await,
        "TagResource" => tags::tag_resource(call, input).await,
        "UntagResource" => tags::untag_resource(call, input).await,
        "ListResourceTags" => tags::list_resource_tags(call, input).await,
        op if MODEL_OPERATIONS.contains(&op) => Err(KmsError::UnsupportedOperation(format!(
            "{op} is not supported by this version of ferrokms."
        ))
        .into()),
        _ => Err(ApiError::UnknownOperation),
    }
}

/// Store failures the caller can do nothing about become a KMS internal error; the detail
/// goes to the log only.
pub fn store_failure(e: StoreError) -> ApiError {
    tracing::error!(error = %e, "store operation failed");
    KmsError::internal().into()
}

/// Reads `Limit` and `Marker`, the last members of every listing, and finishes the input.
pub fn finish_with_page(
    input: &mut Input,
    max: i64,
    default: usize,
) -> Result<(usize, Option<String>), ApiError> {
    let limit = input.integer("Limit", 1, max)?;
    let marker = input.string("Marker", 1, 1024)?;
    input.finish()?;
    let after = crate::wire::decode_marker(marker.as_deref())?;
    let limit = limit
        .and_then(|l| usize::try_from(l).ok())
        .unwrap_or(default);
    Ok((limit, after))
}

/// Cuts the extra row a store returns into `Truncated` and `NextMarker`.
pub fn finish_page<T>(
    mut rows: Vec<T>,
    limit: usize,
    sort_key: impl Fn(&T) -> String,
) -> (Vec<T>, serde_json::Map<String, Value>) {
    let mut extra = serde_json::Map::new();
    let truncated = rows.len() > limit;
    rows.truncate(limit);
    if truncated {
        if let Some(last) = rows.last() {
            extra.insert(
                "NextMarker".into(),
                Value::String(crate::wire::encode_marker(&sort_key(last))),
            );
        }
    }
    extra.insert("Truncated".into(), Value::Bool(truncated));
    (rows, extra)
}
