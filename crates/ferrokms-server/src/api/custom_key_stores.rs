//! Custom key stores: CreateCustomKeyStore, DescribeCustomKeyStores, UpdateCustomKeyStore,
//! DeleteCustomKeyStore, ConnectCustomKeyStore, DisconnectCustomKeyStore. An AWS_CLOUDHSM
//! store stands for a PKCS#11 token configured as a CloudHSM cluster; connecting logs in to
//! the token with the store's password (kept wrapped under the root key).

use std::sync::Arc;

use ferrokms_core::ciphertext::TokenAead;
use ferrokms_core::ids::{AccountId, Region};
use ferrokms_core::key::{CustomKeyStoreLink, KeyMetadata, Millis, Origin};
use ferrokms_core::material::{key_store_password_binding, MaterialId};
use ferrokms_core::{random, KmsError};
use ferrokms_hsm::{HsmError, Pin, Token, TokenKey};
use ferrokms_store::{CustomKeyStoreRecord, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::authorize::{authorize_account, Conditions};
use super::{finish_page, finish_with_page, store_failure, Call};
use crate::error::ApiError;
use crate::key_stores::{connection_error_code, token_key_label};
use crate::wire::{timestamp, Input};

/// AWS's quota of custom key stores per account and region.
const MAX_KEY_STORES: usize = 10;
const CLUSTER_ID_PATTERN: &str = "cluster-[2-7a-zA-Z]{11,16}";
const STORE_TYPES: &[&str] = &["AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];
/// Members of an EXTERNAL_KEY_STORE store, read so that they are not unknown members.
const XKS_MEMBERS: &[&str] = &[
    "XksProxyUriEndpoint",
    "XksProxyUriPath",
    "XksProxyVpcEndpointServiceName",
    "XksProxyVpcEndpointServiceOwner",
    "XksProxyAuthenticationCredential",
    "XksProxyConnectivity",
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum ConnectionState {
    Connected,
    Connecting,
    Disconnected,
    Disconnecting,
    Failed,
}

impl ConnectionState {
    fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connected => "CONNECTED",
            ConnectionState::Connecting => "CONNECTING",
            ConnectionState::Disconnected => "DISCONNECTED",
            ConnectionState::Disconnecting => "DISCONNECTING",
            ConnectionState::Failed => "FAILED",
        }
    }
}

/// What a store keeps beside its id, name and password.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoreDocument {
    store_type: String,
    cluster_id: String,
    trust_anchor: String,
    state: ConnectionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    created: Millis,
}

struct KeyStore {
    record: CustomKeyStoreRecord,
    document: StoreDocument,
}

impl KeyStore {
    fn entry(&self) -> Value {
        let d = &self.document;
        let mut entry = json!({
            "CustomKeyStoreId": self.record.id,
            "CustomKeyStoreName": self.record.name,
            "CustomKeyStoreType": d.store_type,
            "ConnectionState": d.state.as_str(),
            "CreationDate": timestamp(d.created),
            "CloudHsmClusterId": d.cluster_id,
            "TrustAnchorCertificate": d.trust_anchor,
        });
        if let (ConnectionState::Failed, Some(code)) = (d.state, &d.error_code) {
            entry["ConnectionErrorCode"] = json!(code);
        }
        entry
    }

    fn save(&mut self) -> Result<(), ApiError> {
        self.record.document = serde_json::to_string(&self.document)
            .map_err(|_| ApiError::from(KmsError::internal()))?;
        Ok(())
    }

    fn invalid_state(&self, needed: &str) -> ApiError {
        KmsError::CustomKeyStoreInvalidState(format!(
            "Custom key store {} is {}; {needed}.",
            self.record.id,
            self.document.state.as_str()
        ))
        .into()
    }
}

fn not_found() -> ApiError {
    // AWS answers an unknown custom key store with no message.
    KmsError::CustomKeyStoreNotFound(String::new()).into()
}

async fn stores_of_caller(call: &Call<'_>) -> Result<Vec<KeyStore>, ApiError> {
    stores_in(
        call,
        call.request.region(),
        call.request.principal().account(),
    )
    .await
}

async fn stores_in(
    call: &Call<'_>,
    region: &Region,
    account: &AccountId,
) -> Result<Vec<KeyStore>, ApiError> {
    let records = call
        .services
        .store
        .custom_key_stores(region, account)
        .await
        .map_err(store_failure)?;
    records
        .into_iter()
        .map(|record| {
            let document = serde_json::from_str(&record.document).map_err(|e| {
                store_failure(StoreError::Corrupt(format!("custom key store: {e}")))
            })?;
            Ok(KeyStore { record, document })
        })
        .collect()
}

async fn find(call: &Call<'_>, id: &str) -> Result<KeyStore, ApiError> {
    stores_of_caller(call)
        .await?
        .into_iter()
        .find(|s| s.record.id == id)
        .ok_or_else(not_found)
}

fn check_cluster_id(input: &mut Input, member: &str, id: Option<&String>) {
    if let Some(id) = id {
        let tail = id.strip_prefix("cluster-").unwrap_or_default();
        let valid = (11..=16).contains(&tail.len())
            && tail
                .bytes()
                .all(|b| b.is_ascii_alphabetic() || (b'2'..=b'7').contains(&b));
        if !valid {
            input.pattern_violated(member, id, CLUSTER_ID_PATTERN);
        }
    }
}

fn new_store_id() -> Result<String, ApiError> {
    let bytes: [u8; 9] = random::array().map_err(ApiError::from)?;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!("cks-{}", &hex[..17]))
}

fn cluster_not_found(id: &str) -> ApiError {
    KmsError::CloudHsmClusterNotFound(format!(
        "AWS KMS cannot find the AWS CloudHSM cluster with the specified cluster ID: {id}."
    ))
    .into()
}

fn name_in_use() -> ApiError {
    KmsError::CustomKeyStoreNameInUse(
        "The specified custom key store name is already assigned to another custom key store \
         in the account. Try again with a custom key store name that is unique in the account."
            .into(),
    )
    .into()
}

fn external_unsupported() -> ApiError {
    KmsError::UnsupportedOperation(
        "EXTERNAL_KEY_STORE custom key stores are not supported by this version of ferrokms."
            .into(),
    )
    .into()
}

pub async fn create_custom_key_store(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let name = input.required_string("CustomKeyStoreName", 1, 256)?;
    let cluster_id = input.string("CloudHsmClusterId", 19, 24)?;
    check_cluster_id(&mut input, "CloudHsmClusterId", cluster_id.as_ref());
    let trust_anchor = input.string("TrustAnchorCertificate", 1, 5000)?;
    let password = input.secret_string("KeyStorePassword", 7, 32)?;
    let store_type = input
        .enumeration(
            "CustomKeyStoreType",
            |s| STORE_TYPES.iter().copied().find(|t| *t == s),
            STORE_TYPES,
        )?
        .unwrap_or("AWS_CLOUDHSM");
    let xks = XKS_MEMBERS.iter().filter(|m| input.present(m)).count();
    input.finish()?;
    authorize_account(call, "CreateCustomKeyStore", &Conditions::none())?;
    if store_type == "EXTERNAL_KEY_STORE" {
        return Err(external_unsupported());
    }
    let (Some(cluster_id), Some(trust_anchor), Some(password)) =
        (cluster_id, trust_anchor, password)
    else {
        return Err(KmsError::Validation(
            "An AWS_CLOUDHSM custom key store needs CloudHsmClusterId, TrustAnchorCertificate \
             and KeyStorePassword."
                .into(),
        )
        .into());
    };
    if xks > 0 {
        return Err(KmsError::Validation(
            "XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store.".into(),
        )
        .into());
    }
    let key_stores = &call.services.key_stores;
    if key_stores.cluster(&cluster_id).is_none() {
        return Err(cluster_not_found(&cluster_id));
    }
    if let Some(anchor) = key_stores.trust_anchor(&cluster_id) {
        if anchor.trim() != trust_anchor.trim() {
            return Err(KmsError::IncorrectTrustAnchor(format!(
                "The trust anchor certificate in the request is not the trust anchor \
                 certificate of the specified AWS CloudHSM cluster {cluster_id}."
            ))
            .into());
        }
    }
    let existing = stores_of_caller(call).await?;
    if let Some(other) = existing
        .iter()
        .find(|s| s.document.cluster_id == cluster_id)
    {
        return Err(KmsError::CloudHsmClusterInUse(format!(
            "The AWS CloudHSM cluster {cluster_id} is already associated with custom key store {}.",
            other.record.id
        ))
        .into());
    }
    let region = call.request.region().clone();
    let id = new_store_id()?;
    let wrapped_password = call
        .services
        .root
        .wrap(
            &key_store_password_binding(region.as_str(), &id),
            password.as_bytes(),
        )
        .map_err(ApiError::from)?;
    let mut store = KeyStore {
        record: CustomKeyStoreRecord {
            region,
            account: call.request.principal().account().clone(),
            id: id.clone(),
            name,
            revision: 0,
            document: String::new(),
            wrapped_password,
        },
        document: StoreDocument {
            store_type: store_type.to_owned(),
            cluster_id,
            trust_anchor,
            state: ConnectionState::Disconnected,
            error_code: None,
            created: call.now,
        },
    };
    store.save()?;
    match call
        .services
        .store
        .create_custom_key_store(&store.record, MAX_KEY_STORES)
        .await
    {
        Ok(()) => Ok(json!({ "CustomKeyStoreId": id })),
        Err(StoreError::AlreadyExists) => Err(name_in_use()),
        Err(StoreError::LimitExceeded { .. }) => Err(KmsError::LimitExceeded(format!(
            "An account can have at most {MAX_KEY_STORES} custom key stores in a Region."
        ))
        .into()),
        Err(e) => Err(store_failure(e)),
    }
}

pub async fn describe_custom_key_stores(
    call: &Call<'_>,
    mut input: Input,
) -> Result<Value, ApiError> {
    let id = input.string("CustomKeyStoreId", 1, 64)?;
    let name = input.string("CustomKeyStoreName", 1, 256)?;
    let (limit, after) = finish_with_page(&mut input, 1000, 1000)?;
    authorize_account(call, "DescribeCustomKeyStores", &Conditions::none())?;
    let stores: Vec<KeyStore> = stores_of_caller(call)
        .await?
        .into_iter()
        .filter(|s| id.as_ref().is_none_or(|id| &s.record.id == id))
        .filter(|s| name.as_ref().is_none_or(|n| &s.record.name == n))
        .collect();
    if stores.is_empty() && (id.is_some() || name.is_some()) {
        return Err(not_found());
    }
    let page: Vec<KeyStore> = stores
        .into_iter()
        .filter(|s| after.as_ref().is_none_or(|a| &s.record.id > a))
        .collect();
    let (page, extra) = finish_page(page, limit, |s| s.record.id.clone());
    let mut out =
        json!({ "CustomKeyStores": page.iter().map(KeyStore::entry).collect::<Vec<_>>() });
    for (k, v) in extra {
        out[k] = v;
    }
    Ok(out)
}

/// Stores a changed key store, reading it again if another request changed it meanwhile.
async fn write_back(
    call: &Call<'_>,
    id: &str,
    change: impl Fn(&mut KeyStore) -> Result<(), ApiError>,
) -> Result<KeyStore, ApiError> {
    for _ in 0..5 {
        let mut store = find(call, id).await?;
        change(&mut store)?;
        store.save()?;
        match call
            .services
            .store
            .update_custom_key_store(&store.record)
            .await
        {
            Ok(revision) => {
                store.record.revision = revision;
                return Ok(store);
            }
            Err(StoreError::Conflict) => continue,
            Err(StoreError::NotFound) => return Err(not_found()),
            Err(StoreError::AlreadyExists) => return Err(name_in_use()),
            Err(e) => return Err(store_failure(e)),
        }
    }
    Err(KmsError::internal().into())
}

fn unwrap_password(call: &Call<'_>, store: &KeyStore) -> Result<Pin, ApiError> {
    let plain = call
        .services
        .root
        .unwrap(
            &key_store_password_binding(store.record.region.as_str(), &store.record.id),
            &store.record.wrapped_password,
        )
        .map_err(ApiError::from)?;
    let text = String::from_utf8(plain.to_vec()).map_err(|_| KmsError::internal())?;
    Ok(Pin::new(Zeroizing::new(text)))
}

pub async fn update_custom_key_store(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let id = input.required_string("CustomKeyStoreId", 1, 64)?;
    let new_name = input.string("NewCustomKeyStoreName", 1, 256)?;
    let password = input.secret_string("KeyStorePassword", 7, 32)?;
    let cluster_id = input.string("CloudHsmClusterId", 19, 24)?;
    check_cluster_id(&mut input, "CloudHsmClusterId", cluster_id.as_ref());
    let xks = XKS_MEMBERS.iter().filter(|m| input.present(m)).count();
    input.finish()?;
    authorize_account(call, "UpdateCustomKeyStore", &Conditions::none())?;
    let current = find(call, &id).await?;
    if xks > 0 {
        return Err(KmsError::Validation(format!(
            "XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store; {id} \
             is {}.",
            current.document.store_type
        ))
        .into());
    }
    let key_stores = &call.services.key_stores;
    if let Some(new) = &cluster_id {
        if key_stores.cluster(new).is_none() {
            return Err(cluster_not_found(new));
        }
        let related = match (
            key_stores.trust_anchor(new),
            key_stores.trust_anchor(&current.document.cluster_id),
        ) {
            (Some(a), Some(b)) => a.trim() == b.trim(),
            _ => new == &current.document.cluster_id,
        };
        if !related {
            return Err(KmsError::CloudHsmClusterNotRelated(format!(
                "The AWS CloudHSM cluster {new} is not related to the cluster of custom key \
                 store {id}: they do not share a trust anchor."
            ))
            .into());
        }
    }
    let wrapped_password = match &password {
        Some(p) => Some(
            call.services
                .root
                .wrap(
                    &key_store_password_binding(call.request.region().as_str(), &id),
                    p.as_bytes(),
                )
                .map_err(ApiError::from)?,
        ),
        None => None,
    };
    write_back(call, &id, |store| {
        if (wrapped_password.is_some() || cluster_id.is_some())
            && store.document.state != ConnectionState::Disconnected
        {
            return Err(store.invalid_state(
                "disconnect it before changing its password or cluster (only its name can \
                 change while it is not DISCONNECTED)",
            ));
        }
        if let Some(name) = &new_name {
            store.record.name = name.clone();
        }
        if let Some(wrapped) = &wrapped_password {
            store.record.wrapped_password = wrapped.clone();
        }
        if let Some(cluster) = &cluster_id {
            store.document.cluster_id = cluster.clone();
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn delete_custom_key_store(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let id = input.required_string("CustomKeyStoreId", 1, 64)?;
    input.finish()?;
    authorize_account(call, "DeleteCustomKeyStore", &Conditions::none())?;
    let store = find(call, &id).await?;
    if store.document.state != ConnectionState::Disconnected {
        return Err(store.invalid_state("disconnect it before deleting it"));
    }
    // Keys pending deletion count too, as in AWS.
    let keys = call
        .services
        .store
        .all_keys()
        .await
        .map_err(store_failure)?;
    let in_store = keys
        .iter()
        .filter(|k| k.region() == &store.record.region && k.account() == &store.record.account)
        .filter(|k| k.custom_key_store.as_ref().is_some_and(|l| l.id == id))
        .count();
    if in_store > 0 {
        return Err(KmsError::CustomKeyStoreHasCMKs(format!(
            "Custom key store {id} still has {in_store} KMS keys. Schedule their deletion and \
             delete the custom key store when they are gone."
        ))
        .into());
    }
    call.services
        .store
        .delete_custom_key_store(&store.record.region, &store.record.account, &id)
        .await
        .map_err(store_failure)?;
    Ok(json!({}))
}

pub async fn connect_custom_key_store(
    call: &Call<'_>,
    mut input: Input,
) -> Result<Value, ApiError> {
    let id = input.required_string("CustomKeyStoreId", 1, 64)?;
    input.finish()?;
    authorize_account(call, "ConnectCustomKeyStore", &Conditions::none())?;
    let store = find(call, &id).await?;
    match store.document.state {
        ConnectionState::Connected | ConnectionState::Connecting => return Ok(json!({})),
        ConnectionState::Disconnecting => {
            return Err(store.invalid_state("wait until it is DISCONNECTED, then connect it"))
        }
        ConnectionState::Failed => {
            return Err(store.invalid_state("disconnect it, then connect it again"))
        }
        ConnectionState::Disconnected => {}
    }
    let key_stores = &call.services.key_stores;
    let outcome = match key_stores.cluster(&store.document.cluster_id) {
        Some(cluster) => {
            let pin = unwrap_password(call, &store)?;
            key_stores.connect(&id, cluster, pin).await.map_err(|e| {
                tracing::warn!(custom_key_store = %id, error = %e, "connecting failed");
                connection_error_code(&e)
            })
        }
        None => Err("CLUSTER_NOT_FOUND"),
    };
    // As in AWS, the call succeeds and a failure shows in the store's connection state.
    let connected = write_back(call, &id, |s| {
        match outcome {
            Ok(()) => {
                s.document.state = ConnectionState::Connected;
                s.document.error_code = None;
            }
            Err(code) => {
                s.document.state = ConnectionState::Failed;
                s.document.error_code = Some(code.to_owned());
            }
        }
        Ok(())
    })
    .await;
    if connected.is_err() {
        key_stores.disconnect(&id);
    }
    connected?;
    Ok(json!({}))
}

pub async fn disconnect_custom_key_store(
    call: &Call<'_>,
    mut input: Input,
) -> Result<Value, ApiError> {
    let id = input.required_string("CustomKeyStoreId", 1, 64)?;
    input.finish()?;
    authorize_account(call, "DisconnectCustomKeyStore", &Conditions::none())?;
    write_back(call, &id, |s| match s.document.state {
        ConnectionState::Disconnected | ConnectionState::Disconnecting => {
            Err(s.invalid_state("it is not connected"))
        }
        _ => {
            s.document.state = ConnectionState::Disconnected;
            s.document.error_code = None;
            Ok(())
        }
    })
    .await?;
    call.services.key_stores.disconnect(&id);
    Ok(json!({}))
}

/// A key store as the operations on its keys find it.
pub(super) enum StoreAccess {
    NotFound,
    /// Not CONNECTED, or its token cannot be reached from this node.
    NotConnected(String),
    Ready(Arc<Token>, String),
}

/// Opens the key store `id` of `account` in `region` for use: it must be CONNECTED, and this
/// node logs in to its token if it has not yet (another node, or this one before a restart,
/// may have connected it).
pub(super) async fn open_store(
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
    if let Some(token) = key_stores.token(id) {
        return Ok(StoreAccess::Ready(token, store.document.cluster_id));
    }
    let Some(cluster) = key_stores.cluster(&store.document.cluster_id) else {
        return Ok(StoreAccess::NotConnected("CONNECTED".into()));
    };
    let pin = unwrap_password(call, &store)?;
    if let Err(e) = key_stores.connect(id, cluster, pin).await {
        tracing::warn!(custom_key_store = %id, error = %e, "reconnecting failed");
        return Ok(StoreAccess::NotConnected("CONNECTED".into()));
    }
    match key_stores.token(id) {
        Some(token) => Ok(StoreAccess::Ready(token, store.document.cluster_id)),
        None => Ok(StoreAccess::NotConnected("CONNECTED".into())),
    }
}

/// AWS's answer for a key whose custom key store cannot be used.
pub(super) fn unavailable(key: &KeyMetadata) -> ApiError {
    KmsError::InvalidState(format!("{} is unavailable.", key.arn)).into()
}

/// The token and token key behind a key of a custom key store.
pub(super) async fn token_key(call: &Call<'_>, key: &KeyMetadata) -> Result<TokenSealer, ApiError> {
    let link = key
        .custom_key_store
        .as_ref()
        .ok_or_else(|| ApiError::from(KmsError::internal()))?;
    match open_store(call, key.region(), key.account(), &link.id).await? {
        StoreAccess::Ready(..) => {}
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

/// Whether a key's custom key store is CONNECTED (for the key state DescribeKey shows).
pub(super) async fn store_connected(call: &Call<'_>, key: &KeyMetadata) -> Result<bool, ApiError> {
    let Some(link) = &key.custom_key_store else {
        return Ok(true);
    };
    Ok(stores_in(call, key.region(), key.account())
        .await?
        .iter()
        .any(|s| s.record.id == link.id && s.document.state == ConnectionState::Connected))
}

/// Makes a new key's AES-256 key inside the token of a CONNECTED AWS_CLOUDHSM store; returns
/// the store's link for the key's metadata. The caller has checked the key spec.
pub(super) async fn make_key_in_store(
    call: &Call<'_>,
    store_id: &str,
    origin: Origin,
    material: &MaterialId,
) -> Result<CustomKeyStoreLink, ApiError> {
    let account = call.request.principal().account().clone();
    let (token, cluster) = match open_store(call, call.request.region(), &account, store_id).await?
    {
        StoreAccess::NotFound => {
            return Err(KmsError::CustomKeyStoreNotFound(format!(
                "Custom key store {store_id} does not exist."
            ))
            .into())
        }
        StoreAccess::NotConnected(state) => {
            return Err(KmsError::CustomKeyStoreInvalidState(format!(
                "Custom key store {store_id} is {state}; it must be CONNECTED to create keys in it."
            ))
            .into())
        }
        StoreAccess::Ready(token, cluster) => (token, cluster),
    };
    if origin != Origin::AwsCloudhsm {
        return Err(KmsError::UnsupportedOperation(format!(
            "To create a KMS key in custom key store {store_id}, set Origin to AWS_CLOUDHSM."
        ))
        .into());
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
    })
}

/// Removes a key's token key when creating the key failed after it was made.
pub(super) fn forget_key_in_store(call: &Call<'_>, store_id: &str, material: &MaterialId) {
    call.services.key_stores.destroy_key(store_id, material);
}

/// GenerateRandom in a custom key store: the bytes come from its token.
pub(super) async fn random_in_store(
    call: &Call<'_>,
    store_id: &str,
    len: usize,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let account = call.request.principal().account().clone();
    match open_store(call, call.request.region(), &account, store_id).await? {
        StoreAccess::NotFound => Err(not_found()),
        StoreAccess::NotConnected(state) => Err(KmsError::CustomKeyStoreInvalidState(format!(
            "Custom key store {store_id} is {state}; it must be CONNECTED."
        ))
        .into()),
        StoreAccess::Ready(token, _) => token.random(len).map_err(|e| {
            tracing::error!(custom_key_store = %store_id, error = %e, "the token's generator failed");
            KmsError::internal().into()
        }),
    }
}

/// A token key doing the AES-GCM of a key's ciphertexts.
pub(super) struct TokenSealer {
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
