//! Custom key stores: CreateCustomKeyStore, DescribeCustomKeyStores, UpdateCustomKeyStore,
//! DeleteCustomKeyStore, ConnectCustomKeyStore, DisconnectCustomKeyStore. An AWS_CLOUDHSM
//! store stands for a PKCS#11 token configured as a CloudHSM cluster; connecting logs in to
//! the token with the store's password (kept wrapped under the root key).

use std::sync::Arc;

use ferrokms_core::ciphertext::{ExternalBlob, TokenAead};
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
use super::external_key_stores::{self, XksSettings};
use super::{finish_page, finish_with_page, store_failure, Call};
use crate::error::ApiError;
use crate::key_stores::{connection_error_code, token_key_label};
use crate::wire::{timestamp, Input};
use crate::xks::client::{Sealed, XksEndpoint};

/// AWS's quota of custom key stores per account and region.
const MAX_KEY_STORES: usize = 10;
const CLUSTER_ID_PATTERN: &str = "cluster-[2-7a-zA-Z]{11,16}";
const STORE_TYPES: &[&str] = &["AWS_CLOUDHSM", "EXTERNAL_KEY_STORE"];
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

impl KeyStore {
    fn entry(&self) -> Value {
        let d = &self.document;
        let mut entry = json!({
            "CustomKeyStoreId": self.record.id,
            "CustomKeyStoreName": self.record.name,
            "CustomKeyStoreType": d.store_type,
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
    authorize_account(call, "CreateCustomKeyStore", &Conditions::none())?;
    let existing = stores_of_caller(call).await?;
    let (document, secret) = if store_type == "EXTERNAL_KEY_STORE" {
        if cluster_id.is_some() || trust_anchor.is_some() || password.is_some() {
            return Err(KmsError::Validation(
                "CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword are valid only \
                 for an AWS_CLOUDHSM custom key store."
                    .into(),
            )
            .into());
        }
        new_external_store(call, xks, &existing).await?
    } else {
        if xks.any() {
            return Err(KmsError::Validation(
                "XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store."
                    .into(),
            )
            .into());
        }
        let (Some(cluster_id), Some(trust_anchor), Some(password)) =
            (cluster_id, trust_anchor, password)
        else {
            return Err(KmsError::Validation(
                "An AWS_CLOUDHSM custom key store needs CloudHsmClusterId, \
                 TrustAnchorCertificate and KeyStorePassword."
                    .into(),
            )
            .into());
        };
        check_new_cluster(call, &cluster_id, &trust_anchor, &existing)?;
        let document = StoreDocument {
            store_type: store_type.to_owned(),
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
            return Err(KmsError::IncorrectTrustAnchor(format!(
                "The trust anchor certificate in the request is not the trust anchor \
                 certificate of the specified AWS CloudHSM cluster {cluster_id}."
            ))
            .into());
        }
    }
    if let Some(other) = existing
        .iter()
        .find(|s| s.document.cluster_id.as_deref() == Some(cluster_id))
    {
        return Err(KmsError::CloudHsmClusterInUse(format!(
            "The AWS CloudHSM cluster {cluster_id} is already associated with custom key store {}.",
            other.record.id
        ))
        .into());
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
        return Err(KmsError::Validation(
            "An EXTERNAL_KEY_STORE custom key store needs XksProxyUriEndpoint, XksProxyUriPath, \
             XksProxyConnectivity and XksProxyAuthenticationCredential."
                .into(),
        )
        .into());
    };
    let vpc = connectivity == "VPC_ENDPOINT_SERVICE";
    if vpc != xks.vpc_endpoint_service_name.is_some() {
        return Err(KmsError::Validation(
            "XksProxyVpcEndpointServiceName is required with VPC_ENDPOINT_SERVICE connectivity \
             and valid only with it."
                .into(),
        )
        .into());
    }
    if existing.iter().any(|s| {
        s.document
            .xks
            .as_ref()
            .is_some_and(|x| x.uri_endpoint == uri_endpoint && x.uri_path == uri_path)
    }) {
        return Err(KmsError::XksProxyUriInUse(
            "The combination of the XksProxyUriEndpoint and XksProxyUriPath values is already \
             associated with an external key store in this account and Region."
                .into(),
        )
        .into());
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
        store_type: "EXTERNAL_KEY_STORE".into(),
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
    authorize_account(call, "UpdateCustomKeyStore", &Conditions::none())?;
    let current = find(call, &id).await?;
    let external = current.document.xks.is_some();
    if external && (password.is_some() || cluster_id.is_some()) {
        return Err(KmsError::Validation(format!(
            "KeyStorePassword and CloudHsmClusterId are valid only for an AWS_CLOUDHSM custom \
             key store; {id} is EXTERNAL_KEY_STORE."
        ))
        .into());
    }
    if !external && xks.any() {
        return Err(KmsError::Validation(format!(
            "XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store; {id} \
             is AWS_CLOUDHSM."
        ))
        .into());
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
            return Err(KmsError::CloudHsmClusterNotRelated(format!(
                "The AWS CloudHSM cluster {new} is not related to the cluster of custom key \
                 store {id}: they do not share a trust anchor."
            ))
            .into());
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
            return Err(store.invalid_state(
                "disconnect it before changing that (only its name, and an external key \
                 store's proxy path and credential, can change while it is not DISCONNECTED)",
            ));
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
    /// An AWS_CLOUDHSM store, logged in on this node, and its cluster.
    Token(Arc<Token>, String),
    /// An EXTERNAL_KEY_STORE store and how to reach its proxy.
    Proxy(XksEndpoint),
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
pub(super) fn unavailable(key: &KeyMetadata) -> ApiError {
    KmsError::InvalidState(format!("{} is unavailable.", key.arn)).into()
}

/// The token and token key behind a key of an AWS_CLOUDHSM store.
pub(super) async fn token_key(call: &Call<'_>, key: &KeyMetadata) -> Result<TokenSealer, ApiError> {
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

/// The outer layer of an external key store key's ciphertext: `inner` (the blob of the key's
/// own material) encrypted by the external key.
pub(super) async fn seal_outer(
    call: &Call<'_>,
    key: &KeyMetadata,
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
        .map_err(|e| {
            tracing::warn!(key = %key.arn, error = %e, "the external key store's proxy failed");
            external_key_stores::crypto_failure(&e)
        })?;
    Ok(ExternalBlob {
        key_id: key.id(),
        material_id: key.current_material,
        iv: sealed.iv,
        tag: sealed.tag,
        metadata: sealed.metadata,
        outer: sealed.ciphertext,
    }
    .to_bytes()?)
}

/// Takes the outer layer off an external key store key's ciphertext, giving the inner blob.
pub(super) async fn open_outer(
    call: &Call<'_>,
    key: &KeyMetadata,
    blob: &ExternalBlob,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    let (endpoint, external_key) = proxy_of(call, key).await?;
    let aad = ExternalBlob::header(blob.key_id, blob.material_id);
    let metadata =
        external_key_stores::request_metadata(call, Some(key.arn.to_string()), "Decrypt");
    let sealed = Sealed {
        iv: blob.iv,
        ciphertext: blob.outer.clone(),
        tag: blob.tag,
        metadata: blob.metadata.clone(),
    };
    call.services
        .xks
        .decrypt(
            &endpoint,
            key.region().as_str(),
            &external_key,
            metadata,
            &sealed,
            &aad,
        )
        .await
        .map_err(|e| {
            tracing::warn!(key = %key.arn, error = %e, "the external key store's proxy failed");
            external_key_stores::crypto_failure(&e)
        })
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

/// Prepares a new key in a CONNECTED custom key store: for an AWS_CLOUDHSM store, makes its
/// AES-256 key inside the token; for an EXTERNAL_KEY_STORE, checks with the proxy that the
/// external key is usable and not yet another key's. Returns the link for the key's
/// metadata. The caller has checked the key spec.
pub(super) async fn make_key_in_store(
    call: &Call<'_>,
    store_id: &str,
    origin: Origin,
    xks_key_id: Option<&str>,
    material: &MaterialId,
) -> Result<CustomKeyStoreLink, ApiError> {
    let account = call.request.principal().account().clone();
    let region = call.request.region().clone();
    match open_store(call, &region, &account, store_id).await? {
        StoreAccess::NotFound => Err(KmsError::CustomKeyStoreNotFound(format!(
            "Custom key store {store_id} does not exist."
        ))
        .into()),
        StoreAccess::NotConnected(state) => Err(KmsError::CustomKeyStoreInvalidState(format!(
            "Custom key store {store_id} is {state}; it must be CONNECTED to create keys in it."
        ))
        .into()),
        StoreAccess::Token(token, cluster) => {
            if origin != Origin::AwsCloudhsm || xks_key_id.is_some() {
                return Err(KmsError::UnsupportedOperation(format!(
                    "To create a KMS key in custom key store {store_id}, set Origin to \
                     AWS_CLOUDHSM (and give no XksKeyId)."
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
                xks_key_id: None,
            })
        }
        StoreAccess::Proxy(endpoint) => {
            let (Origin::ExternalKeyStore, Some(external_key)) = (origin, xks_key_id) else {
                return Err(KmsError::UnsupportedOperation(format!(
                    "To create a KMS key in external key store {store_id}, set Origin to \
                     EXTERNAL_KEY_STORE and give the XksKeyId of its external key."
                ))
                .into());
            };
            let keys = call
                .services
                .store
                .all_keys()
                .await
                .map_err(store_failure)?;
            if keys.iter().any(|k| {
                k.region() == &region
                    && k.account() == &account
                    && k.custom_key_store.as_ref().is_some_and(|l| {
                        l.id == store_id && l.xks_key_id.as_deref() == Some(external_key)
                    })
            }) {
                return Err(KmsError::XksKeyAlreadyInUse(format!(
                    "The external key {external_key} is already associated with a KMS key in \
                     custom key store {store_id}."
                ))
                .into());
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
                return Err(KmsError::XksKeyInvalidConfiguration(
                    "The external key must be an AES-256 symmetric key that is enabled and \
                     performs encryption and decryption."
                        .into(),
                )
                .into());
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
        StoreAccess::Proxy(_) => Err(KmsError::UnsupportedOperation(format!(
            "GenerateRandom does not take an external key store ({store_id})."
        ))
        .into()),
        StoreAccess::Token(token, _) => token.random(len).map_err(|e| {
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
