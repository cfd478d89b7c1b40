//! Aliases: CreateAlias, UpdateAlias, DeleteAlias, ListAliases.

use ferrokms_core::ids::{AliasName, AliasNameError, KeyId, KeyReference};
use ferrokms_core::KmsError;
use ferrokms_store::{AliasRecord, Page, StoreError};
use serde_json::{json, Value};

use super::authorize::{authorize_account, authorize_key, Conditions};
use super::resolve::{resolve_key, Aliases};
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
            AliasNameError::Pattern => KmsError::Validation(format!(
                "1 validation error detected: Value '{raw}' at 'aliasName' failed to satisfy constraint: Member must satisfy regular expression pattern: {}",
                ferrokms_core::ids::ALIAS_PATTERN
            )),
            AliasNameError::Prefix => KmsError::Validation(
                "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
            ),
            AliasNameError::Reserved => KmsError::InvalidAliasName(format!(
                "Alias {raw} cannot begin with the reserved prefix alias/aws/."
            )),
        }
        .into()
    })
}

fn quota_error(call: &Call<'_>, e: StoreError) -> ApiError {
    match e {
        StoreError::LimitExceeded { in_use } => KmsError::LimitExceeded(format!(
            "Aliases per key quota for this account in this region is {}, current usage is {in_use}.",
            call.services.quotas.resources.aliases_per_key
        ))
        .into(),
        other => store_failure(other),
    }
}

/// An alias target must be named by key id or key ARN, never by another alias.
fn refuse_alias_target(raw: &str) -> Result<(), ApiError> {
    if matches!(
        KeyReference::parse(raw),
        KeyReference::Alias(_) | KeyReference::AliasArn { .. }
    ) {
        return Err(KmsError::Validation("Aliases must refer to keys. Not aliases".into()).into());
    }
    Ok(())
}

pub async fn create_alias(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let name = input.required_string("AliasName", 1, 256)?;
    let target = input.required_string("TargetKeyId", 1, 2048)?;
    input.finish()?;
    let name = alias_name(&name, true)?;
    refuse_alias_target(&target)?;
    let key = resolve_key(
        call,
        &target,
        Aliases::Refused,
        "CreateAlias",
        &Conditions::none(),
    )
    .await?;
    key.check_not_pending_deletion()?;
    let record = AliasRecord {
        region: call.request.region().clone(),
        account: call.request.principal().account().clone(),
        name,
        target: key.id(),
        created: call.now,
        updated: call.now,
    };
    match call
        .services
        .store
        .create_alias(&record, call.services.quotas.resources.aliases_per_key)
        .await
    {
        Ok(()) => Ok(json!({})),
        Err(StoreError::AlreadyExists) => Err(KmsError::AlreadyExists(format!(
            "An alias with the name {} already exists",
            record.name.arn(&record.region, &record.account)
        ))
        .into()),
        Err(e) => Err(quota_error(call, e)),
    }
}

pub async fn update_alias(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let name = input.required_string("AliasName", 1, 256)?;
    let target = input.required_string("TargetKeyId", 1, 2048)?;
    input.finish()?;
    let name = alias_name(&name, true)?;
    refuse_alias_target(&target)?;
    let region = call.request.region().clone();
    let account = call.request.principal().account().clone();
    let not_found = || -> ApiError {
        KmsError::NotFound(format!(
            "Alias {} is not found.",
            name.arn(&region, &account)
        ))
        .into()
    };
    let existing = call
        .services
        .store
        .alias(&region, &account, &name)
        .await
        .map_err(store_failure)?
        .ok_or_else(not_found)?;
    let key = resolve_key(
        call,
        &target,
        Aliases::Refused,
        "UpdateAlias",
        &Conditions::none(),
    )
    .await?;
    key.check_not_pending_deletion()?;
    let record = AliasRecord {
        target: key.id(),
        updated: call.now,
        ..existing
    };
    match call
        .services
        .store
        .retarget_alias(&record, call.services.quotas.resources.aliases_per_key)
        .await
    {
        Ok(()) => Ok(json!({})),
        Err(StoreError::NotFound) => Err(not_found()),
        Err(e) => Err(quota_error(call, e)),
    }
}

pub async fn delete_alias(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let name = input.required_string("AliasName", 1, 256)?;
    input.finish()?;
    let name = alias_name(&name, false)?;
    let region = call.request.region();
    let account = call.request.principal().account();
    let not_found = || -> ApiError {
        KmsError::NotFound(format!("Alias {} is not found.", name.arn(region, account))).into()
    };
    let alias = call
        .services
        .store
        .alias(region, account, &name)
        .await
        .map_err(store_failure)?
        .ok_or_else(not_found)?;
    // Deleting an alias needs kms:DeleteAlias on the key it points to.
    if let Some(key) = call
        .services
        .store
        .key(region, &alias.target)
        .await
        .map_err(store_failure)?
    {
        authorize_key(call, &key, "DeleteAlias", &Conditions::none()).await?;
    }
    let deleted = call
        .services
        .store
        .delete_alias(region, account, &name)
        .await
        .map_err(store_failure)?;
    if !deleted {
        return Err(not_found());
    }
    Ok(json!({}))
}

pub async fn list_aliases(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.string("KeyId", 1, 2048)?;
    let (limit, after) = finish_with_page(&mut input, 100, 50)?;
    if let Some(a) = &after {
        if AliasName::parse_existing(a).is_err() {
            return Err(crate::wire::invalid_marker().into());
        }
    }
    authorize_account(call, "ListAliases", &Conditions::none())?;
    let target: Option<KeyId> = match key_id {
        Some(raw) => Some(
            resolve_key(
                call,
                &raw,
                Aliases::Refused,
                "ListAliases",
                &Conditions::none(),
            )
            .await?
            .id(),
        ),
        None => None,
    };
    let region = call.request.region();
    let account = call.request.principal().account();
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
    let (aliases, mut out) = finish_page(rows, limit, |a| a.name.to_string());
    let entries: Vec<Value> = aliases
        .iter()
        .map(|a| {
            json!({
                "AliasName": a.name.as_str(),
                "AliasArn": a.name.arn(region, account),
                "TargetKeyId": a.target.to_string(),
                "CreationDate": timestamp(a.created),
                "LastUpdatedDate": timestamp(a.updated),
            })
        })
        .collect();
    out.insert("Aliases".into(), Value::Array(entries));
    Ok(Value::Object(out))
}
