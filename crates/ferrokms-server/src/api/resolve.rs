//! Turning the key identifier a caller wrote into an authorized key, with the errors AWS
//! gives, and changing a key through its authorization.

use ferrokms_core::ids::{AccountId, AliasName, KeyArn, KeyId, KeyReference, Region};
use ferrokms_core::key::KeyMetadata;
use ferrokms_core::KmsError;
use ferrokms_store::Intent;

use super::authorize::{authorize_key, hidden_resource, AuthorizedKey, Conditions, Named};
use super::operations::{On, Rate};
use super::{store_failure, Call, Services};
use crate::error::ApiError;
use crate::quotas::RateClass;

fn not_found_key(arn: &KeyArn) -> ApiError {
    KmsError::key_not_found(arn).into()
}

fn invalid_key_id(raw: &str) -> ApiError {
    KmsError::invalid_key_id(raw).into()
}

/// Counts a cryptographic operation against its key type's request rate (ReEncrypt once,
/// for its source key).
pub fn charge_crypto(call: &Call<'_>, on: On, key: &KeyMetadata) -> Result<(), ApiError> {
    if call.operation.rate == Rate::ByKey && on != On::DestinationKey {
        call.services.quotas.admit(
            call.request.principal().account().as_str(),
            call.request.region().as_str(),
            RateClass::of_key(key.key_spec),
        )?;
    }
    Ok(())
}

/// The action the running operation needs on `on`, for messages.
fn action_on(call: &Call<'_>, on: On) -> &'static str {
    call.operation
        .permission(on)
        .map_or(call.operation.name, |p| p.action)
}

/// The key `id` of `account` in `region`, if the caller may use it as `on` (whether
/// another account's key may be used at all is the authorizer's to say).
async fn key_in(
    call: &Call<'_>,
    on: On,
    named: Named,
    region: &Region,
    account: &AccountId,
    id: KeyId,
    conditions: &Conditions,
) -> Result<AuthorizedKey, ApiError> {
    let arn = KeyArn {
        region: region.clone(),
        account: account.clone(),
        key_id: id,
    };
    let own = account == call.request.principal().account();
    let key = call
        .services
        .store
        .key(region, &id)
        .await
        .map_err(store_failure)?
        .filter(|k| k.account() == account);
    let key = match key {
        Some(k) => k,
        // Another account's keys are neither confirmed nor denied to exist.
        None if !own => return Err(hidden_resource(call, action_on(call, on), named)),
        None => return Err(not_found_key(&arn)),
    };
    call.touched(key.arn.to_string());
    charge_crypto(call, on, &key)?;
    authorize_key(call, key, on, named, conditions).await
}

async fn alias_in(
    call: &Call<'_>,
    on: On,
    region: &Region,
    account: &AccountId,
    name: &AliasName,
    conditions: &Conditions,
) -> Result<AuthorizedKey, ApiError> {
    // Only operations that may use another account's key take aliases (a table test), so
    // another account's alias needs no check of its own here.
    let own = account == call.request.principal().account();
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
    let alias = match found {
        Some(a) => a,
        None if !own => return Err(hidden_resource(call, action_on(call, on), Named::ByRequest)),
        None => return Err(KmsError::alias_not_found(name.arn(region, account)).into()),
    };
    let conditions = conditions
        .clone()
        .with("kms:RequestAlias", vec![name.to_string()]);
    key_in(
        call,
        on,
        Named::ByRequest,
        region,
        account,
        alias.target,
        &conditions,
    )
    .await
}

/// Finds the key named by `raw` in the caller's region and checks that the caller may use
/// it as resource `on` of the running operation: the permission, whether another account's
/// key and whether an alias may be named all come from the operation table. `conditions`
/// adds the request's own condition keys (encryption context, algorithms, ...).
pub async fn resolve_key(
    call: &Call<'_>,
    raw: &str,
    on: On,
    conditions: &Conditions,
) -> Result<AuthorizedKey, ApiError> {
    let region = call.request.region();
    let account = call.request.principal().account();
    let aliases = call.operation.aliases;
    match KeyReference::parse(raw) {
        KeyReference::Id(id) => {
            key_in(call, on, Named::ByRequest, region, account, id, conditions).await
        }
        KeyReference::Arn(arn) => {
            if &arn.region != region {
                return Err(KmsError::invalid_arn_region(&arn.region).into());
            }
            key_in(
                call,
                on,
                Named::ByRequest,
                region,
                &arn.account,
                arn.key_id,
                conditions,
            )
            .await
        }
        KeyReference::Alias(name) if aliases => {
            alias_in(call, on, region, account, &name, conditions).await
        }
        KeyReference::AliasArn {
            region: r,
            account: a,
            name,
        } if aliases => {
            if &r != region {
                return Err(KmsError::invalid_arn_region(&r).into());
            }
            alias_in(call, on, region, &a, &name, conditions).await
        }
        _ => Err(invalid_key_id(raw)),
    }
}

/// The key an identifier names, found without reading or authorizing the key: its Region,
/// account and id, and the alias it was named by (looked up). None when `raw` names no key
/// or its alias does not exist.
pub struct NamedKey {
    pub region: Region,
    pub account: AccountId,
    pub id: KeyId,
    pub alias: Option<AliasName>,
}

pub async fn named_key(
    store: &dyn ferrokms_store::Store,
    region: &Region,
    account: &AccountId,
    raw: &str,
) -> Result<Option<NamedKey>, ferrokms_store::StoreError> {
    let direct = |region: Region, account: AccountId, id| NamedKey {
        region,
        account,
        id,
        alias: None,
    };
    let (r, a, name) = match KeyReference::parse(raw) {
        KeyReference::Id(id) => return Ok(Some(direct(region.clone(), account.clone(), id))),
        KeyReference::Arn(arn) => return Ok(Some(direct(arn.region, arn.account, arn.key_id))),
        KeyReference::Alias(name) => (region.clone(), account.clone(), name),
        KeyReference::AliasArn {
            region: r,
            account: a,
            name,
        } => (r, a, name),
        _ => return Ok(None),
    };
    Ok(store.alias(&r, &a, &name).await?.map(|found| NamedKey {
        region: r,
        account: a,
        id: found.target,
        alias: Some(name),
    }))
}

/// The id of the key `raw` names, for condition keys that compare two keys of one request.
pub async fn peek_key_id(call: &Call<'_>, raw: &str) -> Result<Option<KeyId>, ApiError> {
    let named = named_key(
        call.services.store.as_ref(),
        call.request.region(),
        call.request.principal().account(),
        raw,
    )
    .await
    .map_err(store_failure)?;
    Ok(named.map(|n| n.id))
}

/// A copy of a key follows an authorized change of its primary (replicas share rotation
/// and replication settings); no caller authorizes the copy itself.
pub async fn follow_primary<C>(
    services: &Services,
    audit: &Intent,
    copy: KeyMetadata,
    change: C,
) -> Result<KeyMetadata, ApiError>
where
    C: FnMut(&mut KeyMetadata) -> Result<(), KmsError>,
{
    let store = &services.store;
    modify_key(services, copy, change, |k| async move {
        store.update_key(audit, &k).await
    })
    .await
}

/// Applies `change` to the key and stores it with `write`; when another writer got in
/// between, reads the key again and retries, so no concurrent change is lost. For the
/// service's own jobs, which act for no caller; a request changes a key through
/// [`update_key`].
pub async fn modify_key<C, W, Fut>(
    services: &Services,
    key: KeyMetadata,
    change: C,
    write: W,
) -> Result<KeyMetadata, ApiError>
where
    C: FnMut(&mut KeyMetadata) -> Result<(), KmsError>,
    W: Fn(KeyMetadata) -> Fut,
    Fut: std::future::Future<Output = Result<i64, ferrokms_store::StoreError>>,
{
    let (key, ()) = modify_key_deciding(services, key, change, |k, ()| write(k)).await?;
    Ok(key)
}

/// As [`modify_key`], for a change that decides something the write needs (which stored
/// rows go with it, say): each attempt's decision, made on the key as it is then, goes to
/// that attempt's write, and the last one is returned.
pub async fn modify_key_deciding<T, C, W, Fut>(
    services: &Services,
    mut key: KeyMetadata,
    mut change: C,
    write: W,
) -> Result<(KeyMetadata, T), ApiError>
where
    T: Clone,
    C: FnMut(&mut KeyMetadata) -> Result<T, KmsError>,
    W: Fn(KeyMetadata, T) -> Fut,
    Fut: std::future::Future<Output = Result<i64, ferrokms_store::StoreError>>,
{
    const ATTEMPTS: usize = 8;
    for _ in 0..ATTEMPTS {
        let decided = change(&mut key)?;
        match write(key.clone(), decided.clone()).await {
            Ok(revision) => {
                key.revision = revision;
                return Ok((key, decided));
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

/// A writing operation changes a key only through the key it was authorized to use.
fn check_writes(call: &Call<'_>) -> Result<(), ApiError> {
    if call.operation.writes {
        Ok(())
    } else {
        tracing::error!(
            operation = call.operation.name,
            "a read-only operation tried to change a key"
        );
        Err(KmsError::internal().into())
    }
}

/// Read-modify-write of an authorized key's metadata, with a writer of the caller's choice.
pub async fn modify_authorized<C, W, Fut>(
    call: &Call<'_>,
    key: AuthorizedKey,
    change: C,
    write: W,
) -> Result<AuthorizedKey, ApiError>
where
    C: FnMut(&mut KeyMetadata) -> Result<(), KmsError>,
    W: Fn(KeyMetadata) -> Fut,
    Fut: std::future::Future<Output = Result<i64, ferrokms_store::StoreError>>,
{
    check_writes(call)?;
    let current = KeyMetadata::clone(&key);
    let changed = modify_key(call.services, current, change, write).await?;
    key.changed(changed)
}

/// Read-modify-write of an authorized key's metadata.
pub async fn update_key<F>(
    call: &Call<'_>,
    key: AuthorizedKey,
    change: F,
) -> Result<AuthorizedKey, ApiError>
where
    F: FnMut(&mut KeyMetadata) -> Result<(), KmsError>,
{
    let (store, audit) = (&call.services.store, call.audit());
    modify_authorized(call, key, change, |k| async move {
        store.update_key(audit, &k).await
    })
    .await
}
