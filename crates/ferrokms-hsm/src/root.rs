//! The root key inside an HSM: a non-extractable AES-256 key found by label, which wraps and
//! unwraps key material inside the token with AES-GCM and the same binding (as AAD) as the
//! file provider.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use aws_lc_rs::digest;
use ferrokms_core::material::{RootKeyProvider, WRAP_FORMAT_PKCS11};
use ferrokms_core::{random, KmsError};
use zeroize::Zeroizing;

use crate::token::{HsmError, Token, TokenKey};

const IV_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// Wrapped form: format byte ‖ 96-bit random IV ‖ ciphertext ‖ tag. One IV per wrap, drawn
/// at random: a root key wraps one secret per key version or credential, far below the 2^32
/// wraps a random 96-bit IV allows.
pub struct HsmRootKey {
    token: Arc<Token>,
    key: TokenKey,
    unwrapped: Unwrapped,
}

/// Most unwrapped secrets kept; when full, all go (they come back on their next use).
const CACHED_SECRETS: usize = 4096;

/// Secrets already unwrapped, by a digest of the binding and wrapped bytes they came from:
/// those always open to the same secret, so an entry is never stale. Without it every
/// strict-mode request would go to the HSM, to open its caller's access-key secret. Entries
/// are wiped when dropped.
#[derive(Default)]
struct Unwrapped(Mutex<HashMap<[u8; 32], Zeroizing<Vec<u8>>>>);

impl Unwrapped {
    fn digest(binding: &[u8], wrapped: &[u8]) -> [u8; 32] {
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(&(binding.len() as u64).to_be_bytes());
        ctx.update(binding);
        ctx.update(wrapped);
        let mut out = [0u8; 32];
        out.copy_from_slice(ctx.finish().as_ref());
        out
    }

    fn get(&self, digest: &[u8; 32]) -> Option<Zeroizing<Vec<u8>>> {
        let entries = self.0.lock().ok()?;
        entries.get(digest).cloned()
    }

    fn insert(&self, digest: [u8; 32], secret: &Zeroizing<Vec<u8>>) {
        if let Ok(mut entries) = self.0.lock() {
            if entries.len() >= CACHED_SECRETS {
                entries.clear();
            }
            entries.insert(digest, secret.clone());
        }
    }
}

impl fmt::Debug for HsmRootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HsmRootKey({:?})", self.token)
    }
}

impl HsmRootKey {
    fn new(token: Arc<Token>, key: TokenKey) -> Self {
        HsmRootKey {
            token,
            key,
            unwrapped: Unwrapped::default(),
        }
    }

    /// The root key labelled `key_label` in `token`.
    pub fn open(token: Arc<Token>, key_label: &str) -> Result<Self, HsmError> {
        let key = token.find_key(key_label)?;
        Ok(Self::new(token, key))
    }

    /// Makes the root key labelled `key_label` in `token`, or opens the one there; the bool
    /// says whether it was made now.
    pub fn open_or_create(token: Arc<Token>, key_label: &str) -> Result<(Self, bool), HsmError> {
        match token.find_key(key_label) {
            Ok(key) => Ok((Self::new(token, key), false)),
            Err(HsmError::KeyNotFound(_)) => {
                let key = token.generate_key(key_label)?;
                Ok((Self::new(token, key), true))
            }
            Err(e) => Err(e),
        }
    }
}

fn internal(e: HsmError) -> KmsError {
    tracing::error!(error = %e, "the HSM holding the root key failed");
    KmsError::internal()
}

impl RootKeyProvider for HsmRootKey {
    fn wrap_format(&self) -> u8 {
        WRAP_FORMAT_PKCS11
    }

    fn wrap(&self, binding: &[u8], secret: &[u8]) -> Result<Vec<u8>, KmsError> {
        let iv: [u8; IV_BYTES] = random::array()?;
        let sealed = self
            .token
            .seal(self.key, &iv, binding, secret)
            .map_err(internal)?;
        let mut out = Vec::with_capacity(1 + IV_BYTES + sealed.len());
        out.push(WRAP_FORMAT_PKCS11);
        out.extend_from_slice(&iv);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn unwrap(&self, binding: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let (&format, rest) = wrapped.split_first().ok_or_else(KmsError::internal)?;
        if format != WRAP_FORMAT_PKCS11 || rest.len() < IV_BYTES + TAG_BYTES {
            return Err(KmsError::internal());
        }
        let digest = Unwrapped::digest(binding, wrapped);
        if let Some(secret) = self.unwrapped.get(&digest) {
            return Ok(secret);
        }
        let (iv, sealed) = rest.split_at(IV_BYTES);
        let iv: [u8; IV_BYTES] = iv.try_into().map_err(|_| KmsError::internal())?;
        match self.token.open_sealed(self.key, &iv, binding, sealed) {
            Ok(plain) => {
                self.unwrapped.insert(digest, &plain);
                Ok(plain)
            }
            // A blob that does not open is not the HSM failing.
            Err(HsmError::Unauthentic) => Err(KmsError::internal()),
            Err(e) => Err(internal(e)),
        }
    }
}
