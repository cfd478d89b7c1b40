//! Key material: plaintext only in memory (wiped on drop, never printed), wrapped at rest
//! under a root key that a [`RootKeyProvider`] holds.

use std::fmt;

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::ids::{lower_hex, KeyArn};
use crate::{random, KmsError};

/// Bytes of symmetric (SYMMETRIC_DEFAULT) key material.
pub const SYMMETRIC_MATERIAL_BYTES: usize = 32;

/// Plaintext key material. Wiped when dropped; `Debug` shows only its length.
pub struct KeyMaterial(Zeroizing<Vec<u8>>);

impl KeyMaterial {
    pub fn generate_symmetric() -> Result<Self, KmsError> {
        Ok(KeyMaterial(random::secret_bytes(SYMMETRIC_MATERIAL_BYTES)?))
    }

    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Self {
        KeyMaterial(bytes)
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyMaterial(<{} bytes redacted>)", self.0.len())
    }
}

/// The 64-hex-digit id of one version of a key's material (AWS's `KeyMaterialId`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct MaterialId([u8; 32]);

impl MaterialId {
    pub fn generate() -> Result<Self, KmsError> {
        Ok(MaterialId(random::array()?))
    }
    pub fn from_bytes(b: [u8; 32]) -> Self {
        MaterialId(b)
    }
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
    pub fn parse(s: &str) -> Option<Self> {
        if s.len() != 64 {
            return None;
        }
        // Lowercase hex digits only: from_str_radix alone would take a sign ("+f").
        let digit = |b: u8| match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        };
        let mut out = [0u8; 32];
        for (i, pair) in s.as_bytes().chunks(2).enumerate() {
            out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Some(MaterialId(out))
    }
}
impl fmt::Display for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&lower_hex(&self.0))
    }
}
impl fmt::Debug for MaterialId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MaterialId({self})")
    }
}
impl TryFrom<String> for MaterialId {
    type Error = String;
    fn try_from(s: String) -> Result<Self, String> {
        MaterialId::parse(&s).ok_or_else(|| "invalid key material id".to_owned())
    }
}
impl From<MaterialId> for String {
    fn from(m: MaterialId) -> String {
        m.to_string()
    }
}

/// Key material as stored: sealed under the root key. Opaque; `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedMaterial(Vec<u8>);

impl WrappedMaterial {
    pub fn from_stored(bytes: Vec<u8>) -> Self {
        WrappedMaterial(bytes)
    }
    pub fn as_stored(&self) -> &[u8] {
        &self.0
    }
}
impl fmt::Debug for WrappedMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WrappedMaterial(<{} bytes>)", self.0.len())
    }
}

/// Binds a wrapped secret to what it belongs to, so that a stored blob cannot be moved to
/// another key, material version or credential.
pub fn material_binding(arn: &KeyArn, material: &MaterialId) -> Vec<u8> {
    binding(
        b"ferrokms/material/v1",
        &[arn.to_string().as_bytes(), material.as_bytes()],
    )
}

/// Binding for a stored access-key secret.
pub fn credential_binding(access_key_id: &str) -> Vec<u8> {
    binding(b"ferrokms/credential/v1", &[access_key_id.as_bytes()])
}

/// Binding for a custom key store's password (its token PIN).
pub fn key_store_password_binding(region: &str, key_store_id: &str) -> Vec<u8> {
    binding(
        b"ferrokms/key-store-password/v1",
        &[region.as_bytes(), key_store_id.as_bytes()],
    )
}

fn binding(label: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut out = label.to_vec();
    for p in parts {
        out.extend_from_slice(&(p.len() as u32).to_be_bytes());
        out.extend_from_slice(p);
    }
    out
}

/// The first byte of a wrapped secret names the provider that wrapped it, so that a data
/// directory moving from one root key to another reads both while it moves.
pub const WRAP_FORMAT_FILE: u8 = 1;
/// AES-256-GCM inside a PKCS#11 token (an HSM).
pub const WRAP_FORMAT_PKCS11: u8 = 2;

/// The provider format a wrapped secret names.
pub fn wrap_format(wrapped: &[u8]) -> Option<u8> {
    wrapped.first().copied()
}

/// Holds the root key and wraps or unwraps secrets under it. Implementations keep the root
/// key to themselves: a key in a file held in memory, or a key inside an HSM.
pub trait RootKeyProvider: Send + Sync {
    /// The first byte of everything this provider wraps (`WRAP_FORMAT_*`).
    fn wrap_format(&self) -> u8;
    fn wrap(&self, binding: &[u8], secret: &[u8]) -> Result<Vec<u8>, KmsError>;
    fn unwrap(&self, binding: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError>;

    fn wrap_material(
        &self,
        arn: &KeyArn,
        id: &MaterialId,
        material: &KeyMaterial,
    ) -> Result<WrappedMaterial, KmsError> {
        self.wrap(&material_binding(arn, id), material.expose())
            .map(WrappedMaterial)
    }

    fn unwrap_material(
        &self,
        arn: &KeyArn,
        id: &MaterialId,
        wrapped: &WrappedMaterial,
    ) -> Result<KeyMaterial, KmsError> {
        self.unwrap(&material_binding(arn, id), &wrapped.0)
            .map(KeyMaterial)
    }
}

/// An AES-256-GCM root key held in memory. Wrapped form: version ‖ 96-bit random IV ‖
/// ciphertext ‖ tag, with the binding as AAD. A root key wraps one secret per key version or
/// credential, far below the 2^32 messages a random 96-bit IV allows.
pub struct AesRootKey(RandomizedNonceKey);

impl AesRootKey {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KmsError> {
        let key = RandomizedNonceKey::new(&AES_256_GCM, bytes).map_err(|_| KmsError::internal())?;
        Ok(AesRootKey(key))
    }
}

impl fmt::Debug for AesRootKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("AesRootKey(<redacted>)")
    }
}

impl RootKeyProvider for AesRootKey {
    fn wrap_format(&self) -> u8 {
        WRAP_FORMAT_FILE
    }

    fn wrap(&self, binding: &[u8], secret: &[u8]) -> Result<Vec<u8>, KmsError> {
        // The IV is drawn inside aws-lc (its FIPS module approves GCM encryption only so).
        let mut body = secret.to_vec();
        let iv = self
            .0
            .seal_in_place_append_tag(Aad::from(binding), &mut body)
            .map_err(|_| KmsError::internal())?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + body.len());
        out.push(WRAP_FORMAT_FILE);
        out.extend_from_slice(iv.as_ref());
        out.extend_from_slice(&body);
        Ok(out)
    }

    fn unwrap(&self, binding: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        let (&version, rest) = wrapped.split_first().ok_or_else(KmsError::internal)?;
        if version != WRAP_FORMAT_FILE || rest.len() < NONCE_LEN + 16 {
            return Err(KmsError::internal());
        }
        let (iv, sealed) = rest.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(iv).map_err(|_| KmsError::internal())?;
        let mut buf = Zeroizing::new(sealed.to_vec());
        let len = self
            .0
            .open_in_place(nonce, Aad::from(binding), &mut buf)
            .map_err(|_| KmsError::internal())?
            .len();
        buf.truncate(len);
        Ok(buf)
    }
}

/// Two root keys while a data directory moves from one to the other: new secrets are
/// wrapped by the primary; a stored secret is opened by whichever provider its format names.
pub struct LayeredRootKey {
    primary: std::sync::Arc<dyn RootKeyProvider>,
    former: std::sync::Arc<dyn RootKeyProvider>,
}

impl LayeredRootKey {
    pub fn new(
        primary: std::sync::Arc<dyn RootKeyProvider>,
        former: std::sync::Arc<dyn RootKeyProvider>,
    ) -> Self {
        LayeredRootKey { primary, former }
    }
}

impl RootKeyProvider for LayeredRootKey {
    fn wrap_format(&self) -> u8 {
        self.primary.wrap_format()
    }

    fn wrap(&self, binding: &[u8], secret: &[u8]) -> Result<Vec<u8>, KmsError> {
        self.primary.wrap(binding, secret)
    }

    fn unwrap(&self, binding: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
        if wrap_format(wrapped) == Some(self.former.wrap_format()) {
            self.former.unwrap(binding, wrapped)
        } else {
            self.primary.unwrap(binding, wrapped)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, KeyId, Region};

    /// A stand-in for a second provider format: the file format under another key, with
    /// its format byte changed.
    struct OtherFormat(AesRootKey);
    impl RootKeyProvider for OtherFormat {
        fn wrap_format(&self) -> u8 {
            9
        }
        fn wrap(&self, binding: &[u8], secret: &[u8]) -> Result<Vec<u8>, KmsError> {
            let mut out = self.0.wrap(binding, secret)?;
            out[0] = 9;
            Ok(out)
        }
        fn unwrap(&self, binding: &[u8], wrapped: &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError> {
            let mut copy = wrapped.to_vec();
            if copy.first() != Some(&9) {
                return Err(KmsError::internal());
            }
            copy[0] = WRAP_FORMAT_FILE;
            self.0.unwrap(binding, &copy)
        }
    }

    #[test]
    fn layered_root_wraps_with_the_primary_and_opens_both_formats() {
        use std::sync::Arc;
        let file = Arc::new(AesRootKey::from_bytes(&[1u8; 32]).unwrap());
        let other = Arc::new(OtherFormat(AesRootKey::from_bytes(&[2u8; 32]).unwrap()));
        let old = file.wrap(b"b", b"old secret").unwrap();
        let layered = LayeredRootKey::new(other.clone(), file.clone());
        let new = layered.wrap(b"b", b"new secret").unwrap();
        assert_eq!(wrap_format(&new), Some(9));
        assert_eq!(layered.wrap_format(), 9);
        assert_eq!(&layered.unwrap(b"b", &old).unwrap()[..], b"old secret");
        assert_eq!(&layered.unwrap(b"b", &new).unwrap()[..], b"new secret");
        assert!(layered.unwrap(b"other binding", &old).is_err());
        assert!(file.unwrap(b"b", &new).is_err());
    }

    fn arn() -> KeyArn {
        KeyArn {
            region: Region::parse("us-east-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
            key_id: KeyId::generate(false).unwrap(),
        }
    }

    #[test]
    fn wrapped_material_is_bound_to_its_key_and_version() {
        let root = AesRootKey::from_bytes(&[7u8; 32]).unwrap();
        let material = KeyMaterial::generate_symmetric().unwrap();
        let (a, id) = (arn(), MaterialId::generate().unwrap());
        let wrapped = root.wrap_material(&a, &id, &material).unwrap();
        assert!(!wrapped
            .as_stored()
            .windows(material.expose().len())
            .any(|w| w == material.expose()));
        let back = root.unwrap_material(&a, &id, &wrapped).unwrap();
        assert_eq!(back.expose(), material.expose());
        assert!(root.unwrap_material(&arn(), &id, &wrapped).is_err());
        assert!(root
            .unwrap_material(&a, &MaterialId::generate().unwrap(), &wrapped)
            .is_err());
        let other_root = AesRootKey::from_bytes(&[8u8; 32]).unwrap();
        assert!(other_root.unwrap_material(&a, &id, &wrapped).is_err());
    }

    #[test]
    fn debug_output_never_shows_material() {
        let material = KeyMaterial::from_bytes(Zeroizing::new(vec![0xAB; 32]));
        let shown = format!("{material:?}");
        assert!(!shown.contains("171") && !shown.to_lowercase().contains("ab, "));
        assert!(shown.contains("redacted"));
    }

    #[test]
    fn material_ids_round_trip() {
        let id = MaterialId::generate().unwrap();
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(MaterialId::parse(&text), Some(id));
        assert_eq!(MaterialId::parse(&text.to_uppercase()), None);
        // A sign is not a hex digit, though from_str_radix takes one.
        let signed = format!("+f{}", &text[2..]);
        assert_eq!(MaterialId::parse(&signed), None);
        assert_eq!(MaterialId::parse(&"é".repeat(32)), None);
    }
}
