//! The audit trail: one CloudTrail record per request, successful or not, chained by hashes
//! and made durable in batches (group commit) before the request is answered.

pub mod anchor;
mod changes;
pub mod event;
mod keys;
mod log;
pub mod lookup;
mod pending;
pub mod verify;

pub use changes::Changes;
pub use keys::AuditKeys;
pub use log::{chain_now, AuditLog, PendingEvent};
pub use pending::PendingIntent;

use crate::sigv4::sha256_hex;

/// The `prev_hash` of the first event.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a digest signs: how far the chain reached, its hash there, and (since digests are
/// linked) the SHA-256 of the previous digest's signature, so that a digest removed from the
/// middle or replaced breaks the next one.
pub fn digest_message(digest: &ferrokms_store::AuditDigest) -> Vec<u8> {
    let (upto, hash) = (digest.upto_seq, &digest.chain_hash);
    if digest.previous.is_empty() {
        format!("ferrokms-audit-digest/v1\n{upto}\n{hash}").into_bytes()
    } else {
        format!(
            "ferrokms-audit-digest/v2\n{upto}\n{hash}\n{}",
            digest.previous
        )
        .into_bytes()
    }
}

/// What the digest after one with `signature` names as its previous.
pub fn digest_link(signature: &[u8]) -> String {
    sha256_hex(signature)
}

pub(crate) const SIGNING_KEY_BINDING: &[u8] = b"ferrokms/audit-signing-key/v1";

/// The ECDSA P-256 key that signs digests: made on first use, its private half stored only
/// wrapped under the root key.
pub async fn signing_key(
    store: &dyn ferrokms_store::Store,
    root: &dyn ferrokms_core::material::RootKeyProvider,
) -> Result<(ferrokms_core::material::KeyMaterial, Vec<u8>), crate::ServerError> {
    let fresh = ferrokms_core::asymmetric::generate(ferrokms_core::key::KeySpec::EccNistP256)
        .map_err(|_| crate::ServerError::Random)?;
    let public = fresh.public_key.clone().unwrap_or_default();
    let wrapped = root
        .wrap(
            SIGNING_KEY_BINDING,
            ferrokms_core::asymmetric::private_key_der(&fresh.material),
        )
        .map_err(|_| crate::ServerError::Random)?;
    let (wrapped, public) = store.audit_signing_key((&wrapped, &public)).await?;
    Ok((open_signing_key(root, &wrapped)?, public))
}

/// Unwraps the stored audit signing key.
pub fn open_signing_key(
    root: &dyn ferrokms_core::material::RootKeyProvider,
    wrapped: &[u8],
) -> Result<ferrokms_core::material::KeyMaterial, crate::ServerError> {
    let private = root.unwrap(SIGNING_KEY_BINDING, wrapped).map_err(|_| {
        crate::ServerError::Config("the audit signing key does not open with this root key".into())
    })?;
    Ok(ferrokms_core::material::KeyMaterial::from_bytes(private))
}

/// Links an event to the chain: SHA-256 over the previous hash, its sequence number and the
/// event exactly as stored.
pub fn chain_hash(prev_hash: &str, seq: i64, event: &str) -> String {
    sha256_hex(format!("{prev_hash}\n{seq}\n{event}").as_bytes())
}
