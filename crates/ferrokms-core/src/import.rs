//! Imported key material (Origin EXTERNAL): the import token that carries a one-time RSA
//! wrapping key, and unwrapping material that a user wrapped outside KMS.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::key_wrap::{AesKek, KeyWrapPadded, AES_256};
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, RsaKeyPair};
use aws_lc_rs::{digest, hmac};
use zeroize::Zeroizing;

use crate::asymmetric::{self, rsa_decrypt, NewMaterial};
use crate::ids::{KeyArn, KeyId};
use crate::key::{EncryptionAlgorithm, KeySpec, Millis};
use crate::material::{KeyMaterial, MaterialId, RootKeyProvider, SYMMETRIC_MATERIAL_BYTES};
use crate::KmsError;

/// Import parameters are valid for 24 hours, as in AWS.
pub const IMPORT_TOKEN_LIFETIME_MS: Millis = 24 * 60 * 60 * 1000;

/// How imported material is wrapped (the model's AlgorithmSpec, less the ones AWS refuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrappingAlgorithm {
    RsaesOaepSha1,
    RsaesOaepSha256,
    RsaAesKeyWrapSha1,
    RsaAesKeyWrapSha256,
}

impl WrappingAlgorithm {
    pub const ALL: &'static [&'static str] = &[
        "RSAES_PKCS1_V1_5",
        "RSAES_OAEP_SHA_1",
        "RSAES_OAEP_SHA_256",
        "RSA_AES_KEY_WRAP_SHA_1",
        "RSA_AES_KEY_WRAP_SHA_256",
        "SM2PKE",
    ];

    /// The model's name, as `kms:WrappingAlgorithm` sees it.
    pub fn as_str(self) -> &'static str {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 => "RSAES_OAEP_SHA_1",
            WrappingAlgorithm::RsaesOaepSha256 => "RSAES_OAEP_SHA_256",
            WrappingAlgorithm::RsaAesKeyWrapSha1 => "RSA_AES_KEY_WRAP_SHA_1",
            WrappingAlgorithm::RsaAesKeyWrapSha256 => "RSA_AES_KEY_WRAP_SHA_256",
        }
    }

    /// Parses a model value; `Err` for the ones that exist but are not accepted.
    pub fn parse(s: &str) -> Option<Result<Self, KmsError>> {
        Some(match s {
            "RSAES_OAEP_SHA_1" => Ok(WrappingAlgorithm::RsaesOaepSha1),
            "RSAES_OAEP_SHA_256" => Ok(WrappingAlgorithm::RsaesOaepSha256),
            "RSA_AES_KEY_WRAP_SHA_1" => Ok(WrappingAlgorithm::RsaAesKeyWrapSha1),
            "RSA_AES_KEY_WRAP_SHA_256" => Ok(WrappingAlgorithm::RsaAesKeyWrapSha256),
            "RSAES_PKCS1_V1_5" | "SM2PKE" => Err(KmsError::wrapping_algorithm_unsupported(s)),
            _ => return None,
        })
    }

    fn code(self) -> u8 {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 => 1,
            WrappingAlgorithm::RsaesOaepSha256 => 2,
            WrappingAlgorithm::RsaAesKeyWrapSha1 => 3,
            WrappingAlgorithm::RsaAesKeyWrapSha256 => 4,
        }
    }

    fn from_code(c: u8) -> Option<Self> {
        [
            WrappingAlgorithm::RsaesOaepSha1,
            WrappingAlgorithm::RsaesOaepSha256,
            WrappingAlgorithm::RsaAesKeyWrapSha1,
            WrappingAlgorithm::RsaAesKeyWrapSha256,
        ]
        .into_iter()
        .find(|a| a.code() == c)
    }

    fn oaep(self) -> EncryptionAlgorithm {
        match self {
            WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaAesKeyWrapSha1 => {
                EncryptionAlgorithm::RsaesOaepSha1
            }
            _ => EncryptionAlgorithm::RsaesOaepSha256,
        }
    }
}

pub const WRAPPING_KEY_SPECS: &[&str] = &["RSA_2048", "RSA_3072", "RSA_4096", "SM2"];

pub fn wrapping_key_size(spec: &str) -> Result<KeySize, KmsError> {
    match spec {
        "RSA_2048" => Ok(KeySize::Rsa2048),
        "RSA_3072" => Ok(KeySize::Rsa3072),
        "RSA_4096" => Ok(KeySize::Rsa4096),
        other => Err(KmsError::wrapping_key_spec_unsupported(other)),
    }
}

/// What GetParametersForImport returns.
pub struct ImportParameters {
    pub token: Vec<u8>,
    pub public_key: Vec<u8>,
    pub valid_to: Millis,
}

fn token_binding(arn: &KeyArn) -> Vec<u8> {
    let mut b = b"ferrokms/import-token/v1:".to_vec();
    b.extend_from_slice(arn.to_string().as_bytes());
    b
}

/// Makes a fresh RSA wrapping key and an import token that carries its private half sealed
/// under the root key and bound to the KMS key: nothing needs storing, and a token works
/// only for its key and only until it expires.
pub fn new_import_parameters(
    root: &dyn RootKeyProvider,
    arn: &KeyArn,
    algorithm: WrappingAlgorithm,
    size: KeySize,
    now: Millis,
) -> Result<ImportParameters, KmsError> {
    let key = RsaKeyPair::generate(size).map_err(|_| KmsError::internal())?;
    let pkcs8: Pkcs8V1Der = key.as_der().map_err(|_| KmsError::internal())?;
    let public: PublicKeyX509Der = key
        .public_key()
        .as_der()
        .map_err(|_| KmsError::internal())?;
    let valid_to = now + IMPORT_TOKEN_LIFETIME_MS;
    let mut plain = Zeroizing::new(Vec::with_capacity(pkcs8.as_ref().len() + 9));
    plain.push(algorithm.code());
    plain.extend_from_slice(&valid_to.to_be_bytes());
    plain.extend_from_slice(pkcs8.as_ref());
    Ok(ImportParameters {
        token: root.wrap(&token_binding(arn), &plain)?,
        public_key: public.as_ref().to_vec(),
        valid_to,
    })
}

/// Opens an import token for `arn`: its wrapping algorithm and private key.
pub fn open_import_token(
    root: &dyn RootKeyProvider,
    arn: &KeyArn,
    token: &[u8],
    now: Millis,
) -> Result<(WrappingAlgorithm, KeyMaterial), KmsError> {
    let invalid = KmsError::invalid_import_token;
    let plain = root
        .unwrap(&token_binding(arn), token)
        .map_err(|_| invalid())?;
    if plain.len() < 9 {
        return Err(invalid());
    }
    let algorithm = WrappingAlgorithm::from_code(plain[0]).ok_or_else(invalid)?;
    let mut expiry = [0u8; 8];
    expiry.copy_from_slice(&plain[1..9]);
    if now >= i64::from_be_bytes(expiry) {
        return Err(KmsError::expired_import_token());
    }
    Ok((
        algorithm,
        KeyMaterial::from_bytes(Zeroizing::new(plain[9..].to_vec())),
    ))
}

/// Unwraps material wrapped with the token's public key: RSA-OAEP directly, or RSA-OAEP of
/// an AES-256 key followed by AES key wrap with padding (RFC 5649) of the material.
pub fn unwrap_material(
    algorithm: WrappingAlgorithm,
    wrapping_key: &KeyMaterial,
    encrypted: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    match algorithm {
        WrappingAlgorithm::RsaesOaepSha1 | WrappingAlgorithm::RsaesOaepSha256 => {
            rsa_decrypt(wrapping_key, algorithm.oaep(), encrypted)
        }
        WrappingAlgorithm::RsaAesKeyWrapSha1 | WrappingAlgorithm::RsaAesKeyWrapSha256 => {
            let modulus = RsaKeyPair::from_pkcs8(wrapping_key.expose())
                .map_err(|_| KmsError::internal())?
                .public_modulus_len();
            if encrypted.len() <= modulus {
                return Err(KmsError::invalid_ciphertext());
            }
            let (wrapped_key, wrapped_material) = encrypted.split_at(modulus);
            let aes = rsa_decrypt(wrapping_key, algorithm.oaep(), wrapped_key)?;
            let kek = AesKek::new(&AES_256, &aes).map_err(|_| KmsError::invalid_ciphertext())?;
            let mut out = Zeroizing::new(vec![0u8; wrapped_material.len()]);
            let len = kek
                .unwrap_with_padding(wrapped_material, &mut out)
                .map_err(|_| KmsError::invalid_ciphertext())?
                .len();
            out.truncate(len);
            Ok(out)
        }
    }
}

/// Whether material of `spec` can be imported at all: AWS refuses ML-DSA ("You can't
/// import key material for ML-DSA KMS keys"), and ferrokms has no SM2.
pub fn check_importable_spec(spec: KeySpec) -> Result<(), KmsError> {
    match spec {
        KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => {
            Err(KmsError::import_unsupported_for_spec(spec.as_str()))
        }
        KeySpec::Sm2 => Err(KmsError::key_spec_unsupported(spec.as_str())),
        _ => Ok(()),
    }
}

/// The largest HMAC key AWS imports: 1024 bits.
const MAX_HMAC_MATERIAL_BYTES: usize = 128;

/// Checks unwrapped material as AWS documents it: 32 bytes for a symmetric key; for an
/// HMAC key at least the hash length and at most 1024 bits; for an asymmetric key a PKCS#8
/// private key of the spec (`asymmetric::parse_private_key`), whose public key KMS derives.
pub fn accept_material(
    spec: KeySpec,
    material: Zeroizing<Vec<u8>>,
) -> Result<NewMaterial, KmsError> {
    check_importable_spec(spec)?;
    if spec == KeySpec::SymmetricDefault {
        if material.len() != SYMMETRIC_MATERIAL_BYTES {
            return Err(KmsError::symmetric_material_wrong_length());
        }
    } else if let Some(mac) = spec.mac_algorithm() {
        let min = asymmetric::hmac_key_bytes(mac);
        if !(min..=MAX_HMAC_MATERIAL_BYTES).contains(&material.len()) {
            return Err(KmsError::hmac_material_wrong_length(
                spec.as_str(),
                min,
                MAX_HMAC_MATERIAL_BYTES,
            ));
        }
    } else {
        return asymmetric::parse_private_key(spec, &material)
            .ok_or_else(|| KmsError::imported_material_invalid(spec.as_str()));
    }
    Ok(NewMaterial {
        material: KeyMaterial::from_bytes(material),
        public_key: None,
    })
}

/// The id of imported material is derived from it and from the key's id (not its Region,
/// so that a multi-Region key's copies name the same material alike): re-importing the
/// same material is recognised, and the same material in two keys has two ids. A hash, not
/// an HMAC keyed by the material: HMAC takes some different keys for the same one (a long
/// key and its hash, a key and the key padded with zeros), and its tag would be a MAC an
/// HMAC key itself makes.
pub fn imported_material_id(key: KeyId, material: &KeyMaterial) -> MaterialId {
    let mut hash = digest::Context::new(&digest::SHA256);
    hash.update(b"ferrokms/imported-material-id/v2\0");
    hash.update(key.to_string().as_bytes());
    hash.update(&(material.expose().len() as u64).to_be_bytes());
    hash.update(material.expose());
    let mut id = [0u8; 32];
    id.copy_from_slice(hash.finish().as_ref());
    MaterialId::from_bytes(id)
}

/// The id earlier versions gave imported material, which did not bind the key: keys
/// imported then keep recognising their material. (Those versions imported 32-byte
/// symmetric material only, where HMAC's key handling makes no two materials alike.)
pub fn legacy_imported_material_id(material: &KeyMaterial) -> MaterialId {
    let key = hmac::Key::new(hmac::HMAC_SHA256, material.expose());
    let tag = hmac::sign(&key, b"ferrokms/imported-material-id/v1");
    let mut id = [0u8; 32];
    id.copy_from_slice(tag.as_ref());
    MaterialId::from_bytes(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::{AccountId, KeyId, Region};
    use crate::material::AesRootKey;
    use aws_lc_rs::rsa::{OaepPublicEncryptingKey, PublicEncryptingKey, OAEP_SHA256_MGF1SHA256};

    fn arn() -> KeyArn {
        KeyArn {
            region: Region::parse("us-east-1").unwrap(),
            account: AccountId::parse("111122223333").unwrap(),
            key_id: KeyId::generate(false).unwrap(),
        }
    }

    #[test]
    fn tokens_are_bound_to_their_key_and_expire() {
        let root = AesRootKey::from_bytes(&[1u8; 32]).unwrap();
        let a = arn();
        let p = new_import_parameters(
            &root,
            &a,
            WrappingAlgorithm::RsaesOaepSha256,
            KeySize::Rsa2048,
            0,
        )
        .unwrap();
        assert!(open_import_token(&root, &a, &p.token, 1).is_ok());
        assert!(matches!(
            open_import_token(&root, &arn(), &p.token, 1),
            Err(KmsError::InvalidImportToken(_))
        ));
        assert!(matches!(
            open_import_token(&root, &a, &p.token, IMPORT_TOKEN_LIFETIME_MS),
            Err(KmsError::ExpiredImportToken(_))
        ));
    }

    #[test]
    fn oaep_wrapped_material_unwraps() {
        let root = AesRootKey::from_bytes(&[1u8; 32]).unwrap();
        let a = arn();
        let p = new_import_parameters(
            &root,
            &a,
            WrappingAlgorithm::RsaesOaepSha256,
            KeySize::Rsa2048,
            0,
        )
        .unwrap();
        let public =
            OaepPublicEncryptingKey::new(PublicEncryptingKey::from_der(&p.public_key).unwrap())
                .unwrap();
        let mut ct = vec![0u8; public.ciphertext_size()];
        let material = [7u8; 32];
        let ct = public
            .encrypt(&OAEP_SHA256_MGF1SHA256, &material, &mut ct, None)
            .unwrap()
            .to_vec();
        let (alg, private) = open_import_token(&root, &a, &p.token, 0).unwrap();
        assert_eq!(&unwrap_material(alg, &private, &ct).unwrap()[..], &material);
        let m = KeyMaterial::from_bytes(Zeroizing::new(material.to_vec()));
        let other = KeyMaterial::from_bytes(Zeroizing::new(vec![8u8; 32]));
        assert_eq!(
            imported_material_id(a.key_id, &m),
            imported_material_id(a.key_id, &m)
        );
        assert_ne!(
            imported_material_id(a.key_id, &m),
            imported_material_id(arn().key_id, &m)
        );
        assert_ne!(
            imported_material_id(a.key_id, &m),
            imported_material_id(a.key_id, &other)
        );
    }
}
