//! Custom key stores: CreateCustomKeyStore, DescribeCustomKeyStores, UpdateCustomKeyStore,
//! DeleteCustomKeyStore, ConnectCustomKeyStore, DisconnectCustomKeyStore. An AWS_CLOUDHSM
//! store stands for a PKCS#11 token configured as a CloudHSM cluster; connecting logs in to
//! the token with the store's password (kept wrapped under the root key).

use ferrokms_core::ids::{AccountId, Region};
use ferrokms_core::key::Millis;
use ferrokms_core::material::key_store_password_binding;
use ferrokms_core::{random, KmsError};
use ferrokms_hsm::Pin;
use ferrokms_store::{CustomKeyStoreRecord, StoreError};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::authorize::{authorize_iam, Conditions};
use super::external_key_stores::{self, XksSettings};
use super::operations::On;
use super::{finish_page, finish_with_page, store_failure, Call};

mod keys;
use crate::error::ApiError;
use crate::key_stores::connection_error_code;
use crate::wire::{timestamp, Input};
pub(super) use keys::{
    forget_key_in_store, make_key_in_store, open_outer, random_in_store, seal_outer,
    store_connected, token_key,
};

const CLUSTER_ID_PATTERN: &str = "cluster-[2-7a-zA-Z]{11,16}";
const STORE_TYPES: &[&str] = &["AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];

/// A store's connection state. A connection is made or dropped within the request that asks
/// for it, so AWS's passing states CONNECTING and DISCONNECTING never show.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
enum ConnectionState {
    Connected,
    Disconnected,
    Failed,
}

impl ConnectionState {
    fn as_str(self) -> &'static str {
        match self {
            ConnectionState::Connected => "CONNECTED",
            ConnectionState::Disconnected => "DISCONNECTED",
            ConnectionState::Failed => "FAILED",
        }
    }
}

/// What a store keeps beside its id, name and password.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoreDocument {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cluster_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    trust_anchor: Option<String>,
    /// An EXTERNAL_KEY_STORE's proxy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    xks: Option<XksSettings>,
    state: ConnectionState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_code: Option<String>,
    created: Millis,
}

struct KeyStore {
    record: CustomKeyStoreRecord,
    document: StoreDocument,
}

impl StoreDocument {
    fn store_type(&self) -> &'static str {
        if self.xks.is_some() {
            "EXTERNAL_KEY_STORE"
        } else {
            "AWS_CLOUDHSM"
        }
    }
}

impl KeyStore {
    fn entry(&self) -> Value {
        let d = &self.document;
        let mut entry = json!({
            "CustomKeyStoreId": self.record.id,
            "CustomKeyStoreName": self.record.name,
            "CustomKeyStoreType": d.store_type(),
            "ConnectionState": d.state.as_str(),
            "CreationDate": timestamp(d.created),
        });
        if let Some(cluster) = &d.cluster_id {
            entry["CloudHsmClusterId"] = json!(cluster);
        }
        if let Some(anchor) = &d.trust_anchor {
            entry["TrustAnchorCertificate"] = json!(anchor);
        }
        if let Some(xks) = &d.xks {
            entry["XksProxyConfiguration"] = xks.configuration();
        }
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

    /// The store's state refuses the operation: `error` is the constructor that says why.
    fn invalid_state(&self, error: fn(&str, &str) -> KmsError) -> ApiError {
        error(self.record.id.as_str(), self.document.state.as_str()).into()
    }
}

fn not_found() -> ApiError {
    // AWS answers an unknown custom key store with no message.
    KmsError::custom_key_store_not_found().into()
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

/// The KMS keys of a custom key store, in every key state. (A scan of all keys: stores are
/// made and deleted rarely.)
async fn keys_in_store(
    call: &Call<'_>,
    region: &ferrokms_core::ids::Region,
    account: &ferrokms_core::ids::AccountId,
    id: &str,
) -> Result<Vec<ferrokms_core::key::KeyMetadata>, ApiError> {
    let keys = call
        .services
        .store
        .all_keys()
        .await
        .map_err(store_failure)?;
    Ok(keys
        .into_iter()
        .filter(|k| k.region() == region && k.account() == account)
        .filter(|k| k.custom_key_store.as_ref().is_some_and(|l| l.id == id))
        .collect())
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
    let hex = ferrokms_core::hex::encode(&bytes);
    Ok(format!("cks-{}", &hex[..17]))
}

fn cluster_not_found(id: &str) -> ApiError {
    KmsError::cloudhsm_cluster_not_found(id).into()
}

fn name_in_use() -> ApiError {
    KmsError::custom_key_store_name_in_use().into()
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
    let xks = external_key_stores::read_members(&mut input)?;
    input.finish()?;
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
    let existing = stores_of_caller(call).await?;
    let (document, secret) = if store_type == "EXTERNAL_KEY_STORE" {
        if cluster_id.is_some() || trust_anchor.is_some() || password.is_some() {
            return Err(KmsError::cloudhsm_members_for_external_store().into());
        }
        new_external_store(call, xks, &existing).await?
    } else {
        if xks.any() {
            return Err(KmsError::xks_members_for_cloudhsm_store().into());
        }
        let (Some(cluster_id), Some(trust_anchor), Some(password)) =
            (cluster_id, trust_anchor, password)
        else {
            return Err(KmsError::cloudhsm_members_missing().into());
        };
        check_new_cluster(call, &cluster_id, &trust_anchor, &existing)?;
        let document = StoreDocument {
            cluster_id: Some(cluster_id),
            trust_anchor: Some(trust_anchor),
            xks: None,
            state: ConnectionState::Disconnected,
            error_code: None,
            created: call.now,
        };
        (document, password)
    };
    let region = call.request.region().clone();
    let id = new_store_id()?;
    let wrapped_password = call
        .services
        .root
        .wrap(
            &key_store_password_binding(region.as_str(), &id),
            secret.as_bytes(),
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
        document,
    };
    store.save()?;
    let max = call.services.quotas.resources.custom_key_stores;
    match call
        .services
        .store
        .create_custom_key_store(call.audit(), &store.record, max)
        .await
    {
        Ok(()) => Ok(json!({ "CustomKeyStoreId": id })),
        Err(StoreError::AlreadyExists) => Err(name_in_use()),
        Err(StoreError::LimitExceeded { in_use }) => {
            Err(KmsError::custom_key_stores_limit(max, in_use).into())
        }
        Err(e) => Err(store_failure(e)),
    }
}

/// A new AWS_CLOUDHSM store's cluster must be configured, match its trust anchor and serve
/// no other store of the account.
fn check_new_cluster(
    call: &Call<'_>,
    cluster_id: &str,
    trust_anchor: &str,
    existing: &[KeyStore],
) -> Result<(), ApiError> {
    let key_stores = &call.services.key_stores;
    if key_stores.cluster(cluster_id).is_none() {
        return Err(cluster_not_found(cluster_id));
    }
    if let Some(anchor) = key_stores.trust_anchor(cluster_id) {
        if anchor.trim() != trust_anchor.trim() {
            return Err(KmsError::incorrect_trust_anchor(cluster_id).into());
        }
    }
    if let Some(other) = existing
        .iter()
        .find(|s| s.document.cluster_id.as_deref() == Some(cluster_id))
    {
        return Err(KmsError::cloudhsm_cluster_in_use(cluster_id, &other.record.id).into());
    }
    Ok(())
}

/// A new EXTERNAL_KEY_STORE store: its members complete and unique in the account, and (for
/// a public endpoint, as AWS does) its proxy answering GetHealthStatus.
async fn new_external_store(
    call: &Call<'_>,
    xks: external_key_stores::XksMembers,
    existing: &[KeyStore],
) -> Result<(StoreDocument, Zeroizing<String>), ApiError> {
    let (Some(uri_endpoint), Some(uri_path), Some(connectivity), Some((access_key_id, secret))) = (
        xks.uri_endpoint,
        xks.uri_path,
        xks.connectivity,
        xks.credential,
    ) else {
        return Err(KmsError::xks_members_missing().into());
    };
    let vpc = connectivity == "VPC_ENDPOINT_SERVICE";
    if vpc != xks.vpc_endpoint_service_name.is_some() {
        return Err(KmsError::xks_vpc_endpoint_service_name_mismatch().into());
    }
    if existing.iter().any(|s| {
        s.document
            .xks
            .as_ref()
            .is_some_and(|x| x.uri_endpoint == uri_endpoint && x.uri_path == uri_path)
    }) {
        return Err(KmsError::xks_proxy_uri_in_use().into());
    }
    let settings = XksSettings {
        uri_endpoint,
        uri_path,
        connectivity,
        access_key_id,
        vpc_endpoint_service_owner: vpc.then(|| {
            xks.vpc_endpoint_service_owner
                .unwrap_or_else(|| call.request.principal().account().as_str().to_owned())
        }),
        vpc_endpoint_service_name: xks.vpc_endpoint_service_name,
    };
    if !vpc {
        let endpoint = settings.endpoint(secret.clone());
        let metadata = external_key_stores::request_metadata(call, None, "CreateCustomKeyStore");
        call.services
            .xks
            .health(&endpoint, call.request.region().as_str(), metadata)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the new external key store's proxy failed");
                external_key_stores::management_failure(&e)
            })?;
    }
    let document = StoreDocument {
        cluster_id: None,
        trust_anchor: None,
        xks: Some(settings),
        state: ConnectionState::Disconnected,
        error_code: None,
        created: call.now,
    };
    Ok((document, secret))
}

pub async fn describe_custom_key_stores(
    call: &Call<'_>,
    mut input: Input,
) -> Result<Value, ApiError> {
    let id = input.string("CustomKeyStoreId", 1, 64)?;
    let name = input.string("CustomKeyStoreName", 1, 256)?;
    let (limit, after) = finish_with_page(&mut input, 1000, 1000)?;
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
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
            .update_custom_key_store(call.audit(), &store.record)
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

/// The store's secret: a CloudHSM store's password, or an external one's proxy secret.
fn unwrap_secret(call: &Call<'_>, store: &KeyStore) -> Result<Zeroizing<String>, ApiError> {
    let plain = call
        .services
        .root
        .unwrap(
            &key_store_password_binding(store.record.region.as_str(), &store.record.id),
            &store.record.wrapped_password,
        )
        .map_err(ApiError::from)?;
    let text = String::from_utf8(plain.to_vec()).map_err(|_| KmsError::internal())?;
    Ok(Zeroizing::new(text))
}

pub async fn update_custom_key_store(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let id = input.required_string("CustomKeyStoreId", 1, 64)?;
    let new_name = input.string("NewCustomKeyStoreName", 1, 256)?;
    let password = input.secret_string("KeyStorePassword", 7, 32)?;
    let cluster_id = input.string("CloudHsmClusterId", 19, 24)?;
    check_cluster_id(&mut input, "CloudHsmClusterId", cluster_id.as_ref());
    let xks = external_key_stores::read_members(&mut input)?;
    input.finish()?;
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
    let current = find(call, &id).await?;
    let external = current.document.xks.is_some();
    if external && (password.is_some() || cluster_id.is_some()) {
        return Err(KmsError::cloudhsm_members_for_external_store_update(&id).into());
    }
    if !external && xks.any() {
        return Err(KmsError::xks_members_for_cloudhsm_store_update(&id).into());
    }
    let key_stores = &call.services.key_stores;
    if let (Some(new), Some(old)) = (&cluster_id, &current.document.cluster_id) {
        if key_stores.cluster(new).is_none() {
            return Err(cluster_not_found(new));
        }
        let related = match (key_stores.trust_anchor(new), key_stores.trust_anchor(old)) {
            (Some(a), Some(b)) => a.trim() == b.trim(),
            _ => new == old,
        };
        if !related {
            return Err(KmsError::cloudhsm_cluster_not_related(new, &id).into());
        }
    }
    // The XKS credential's secret is kept where a CloudHSM store keeps its password.
    let new_secret = password.or_else(|| xks.credential.as_ref().map(|(_, s)| s.clone()));
    let wrapped_secret = match &new_secret {
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
    // A proxy's endpoint and connectivity change only while disconnected; its name, path
    // and credential at any time (AWS's rules). A CloudHSM store's password and cluster
    // change only while disconnected.
    let needs_disconnected = cluster_id.is_some()
        || (!external && wrapped_secret.is_some())
        || xks.uri_endpoint.is_some()
        || xks.connectivity.is_some()
        || xks.vpc_endpoint_service_name.is_some()
        || xks.vpc_endpoint_service_owner.is_some();
    write_back(call, &id, |store| {
        if needs_disconnected && store.document.state != ConnectionState::Disconnected {
            return Err(store.invalid_state(KmsError::custom_key_store_must_disconnect_to_update));
        }
        if let Some(name) = &new_name {
            store.record.name = name.clone();
        }
        if let Some(wrapped) = &wrapped_secret {
            store.record.wrapped_password = wrapped.clone();
        }
        if let Some(cluster) = &cluster_id {
            store.document.cluster_id = Some(cluster.clone());
        }
        if let Some(settings) = &mut store.document.xks {
            if let Some(e) = &xks.uri_endpoint {
                settings.uri_endpoint = e.clone();
            }
            if let Some(p) = &xks.uri_path {
                settings.uri_path = p.clone();
            }
            if let Some(c) = &xks.connectivity {
                settings.connectivity = c.clone();
            }
            if let Some((access, _)) = &xks.credential {
                settings.access_key_id = access.clone();
            }
            if let Some(n) = &xks.vpc_endpoint_service_name {
                settings.vpc_endpoint_service_name = Some(n.clone());
            }
            if let Some(o) = &xks.vpc_endpoint_service_owner {
                settings.vpc_endpoint_service_owner = Some(o.clone());
            }
        }
        Ok(())
    })
    .await?;
    Ok(json!({}))
}

pub async fn delete_custom_key_store(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let id = input.required_string("CustomKeyStoreId", 1, 64)?;
    input.finish()?;
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
    let store = find(call, &id).await?;
    if store.document.state != ConnectionState::Disconnected {
        return Err(store.invalid_state(KmsError::custom_key_store_must_disconnect_to_delete));
    }
    // Keys pending deletion count too, as in AWS.
    let in_store = keys_in_store(call, &store.record.region, &store.record.account, &id)
        .await?
        .len();
    if in_store > 0 {
        return Err(KmsError::custom_key_store_has_keys(&id, in_store).into());
    }
    call.services
        .store
        .delete_custom_key_store(
            call.audit(),
            &store.record.region,
            &store.record.account,
            &id,
        )
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
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
    let store = find(call, &id).await?;
    match store.document.state {
        ConnectionState::Connected => return Ok(json!({})),
        ConnectionState::Failed => {
            return Err(store.invalid_state(KmsError::custom_key_store_must_reconnect))
        }
        ConnectionState::Disconnected => {}
    }
    let key_stores = &call.services.key_stores;
    let cluster = store
        .document
        .cluster_id
        .as_deref()
        .and_then(|c| key_stores.cluster(c));
    let outcome = match (&store.document.xks, cluster) {
        (Some(xks), _) => {
            let endpoint = xks.endpoint(unwrap_secret(call, &store)?);
            let metadata =
                external_key_stores::request_metadata(call, None, "ConnectCustomKeyStore");
            call.services
                .xks
                .health(&endpoint, store.record.region.as_str(), metadata)
                .await
                .map(|_| ())
                .map_err(|e| {
                    tracing::warn!(custom_key_store = %id, error = %e, "connecting failed");
                    external_key_stores::connection_error_code(&e)
                })
        }
        (None, Some(cluster)) => {
            let pin = Pin::new(unwrap_secret(call, &store)?);
            key_stores.connect(&id, cluster, pin).await.map_err(|e| {
                tracing::warn!(custom_key_store = %id, error = %e, "connecting failed");
                connection_error_code(&e)
            })
        }
        (None, None) => Err("CLUSTER_NOT_FOUND"),
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
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
    write_back(call, &id, |s| match s.document.state {
        ConnectionState::Disconnected => {
            Err(s.invalid_state(KmsError::custom_key_store_not_connected_to_disconnect))
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
