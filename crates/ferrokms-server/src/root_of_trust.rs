//! Which root key a data directory uses: the `root-key` file, or a key inside a PKCS#11
//! token that `hsm.toml` names. While a directory moves from one to the other both are
//! open: new secrets are wrapped by the one the move goes to, and each stored secret is
//! opened by the one that wrapped it, so a move can stop and resume at any point.

use std::fmt;
use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ferrokms_core::material::{
    credential_binding, key_store_password_binding, material_binding, LayeredRootKey,
    RootKeyProvider,
};
use ferrokms_hsm::{HsmRootKey, Pin, Token, TokenSpec};
use ferrokms_store::{SecretHolder, Store, WrappedSecret};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::{root_file, ServerError};

pub const HSM_CONFIG_FILE: &str = "hsm.toml";
const ROOT_KEY_FILE: &str = "root-key";
/// Secrets rewrapped per transaction by a move.
const REWRAP_BATCH: usize = 256;

/// Whether the HSM wraps new secrets, or is kept only to open what it wrapped before while
/// the directory moves back to the root-key file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HsmRole {
    #[default]
    Primary,
    Former,
}

/// `<data-dir>/hsm.toml`: where the root key's token is and how to log in to it. It holds
/// no PIN, only where the PIN is.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// The PKCS#11 module (`/usr/lib/softhsm/libsofthsm2.so`, a vendor's library).
    pub module: PathBuf,
    /// The label of the token that holds the root key.
    pub token_label: String,
    /// The token's slot, where labels alone are not unique (partitions of one HSM).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u64>,
    /// The label of the root key inside the token.
    #[serde(default = "default_key_label")]
    pub key_label: String,
    /// A file (mode 0600) holding the token user's PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// An environment variable holding the PIN.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_env: Option<String>,
    #[serde(default)]
    pub role: HsmRole,
}

pub fn default_key_label() -> String {
    "ferrokms-root".into()
}

impl HsmConfig {
    /// The directory's `hsm.toml`, if it has one.
    pub fn read(dir: &Path) -> Result<Option<HsmConfig>, ServerError> {
        let path = dir.join(HSM_CONFIG_FILE);
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(ServerError::Io(format!("reading {}: {e}", path.display()))),
        };
        let config: HsmConfig = toml::from_str(&text)
            .map_err(|e| ServerError::Config(format!("{}: {e}", path.display())))?;
        if config.pin_file.is_some() == config.pin_env.is_some() {
            return Err(ServerError::Config(format!(
                "{}: give the PIN's place as exactly one of pin_file and pin_env",
                path.display()
            )));
        }
        Ok(Some(config))
    }

    /// Writes `hsm.toml` (mode 0600) in place of the one there, durably.
    pub fn write(&self, dir: &Path) -> Result<(), ServerError> {
        let path = dir.join(HSM_CONFIG_FILE);
        let text = toml::to_string(self).map_err(|e| ServerError::Config(e.to_string()))?;
        let temporary = dir.join(format!("{HSM_CONFIG_FILE}.new"));
        let io = |e: std::io::Error| ServerError::Io(format!("writing {}: {e}", path.display()));
        let mut file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(io)?;
        file.write_all(text.as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)?;
        fs::rename(&temporary, &path).map_err(io)?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }

    /// Logs in to the token.
    pub fn token(&self) -> Result<Arc<Token>, ServerError> {
        let spec = TokenSpec {
            module: self.module.clone(),
            token_label: self.token_label.clone(),
            slot: self.slot,
            pin: read_pin(self.pin_file.as_deref(), self.pin_env.as_deref())?,
        };
        Token::open(&spec)
            .map(Arc::new)
            .map_err(|e| ServerError::Config(format!("HSM token {:?}: {e}", self.token_label)))
    }

    /// Makes the root key inside the token unless it is there; says whether it made it.
    pub fn make_root_key(&self) -> Result<bool, ServerError> {
        HsmRootKey::open_or_create(self.token()?, &self.key_label)
            .map(|(_, made)| made)
            .map_err(|e| {
                ServerError::Config(format!(
                    "making the root key in HSM token {:?}: {e}",
                    self.token_label
                ))
            })
    }

    fn root_key(&self) -> Result<HsmRootKey, ServerError> {
        HsmRootKey::open(self.token()?, &self.key_label).map_err(|e| {
            ServerError::Config(format!(
                "HSM token {:?}: {e} (ferrokms init --hsm makes it)",
                self.token_label
            ))
        })
    }
}

/// A token PIN from an environment variable or from a file only its owner may read.
pub fn read_pin(file: Option<&Path>, env: Option<&str>) -> Result<Pin, ServerError> {
    if let Some(var) = env {
        let pin = std::env::var(var)
            .map_err(|_| ServerError::Config(format!("the PIN variable {var} is not set")))?;
        return Ok(Pin::new(Zeroizing::new(pin)));
    }
    let path =
        file.ok_or_else(|| ServerError::Config("no PIN is named (pin_file or pin_env)".into()))?;
    let io = |e: std::io::Error| ServerError::Io(format!("reading {}: {e}", path.display()));
    let mut file = fs::File::open(path).map_err(io)?;
    root_file::refuse_if_shared(&file, path, "PIN file")?;
    let mut pin = Zeroizing::new(String::new());
    file.read_to_string(&mut pin).map_err(io)?;
    Ok(Pin::new(Zeroizing::new(
        pin.trim_end_matches(['\n', '\r']).to_owned(),
    )))
}

/// The root key of a data directory and what it is, for the banner.
pub struct RootOfTrust {
    pub provider: Arc<dyn RootKeyProvider>,
    pub description: String,
}

impl fmt::Debug for RootOfTrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RootOfTrust({})", self.description)
    }
}

/// Opens the root key of `dir`. Without `hsm.toml` it is the `root-key` file, made on first
/// use. With it, the HSM's key, and the file's too if there is one (or the HSM is former).
pub fn open(dir: &Path) -> Result<RootOfTrust, ServerError> {
    let file_path = dir.join(ROOT_KEY_FILE);
    let Some(config) = HsmConfig::read(dir)? else {
        return Ok(RootOfTrust {
            provider: Arc::new(root_file::load_or_create(&file_path)?),
            description: format!("file {}", file_path.display()),
        });
    };
    let hsm: Arc<dyn RootKeyProvider> = Arc::new(config.root_key()?);
    let hsm_name = format!(
        "key {:?} in HSM token {:?}",
        config.key_label, config.token_label
    );
    let file_name = file_path.display();
    Ok(match config.role {
        HsmRole::Former => RootOfTrust {
            provider: Arc::new(LayeredRootKey::new(
                Arc::new(root_file::load_or_create(&file_path)?),
                hsm,
            )),
            description: format!("file {file_name} (secrets still under the {hsm_name} open too)"),
        },
        HsmRole::Primary if file_path.exists() => RootOfTrust {
            provider: Arc::new(LayeredRootKey::new(
                hsm,
                Arc::new(root_file::load(&file_path)?),
            )),
            description: format!("{hsm_name} (secrets still under {file_name} open too)"),
        },
        HsmRole::Primary => RootOfTrust {
            provider: hsm,
            description: hsm_name,
        },
    })
}

/// What a secret's wrapping is bound to, by where it is kept.
fn binding(holder: &SecretHolder) -> Vec<u8> {
    match holder {
        SecretHolder::Material { key, material } => material_binding(key, material),
        SecretHolder::AccessKey { access_key_id } => credential_binding(access_key_id),
        SecretHolder::AuditSigningKey => crate::audit::SIGNING_KEY_BINDING.to_vec(),
        SecretHolder::KeyStorePassword { region, id } => {
            key_store_password_binding(region.as_str(), id)
        }
    }
}

/// Rewraps every stored secret that `root` did not wrap itself (at most `at_most` of them),
/// batch by batch, each batch in one transaction; a secret changed by someone else meanwhile
/// is read again. Returns how many were rewrapped. Neither key ids nor ciphertexts change:
/// only the wrapping of the material under them does.
pub async fn rewrap_all(
    store: &dyn Store,
    changes: &crate::audit::Changes,
    root: &dyn RootKeyProvider,
    at_most: Option<usize>,
    mut progress: impl FnMut(usize),
) -> Result<usize, ServerError> {
    let target = root.wrap_format();
    let mut done = 0;
    loop {
        let size = at_most.map_or(REWRAP_BATCH, |n| REWRAP_BATCH.min(n.saturating_sub(done)));
        if size == 0 {
            return Ok(done);
        }
        let batch = store.secrets_not_in_format(target, size).await?;
        if batch.is_empty() {
            return Ok(done);
        }
        let mut rewrapped: Vec<(WrappedSecret, Vec<u8>)> = Vec::with_capacity(batch.len());
        for secret in batch {
            let bound = binding(&secret.holder);
            let plain = root.unwrap(&bound, &secret.wrapped).map_err(|_| {
                ServerError::Config(format!(
                    "{:?} does not open with this data directory's root keys",
                    secret.holder
                ))
            })?;
            let new = root.wrap(&bound, &plain).map_err(|_| {
                ServerError::Config(format!(
                    "the new root key could not wrap {:?}",
                    secret.holder
                ))
            })?;
            rewrapped.push((secret, new));
        }
        let audit = changes.record_from(
            "kms.amazonaws.com",
            "RewrapSecrets",
            "",
            serde_json::json!({ "secrets": rewrapped.len(), "wrapFormat": target }),
            ("ferrokms::RootKey", "root-key"),
        );
        done += store.rewrap_secrets(&audit, &rewrapped).await?;
        progress(done);
    }
}
