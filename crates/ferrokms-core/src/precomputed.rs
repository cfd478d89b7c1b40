//! Signatures over inputs the caller computed: Ed25519ph (RFC 8032 HashEdDSA) of a SHA-512
//! digest, and ML-DSA of an external μ (FIPS 204, section 6.2). aws-lc implements both but
//! aws-lc-rs does not expose them, so this is the one module that calls aws-lc-sys, and the
//! only `unsafe` in the crate. Every pointer handed over comes from a slice whose length is
//! checked first, and every aws-lc object is owned by a guard that frees it.

use std::os::raw::c_long;
use std::ptr;

// The module aws-lc-rs runs on: in a FIPS build, the FIPS module's own bindings.
#[cfg(feature = "fips")]
use aws_lc_fips_sys as sys;
#[cfg(not(feature = "fips"))]
use aws_lc_sys as sys;
use zeroize::Zeroizing;

use crate::material::KeyMaterial;
use crate::KmsError;

pub const ED25519_SIGNATURE_BYTES: usize = 64;
pub const SHA512_BYTES: usize = 64;
/// μ is 64 bytes for every ML-DSA parameter set.
pub const EXTERNAL_MU_BYTES: usize = 64;

/// RFC 8410: the PKCS#8 v1 encoding of an Ed25519 private key is this prefix and the seed.
const ED25519_PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// RFC 8410: the SubjectPublicKeyInfo of an Ed25519 public key is this prefix and the key.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

/// The 32-byte seed of an Ed25519 private key held as PKCS#8 v1.
fn ed25519_seed(pkcs8: &[u8]) -> Result<&[u8], KmsError> {
    match pkcs8.strip_prefix(&ED25519_PKCS8_PREFIX[..]) {
        Some(seed) if seed.len() == 32 => Ok(seed),
        _ => Err(KmsError::internal()),
    }
}

/// The raw 32-byte key of an Ed25519 SubjectPublicKeyInfo.
fn ed25519_public(spki: &[u8]) -> Option<&[u8]> {
    spki.strip_prefix(&ED25519_SPKI_PREFIX[..])
        .filter(|k| k.len() == 32)
}

/// Ed25519ph signature, with an empty context, of the 64-byte digest a caller sends with
/// ED25519_PH_SHA_512. As AWS documents, KMS still applies Ed25519ph's own SHA-512 to it:
/// the digest is the Ed25519ph message, so it is hashed twice.
/// (Any length signs, as RFC 8032 defines it; Sign checks the digest's length first.)
pub fn ed25519ph_sign(private_key: &KeyMaterial, digest: &[u8]) -> Result<Vec<u8>, KmsError> {
    let seed = ed25519_seed(private_key.expose())?;
    let mut public = [0u8; 32];
    let mut expanded = Zeroizing::new([0u8; 64]);
    let mut sig = vec![0u8; ED25519_SIGNATURE_BYTES];
    // SAFETY: `seed` is 32 bytes, `public` 32 and `expanded` 64, as the function requires;
    // the message is `digest.len()` bytes and the signature buffer 64; the context is empty.
    let ok = unsafe {
        sys::ED25519_keypair_from_seed(public.as_mut_ptr(), expanded.as_mut_ptr(), seed.as_ptr());
        sys::ED25519ph_sign(
            sig.as_mut_ptr(),
            digest.as_ptr(),
            digest.len(),
            expanded.as_ptr(),
            ptr::null(),
            0,
        )
    };
    if ok != 1 {
        return Err(KmsError::internal());
    }
    Ok(sig)
}

/// Checks an Ed25519ph signature of a caller's digest (the Ed25519ph message, as in
/// [`ed25519ph_sign`]) against a SubjectPublicKeyInfo.
pub fn ed25519ph_verify(public_key: &[u8], digest: &[u8], sig: &[u8]) -> bool {
    let Some(public) = ed25519_public(public_key) else {
        return false;
    };
    if sig.len() != ED25519_SIGNATURE_BYTES {
        return false;
    }
    // SAFETY: the digest and signature are 64 bytes and the key 32, as checked above.
    let ok = unsafe {
        sys::ED25519ph_verify(
            digest.as_ptr(),
            digest.len(),
            sig.as_ptr(),
            public.as_ptr(),
            ptr::null(),
            0,
        )
    };
    ok == 1
}

/// An aws-lc `EVP_PKEY`, freed on drop.
struct PKey(*mut sys::EVP_PKEY);

impl Drop for PKey {
    fn drop(&mut self) {
        // SAFETY: the pointer came from d2i_* and is freed once, here.
        unsafe { sys::EVP_PKEY_free(self.0) }
    }
}

impl PKey {
    fn private(der: &[u8]) -> Option<PKey> {
        let len = c_long::try_from(der.len()).ok()?;
        let mut p = der.as_ptr();
        // SAFETY: `p` points at `len` readable bytes; aws-lc only reads them.
        let key = unsafe { sys::d2i_AutoPrivateKey(ptr::null_mut(), &mut p, len) };
        (!key.is_null()).then_some(PKey(key))
    }

    fn public(der: &[u8]) -> Option<PKey> {
        let len = c_long::try_from(der.len()).ok()?;
        let mut p = der.as_ptr();
        // SAFETY: as above.
        let key = unsafe { sys::d2i_PUBKEY(ptr::null_mut(), &mut p, len) };
        (!key.is_null()).then_some(PKey(key))
    }

    fn context(&self) -> Option<PKeyContext> {
        // SAFETY: the key is valid for the guard's life, and the context takes its own
        // reference to it.
        let ctx = unsafe { sys::EVP_PKEY_CTX_new(self.0, ptr::null_mut()) };
        (!ctx.is_null()).then_some(PKeyContext(ctx))
    }
}

/// An aws-lc `EVP_PKEY_CTX`, freed on drop.
struct PKeyContext(*mut sys::EVP_PKEY_CTX);

impl Drop for PKeyContext {
    fn drop(&mut self) {
        // SAFETY: the pointer came from EVP_PKEY_CTX_new and is freed once, here.
        unsafe { sys::EVP_PKEY_CTX_free(self.0) }
    }
}

/// Clears aws-lc's thread-local error queue after a failure, so that it cannot grow.
fn clear_errors() {
    // SAFETY: no arguments; touches only this thread's error queue.
    unsafe { sys::ERR_clear_error() }
}

/// ML-DSA signature of an external μ with a private key held as PKCS#8. For ML-DSA keys,
/// aws-lc's EVP_PKEY_sign is the external-μ interface (its message interface is
/// EVP_DigestSign, which aws-lc-rs uses for RAW).
pub fn ml_dsa_sign_mu(
    private_key: &KeyMaterial,
    mu: &[u8],
    signature_len: usize,
) -> Result<Vec<u8>, KmsError> {
    if mu.len() != EXTERNAL_MU_BYTES {
        return Err(KmsError::internal());
    }
    let failed = || {
        clear_errors();
        KmsError::internal()
    };
    let key = PKey::private(private_key.expose()).ok_or_else(failed)?;
    let ctx = key.context().ok_or_else(failed)?;
    let mut sig = vec![0u8; signature_len];
    let mut len = sig.len();
    // SAFETY: `sig` has `len` writable bytes and `mu` 64 readable ones.
    let ok = unsafe {
        sys::EVP_PKEY_sign_init(ctx.0) == 1
            && sys::EVP_PKEY_sign(ctx.0, sig.as_mut_ptr(), &mut len, mu.as_ptr(), mu.len()) == 1
    };
    if !ok || len > sig.len() {
        clear_errors();
        return Err(KmsError::internal());
    }
    sig.truncate(len);
    Ok(sig)
}

/// Checks an ML-DSA signature of an external μ against a SubjectPublicKeyInfo.
pub fn ml_dsa_verify_mu(public_key: &[u8], mu: &[u8], sig: &[u8]) -> bool {
    if mu.len() != EXTERNAL_MU_BYTES {
        return false;
    }
    let Some(key) = PKey::public(public_key) else {
        clear_errors();
        return false;
    };
    let Some(ctx) = key.context() else {
        clear_errors();
        return false;
    };
    // SAFETY: both slices are readable for the lengths given.
    let ok = unsafe {
        sys::EVP_PKEY_verify_init(ctx.0) == 1
            && sys::EVP_PKEY_verify(ctx.0, sig.as_ptr(), sig.len(), mu.as_ptr(), mu.len()) == 1
    };
    if !ok {
        clear_errors();
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hex::decode as decode_hex;

    fn ed25519_key(seed: &[u8]) -> KeyMaterial {
        let mut der = ED25519_PKCS8_PREFIX.to_vec();
        der.extend_from_slice(seed);
        KeyMaterial::from_bytes(Zeroizing::new(der))
    }

    /// RFC 8032, section 7.3: the Ed25519ph test vector ("abc").
    #[test]
    fn ed25519ph_matches_rfc_8032() {
        let seed =
            decode_hex("833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42").unwrap();
        let public =
            decode_hex("ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf").unwrap();
        let expected = decode_hex(
            "98a70222f0b8121aa9d30f813d683f809e462b469c7ff87639499bb94e6dae41\
             31f85042463c2a355a2003d062adf5aaa10b8c61e636062aaad11c2a26083406",
        )
        .unwrap();
        let sig = ed25519ph_sign(&ed25519_key(&seed), b"abc").unwrap();
        assert_eq!(sig, expected);
        let mut spki = ED25519_SPKI_PREFIX.to_vec();
        spki.extend_from_slice(&public);
        assert!(ed25519ph_verify(&spki, b"abc", &sig));
        assert!(!ed25519ph_verify(&spki, b"abd", &sig));
        assert!(!ed25519ph_verify(&spki[1..], b"abc", &sig));
        assert!(!ed25519ph_verify(&spki, b"abc", &sig[1..]));
    }

    #[test]
    fn malformed_keys_are_refused_not_trusted() {
        let short = KeyMaterial::from_bytes(Zeroizing::new(ED25519_PKCS8_PREFIX.to_vec()));
        assert!(ed25519ph_sign(&short, &[0; 64]).is_err());
        let garbage = KeyMaterial::from_bytes(Zeroizing::new(vec![0x30, 0x03, 0x02, 0x01, 0x00]));
        assert!(ml_dsa_sign_mu(&garbage, &[0; 64], 2420).is_err());
        assert!(!ml_dsa_verify_mu(&[0x30, 0x00], &[0; 64], &[0; 2420]));
    }
}
