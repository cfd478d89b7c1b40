//! The KMS operations, one module per API group, behind a small router.

mod aliases;
mod asymmetric;
pub(crate) mod authorize;
mod crypto;
mod custom_key_stores;
mod external_key_stores;
pub(crate) mod grants;
mod import;
mod keys;
mod mac;
mod managed;
mod multi_region;
pub mod operations;
mod policies;
pub(crate) mod resolve;
mod rotation;
mod tags;

use std::sync::Arc;

use ferrokms_core::key::Millis;
use ferrokms_core::material::RootKeyProvider;
use ferrokms_core::KmsError;
use ferrokms_store::{Intent, Store, StoreError};
use serde_json::Value;

use crate::error::ApiError;
use crate::sigv4::VerifiedRequest;
use crate::wire::Input;
use operations::{Operation, OperationSpec, Rate};

pub use import::expire_imported_materials;
pub(crate) use keys::generate_off_runtime;
pub use rotation::rotate_key;

/// What every operation may use.
pub struct Services {
    pub store: Arc<dyn Store>,
    pub root: Arc<dyn RootKeyProvider>,
    pub quotas: Arc<crate::quotas::Quotas>,
    pub materials: Arc<crate::material_cache::MaterialCache>,
    pub key_stores: Arc<crate::key_stores::KeyStores>,
    pub xks: Arc<crate::xks::client::XksClient>,
    /// The Regions this service serves.
    pub regions: Arc<crate::regions::Regions>,
}

/// One authenticated call of one operation: who is calling, in which region, at what time,
/// from where.
pub struct Call<'a> {
    pub services: &'a Services,
    pub request: &'a VerifiedRequest,
    /// The record every write of this call carries (`ferrokms_store::outbox`), made at
    /// the first write; handlers take it with [`Call::audit`].
    pub audit: &'a crate::audit::PendingIntent<'a>,
    /// The operation's entry in the table.
    pub operation: &'static OperationSpec,
    pub now: Millis,
    /// The address the request came from (`aws:SourceIp`).
    pub source_ip: std::net::IpAddr,
    /// Whether the request came over TLS (`aws:SecureTransport`).
    pub secure_transport: bool,
    /// The keys this call touched, for its audit record.
    pub resources: std::sync::Mutex<Vec<String>>,
    /// The resources whose permissions were decided, so that an operation that forgot
    /// one cannot succeed.
    pub decided: std::sync::Mutex<Vec<operations::On>>,
}

impl Call<'_> {
    /// The record a write of this call carries.
    pub fn audit(&self) -> &Intent {
        self.audit.get()
    }

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

    /// Notes that the permission on `on` was decided in the caller's favour.
    pub(crate) fn checked(&self, on: operations::On) {
        if let Ok(mut d) = self.decided.lock() {
            if !d.contains(&on) {
                d.push(on);
            }
        }
    }

    /// The request's place and time, as condition keys see them.
    pub fn environment(&self) -> authorize::Environment {
        authorize::Environment {
            region: self.request.region().clone(),
            now: self.now,
            source_ip: self.source_ip,
            secure_transport: self.secure_transport,
        }
    }

    /// Refuses an answer of an operation that did not decide every permission the table
    /// says it always needs: a handler that forgot one fails closed.
    fn check_all_decided(&self) -> Result<(), ApiError> {
        let decided = self.decided.lock().map(|d| d.clone()).unwrap_or_default();
        let missing: Vec<_> = self
            .operation
            .permissions
            .iter()
            .filter(|p| p.when == operations::When::Always && !decided.contains(&p.on))
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            tracing::error!(
                operation = self.operation.name,
                ?missing,
                "permissions left undecided"
            );
            Err(KmsError::internal().into())
        }
    }
}

/// Counts a request against its operation's rate (the pipeline's rate-limit stage); an
/// operation rated by its key's class is counted once the key is known (`resolve`).
pub fn admit(
    services: &Services,
    request: &VerifiedRequest,
    operation: &OperationSpec,
) -> Result<(), ApiError> {
    let account = request.principal().account().as_str();
    let region = request.region().as_str();
    match operation.rate {
        Rate::ByKey => Ok(()),
        Rate::Symmetric => {
            services
                .quotas
                .admit(account, region, crate::quotas::RateClass::Symmetric)
        }
        Rate::Own(_) => services.quotas.admit(
            account,
            region,
            crate::quotas::RateClass::Operation(operation.operation),
        ),
    }
}

/// Runs the operation of `call` (authorizing inside, through `authorize`); an answer (or a
/// dry run's "would have succeeded") needs every permission decided.
pub async fn dispatch(call: &Call<'_>, input: Input) -> Result<Value, ApiError> {
    let result = run(call, input).await;
    match &result {
        Ok(_) | Err(ApiError::Kms(KmsError::DryRunOperation(_))) => call.check_all_decided()?,
        Err(_) => {}
    }
    result
}

async fn run(call: &Call<'_>, input: Input) -> Result<Value, ApiError> {
    use Operation as O;
    match call.operation.operation {
        O::CreateKey => keys::create_key(call, input).await,
        O::DescribeKey => keys::describe_key(call, input).await,
        O::ListKeys => keys::list_keys(call, input).await,
        O::UpdateKeyDescription => keys::update_key_description(call, input).await,
        O::EnableKey => keys::enable_key(call, input).await,
        O::DisableKey => keys::disable_key(call, input).await,
        O::ScheduleKeyDeletion => keys::schedule_key_deletion(call, input).await,
        O::CancelKeyDeletion => keys::cancel_key_deletion(call, input).await,
        O::Encrypt => crypto::encrypt(call, input).await,
        O::Decrypt => crypto::decrypt(call, input).await,
        O::ReEncrypt => crypto::re_encrypt(call, input).await,
        O::GenerateDataKey => crypto::generate_data_key(call, input, true).await,
        O::GenerateDataKeyWithoutPlaintext => crypto::generate_data_key(call, input, false).await,
        O::GenerateRandom => crypto::generate_random(call, input).await,
        O::GenerateDataKeyPair => crypto::generate_data_key_pair(call, input, true).await,
        O::GenerateDataKeyPairWithoutPlaintext => {
            crypto::generate_data_key_pair(call, input, false).await
        }
        O::Sign => asymmetric::sign(call, input).await,
        O::Verify => asymmetric::verify(call, input).await,
        O::GetPublicKey => asymmetric::get_public_key(call, input).await,
        O::DeriveSharedSecret => asymmetric::derive_shared_secret(call, input).await,
        O::GenerateMac => mac::generate_mac(call, input).await,
        O::VerifyMac => mac::verify_mac(call, input).await,
        O::GetKeyPolicy => policies::get_key_policy(call, input).await,
        O::PutKeyPolicy => policies::put_key_policy(call, input).await,
        O::ListKeyPolicies => policies::list_key_policies(call, input).await,
        O::ReplicateKey => multi_region::replicate_key(call, input).await,
        O::UpdatePrimaryRegion => multi_region::update_primary_region(call, input).await,
        O::GetParametersForImport => import::get_parameters_for_import(call, input).await,
        O::ImportKeyMaterial => import::import_key_material(call, input).await,
        O::DeleteImportedKeyMaterial => import::delete_imported_key_material(call, input).await,
        O::EnableKeyRotation => rotation::enable_key_rotation(call, input).await,
        O::DisableKeyRotation => rotation::disable_key_rotation(call, input).await,
        O::GetKeyRotationStatus => rotation::get_key_rotation_status(call, input).await,
        O::RotateKeyOnDemand => rotation::rotate_key_on_demand(call, input).await,
        O::ListKeyRotations => rotation::list_key_rotations(call, input).await,
        O::CreateGrant => grants::create_grant(call, input).await,
        O::ListGrants => grants::list_grants(call, input).await,
        O::ListRetirableGrants => grants::list_retirable_grants(call, input).await,
        O::RetireGrant => grants::retire_grant(call, input).await,
        O::RevokeGrant => grants::revoke_grant(call, input).await,
        O::CreateCustomKeyStore => custom_key_stores::create_custom_key_store(call, input).await,
        O::DescribeCustomKeyStores => {
            custom_key_stores::describe_custom_key_stores(call, input).await
        }
        O::UpdateCustomKeyStore => custom_key_stores::update_custom_key_store(call, input).await,
        O::DeleteCustomKeyStore => custom_key_stores::delete_custom_key_store(call, input).await,
        O::ConnectCustomKeyStore => custom_key_stores::connect_custom_key_store(call, input).await,
        O::DisconnectCustomKeyStore => {
            custom_key_stores::disconnect_custom_key_store(call, input).await
        }
        O::CreateAlias => aliases::create_alias(call, input).await,
        O::UpdateAlias => aliases::update_alias(call, input).await,
        O::DeleteAlias => aliases::delete_alias(call, input).await,
        O::ListAliases => aliases::list_aliases(call, input).await,
        O::TagResource => tags::tag_resource(call, input).await,
        O::UntagResource => tags::untag_resource(call, input).await,
        O::ListResourceTags => tags::list_resource_tags(call, input).await,
        O::GetKeyLastUsage => keys::get_key_last_usage(call, input).await,
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
