//! All randomness comes from aws-lc-rs's system generator.

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use zeroize::Zeroizing;

use crate::KmsError;

/// Fills `buf` with cryptographically secure random bytes.
pub fn fill(buf: &mut [u8]) -> Result<(), KmsError> {
    SystemRandom::new()
        .fill(buf)
        .map_err(|_| KmsError::internal())
}

/// `n` random bytes in a buffer that is wiped when dropped.
pub fn secret_bytes(n: usize) -> Result<Zeroizing<Vec<u8>>, KmsError> {
    let mut out = Zeroizing::new(vec![0u8; n]);
    fill(&mut out)?;
    Ok(out)
}

/// A random array, for nonces, IVs and identifiers.
pub fn array<const N: usize>() -> Result<[u8; N], KmsError> {
    let mut out = [0u8; N];
    fill(&mut out)?;
    Ok(out)
}
