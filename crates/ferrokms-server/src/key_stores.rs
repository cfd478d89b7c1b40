//! The HSM clusters that AWS_CLOUDHSM custom key stores stand for (each a PKCS#11 token
//! named in the configuration), and this node's logged-in connections to them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ferrokms_hsm::{HsmError, Pin, Token, TokenKey, TokenSpec};
use serde::Deserialize;

use crate::ServerError;

/// `[[cloudhsm_clusters]]` in the config file: a token that callers name by a CloudHSM
/// cluster id in CreateCustomKeyStore.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloudHsmCluster {
    /// The CloudHsmClusterId callers give: `cluster-` and 11 to 16 of `[2-7a-zA-Z]`.
    pub id: String,
    /// The PKCS#11 module of the token.
    pub module: PathBuf,
    /// The label of the token.
    pub token_label: String,
    /// Its slot, where labels alone are not unique.
    #[serde(default)]
    pub slot: Option<u64>,
    /// The cluster's trust anchor certificate (PEM); when set, CreateCustomKeyStore's
    /// TrustAnchorCertificate must be the same, and only clusters with the same one are
    /// related (UpdateCustomKeyStore).
    pub trust_anchor_file: Option<PathBuf>,
}

/// Why a connection failed, as AWS's ConnectionErrorCode.
pub fn connection_error_code(e: &HsmError) -> &'static str {
    match e {
        HsmError::PinIncorrect => "INVALID_CREDENTIALS",
        HsmError::PinLocked => "USER_LOCKED_OUT",
        HsmError::TokenNotFound(_) | HsmError::Module { .. } => "CLUSTER_NOT_FOUND",
        HsmError::Unreachable(_) => "NETWORK_ERRORS",
        _ => "INTERNAL_ERROR",
    }
}

/// The configured clusters and the tokens of connected key stores on this node.
#[derive(Default)]
pub struct KeyStores {
    clusters: Vec<(CloudHsmCluster, Option<String>)>,
    connected: Mutex<HashMap<String, Arc<Token>>>,
}

/// A token key's label: one per KMS key, named by its material id.
pub fn token_key_label(material: &ferrokms_core::material::MaterialId) -> String {
    format!("ferrokms:{material}")
}

impl KeyStores {
    /// Reads each cluster's trust anchor file once.
    pub fn new(clusters: Vec<CloudHsmCluster>) -> Result<Self, ServerError> {
        let clusters = clusters
            .into_iter()
            .map(|c| {
                let anchor = c
                    .trust_anchor_file
                    .as_ref()
                    .map(|f| {
                        std::fs::read_to_string(f)
                            .map_err(|e| ServerError::Io(format!("reading {}: {e}", f.display())))
                    })
                    .transpose()?;
                Ok((c, anchor))
            })
            .collect::<Result<_, ServerError>>()?;
        Ok(KeyStores {
            clusters,
            connected: Mutex::new(HashMap::new()),
        })
    }

    pub fn cluster(&self, id: &str) -> Option<&CloudHsmCluster> {
        self.clusters
            .iter()
            .find(|(c, _)| c.id == id)
            .map(|(c, _)| c)
    }

    /// The trust anchor of a configured cluster, if its configuration names one.
    pub fn trust_anchor(&self, id: &str) -> Option<&str> {
        self.clusters
            .iter()
            .find(|(c, _)| c.id == id)
            .and_then(|(_, a)| a.as_deref())
    }

    /// Logs in to the cluster's token with the key store's password and keeps the session
    /// for the store's keys.
    pub async fn connect(
        &self,
        store: &str,
        cluster: &CloudHsmCluster,
        pin: Pin,
    ) -> Result<(), HsmError> {
        let spec = TokenSpec {
            module: cluster.module.clone(),
            token_label: cluster.token_label.clone(),
            slot: cluster.slot,
            pin,
        };
        let token = tokio::task::spawn_blocking(move || Token::open(&spec))
            .await
            .map_err(|e| HsmError::Pkcs11(format!("the connecting task failed: {e}")))??;
        if let Ok(mut connected) = self.connected.lock() {
            connected.insert(store.to_owned(), Arc::new(token));
        }
        Ok(())
    }

    /// This node's logged-in token of a key store, if it has one.
    pub fn token(&self, store: &str) -> Option<Arc<Token>> {
        let connected = self.connected.lock().ok()?;
        connected.get(store).cloned()
    }

    /// The key labelled `label` in a connected store's token.
    pub fn key(&self, store: &str, label: &str) -> Result<(Arc<Token>, TokenKey), HsmError> {
        let token = self
            .token(store)
            .ok_or_else(|| HsmError::Unreachable("not connected".into()))?;
        let key = token.find_key(label)?;
        Ok((token, key))
    }

    /// Destroys the token key of a deleted KMS key, if this node is connected to its store.
    pub fn destroy_key(&self, store: &str, material: &ferrokms_core::material::MaterialId) {
        let destroyed = self
            .key(store, &token_key_label(material))
            .and_then(|(token, key)| token.destroy_key(key));
        if let Err(e) = destroyed {
            tracing::warn!(custom_key_store = %store, error = %e, "a deleted key's token key stays in its token");
        }
    }

    /// Drops this node's connection to a key store's token.
    pub fn disconnect(&self, store: &str) {
        let gone = self.connected.lock().ok().and_then(|mut c| c.remove(store));
        if let Some(token) = gone {
            token.close_sessions();
        }
    }
}
