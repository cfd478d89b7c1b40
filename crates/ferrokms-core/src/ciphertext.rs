//! The symmetric ciphertext blob: a versioned, self-describing header, then AES-256-GCM under
//! a key derived for this one ciphertext (NIST SP 800-108 counter mode, HMAC-SHA256).
//!
//! ```text
//! header = version(1) ‖ key id(17) ‖ material id(32) ‖ kdf nonce(32)
//! blob   = header ‖ iv(12) ‖ ciphertext ‖ tag(16)
//! AAD    = header ‖ canonical(encryption context)
//! ```
//! The header is authenticated, so a blob cannot be moved to another key or material version.
//!
//! A key whose material lives in an HSM token (a custom key store's) cannot run the KDF, so
//! the token seals with AES-256-GCM under the key itself: the same layout with version 2,
//! which the AAD carries, so that neither kind of blob passes for the other.

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::hmac;
use zeroize::Zeroizing;

use crate::context::EncryptionContext;
use crate::ids::{KeyId, KEY_ID_BYTES};
use crate::material::{KeyMaterial, MaterialId};
use crate::{random, KmsError};

pub const BLOB_VERSION: u8 = 1;
/// Sealed inside an HSM token under the key itself (see the module's documentation).
pub const BLOB_VERSION_TOKEN: u8 = 2;
const KDF_NONCE_BYTES: usize = 32;
const TAG_BYTES: usize = 16;
pub const HEADER_BYTES: usize = 1 + KEY_ID_BYTES + 32 + KDF_NONCE_BYTES;
/// What a blob adds to the plaintext's length.
pub const OVERHEAD_BYTES: usize = HEADER_BYTES + NONCE_LEN + TAG_BYTES;
const KDF_LABEL: &[u8] = b"ferrokms/encrypt/v1";

/// The cleartext part of a blob: which key and material version sealed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobHeader {
    version: u8,
    pub key_id: KeyId,
    pub material_id: MaterialId,
    kdf_nonce: [u8; KDF_NONCE_BYTES],
}

impl BlobHeader {
    /// The header of a new blob, with a fresh KDF nonce.
    fn fresh(version: u8, key_id: KeyId, material_id: MaterialId) -> Result<Self, KmsError> {
        Ok(BlobHeader {
            version,
            key_id,
            material_id,
            kdf_nonce: random::array()?,
        })
    }

    fn to_bytes(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0u8; HEADER_BYTES];
        out[0] = self.version;
        out[1..1 + KEY_ID_BYTES].copy_from_slice(&self.key_id.to_bytes());
        out[1 + KEY_ID_BYTES..1 + KEY_ID_BYTES + 32].copy_from_slice(self.material_id.as_bytes());
        out[1 + KEY_ID_BYTES + 32..].copy_from_slice(&self.kdf_nonce);
        out
    }
}

/// Which material version sealed `blob`, of any kind this service makes: what clients that
/// track rotation (the Kubernetes plugin) read from a blob without opening it.
pub fn material_of(blob: &[u8]) -> Option<MaterialId> {
    if ExternalBlob::is_external(blob) {
        return ExternalBlob::parse(blob).ok().map(|b| b.material_id);
    }
    parse_header(blob).ok().map(|h| h.material_id)
}

/// Reads the header of a blob. Any malformation is InvalidCiphertext, with no detail.
pub fn parse_header(blob: &[u8]) -> Result<BlobHeader, KmsError> {
    if blob.len() < OVERHEAD_BYTES || !matches!(blob[0], BLOB_VERSION | BLOB_VERSION_TOKEN) {
        return Err(KmsError::invalid_ciphertext());
    }
    let key_id =
        KeyId::from_bytes(&blob[1..1 + KEY_ID_BYTES]).ok_or_else(KmsError::invalid_ciphertext)?;
    let mut material = [0u8; 32];
    material.copy_from_slice(&blob[1 + KEY_ID_BYTES..1 + KEY_ID_BYTES + 32]);
    let mut kdf_nonce = [0u8; KDF_NONCE_BYTES];
    kdf_nonce.copy_from_slice(&blob[1 + KEY_ID_BYTES + 32..HEADER_BYTES]);
    Ok(BlobHeader {
        version: blob[0],
        key_id,
        material_id: MaterialId::from_bytes(material),
        kdf_nonce,
    })
}

/// SP 800-108 counter-mode KDF with HMAC-SHA256, one 256-bit block:
/// K = HMAC(material, [1]₃₂ ‖ label ‖ 0x00 ‖ context ‖ [256]₃₂).
fn derive_message_key(
    material: &KeyMaterial,
    header: &BlobHeader,
) -> Result<RandomizedNonceKey, KmsError> {
    let key = hmac::Key::new(hmac::HMAC_SHA256, material.expose());
    let mut ctx = hmac::Context::with_key(&key);
    ctx.update(&1u32.to_be_bytes());
    ctx.update(KDF_LABEL);
    ctx.update(&[0]);
    ctx.update(&header.key_id.to_bytes());
    ctx.update(header.material_id.as_bytes());
    ctx.update(&header.kdf_nonce);
    ctx.update(&256u32.to_be_bytes());
    let derived = Zeroizing::new(ctx.sign().as_ref().to_vec());
    RandomizedNonceKey::new(&AES_256_GCM, &derived).map_err(|_| KmsError::internal())
}

fn aad(header: &[u8; HEADER_BYTES], context: &EncryptionContext) -> Vec<u8> {
    let mut aad = header.to_vec();
    aad.extend_from_slice(&context.canonical_bytes());
    aad
}

/// AES-256-GCM of a blob in software: (AAD, plaintext) to (IV, ciphertext ‖ tag), the IV
/// drawn inside aws-lc, as its FIPS module requires of an approved GCM encryption.
fn gcm_seal(
    key: &RandomizedNonceKey,
    aad: &[u8],
    plaintext: &[u8],
) -> Result<([u8; NONCE_LEN], Vec<u8>), KmsError> {
    let mut body = plaintext.to_vec();
    let nonce = key
        .seal_in_place_append_tag(Aad::from(aad), &mut body)
        .map_err(|_| KmsError::internal())?;
    Ok((*nonce.as_ref(), body))
}

fn gcm_open(
    key: &RandomizedNonceKey,
    iv: &[u8; NONCE_LEN],
    aad: &[u8],
    sealed: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let mut buf = Zeroizing::new(sealed.to_vec());
    let len = key
        .open_in_place(Nonce::assume_unique_for_key(*iv), Aad::from(aad), &mut buf)
        .map_err(|_| KmsError::invalid_ciphertext())?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// A new blob of `version`: a fresh header and IV, and `aead` sealing under them.
fn seal_blob(
    version: u8,
    key_id: KeyId,
    material_id: MaterialId,
    context: &EncryptionContext,
    plaintext: &[u8],
    aead: impl FnOnce(&BlobHeader, &[u8]) -> Result<([u8; NONCE_LEN], Vec<u8>), KmsError>,
) -> Result<Vec<u8>, KmsError> {
    let header = BlobHeader::fresh(version, key_id, material_id)?;
    let header_bytes = header.to_bytes();
    let (iv, sealed) = aead(&header, &aad(&header_bytes, context))?;
    if sealed.len() != plaintext.len() + TAG_BYTES {
        return Err(KmsError::internal());
    }
    let mut blob = Vec::with_capacity(OVERHEAD_BYTES + plaintext.len());
    blob.extend_from_slice(&header_bytes);
    blob.extend_from_slice(&iv);
    blob.extend_from_slice(&sealed);
    Ok(blob)
}

/// Opens a blob of `version` whose header was read with [`parse_header`]; any other blob,
/// or one that does not authenticate, is InvalidCiphertext.
fn open_blob(
    version: u8,
    header: &BlobHeader,
    blob: &[u8],
    context: &EncryptionContext,
    aead: impl FnOnce(&[u8; NONCE_LEN], &[u8], &[u8]) -> Result<Zeroizing<Vec<u8>>, KmsError>,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let header_bytes = header.to_bytes();
    if blob.len() < OVERHEAD_BYTES
        || header.version != version
        || blob[..HEADER_BYTES] != header_bytes
    {
        return Err(KmsError::invalid_ciphertext());
    }
    let mut iv = [0u8; NONCE_LEN];
    iv.copy_from_slice(&blob[HEADER_BYTES..HEADER_BYTES + NONCE_LEN]);
    aead(
        &iv,
        &aad(&header_bytes, context),
        &blob[HEADER_BYTES + NONCE_LEN..],
    )
}

/// Encrypts `plaintext` under one version of a key's material.
pub fn seal(
    material: &KeyMaterial,
    key_id: KeyId,
    material_id: MaterialId,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>, KmsError> {
    seal_blob(
        BLOB_VERSION,
        key_id,
        material_id,
        context,
        plaintext,
        |header, aad| gcm_seal(&derive_message_key(material, header)?, aad, plaintext),
    )
}

/// Decrypts a blob whose header was read with [`parse_header`], with the material it names.
pub fn open(
    material: &KeyMaterial,
    header: &BlobHeader,
    blob: &[u8],
    context: &EncryptionContext,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    open_blob(BLOB_VERSION, header, blob, context, |iv, aad, sealed| {
        gcm_open(&derive_message_key(material, header)?, iv, aad, sealed)
    })
}

/// AES-256-GCM that a token performs under a key it holds: (IV, AAD, plaintext) to
/// ciphertext ‖ tag, and back.
pub trait TokenAead {
    fn seal(&self, iv: &[u8; NONCE_LEN], aad: &[u8], plaintext: &[u8])
        -> Result<Vec<u8>, KmsError>;
    fn open(
        &self,
        iv: &[u8; NONCE_LEN],
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, KmsError>;
}

/// Encrypts `plaintext` inside a token under the key that `key_id`'s material id names there.
/// The IV is random for every call.
pub fn seal_in_token(
    token: &dyn TokenAead,
    key_id: KeyId,
    material_id: MaterialId,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>, KmsError> {
    seal_blob(
        BLOB_VERSION_TOKEN,
        key_id,
        material_id,
        context,
        plaintext,
        |_, aad| {
            // A token is its own cryptographic boundary: it is given a random IV.
            let iv: [u8; NONCE_LEN] = random::array()?;
            Ok((iv, token.seal(&iv, aad, plaintext)?))
        },
    )
}

/// Decrypts a blob that [`seal_in_token`] made; anything else is InvalidCiphertext.
pub fn open_in_token(
    token: &dyn TokenAead,
    header: &BlobHeader,
    blob: &[u8],
    context: &EncryptionContext,
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    open_blob(
        BLOB_VERSION_TOKEN,
        header,
        blob,
        context,
        |iv, aad, sealed| token.open(iv, aad, sealed),
    )
}

/// A ciphertext of a key in an external key store: the ordinary blob of the key's own
/// material (the inner layer), encrypted again by the external key manager through its XKS
/// proxy (the outer layer), so that neither side alone can decrypt.
///
/// ```text
/// header = version 3 ‖ key id(17) ‖ material id(32)      (the AAD the proxy is given)
/// blob   = header ‖ iv(12) ‖ tag(16) ‖ metadata length(1) ‖ metadata(≤ 20) ‖ outer ciphertext
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalBlob {
    pub key_id: KeyId,
    pub material_id: MaterialId,
    pub sealed: ExternalSeal,
}

/// What an external key manager's AES-GCM made of the inner blob, in the parts the XKS
/// specification names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExternalSeal {
    pub iv: [u8; NONCE_LEN],
    pub tag: [u8; TAG_BYTES],
    /// The proxy's `ciphertextMetadata`, at most 20 bytes.
    pub metadata: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

pub const BLOB_VERSION_EXTERNAL: u8 = 3;
/// The most `ciphertextMetadata` a proxy may return (the XKS specification's limit).
pub const MAX_EXTERNAL_METADATA: usize = 20;
const EXTERNAL_HEADER_BYTES: usize = 1 + KEY_ID_BYTES + 32;

impl ExternalBlob {
    /// What binds the outer layer to its key and material: the proxy's AAD.
    pub fn header(key_id: KeyId, material_id: MaterialId) -> Vec<u8> {
        let mut out = Vec::with_capacity(EXTERNAL_HEADER_BYTES);
        out.push(BLOB_VERSION_EXTERNAL);
        out.extend_from_slice(&key_id.to_bytes());
        out.extend_from_slice(material_id.as_bytes());
        out
    }

    pub fn is_external(blob: &[u8]) -> bool {
        blob.first() == Some(&BLOB_VERSION_EXTERNAL)
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, KmsError> {
        let sealed = &self.sealed;
        let metadata_len = u8::try_from(sealed.metadata.len()).map_err(|_| KmsError::internal())?;
        if sealed.metadata.len() > MAX_EXTERNAL_METADATA {
            return Err(KmsError::internal());
        }
        let mut out = Self::header(self.key_id, self.material_id);
        out.extend_from_slice(&sealed.iv);
        out.extend_from_slice(&sealed.tag);
        out.push(metadata_len);
        out.extend_from_slice(&sealed.metadata);
        out.extend_from_slice(&sealed.ciphertext);
        Ok(out)
    }

    /// Reads a blob; any malformation is InvalidCiphertext, with no detail.
    pub fn parse(blob: &[u8]) -> Result<Self, KmsError> {
        let invalid = KmsError::invalid_ciphertext;
        let fixed = EXTERNAL_HEADER_BYTES + NONCE_LEN + TAG_BYTES + 1;
        if blob.len() <= fixed || blob[0] != BLOB_VERSION_EXTERNAL {
            return Err(invalid());
        }
        let key_id = KeyId::from_bytes(&blob[1..1 + KEY_ID_BYTES]).ok_or_else(invalid)?;
        let mut material = [0u8; 32];
        material.copy_from_slice(&blob[1 + KEY_ID_BYTES..EXTERNAL_HEADER_BYTES]);
        let mut iv = [0u8; NONCE_LEN];
        iv.copy_from_slice(&blob[EXTERNAL_HEADER_BYTES..EXTERNAL_HEADER_BYTES + NONCE_LEN]);
        let mut tag = [0u8; TAG_BYTES];
        tag.copy_from_slice(&blob[EXTERNAL_HEADER_BYTES + NONCE_LEN..fixed - 1]);
        let metadata_len = usize::from(blob[fixed - 1]);
        if metadata_len > MAX_EXTERNAL_METADATA || blob.len() <= fixed + metadata_len {
            return Err(invalid());
        }
        Ok(ExternalBlob {
            key_id,
            material_id: MaterialId::from_bytes(material),
            sealed: ExternalSeal {
                iv,
                tag,
                metadata: blob[fixed..fixed + metadata_len].to_vec(),
                ciphertext: blob[fixed + metadata_len..].to_vec(),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn ctx(k: &str, v: &str) -> EncryptionContext {
        EncryptionContext::new(BTreeMap::from([(k.to_owned(), v.to_owned())]))
    }

    fn setup() -> (KeyMaterial, KeyId, MaterialId) {
        (
            KeyMaterial::generate_symmetric().unwrap(),
            KeyId::generate(false).unwrap(),
            MaterialId::generate().unwrap(),
        )
    }

    #[test]
    fn round_trip_and_header_names_key_and_version() {
        let (m, k, v) = setup();
        let blob = seal(&m, k, v, &ctx("a", "b"), b"secret").unwrap();
        assert_eq!(blob.len(), OVERHEAD_BYTES + 6);
        let h = parse_header(&blob).unwrap();
        assert_eq!((h.key_id, h.material_id), (k, v));
        assert_eq!(&open(&m, &h, &blob, &ctx("a", "b")).unwrap()[..], b"secret");
    }

    #[test]
    fn two_encryptions_differ() {
        let (m, k, v) = setup();
        let c = EncryptionContext::default();
        assert_ne!(
            seal(&m, k, v, &c, b"x").unwrap(),
            seal(&m, k, v, &c, b"x").unwrap()
        );
    }

    #[test]
    fn any_change_is_invalid_ciphertext() {
        let (m, k, v) = setup();
        let blob = seal(&m, k, v, &ctx("a", "b"), b"secret").unwrap();
        let h = parse_header(&blob).unwrap();
        assert_eq!(
            open(&m, &h, &blob, &ctx("a", "c")),
            Err(KmsError::invalid_ciphertext())
        );
        assert!(open(&m, &h, &blob, &EncryptionContext::default()).is_err());
        for i in 0..blob.len() {
            let mut bad = blob.clone();
            bad[i] ^= 0x01;
            let result = parse_header(&bad).and_then(|h2| open(&m, &h2, &bad, &ctx("a", "b")));
            assert!(result.is_err(), "flipping byte {i} went unnoticed");
        }
        let other = KeyMaterial::generate_symmetric().unwrap();
        assert!(open(&other, &h, &blob, &ctx("a", "b")).is_err());
        assert!(parse_header(&blob[..OVERHEAD_BYTES - 1]).is_err());
    }
}

#[cfg(test)]
mod token_tests {
    use super::*;
    use aws_lc_rs::aead::{LessSafeKey, UnboundKey};

    /// AES-256-GCM in memory, standing in for a token's key (which is given the IV).
    struct MemoryToken(LessSafeKey);
    impl TokenAead for MemoryToken {
        fn seal(
            &self,
            iv: &[u8; NONCE_LEN],
            aad: &[u8],
            plaintext: &[u8],
        ) -> Result<Vec<u8>, KmsError> {
            let mut body = plaintext.to_vec();
            self.0
                .seal_in_place_append_tag(
                    Nonce::assume_unique_for_key(*iv),
                    Aad::from(aad),
                    &mut body,
                )
                .map_err(|_| KmsError::internal())?;
            Ok(body)
        }
        fn open(
            &self,
            iv: &[u8; NONCE_LEN],
            aad: &[u8],
            sealed: &[u8],
        ) -> Result<Zeroizing<Vec<u8>>, KmsError> {
            let mut buf = Zeroizing::new(sealed.to_vec());
            let len = self
                .0
                .open_in_place(Nonce::assume_unique_for_key(*iv), Aad::from(aad), &mut buf)
                .map_err(|_| KmsError::invalid_ciphertext())?
                .len();
            buf.truncate(len);
            Ok(buf)
        }
    }

    #[test]
    fn token_blobs_are_bound_like_others_and_never_pass_for_kdf_blobs() {
        let bytes = [9u8; 32];
        let token = MemoryToken(LessSafeKey::new(
            UnboundKey::new(&AES_256_GCM, &bytes).unwrap(),
        ));
        let material = KeyMaterial::from_bytes(Zeroizing::new(bytes.to_vec()));
        let (key_id, material_id) = (
            KeyId::generate(false).unwrap(),
            MaterialId::generate().unwrap(),
        );
        let context = EncryptionContext::new([("k".to_owned(), "v".to_owned())].into());
        let blob = seal_in_token(&token, key_id, material_id, &context, b"in the token").unwrap();
        assert_eq!(blob.len(), OVERHEAD_BYTES + 12);
        let header = parse_header(&blob).unwrap();
        assert_eq!((header.key_id, header.material_id), (key_id, material_id));
        assert_eq!(
            &open_in_token(&token, &header, &blob, &context).unwrap()[..],
            b"in the token"
        );
        assert!(open_in_token(&token, &header, &blob, &EncryptionContext::default()).is_err());
        // The same key bytes through the KDF path: neither blob opens the other way.
        assert!(open(&material, &header, &blob, &context).is_err());
        let kdf_blob = seal(&material, key_id, material_id, &context, b"kdf").unwrap();
        let kdf_header = parse_header(&kdf_blob).unwrap();
        assert!(open_in_token(&token, &kdf_header, &kdf_blob, &context).is_err());
        let mut relabelled = blob.clone();
        relabelled[0] = BLOB_VERSION;
        let relabelled_header = parse_header(&relabelled).unwrap();
        assert!(open(&material, &relabelled_header, &relabelled, &context).is_err());
    }
}

#[cfg(test)]
mod external_tests {
    use super::*;

    #[test]
    fn external_blobs_round_trip_and_refuse_malformations() {
        let blob = ExternalBlob {
            key_id: KeyId::generate(false).unwrap(),
            material_id: MaterialId::generate().unwrap(),
            sealed: ExternalSeal {
                iv: [1; NONCE_LEN],
                tag: [2; TAG_BYTES],
                metadata: b"key_version=1".to_vec(),
                ciphertext: vec![3; 150],
            },
        };
        let bytes = blob.to_bytes().unwrap();
        assert!(ExternalBlob::is_external(&bytes));
        assert_eq!(ExternalBlob::parse(&bytes).unwrap(), blob);
        assert_eq!(
            &bytes[..EXTERNAL_HEADER_BYTES],
            &ExternalBlob::header(blob.key_id, blob.material_id)[..]
        );
        for cut in [
            0,
            10,
            EXTERNAL_HEADER_BYTES + NONCE_LEN + TAG_BYTES + 1 + 13,
        ] {
            assert!(ExternalBlob::parse(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut long_metadata = bytes.clone();
        long_metadata[EXTERNAL_HEADER_BYTES + NONCE_LEN + TAG_BYTES] = 21;
        assert!(ExternalBlob::parse(&long_metadata).is_err());
        let mut other_version = bytes;
        other_version[0] = BLOB_VERSION;
        assert!(ExternalBlob::parse(&other_version).is_err());
        let too_much = ExternalBlob {
            sealed: ExternalSeal {
                metadata: vec![0; 21],
                ..blob.sealed
            },
            ..blob
        };
        assert!(too_much.to_bytes().is_err());
    }
}
