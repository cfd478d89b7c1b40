//! Key generation for every key spec, and the asymmetric and MAC operations: RSA-OAEP,
//! RSA-PSS / PKCS#1 v1.5, ECDSA, Ed25519, ML-DSA signatures, HMAC and ECDH. All from
//! aws-lc-rs, but for the two signatures of caller-computed inputs in [`precomputed`].
//!
//! Private keys live in [`KeyMaterial`] as PKCS#8 DER; public keys are DER
//! SubjectPublicKeyInfo.

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
use aws_lc_rs::rsa::{
    KeySize, OaepPrivateDecryptingKey, OaepPublicEncryptingKey, PrivateDecryptingKey,
    PublicEncryptingKey, OAEP_SHA1_MGF1SHA1, OAEP_SHA256_MGF1SHA256,
};
use aws_lc_rs::signature::{
    self, EcdsaKeyPair, Ed25519KeyPair, KeyPair, PqdsaKeyPair, UnparsedPublicKey,
};
use aws_lc_rs::{agreement, digest, hmac};
use zeroize::Zeroizing;

use crate::key::{EncryptionAlgorithm, KeySpec, MacAlgorithm, MessageType, SigningAlgorithm};
use crate::material::KeyMaterial;
use crate::{precomputed, random, KmsError};

/// Largest message Sign and Verify take (RAW); larger ones are sent as a digest.
pub const MAX_MESSAGE_BYTES: usize = 4096;

/// New material for a key: its secret part and, for asymmetric specs, its public key.
pub struct NewMaterial {
    pub material: KeyMaterial,
    pub public_key: Option<Vec<u8>>,
}

fn internal<E>(_: E) -> KmsError {
    KmsError::internal()
}

fn unsupported(spec: KeySpec) -> KmsError {
    KmsError::key_spec_unsupported(spec.as_str())
}

fn secret_der(bytes: &[u8]) -> KeyMaterial {
    KeyMaterial::from_bytes(Zeroizing::new(bytes.to_vec()))
}

fn rsa_size(spec: KeySpec) -> Option<KeySize> {
    match spec {
        KeySpec::Rsa2048 => Some(KeySize::Rsa2048),
        KeySpec::Rsa3072 => Some(KeySize::Rsa3072),
        KeySpec::Rsa4096 => Some(KeySize::Rsa4096),
        _ => None,
    }
}

fn ecdsa_signing(spec: KeySpec) -> Option<&'static signature::EcdsaSigningAlgorithm> {
    match spec {
        KeySpec::EccNistP256 => Some(&signature::ECDSA_P256_SHA256_ASN1_SIGNING),
        KeySpec::EccNistP384 => Some(&signature::ECDSA_P384_SHA384_ASN1_SIGNING),
        KeySpec::EccNistP521 => Some(&signature::ECDSA_P521_SHA512_ASN1_SIGNING),
        KeySpec::EccSecgP256k1 => Some(&signature::ECDSA_P256K1_SHA256_ASN1_SIGNING),
        _ => None,
    }
}

fn ml_dsa_signing(spec: KeySpec) -> Option<&'static signature::PqdsaSigningAlgorithm> {
    match spec {
        KeySpec::MlDsa44 => Some(&signature::ML_DSA_44_SIGNING),
        KeySpec::MlDsa65 => Some(&signature::ML_DSA_65_SIGNING),
        KeySpec::MlDsa87 => Some(&signature::ML_DSA_87_SIGNING),
        _ => None,
    }
}

fn hmac_algorithm(alg: MacAlgorithm) -> hmac::Algorithm {
    match alg {
        MacAlgorithm::HmacSha224 => hmac::HMAC_SHA224,
        MacAlgorithm::HmacSha256 => hmac::HMAC_SHA256,
        MacAlgorithm::HmacSha384 => hmac::HMAC_SHA384,
        MacAlgorithm::HmacSha512 => hmac::HMAC_SHA512,
    }
}

/// Generates material for a new key of `spec`. RSA generation takes a while (seconds for
/// 4096 bits): call it off the async runtime's threads.
pub fn generate(spec: KeySpec) -> Result<NewMaterial, KmsError> {
    crate::fips::check_key_spec(spec)?;
    if spec == KeySpec::SymmetricDefault {
        return Ok(NewMaterial {
            material: KeyMaterial::generate_symmetric()?,
            public_key: None,
        });
    }
    if let Some(mac) = spec.mac_algorithm() {
        // HMAC keys are as long as the hash output, as AWS makes them.
        return Ok(NewMaterial {
            material: KeyMaterial::from_bytes(random::secret_bytes(hmac_key_bytes(mac))?),
            public_key: None,
        });
    }
    if let Some(size) = rsa_size(spec) {
        let key = signature::RsaKeyPair::generate(size).map_err(internal)?;
        let pkcs8: Pkcs8V1Der = key.as_der().map_err(internal)?;
        return Ok(kept(
            pkcs8.as_ref(),
            key.public_key().as_der().map_err(internal)?,
        ));
    }
    if let Some(alg) = ecdsa_signing(spec) {
        let key = EcdsaKeyPair::generate(alg).map_err(internal)?;
        let pkcs8 = key.to_pkcs8v1().map_err(internal)?;
        return Ok(kept(
            pkcs8.as_ref(),
            key.public_key().as_der().map_err(internal)?,
        ));
    }
    if let Some(alg) = ml_dsa_signing(spec) {
        let key = PqdsaKeyPair::generate(alg).map_err(internal)?;
        let pkcs8 = key.to_pkcs8v1().map_err(internal)?;
        return Ok(kept(
            pkcs8.as_ref(),
            key.public_key().as_der().map_err(internal)?,
        ));
    }
    if spec == KeySpec::EccNistEdwards25519 {
        let key = Ed25519KeyPair::generate().map_err(internal)?;
        let pkcs8: Pkcs8V1Der = key.as_der().map_err(internal)?;
        return Ok(kept(
            pkcs8.as_ref(),
            key.public_key().as_der().map_err(internal)?,
        ));
    }
    Err(unsupported(spec))
}

/// A private key as ferrokms keeps it: PKCS#8 v1, with its SubjectPublicKeyInfo.
fn kept(pkcs8: &[u8], public: PublicKeyX509Der) -> NewMaterial {
    NewMaterial {
        material: secret_der(pkcs8),
        public_key: Some(public.as_ref().to_vec()),
    }
}

/// The largest plaintext RSA-OAEP takes: k − 2·hLen − 2 bytes.
pub fn max_oaep_plaintext(spec: KeySpec, alg: EncryptionAlgorithm) -> usize {
    let k = match spec {
        KeySpec::Rsa2048 => 256,
        KeySpec::Rsa3072 => 384,
        KeySpec::Rsa4096 => 512,
        _ => 0,
    };
    let h = match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => 20,
        _ => 32,
    };
    (k as usize).saturating_sub(2 * h + 2)
}

fn oaep(alg: EncryptionAlgorithm) -> Result<&'static aws_lc_rs::rsa::OaepAlgorithm, KmsError> {
    match alg {
        EncryptionAlgorithm::RsaesOaepSha1 => Ok(&OAEP_SHA1_MGF1SHA1),
        EncryptionAlgorithm::RsaesOaepSha256 => Ok(&OAEP_SHA256_MGF1SHA256),
        _ => Err(KmsError::internal()),
    }
}

/// RSA-OAEP encryption with MGF1 on the same hash and an empty label, as KMS does.
pub fn rsa_encrypt(
    spec: KeySpec,
    public_key: &[u8],
    alg: EncryptionAlgorithm,
    plaintext: &[u8],
) -> Result<Vec<u8>, KmsError> {
    let max = max_oaep_plaintext(spec, alg);
    if plaintext.len() > max {
        return Err(KmsError::plaintext_too_large_for_key(
            alg.as_str(),
            spec.as_str(),
            max,
        ));
    }
    let key = PublicEncryptingKey::from_der(public_key).map_err(internal)?;
    let key = OaepPublicEncryptingKey::new(key).map_err(internal)?;
    let mut out = vec![0u8; key.ciphertext_size()];
    let len = key
        .encrypt(oaep(alg)?, plaintext, &mut out, None)
        .map_err(internal)?
        .len();
    out.truncate(len);
    Ok(out)
}

/// RSA-OAEP decryption; any failure is InvalidCiphertext.
pub fn rsa_decrypt(
    private_key: &KeyMaterial,
    alg: EncryptionAlgorithm,
    ciphertext: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let key = PrivateDecryptingKey::from_pkcs8(private_key.expose()).map_err(internal)?;
    let key = OaepPrivateDecryptingKey::new(key).map_err(internal)?;
    let mut out = Zeroizing::new(vec![0u8; key.min_output_size()]);
    let len = key
        .decrypt(oaep(alg)?, ciphertext, &mut out, None)
        .map_err(|_| KmsError::invalid_ciphertext())?
        .len();
    out.truncate(len);
    Ok(out)
}

/// The digest algorithm a signing algorithm hashes with.
fn signing_digest(alg: SigningAlgorithm) -> Option<&'static digest::Algorithm> {
    use SigningAlgorithm::*;
    match alg {
        RsassaPssSha256 | RsassaPkcs1V15Sha256 | EcdsaSha256 => Some(&digest::SHA256),
        RsassaPssSha384 | RsassaPkcs1V15Sha384 | EcdsaSha384 => Some(&digest::SHA384),
        RsassaPssSha512 | RsassaPkcs1V15Sha512 | EcdsaSha512 => Some(&digest::SHA512),
        _ => None,
    }
}

fn rsa_padding(alg: SigningAlgorithm) -> Option<&'static dyn signature::RsaEncoding> {
    use SigningAlgorithm::*;
    Some(match alg {
        RsassaPssSha256 => &signature::RSA_PSS_SHA256,
        RsassaPssSha384 => &signature::RSA_PSS_SHA384,
        RsassaPssSha512 => &signature::RSA_PSS_SHA512,
        RsassaPkcs1V15Sha256 => &signature::RSA_PKCS1_SHA256,
        RsassaPkcs1V15Sha384 => &signature::RSA_PKCS1_SHA384,
        RsassaPkcs1V15Sha512 => &signature::RSA_PKCS1_SHA512,
        _ => return None,
    })
}

fn verification(
    spec: KeySpec,
    alg: SigningAlgorithm,
) -> Option<&'static dyn signature::VerificationAlgorithm> {
    use SigningAlgorithm::*;
    Some(match (spec, alg) {
        (_, RsassaPssSha256) => &signature::RSA_PSS_2048_8192_SHA256,
        (_, RsassaPssSha384) => &signature::RSA_PSS_2048_8192_SHA384,
        (_, RsassaPssSha512) => &signature::RSA_PSS_2048_8192_SHA512,
        (_, RsassaPkcs1V15Sha256) => &signature::RSA_PKCS1_2048_8192_SHA256,
        (_, RsassaPkcs1V15Sha384) => &signature::RSA_PKCS1_2048_8192_SHA384,
        (_, RsassaPkcs1V15Sha512) => &signature::RSA_PKCS1_2048_8192_SHA512,
        (KeySpec::EccNistP256, EcdsaSha256) => &signature::ECDSA_P256_SHA256_ASN1,
        (KeySpec::EccSecgP256k1, EcdsaSha256) => &signature::ECDSA_P256K1_SHA256_ASN1,
        (KeySpec::EccNistP384, EcdsaSha384) => &signature::ECDSA_P384_SHA384_ASN1,
        (KeySpec::EccNistP521, EcdsaSha512) => &signature::ECDSA_P521_SHA512_ASN1,
        (KeySpec::MlDsa44, MlDsaShake256) => &signature::ML_DSA_44,
        (KeySpec::MlDsa65, MlDsaShake256) => &signature::ML_DSA_65,
        (KeySpec::MlDsa87, MlDsaShake256) => &signature::ML_DSA_87,
        (KeySpec::EccNistEdwards25519, Ed25519Sha512) => &signature::ED25519,
        _ => return None,
    })
}

/// What Sign or Verify is asked to sign: the message itself, its digest, or an input only
/// one algorithm takes (an Ed25519ph digest, an ML-DSA external μ).
enum Signed<'a> {
    Message(&'a [u8]),
    Digest(digest::Digest),
    Ed25519phDigest(&'a [u8]),
    ExternalMu(&'a [u8]),
}

/// Checks the message against its type and the algorithm, as KMS does before signing.
/// ED25519_SHA_512 takes RAW only, ED25519_PH_SHA_512 DIGEST only (AWS: "These message
/// types cannot be used interchangeably"), EXTERNAL_MU is for ML-DSA only.
fn prepare<'a>(
    alg: SigningAlgorithm,
    message_type: MessageType,
    message: &'a [u8],
) -> Result<Signed<'a>, KmsError> {
    use SigningAlgorithm::*;
    match (message_type, alg) {
        (MessageType::Raw, Ed25519PhSha512) => Err(KmsError::digest_required(alg.as_str())),
        (MessageType::Raw, _) => Ok(Signed::Message(message)),
        (MessageType::Digest, Ed25519PhSha512) => {
            if message.len() != precomputed::SHA512_BYTES {
                return Err(KmsError::digest_length_invalid(alg.as_str()));
            }
            Ok(Signed::Ed25519phDigest(message))
        }
        (MessageType::Digest, _) => {
            let hash =
                signing_digest(alg).ok_or_else(|| KmsError::digest_not_accepted(alg.as_str()))?;
            if message.len() != hash.output_len() {
                return Err(KmsError::digest_length_invalid(alg.as_str()));
            }
            digest::Digest::import_less_safe(message, hash)
                .map(Signed::Digest)
                .map_err(internal)
        }
        (MessageType::ExternalMu, MlDsaShake256) => {
            if message.len() != precomputed::EXTERNAL_MU_BYTES {
                return Err(KmsError::external_mu_length_invalid(alg.as_str()));
            }
            Ok(Signed::ExternalMu(message))
        }
        (MessageType::ExternalMu, _) => Err(KmsError::external_mu_not_accepted(alg.as_str())),
    }
}

/// Signs with the private key of a SIGN_VERIFY key. RAW messages are hashed once, by the
/// algorithm; DIGEST messages are signed as given. RSA-PSS salt length is the digest length.
pub fn sign(
    spec: KeySpec,
    private_key: &KeyMaterial,
    alg: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
) -> Result<Vec<u8>, KmsError> {
    crate::fips::check_key_spec(spec)?;
    let signed = prepare(alg, message_type, message)?;
    let der = private_key.expose();
    match signed {
        Signed::Ed25519phDigest(d) => return precomputed::ed25519ph_sign(private_key, d),
        Signed::ExternalMu(mu) => {
            let alg = ml_dsa_signing(spec).ok_or_else(KmsError::internal)?;
            return precomputed::ml_dsa_sign_mu(private_key, mu, alg.signature_len());
        }
        Signed::Message(_) | Signed::Digest(_) => {}
    }
    if rsa_size(spec).is_some() {
        let padding = rsa_padding(alg).ok_or_else(KmsError::internal)?;
        let key = signature::RsaKeyPair::from_pkcs8(der).map_err(internal)?;
        let mut sig = vec![0u8; key.public_modulus_len()];
        match signed {
            Signed::Message(m) => key
                .sign(padding, &aws_lc_rs::rand::SystemRandom::new(), m, &mut sig)
                .map_err(internal)?,
            Signed::Digest(d) => key.sign_digest(padding, &d, &mut sig).map_err(internal)?,
            _ => return Err(KmsError::internal()),
        }
        return Ok(sig);
    }
    if let Some(alg) = ecdsa_signing(spec) {
        let key = EcdsaKeyPair::from_pkcs8(alg, der).map_err(internal)?;
        let sig = match signed {
            Signed::Message(m) => key
                .sign(&aws_lc_rs::rand::SystemRandom::new(), m)
                .map_err(internal)?,
            Signed::Digest(d) => key.sign_digest(&d).map_err(internal)?,
            _ => return Err(KmsError::internal()),
        };
        return Ok(sig.as_ref().to_vec());
    }
    if let Some(alg) = ml_dsa_signing(spec) {
        let Signed::Message(m) = signed else {
            return Err(KmsError::internal());
        };
        let key = PqdsaKeyPair::from_pkcs8(alg, der).map_err(internal)?;
        let mut sig = vec![0u8; alg.signature_len()];
        let len = key.sign(m, &mut sig).map_err(internal)?;
        sig.truncate(len);
        return Ok(sig);
    }
    if spec == KeySpec::EccNistEdwards25519 {
        let Signed::Message(m) = signed else {
            return Err(KmsError::internal());
        };
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).map_err(internal)?;
        return Ok(key.try_sign(m).map_err(internal)?.as_ref().to_vec());
    }
    Err(unsupported(spec))
}

/// Verifies a signature with the public key. A bad signature is KMSInvalidSignature-worthy:
/// it returns `Ok(false)` and the caller turns it into that error.
pub fn verify(
    spec: KeySpec,
    public_key: &[u8],
    alg: SigningAlgorithm,
    message_type: MessageType,
    message: &[u8],
    sig: &[u8],
) -> Result<bool, KmsError> {
    crate::fips::check_key_spec(spec)?;
    let signed = prepare(alg, message_type, message)?;
    match signed {
        Signed::Ed25519phDigest(d) => return Ok(precomputed::ed25519ph_verify(public_key, d, sig)),
        Signed::ExternalMu(mu) => return Ok(precomputed::ml_dsa_verify_mu(public_key, mu, sig)),
        Signed::Message(_) | Signed::Digest(_) => {}
    }
    let verifier = verification(spec, alg).ok_or_else(KmsError::internal)?;
    let key = UnparsedPublicKey::new(verifier, public_key);
    Ok(match signed {
        Signed::Message(m) => key.verify(m, sig).is_ok(),
        Signed::Digest(d) => key.verify_digest(&d, sig).is_ok(),
        _ => false,
    })
}

/// HMAC of `message` under the key's material.
pub fn mac(material: &KeyMaterial, alg: MacAlgorithm, message: &[u8]) -> Vec<u8> {
    let key = hmac::Key::new(hmac_algorithm(alg), material.expose());
    hmac::sign(&key, message).as_ref().to_vec()
}

/// Checks a MAC in constant time.
pub fn verify_mac(material: &KeyMaterial, alg: MacAlgorithm, message: &[u8], tag: &[u8]) -> bool {
    let key = hmac::Key::new(hmac_algorithm(alg), material.expose());
    hmac::verify(&key, message, tag).is_ok()
}

/// ECDH between the key's private half and a peer's DER SubjectPublicKeyInfo; the shared
/// secret is the raw x-coordinate, as KMS returns it.
pub fn derive_shared_secret(
    spec: KeySpec,
    private_key: &KeyMaterial,
    peer_public_key: &[u8],
) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    crate::fips::check_key_spec(spec)?;
    let alg = match spec {
        KeySpec::EccNistP256 => &agreement::ECDH_P256,
        KeySpec::EccNistP384 => &agreement::ECDH_P384,
        KeySpec::EccNistP521 => &agreement::ECDH_P521,
        _ => return Err(unsupported(spec)),
    };
    let private =
        agreement::PrivateKey::from_private_key_der(alg, private_key.expose()).map_err(internal)?;
    let peer = agreement::UnparsedPublicKey::new(alg, peer_public_key);
    agreement::agree(&private, peer, KmsError::internal(), |secret| {
        Ok(Zeroizing::new(secret.to_vec()))
    })
    // AWS answers a malformed peer key with a ValidationException that has no message.
    .map_err(|_| KmsError::invalid_peer_public_key())
}

/// A private key of `spec` in PKCS#8 (v1 or v2, from anywhere: imported material), as
/// ferrokms keeps it: checked against the spec (an RSA key's size, an ECC key's named
/// curve), re-encoded as PKCS#8 v1 so that the same key always has the same bytes, and with
/// its public key. None if it is not such a key.
pub fn parse_private_key(spec: KeySpec, der: &[u8]) -> Option<NewMaterial> {
    if !crate::fips::approves(spec) {
        return None;
    }
    if let Some(size) = rsa_size(spec) {
        let key = signature::RsaKeyPair::from_pkcs8(der).ok()?;
        if key.public_modulus_len() != size.len() {
            return None;
        }
        let pkcs8: Pkcs8V1Der = key.as_der().ok()?;
        return Some(kept(pkcs8.as_ref(), key.public_key().as_der().ok()?));
    }
    if let Some(alg) = ecdsa_signing(spec) {
        // from_pkcs8 refuses a key on another curve, and explicit curve parameters.
        let key = EcdsaKeyPair::from_pkcs8(alg, der).ok()?;
        let pkcs8 = key.to_pkcs8v1().ok()?;
        return Some(kept(pkcs8.as_ref(), key.public_key().as_der().ok()?));
    }
    if let Some(alg) = ml_dsa_signing(spec) {
        let key = PqdsaKeyPair::from_pkcs8(alg, der).ok()?;
        let pkcs8 = key.to_pkcs8v1().ok()?;
        return Some(kept(pkcs8.as_ref(), key.public_key().as_der().ok()?));
    }
    if spec == KeySpec::EccNistEdwards25519 {
        let key = Ed25519KeyPair::from_pkcs8_maybe_unchecked(der).ok()?;
        let pkcs8: Pkcs8V1Der = key.as_der().ok()?;
        return Some(kept(pkcs8.as_ref(), key.public_key().as_der().ok()?));
    }
    None
}

/// The length of HMAC keys AWS makes for `alg`: the hash's output, the least it imports.
pub fn hmac_key_bytes(alg: MacAlgorithm) -> usize {
    hmac_algorithm(alg).digest_algorithm().output_len()
}

/// Reveals PKCS#8 bytes where AWS returns them: GenerateDataKeyPair's plaintext private key.
pub fn private_key_der(material: &KeyMaterial) -> &[u8] {
    material.expose()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rsa_oaep_round_trip_and_limits() {
        let k = generate(KeySpec::Rsa2048).unwrap();
        let public = k.public_key.as_deref().unwrap();
        for alg in [
            EncryptionAlgorithm::RsaesOaepSha1,
            EncryptionAlgorithm::RsaesOaepSha256,
        ] {
            let max = max_oaep_plaintext(KeySpec::Rsa2048, alg);
            let ct = rsa_encrypt(KeySpec::Rsa2048, public, alg, &vec![1u8; max]).unwrap();
            assert_eq!(rsa_decrypt(&k.material, alg, &ct).unwrap().len(), max);
            assert!(matches!(
                rsa_encrypt(KeySpec::Rsa2048, public, alg, &vec![1u8; max + 1]),
                Err(KmsError::Validation(_))
            ));
        }
        assert_eq!(
            max_oaep_plaintext(KeySpec::Rsa2048, EncryptionAlgorithm::RsaesOaepSha1),
            214
        );
        assert_eq!(
            max_oaep_plaintext(KeySpec::Rsa4096, EncryptionAlgorithm::RsaesOaepSha256),
            446
        );
        let ct = rsa_encrypt(
            KeySpec::Rsa2048,
            public,
            EncryptionAlgorithm::RsaesOaepSha1,
            b"x",
        )
        .unwrap();
        assert_eq!(
            rsa_decrypt(&k.material, EncryptionAlgorithm::RsaesOaepSha256, &ct),
            Err(KmsError::invalid_ciphertext())
        );
    }

    #[test]
    fn every_signing_spec_signs_raw_and_digest_and_rejects_tampering() {
        for spec in [
            KeySpec::Rsa2048,
            KeySpec::EccNistP256,
            KeySpec::EccNistP384,
            KeySpec::EccNistP521,
            KeySpec::EccSecgP256k1,
            KeySpec::MlDsa44,
        ] {
            if !crate::fips::approves(spec) {
                assert!(generate(spec).is_err(), "{spec:?}");
                continue;
            }
            let k = generate(spec).unwrap();
            let public = k.public_key.as_deref().unwrap();
            for &alg in spec.signing_algorithms() {
                let msg = b"message to sign";
                let sig = sign(spec, &k.material, alg, MessageType::Raw, msg).unwrap();
                assert!(verify(spec, public, alg, MessageType::Raw, msg, &sig).unwrap());
                assert!(!verify(spec, public, alg, MessageType::Raw, b"other", &sig).unwrap());
                if let Some(hash) = signing_digest(alg) {
                    let d = digest::digest(hash, msg);
                    let dsig =
                        sign(spec, &k.material, alg, MessageType::Digest, d.as_ref()).unwrap();
                    // A digest signature verifies as a signature of the message it digests.
                    assert!(
                        verify(spec, public, alg, MessageType::Raw, msg, &dsig).unwrap(),
                        "{spec:?} {alg:?}"
                    );
                    assert!(matches!(
                        sign(
                            spec,
                            &k.material,
                            alg,
                            MessageType::Digest,
                            &d.as_ref()[1..]
                        ),
                        Err(KmsError::Validation(_))
                    ));
                }
            }
        }
    }

    #[test]
    fn hmac_keys_are_hash_sized_and_macs_verify() {
        let k = generate(KeySpec::Hmac384).unwrap();
        assert_eq!(k.material.expose().len(), 48);
        let tag = mac(&k.material, MacAlgorithm::HmacSha384, b"m");
        assert!(verify_mac(
            &k.material,
            MacAlgorithm::HmacSha384,
            b"m",
            &tag
        ));
        assert!(!verify_mac(
            &k.material,
            MacAlgorithm::HmacSha384,
            b"n",
            &tag
        ));
    }

    #[test]
    fn ecdh_agrees_both_ways() {
        let a = generate(KeySpec::EccNistP384).unwrap();
        let b = generate(KeySpec::EccNistP384).unwrap();
        let ab = derive_shared_secret(
            KeySpec::EccNistP384,
            &a.material,
            b.public_key.as_deref().unwrap(),
        )
        .unwrap();
        let ba = derive_shared_secret(
            KeySpec::EccNistP384,
            &b.material,
            a.public_key.as_deref().unwrap(),
        )
        .unwrap();
        assert_eq!(ab, ba);
        assert_eq!(ab.len(), 48);
        let other_curve = generate(KeySpec::EccNistP256).unwrap();
        assert!(matches!(
            derive_shared_secret(
                KeySpec::EccNistP384,
                &a.material,
                other_curve.public_key.as_deref().unwrap()
            ),
            Err(KmsError::Validation(_))
        ));
    }
}
