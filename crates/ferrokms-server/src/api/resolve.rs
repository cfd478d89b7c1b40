//! Turning the key identifier a caller wrote into a key, with the errors AWS gives.

use ferrokms_core::ids::{AccountId, AliasName, KeyArn, KeyId, KeyReference, Region};
use ferrokms_core::key::KeyMetadata;
use ferrokms_core::KmsError;

use super::authorize::{authorize_key, Conditions};
use super::{store_failure, Call, Services};
use crate::error::ApiError;
use crate::quotas::{RateClass, KEYED_CRYPTO_OPERATIONS};

/// Whether an operation accepts alias names and alias ARNs for its key (only the
/// cryptographic operations, DescribeKey and GetPublicKey do).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Aliases {
    Accepted,
    Refused,
}

fn not_found_key(arn: &KeyArn) -> ApiError {
    KmsError::NotFound(format!("Key '{arn}' does not exist")).into()
}

fn invalid_key_id(raw: &str) -> ApiError {
    KmsError::NotFound(format!("Invalid keyId '{raw}'")).into()
}

/// Counts a cryptographic operation against its key type's request rate (ReEncrypt once).
pub fn charge_crypto(call: &Call<'_>, action: &str, key: &KeyMetadata) -> Result<(), ApiError> {
    if KEYED_CRYPTO_OPERATIONS.contains(&action) || action == "ReEncryptFrom" {
        call.services.quotas.admit(
            call.request.principal().account().as_str(),
            call.request.region().as_str(),
            RateClass::of_key(key.key_spec),
        )?;
    }
    Ok(())
}

/// The key `id` of `account` in `region`, if the caller may do `action` with it.
async fn key_in(
    call: &Call<'_>,
    action: &str,
    region: &Region,
    account: &AccountId,
    id: KeyId,
    conditions: &Conditions,
) -> Result<KeyMetadata, ApiError> {
    let arn = KeyArn {
        region: region.clone(),
        account: account.clone(),
        key_id: id,
    };
    let key = call
        .services
        .store
        .key(region, &id)
        .await
        .map_err(store_failure)?
        .filter(|k| k.account() == account)
        .ok_or_else(|| not_found_key(&arn))?;
    call.touched(key.arn.to_string());
    charge_crypto(call, action, &key)?;
    authorize_key(call, &key, action, conditions).await?;
    Ok(key)
}

async fn alias_in(
    call: &Call<'_>,
    action: &str,
    region: &Region,
    account: &AccountId,
    name: &AliasName,
    conditions: &Conditions,
) -> Result<KeyMetadata, ApiError> {
    let found = call
        .services
        .store
        .alias(region, account, name)
        .await
        .map_err(store_failure)?;
    let found = match found {
        Some(a) => Some(a),
        None => super::managed::managed_key(call, region, account, name).await?,
    };
    let alias = found.ok_or_else(|| {
        KmsError::NotFound(format!("Alias {} is not found.", name.arn(region, account)))
    })?;
    let conditions = conditions
        .clone()
        .with("kms:RequestAlias", vec![name.to_string()]);
    key_in(call, action, region, account, alias.target, &conditions).await
}

/// Finds the key named by `raw` in the caller's region and checks that the caller may do
/// `action` with it, under the key policy and the caller's identity policies. `conditions`
/// adds the request's own condition keys (encryption context, algorithms, ...).
pub async fn resolve_key(
    call: &Call<'_>,
    raw: &str,
    aliases: Aliases,
    action: &str,
    conditions: &Conditions,
) -> Result<KeyMetadata, ApiError> {
    let region = call.request.region();
    let account = call.request.principal().account();
    match KeyReference::parse(raw) {
        KeyReference::Id(id) => key_in(call, action, region, account, id, conditions).await,
        KeyReference::Arn(arn) => {
            if &arn.region != region {
                return Err(KmsError::NotFound(format!("Invalid arn {}", arn.region)).into());
            }
            key_in(call, action, region, &arn.account, arn.key_id, conditions).await
        }
        KeyReference::Alias(name) if aliases == Aliases::Accepted => {
            alias_in(call, action, region, account, &name, conditions).await
        }
        KeyReference::AliasArn {
            region: r,
            account: a,
            name,
        } if aliases == Aliases::Accepted => {
            if &r != region {
                return Err(KmsError::NotFound(format!("Invalid arn {r}")).into());
            }
            alias_in(call, action, region, &a, &name, conditions).await
        }
        _ => Err(invalid_key_id(raw)),
    }
}

/// Applies `change` to the key and stores it with `write`; when another writer got in
/// between, reads the key again and retries, so no concurrent change is lost.
pub async fn modify_key<C, W, Fut>(
    services: &Services,
    mut key: KeyMetadata,
    mut change: C,
    write: W,
) -> Result<KeyMetadata, ApiError>
where
    C: FnMut(&mut KeyMetadata) -> Result<(), KmsError>,
    W: Fn(KeyMetadata) -> Fut,
    Fut: std::future::Future<Output = Result<i64, ferrokms_store::StoreError>>,
{
    const ATTEMPTS: usize = 8;
    for _ in 0..ATTEMPTS {
        change(&mut key)?;
        match write(key.clone()).await {
            Ok(revision) => {
                key.revision = revision;
                return Ok(key);
            }
            Err(ferrokms_store::StoreError::Conflict) => {
                key = services
                    .store
                    .key(key.region(), &key.id())
                    .await
                    .map_err(store_failure)?
                    .ok_or_else(|| not_found_key(&key.arn))?;
            }
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(KmsError::internal().into())
}

/// Read-modify-write of a key's metadata.
pub async fn update_key<F>(
    call: &Call<'_>,
    key: KeyMetadata,
    change: F,
) -> Result<KeyMetadata, ApiError>
where
    F: FnMut(&mut KeyMetadata) -> Result<(), KmsError>,
{
    let store = &call.services.store;
    modify_key(call.services, key, change, |k| async move {
        store.update_key(&k).await
    })
    .await
}
