//! Keys a test suite names in advance (`serve --dev --seed FILE`, or `[[seed]]` in the
//! config): fixed key ids and, where given, fixed material, with their aliases, policy,
//! tags and rotation, applied at every start. A key already there is brought to what the
//! seed says; one that contradicts it (another spec, other material) stops the start. So a
//! suite gets the same ARNs on every run, and ciphertexts of one run decrypt in the next.
//!
//! Outside dev mode a seed may only make a key of Origin EXTERNAL, without material: its
//! material then comes through GetParametersForImport and ImportKeyMaterial, as any key's.

use std::collections::BTreeMap;

use base64::Engine;
use ferrokms_core::ids::{AccountId, AliasName, KeyArn, KeyId, Region};
use ferrokms_core::import::{accept_material, check_importable_spec, imported_material_id};
use ferrokms_core::key::{
    default_key_policy, KeyManager, KeyMetadata, KeySpec, KeyState, KeyUsage, Origin,
    MAX_ROTATION_PERIOD_DAYS, MIN_ROTATION_PERIOD_DAYS,
};
use ferrokms_core::material::{KeyMaterial, MaterialId, RootKeyProvider};
use ferrokms_core::policy::{PolicyDocument, PolicyKind};
use ferrokms_core::tags::{check_new_tags, Tag};
use ferrokms_store::{AliasRecord, Intent, Store, StoreError, StoredMaterial};
use serde::Deserialize;
use serde_json::json;
use zeroize::Zeroizing;

use crate::audit::Changes;
use crate::bootstrap::now_millis;
use crate::quotas::ResourceQuotas;
use crate::ServerError;

/// A seed file: `[[seed]]` tables, as in the config file.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct SeedFile {
    #[serde(default)]
    pub seed: Vec<SeedKey>,
}

/// One key to have at start. (No `Debug`: it may hold material.)
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedKey {
    /// The key id, a UUID (`1234abcd-12ab-34cd-56ef-1234567890ab`).
    pub key_id: String,
    /// Default: the dev account.
    pub account: Option<String>,
    /// Default: us-east-1.
    pub region: Option<String>,
    #[serde(default)]
    pub description: String,
    /// Default SYMMETRIC_DEFAULT.
    pub key_spec: Option<String>,
    /// Default ENCRYPT_DECRYPT for symmetric keys; required for the others, as in CreateKey.
    pub key_usage: Option<String>,
    /// AWS_KMS (default) or EXTERNAL.
    pub origin: Option<String>,
    /// Symmetric (32 bytes) or HMAC material, base64.
    pub material: Option<String>,
    /// An RSA, ECC or Ed25519 private key, PKCS#8 PEM (`-----BEGIN PRIVATE KEY-----`).
    pub private_key_pem: Option<String>,
    #[serde(default)]
    pub aliases: Vec<String>,
    /// A key policy document (JSON); default: the account's default key policy.
    pub policy: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    /// Turns automatic rotation on, with this period.
    pub rotation_period_days: Option<i32>,
    /// Default true.
    pub enabled: Option<bool>,
}

fn refuse(key_id: &str, why: impl std::fmt::Display) -> ServerError {
    ServerError::Config(format!("seed {key_id}: {why}"))
}

/// Where a seeded key's material comes from.
enum MaterialPlan {
    /// Given by the seed; its id is derived from it.
    Fixed(KeyMaterial, MaterialId),
    /// Made when the key is first created.
    Generate,
    /// Imported later (Origin EXTERNAL).
    Imported,
}

/// A seed checked and decoded: the key it describes and where its material comes from.
struct Planned {
    key: KeyMetadata,
    material: MaterialPlan,
    aliases: Vec<AliasName>,
    tags: Vec<Tag>,
    enabled: bool,
}

fn parse_enum<T>(
    key_id: &str,
    member: &str,
    value: Option<&str>,
    parse: fn(&str) -> Option<T>,
) -> Result<Option<T>, ServerError> {
    value
        .map(|v| parse(v).ok_or_else(|| refuse(key_id, format!("{member} {v:?} is not known"))))
        .transpose()
}

/// The DER inside a PEM block of `label`.
fn pem_body(key_id: &str, pem: &str, label: &str) -> Result<Zeroizing<Vec<u8>>, ServerError> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let inner = pem
        .trim()
        .strip_prefix(&begin)
        .and_then(|rest| rest.trim_end().strip_suffix(&end))
        .ok_or_else(|| {
            refuse(
                key_id,
                format!("private_key_pem is not a {label} PEM block"),
            )
        })?;
    let text: Zeroizing<String> =
        Zeroizing::new(inner.chars().filter(|c| !c.is_whitespace()).collect());
    base64::engine::general_purpose::STANDARD
        .decode(text.as_bytes())
        .map(Zeroizing::new)
        .map_err(|_| refuse(key_id, "private_key_pem is not base64"))
}

fn plan(seed: &SeedKey, dev: bool, default_account: &AccountId) -> Result<Planned, ServerError> {
    let raw_id = seed.key_id.as_str();
    let key_id = KeyId::parse(raw_id)
        .filter(|_| !raw_id.starts_with("mrk-"))
        .ok_or_else(|| {
            refuse(
                raw_id,
                "key_id must be a lowercase UUID (multi-Region keys are not seeded)",
            )
        })?;
    let account = match &seed.account {
        Some(a) => {
            AccountId::parse(a).ok_or_else(|| refuse(raw_id, "account must be 12 digits"))?
        }
        None => default_account.clone(),
    };
    let region = Region::parse(seed.region.as_deref().unwrap_or("us-east-1"))
        .ok_or_else(|| refuse(raw_id, "region is not a Region name"))?;
    let spec = parse_enum(raw_id, "key_spec", seed.key_spec.as_deref(), KeySpec::parse)?
        .unwrap_or(KeySpec::SymmetricDefault);
    let usage = match parse_enum(
        raw_id,
        "key_usage",
        seed.key_usage.as_deref(),
        KeyUsage::parse,
    )? {
        Some(u) => u,
        None if spec == KeySpec::SymmetricDefault => KeyUsage::EncryptDecrypt,
        None => return Err(refuse(raw_id, "key_usage is required for this key_spec")),
    };
    if !spec.usages().contains(&usage) {
        return Err(refuse(
            raw_id,
            format!("{} is not a usage of {}", usage.as_str(), spec.as_str()),
        ));
    }
    if spec == KeySpec::Sm2 {
        return Err(refuse(raw_id, "SM2 keys are not supported"));
    }
    let origin = parse_enum(raw_id, "origin", seed.origin.as_deref(), Origin::parse)?
        .unwrap_or(Origin::AwsKms);
    let given = match (&seed.material, &seed.private_key_pem) {
        (Some(_), Some(_)) => {
            return Err(refuse(raw_id, "give material or private_key_pem, not both"))
        }
        (Some(b64), None) => Some(Zeroizing::new(
            base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| refuse(raw_id, "material is not base64"))?,
        )),
        (None, Some(pem)) => Some(pem_body(raw_id, pem, "PRIVATE KEY")?),
        (None, None) => None,
    };
    match origin {
        Origin::External => {
            check_importable_spec(spec).map_err(|e| refuse(raw_id, e))?;
            if seed.enabled == Some(false) {
                return Err(refuse(
                    raw_id,
                    "a key of Origin EXTERNAL waits for its material; it cannot be seeded disabled",
                ));
            }
            if given.is_some() {
                return Err(refuse(
                    raw_id,
                    "a key of Origin EXTERNAL gets its material through ImportKeyMaterial",
                ));
            }
        }
        Origin::AwsKms if !dev => {
            return Err(refuse(
                raw_id,
                "outside --dev a seed makes only keys of Origin EXTERNAL, whose material is \
                 imported through GetParametersForImport and ImportKeyMaterial",
            ))
        }
        Origin::AwsKms => {}
        other => {
            return Err(refuse(
                raw_id,
                format!("origin {} is not seeded", other.as_str()),
            ))
        }
    }
    let arn = KeyArn {
        region,
        account: account.clone(),
        key_id,
    };
    let (material, public_key) = match (origin, given) {
        (Origin::External, _) => (MaterialPlan::Imported, None),
        (_, Some(bytes)) => {
            let accepted = accept_material(spec, bytes).map_err(|e| refuse(raw_id, e))?;
            // Fixed material has a fixed id, so that ciphertexts name it alike every run.
            let id = imported_material_id(key_id, &accepted.material);
            (
                MaterialPlan::Fixed(accepted.material, id),
                accepted.public_key,
            )
        }
        (_, None) => (MaterialPlan::Generate, None),
    };
    let policy = match &seed.policy {
        Some(p) => {
            PolicyDocument::parse(p, PolicyKind::Key).map_err(|e| refuse(raw_id, e))?;
            p.clone()
        }
        None => default_key_policy(&account),
    };
    let mut key = KeyMetadata {
        arn,
        creation_date: now_millis(),
        description: seed.description.clone(),
        key_usage: usage,
        key_spec: spec,
        origin,
        key_manager: KeyManager::Customer,
        state: if origin == Origin::External {
            KeyState::PendingImport
        } else {
            KeyState::Enabled
        },
        deletion_date: None,
        pending_window_days: None,
        current_material: match &material {
            MaterialPlan::Fixed(_, id) => *id,
            _ => MaterialId::generate().map_err(|_| ServerError::Random)?,
        },
        policy: policy.into(),
        public_key,
        rotation: Default::default(),
        import: Default::default(),
        replication: None,
        custom_key_store: None,
        revision: 0,
    };
    if let Some(days) = seed.rotation_period_days {
        if !(MIN_ROTATION_PERIOD_DAYS..=MAX_ROTATION_PERIOD_DAYS).contains(&days) {
            return Err(refuse(raw_id, "rotation_period_days must be 90 to 2560"));
        }
        key.enable_rotation(days, key.creation_date)
            .map_err(|e| refuse(raw_id, e))?;
    }
    let aliases = seed
        .aliases
        .iter()
        .map(|a| {
            AliasName::parse_new(a)
                .map_err(|_| refuse(raw_id, format!("{a:?} is not an alias name")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let tags: Vec<Tag> = seed
        .tags
        .iter()
        .map(|(k, v)| Tag {
            key: k.clone(),
            value: v.clone(),
        })
        .collect();
    Ok(Planned {
        key,
        material,
        aliases,
        tags,
        enabled: seed.enabled.unwrap_or(true),
    })
}

/// What applying the seeds did, for the start-up log.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct SeedReport {
    pub created: usize,
    pub unchanged: usize,
}

/// Longest description and tag parts CreateKey takes.
const MAX_DESCRIPTION: usize = 8192;
const MAX_TAG_KEY: usize = 128;
const MAX_TAG_VALUE: usize = 256;

/// Checks what CreateKey would check of a seed's input, beyond what `plan` parsed.
fn check_input(p: &Planned, quotas: &ResourceQuotas) -> Result<(), ServerError> {
    let id = p.key.id().to_string();
    if p.key.description.chars().count() > MAX_DESCRIPTION {
        return Err(refuse(&id, "description is longer than 8192 characters"));
    }
    if p.key.policy.len() > quotas.key_policy_bytes {
        return Err(refuse(&id, "policy is larger than the key policy quota"));
    }
    for tag in &p.tags {
        if tag.key.is_empty()
            || tag.key.chars().count() > MAX_TAG_KEY
            || tag.value.chars().count() > MAX_TAG_VALUE
        {
            return Err(refuse(
                &id,
                "a tag key is 1 to 128 characters, a value 0 to 256",
            ));
        }
    }
    check_new_tags(&p.tags, quotas.tags_per_key).map_err(|e| refuse(&id, e))?;
    if p.aliases.len() > quotas.aliases_per_key {
        return Err(refuse(&id, "too many aliases"));
    }
    Ok(())
}

/// Applies the seeds. Everything is checked first, so that a bad seed changes nothing;
/// then each missing key is made with its aliases and tags. A key already there is left as
/// it is: a seed makes keys, it never undoes what was done to them since (a policy
/// tightened, a key disabled, an alias removed). Every write carries its audit record.
pub async fn apply_seeds(
    store: &dyn Store,
    root: &dyn RootKeyProvider,
    changes: &Changes,
    seeds: &[SeedKey],
    dev: bool,
    default_account: &AccountId,
    quotas: &ResourceQuotas,
) -> Result<SeedReport, ServerError> {
    let planned = seeds
        .iter()
        .map(|s| plan(s, dev, default_account))
        .collect::<Result<Vec<_>, _>>()?;
    // A store holds one key per id and Region, whatever its account.
    let mut keys = std::collections::BTreeSet::new();
    let mut aliases = std::collections::BTreeSet::new();
    for p in &planned {
        let id = p.key.id().to_string();
        if !keys.insert((p.key.region().to_string(), id.clone())) {
            return Err(refuse(&id, "the key is seeded twice"));
        }
        for alias in &p.aliases {
            let scope = (
                p.key.region().to_string(),
                p.key.account().to_string(),
                alias.clone(),
            );
            if !aliases.insert(scope) {
                return Err(refuse(&id, format!("{} is seeded twice", alias.as_str())));
            }
        }
        check_input(p, quotas)?;
    }
    // Every contradiction is found before anything is written.
    let mut missing = Vec::new();
    let mut new_keys: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in &planned {
        match store.key(p.key.region(), &p.key.id()).await? {
            Some(existing) => check_consistent(store, p, &existing).await?,
            None => {
                for alias in &p.aliases {
                    if store
                        .alias(p.key.region(), p.key.account(), alias)
                        .await?
                        .is_some()
                    {
                        return Err(refuse(
                            &p.key.id().to_string(),
                            format!("{} already names another key", alias.as_str()),
                        ));
                    }
                }
                *new_keys
                    .entry((p.key.region().to_string(), p.key.account().to_string()))
                    .or_default() += 1;
                missing.push(p);
            }
        }
    }
    for p in &missing {
        let count = store.key_count(p.key.region(), p.key.account()).await?;
        let adding = new_keys
            .get(&(p.key.region().to_string(), p.key.account().to_string()))
            .copied()
            .unwrap_or(0);
        if count + adding > quotas.keys_per_region {
            return Err(refuse(
                &p.key.id().to_string(),
                "the account's key quota would be exceeded",
            ));
        }
    }
    let mut report = SeedReport {
        created: 0,
        unchanged: planned.len() - missing.len(),
    };
    for p in missing {
        if create(store, root, changes, p, quotas).await? {
            report.created += 1;
        } else {
            report.unchanged += 1;
        }
    }
    Ok(report)
}

fn record(
    changes: &Changes,
    event: &str,
    key: &KeyMetadata,
    parameters: serde_json::Value,
) -> std::sync::Arc<Intent> {
    changes.record_from(
        "kms.amazonaws.com",
        event,
        key.account().as_str(),
        parameters,
        ("AWS::KMS::Key", &key.arn.to_string()),
    )
}

/// Makes a seeded key with its aliases; false if another node made it meanwhile (then
/// checked against its seed, as any key already there).
async fn create(
    store: &dyn Store,
    root: &dyn RootKeyProvider,
    changes: &Changes,
    p: &Planned,
    quotas: &ResourceQuotas,
) -> Result<bool, ServerError> {
    let mut key = p.key.clone();
    if !p.enabled {
        key.disable()
            .map_err(|e| refuse(&key.id().to_string(), e))?;
    }
    let generated;
    let material = match &p.material {
        MaterialPlan::Fixed(material, _) => Some(material),
        MaterialPlan::Generate => {
            generated = crate::api::generate_off_runtime(key.key_spec)
                .await
                .map_err(|e| refuse(&key.id().to_string(), e))?;
            key.public_key.clone_from(&generated.public_key);
            Some(&generated.material)
        }
        MaterialPlan::Imported => None,
    };
    let stored: Vec<StoredMaterial> = match material {
        Some(material) => vec![StoredMaterial {
            material_id: key.current_material,
            wrapped: root
                .wrap_material(&key.arn, &key.current_material, material)
                .map_err(|e| refuse(&key.id().to_string(), e))?,
            created: key.creation_date,
            rotation_type: None,
        }],
        None => Vec::new(),
    };
    let tags: BTreeMap<&str, &str> = p
        .tags
        .iter()
        .map(|t| (t.key.as_str(), t.value.as_str()))
        .collect();
    let audit = record(
        changes,
        "CreateKey",
        &key,
        json!({
            "keySpec": key.key_spec.as_str(),
            "keyUsage": key.key_usage.as_str(),
            "origin": key.origin.as_str(),
            "description": key.description,
            "policy": &*key.policy,
            "tags": tags,
            "enabled": key.state != KeyState::Disabled,
            "rotationPeriodInDays": key.rotation.period_days,
            "seeded": true,
        }),
    );
    match store.create_key(&audit, &key, &stored, &p.tags).await {
        Ok(()) => {}
        Err(StoreError::AlreadyExists) => {
            let existing = store
                .key(key.region(), &key.id())
                .await?
                .ok_or_else(|| refuse(&key.id().to_string(), "the key vanished while made"))?;
            check_consistent(store, p, &existing).await?;
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    let now = now_millis();
    for alias in &p.aliases {
        let audit = record(
            changes,
            "CreateAlias",
            &key,
            json!({ "aliasName": alias.as_str(), "targetKeyId": key.id().to_string(), "seeded": true }),
        );
        let record = AliasRecord {
            region: key.region().clone(),
            account: key.account().clone(),
            name: alias.clone(),
            target: key.id(),
            created: now,
            updated: now,
        };
        store
            .create_alias(&audit, &record, quotas.aliases_per_key)
            .await
            .map_err(|e| match e {
                StoreError::AlreadyExists => refuse(
                    &key.id().to_string(),
                    format!("{} was made for another key meanwhile", alias.as_str()),
                ),
                e => e.into(),
            })?;
    }
    Ok(true)
}

/// Refuses a stored key that contradicts its seed in what cannot change.
async fn check_consistent(
    store: &dyn Store,
    p: &Planned,
    existing: &KeyMetadata,
) -> Result<(), ServerError> {
    let id = existing.id().to_string();
    let fixed = |k: &KeyMetadata| {
        (
            k.account().clone(),
            k.key_spec,
            k.key_usage,
            k.origin,
            k.key_manager,
        )
    };
    if fixed(existing) != fixed(&p.key) {
        return Err(refuse(
            &id,
            "the stored key has another account, spec, usage, origin or manager than its seed",
        ));
    }
    if let MaterialPlan::Fixed(_, material_id) = &p.material {
        let stored = store
            .material(existing.region(), &existing.id(), material_id)
            .await?;
        if stored.is_none() {
            return Err(refuse(
                &id,
                "the stored key has other material than its seed",
            ));
        }
    }
    Ok(())
}
