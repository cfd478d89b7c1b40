//! First start of a data directory: the root key, the database, and the admin principal
//! with its access key pair.

use ferrokms_store::prelude::*;
use std::fs::{self, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use ferrokms_core::material::RootKeyProvider;
use ferrokms_core::policy::ADMINISTRATOR_ACCESS;
use ferrokms_store::SqlStore;

use crate::identities::{self, IssuedKey};
use crate::{root_of_trust, ServerError};

/// The account a fresh data directory is made for.
pub const DEFAULT_ACCOUNT: &str = "111122223333";
const CREDENTIALS_FILE: &str = "admin-credentials";

/// An opened data directory.
pub struct DataDir {
    pub path: PathBuf,
    /// This node's id, kept in `node-id` so that it survives restarts.
    pub node_id: String,
    pub store: Arc<SqlStore>,
    pub root: Arc<dyn RootKeyProvider>,
    /// Which root key that is (the file, or a key in an HSM), for the banner.
    pub root_description: String,
    /// Held while this process owns the directory (see `open_exclusive`).
    _owner: Option<fs::File>,
}

/// Whether a process opens a data directory as its owner (`serve`, `restore`) or as a tool
/// beside a running server (`admin`, `audit`, `backup`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Opening {
    Owner,
    Tool,
}

/// The admin's access key pair and the file it is written to
/// (`<data-dir>/admin-credentials`, the same `export` lines that are printed).
#[derive(Debug)]
pub struct AdminCredentials {
    pub key: IssuedKey,
    pub file: PathBuf,
    /// Whether this start made them: only then is the secret shown; later starts name the
    /// file.
    pub made: bool,
}

/// The audit signing key's public half, as kept outside the store.
#[derive(Debug)]
pub struct AuditAnchor {
    pub file: PathBuf,
    pub fingerprint: String,
    /// The keys, checked against the public half in `file`.
    pub keys: Arc<crate::audit::AuditKeys>,
}

pub fn now_millis() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Loads a backup into the data directory's empty store, after checking that its audit
/// signing key (and so its key material) opens with this directory's root key.
pub async fn restore(
    data: &DataDir,
    rows: &[ferrokms_store::BackupRow],
) -> Result<(), ServerError> {
    let signing_key = rows
        .iter()
        .find(|r| r.table == "audit_signing_key")
        .and_then(|r| r.blob("wrapped"));
    if let Some(wrapped) = signing_key {
        crate::audit::open_signing_key(data.root.as_ref(), &wrapped).map_err(|_| {
            ServerError::Config(
                "the backup's material does not open with this data directory's root key".into(),
            )
        })?;
    }
    data.store.restore(rows).await.map_err(|e| match e {
        ferrokms_store::StoreError::AlreadyExists => {
            ServerError::Config("the store is not empty: restore into a new one".into())
        }
        e => e.into(),
    })
}

/// Locks `<dir>/owner.lock` for as long as the returned file is open; the kernel lets go
/// when the process ends, however it ends.
fn lock_owner(dir: &Path) -> Result<fs::File, ServerError> {
    let file_path = dir.join("owner.lock");
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&file_path)
        .map_err(|e| ServerError::Io(format!("opening {}: {e}", file_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(fs::TryLockError::WouldBlock) => Err(ServerError::Config(format!(
            "another ferrokms process is serving from {} (it holds {})",
            dir.display(),
            file_path.display()
        ))),
        Err(fs::TryLockError::Error(e)) => Err(ServerError::Io(format!(
            "locking {}: {e}",
            file_path.display()
        ))),
    }
}

/// Reads the node id of a data directory, making one on first use.
fn node_id(dir: &Path) -> Result<String, ServerError> {
    let file = dir.join("node-id");
    match fs::read_to_string(&file) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(ServerError::Io(format!("reading {}: {e}", file.display()))),
    }
    let bytes: [u8; 8] = ferrokms_core::random::array().map_err(|_| ServerError::Random)?;
    let id = ferrokms_core::hex::encode(&bytes);
    fs::write(&file, format!("{id}\n"))
        .map_err(|e| ServerError::Io(format!("writing {}: {e}", file.display())))?;
    Ok(id)
}

impl DataDir {
    /// Opens `path`, creating the directory, root key and database on first use. The database
    /// is `ferrokms.db` in the directory, or the PostgreSQL database `store` names
    /// (`postgres://user@host/db`), which several nodes with the same root key may share.
    pub async fn open(path: &Path, store: Option<&str>) -> Result<Self, ServerError> {
        Self::open_as(path, store, Opening::Tool).await
    }

    /// Opens `path` as its one owner: refused while another process owns it. An SQLite
    /// store then keeps keys and aliases in memory once read, which is safe because no other
    /// process writes them (the tools only add principals and read).
    pub async fn open_exclusive(path: &Path, store: Option<&str>) -> Result<Self, ServerError> {
        Self::open_as(path, store, Opening::Owner).await
    }

    async fn open_as(
        path: &Path,
        store: Option<&str>,
        opening: Opening,
    ) -> Result<Self, ServerError> {
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(path)
            .map_err(|e| ServerError::Io(format!("creating {}: {e}", path.display())))?;
        let owner = match opening {
            Opening::Owner => Some(lock_owner(path)?),
            Opening::Tool => None,
        };
        let root = root_of_trust::open(path)?;
        let store = Arc::new(match store {
            None => {
                let sqlite = SqlStore::open_sqlite(&path.join("ferrokms.db")).await?;
                match opening {
                    Opening::Owner => sqlite.cache_reads(),
                    Opening::Tool => sqlite,
                }
            }
            Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
                let postgres = SqlStore::connect_postgres(url).await?;
                match opening {
                    Opening::Owner => postgres.cache_shared(url).await?,
                    Opening::Tool => postgres,
                }
            }
            Some(_) => {
                return Err(ServerError::Config(
                    "--store takes a postgres://user@host/database URL".into(),
                ))
            }
        });
        Ok(DataDir {
            path: path.to_owned(),
            node_id: node_id(path)?,
            store,
            root: root.provider,
            root_description: root.description,
            _owner: owner,
        })
    }

    /// The audit trail's keys. At a data directory's first start the signing key is made
    /// and its public half written into the directory (`audit::anchor`); later, the store's
    /// key must be the one written there, or nothing is signed.
    pub async fn audit_anchor(&self) -> Result<AuditAnchor, ServerError> {
        let file = self.path.join(crate::audit::anchor::PUBLIC_KEY_FILE);
        let public = if file.exists() {
            crate::audit::anchor::read_public_key(&file)?
        } else {
            let (_, public) =
                crate::audit::signing_key(self.store.as_ref(), self.root.as_ref()).await?;
            crate::audit::anchor::keep_public_key(&self.path, &public)?;
            public
        };
        let keys =
            crate::audit::AuditKeys::load(self.store.as_ref(), self.root.as_ref(), &public).await?;
        Ok(AuditAnchor {
            file,
            fingerprint: crate::audit::anchor::fingerprint(&public),
            keys: Arc::new(keys),
        })
    }

    /// Makes the admin user and its access key on first start; afterwards reads the key back
    /// from its file (None if the operator removed the file).
    pub async fn admin_credentials(
        &self,
        keys: &Arc<crate::audit::AuditKeys>,
        digest_dir: Option<PathBuf>,
    ) -> Result<Option<AdminCredentials>, ServerError> {
        let file = self.path.join(CREDENTIALS_FILE);
        let account = identities::parse_account(DEFAULT_ACCOUNT)?;
        // Users from the config file may exist already; only the admin user marks a data
        // directory that has been started before.
        let admin_arn = identities::user_arn(&account, "admin");
        if self.store.principal(&admin_arn).await?.is_some() {
            return read_credentials(&file);
        }
        let changes = identities::IdentityChanges::new(
            crate::audit::event::ChangeSource::FirstStart,
            &self.node_id,
            keys.clone(),
        );
        let store = self.store.as_ref();
        let admin = identities::ensure_user(store, &changes, &account, "admin").await?;
        identities::attach_policy(
            store,
            &changes,
            &admin,
            "AdministratorAccess",
            ADMINISTRATOR_ACCESS,
        )
        .await?;
        let key = identities::issue_access_key(store, &changes, self.root.as_ref(), &admin).await?;
        crate::audit::chain_now(store, keys, digest_dir, changes.committed()).await?;
        let credentials = AdminCredentials {
            key,
            file,
            made: true,
        };
        write_credentials(&credentials)?;
        Ok(Some(credentials))
    }
}

fn write_credentials(c: &AdminCredentials) -> Result<(), ServerError> {
    let io = |e: std::io::Error| ServerError::Io(format!("writing {}: {e}", c.file.display()));
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&c.file)
        .map_err(io)?;
    f.write_all(c.key.export_lines().as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)
}

/// The admin's key pair from its file; None if the operator removed the file. A file others
/// may read is refused.
fn read_credentials(file: &Path) -> Result<Option<AdminCredentials>, ServerError> {
    Ok(IssuedKey::read_file(file)?.map(|key| AdminCredentials {
        key,
        file: file.to_owned(),
        made: false,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn first_start_makes_one_admin_key_and_later_starts_read_it() {
        let dir = tempfile::tempdir().unwrap();
        let data = DataDir::open(dir.path(), None).await.unwrap();
        let keys = data.audit_anchor().await.unwrap().keys;
        let first = data.admin_credentials(&keys, None).await.unwrap().unwrap();
        let (ak, sk) = (&first.key.access_key_id, &first.key.secret_access_key);
        assert!(ak.starts_with("AKIA") && ak.len() == 20);
        assert_eq!(sk.len(), 40);
        let mode = fs::metadata(&first.file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert!(first.made);
        let again = data.admin_credentials(&keys, None).await.unwrap().unwrap();
        assert!(!again.made, "only the start that makes the secret shows it");
        assert_eq!(&again.key.access_key_id, ak);
        assert_eq!(&again.key.secret_access_key, sk);
        assert_eq!(data.store.access_key_count().await.unwrap(), 1);
        assert!(!format!("{first:?}").contains(sk.as_str()));
    }
}
