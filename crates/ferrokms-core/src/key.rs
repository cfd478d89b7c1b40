//! KMS key metadata and the key-state machine, with the AWS errors for each refused move.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::ids::{AccountId, KeyArn, KeyId, Region};
pub use crate::imported::ImportState;
use crate::material::MaterialId;
use crate::KmsError;

/// Defines a string enum of the KMS model: `ALL` lists its wire names in model order.
macro_rules! wire_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $wire:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name { $(#[serde(rename = $wire)] $variant),+ }

        impl $name {
            pub const ALL: &'static [&'static str] = &[$($wire),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

// Every enum lists its values in the model's order: validation messages name them so
// (tests/e2e/surface.rs holds each operation's messages to the model).
wire_enum!(KeySpec {
    Rsa2048 = "RSA_2048",
    Rsa3072 = "RSA_3072",
    Rsa4096 = "RSA_4096",
    EccNistP256 = "ECC_NIST_P256",
    EccNistP384 = "ECC_NIST_P384",
    EccNistP521 = "ECC_NIST_P521",
    EccSecgP256k1 = "ECC_SECG_P256K1",
    SymmetricDefault = "SYMMETRIC_DEFAULT",
    Hmac224 = "HMAC_224",
    Hmac256 = "HMAC_256",
    Hmac384 = "HMAC_384",
    Hmac512 = "HMAC_512",
    Sm2 = "SM2",
    MlDsa44 = "ML_DSA_44",
    MlDsa65 = "ML_DSA_65",
    MlDsa87 = "ML_DSA_87",
    EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
});

wire_enum!(
    /// The deprecated `CustomerMasterKeySpec`: the key specs that existed before 2025.
    CustomerMasterKeySpec {
        Rsa2048 = "RSA_2048",
        Rsa3072 = "RSA_3072",
        Rsa4096 = "RSA_4096",
        EccNistP256 = "ECC_NIST_P256",
        EccNistP384 = "ECC_NIST_P384",
        EccNistP521 = "ECC_NIST_P521",
        EccSecgP256k1 = "ECC_SECG_P256K1",
        SymmetricDefault = "SYMMETRIC_DEFAULT",
        Hmac224 = "HMAC_224",
        Hmac256 = "HMAC_256",
        Hmac384 = "HMAC_384",
        Hmac512 = "HMAC_512",
        Sm2 = "SM2",
    }
);

impl CustomerMasterKeySpec {
    pub fn key_spec(self) -> KeySpec {
        // Every CustomerMasterKeySpec name is also a KeySpec name.
        KeySpec::parse(self.as_str()).unwrap_or(KeySpec::SymmetricDefault)
    }
}

wire_enum!(KeyUsage {
    SignVerify = "SIGN_VERIFY",
    EncryptDecrypt = "ENCRYPT_DECRYPT",
    GenerateVerifyMac = "GENERATE_VERIFY_MAC",
    KeyAgreement = "KEY_AGREEMENT",
});

wire_enum!(Origin {
    AwsKms = "AWS_KMS",
    External = "EXTERNAL",
    AwsCloudhsm = "AWS_CLOUDHSM",
    ExternalKeyStore = "EXTERNAL_KEY_STORE",
});

wire_enum!(KeyManager {
    Aws = "AWS",
    Customer = "CUSTOMER",
});

wire_enum!(EncryptionAlgorithm {
    SymmetricDefault = "SYMMETRIC_DEFAULT",
    RsaesOaepSha1 = "RSAES_OAEP_SHA_1",
    RsaesOaepSha256 = "RSAES_OAEP_SHA_256",
    Sm2Pke = "SM2PKE",
});

wire_enum!(DataKeySpec {
    Aes256 = "AES_256",
    Aes128 = "AES_128",
});

impl DataKeySpec {
    pub fn bytes(self) -> usize {
        match self {
            DataKeySpec::Aes256 => 32,
            DataKeySpec::Aes128 => 16,
        }
    }
}

wire_enum!(SigningAlgorithm {
    RsassaPssSha256 = "RSASSA_PSS_SHA_256",
    RsassaPssSha384 = "RSASSA_PSS_SHA_384",
    RsassaPssSha512 = "RSASSA_PSS_SHA_512",
    RsassaPkcs1V15Sha256 = "RSASSA_PKCS1_V1_5_SHA_256",
    RsassaPkcs1V15Sha384 = "RSASSA_PKCS1_V1_5_SHA_384",
    RsassaPkcs1V15Sha512 = "RSASSA_PKCS1_V1_5_SHA_512",
    EcdsaSha256 = "ECDSA_SHA_256",
    EcdsaSha384 = "ECDSA_SHA_384",
    EcdsaSha512 = "ECDSA_SHA_512",
    Sm2Dsa = "SM2DSA",
    MlDsaShake256 = "ML_DSA_SHAKE_256",
    Ed25519Sha512 = "ED25519_SHA_512",
    Ed25519PhSha512 = "ED25519_PH_SHA_512",
});

wire_enum!(MacAlgorithm {
    HmacSha224 = "HMAC_SHA_224",
    HmacSha256 = "HMAC_SHA_256",
    HmacSha384 = "HMAC_SHA_384",
    HmacSha512 = "HMAC_SHA_512",
});

wire_enum!(MessageType {
    Raw = "RAW",
    Digest = "DIGEST",
    ExternalMu = "EXTERNAL_MU",
});

wire_enum!(KeyAgreementAlgorithm { Ecdh = "ECDH" });

wire_enum!(DataKeyPairSpec {
    Rsa2048 = "RSA_2048",
    Rsa3072 = "RSA_3072",
    Rsa4096 = "RSA_4096",
    EccNistP256 = "ECC_NIST_P256",
    EccNistP384 = "ECC_NIST_P384",
    EccNistP521 = "ECC_NIST_P521",
    EccSecgP256k1 = "ECC_SECG_P256K1",
    Sm2 = "SM2",
    EccNistEdwards25519 = "ECC_NIST_EDWARDS25519",
});

impl DataKeyPairSpec {
    /// Every pair spec names a key spec of the same name.
    pub fn key_spec(self) -> KeySpec {
        KeySpec::parse(self.as_str()).unwrap_or(KeySpec::SymmetricDefault)
    }
}

impl KeySpec {
    /// The key usages AWS allows for this spec.
    pub fn usages(self) -> &'static [KeyUsage] {
        use KeySpec::*;
        match self {
            SymmetricDefault => &[KeyUsage::EncryptDecrypt],
            Rsa2048 | Rsa3072 | Rsa4096 => &[KeyUsage::EncryptDecrypt, KeyUsage::SignVerify],
            EccNistP256 | EccNistP384 | EccNistP521 => {
                &[KeyUsage::SignVerify, KeyUsage::KeyAgreement]
            }
            EccSecgP256k1 | EccNistEdwards25519 | MlDsa44 | MlDsa65 | MlDsa87 => {
                &[KeyUsage::SignVerify]
            }
            Hmac224 | Hmac256 | Hmac384 | Hmac512 => &[KeyUsage::GenerateVerifyMac],
            Sm2 => &[
                KeyUsage::EncryptDecrypt,
                KeyUsage::SignVerify,
                KeyUsage::KeyAgreement,
            ],
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(
            self,
            KeySpec::Hmac224 | KeySpec::Hmac256 | KeySpec::Hmac384 | KeySpec::Hmac512
        )
    }

    /// Signing algorithms for a SIGN_VERIFY key of this spec, in AWS's order.
    pub fn signing_algorithms(self) -> &'static [SigningAlgorithm] {
        use SigningAlgorithm::*;
        match self {
            KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096 => &[
                RsassaPkcs1V15Sha256,
                RsassaPkcs1V15Sha384,
                RsassaPkcs1V15Sha512,
                RsassaPssSha256,
                RsassaPssSha384,
                RsassaPssSha512,
            ],
            KeySpec::EccNistP256 | KeySpec::EccSecgP256k1 => &[EcdsaSha256],
            KeySpec::EccNistP384 => &[EcdsaSha384],
            KeySpec::EccNistP521 => &[EcdsaSha512],
            KeySpec::MlDsa44 | KeySpec::MlDsa65 | KeySpec::MlDsa87 => &[MlDsaShake256],
            KeySpec::EccNistEdwards25519 => &[Ed25519Sha512, Ed25519PhSha512],
            KeySpec::Sm2 => &[Sm2Dsa],
            _ => &[],
        }
    }

    pub fn mac_algorithm(self) -> Option<MacAlgorithm> {
        match self {
            KeySpec::Hmac224 => Some(MacAlgorithm::HmacSha224),
            KeySpec::Hmac256 => Some(MacAlgorithm::HmacSha256),
            KeySpec::Hmac384 => Some(MacAlgorithm::HmacSha384),
            KeySpec::Hmac512 => Some(MacAlgorithm::HmacSha512),
            _ => None,
        }
    }
}

wire_enum!(KeyState {
    Creating = "Creating",
    Enabled = "Enabled",
    Disabled = "Disabled",
    PendingDeletion = "PendingDeletion",
    PendingImport = "PendingImport",
    PendingReplicaDeletion = "PendingReplicaDeletion",
    Unavailable = "Unavailable",
    Updating = "Updating",
});

/// Milliseconds since the Unix epoch; the wire shows seconds.
pub type Millis = i64;

pub const MIN_ROTATION_PERIOD_DAYS: i32 = 90;
pub const MAX_ROTATION_PERIOD_DAYS: i32 = 2560;
pub const DEFAULT_ROTATION_PERIOD_DAYS: i32 = 365;
/// AWS's limit of on-demand rotations per key (not adjustable in AWS; configurable here).
pub const DEFAULT_ON_DEMAND_ROTATIONS: u32 = 25;

/// The regions of a multi-Region key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Replication {
    pub primary_region: Region,
    pub replica_regions: Vec<Region>,
}

/// Automatic rotation settings and the count of on-demand rotations.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RotationSchedule {
    pub enabled: bool,
    pub period_days: Option<i32>,
    pub next: Option<Millis>,
    pub on_demand_count: u32,
}

pub const MIN_PENDING_WINDOW_DAYS: i32 = 7;
pub const MAX_PENDING_WINDOW_DAYS: i32 = 30;
pub const DEFAULT_PENDING_WINDOW_DAYS: i32 = 30;
const DAY_MILLIS: Millis = 24 * 60 * 60 * 1000;

/// What a background job run does with a key whose moment has come.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyJob {
    /// Destroy it: its deletion waiting period is over.
    Delete,
    /// Remove its imported material: the material's ValidTo has passed.
    ExpireImportedMaterial,
    /// Rotate it automatically.
    Rotate,
}

/// The custom key store a key lives in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomKeyStoreLink {
    pub id: String,
    /// For a key of an AWS_CLOUDHSM store: whose key lives in the store's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_hsm_cluster_id: Option<String>,
    /// For a key of an EXTERNAL_KEY_STORE store: the external key that encrypts the outer
    /// layer of its ciphertexts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub xks_key_id: Option<String>,
}

impl CustomKeyStoreLink {
    /// Whether the key's own material lives in an HSM token (AWS_CLOUDHSM).
    pub fn in_token(&self) -> bool {
        self.cloud_hsm_cluster_id.is_some()
    }
}

/// Everything about a KMS key except its material.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct KeyMetadata {
    pub arn: KeyArn,
    pub creation_date: Millis,
    pub description: String,
    pub key_usage: KeyUsage,
    pub key_spec: KeySpec,
    pub origin: Origin,
    pub key_manager: KeyManager,
    pub state: KeyState,
    pub deletion_date: Option<Millis>,
    pub pending_window_days: Option<i32>,
    pub current_material: MaterialId,
    /// Shared: most keys of an account carry the same (default) policy, and a store's
    /// cache of keys keeps one copy of it.
    pub policy: Arc<str>,
    /// DER SubjectPublicKeyInfo of an asymmetric key. Public, so kept in the clear: Verify
    /// and GetPublicKey never touch the private key.
    #[serde(default, with = "hex_bytes")]
    pub public_key: Option<Vec<u8>>,
    #[serde(default)]
    pub rotation: RotationSchedule,
    /// For keys of Origin EXTERNAL: what was imported and until when.
    #[serde(default)]
    pub import: ImportState,
    /// For multi-Region keys: where the primary and the replicas are. Every copy holds it.
    #[serde(default)]
    pub replication: Option<Replication>,
    /// For a key in a custom key store: which store, and the cluster of an AWS_CLOUDHSM one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom_key_store: Option<CustomKeyStoreLink>,
    /// Bumped on every stored change; stores refuse an update made from a stale read.
    pub revision: i64,
}

impl KeyMetadata {
    pub fn id(&self) -> KeyId {
        self.arn.key_id
    }
    pub fn region(&self) -> &Region {
        &self.arn.region
    }
    pub fn account(&self) -> &AccountId {
        &self.arn.account
    }

    pub fn encryption_algorithms(&self) -> &'static [EncryptionAlgorithm] {
        use EncryptionAlgorithm::*;
        match (self.key_usage, self.key_spec) {
            (KeyUsage::EncryptDecrypt, KeySpec::SymmetricDefault) => &[SymmetricDefault],
            (KeyUsage::EncryptDecrypt, KeySpec::Rsa2048 | KeySpec::Rsa3072 | KeySpec::Rsa4096) => {
                &[RsaesOaepSha1, RsaesOaepSha256]
            }
            (KeyUsage::EncryptDecrypt, KeySpec::Sm2) => &[Sm2Pke],
            _ => &[],
        }
    }

    pub fn signing_algorithms(&self) -> &'static [SigningAlgorithm] {
        match self.key_usage {
            KeyUsage::SignVerify => self.key_spec.signing_algorithms(),
            _ => &[],
        }
    }

    pub fn mac_algorithms(&self) -> Vec<MacAlgorithm> {
        self.key_spec.mac_algorithm().into_iter().collect()
    }

    pub fn key_agreement_algorithms(&self) -> &'static [KeyAgreementAlgorithm] {
        match self.key_usage {
            KeyUsage::KeyAgreement => &[KeyAgreementAlgorithm::Ecdh],
            _ => &[],
        }
    }

    /// Refuses a key whose usage is not `usage`, in AWS's words.
    pub fn check_usage(&self, usage: KeyUsage, operation: &str) -> Result<(), KmsError> {
        if self.key_usage == usage {
            return Ok(());
        }
        Err(KmsError::invalid_key_usage(
            &self.arn,
            self.key_usage.as_str(),
            operation,
        ))
    }

    fn state_error(&self) -> KmsError {
        let arn = &self.arn;
        match self.state {
            KeyState::Disabled => KmsError::key_disabled(arn),
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => {
                KmsError::key_pending_deletion(arn)
            }
            KeyState::PendingImport => KmsError::key_pending_import(arn),
            KeyState::Unavailable => KmsError::key_unavailable(arn),
            KeyState::Creating => KmsError::key_creating(arn),
            KeyState::Updating => KmsError::key_updating(arn),
            KeyState::Enabled => KmsError::internal(),
        }
    }

    /// Cryptographic operations need an enabled key (or one whose region is being updated).
    pub fn check_usable(&self) -> Result<(), KmsError> {
        match self.state {
            KeyState::Enabled | KeyState::Updating => Ok(()),
            _ => Err(self.state_error()),
        }
    }

    /// Aliases, tags and descriptions may change in every state but pending deletion.
    pub fn check_not_pending_deletion(&self) -> Result<(), KmsError> {
        match self.state {
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion => Err(self.state_error()),
            _ => Ok(()),
        }
    }

    fn check_can_toggle(&self) -> Result<(), KmsError> {
        match self.state {
            KeyState::Enabled | KeyState::Disabled | KeyState::Unavailable => Ok(()),
            _ => Err(self.state_error()),
        }
    }

    pub fn enable(&mut self) -> Result<(), KmsError> {
        self.check_can_toggle()?;
        self.state = KeyState::Enabled;
        Ok(())
    }

    pub fn disable(&mut self) -> Result<(), KmsError> {
        self.check_can_toggle()?;
        self.state = KeyState::Disabled;
        Ok(())
    }

    pub fn schedule_deletion(&mut self, window_days: i32, now: Millis) -> Result<(), KmsError> {
        match self.state {
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion | KeyState::Updating => {
                return Err(self.state_error())
            }
            _ => {}
        }
        if !(MIN_PENDING_WINDOW_DAYS..=MAX_PENDING_WINDOW_DAYS).contains(&window_days) {
            return Err(KmsError::pending_window_out_of_range());
        }
        self.pending_window_days = Some(window_days);
        if self.has_replicas() {
            // A primary waits for its replicas to go; its window starts after the last one.
            self.state = KeyState::PendingReplicaDeletion;
            self.deletion_date = None;
        } else {
            self.state = KeyState::PendingDeletion;
            self.deletion_date = Some(now + i64::from(window_days) * DAY_MILLIS);
        }
        Ok(())
    }

    /// Whether this is a multi-Region primary that still has replicas.
    pub fn has_replicas(&self) -> bool {
        self.is_primary()
            && self
                .replication
                .as_ref()
                .is_some_and(|r| !r.replica_regions.is_empty())
    }

    /// Forgets a replica region that was deleted. A primary waiting for its last replica
    /// starts its own deletion window now.
    pub fn replica_deleted(&mut self, region: &Region, now: Millis) {
        if let Some(r) = &mut self.replication {
            r.replica_regions.retain(|x| x != region);
        }
        if self.state == KeyState::PendingReplicaDeletion && !self.has_replicas() {
            self.state = KeyState::PendingDeletion;
            let days = self
                .pending_window_days
                .unwrap_or(DEFAULT_PENDING_WINDOW_DAYS);
            self.deletion_date = Some(now + i64::from(days) * DAY_MILLIS);
        }
    }

    /// AWS's answer to an operation this key's origin does not allow.
    pub fn origin_not_valid(&self) -> KmsError {
        KmsError::origin_not_valid(&self.arn, self.origin.as_str())
    }

    /// Whether the key's own material lives in an HSM token (an AWS_CLOUDHSM store's key).
    pub fn material_in_token(&self) -> bool {
        self.custom_key_store
            .as_ref()
            .is_some_and(CustomKeyStoreLink::in_token)
    }

    /// Whether the key is in an external key store: its ciphertexts carry an outer layer.
    pub fn is_external(&self) -> bool {
        self.custom_key_store
            .as_ref()
            .is_some_and(|l| l.xks_key_id.is_some())
    }

    /// Rotation is for symmetric keys with material that KMS generated.
    /// Whether this key's material can rotate, in AWS's order: the origin first (an
    /// imported key's RotateKeyOnDemand was recorded refused for its origin while pending
    /// import), then the key's state (a disabled RSA key's was recorded DisabledException),
    /// then its spec (an enabled asymmetric key's, UnsupportedOperationException without a
    /// message).
    fn check_rotatable(&self) -> Result<(), KmsError> {
        self.check_rotatable_origin()?;
        self.check_usable()?;
        if self.key_spec != KeySpec::SymmetricDefault {
            return Err(KmsError::rotation_unsupported_for_key_spec());
        }
        Ok(())
    }

    /// Keys of imported material or in a custom key store never rotate by KMS.
    pub fn check_rotatable_origin(&self) -> Result<(), KmsError> {
        if self.origin != Origin::AwsKms {
            return Err(self.origin_not_valid());
        }
        Ok(())
    }

    pub fn enable_rotation(&mut self, period_days: i32, now: Millis) -> Result<(), KmsError> {
        self.check_rotatable()?;
        self.rotation.enabled = true;
        self.rotation.period_days = Some(period_days);
        self.rotation.next = Some(now + i64::from(period_days) * DAY_MILLIS);
        Ok(())
    }

    pub fn disable_rotation(&mut self) -> Result<(), KmsError> {
        self.check_rotatable()?;
        self.rotation.enabled = false;
        self.rotation.period_days = None;
        self.rotation.next = None;
        Ok(())
    }

    /// The background jobs this key is scheduled for, each with its moment, in the order a
    /// job run considers them.
    fn scheduled_jobs(&self) -> [(KeyJob, Option<Millis>); 3] {
        let deletion = self
            .deletion_date
            .filter(|_| self.state == KeyState::PendingDeletion);
        // Imported material expires in every state, as AWS deletes it at its ValidTo.
        let expiry = self
            .import
            .next_expiry()
            .filter(|_| self.origin == Origin::External);
        // Replicas rotate with their primary, never by themselves.
        let rotation = self.rotation.next.filter(|_| {
            self.rotation.enabled && self.state == KeyState::Enabled && self.is_primary()
        });
        [
            (KeyJob::Delete, deletion),
            (KeyJob::ExpireImportedMaterial, expiry),
            (KeyJob::Rotate, rotation),
        ]
    }

    /// The job a run at `now` must do with this key, if any.
    pub fn job_due(&self, now: Millis) -> Option<KeyJob> {
        self.scheduled_jobs()
            .into_iter()
            .find(|(_, at)| at.is_some_and(|at| at <= now))
            .map(|(job, _)| job)
    }

    /// The first moment a background job has something to do with this key; None while
    /// nothing is scheduled. Stored beside the key, so that job runs read only the keys
    /// whose moment has come.
    pub fn next_job_at(&self) -> Option<Millis> {
        self.scheduled_jobs()
            .into_iter()
            .filter_map(|(_, at)| at)
            .min()
    }

    /// Whether automatic rotation is due: enabled keys only, as disabled keys are not rotated.
    pub fn rotation_due(&self, now: Millis) -> bool {
        self.rotation.enabled
            && self.state == KeyState::Enabled
            && self.rotation.next.is_some_and(|n| n <= now)
    }

    /// Makes `material` the current version. An on-demand rotation counts against AWS's
    /// limit and leaves the automatic schedule alone; an automatic one schedules the next.
    /// `on_demand_limit` is None for an automatic rotation.
    pub fn rotate(
        &mut self,
        material: MaterialId,
        on_demand_limit: Option<u32>,
        now: Millis,
    ) -> Result<(), KmsError> {
        self.check_rotatable()?;
        if let Some(limit) = on_demand_limit {
            if self.rotation.on_demand_count >= limit {
                return Err(KmsError::on_demand_rotation_limit(&self.arn));
            }
            self.rotation.on_demand_count += 1;
        } else if let Some(days) = self.rotation.period_days {
            self.rotation.next = Some(now + i64::from(days) * DAY_MILLIS);
        }
        self.current_material = material;
        Ok(())
    }

    pub fn is_multi_region(&self) -> bool {
        self.replication.is_some()
    }

    /// Whether this copy is the primary of a multi-Region key (or an ordinary key).
    pub fn is_primary(&self) -> bool {
        self.replication
            .as_ref()
            .is_none_or(|r| &r.primary_region == self.region())
    }

    /// The same key in another region: same id and account.
    pub fn arn_in(&self, region: &Region) -> KeyArn {
        KeyArn {
            region: region.clone(),
            account: self.account().clone(),
            key_id: self.id(),
        }
    }

    /// A cancelled deletion leaves the key disabled, as in AWS.
    pub fn cancel_deletion(&mut self) -> Result<(), KmsError> {
        if !matches!(
            self.state,
            KeyState::PendingDeletion | KeyState::PendingReplicaDeletion
        ) {
            return Err(KmsError::key_not_pending_deletion(&self.arn));
        }
        // An imported key missing some of its material goes back to waiting for it.
        self.state = if self.origin == Origin::External && !self.import.complete() {
            KeyState::PendingImport
        } else {
            KeyState::Disabled
        };
        self.deletion_date = None;
        self.pending_window_days = None;
        Ok(())
    }
}

mod hex_bytes {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => s.serialize_some(&crate::ids::lower_hex(b)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        let text: Option<String> = Option::deserialize(d)?;
        text.map(|t| {
            (0..t.len())
                .step_by(2)
                .map(|i| {
                    t.get(i..i + 2)
                        .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                        .ok_or_else(|| serde::de::Error::custom("invalid hex"))
                })
                .collect()
        })
        .transpose()
    }
}

/// The key policy AWS attaches when CreateKey is given none: the account may do everything,
/// and IAM policies decide for its principals.
pub fn default_key_policy(account: &AccountId) -> String {
    format!(
        r#"{{
  "Version" : "2012-10-17",
  "Id" : "key-default-1",
  "Statement" : [ {{
    "Sid" : "Enable IAM User Permissions",
    "Effect" : "Allow",
    "Principal" : {{
      "AWS" : "{}"
    }},
    "Action" : "kms:*",
    "Resource" : "*"
  }} ]
}}"#,
        account.root_arn()
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn key() -> KeyMetadata {
        let account = AccountId::parse("111122223333").unwrap();
        KeyMetadata {
            arn: KeyArn {
                region: Region::parse("us-east-1").unwrap(),
                account: account.clone(),
                key_id: KeyId::generate(false).unwrap(),
            },
            creation_date: 0,
            description: String::new(),
            key_usage: KeyUsage::EncryptDecrypt,
            key_spec: KeySpec::SymmetricDefault,
            origin: Origin::AwsKms,
            key_manager: KeyManager::Customer,
            state: KeyState::Enabled,
            deletion_date: None,
            pending_window_days: None,
            current_material: MaterialId::generate().unwrap(),
            policy: default_key_policy(&account).into(),
            public_key: Some(vec![0x30, 0x82]),
            rotation: RotationSchedule::default(),
            import: ImportState::default(),
            replication: None,
            custom_key_store: None,
            revision: 0,
        }
    }

    #[test]
    fn the_next_job_is_the_earliest_scheduled_one_and_runs_when_due() {
        let mut k = key();
        assert_eq!((k.next_job_at(), k.job_due(i64::MAX)), (None, None));
        k.rotation.enabled = true;
        k.rotation.next = Some(300);
        k.origin = Origin::External;
        k.import.materials.push(crate::imported::ImportedMaterial {
            id: k.current_material,
            state: crate::imported::MaterialState::Current,
            imported: true,
            description: None,
            expiration_model: Some(crate::imported::EXPIRES.into()),
            valid_to: Some(200),
            rotated_at: None,
        });
        assert_eq!(k.next_job_at(), Some(200));
        assert_eq!(k.job_due(199), None);
        assert_eq!(k.job_due(250), Some(KeyJob::ExpireImportedMaterial));
        k.import.materials[0].valid_to = None;
        assert_eq!(k.job_due(300), Some(KeyJob::Rotate));
        k.state = KeyState::Disabled;
        assert_eq!(k.next_job_at(), None, "disabled keys are not rotated");
        k.schedule_deletion(7, 1000).unwrap();
        assert_eq!(k.next_job_at(), k.deletion_date);
        assert_eq!(k.job_due(k.deletion_date.unwrap()), Some(KeyJob::Delete));
    }

    #[test]
    fn metadata_round_trips_through_its_stored_form() {
        let k = key();
        let text = serde_json::to_string(&k).unwrap();
        assert!(text.contains("\"public_key\":\"3082\""));
        let back: KeyMetadata = serde_json::from_str(&text).unwrap();
        assert_eq!(back, k);
    }

    #[test]
    fn disable_enable_and_crypto_checks() {
        let mut k = key();
        assert!(k.check_usable().is_ok());
        k.disable().unwrap();
        assert_eq!(k.check_usable(), Err(KmsError::key_disabled(&k.arn)));
        k.enable().unwrap();
        assert!(k.check_usable().is_ok());
    }

    #[test]
    fn deletion_schedule_and_cancel() {
        let mut k = key();
        assert!(matches!(
            k.schedule_deletion(6, 0),
            Err(KmsError::Validation(_))
        ));
        assert_eq!(k.state, KeyState::Enabled, "a refused move changes nothing");
        k.schedule_deletion(7, 1000).unwrap();
        assert_eq!(k.state, KeyState::PendingDeletion);
        assert_eq!(k.deletion_date, Some(1000 + 7 * DAY_MILLIS));
        let pending = KmsError::key_pending_deletion(&k.arn);
        assert_eq!(k.schedule_deletion(7, 0), Err(pending.clone()));
        assert_eq!(k.enable(), Err(pending.clone()));
        assert_eq!(k.check_usable(), Err(pending.clone()));
        assert_eq!(k.check_not_pending_deletion(), Err(pending));
        k.cancel_deletion().unwrap();
        assert_eq!(k.state, KeyState::Disabled);
        assert_eq!(k.deletion_date, None);
        assert_eq!(
            k.cancel_deletion(),
            Err(KmsError::key_not_pending_deletion(&k.arn))
        );
    }

    #[test]
    fn rotation_schedule_and_on_demand_limit() {
        let mut k = key();
        k.enable_rotation(90, 0).unwrap();
        assert_eq!(k.rotation.next, Some(90 * DAY_MILLIS));
        assert!(!k.rotation_due(89 * DAY_MILLIS));
        assert!(k.rotation_due(90 * DAY_MILLIS));
        let m = MaterialId::generate().unwrap();
        k.rotate(m, None, 90 * DAY_MILLIS).unwrap();
        assert_eq!(k.current_material, m);
        assert_eq!(k.rotation.next, Some(180 * DAY_MILLIS));
        for _ in 0..DEFAULT_ON_DEMAND_ROTATIONS {
            k.rotate(
                MaterialId::generate().unwrap(),
                Some(DEFAULT_ON_DEMAND_ROTATIONS),
                0,
            )
            .unwrap();
        }
        assert_eq!(
            k.rotation.next,
            Some(180 * DAY_MILLIS),
            "on demand leaves the schedule"
        );
        assert!(matches!(
            k.rotate(
                MaterialId::generate().unwrap(),
                Some(DEFAULT_ON_DEMAND_ROTATIONS),
                0
            ),
            Err(KmsError::LimitExceeded(_))
        ));
        k.disable().unwrap();
        assert!(
            !k.rotation_due(1000 * DAY_MILLIS),
            "disabled keys are not rotated"
        );
        let mut rsa = key();
        rsa.key_spec = KeySpec::Rsa2048;
        assert_eq!(
            rsa.enable_rotation(365, 0),
            Err(KmsError::rotation_unsupported_for_key_spec())
        );
    }

    #[test]
    fn enums_parse_their_wire_names() {
        for name in KeySpec::ALL {
            assert_eq!(KeySpec::parse(name).map(|s| s.as_str()), Some(*name));
        }
        assert_eq!(KeySpec::parse("HMAC_random"), None);
        assert_eq!(CustomerMasterKeySpec::Hmac256.key_spec(), KeySpec::Hmac256);
    }
}
