//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use ferrokms_core::ids::{AliasName, AliasNameError, KeyId, KeyReference};
use ferrokms_core::key::{KeyMetadata, KeySpec, KeyUsage};
use ferrokms_core::KmsError;
use ferrokms_store::{AliasRecord, Page, StoreError};
use serde_json::{json, Value};

use super::authorize::{authorize_iam, authorize_key, no_resource, Conditions, Named};
use super::operations::On;
use super::resolve::resolve_key;
use super::{finish_page, finish_with_page, store_failure, Call};
use crate::error::ApiError;
use crate::wire::{timestamp, Input};

fn alias_name(raw: &str, creating: bool) -> Result<AliasName, ApiError> {
    let parsed = if creating {
        AliasName::parse_new(raw)
    } else {
        AliasName::parse_existing(raw)
    };
    parsed.map_err(|e| {
        match e {
            AliasNameError::Pattern => KmsError::alias_name_invalid(raw),
            AliasNameError::Prefix => KmsError::alias_prefix_missing(),
            AliasNameError::Reserved => KmsError::alias_reserved_prefix(raw),
            AliasNameError::Colon => KmsError::alias_invalid_characters(raw),
        }
        .into()
    })
}

fn quota_error(call: &Call<'_>, e: StoreError) -> ApiError {
    match e {
        StoreError::LimitExceeded { in_use } => {
            KmsError::aliases_per_key_limit(call.services.quotas.resources.aliases_per_key, in_use)
                .into()
        }
        other => store_failure(other),
    }
}

fn alias_not_found(call: &Call<'_>, name: &AliasName) -> ApiError {
    KmsError::alias_not_found(name.arn(call.request.region(), call.request.principal().account()))
        .into()
}

/// An alias target must be named by key id or key ARN, never by another alias.
fn refuse_alias_target(raw: &str) -> Result<(), ApiError> {
    if matches!(
        KeyReference::parse(raw),
        KeyReference::Alias(_) | KeyReference::AliasArn { .. }
    ) {
        return Err(KmsError::alias_target_is_alias().into());
    }
    Ok(())
}

pub async fn create_alias(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let name = input.required_string("AliasName", 1, 256)?;
    let target = input.required_string("TargetKeyId", 1, 2048)?;
    input.finish()?;
    let name = alias_name(&name, true)?;
    refuse_alias_target(&target)?;
    let region = call.request.region().clone();
    let account = call.request.principal().account().clone();
    authorize_iam(
        call,
        On::Alias,
        &name.arn(&region, &account),
        None,
        &Conditions::none(),
    )?;
    let key = resolve_key(call, &target, On::NewKey, &Conditions::none()).await?;
    key.check_not_pending_deletion()?;
    let record = AliasRecord {
        region,
        account,
        name,
        target: key.id(),
        created: call.now,
        updated: call.now,
    };
    match call
        .services
        .store
        .create_alias(
            call.audit(),
            &record,
            call.services.quotas.resources.aliases_per_key,
        )
        .await
    {
        Ok(()) => Ok(json!({})),
        Err(StoreError::AlreadyExists) => {
            Err(KmsError::alias_exists(record.name.arn(&record.region, &record.account)).into())
        }
        Err(e) => Err(quota_error(call, e)),
    }
}

/// What UpdateAlias keeps: "The current and new KMS key must be the same type (both
/// symmetric or both asymmetric or both HMAC), and they must have the same key usage."
fn key_kind(key: &KeyMetadata) -> (&'static str, KeyUsage) {
    let kind = if key.key_spec == KeySpec::SymmetricDefault {
        "symmetric"
    } else if key.key_spec.is_hmac() {
        "HMAC"
    } else {
        "asymmetric"
    };
    (kind, key.key_usage)
}

/// The alias `name` of the caller, and the key it points to now authorized as `on` (the
/// current key of UpdateAlias and DeleteAlias), after kms:<op> on the alias itself.
async fn existing_alias(
    call: &Call<'_>,
    name: &AliasName,
) -> Result<(AliasRecord, Option<super::authorize::AuthorizedKey>), ApiError> {
    let region = call.request.region();
    let account = call.request.principal().account();
    authorize_iam(
        call,
        On::Alias,
        &name.arn(region, account),
        None,
        &Conditions::none(),
    )?;
    let alias = call
        .services
        .store
        .alias(region, account, name)
        .await
        .map_err(store_failure)?
        .ok_or_else(|| alias_not_found(call, name))?;
    let current = call
        .services
        .store
        .key(region, &alias.target)
        .await
        .map_err(store_failure)?
        .filter(|k| k.account() == account);
    let current = match current {
        Some(key) => Some(
            authorize_key(
                call,
                key,
                On::CurrentKey,
                Named::ByRequest,
                &Conditions::none(),
            )
            .await?,
        ),
        None => {
            // An alias left behind by a key that no longer exists protects nothing.
            no_resource(call, On::CurrentKey);
            None
        }
    };
    Ok((alias, current))
}

pub async fn update_alias(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let name = input.required_string("AliasName", 1, 256)?;
    let target = input.required_string("TargetKeyId", 1, 2048)?;
    input.finish()?;
    let name = alias_name(&name, true)?;
    refuse_alias_target(&target)?;
    // The alias moves only from the key that was authorized as its current one; if another
    // request moved it in between, the new current key is authorized again.
    for _ in 0..ALIAS_ATTEMPTS {
        let (existing, current) = existing_alias(call, &name).await?;
        let key = resolve_key(call, &target, On::NewKey, &Conditions::none()).await?;
        key.check_not_pending_deletion()?;
        if let Some(current) = &current {
            if key_kind(current) != key_kind(&key) {
                return Err(KmsError::alias_target_kind_mismatch(
                    name.arn(&existing.region, &existing.account),
                    &key.arn,
                )
                .into());
            }
        }
        let from = existing.target;
        let record = AliasRecord {
            target: key.id(),
            updated: call.now,
            ..existing
        };
        match call
            .services
            .store
            .retarget_alias(
                call.audit(),
                &record,
                &from,
                call.services.quotas.resources.aliases_per_key,
            )
            .await
        {
            Ok(()) => return Ok(json!({})),
            Err(StoreError::NotFound) => return Err(alias_not_found(call, &name)),
            Err(StoreError::Conflict) => continue,
            Err(e) => return Err(quota_error(call, e)),
        }
    }
    Err(KmsError::internal().into())
}

/// How often UpdateAlias and DeleteAlias start again when the alias moved meanwhile.
const ALIAS_ATTEMPTS: usize = 4;

pub async fn delete_alias(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let name = input.required_string("AliasName", 1, 256)?;
    input.finish()?;
    let name = alias_name(&name, false)?;
    let region = call.request.region();
    let account = call.request.principal().account();
    for _ in 0..ALIAS_ATTEMPTS {
        let (existing, _) = existing_alias(call, &name).await?;
        let deleted = call
            .services
            .store
            .delete_alias(call.audit(), region, account, &name, &existing.target)
            .await
            .map_err(store_failure)?;
        if deleted {
            return Ok(json!({}));
        }
        // Gone (existing_alias says NotFound next time) or moved (authorized again).
    }
    Err(alias_not_found(call, &name))
}

pub async fn list_aliases(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.string("KeyId", 1, 2048)?;
    let (limit, after) = finish_with_page(&mut input, 100, 50)?;
    if let Some(a) = &after {
        if AliasName::parse_existing(a).is_err() {
            return Err(KmsError::invalid_marker().into());
        }
    }
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
    let region = call.request.region();
    let account = call.request.principal().account();
    // KeyId only filters the caller's own aliases: the key must be the caller's, in this
    // Region; ListAliases needs no permission on it.
    let target: Option<KeyId> = match key_id {
        Some(raw) => {
            let id = match KeyReference::parse(&raw) {
                KeyReference::Id(id) => id,
                KeyReference::Arn(arn) if &arn.region == region && &arn.account == account => {
                    arn.key_id
                }
                KeyReference::Arn(arn) if &arn.region != region => {
                    return Err(KmsError::invalid_arn_region(&arn.region).into())
                }
                KeyReference::Arn(_) => {
                    return Err(super::authorize::hidden_resource(
                        call,
                        "ListAliases",
                        Named::ByRequest,
                    ))
                }
                _ => return Err(KmsError::invalid_key_id(&raw).into()),
            };
            let exists = call
                .services
                .store
                .key(region, &id)
                .await
                .map_err(store_failure)?
                .is_some_and(|k| k.account() == account);
            if !exists {
                let arn = ferrokms_core::ids::KeyArn {
                    region: region.clone(),
                    account: account.clone(),
                    key_id: id,
                };
                return Err(KmsError::key_not_found(&arn).into());
            }
            Some(id)
        }
        None => None,
    };
    let rows = call
        .services
        .store
        .list_aliases(
            region,
            account,
            target.as_ref(),
            Page {
                after: after.as_deref(),
                limit,
            },
        )
        .await
        .map_err(store_failure)?;
    // Unfiltered, the list holds the predefined AWS managed aliases too, without a target
    // until their key is made, as AWS lists them in a fresh account. Merging the first
    // limit + 1 of each ordered list gives the first limit + 1 of the whole.
    let mut listed: Vec<(AliasName, Option<&AliasRecord>)> =
        rows.iter().map(|a| (a.name.clone(), Some(a))).collect();
    if target.is_none() {
        let predefined = super::managed::predefined_aliases()
            .filter(|name| after.as_deref().is_none_or(|a| name.as_str() > a))
            .filter(|name| !rows.iter().any(|a| &a.name == name));
        listed.extend(predefined.map(|name| (name, None)));
        listed.sort_by(|a, b| a.0.as_str().cmp(b.0.as_str()));
    }
    let (aliases, mut out) = finish_page(listed, limit, |(name, _)| name.to_string());
    let entries: Vec<Value> = aliases
        .iter()
        .map(|(name, record)| match record {
            Some(a) => json!({
                "AliasName": a.name.as_str(),
                "AliasArn": a.name.arn(region, account),
                "TargetKeyId": a.target.to_string(),
                "CreationDate": timestamp(a.created),
                "LastUpdatedDate": timestamp(a.updated),
            }),
            None => json!({
                "AliasName": name.as_str(),
                "AliasArn": name.arn(region, account),
            }),
        })
        .collect();
    out.insert("Aliases".into(), Value::Array(entries));
    Ok(Value::Object(out))
}
