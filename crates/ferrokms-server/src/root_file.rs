//! The first root-key provider: 32 random bytes in a file readable by its owner only.

use std::fs::{self, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use ferrokms_core::material::AesRootKey;
use ferrokms_core::random;
use zeroize::Zeroizing;

use crate::ServerError;

const ROOT_KEY_BYTES: usize = 32;

/// A secret kept in a file must be its owner's alone: a group- or world-readable one is
/// refused rather than used, since whoever could read it may have.
pub fn refuse_if_shared(file: &fs::File, path: &Path, what: &str) -> Result<(), ServerError> {
    let mode = file
        .metadata()
        .map_err(|e| ServerError::Io(format!("reading {}: {e}", path.display())))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(ServerError::Config(format!(
            "{what} {} is readable by others (mode {:o}); chmod 600 it",
            path.display(),
            mode & 0o777
        )));
    }
    Ok(())
}

/// Loads the root key at `path`, creating it (mode 0600) if there is none.
pub fn load_or_create(path: &Path) -> Result<AesRootKey, ServerError> {
    let io =
        |what: &str, e: std::io::Error| ServerError::Io(format!("{what} {}: {e}", path.display()));
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(mut file) => {
            let bytes = random::secret_bytes(ROOT_KEY_BYTES).map_err(|_| ServerError::Random)?;
            file.write_all(&bytes).map_err(|e| io("writing", e))?;
            file.sync_all().map_err(|e| io("syncing", e))?;
            if let Some(dir) = path.parent() {
                fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .map_err(|e| io("syncing the folder of", e))?;
            }
            AesRootKey::from_bytes(&bytes).map_err(|_| ServerError::Random)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => load(path),
        Err(e) => Err(io("creating", e)),
    }
}

/// Loads the root key at `path`, which must exist.
pub fn load(path: &Path) -> Result<AesRootKey, ServerError> {
    let io =
        |what: &str, e: std::io::Error| ServerError::Io(format!("{what} {}: {e}", path.display()));
    let mut file = fs::File::open(path).map_err(|e| io("opening", e))?;
    refuse_if_shared(&file, path, "root key")?;
    let mut bytes = Zeroizing::new(Vec::with_capacity(ROOT_KEY_BYTES));
    file.read_to_end(&mut bytes).map_err(|e| io("reading", e))?;
    if bytes.len() != ROOT_KEY_BYTES {
        return Err(ServerError::Config(format!(
            "root key {} is not {ROOT_KEY_BYTES} bytes long",
            path.display()
        )));
    }
    AesRootKey::from_bytes(&bytes).map_err(|_| ServerError::Random)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferrokms_core::material::RootKeyProvider;

    #[test]
    fn created_once_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("root-key");
        let first = load_or_create(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let wrapped = first.wrap(b"b", b"secret").unwrap();
        let second = load_or_create(&path).unwrap();
        assert_eq!(&second.unwrap(b"b", &wrapped).unwrap()[..], b"secret");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(load_or_create(&path), Err(ServerError::Config(_))));
    }
}
