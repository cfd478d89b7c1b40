//! What the plugin hands the API server: the API server's secret (in KMS v2, the seed of its
//! data encryption keys) sealed with AES-256-GCM under a data key of its own, that data key
//! wrapped by the ferrokms key (GenerateDataKey), so that opening it needs a Decrypt that
//! the key's policy allows and the trail records.
//!
//! ```text
//! ciphertext = magic "FKK2" ‖ wrapped length (u16, big-endian) ‖ wrapped data key
//!              ‖ nonce(12) ‖ sealed ‖ tag(16)
//! AAD        = magic ‖ wrapped length ‖ wrapped data key
//! ```
//! The KMS v2 key id is the id of the key material that wrapped the data key, read from the
//! wrapped blob's header: it changes when the key rotates, and the API server then re-seals
//! what it reads with a new seed.

use std::collections::BTreeMap;

use aws_lc_rs::aead::{Aad, Nonce, RandomizedNonceKey, AES_256_GCM, NONCE_LEN};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{json, Value};
use zeroize::Zeroizing;

use crate::kms::{CallError, KmsClient};

const MAGIC: &[u8; 4] = b"FKK2";
const TAG_BYTES: usize = 16;
/// The most the API server may ask to seal (its seeds are 32 bytes).
pub const MAX_PLAINTEXT_BYTES: usize = 64 * 1024;
/// What Status encrypts to learn the current material and that the key is usable.
const PROBE: &[u8] = b"ferrokms kubernetes-kms-plugin status";

#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    #[error(transparent)]
    Kms(#[from] CallError),
    /// The ciphertext is not one this plugin made, or was changed.
    #[error("the ciphertext is not one this plugin made, or it was changed")]
    InvalidCiphertext,
    /// The ciphertext names other key material than the key id stored with it.
    #[error("the ciphertext was sealed under key material {actual}, not {claimed}")]
    KeyIdMismatch { claimed: String, actual: String },
    #[error("the plaintext is {0} bytes; at most {MAX_PLAINTEXT_BYTES} are sealed")]
    TooLarge(usize),
    /// KMS answered without what the operation returns.
    #[error("KMS answered {0} without {1}")]
    Incomplete(&'static str, &'static str),
    #[error("the local cipher failed")]
    Crypto,
}

/// A sealed secret and the id of the key material it depends on.
pub struct Sealed {
    pub ciphertext: Vec<u8>,
    pub key_id: String,
}

/// Seals and opens with one ferrokms key.
pub struct Envelope {
    kms: KmsClient,
    key_id: String,
    context: BTreeMap<String, String>,
}

fn blob_field(
    answer: &Value,
    op: &'static str,
    name: &'static str,
) -> Result<Vec<u8>, EnvelopeError> {
    answer[name]
        .as_str()
        .and_then(|b| STANDARD.decode(b).ok())
        .ok_or(EnvelopeError::Incomplete(op, name))
}

/// The KMS v2 key id of a wrapped blob: its material's id.
fn material_key_id(wrapped: &[u8]) -> Option<String> {
    ferrokms_core::ciphertext::material_of(wrapped).map(|m| m.to_string())
}

impl Envelope {
    /// `key_id` is the key as `--key-id` names it (id, ARN or alias): every Decrypt names it
    /// too, so a ciphertext of another key is refused even where the caller may use that key.
    pub fn new(kms: KmsClient, key_id: String, context: BTreeMap<String, String>) -> Envelope {
        Envelope {
            kms,
            key_id,
            context,
        }
    }

    pub async fn seal(&self, plaintext: &[u8]) -> Result<Sealed, EnvelopeError> {
        if plaintext.len() > MAX_PLAINTEXT_BYTES {
            return Err(EnvelopeError::TooLarge(plaintext.len()));
        }
        let mut answer = self
            .kms
            .call(
                "GenerateDataKey",
                &json!({"KeyId": self.key_id, "KeySpec": "AES_256", "EncryptionContext": self.context}),
            )
            .await?;
        let data_key = take_secret(&mut answer, "Plaintext")
            .ok_or(EnvelopeError::Incomplete("GenerateDataKey", "Plaintext"))?;
        let wrapped = blob_field(&answer, "GenerateDataKey", "CiphertextBlob")?;
        let key_id = material_key_id(&wrapped).ok_or(EnvelopeError::Incomplete(
            "GenerateDataKey",
            "a ferrokms CiphertextBlob",
        ))?;
        let mut out = header(&wrapped)?;
        let aad = out.clone();
        let key =
            RandomizedNonceKey::new(&AES_256_GCM, &data_key).map_err(|_| EnvelopeError::Crypto)?;
        let mut sealed = plaintext.to_vec();
        let nonce = key
            .seal_in_place_append_tag(Aad::from(&aad[..]), &mut sealed)
            .map_err(|_| EnvelopeError::Crypto)?;
        out.extend_from_slice(nonce.as_ref());
        out.extend_from_slice(&sealed);
        Ok(Sealed {
            ciphertext: out,
            key_id,
        })
    }

    /// Opens what `seal` made; `claimed_key_id` is the key id the API server stored with it.
    pub async fn open(
        &self,
        ciphertext: &[u8],
        claimed_key_id: &str,
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let (wrapped, nonce, sealed) = split(ciphertext)?;
        let actual = material_key_id(wrapped).ok_or(EnvelopeError::InvalidCiphertext)?;
        if actual != claimed_key_id {
            return Err(EnvelopeError::KeyIdMismatch {
                claimed: claimed_key_id.to_owned(),
                actual,
            });
        }
        let mut answer = self
            .kms
            .call(
                "Decrypt",
                &json!({
                    "KeyId": self.key_id,
                    "CiphertextBlob": STANDARD.encode(wrapped),
                    "EncryptionContext": self.context,
                }),
            )
            .await?;
        let data_key = take_secret(&mut answer, "Plaintext")
            .ok_or(EnvelopeError::Incomplete("Decrypt", "Plaintext"))?;
        let key =
            RandomizedNonceKey::new(&AES_256_GCM, &data_key).map_err(|_| EnvelopeError::Crypto)?;
        let aad = header(wrapped)?;
        let mut opened = Zeroizing::new(sealed.to_vec());
        let nonce = Nonce::try_assume_unique_for_key(&nonce)
            .map_err(|_| EnvelopeError::InvalidCiphertext)?;
        let len = key
            .open_in_place(nonce, Aad::from(&aad[..]), &mut opened)
            .map_err(|_| EnvelopeError::InvalidCiphertext)?
            .len();
        opened.truncate(len);
        Ok(opened)
    }

    /// The current material's key id, proving on the way that the key encrypts.
    pub async fn current_key_id(&self) -> Result<String, EnvelopeError> {
        let answer = self
            .kms
            .call(
                "Encrypt",
                &json!({
                    "KeyId": self.key_id,
                    "Plaintext": STANDARD.encode(PROBE),
                    "EncryptionContext": self.context,
                }),
            )
            .await?;
        let blob = blob_field(&answer, "Encrypt", "CiphertextBlob")?;
        material_key_id(&blob).ok_or(EnvelopeError::Incomplete(
            "Encrypt",
            "a ferrokms CiphertextBlob",
        ))
    }
}

/// A secret of a KMS answer, base64-decoded; the answer's copy is zeroized.
fn take_secret(answer: &mut Value, name: &str) -> Option<Zeroizing<Vec<u8>>> {
    let Value::String(encoded) = answer.get_mut(name)?.take() else {
        return None;
    };
    let encoded = Zeroizing::new(encoded);
    STANDARD.decode(encoded.as_bytes()).ok().map(Zeroizing::new)
}

fn header(wrapped: &[u8]) -> Result<Vec<u8>, EnvelopeError> {
    let len = u16::try_from(wrapped.len()).map_err(|_| EnvelopeError::InvalidCiphertext)?;
    let mut out = Vec::with_capacity(MAGIC.len() + 2 + wrapped.len() + NONCE_LEN + TAG_BYTES);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(wrapped);
    Ok(out)
}

/// The parts of a ciphertext: the wrapped data key, the nonce, the sealed bytes and tag.
type Parts<'a> = (&'a [u8], [u8; NONCE_LEN], &'a [u8]);

fn split(ciphertext: &[u8]) -> Result<Parts<'_>, EnvelopeError> {
    let invalid = || EnvelopeError::InvalidCiphertext;
    let rest = ciphertext.strip_prefix(MAGIC).ok_or_else(invalid)?;
    let (len, rest) = rest.split_first_chunk::<2>().ok_or_else(invalid)?;
    let len = usize::from(u16::from_be_bytes(*len));
    if rest.len() < len + NONCE_LEN + TAG_BYTES {
        return Err(invalid());
    }
    let (wrapped, rest) = rest.split_at(len);
    let (nonce, sealed) = rest.split_at(NONCE_LEN);
    let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| invalid())?;
    Ok((wrapped, nonce, sealed))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_ciphertext_splits_into_its_parts_and_a_short_one_is_refused() {
        let wrapped = vec![7u8; 120];
        let mut blob = header(&wrapped).unwrap();
        blob.extend_from_slice(&[1u8; NONCE_LEN]);
        blob.extend_from_slice(&[2u8; 5 + TAG_BYTES]);
        let (w, n, s) = split(&blob).unwrap();
        assert_eq!(
            (w, n, s.len()),
            (&wrapped[..], [1u8; NONCE_LEN], 5 + TAG_BYTES)
        );
        for cut in [0, 3, 6, 125, 6 + 120 + NONCE_LEN + TAG_BYTES - 1] {
            assert!(split(&blob[..cut]).is_err(), "{cut}");
        }
        let mut other = blob.clone();
        other[0] = b'X';
        assert!(split(&other).is_err());
    }
}
