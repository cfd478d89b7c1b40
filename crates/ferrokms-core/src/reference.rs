//! What AWS was recorded saying, for the tests of every crate: the files of
//! `shared/reference/` beside the checkout, the rows of `aws-error-messages.tsv`, and the
//! rows each `KmsError` constructor says (checked for their text here, and for their
//! `__type` and status by ferrokms-server). Built only for tests (feature `reference`).

use std::path::PathBuf;

use crate::error::KmsError;

/// `shared/reference/<name>`, found by walking up from this crate.
pub fn file(name: &str) -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared/reference").join(name);
        if candidate.exists() {
            return candidate;
        }
        assert!(
            dir.pop(),
            "shared/reference/{name} not found above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
}

/// The rows (code, message) of `aws-error-messages.tsv`: what AWS KMS was recorded
/// answering.
pub fn recorded_messages() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(file("aws-error-messages.tsv"))
        .expect("read the recorded messages");
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let mut cells = l.split('\t');
            let code = cells.next().unwrap_or_default().to_owned();
            let message = cells.next().unwrap_or_default().to_owned();
            (code, message)
        })
        .collect()
}

pub const KEY_ID: &str = "1234abcd-12ab-34cd-56ef-1234567890ab";
pub const KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const MRK_KEY_ARN: &str =
    "arn:aws:kms:us-east-1:111111111111:key/mrk-1234abcd12ab34cd56ef1234567890ab";

/// The values the TSV's placeholders stand for in these samples.
pub const PLACEHOLDERS: &[(&str, &str)] = &[
    ("<key-arn>", KEY_ARN),
    ("<mrk-key-arn>", MRK_KEY_ARN),
    ("<key-id:1>", KEY_ID),
    ("<partition>", "aws"),
    ("<region>", "us-east-1"),
    ("<secondary-region>", "eu-west-1"),
];

pub fn expand(pattern: &str) -> String {
    PLACEHOLDERS
        .iter()
        .fold(pattern.to_owned(), |m, (p, v)| m.replace(p, v))
}

/// The TSV rows a constructor says (code, message as recorded), each with the constructor
/// given the placeholders' sample values.
///
/// Rows no constructor covers:
/// - `KMSInvalidStateException New key material (id: <key-material-id>) cannot be
///   imported into KMS key <key-id:1>, because another key material (id:
///   <key-material-id:2>) is pending rotation.` and `KMSInvalidStateException No
///   available key material pending rotation for the key: <key-arn>.`: ferrokms keeps no
///   imported material pending rotation (RotateKeyOnDemand of an EXTERNAL key is refused
///   with `origin_not_valid`), so neither situation arises.
/// - The `1 validation error detected: Value '...' at '<member>' failed to satisfy
///   constraint: ...` rows of model constraints (numberOfBytes, keySpec, keyUsage,
///   macAlgorithm, keyAgreementAlgorithm, tags, plaintext): the constraint text is the
///   wire layer's, read from the model; [`validation_frame_is_aws_s`] checks the frame
///   that [`violation`] and [`KmsError::validation_errors`] put around it.
pub fn covered() -> Vec<(&'static str, &'static str, KmsError)> {
    let arn = |region: &str| format!("arn:aws:kms:{region}:111111111111:key/{KEY_ID}");
    vec![
        ("DisabledException", "<key-arn> is disabled.", KmsError::key_disabled(KEY_ARN)),
        (
            "DryRunOperationException",
            "The request would have succeeded, but the DryRun option is set.",
            KmsError::dry_run(),
        ),
        (
            "IncorrectKeyException",
            "The key ID in the request does not identify a CMK that can perform this operation.",
            KmsError::incorrect_key(),
        ),
        ("InvalidCiphertextException", "", KmsError::invalid_ciphertext()),
        (
            "InvalidKeyUsageException",
            "<key-arn> key usage is ENCRYPT_DECRYPT which is not valid for DeriveSharedSecret.",
            KmsError::invalid_key_usage(KEY_ARN, "ENCRYPT_DECRYPT", "DeriveSharedSecret"),
        ),
        (
            "InvalidKeyUsageException",
            "<key-arn> key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.",
            KmsError::invalid_key_usage(KEY_ARN, "ENCRYPT_DECRYPT", "GenerateMac"),
        ),
        (
            "InvalidKeyUsageException",
            "<key-arn> key usage is ENCRYPT_DECRYPT which is not valid for Verify.",
            KmsError::invalid_key_usage(KEY_ARN, "ENCRYPT_DECRYPT", "Verify"),
        ),
        (
            "InvalidKeyUsageException",
            "<key-arn> key usage is GENERATE_VERIFY_MAC which is not valid for Sign.",
            KmsError::invalid_key_usage(KEY_ARN, "GENERATE_VERIFY_MAC", "Sign"),
        ),
        (
            "InvalidKeyUsageException",
            "<key-arn> key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret.",
            KmsError::invalid_key_usage(KEY_ARN, "SIGN_VERIFY", "DeriveSharedSecret"),
        ),
        (
            "InvalidKeyUsageException",
            "<key-arn> key usage is SIGN_VERIFY which is not valid for Encrypt.",
            KmsError::invalid_key_usage(KEY_ARN, "SIGN_VERIFY", "Encrypt"),
        ),
        (
            "InvalidKeyUsageException",
            "Algorithm HMAC_SHA_256 is incompatible with key spec HMAC_224.",
            KmsError::algorithm_incompatible("HMAC_SHA_256", "HMAC_224"),
        ),
        (
            "InvalidKeyUsageException",
            "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.",
            KmsError::algorithm_incompatible("HMAC_SHA_512", "HMAC_256"),
        ),
        ("KMSInvalidMacException", "", KmsError::invalid_mac()),
        ("KMSInvalidSignatureException", "", KmsError::invalid_signature()),
        (
            "KMSInvalidStateException",
            "arn:<partition>:kms:<region>:111111111111:key/<key-id:1> is pending import.",
            KmsError::key_pending_import(arn("us-east-1")),
        ),
        (
            "LimitExceededException",
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: <key-arn>",
            KmsError::on_demand_rotation_limit(KEY_ARN),
        ),
        (
            "NotFoundException",
            "Invalid arn <secondary-region>",
            KmsError::invalid_arn_region("eu-west-1"),
        ),
        (
            "NotFoundException",
            "Invalid keyId '134f2428cec14b25a1ae9048164dba47'",
            KmsError::invalid_key_id("134f2428cec14b25a1ae9048164dba47"),
        ),
        (
            "NotFoundException",
            "Invalid keyId 'fake-key-id'",
            KmsError::invalid_key_id("fake-key-id"),
        ),
        (
            "NotFoundException",
            "Invalid keyId 'key_id'",
            KmsError::invalid_key_id("key_id"),
        ),
        (
            "NotFoundException",
            "Invalid keyId 'mrk-fake-key-id'",
            KmsError::invalid_key_id("mrk-fake-key-id"),
        ),
        (
            "NotFoundException",
            "Key '<key-arn>' does not exist",
            KmsError::key_not_found(KEY_ARN),
        ),
        (
            "NotFoundException",
            "Key '<mrk-key-arn>' does not exist",
            KmsError::key_not_found(MRK_KEY_ARN),
        ),
        (
            "NotFoundException",
            "Key 'arn:<partition>:kms:<region>:111111111111:key/<key-id:1>' does not exist",
            KmsError::key_not_found(arn("us-east-1")),
        ),
        (
            "NotFoundException",
            "Key 'arn:<partition>:kms:ap-southeast-1:111111111111:key/<key-id:1>' does not exist",
            KmsError::key_not_found(arn("ap-southeast-1")),
        ),
        ("TagException", "Duplicate tag keys", KmsError::duplicate_tag_keys()),
        (
            "TagException",
            "Tags beginning with aws: are reserved",
            KmsError::reserved_tag_key(),
        ),
        ("TagException", "Too many tags", KmsError::too_many_tags()),
        (
            "UnsupportedOperationException",
            "",
            KmsError::rotation_unsupported_for_key_spec(),
        ),
        (
            "UnsupportedOperationException",
            "<key-arn> origin is AWS_KMS which is not valid for this operation.",
            KmsError::origin_not_valid(KEY_ARN, "AWS_KMS"),
        ),
        (
            "UnsupportedOperationException",
            "<key-arn> origin is EXTERNAL which is not valid for this operation.",
            KmsError::origin_not_valid(KEY_ARN, "EXTERNAL"),
        ),
        (
            "UnsupportedOperationException",
            "<mrk-key-arn> is not a multi-region primary key.",
            KmsError::not_multi_region_primary(MRK_KEY_ARN),
        ),
        ("ValidationException", "", KmsError::invalid_peer_public_key()),
        (
            "ValidationException",
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES",
            KmsError::valid_to_required(),
        ),
        (
            "ValidationException",
            "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_2048 cannot encrypt data larger than 214 bytes.",
            KmsError::plaintext_too_large_for_key("RSAES_OAEP_SHA_1", "RSA_2048", 214),
        ),
        (
            "ValidationException",
            "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_3072 cannot encrypt data larger than 342 bytes.",
            KmsError::plaintext_too_large_for_key("RSAES_OAEP_SHA_1", "RSA_3072", 342),
        ),
        (
            "ValidationException",
            "Algorithm RSAES_OAEP_SHA_1 and key spec RSA_4096 cannot encrypt data larger than 470 bytes.",
            KmsError::plaintext_too_large_for_key("RSAES_OAEP_SHA_1", "RSA_4096", 470),
        ),
        (
            "ValidationException",
            "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_2048 cannot encrypt data larger than 190 bytes.",
            KmsError::plaintext_too_large_for_key("RSAES_OAEP_SHA_256", "RSA_2048", 190),
        ),
        (
            "ValidationException",
            "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_3072 cannot encrypt data larger than 318 bytes.",
            KmsError::plaintext_too_large_for_key("RSAES_OAEP_SHA_256", "RSA_3072", 318),
        ),
        (
            "ValidationException",
            "Algorithm RSAES_OAEP_SHA_256 and key spec RSA_4096 cannot encrypt data larger than 446 bytes.",
            KmsError::plaintext_too_large_for_key("RSAES_OAEP_SHA_256", "RSA_4096", 446),
        ),
        (
            "ValidationException",
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html",
            KmsError::alias_prefix_missing(),
        ),
        (
            "ValidationException",
            "Digest is invalid length for algorithm ECDSA_SHA_256.",
            KmsError::digest_length_invalid("ECDSA_SHA_256"),
        ),
        (
            "ValidationException",
            "Digest is invalid length for algorithm ECDSA_SHA_384.",
            KmsError::digest_length_invalid("ECDSA_SHA_384"),
        ),
        (
            "ValidationException",
            "Digest is invalid length for algorithm RSASSA_PKCS1_V1_5_SHA_256.",
            KmsError::digest_length_invalid("RSASSA_PKCS1_V1_5_SHA_256"),
        ),
        (
            "ValidationException",
            "Digest is invalid length for algorithm RSASSA_PKCS1_V1_5_SHA_512.",
            KmsError::digest_length_invalid("RSASSA_PKCS1_V1_5_SHA_512"),
        ),
        (
            "ValidationException",
            "Digest is invalid length for algorithm RSASSA_PSS_SHA_256.",
            KmsError::digest_length_invalid("RSASSA_PSS_SHA_256"),
        ),
        (
            "ValidationException",
            "Digest is invalid length for algorithm RSASSA_PSS_SHA_384.",
            KmsError::digest_length_invalid("RSASSA_PSS_SHA_384"),
        ),
        (
            "ValidationException",
            "Digest is invalid length for algorithm RSASSA_PSS_SHA_512.",
            KmsError::digest_length_invalid("RSASSA_PSS_SHA_512"),
        ),
        (
            "ValidationException",
            "KeyUsage KEY_AGREEMENT is not compatible with KeySpec RSA_2048",
            KmsError::key_usage_incompatible("KEY_AGREEMENT", "RSA_2048"),
        ),
        (
            "ValidationException",
            "NumberOfBytes is required.",
            KmsError::number_of_bytes_required(),
        ),
        (
            "ValidationException",
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.",
            KmsError::key_usage_required(),
        ),
    ]
}
