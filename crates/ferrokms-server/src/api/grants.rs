//! Grants: CreateGrant, ListGrants, ListRetirableGrants, RetireGrant, RevokeGrant.

use std::collections::BTreeMap;

use ferrokms_core::grant::{
    new_grant_id, new_grant_token, parse_grant_token, GrantConstraints, GrantTerms,
    GRANT_OPERATIONS, MAX_GRANTS_PER_KEY,
};
use ferrokms_core::key::{KeyMetadata, KeySpec};
use ferrokms_core::KmsError;
use ferrokms_store::{GrantRecord, Page, StoreError};
use serde_json::{json, Map, Value};

use super::authorize::{authorize_iam, authorize_retire, hidden_resource, Conditions, Named};
use super::crypto::{read_dry_run, read_grant_tokens};
use super::operations::On;
use super::resolve::resolve_key;
use super::{finish_page, finish_with_page, store_failure, Call};
use crate::error::ApiError;
use crate::wire::{timestamp, Input};

fn read_constraints(input: &mut Input) -> Result<Option<GrantConstraints>, ApiError> {
    let Some(value) = input.raw("Constraints") else {
        return Ok(None);
    };
    let Value::Object(fields) = value else {
        return Err(ApiError::structure_expected("Constraints"));
    };
    let map = |name: &str| -> Result<Option<BTreeMap<String, String>>, ApiError> {
        match fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| match v {
                    Value::String(s) => Ok((k.clone(), s.clone())),
                    _ => Err(ApiError::map_values_not_strings(name)),
                })
                .collect::<Result<_, _>>()
                .map(Some),
            Some(_) => Err(ApiError::not_a_map(name)),
        }
    };
    let source_arn = match fields.get("SourceArn") {
        None | Some(Value::Null) => None,
        Some(Value::String(arn)) => Some(check_source_arn(arn)?),
        Some(_) => return Err(ApiError::not_a_string("SourceArn")),
    };
    let constraints = GrantConstraints {
        encryption_context_subset: map("EncryptionContextSubset")?,
        encryption_context_equals: map("EncryptionContextEquals")?,
        source_arn,
    };
    if constraints.encryption_context_subset.is_some()
        && constraints.encryption_context_equals.is_some()
    {
        return Err(KmsError::grant_constraints_conflict().into());
    }
    if let Some(pairs) = constraints.context_pairs() {
        if pairs.len() > MAX_CONSTRAINT_PAIRS || pairs.values().any(|v| v.chars().count() > 384) {
            return Err(KmsError::grant_constraint_too_large(MAX_CONSTRAINT_PAIRS).into());
        }
    }
    Ok(Some(constraints))
}

/// "Each constraint value can include up to 8 encryption context pairs."
const MAX_CONSTRAINT_PAIRS: usize = 8;

/// The model's GrantConstraintSourceArnType: 20 to 512 characters of
/// `^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$`.
fn check_source_arn(arn: &str) -> Result<String, ApiError> {
    let pattern = "^arn:aws[a-z0-9-]*:[a-z0-9-]+:[a-z0-9-]*:[0-9]{12}:.+$";
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let lower = |s: &str| {
        s.bytes()
            .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'-'))
    };
    let ok = (20..=512).contains(&arn.chars().count())
        && matches!(parts.as_slice(), ["arn", partition, service, region, account, resource]
            if partition.starts_with("aws") && lower(partition)
                && !service.is_empty() && lower(service)
                && lower(region)
                && account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit())
                && !resource.is_empty());
    if ok {
        Ok(arn.to_owned())
    } else {
        // The value is echoed as AWS does, but never more of it than a valid one could hold.
        let shown: String = arn.chars().take(512).collect();
        Err(KmsError::grant_source_arn_invalid(shown, pattern).into())
    }
}

fn terms_of(grant: &GrantRecord) -> Result<GrantTerms, ApiError> {
    serde_json::from_str(&grant.document).map_err(|_| KmsError::internal().into())
}

fn entry(grant: &GrantRecord, key_arn: &str) -> Result<Value, ApiError> {
    let terms = terms_of(grant)?;
    let mut e = json!({
        "KeyId": key_arn,
        "GrantId": grant.grant_id,
        "CreationDate": timestamp(grant.created),
        "GranteePrincipal": grant.grantee_principal,
        "IssuingAccount": format!("arn:aws:iam::{}:root", grant.account),
        "Operations": terms.operations,
    });
    if let Some(name) = &grant.name {
        e["Name"] = json!(name);
    }
    if let Some(r) = &grant.retiring_principal {
        e["RetiringPrincipal"] = json!(r);
    }
    if let Some(c) = &terms.constraints {
        let mut m = Map::new();
        if let Some(s) = &c.encryption_context_subset {
            m.insert("EncryptionContextSubset".into(), json!(s));
        }
        if let Some(s) = &c.encryption_context_equals {
            m.insert("EncryptionContextEquals".into(), json!(s));
        }
        if let Some(arn) = &c.source_arn {
            m.insert("SourceArn".into(), json!(arn));
        }
        e["Constraints"] = Value::Object(m);
    }
    Ok(e)
}

/// Every grant of a key: as many as the configured quota lets a key have.
async fn all_grants(call: &Call<'_>, key: &KeyMetadata) -> Result<Vec<GrantRecord>, ApiError> {
    super::authorize::grants_of(
        call.services.store.as_ref(),
        &call.services.quotas.resources,
        key,
    )
    .await
}

pub async fn create_grant(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let grantee = input.string("GranteePrincipal", 1, 256)?;
    let service_grantee = input.string("GranteeServicePrincipal", 1, 256)?;
    let retiring = input.string("RetiringPrincipal", 1, 256)?;
    let retiring_service = input.string("RetiringServicePrincipal", 1, 256)?;
    let operations = input.string_list("Operations", 1, 64, usize::MAX)?;
    let operations = input.required("Operations", operations);
    let constraints = read_constraints(&mut input)?;
    read_grant_tokens(&mut input)?;
    let name = input.string("Name", 1, 256)?;
    let (dry_run, _) = read_dry_run(&mut input, false)?;
    input.finish()?;

    // A retiring service principal is refused too: ignoring it would make a grant that no
    // one named can retire, and say nothing.
    if service_grantee.is_some() || retiring_service.is_some() {
        return Err(KmsError::service_principal_grants_unsupported().into());
    }
    let grantee = grantee.ok_or_else(KmsError::grantee_principal_missing)?;
    if let Some(bad) = operations
        .iter()
        .find(|o| !GRANT_OPERATIONS.contains(&o.as_str()))
    {
        return Err(KmsError::grant_operation_invalid(bad).into());
    }
    if operations.iter().all(|o| o == "CreateGrant") {
        return Err(KmsError::grant_only_create_grant().into());
    }
    let terms = GrantTerms {
        operations,
        constraints,
    };
    let mut conditions = Conditions::none()
        .with("kms:GrantOperations", terms.operations.clone())
        .with("kms:GranteePrincipal", vec![grantee.clone()])
        .with("kms:GrantIsForAWSResource", vec!["false".into()])
        .with_some("kms:RetiringPrincipal", retiring.clone());
    let constraints = terms.constraints.as_ref();
    conditions = conditions.grant_constraints(constraints).with_some(
        "kms:GrantConstraintSourceArn",
        constraints.and_then(|c| c.source_arn.clone()),
    );
    // A grant's own CreateGrant allows only a grant narrower than itself.
    let conditions = conditions.new_grant(terms.clone());
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    key.check_usable()?;
    let context_constrained = terms
        .constraints
        .as_ref()
        .is_some_and(|c| c.context_pairs().is_some());
    if context_constrained && key.key_spec != KeySpec::SymmetricDefault {
        // "You cannot use an encryption context grant constraint for cryptographic
        // operations with asymmetric KMS keys or HMAC KMS keys."
        return Err(KmsError::grant_context_constraint_for_asymmetric(
            &key.arn,
            key.key_spec.as_str(),
        )
        .into());
    }
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    // A retry with the same name and terms returns the same grant, with a new token.
    if name.is_some() {
        for existing in all_grants(call, &key).await? {
            if existing.name == name
                && existing.grantee_principal == grantee
                && existing.retiring_principal == retiring
                && terms_of(&existing)? == terms
            {
                return Ok(json!({
                    "GrantToken": new_grant_token(key.id(), &existing.grant_id)?,
                    "GrantId": existing.grant_id,
                }));
            }
        }
    }
    let grant = GrantRecord {
        region: key.region().clone(),
        key_id: key.id(),
        grant_id: new_grant_id()?,
        account: key.account().clone(),
        name,
        grantee_principal: grantee,
        retiring_principal: retiring,
        document: serde_json::to_string(&terms).map_err(|_| KmsError::internal())?,
        created: call.now,
    };
    let grant_id = match call
        .services
        .store
        .create_grant(
            call.audit(),
            &grant,
            call.services.quotas.resources.grants_per_key,
        )
        .await
    {
        Ok(id) => id,
        Err(StoreError::LimitExceeded { .. }) => {
            return Err(KmsError::grants_per_key_limit(
                call.services.quotas.resources.grants_per_key,
            )
            .into())
        }
        Err(e) => return Err(store_failure(e)),
    };
    Ok(json!({
        "GrantToken": new_grant_token(key.id(), &grant_id)?,
        "GrantId": grant_id,
    }))
}

/// The condition keys of a ListGrants request (ExplainDecision decides ListGrants with them
/// too).
pub fn list_grants_conditions() -> Conditions {
    Conditions::none().with("kms:GrantIsForAWSResource", vec!["false".into()])
}

pub async fn list_grants(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let grant_id = input.string("GrantId", 1, 128)?;
    let grantee = input.string("GranteePrincipal", 1, 256)?;
    let (limit, after) = finish_with_page(&mut input, 100, 50)?;
    let key = resolve_key(call, &key_id, On::Key, &list_grants_conditions()).await?;
    let rows = call
        .services
        .store
        .grants_of_key(
            key.region(),
            &key.id(),
            Page {
                after: after.as_deref(),
                limit: MAX_GRANTS_PER_KEY,
            },
        )
        .await
        .map_err(store_failure)?;
    let rows: Vec<GrantRecord> = rows
        .into_iter()
        .filter(|g| grant_id.as_ref().is_none_or(|id| &g.grant_id == id))
        .filter(|g| grantee.as_ref().is_none_or(|p| &g.grantee_principal == p))
        .collect();
    let (grants, mut out) = finish_page(rows, limit, |g| g.grant_id.clone());
    let arn = key.arn.to_string();
    let entries = grants
        .iter()
        .map(|g| entry(g, &arn))
        .collect::<Result<Vec<_>, _>>()?;
    out.insert("Grants".into(), Value::Array(entries));
    Ok(Value::Object(out))
}

pub async fn list_retirable_grants(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let retiring = input.string("RetiringPrincipal", 1, 256)?;
    let _retiring_service = input.string("RetiringServicePrincipal", 1, 256)?;
    let (limit, after) = finish_with_page(&mut input, 100, 50)?;
    let retiring = retiring.ok_or_else(KmsError::retiring_principal_missing)?;
    // "You must specify a principal in your Amazon Web Services account."
    let caller_account = call.request.principal().account();
    if ferrokms_core::policy::principal_account(&retiring) != Some(caller_account.as_str()) {
        return Err(hidden_resource(
            call,
            "ListRetirableGrants",
            Named::ByRequest,
        ));
    }
    // "The authorized resource in ListRetirableGrants calls is the retiring principal."
    authorize_iam(call, On::Account, &retiring, None, &Conditions::none())?;
    let region = call.request.region();
    let rows = call
        .services
        .store
        .grants_retirable_by(
            region,
            &retiring,
            Page {
                after: after.as_deref(),
                limit,
            },
        )
        .await
        .map_err(store_failure)?;
    let (grants, mut out) = finish_page(rows, limit, |g| format!("{}/{}", g.key_id, g.grant_id));
    let entries = grants
        .iter()
        .map(|g| {
            let arn = ferrokms_core::ids::KeyArn {
                region: g.region.clone(),
                account: g.account.clone(),
                key_id: g.key_id,
            };
            entry(g, &arn.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    out.insert("Grants".into(), Value::Array(entries));
    Ok(Value::Object(out))
}

fn grant_not_found(grant_id: &str) -> ApiError {
    KmsError::grant_not_found(grant_id).into()
}

fn check_grant_id(grant_id: &str) -> Result<(), ApiError> {
    if grant_id.len() == 64
        && grant_id
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        Ok(())
    } else {
        Err(KmsError::invalid_grant_id(grant_id).into())
    }
}

pub async fn retire_grant(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let token = input.string("GrantToken", 1, 8192)?;
    let key_id = input.string("KeyId", 1, 2048)?;
    let grant_id = input.string("GrantId", 1, 128)?;
    let (dry_run, _) = read_dry_run(&mut input, false)?;
    input.finish()?;
    let region = call.request.region();
    // Find the key without authorizing yet: the retiring principal need not be allowed
    // anything by the key policy.
    let (key_ref, grant_id) = match (token, key_id, grant_id) {
        (Some(token), _, _) => {
            let (key, grant) = parse_grant_token(&token)
                .ok_or_else(|| ApiError::from(KmsError::invalid_grant_token()))?;
            (ferrokms_core::ids::KeyReference::Id(key), grant)
        }
        (None, Some(key), Some(grant)) => {
            check_grant_id(&grant)?;
            (ferrokms_core::ids::KeyReference::parse(&key), grant)
        }
        _ => return Err(KmsError::retire_grant_target_missing().into()),
    };
    let (key_id, named_account) = match key_ref {
        ferrokms_core::ids::KeyReference::Id(id) => (id, None),
        ferrokms_core::ids::KeyReference::Arn(arn) if &arn.region == region => {
            (arn.key_id, Some(arn.account))
        }
        _ => return Err(grant_not_found(&grant_id)),
    };
    let key = call
        .services
        .store
        .key(region, &key_id)
        .await
        .map_err(store_failure)?
        .filter(|k| named_account.as_ref().is_none_or(|a| a == k.account()))
        .ok_or_else(|| grant_not_found(&grant_id))?;
    let grant = all_grants(call, &key)
        .await?
        .into_iter()
        .find(|g| g.grant_id == grant_id)
        .ok_or_else(|| grant_not_found(&grant_id))?;
    let principal = call.request.principal();
    let is_caller = |p: &str| p == principal.arn() || Some(p) == principal.role_arn();
    let terms = terms_of(&grant)?;
    let named_by_grant = grant.retiring_principal.as_deref().is_some_and(is_caller)
        || (is_caller(&grant.grantee_principal)
            && terms.operations.iter().any(|o| o == "RetireGrant"));
    let conditions = Conditions::none().grant_constraints(terms.constraints.as_ref());
    authorize_retire(call, key.clone(), named_by_grant, &conditions).await?;
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    if !call
        .services
        .store
        .delete_grant(call.audit(), region, &key.id(), &grant_id)
        .await
        .map_err(store_failure)?
    {
        return Err(grant_not_found(&grant_id));
    }
    Ok(json!({}))
}

pub async fn revoke_grant(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let grant_id = input.required_string("GrantId", 1, 128)?;
    let (dry_run, _) = read_dry_run(&mut input, false)?;
    input.finish()?;
    check_grant_id(&grant_id)?;
    let conditions = Conditions::none().with("kms:GrantIsForAWSResource", vec!["false".into()]);
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    if !call
        .services
        .store
        .delete_grant(call.audit(), key.region(), &key.id(), &grant_id)
        .await
        .map_err(store_failure)?
    {
        return Err(grant_not_found(&grant_id));
    }
    Ok(json!({}))
}
