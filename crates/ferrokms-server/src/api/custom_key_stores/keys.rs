//! The keys of custom key stores: opening a key's store for use (logging in to its token,
//! or finding its proxy), making a key in it, and the cryptography that runs there.

use std::sync::Arc;

use ferrokms_core::ciphertext::{ExternalBlob, TokenAead};
use ferrokms_core::ids::{AccountId, Region};
use ferrokms_core::key::{CustomKeyStoreLink, KeyMetadata, Origin};
use ferrokms_core::material::MaterialId;
use ferrokms_core::KmsError;
use ferrokms_hsm::{HsmError, Pin, Token, TokenKey};
use zeroize::Zeroizing;

use super::{keys_in_store, not_found, stores_in, unwrap_secret, ConnectionState};
use crate::api::external_key_stores;
use crate::api::Call;
use crate::error::ApiError;
use crate::key_stores::token_key_label;
use crate::xks::client::XksEndpoint;

/// A key store as the operations on its keys find it.
pub(in crate::api) enum StoreAccess {
    NotFound,
    /// Not CONNECTED, or its token cannot be reached from this node.
    NotConnected(String),
    /// An AWS_CLOUDHSM store, logged in on this node, and its cluster.
    Token(Arc<Token>, String),
    /// An EXTERNAL_KEY_STORE store and how to reach its proxy.
    Proxy(XksEndpoint),
}

/// Opens the key store `id` of `account` in `region` for use: it must be CONNECTED, and this
/// node logs in to its token if it has not yet (another node, or this one before a restart,
/// may have connected it).
pub(in crate::api) async fn open_store(
    call: &Call<'_>,
    region: &Region,
    account: &AccountId,
    id: &str,
) -> Result<StoreAccess, ApiError> {
    let stores = stores_in(call, region, account).await?;
    let Some(store) = stores.into_iter().find(|s| s.record.id == id) else {
        return Ok(StoreAccess::NotFound);
    };
    let key_stores = &call.services.key_stores;
    if store.document.state != ConnectionState::Connected {
        key_stores.disconnect(id);
        return Ok(StoreAccess::NotConnected(
            store.document.state.as_str().into(),
        ));
    }
    if let Some(xks) = &store.document.xks {
        return Ok(StoreAccess::Proxy(
            xks.endpoint(unwrap_secret(call, &store)?),
        ));
    }
    let Some(cluster_id) = store.document.cluster_id.clone() else {
        return Err(KmsError::internal().into());
    };
    if let Some(token) = key_stores.token(id) {
        return Ok(StoreAccess::Token(token, cluster_id));
    }
    let Some(cluster) = key_stores.cluster(&cluster_id) else {
        return Ok(StoreAccess::NotConnected("CONNECTED".into()));
    };
    let pin = Pin::new(unwrap_secret(call, &store)?);
    if let Err(e) = key_stores.connect(id, cluster, pin).await {
        tracing::warn!(custom_key_store = %id, error = %e, "reconnecting failed");
        return Ok(StoreAccess::NotConnected("CONNECTED".into()));
    }
    match key_stores.token(id) {
        Some(token) => Ok(StoreAccess::Token(token, cluster_id)),
        None => Ok(StoreAccess::NotConnected("CONNECTED".into())),
    }
}

/// AWS's answer for a key whose custom key store cannot be used.
pub(in crate::api) fn unavailable(key: &KeyMetadata) -> ApiError {
    KmsError::key_unavailable(&key.arn).into()
}

/// The token and token key behind a key of an AWS_CLOUDHSM store.
pub(in crate::api) async fn token_key(
    call: &Call<'_>,
    key: &crate::api::authorize::AuthorizedKey,
) -> Result<TokenSealer, ApiError> {
    let link = key
        .custom_key_store
        .as_ref()
        .ok_or_else(|| ApiError::from(KmsError::internal()))?;
    match open_store(call, key.region(), key.account(), &link.id).await? {
        StoreAccess::Token(..) => {}
        _ => return Err(unavailable(key)),
    }
    let label = token_key_label(&key.current_material);
    match call.services.key_stores.key(&link.id, &label) {
        Ok((token, key)) => Ok(TokenSealer { token, key }),
        Err(e) => {
            tracing::warn!(key = %key.arn, error = %e, "the key's token key is not usable");
            Err(unavailable(key))
        }
    }
}

/// The proxy and external key behind a key of an EXTERNAL_KEY_STORE store.
async fn proxy_of(call: &Call<'_>, key: &KeyMetadata) -> Result<(XksEndpoint, String), ApiError> {
    let link = key
        .custom_key_store
        .as_ref()
        .ok_or_else(|| ApiError::from(KmsError::internal()))?;
    let external_key = link
        .xks_key_id
        .clone()
        .ok_or_else(|| ApiError::from(KmsError::internal()))?;
    match open_store(call, key.region(), key.account(), &link.id).await? {
        StoreAccess::Proxy(endpoint) => Ok((endpoint, external_key)),
        _ => Err(unavailable(key)),
    }
}

fn proxy_failed(key: &KeyMetadata, e: &crate::xks::client::XksFailure) -> ApiError {
    tracing::warn!(key = %key.arn, error = %e, "the external key store's proxy failed");
    external_key_stores::crypto_failure(e)
}

/// The outer layer of an external key store key's ciphertext: `inner` (the blob of the key's
/// own material) encrypted by the external key.
pub(in crate::api) async fn seal_outer(
    call: &Call<'_>,
    key: &crate::api::authorize::AuthorizedKey,
    inner: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let (endpoint, external_key) = proxy_of(call, key).await?;
    let aad = ExternalBlob::header(key.id(), key.current_material);
    let metadata =
        external_key_stores::request_metadata(call, Some(key.arn.to_string()), "Encrypt");
    let sealed = call
        .services
        .xks
        .encrypt(
            &endpoint,
            key.region().as_str(),
            &external_key,
            metadata,
            inner,
            &aad,
        )
        .await
        .map_err(|e| proxy_failed(key, &e))?;
    Ok(ExternalBlob {
        key_id: key.id(),
        material_id: key.current_material,
        sealed,
    }
    .to_bytes()?)
}

/// Takes the outer layer off an external key store key's ciphertext, giving the inner blob.
pub(in crate::api) async fn open_outer(
    call: &Call<'_>,
    key: &crate::api::authorize::AuthorizedKey,
    blob: &ExternalBlob,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let (endpoint, external_key) = proxy_of(call, key).await?;
    let aad = ExternalBlob::header(blob.key_id, blob.material_id);
    let metadata =
        external_key_stores::request_metadata(call, Some(key.arn.to_string()), "Decrypt");
    call.services
        .xks
        .decrypt(
            &endpoint,
            key.region().as_str(),
            &external_key,
            metadata,
            &blob.sealed,
            &aad,
        )
        .await
        .map_err(|e| proxy_failed(key, &e))
}

/// Whether a key's custom key store is CONNECTED (for the key state DescribeKey shows).
pub(in crate::api) async fn store_connected(
    call: &Call<'_>,
    key: &KeyMetadata,
) -> Result<bool, ApiError> {
    let Some(link) = &key.custom_key_store else {
        return Ok(true);
    };
    Ok(stores_in(call, key.region(), key.account())
        .await?
        .iter()
        .any(|s| s.record.id == link.id && s.document.state == ConnectionState::Connected))
}

/// Prepares a new key in a CONNECTED custom key store: for an AWS_CLOUDHSM store, makes its
/// AES-256 key inside the token; for an EXTERNAL_KEY_STORE, checks with the proxy that the
/// external key is usable and not yet another key's. Returns the link for the key's
/// metadata. The caller has checked the key spec.
pub(in crate::api) async fn make_key_in_store(
    call: &Call<'_>,
    store_id: &str,
    origin: Origin,
    xks_key_id: Option<&str>,
    material: &MaterialId,
) -> Result<CustomKeyStoreLink, ApiError> {
    let account = call.request.principal().account().clone();
    let region = call.request.region().clone();
    match open_store(call, &region, &account, store_id).await? {
        StoreAccess::NotFound => Err(KmsError::custom_key_store_does_not_exist(store_id).into()),
        StoreAccess::NotConnected(state) => {
            Err(KmsError::custom_key_store_not_connected_for_create(store_id, &state).into())
        }
        StoreAccess::Token(token, cluster) => {
            if origin != Origin::AwsCloudhsm || xks_key_id.is_some() {
                return Err(KmsError::cloudhsm_store_needs_cloudhsm_origin(store_id).into());
            }
            let label = token_key_label(material);
            tokio::task::spawn_blocking(move || token.generate_key(&label))
                .await
                .map_err(|_| ApiError::from(KmsError::internal()))?
                .map_err(|e| {
                    tracing::error!(custom_key_store = %store_id, error = %e, "making a key in the token failed");
                    ApiError::from(KmsError::internal())
                })?;
            Ok(CustomKeyStoreLink {
                id: store_id.to_owned(),
                cloud_hsm_cluster_id: Some(cluster),
                xks_key_id: None,
            })
        }
        StoreAccess::Proxy(endpoint) => {
            let (Origin::ExternalKeyStore, Some(external_key)) = (origin, xks_key_id) else {
                return Err(KmsError::external_store_needs_external_key(store_id).into());
            };
            let taken = keys_in_store(call, &region, &account, store_id)
                .await?
                .iter()
                .any(|k| {
                    k.custom_key_store
                        .as_ref()
                        .is_some_and(|l| l.xks_key_id.as_deref() == Some(external_key))
                });
            if taken {
                return Err(KmsError::xks_key_in_use(external_key, store_id).into());
            }
            let metadata = external_key_stores::request_metadata(call, None, "CreateKey");
            let answer = call
                .services
                .xks
                .key_metadata(&endpoint, region.as_str(), external_key, metadata)
                .await
                .map_err(|e| {
                    tracing::warn!(custom_key_store = %store_id, error = %e, "the proxy failed");
                    external_key_stores::create_key_failure(&e)
                })?;
            let usable = answer.key_spec == "AES_256"
                && answer.key_status == "ENABLED"
                && ["ENCRYPT", "DECRYPT"]
                    .iter()
                    .all(|u| answer.key_usage.iter().any(|k| k == u));
            if !usable {
                return Err(KmsError::xks_key_unusable().into());
            }
            Ok(CustomKeyStoreLink {
                id: store_id.to_owned(),
                cloud_hsm_cluster_id: None,
                xks_key_id: Some(external_key.to_owned()),
            })
        }
    }
}

/// Removes a key's token key when creating the key failed after it was made.
pub(in crate::api) fn forget_key_in_store(call: &Call<'_>, store_id: &str, material: &MaterialId) {
    call.services.key_stores.destroy_key(store_id, material);
}

/// GenerateRandom in a custom key store: the bytes come from its token.
pub(in crate::api) async fn random_in_store(
    call: &Call<'_>,
    store_id: &str,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let account = call.request.principal().account().clone();
    match open_store(call, call.request.region(), &account, store_id).await? {
        StoreAccess::NotFound => Err(not_found()),
        StoreAccess::NotConnected(state) => {
            Err(KmsError::custom_key_store_not_connected(store_id, &state).into())
        }
        StoreAccess::Proxy(_) => Err(KmsError::random_in_external_store(store_id).into()),
        StoreAccess::Token(token, _) => token.random(len).map_err(|e| {
            tracing::error!(custom_key_store = %store_id, error = %e, "the token's generator failed");
            KmsError::internal().into()
        }),
    }
}

/// A token key doing the AES-GCM of a key's ciphertexts.
pub(in crate::api) struct TokenSealer {
    token: Arc<Token>,
    key: TokenKey,
}

impl TokenAead for TokenSealer {
    fn seal(&self, iv: &[u8; 12], aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, KmsError> {
        self.token.seal(self.key, iv, aad, plaintext).map_err(|e| {
            tracing::error!(error = %e, "sealing in the token failed");
            KmsError::internal()
        })
    }

    fn open(
        &self,
        iv: &[u8; 12],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        match self.token.open_sealed(self.key, iv, aad, sealed) {
            Ok(plain) => Ok(plain),
            Err(HsmError::Unauthentic) => Err(KmsError::invalid_ciphertext()),
            Err(e) => {
                tracing::error!(error = %e, "opening in the token failed");
                Err(KmsError::internal())
            }
        }
    }
}
