//! Key policies: GetKeyPolicy, PutKeyPolicy, ListKeyPolicies.

use ferrokms_core::policy::{PolicyDocument, PolicyKind};
use ferrokms_core::KmsError;
use serde_json::{json, Value};

use super::authorize::{check_lockout, Conditions};
use super::operations::On;
use super::resolve::{resolve_key, update_key};
use super::{finish_page, finish_with_page, Call};
use crate::error::ApiError;
use crate::wire::Input;

/// A key has one policy, and AWS names it `default`.
const POLICY_NAME: &str = "default";

fn check_policy_name(name: Option<String>) -> Result<(), ApiError> {
    match name {
        Some(n) if n != POLICY_NAME => Err(KmsError::policy_name_not_found(n, POLICY_NAME).into()),
        _ => Ok(()),
    }
}

/// Checks a policy for size (the key policy quota) and grammar, as CreateKey and
/// PutKeyPolicy do.
pub fn parse_key_policy(call: &Call<'_>, text: &str) -> Result<PolicyDocument, ApiError> {
    let max = call.services.quotas.resources.key_policy_bytes;
    if text.len() > max {
        return Err(KmsError::key_policy_too_large(max).into());
    }
    let document = PolicyDocument::parse(text, PolicyKind::Key)?;
    document.check_new_policy()?;
    Ok(document)
}

pub async fn get_key_policy(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let name = input.string("PolicyName", 1, 128)?;
    input.finish()?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    check_policy_name(name)?;
    Ok(json!({ "Policy": key.policy, "PolicyName": POLICY_NAME }))
}

pub async fn list_key_policies(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let (limit, after) = finish_with_page(&mut input, 1000, 100)?;
    resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    let names: Vec<String> = if after.is_some() {
        Vec::new()
    } else {
        vec![POLICY_NAME.to_owned()]
    };
    let (names, mut out) = finish_page(names, limit, Clone::clone);
    out.insert("PolicyNames".into(), json!(names));
    Ok(Value::Object(out))
}

pub async fn put_key_policy(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let name = input.string("PolicyName", 1, 128)?;
    let policy = input.required_string("Policy", 1, 131_072)?;
    let bypass_given = input.boolean("BypassPolicyLockoutSafetyCheck")?;
    let bypass = bypass_given.unwrap_or(false);
    input.finish()?;
    let conditions = Conditions::none().bypass_lockout(bypass_given);
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    check_policy_name(name)?;
    let document = parse_key_policy(call, &policy)?;
    if !bypass {
        check_lockout(
            call,
            &document,
            &key.arn.to_string(),
            key.account().as_str(),
        )?;
    }
    update_key(call, key, |k| {
        k.policy = policy.as_str().into();
        Ok(())
    })
    .await?;
    Ok(json!({}))
}
