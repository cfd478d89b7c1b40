//! AWS KMS quotas: request rates per account and region by AWS's classes, kept with token
//! buckets, and limits on resources. Both default to AWS's values and are set in the TOML
//! config's `[quotas]` table.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

use ferrokms_core::key::KeySpec;
use serde::Deserialize;

use crate::api::operations::{Operation, Rate};
use crate::error::ApiError;

/// The `[quotas]` table of the config file. Rates are requests per second.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotaConfig {
    /// Whether request rates are enforced (by default outside `--dev` only).
    pub enabled: Option<bool>,
    /// Encrypt, Decrypt, ReEncrypt, GenerateDataKey*, GenerateMac, VerifyMac and
    /// GenerateRandom with symmetric and HMAC keys. AWS's default depends on the region.
    pub symmetric: Option<f64>,
    /// Cryptographic operations with RSA keys.
    pub rsa: Option<f64>,
    /// Cryptographic operations with ECC keys (Sign, Verify, DeriveSharedSecret).
    pub ecc: Option<f64>,
    /// Cryptographic operations with ML-DSA keys.
    pub ml_dsa: Option<f64>,
    /// Rates of single operations (`CreateKey = 5`), replacing AWS's.
    #[serde(default)]
    pub operations: BTreeMap<String, f64>,
    /// GenerateDataKeyPair and GenerateDataKeyPairWithoutPlaintext by KeyPairSpec
    /// (`RSA_4096 = 1`), replacing AWS's. They count against the symmetric rate too.
    #[serde(default)]
    pub data_key_pairs: BTreeMap<String, f64>,
    pub keys_per_region: Option<usize>,
    pub aliases_per_key: Option<usize>,
    pub grants_per_key: Option<usize>,
    pub tags_per_key: Option<usize>,
    pub key_policy_bytes: Option<usize>,
    pub custom_key_stores: Option<usize>,
    pub on_demand_rotations_per_key: Option<u32>,
}

/// Limits on what an account may keep: AWS's resource quotas ("Resource quotas", AWS KMS
/// Developer Guide, 2026: 100,000 keys per Region, 50 aliases per key, 50,000 grants per
/// key, 10 custom key stores, 25 on-demand rotations per key), each configurable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResourceQuotas {
    pub keys_per_region: usize,
    pub aliases_per_key: usize,
    pub grants_per_key: usize,
    pub tags_per_key: usize,
    pub key_policy_bytes: usize,
    /// Per account and region.
    pub custom_key_stores: usize,
    pub on_demand_rotations_per_key: u32,
}

impl Default for ResourceQuotas {
    /// AWS's.
    fn default() -> Self {
        ResourceQuotas {
            keys_per_region: 100_000,
            aliases_per_key: 50,
            grants_per_key: ferrokms_core::grant::MAX_GRANTS_PER_KEY,
            tags_per_key: ferrokms_core::tags::MAX_TAGS_PER_KEY,
            key_policy_bytes: 32 * 1024,
            custom_key_stores: 10,
            on_demand_rotations_per_key: ferrokms_core::key::DEFAULT_ON_DEMAND_ROTATIONS,
        }
    }
}

/// What a request is counted against.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum RateClass {
    Symmetric,
    Rsa,
    Ecc,
    MlDsa,
    /// An operation with a rate of its own (the control plane).
    Operation(Operation),
    /// GenerateDataKeyPair* making pairs of one KeyPairSpec.
    DataKeyPair(&'static str),
    /// An action of STS or the CloudTrail API, by name.
    Other(&'static str),
}

impl RateClass {
    /// The class of a cryptographic operation with a key of `spec`.
    pub fn of_key(spec: KeySpec) -> Self {
        let name = spec.as_str();
        if name.starts_with("RSA_") {
            RateClass::Rsa
        } else if name.starts_with("ECC_") || name.starts_with("SM2") {
            RateClass::Ecc
        } else if name.starts_with("ML_DSA_") {
            RateClass::MlDsa
        } else {
            RateClass::Symmetric
        }
    }
}

/// AWS's rate of GenerateDataKeyPair* by the spec of the pair it makes.
fn aws_data_key_pair_rate(spec: &str) -> f64 {
    match spec {
        "RSA_2048" => 20.0,
        "RSA_3072" => 4.0,
        "RSA_4096" => 1.0,
        "SM2" => 25.0,
        // ECC and Ed25519.
        _ => 100.0,
    }
}

/// AWS's shared symmetric rate in `region`.
fn aws_symmetric_rate(region: &str) -> f64 {
    match region {
        "us-east-1" | "us-west-2" | "eu-west-1" => 100_000.0,
        "us-east-2" | "ap-southeast-1" | "ap-southeast-2" | "ap-northeast-1" | "eu-central-1"
        | "eu-west-2" => 20_000.0,
        _ => 10_000.0,
    }
}

struct Bucket {
    tokens: f64,
    filled: Instant,
}

/// Buckets kept before idle (full) ones are dropped.
const MAX_BUCKETS: usize = 100_000;

pub struct Quotas {
    config: QuotaConfig,
    enforced: bool,
    pub resources: ResourceQuotas,
    buckets: Mutex<HashMap<(String, String, RateClass), Bucket>>,
}

impl QuotaConfig {
    /// The resource limits this config sets, AWS's where it sets none.
    pub fn resources(&self) -> ResourceQuotas {
        let aws = ResourceQuotas::default();
        ResourceQuotas {
            keys_per_region: self.keys_per_region.unwrap_or(aws.keys_per_region),
            aliases_per_key: self.aliases_per_key.unwrap_or(aws.aliases_per_key),
            grants_per_key: self.grants_per_key.unwrap_or(aws.grants_per_key),
            tags_per_key: self.tags_per_key.unwrap_or(aws.tags_per_key),
            key_policy_bytes: self.key_policy_bytes.unwrap_or(aws.key_policy_bytes),
            custom_key_stores: self.custom_key_stores.unwrap_or(aws.custom_key_stores),
            on_demand_rotations_per_key: self
                .on_demand_rotations_per_key
                .unwrap_or(aws.on_demand_rotations_per_key),
        }
    }
}

impl Quotas {
    /// `dev` turns rate enforcement off unless the config turns it on.
    pub fn new(config: QuotaConfig, dev: bool) -> Self {
        let resources = config.resources();
        Quotas {
            enforced: config.enabled.unwrap_or(!dev),
            config,
            resources,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    fn rate(&self, region: &str, class: &RateClass) -> f64 {
        let c = &self.config;
        match class {
            RateClass::Symmetric => c.symmetric.unwrap_or_else(|| aws_symmetric_rate(region)),
            RateClass::Rsa => c.rsa.unwrap_or(1000.0),
            RateClass::Ecc => c.ecc.unwrap_or(1000.0),
            RateClass::MlDsa => c.ml_dsa.unwrap_or(1000.0),
            RateClass::Operation(op) => {
                let spec = op.spec();
                c.operations
                    .get(spec.name)
                    .copied()
                    .unwrap_or(match spec.rate {
                        Rate::Own(r) => r,
                        // Only operations with a rate of their own are counted by name.
                        Rate::ByKey | Rate::Symmetric => f64::MAX,
                    })
            }
            RateClass::Other(name) => match c.operations.get(*name) {
                Some(rate) => *rate,
                // CloudTrail's LookupEvents quota.
                None if *name == "LookupEvents" => 2.0,
                // ExplainDecision lists a key's grants: no faster than ListGrants.
                None if *name == crate::explain::operation::NAME => {
                    self.rate(region, &RateClass::Operation(Operation::ListGrants))
                }
                // STS's request quota per account.
                None => 600.0,
            },
            RateClass::DataKeyPair(spec) => c
                .data_key_pairs
                .get(*spec)
                .copied()
                .unwrap_or_else(|| aws_data_key_pair_rate(spec)),
        }
    }

    /// Counts one request of `account` in `region` against `class`; ThrottlingException when
    /// the class's bucket is empty. A bucket holds one second of requests.
    pub fn admit(&self, account: &str, region: &str, class: RateClass) -> Result<(), ApiError> {
        if !self.enforced {
            return Ok(());
        }
        let rate = self.rate(region, &class);
        let capacity = rate.max(1.0);
        let now = Instant::now();
        let mut buckets = self.buckets.lock().map_err(|_| ApiError::Throttling)?;
        if buckets.len() >= MAX_BUCKETS {
            // Full buckets carry nothing; if every bucket is in use the table still stays
            // bounded, at the price of forgetting what they held.
            buckets.retain(|_, b| b.tokens < capacity);
            if buckets.len() >= MAX_BUCKETS {
                buckets.clear();
            }
        }
        let bucket = buckets
            .entry((account.to_owned(), region.to_owned(), class))
            .or_insert(Bucket {
                tokens: capacity,
                filled: now,
            });
        let elapsed = now.duration_since(bucket.filled).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
        bucket.filled = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            Ok(())
        } else {
            Err(ApiError::Throttling)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quotas(toml_rates: QuotaConfig) -> Quotas {
        Quotas::new(
            QuotaConfig {
                enabled: Some(true),
                ..toml_rates
            },
            false,
        )
    }

    #[test]
    fn a_bucket_holds_one_second_of_requests_per_account_and_region() {
        let q = quotas(QuotaConfig {
            operations: [("CreateKey".to_owned(), 3.0)].into(),
            ..Default::default()
        });
        for _ in 0..3 {
            q.admit(
                "111122223333",
                "us-east-1",
                RateClass::Operation(Operation::CreateKey),
            )
            .unwrap();
        }
        assert!(matches!(
            q.admit(
                "111122223333",
                "us-east-1",
                RateClass::Operation(Operation::CreateKey)
            ),
            Err(ApiError::Throttling)
        ));
        q.admit(
            "111122223333",
            "eu-west-1",
            RateClass::Operation(Operation::CreateKey),
        )
        .unwrap();
        q.admit(
            "444455556666",
            "us-east-1",
            RateClass::Operation(Operation::CreateKey),
        )
        .unwrap();
        q.admit(
            "111122223333",
            "us-east-1",
            RateClass::Operation(Operation::DescribeKey),
        )
        .unwrap();
        std::thread::sleep(std::time::Duration::from_millis(400));
        q.admit(
            "111122223333",
            "us-east-1",
            RateClass::Operation(Operation::CreateKey),
        )
        .unwrap();
    }

    #[test]
    fn keys_charge_their_class_and_defaults_are_aws_values() {
        assert_eq!(RateClass::of_key(KeySpec::Rsa2048), RateClass::Rsa);
        assert_eq!(RateClass::of_key(KeySpec::EccNistP256), RateClass::Ecc);
        assert_eq!(
            RateClass::of_key(KeySpec::SymmetricDefault),
            RateClass::Symmetric
        );
        assert_eq!(RateClass::of_key(KeySpec::Hmac256), RateClass::Symmetric);
        let q = quotas(QuotaConfig::default());
        assert_eq!(q.rate("us-east-1", &RateClass::Symmetric), 100_000.0);
        assert_eq!(q.rate("ca-central-1", &RateClass::Symmetric), 10_000.0);
        assert_eq!(
            q.rate("x", &RateClass::Operation(Operation::CreateKey)),
            5.0
        );
        assert_eq!(
            q.rate("x", &RateClass::Operation(Operation::ListGrants)),
            100.0
        );
        // ferrokms's ExplainDecision lists a key's grants: no faster than ListGrants.
        assert_eq!(
            q.rate("x", &RateClass::Other(crate::explain::operation::NAME)),
            q.rate("x", &RateClass::Operation(Operation::ListGrants))
        );
        assert_eq!(q.resources, ResourceQuotas::default());
        let dev = Quotas::new(QuotaConfig::default(), true);
        for _ in 0..100 {
            dev.admit(
                "1",
                "us-east-1",
                RateClass::Operation(Operation::GetParametersForImport),
            )
            .unwrap();
        }
    }
}
