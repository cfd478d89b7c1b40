//! Encryption operations: Encrypt, Decrypt, ReEncrypt (symmetric and RSA-OAEP keys),
//! GenerateDataKey(WithoutPlaintext), GenerateDataKeyPair(WithoutPlaintext) and
//! GenerateRandom.

use ferrokms_core::asymmetric;
use ferrokms_core::ciphertext::{self, BlobHeader, ExternalBlob};
use ferrokms_core::context::{EncryptionContext, MAX_CONTEXT_BYTES};
use ferrokms_core::key::{
    DataKeyPairSpec, DataKeySpec, EncryptionAlgorithm, KeyMetadata, KeyUsage,
};
use ferrokms_core::material::{KeyMaterial, MaterialId};
use ferrokms_core::{random, KmsError};
use serde_json::{json, Value};
use zeroize::Zeroizing;

use super::authorize::{authorize_iam, authorize_key, AuthorizedKey, Conditions, Named};
use super::operations::On;
use super::resolve::{peek_key_id, resolve_key};
use super::{store_failure, Call};
use crate::error::ApiError;
use crate::quotas::RateClass;
use crate::wire::{blob, Input};

const MAX_PLAINTEXT: usize = 4096;
const MAX_CIPHERTEXT: usize = 6144;
const MAX_DATA_KEY_BYTES: i64 = 1024;

fn read_context(input: &mut Input, member: &str) -> Result<EncryptionContext, ApiError> {
    let context = EncryptionContext::new(input.string_map(member)?.unwrap_or_default());
    if context.size_bytes() > MAX_CONTEXT_BYTES {
        return Err(KmsError::encryption_context_too_large().into());
    }
    Ok(context)
}

/// Grant tokens let a new grant be used before it propagates; this store is strongly
/// consistent, so a token only needs to be one ferrokms could have issued.
pub(super) fn read_grant_tokens(input: &mut Input) -> Result<(), ApiError> {
    let tokens = input.string_list("GrantTokens", 1, 8192, 10)?;
    for token in tokens.iter().flatten() {
        if ferrokms_core::grant::parse_grant_token(token).is_none() {
            return Err(KmsError::invalid_grant_token().into());
        }
    }
    Ok(())
}

fn read_algorithm(
    input: &mut Input,
    member: &str,
) -> Result<Option<EncryptionAlgorithm>, ApiError> {
    input.enumeration(member, EncryptionAlgorithm::parse, EncryptionAlgorithm::ALL)
}

pub(super) fn refuse_recipient(input: &mut Input) -> Result<(), ApiError> {
    if input.present("Recipient") {
        return Err(KmsError::recipient_unsupported().into());
    }
    Ok(())
}

/// Reads `DryRun` and `DryRunModifiers`; true in the second place means IGNORE_CIPHERTEXT.
pub(super) fn read_dry_run(
    input: &mut Input,
    modifiers_allowed: bool,
) -> Result<(bool, bool), ApiError> {
    let dry_run = input.boolean("DryRun")?.unwrap_or(false);
    let mut ignore_ciphertext = false;
    if modifiers_allowed {
        if let Some(mods) = input.string_list("DryRunModifiers", 0, 64, usize::MAX)? {
            for m in mods {
                if m == "IGNORE_CIPHERTEXT" {
                    ignore_ciphertext = true;
                } else {
                    return Err(KmsError::dry_run_modifier_invalid(m).into());
                }
            }
        }
    }
    Ok((dry_run, ignore_ciphertext && dry_run))
}

/// Reads DryRun, DryRunModifiers and CiphertextBlob. `None` for the ciphertext means the
/// IGNORE_CIPHERTEXT dry run: only whether the caller may use the key is to be checked.
fn read_ciphertext(input: &mut Input) -> Result<(bool, Option<Vec<u8>>), ApiError> {
    let (dry_run, ignore_ciphertext) = read_dry_run(input, true)?;
    if ignore_ciphertext {
        input.blob("CiphertextBlob", 1, MAX_CIPHERTEXT)?;
        return Ok((dry_run, None));
    }
    Ok((
        dry_run,
        Some(input.required_blob("CiphertextBlob", 1, MAX_CIPHERTEXT)?),
    ))
}

/// A key may encrypt or decrypt only if it is usable, is for encryption, and the algorithm
/// is one its spec supports.
fn check_encryption_key(
    key: &KeyMetadata,
    operation: &str,
    algorithm: Option<EncryptionAlgorithm>,
) -> Result<(), KmsError> {
    // AWS checks usage before state: a disabled key of the wrong kind is reported as such.
    key.check_usage(KeyUsage::EncryptDecrypt, operation)?;
    key.check_usable()?;
    let algorithm = algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
    if !key.encryption_algorithms().contains(&algorithm) {
        return Err(KmsError::algorithm_incompatible(
            algorithm.as_str(),
            key.key_spec.as_str(),
        ));
    }
    Ok(())
}

/// The condition keys of an encryption request. An encryption context (which grant
/// constraints bind) exists only for symmetric encryption; RSA refuses one.
fn crypto_conditions(context: &EncryptionContext, algorithm: EncryptionAlgorithm) -> Conditions {
    let conditions =
        Conditions::none().with("kms:EncryptionAlgorithm", vec![algorithm.as_str().into()]);
    if algorithm == EncryptionAlgorithm::SymmetricDefault {
        conditions.encryption_context(context)
    } else {
        conditions
    }
}

/// Data keys and data key pairs are sealed under a symmetric encryption key only.
fn check_data_key_wrapping_key(key: &KeyMetadata, operation: &str) -> Result<(), KmsError> {
    key.check_usage(KeyUsage::EncryptDecrypt, operation)?;
    if key.key_spec != ferrokms_core::key::KeySpec::SymmetricDefault {
        return Err(KmsError::data_key_needs_symmetric_key());
    }
    key.check_usable()
}

/// A version of a key's material, unwrapped. The key was authorized in this call, so its
/// state and policy are current; the material itself never changes.
pub(super) async fn load_material(
    call: &Call<'_>,
    key: &AuthorizedKey,
    material_id: &MaterialId,
) -> Result<std::sync::Arc<KeyMaterial>, ApiError> {
    // Imported material that was deleted or expired is unusable even where this node's
    // cache still holds it.
    if !key.material_usable(material_id) {
        return Err(KmsError::key_pending_import(&key.arn).into());
    }
    let cache = &call.services.materials;
    if let Some(material) = cache.get(&key.arn, material_id) {
        return Ok(material);
    }
    let stored = call
        .services
        .store
        .material(key.region(), &key.id(), material_id)
        .await
        .map_err(store_failure)?
        // A blob naming material this key never had cannot be valid ciphertext for it.
        .ok_or_else(KmsError::invalid_ciphertext)?;
    let material = std::sync::Arc::new(call.services.root.unwrap_material(
        &key.arn,
        material_id,
        &stored.wrapped,
    )?);
    cache.insert(&key.arn, *material_id, material.clone());
    Ok(material)
}

async fn seal(
    call: &Call<'_>,
    key: &AuthorizedKey,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>, ApiError> {
    if key.material_in_token() {
        let token = super::custom_key_stores::token_key(call, key).await?;
        return Ok(ciphertext::seal_in_token(
            &token,
            key.id(),
            key.current_material,
            context,
            plaintext,
        )?);
    }
    let material = load_material(call, key, &key.current_material).await?;
    let blob = ciphertext::seal(
        &material,
        key.id(),
        key.current_material,
        context,
        plaintext,
    )?;
    if key.is_external() {
        return super::custom_key_stores::seal_outer(call, key, &blob).await;
    }
    Ok(blob)
}

/// Finds the key a blob names and checks it against the caller's `KeyId`, if given.
async fn key_for_blob(
    call: &Call<'_>,
    blob_key: ferrokms_core::ids::KeyId,
    requested: Option<&str>,
    on: On,
    conditions: &Conditions,
) -> Result<AuthorizedKey, ApiError> {
    match requested {
        Some(raw) => {
            let key = resolve_key(call, raw, on, conditions).await?;
            if key.id() != blob_key {
                return Err(KmsError::incorrect_key().into());
            }
            Ok(key)
        }
        None => {
            let key = call
                .services
                .store
                .key(call.request.region(), &blob_key)
                .await
                .map_err(store_failure)?
                .ok_or_else(KmsError::invalid_ciphertext)?;
            call.touched(key.arn.to_string());
            super::resolve::charge_crypto(call, on, &key)?;
            authorize_key(call, key, on, Named::ByCiphertext, conditions).await
        }
    }
}

async fn open(
    call: &Call<'_>,
    key: &AuthorizedKey,
    header: &BlobHeader,
    blob: &[u8],
    context: &EncryptionContext,
) -> Result<Zeroizing<Vec<u8>>, ApiError> {
    refuse_destination(key)?;
    if key.material_in_token() {
        if header.material_id != key.current_material {
            return Err(KmsError::invalid_ciphertext().into());
        }
        let token = super::custom_key_stores::token_key(call, key).await?;
        return Ok(ciphertext::open_in_token(&token, header, blob, context)?);
    }
    let material = load_material(call, key, &header.material_id).await?;
    Ok(ciphertext::open(&material, header, blob, context)?)
}

/// A key authorized only as ReEncrypt's destination (kms:ReEncryptTo) never decrypts.
fn refuse_destination(key: &AuthorizedKey) -> Result<(), ApiError> {
    if key.on() == On::DestinationKey {
        tracing::error!(key = %key.arn, "a destination key was asked to decrypt");
        return Err(KmsError::internal().into());
    }
    Ok(())
}

/// KMS binds an encryption context only to symmetric ciphertexts; accepting one for RSA-OAEP
/// would suggest a protection that is not there.
fn refuse_context_for_asymmetric(context: &EncryptionContext) -> Result<(), KmsError> {
    if context.entries().is_empty() {
        Ok(())
    } else {
        Err(KmsError::encryption_context_with_asymmetric_key())
    }
}

/// Encrypts under a key already checked with [`check_encryption_key`].
async fn encrypt_under(
    call: &Call<'_>,
    key: &AuthorizedKey,
    algorithm: EncryptionAlgorithm,
    context: &EncryptionContext,
    plaintext: &[u8],
) -> Result<Vec<u8>, ApiError> {
    if algorithm == EncryptionAlgorithm::SymmetricDefault {
        return seal(call, key, context, plaintext).await;
    }
    refuse_context_for_asymmetric(context)?;
    let public = key.public_key.as_deref().ok_or_else(KmsError::internal)?;
    Ok(asymmetric::rsa_encrypt(
        key.key_spec,
        public,
        algorithm,
        plaintext,
    )?)
}

/// What a decryption recovered, and with which key and material version.
struct Opened {
    key: AuthorizedKey,
    plaintext: Zeroizing<Vec<u8>>,
    material_id: MaterialId,
}

/// Decrypts a symmetric blob (the key may be named by the blob) or, with an RSA algorithm,
/// a raw RSA-OAEP ciphertext under the named key.
async fn decrypt_ciphertext(
    call: &Call<'_>,
    requested: Option<&str>,
    algorithm: Option<EncryptionAlgorithm>,
    context: &EncryptionContext,
    blob: &[u8],
    on: On,
    conditions: Conditions,
) -> Result<Opened, ApiError> {
    // Decrypt or ReEncrypt, as key usage errors name it.
    let operation = call.operation.name;
    let algorithm = algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
    if algorithm == EncryptionAlgorithm::SymmetricDefault && ExternalBlob::is_external(blob) {
        let outer = ExternalBlob::parse(blob)?;
        let key = key_for_blob(call, outer.key_id, requested, on, &conditions).await?;
        check_encryption_key(&key, operation, Some(algorithm))?;
        if !key.is_external() || outer.material_id != key.current_material {
            return Err(KmsError::invalid_ciphertext().into());
        }
        let inner = super::custom_key_stores::open_outer(call, &key, &outer).await?;
        let header = ciphertext::parse_header(&inner)?;
        if header.key_id != key.id() || header.material_id != outer.material_id {
            return Err(KmsError::invalid_ciphertext().into());
        }
        let plaintext = open(call, &key, &header, &inner, context).await?;
        return Ok(Opened {
            key,
            plaintext,
            material_id: header.material_id,
        });
    }
    if algorithm == EncryptionAlgorithm::SymmetricDefault {
        let header = ciphertext::parse_header(blob)?;
        let key = key_for_blob(call, header.key_id, requested, on, &conditions).await?;
        check_encryption_key(&key, operation, Some(algorithm))?;
        // An external key store key's ciphertexts always carry the outer layer.
        if key.is_external() {
            return Err(KmsError::invalid_ciphertext().into());
        }
        let plaintext = open(call, &key, &header, blob, context).await?;
        return Ok(Opened {
            key,
            plaintext,
            material_id: header.material_id,
        });
    }
    let raw =
        requested.ok_or_else(|| KmsError::key_id_required_for_algorithm(algorithm.as_str()))?;
    let key = resolve_key(call, raw, on, &conditions).await?;
    check_encryption_key(&key, operation, Some(algorithm))?;
    refuse_context_for_asymmetric(context)?;
    refuse_destination(&key)?;
    let material = load_material(call, &key, &key.current_material).await?;
    let plaintext = asymmetric::rsa_decrypt(&material, algorithm, blob)?;
    Ok(Opened {
        material_id: key.current_material,
        key,
        plaintext,
    })
}

pub async fn encrypt(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let plaintext = Zeroizing::new(input.required_blob("Plaintext", 1, MAX_PLAINTEXT)?);
    let context = read_context(&mut input, "EncryptionContext")?;
    read_grant_tokens(&mut input)?;
    let algorithm = read_algorithm(&mut input, "EncryptionAlgorithm")?;
    let (dry_run, _) = read_dry_run(&mut input, false)?;
    input.finish()?;
    let conditions = crypto_conditions(
        &context,
        algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault),
    );
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    check_encryption_key(&key, "Encrypt", algorithm)?;
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    let algorithm = algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
    let ciphertext = encrypt_under(call, &key, algorithm, &context, &plaintext).await?;
    Ok(json!({
        "CiphertextBlob": blob(&ciphertext),
        "KeyId": key.arn.to_string(),
        "EncryptionAlgorithm": algorithm.as_str(),
    }))
}

pub async fn decrypt(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let (dry_run, ciphertext) = read_ciphertext(&mut input)?;
    let context = read_context(&mut input, "EncryptionContext")?;
    read_grant_tokens(&mut input)?;
    let key_id = input.string("KeyId", 1, 2048)?;
    let algorithm = read_algorithm(&mut input, "EncryptionAlgorithm")?;
    refuse_recipient(&mut input)?;
    input.finish()?;

    let Some(ciphertext) = ciphertext else {
        let key_id = key_id.ok_or_else(KmsError::key_id_required_ignoring_ciphertext)?;
        let conditions = crypto_conditions(
            &context,
            algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault),
        );
        let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
        check_encryption_key(&key, "Decrypt", algorithm)?;
        return Err(KmsError::dry_run().into());
    };
    let conditions = crypto_conditions(
        &context,
        algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault),
    );
    let opened = decrypt_ciphertext(
        call,
        key_id.as_deref(),
        algorithm,
        &context,
        &ciphertext,
        On::Key,
        conditions,
    )
    .await?;
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    let mut out = json!({
        "KeyId": opened.key.arn.to_string(),
        "Plaintext": blob(&opened.plaintext),
        "EncryptionAlgorithm": algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault).as_str(),
    });
    add_material_id(&mut out, "KeyMaterialId", &opened.key, &opened.material_id);
    Ok(out)
}

/// Names the material a symmetric encryption key used; AWS gives no material id for the
/// other kinds of key (an RSA key's Decrypt or ReEncrypt has none).
fn add_material_id(out: &mut Value, field: &str, key: &KeyMetadata, material: &MaterialId) {
    if key.key_spec == ferrokms_core::key::KeySpec::SymmetricDefault {
        out[field] = json!(material.to_string());
    }
}

pub async fn re_encrypt(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let (dry_run, ciphertext) = read_ciphertext(&mut input)?;
    let source_context = read_context(&mut input, "SourceEncryptionContext")?;
    let source_key_id = input.string("SourceKeyId", 1, 2048)?;
    let destination_key_id = input.required_string("DestinationKeyId", 1, 2048)?;
    let destination_context = read_context(&mut input, "DestinationEncryptionContext")?;
    let source_algorithm = read_algorithm(&mut input, "SourceEncryptionAlgorithm")?;
    let destination_algorithm = read_algorithm(&mut input, "DestinationEncryptionAlgorithm")?;
    read_grant_tokens(&mut input)?;
    input.finish()?;

    // kms:ReEncryptOnSameKey: whether the ciphertext's key (or the named source key) is the
    // destination key, known before either is authorized.
    let source_id = match (&ciphertext, &source_key_id) {
        (Some(blob), _) if ExternalBlob::is_external(blob) => {
            ExternalBlob::parse(blob).ok().map(|b| b.key_id)
        }
        (Some(blob), None) => ciphertext::parse_header(blob).ok().map(|h| h.key_id),
        (_, Some(raw)) => peek_key_id(call, raw).await?,
        (None, None) => None,
    };
    let destination_id = peek_key_id(call, &destination_key_id).await?;
    let same_key = (source_id.is_some() && source_id == destination_id).to_string();
    let destination = resolve_key(
        call,
        &destination_key_id,
        On::DestinationKey,
        &crypto_conditions(
            &destination_context,
            destination_algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault),
        )
        .with("kms:ReEncryptOnSameKey", vec![same_key.clone()]),
    )
    .await?;
    check_encryption_key(&destination, "ReEncrypt", destination_algorithm)?;
    let source_conditions = crypto_conditions(
        &source_context,
        source_algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault),
    )
    .with("kms:ReEncryptOnSameKey", vec![same_key]);
    let Some(ciphertext) = ciphertext else {
        let raw = source_key_id.ok_or_else(KmsError::source_key_id_required_ignoring_ciphertext)?;
        let source = resolve_key(call, &raw, On::SourceKey, &source_conditions).await?;
        check_encryption_key(&source, "ReEncrypt", source_algorithm)?;
        return Err(KmsError::dry_run().into());
    };
    let opened = decrypt_ciphertext(
        call,
        source_key_id.as_deref(),
        source_algorithm,
        &source_context,
        &ciphertext,
        On::SourceKey,
        source_conditions,
    )
    .await?;
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    let destination_algorithm =
        destination_algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault);
    let sealed = encrypt_under(
        call,
        &destination,
        destination_algorithm,
        &destination_context,
        &opened.plaintext,
    )
    .await?;
    let mut out = json!({
        "CiphertextBlob": blob(&sealed),
        "SourceKeyId": opened.key.arn.to_string(),
        "KeyId": destination.arn.to_string(),
        "SourceEncryptionAlgorithm": source_algorithm.unwrap_or(EncryptionAlgorithm::SymmetricDefault).as_str(),
        "DestinationEncryptionAlgorithm": destination_algorithm.as_str(),
    });
    add_material_id(
        &mut out,
        "SourceKeyMaterialId",
        &opened.key,
        &opened.material_id,
    );
    add_material_id(
        &mut out,
        "DestinationKeyMaterialId",
        &destination,
        &destination.current_material,
    );
    Ok(out)
}

pub async fn generate_data_key(
    call: &Call<'_>,
    mut input: Input,
    with_plaintext: bool,
) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let context = read_context(&mut input, "EncryptionContext")?;
    let number_of_bytes = input.integer("NumberOfBytes", 1, MAX_DATA_KEY_BYTES)?;
    let spec = input.enumeration("KeySpec", DataKeySpec::parse, DataKeySpec::ALL)?;
    read_grant_tokens(&mut input)?;
    if with_plaintext {
        refuse_recipient(&mut input)?;
    }
    let (dry_run, _) = read_dry_run(&mut input, false)?;
    input.finish()?;
    let length = match (number_of_bytes, spec) {
        (Some(n), None) => usize::try_from(n).map_err(|_| KmsError::internal())?,
        (None, Some(spec)) => spec.bytes(),
        _ => return Err(KmsError::data_key_size_unspecified().into()),
    };
    let operation = if with_plaintext {
        "GenerateDataKey"
    } else {
        "GenerateDataKeyWithoutPlaintext"
    };
    let conditions = crypto_conditions(&context, EncryptionAlgorithm::SymmetricDefault);
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    check_data_key_wrapping_key(&key, operation)?;
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    let data_key = random::secret_bytes(length)?;
    let sealed = seal(call, &key, &context, &data_key).await?;
    let mut out = json!({
        "CiphertextBlob": blob(&sealed),
        "KeyId": key.arn.to_string(),
        "KeyMaterialId": key.current_material.to_string(),
    });
    if with_plaintext {
        out["Plaintext"] = blob(&data_key);
    }
    Ok(out)
}

pub async fn generate_data_key_pair(
    call: &Call<'_>,
    mut input: Input,
    with_plaintext: bool,
) -> Result<Value, ApiError> {
    let key_id = input.required_string("KeyId", 1, 2048)?;
    let context = read_context(&mut input, "EncryptionContext")?;
    let spec = input.required_enumeration(
        "KeyPairSpec",
        DataKeyPairSpec::parse,
        DataKeyPairSpec::ALL,
        DataKeyPairSpec::Rsa2048,
    )?;
    read_grant_tokens(&mut input)?;
    if with_plaintext {
        refuse_recipient(&mut input)?;
    }
    let (dry_run, _) = read_dry_run(&mut input, false)?;
    input.finish()?;
    call.services.quotas.admit(
        call.request.principal().account().as_str(),
        call.request.region().as_str(),
        RateClass::DataKeyPair(spec.as_str()),
    )?;
    let operation = if with_plaintext {
        "GenerateDataKeyPair"
    } else {
        "GenerateDataKeyPairWithoutPlaintext"
    };
    // The pair's private key is sealed under the encryption context like any data key, so
    // kms:EncryptionContext:* conditions and grant constraints see it.
    let conditions = crypto_conditions(&context, EncryptionAlgorithm::SymmetricDefault)
        .with("kms:DataKeyPairSpec", vec![spec.as_str().into()]);
    let key = resolve_key(call, &key_id, On::Key, &conditions).await?;
    check_data_key_wrapping_key(&key, operation)?;
    if key.custom_key_store.is_some() {
        // AWS does not make data key pairs under keys in custom key stores.
        return Err(key.origin_not_valid().into());
    }
    if spec == DataKeyPairSpec::Sm2 {
        return Err(KmsError::key_pair_spec_unsupported(spec.as_str()).into());
    }
    ferrokms_core::fips::check_key_spec(spec.key_spec())?;
    if dry_run {
        return Err(KmsError::dry_run().into());
    }
    let pair = super::keys::generate_off_runtime(spec.key_spec()).await?;
    let private = asymmetric::private_key_der(&pair.material);
    let sealed = seal(call, &key, &context, private).await?;
    let public = pair.public_key.as_deref().ok_or_else(KmsError::internal)?;
    let mut out = json!({
        "PrivateKeyCiphertextBlob": blob(&sealed),
        "PublicKey": blob(public),
        "KeyId": key.arn.to_string(),
        "KeyPairSpec": spec.as_str(),
        "KeyMaterialId": key.current_material.to_string(),
    });
    if with_plaintext {
        out["PrivateKeyPlaintext"] = blob(private);
    }
    Ok(out)
}

pub async fn generate_random(call: &Call<'_>, mut input: Input) -> Result<Value, ApiError> {
    let number_of_bytes = input.integer("NumberOfBytes", 1, MAX_DATA_KEY_BYTES)?;
    let custom_key_store = input.string("CustomKeyStoreId", 1, 64)?;
    refuse_recipient(&mut input)?;
    input.finish()?;
    let n = number_of_bytes.ok_or_else(KmsError::number_of_bytes_required)?;
    authorize_iam(call, On::Account, "*", None, &Conditions::none())?;
    let n = usize::try_from(n).map_err(|_| KmsError::internal())?;
    if let Some(id) = custom_key_store {
        let bytes = super::custom_key_stores::random_in_store(call, &id, n).await?;
        return Ok(json!({ "Plaintext": blob(&bytes) }));
    }
    let bytes = random::secret_bytes(n)?;
    Ok(json!({ "Plaintext": blob(&bytes) }))
}
