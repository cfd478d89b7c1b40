//! Tags: TagResource, UntagResource, ListResourceTags.

use ferrokms_core::tags::check_new_tags;
use ferrokms_core::KmsError;
use ferrokms_store::{Page, StoreError};
use serde_json::{json, Value};

use super::authorize::Conditions;
use super::operations::On;
use super::resolve::resolve_key;
use super::{finish_page, finish_with_page, store_failure, Call};
use crate::error::ApiError;
use crate::wire::Input;

pub async fn tag_resource(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let tags = input.tags("Tags")?;
    let tags = input.required("Tags", tags);
    input.finish()?;
    check_new_tags(&tags, call.services.quotas.resources.tags_per_key)?;
    let key = resolve_key(
        call,
        &key_id,
        On::Key,
        &Conditions::none().request_tags(&tags),
    )
    .await?;
    key.check_not_pending_deletion()?;
    match call
        .services
        .store
        .tag_key(
            call.audit(),
            key.region(),
            &key.id(),
            &tags,
            call.services.quotas.resources.tags_per_key,
        )
        .await
    {
        Ok(()) => Ok(json!({})),
        Err(StoreError::LimitExceeded { .. }) => Err(KmsError::too_many_tags().into()),
        Err(e) => Err(store_failure(e)),
    }
}

pub async fn untag_resource(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let tag_keys = input.string_list("TagKeys", 1, 128, usize::MAX)?;
    let tag_keys = input.required("TagKeys", tag_keys);
    input.finish()?;
    let key = resolve_key(
        call,
        &key_id,
        On::Key,
        &Conditions::none().with("aws:TagKeys", tag_keys.clone()),
    )
    .await?;
    key.check_not_pending_deletion()?;
    call.services
        .store
        .untag_key(call.audit(), key.region(), &key.id(), &tag_keys)
        .await
        .map_err(store_failure)?;
    Ok(json!({}))
}

pub async fn list_resource_tags(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let (limit, after) = finish_with_page(&mut input, 50, 50)?;
    let key = resolve_key(call, &key_id, On::Key, &Conditions::none()).await?;
    let rows = call
        .services
        .store
        .list_tags(
            key.region(),
            &key.id(),
            Page {
                after: after.as_deref(),
                limit,
            },
        )
        .await
        .map_err(store_failure)?;
    let (tags, mut out) = finish_page(rows, limit, |t| t.key.clone());
    let entries: Vec<Value> = tags
        .iter()
        .map(|t| json!({"TagKey": t.key, "TagValue": t.value}))
        .collect();
    out.insert("Tags".into(), Value::Array(entries));
    Ok(Value::Object(out))
}
