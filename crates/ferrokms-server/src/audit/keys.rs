//! The keys of the audit trail, as every writer of it loads them: the ECDSA key that signs
//! digests, checked against the public half kept outside the store before it signs anything,
//! and the MAC key that seals the records a write leaves in the outbox.
//!
//! Only a first start makes the signing key (`DataDir::audit_anchor`); a writer that finds
//! the store's key missing or different from the one kept outside refuses to write, so that
//! a database swapped under it is not signed on.

use aws_lc_rs::{digest, hmac};
use ferrokms_core::asymmetric;
use ferrokms_core::key::{KeySpec, MessageType, SigningAlgorithm};
use ferrokms_core::material::{KeyMaterial, RootKeyProvider};
use ferrokms_store::outbox::OutboxRecord;
use ferrokms_store::{AuditRecord, Store};

use crate::ServerError;

impl std::fmt::Debug for AuditKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditKeys")
            .field("public", &super::anchor::fingerprint(&self.public))
            .finish_non_exhaustive()
    }
}

pub struct AuditKeys {
    signing: KeyMaterial,
    public: Vec<u8>,
    seal: hmac::Key,
}

fn refused(why: &str) -> ServerError {
    ServerError::Config(format!(
        "the audit signing key {why}: the database was changed, or belongs to another service \
         (run `ferrokms audit verify`)"
    ))
}

impl AuditKeys {
    /// Loads the store's signing key and checks it against `public`, the key kept outside
    /// the store (`anchor`).
    pub async fn load(
        store: &dyn Store,
        root: &dyn RootKeyProvider,
        public: &[u8],
    ) -> Result<Self, ServerError> {
        let Some((wrapped, stored_public)) = store.stored_audit_signing_key().await? else {
            return Err(refused("is missing from the store"));
        };
        if stored_public != public {
            return Err(refused("in the store is not the one kept outside it"));
        }
        let signing = super::open_signing_key(root, &wrapped)?;
        let probe = b"ferrokms/audit-key-probe";
        let signs_for_public = asymmetric::sign(
            KeySpec::EccNistP256,
            &signing,
            SigningAlgorithm::EcdsaSha256,
            MessageType::Raw,
            probe,
        )
        .ok()
        .and_then(|sig| {
            asymmetric::verify(
                KeySpec::EccNistP256,
                public,
                SigningAlgorithm::EcdsaSha256,
                MessageType::Raw,
                probe,
                &sig,
            )
            .ok()
        })
        .unwrap_or(false);
        if !signs_for_public {
            return Err(refused("in the store does not match its public half"));
        }
        let mut seed = b"ferrokms/outbox-seal/v1\n".to_vec();
        seed.extend_from_slice(asymmetric::private_key_der(&signing));
        let seal_key = digest::digest(&digest::SHA256, &seed);
        zeroize::Zeroize::zeroize(&mut seed);
        Ok(AuditKeys {
            seal: hmac::Key::new(hmac::HMAC_SHA256, seal_key.as_ref()),
            signing,
            public: public.to_owned(),
        })
    }

    pub fn signing(&self) -> &KeyMaterial {
        &self.signing
    }

    pub fn public(&self) -> &[u8] {
        &self.public
    }

    fn sealed_bytes(record: &AuditRecord, node: &str) -> Vec<u8> {
        let mut out = Vec::new();
        let read_only = if record.read_only { "1" } else { "0" };
        let time = record.event_time.to_string();
        let resources = record.resources.join(" ");
        for field in [
            record.event_id.as_str(),
            node,
            time.as_str(),
            record.account.as_str(),
            record.event_name.as_str(),
            record.event_source.as_str(),
            read_only,
            record.username.as_str(),
            record.access_key_id.as_str(),
            resources.as_str(),
            record.event.as_str(),
        ] {
            out.extend_from_slice(&(field.len() as u64).to_be_bytes());
            out.extend_from_slice(field.as_bytes());
        }
        out
    }

    /// The seal of a record that `node` leaves in the outbox.
    pub fn seal(&self, record: &AuditRecord, node: &str) -> String {
        let tag = hmac::sign(&self.seal, &Self::sealed_bytes(record, node));
        ferrokms_core::hex::encode(tag.as_ref())
    }

    /// Whether an outbox record was left by a writer holding this key, unchanged.
    pub fn opens(&self, o: &OutboxRecord) -> bool {
        let Some(tag) = ferrokms_core::hex::decode(&o.seal) else {
            return false;
        };
        hmac::verify(&self.seal, &Self::sealed_bytes(&o.record, &o.node), &tag).is_ok()
    }
}
