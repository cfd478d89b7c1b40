//! The errors of the KMS domain: each variant is an AWS KMS error shape, the text is its message.
//!
//! Every message has its constructor here, named for what happened, with the text beside it:
//! a message is written once, and the unit test below holds the ones AWS was recorded saying
//! against `shared/reference/aws-error-messages.tsv`.

use std::fmt::Display;

use crate::context::MAX_CONTEXT_BYTES;
use crate::grant::GRANT_OPERATIONS;
use crate::ids::ALIAS_PATTERN;
use crate::key::{MAX_PENDING_WINDOW_DAYS, MIN_PENDING_WINDOW_DAYS};
use crate::material::SYMMETRIC_MATERIAL_BYTES;

/// An error a KMS operation returns to its caller. The wire layer maps each variant to the
/// AWS `__type` and HTTP status; the message is what AWS would say and never holds secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KmsError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Disabled(String),
    #[error("{0}")]
    InvalidState(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    InvalidCiphertext(String),
    #[error("{0}")]
    IncorrectKey(String),
    #[error("{0}")]
    InvalidAliasName(String),
    #[error("{0}")]
    InvalidArn(String),
    #[error("{0}")]
    InvalidMarker(String),
    #[error("{0}")]
    InvalidKeyUsage(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Tag(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    UnsupportedOperation(String),
    #[error("{0}")]
    CustomKeyStoreNotFound(String),
    #[error("{0}")]
    CustomKeyStoreInvalidState(String),
    #[error("{0}")]
    CustomKeyStoreNameInUse(String),
    #[error("{0}")]
    CustomKeyStoreHasCMKs(String),
    #[error("{0}")]
    CloudHsmClusterNotFound(String),
    #[error("{0}")]
    CloudHsmClusterInUse(String),
    #[error("{0}")]
    CloudHsmClusterNotRelated(String),
    #[error("{0}")]
    IncorrectTrustAnchor(String),
    #[error("{0}")]
    XksProxyUriInUse(String),
    #[error("{0}")]
    XksProxyUriUnreachable(String),
    #[error("{0}")]
    XksProxyIncorrectAuthenticationCredential(String),
    #[error("{0}")]
    XksProxyInvalidResponse(String),
    #[error("{0}")]
    XksProxyInvalidConfiguration(String),
    #[error("{0}")]
    XksKeyNotFound(String),
    #[error("{0}")]
    XksKeyInvalidConfiguration(String),
    #[error("{0}")]
    XksKeyAlreadyInUse(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    AccessDenied(String),
    #[error("{0}")]
    DryRunOperation(String),
    #[error("{0}")]
    InvalidImportToken(String),
    #[error("{0}")]
    ExpiredImportToken(String),
    #[error("{0}")]
    IncorrectKeyMaterial(String),
    #[error("{0}")]
    InvalidGrantToken(String),
    #[error("{0}")]
    InvalidGrantId(String),
    /// Verify found the signature wrong.
    #[error("{0}")]
    InvalidSignature(String),
    /// VerifyMac found the MAC wrong.
    #[error("{0}")]
    InvalidMac(String),
    /// Something went wrong on our side; the message is generic on purpose.
    #[error("{0}")]
    Internal(String),
}

/// One violated constraint, as a ValidationException lists it: `Value '<value>' at
/// '<member>' failed to satisfy constraint: <constraint>`, or `Value at ...` when the value is
/// not shown (blobs and secrets never are).
pub fn violation(value: Option<&str>, member: impl Display, constraint: impl Display) -> String {
    match value {
        Some(v) => format!("Value '{v}' at '{member}' failed to satisfy constraint: {constraint}"),
        None => format!("Value at '{member}' failed to satisfy constraint: {constraint}"),
    }
}

/// A required member that is absent, as a ValidationException lists it.
pub fn null_violation(member: impl Display) -> String {
    format!("Value null at '{member}' failed to satisfy constraint: Member must not be null")
}

impl KmsError {
    pub fn internal() -> Self {
        KmsError::Internal("An internal error occurred.".into())
    }

    pub fn invalid_ciphertext() -> Self {
        // AWS says nothing about which part of a ciphertext failed; neither do we.
        KmsError::InvalidCiphertext(String::new())
    }

    pub fn dry_run() -> Self {
        KmsError::DryRunOperation(
            "The request would have succeeded, but the DryRun option is set.".into(),
        )
    }

    // Validation messages that list violated constraints.

    /// Every violated constraint of a request (see [`violation`]), in AWS's words.
    pub fn validation_errors(violations: &[String]) -> Self {
        let n = violations.len();
        let noun = if n == 1 { "error" } else { "errors" };
        KmsError::Validation(format!(
            "{n} validation {noun} detected: {}",
            violations.join("; ")
        ))
    }

    fn one_violation(value: Option<&str>, member: impl Display, constraint: impl Display) -> Self {
        Self::validation_errors(&[violation(value, member, constraint)])
    }

    pub fn invalid_marker() -> Self {
        KmsError::InvalidMarker("The request was rejected because the marker is not valid.".into())
    }

    // The state and kind of a key.

    pub fn key_disabled(arn: impl Display) -> Self {
        KmsError::Disabled(format!("{arn} is disabled."))
    }

    pub fn key_pending_deletion(arn: impl Display) -> Self {
        KmsError::InvalidState(format!("{arn} is pending deletion."))
    }

    pub fn key_pending_import(arn: impl Display) -> Self {
        KmsError::InvalidState(format!("{arn} is pending import."))
    }

    pub fn key_unavailable(arn: impl Display) -> Self {
        KmsError::InvalidState(format!("{arn} is unavailable."))
    }

    pub fn key_creating(arn: impl Display) -> Self {
        KmsError::InvalidState(format!("{arn} is creating."))
    }

    pub fn key_updating(arn: impl Display) -> Self {
        KmsError::InvalidState(format!("{arn} is updating."))
    }

    /// CancelKeyDeletion of a key that is not pending deletion.
    pub fn key_not_pending_deletion(arn: impl Display) -> Self {
        KmsError::InvalidState(format!("{arn} is not pending deletion."))
    }

    /// The key's usage is not the one `operation` needs.
    pub fn invalid_key_usage(
        arn: impl Display,
        usage: impl Display,
        operation: impl Display,
    ) -> Self {
        KmsError::InvalidKeyUsage(format!(
            "{arn} key usage is {usage} which is not valid for {operation}."
        ))
    }

    /// The algorithm is not one of the key spec's.
    pub fn algorithm_incompatible(algorithm: impl Display, spec: impl Display) -> Self {
        KmsError::InvalidKeyUsage(format!(
            "Algorithm {algorithm} is incompatible with key spec {spec}."
        ))
    }

    /// The key's origin does not allow the operation.
    pub fn origin_not_valid(arn: impl Display, origin: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "{arn} origin is {origin} which is not valid for this operation."
        ))
    }

    pub fn pending_window_out_of_range() -> Self {
        KmsError::Validation(format!(
            "PendingWindowInDays must be between {MIN_PENDING_WINDOW_DAYS} and {MAX_PENDING_WINDOW_DAYS}"
        ))
    }

    // Rotation.

    /// Rotation of a key that is not a symmetric encryption key (AWS gives no message).
    pub fn rotation_unsupported_for_key_spec() -> Self {
        KmsError::UnsupportedOperation(String::new())
    }

    pub fn on_demand_rotation_limit(arn: impl Display) -> Self {
        KmsError::LimitExceeded(format!(
            "The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {arn}"
        ))
    }

    /// Rotation asked of a multi-Region replica (RotateKeyOnDemand).
    pub fn rotate_replica(arn: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "{arn} is a multi-Region replica key: rotate its primary key."
        ))
    }

    /// Enable/DisableKeyRotation asked of a multi-Region replica.
    pub fn rotation_of_replica(arn: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "{arn} is a multi-Region replica key: manage rotation on its primary key."
        ))
    }

    // Finding keys and aliases.

    pub fn key_not_found(arn: impl Display) -> Self {
        KmsError::NotFound(format!("Key '{arn}' does not exist"))
    }

    pub fn invalid_key_id(raw: impl Display) -> Self {
        KmsError::NotFound(format!("Invalid keyId '{raw}'"))
    }

    /// An ARN of another Region than the request's.
    pub fn invalid_arn_region(region: impl Display) -> Self {
        KmsError::NotFound(format!("Invalid arn {region}"))
    }

    pub fn alias_not_found(alias_arn: impl Display) -> Self {
        KmsError::NotFound(format!("Alias {alias_arn} is not found."))
    }

    // Access.

    /// AccessDenied for `action` on `resource` (`resource: <arn>`), with the decision's reason.
    pub fn access_denied(
        principal: impl Display,
        action: impl Display,
        resource: impl Display,
        reason: impl Display,
    ) -> Self {
        KmsError::AccessDenied(format!(
            "User: {principal} is not authorized to perform: kms:{action} on {resource} {reason}"
        ))
    }

    /// AccessDenied for a resource AWS will not describe (another account's, or missing).
    pub fn access_denied_hidden(
        principal: impl Display,
        action: impl Display,
        resource: impl Display,
    ) -> Self {
        KmsError::AccessDenied(format!(
            "User: {principal} is not authorized to perform: kms:{action} on {resource} because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access"
        ))
    }

    // Cryptographic operations.

    /// The key named differs from the one the ciphertext was made under.
    pub fn incorrect_key() -> Self {
        KmsError::IncorrectKey(
            "The key ID in the request does not identify a CMK that can perform this operation."
                .into(),
        )
    }

    /// Verify found the signature wrong (AWS gives no message).
    pub fn invalid_signature() -> Self {
        KmsError::InvalidSignature(String::new())
    }

    /// VerifyMac found the MAC wrong (AWS gives no message).
    pub fn invalid_mac() -> Self {
        KmsError::InvalidMac(String::new())
    }

    /// GetPublicKey of a key that has no public key (AWS gives no message).
    pub fn no_public_key() -> Self {
        KmsError::UnsupportedOperation(String::new())
    }

    /// DeriveSharedSecret with a malformed peer public key (AWS gives no message).
    pub fn invalid_peer_public_key() -> Self {
        KmsError::Validation(String::new())
    }

    pub fn encryption_context_too_large() -> Self {
        KmsError::Validation(format!(
            "Encryption context exceeds the maximum size of {MAX_CONTEXT_BYTES} bytes."
        ))
    }

    pub fn encryption_context_with_asymmetric_key() -> Self {
        KmsError::Validation(
            "EncryptionContext is not supported when encrypting/decrypting with asymmetric CMKs."
                .into(),
        )
    }

    pub fn plaintext_too_large_for_key(
        algorithm: impl Display,
        spec: impl Display,
        max: impl Display,
    ) -> Self {
        KmsError::Validation(format!(
            "Algorithm {algorithm} and key spec {spec} cannot encrypt data larger than {max} bytes."
        ))
    }

    /// Decrypt with an asymmetric algorithm and no KeyId.
    pub fn key_id_required_for_algorithm(algorithm: impl Display) -> Self {
        KmsError::Validation(format!(
            "KeyId is required to decrypt with the {algorithm} algorithm."
        ))
    }

    pub fn key_id_required_ignoring_ciphertext() -> Self {
        KmsError::Validation(
            "KeyId is required when the IGNORE_CIPHERTEXT dry-run modifier is set.".into(),
        )
    }

    pub fn source_key_id_required_ignoring_ciphertext() -> Self {
        KmsError::Validation(
            "SourceKeyId is required when the IGNORE_CIPHERTEXT dry-run modifier is set.".into(),
        )
    }

    pub fn dry_run_modifier_invalid(modifier: impl Display) -> Self {
        Self::one_violation(
            Some(format!("[{modifier}]").as_str()),
            "dryRunModifiers",
            "Member must satisfy constraint: [Member must satisfy enum value set: [IGNORE_CIPHERTEXT]]",
        )
    }

    /// GenerateDataKey with both NumberOfBytes and KeySpec, or neither.
    pub fn data_key_size_unspecified() -> Self {
        KmsError::Validation("Please specify either number of bytes or key spec.".into())
    }

    /// A data key (pair) asked of a key that is not a symmetric encryption key.
    pub fn data_key_needs_symmetric_key() -> Self {
        KmsError::InvalidKeyUsage("You cannot generate a data key with an asymmetric CMK".into())
    }

    /// GenerateRandom without NumberOfBytes.
    pub fn number_of_bytes_required() -> Self {
        KmsError::Validation("NumberOfBytes is required.".into())
    }

    pub fn recipient_unsupported() -> Self {
        KmsError::UnsupportedOperation(
            "Recipient (attested enclave delivery) is not supported by ferrokms.".into(),
        )
    }

    pub fn digest_not_accepted(algorithm: impl Display) -> Self {
        KmsError::Validation(format!(
            "Signing algorithm {algorithm} does not accept a pre-computed digest."
        ))
    }

    pub fn digest_length_invalid(algorithm: impl Display) -> Self {
        KmsError::Validation(format!(
            "Digest is invalid length for algorithm {algorithm}."
        ))
    }

    // AWS documents these three rules but no message was recorded: the wording follows
    // the recorded "Digest is invalid length for algorithm ..." and is ours.
    pub fn digest_required(algorithm: impl Display) -> Self {
        KmsError::Validation(format!(
            "Signing algorithm {algorithm} requires MessageType DIGEST."
        ))
    }

    pub fn external_mu_not_accepted(algorithm: impl Display) -> Self {
        KmsError::Validation(format!(
            "Signing algorithm {algorithm} does not accept MessageType EXTERNAL_MU."
        ))
    }

    pub fn external_mu_length_invalid(algorithm: impl Display) -> Self {
        KmsError::Validation(format!(
            "External mu is invalid length for algorithm {algorithm}."
        ))
    }

    // What this version of ferrokms does not do.

    /// An operation of the model that ferrokms does not implement.
    pub fn operation_unsupported(operation: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "{operation} is not supported by this version of ferrokms."
        ))
    }

    /// SM2, which AWS offers in its China Regions only, ferrokms offers nowhere. The message
    /// is what a user reported AWS answering in us-east-1 (not recorded here).
    pub fn key_spec_unsupported(spec: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!("KeySpec {spec} is not supported in this Region"))
    }

    pub fn key_pair_spec_unsupported(spec: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "KeyPairSpec {spec} is not supported in this Region"
        ))
    }

    pub fn origin_unsupported(origin: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "Origin {origin} is not supported by this version of ferrokms."
        ))
    }

    // CreateKey.

    /// CreateKey with both KeySpec and CustomerMasterKeySpec.
    pub fn key_spec_conflict() -> Self {
        KmsError::Validation(
            "You cannot specify KeySpec and CustomerMasterKeySpec in the same request. CustomerMasterKeySpec is deprecated.".into(),
        )
    }

    /// CreateKey of a key that is not a symmetric encryption key, without KeyUsage.
    pub fn key_usage_required() -> Self {
        KmsError::Validation(
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into(),
        )
    }

    pub fn key_usage_incompatible(usage: impl Display, spec: impl Display) -> Self {
        KmsError::Validation(format!(
            "KeyUsage {usage} is not compatible with KeySpec {spec}"
        ))
    }

    /// CreateKey in a custom key store of a key that is not symmetric and single-Region.
    pub fn custom_key_store_key_kind() -> Self {
        KmsError::UnsupportedOperation(
            "A custom key store holds only symmetric encryption keys in a single Region.".into(),
        )
    }

    /// CreateKey with an origin (or XksKeyId) of a custom key store, but no store.
    pub fn origin_needs_custom_key_store(origin: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "A key of Origin {origin} (or with an XksKeyId) needs the CustomKeyStoreId of a custom key store of its kind."
        ))
    }

    pub fn keys_per_region_limit(max: impl Display, in_use: impl Display) -> Self {
        KmsError::LimitExceeded(format!(
            "Customer managed keys per region quota for this account in this region is {max}, current usage is {in_use}."
        ))
    }

    // Tags.

    pub fn duplicate_tag_keys() -> Self {
        KmsError::Tag("Duplicate tag keys".into())
    }

    /// A tag key in the reserved `aws:` namespace.
    pub fn reserved_tag_key() -> Self {
        KmsError::Tag("Tags beginning with aws: are reserved".into())
    }

    pub fn too_many_tags() -> Self {
        KmsError::Tag("Too many tags".into())
    }

    // Key policies.

    pub fn key_policy_too_large(max: impl Display) -> Self {
        KmsError::LimitExceeded(format!(
            "The key policy exceeds the maximum size of {max} bytes."
        ))
    }

    /// A key policy name other than the only one, `only`.
    pub fn policy_name_not_found(name: impl Display, only: impl Display) -> Self {
        KmsError::NotFound(format!(
            "Policy {name} does not exist; the only key policy name is {only}."
        ))
    }

    /// A new key policy that would keep the caller from changing it again.
    pub fn policy_lockout() -> Self {
        KmsError::MalformedPolicyDocument(
            "The new key policy will not allow you to update the key policy in the future.".into(),
        )
    }

    pub fn policy_not_json() -> Self {
        KmsError::MalformedPolicyDocument("The policy is not a valid JSON document.".into())
    }

    pub fn policy_not_object() -> Self {
        KmsError::MalformedPolicyDocument("The policy must be a JSON object.".into())
    }

    pub fn policy_without_statement() -> Self {
        KmsError::MalformedPolicyDocument("The policy needs a Statement.".into())
    }

    /// An element (Action, Resource, Principal, a condition's values) of another JSON type.
    pub fn policy_element_not_strings(element: impl Display) -> Self {
        KmsError::MalformedPolicyDocument(format!(
            "{element} must be a string or a list of strings"
        ))
    }

    pub fn policy_invalid_principals() -> Self {
        KmsError::MalformedPolicyDocument(
            "Policy contains a statement with one or more invalid principals.".into(),
        )
    }

    pub fn policy_condition_not_object() -> Self {
        KmsError::MalformedPolicyDocument("Condition must be an object".into())
    }

    pub fn policy_invalid_condition_operator(operator: impl Display) -> Self {
        KmsError::MalformedPolicyDocument(format!("Invalid condition operator: {operator}"))
    }

    pub fn policy_condition_not_map(operator: impl Display) -> Self {
        KmsError::MalformedPolicyDocument(format!("Condition {operator} must map keys to values"))
    }

    pub fn policy_statement_not_object() -> Self {
        KmsError::MalformedPolicyDocument("Each statement must be an object".into())
    }

    pub fn policy_statement_without_effect() -> Self {
        KmsError::MalformedPolicyDocument("Each statement needs an Effect of Allow or Deny".into())
    }

    /// A key policy statement with neither Principal nor NotPrincipal.
    pub fn policy_statement_without_principal() -> Self {
        KmsError::MalformedPolicyDocument(
            "Policy contains a statement with no principal (key policy statements need Principal or NotPrincipal).".into(),
        )
    }

    pub fn policy_identity_with_principal() -> Self {
        KmsError::MalformedPolicyDocument("Identity policies must not name a Principal.".into())
    }

    pub fn policy_principal_and_not_principal() -> Self {
        KmsError::MalformedPolicyDocument(
            "A statement may not have both Principal and NotPrincipal".into(),
        )
    }

    /// A statement with both Action and NotAction, or neither.
    pub fn policy_action_and_not_action() -> Self {
        KmsError::MalformedPolicyDocument(
            "Each statement needs exactly one of Action or NotAction".into(),
        )
    }

    pub fn policy_resource_and_not_resource() -> Self {
        KmsError::MalformedPolicyDocument(
            "A statement may not have both Resource and NotResource".into(),
        )
    }

    /// An identity policy statement with neither Resource nor NotResource.
    pub fn policy_statement_without_resource() -> Self {
        KmsError::MalformedPolicyDocument("Each statement needs Resource or NotResource".into())
    }

    /// An empty list of actions or resources.
    pub fn policy_empty_list() -> Self {
        KmsError::MalformedPolicyDocument("A statement lists no actions or resources.".into())
    }

    pub fn policy_condition_without_values(operator: impl Display, key: impl Display) -> Self {
        KmsError::MalformedPolicyDocument(format!("Condition {operator} on {key} has no values."))
    }

    pub fn policy_variable_in_condition(operator: impl Display, key: impl Display) -> Self {
        KmsError::MalformedPolicyDocument(format!(
            "Condition {operator} on {key} uses a policy variable; ferrokms does not substitute policy variables."
        ))
    }

    /// ForAllValues on an encryption context key (KMS's OverlyPermissiveCondition).
    pub fn policy_for_all_values_on_encryption_context() -> Self {
        KmsError::MalformedPolicyDocument(
            "OverlyPermissiveCondition:EncryptionContext: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified encryption context or with an unspecified encryption context. To fix, remove ForAllValues.".into(),
        )
    }

    /// ForAllValues on a request tag key (KMS's OverlyPermissiveCondition).
    pub fn policy_for_all_values_on_request_tag() -> Self {
        KmsError::MalformedPolicyDocument(
            "OverlyPermissiveCondition: Using the ForAllValues set operator with a single-valued condition key matches requests without the specified tag or with an unspecified tag. To fix, remove ForAllValues.".into(),
        )
    }

    // Aliases.

    /// An alias name that does not match the model's pattern.
    pub fn alias_name_invalid(raw: impl Display) -> Self {
        Self::one_violation(
            Some(raw.to_string().as_str()),
            "aliasName",
            format!("Member must satisfy regular expression pattern: {ALIAS_PATTERN}"),
        )
    }

    pub fn alias_prefix_missing() -> Self {
        KmsError::Validation(
            "Alias must start with the prefix \"alias/\". Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html".into(),
        )
    }

    /// A new alias in the `alias/aws/` namespace.
    /// The words moto's tests record for AWS's answer (not among the messages recorded on
    /// AWS here): a colon is refused in a new alias name.
    pub fn alias_invalid_characters(raw: impl Display) -> Self {
        KmsError::Validation(format!("{raw} contains invalid characters for an alias"))
    }

    pub fn alias_reserved_prefix(raw: impl Display) -> Self {
        KmsError::InvalidAliasName(format!(
            "Alias {raw} cannot begin with the reserved prefix alias/aws/."
        ))
    }

    pub fn alias_target_is_alias() -> Self {
        KmsError::Validation("Aliases must refer to keys. Not aliases".into())
    }

    pub fn alias_exists(alias_arn: impl Display) -> Self {
        KmsError::AlreadyExists(format!("An alias with the name {alias_arn} already exists"))
    }

    /// UpdateAlias to a key of another type or usage than the current one.
    pub fn alias_target_kind_mismatch(alias_arn: impl Display, key_arn: impl Display) -> Self {
        KmsError::Validation(format!(
            "Alias {alias_arn} cannot point to {key_arn}: the current and new KMS key must be the same type (both symmetric or both asymmetric or both HMAC), and they must have the same key usage."
        ))
    }

    pub fn aliases_per_key_limit(max: impl Display, in_use: impl Display) -> Self {
        KmsError::LimitExceeded(format!(
            "Aliases per key quota for this account in this region is {max}, current usage is {in_use}."
        ))
    }

    // Grants.

    /// Grant constraints with both EncryptionContextSubset and EncryptionContextEquals.
    pub fn grant_constraints_conflict() -> Self {
        KmsError::Validation("More than one constraint supplied".into())
    }

    pub fn grant_constraint_too_large(max_pairs: impl Display) -> Self {
        KmsError::Validation(format!(
            "A grant constraint may hold at most {max_pairs} encryption context pairs, each value of at most 384 characters."
        ))
    }

    /// A SourceArn constraint (`shown`: as much of it as is echoed) not matching `pattern`.
    pub fn grant_source_arn_invalid(shown: impl Display, pattern: impl Display) -> Self {
        Self::one_violation(
            Some(shown.to_string().as_str()),
            "constraints.sourceArn",
            format!("Member must satisfy regular expression pattern: {pattern}"),
        )
    }

    pub fn service_principal_grants_unsupported() -> Self {
        KmsError::UnsupportedOperation(
            "Grants to or retired by service principals are not supported by this version of ferrokms.".into(),
        )
    }

    pub fn grantee_principal_missing() -> Self {
        Self::validation_errors(&[null_violation("granteePrincipal")])
    }

    /// An operation a grant cannot allow.
    pub fn grant_operation_invalid(operation: impl Display) -> Self {
        Self::one_violation(
            Some(format!("[{operation}]").as_str()),
            "operations",
            format!(
                "Member must satisfy constraint: [Member must satisfy enum value set: [{}]]",
                GRANT_OPERATIONS.join(", ")
            ),
        )
    }

    pub fn grant_only_create_grant() -> Self {
        KmsError::Validation("Grants must not contain only the CreateGrant operation.".into())
    }

    /// An encryption context constraint on a grant for a key that is not symmetric.
    pub fn grant_context_constraint_for_asymmetric(arn: impl Display, spec: impl Display) -> Self {
        KmsError::Validation(format!(
            "Encryption context grant constraints are supported only for symmetric encryption keys, not for {arn} ({spec})."
        ))
    }

    pub fn grants_per_key_limit(max: impl Display) -> Self {
        KmsError::LimitExceeded(format!(
            "Grants per key quota for this account in this region is {max}."
        ))
    }

    /// ListRetirableGrants without a retiring principal.
    pub fn retiring_principal_missing() -> Self {
        KmsError::Validation(
            "Either RetiringPrincipal or RetiringServicePrincipal is required.".into(),
        )
    }

    /// RetireGrant without a grant token, and without a key and grant id.
    pub fn retire_grant_target_missing() -> Self {
        KmsError::Validation(
            "Either a GrantToken or both a KeyId and a GrantId are required.".into(),
        )
    }

    pub fn grant_not_found(grant_id: impl Display) -> Self {
        KmsError::NotFound(format!("Grant ID {grant_id} not found"))
    }

    pub fn invalid_grant_id(grant_id: impl Display) -> Self {
        KmsError::InvalidGrantId(format!("Invalid grant ID {grant_id}"))
    }

    pub fn invalid_grant_token() -> Self {
        KmsError::InvalidGrantToken("Grant token is not valid.".into())
    }

    // Imported key material.

    pub fn wrapping_algorithm_unsupported(algorithm: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!("Wrapping algorithm {algorithm} is not supported."))
    }

    pub fn wrapping_key_spec_unsupported(spec: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!("Wrapping key spec {spec} is not supported."))
    }

    pub fn invalid_import_token() -> Self {
        KmsError::InvalidImportToken("The import token is not valid.".into())
    }

    pub fn expired_import_token() -> Self {
        KmsError::ExpiredImportToken(
            "The import token is expired. Call GetParametersForImport for a new one.".into(),
        )
    }

    /// ImportKeyMaterial of KEY_MATERIAL_EXPIRES without ValidTo.
    pub fn valid_to_required() -> Self {
        KmsError::Validation(
            "A validTo date must be set if the ExpirationModel is KEY_MATERIAL_EXPIRES".into(),
        )
    }

    /// ImportKeyMaterial of KEY_MATERIAL_DOES_NOT_EXPIRE with ValidTo.
    pub fn valid_to_not_allowed() -> Self {
        KmsError::Validation(
            "A validTo date must not be set if the ExpirationModel is KEY_MATERIAL_DOES_NOT_EXPIRE"
                .into(),
        )
    }

    pub fn valid_to_out_of_range() -> Self {
        KmsError::Validation("ValidTo must be in the future and at most 365 days from now.".into())
    }

    pub fn symmetric_material_wrong_length() -> Self {
        KmsError::IncorrectKeyMaterial(format!(
            "Symmetric key material must be {SYMMETRIC_MATERIAL_BYTES} bytes long."
        ))
    }

    // AWS documents IncorrectKeyMaterialException for material that "does not meet
    // expectations" but no message was recorded: the wording is ours.
    pub fn imported_material_invalid(spec: impl Display) -> Self {
        KmsError::IncorrectKeyMaterial(format!(
            "The key material is not a valid {spec} private key in PKCS #8 format."
        ))
    }

    pub fn hmac_material_wrong_length(spec: impl Display, min: usize, max: usize) -> Self {
        KmsError::IncorrectKeyMaterial(format!(
            "{spec} key material must be {min} to {max} bytes long."
        ))
    }

    pub fn import_unsupported_for_spec(spec: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "You can't import key material for {spec} KMS keys."
        ))
    }

    /// Recorded on AWS (the key as its bare id).
    pub fn material_pending_rotation(
        new: impl Display,
        key_id: impl Display,
        pending: impl Display,
    ) -> Self {
        KmsError::InvalidState(format!(
            "New key material (id: {new}) cannot be imported into KMS key {key_id}, because another key material (id: {pending}) is pending rotation."
        ))
    }

    /// Recorded on AWS.
    pub fn nothing_pending_rotation(arn: impl Display) -> Self {
        KmsError::InvalidState(format!(
            "No available key material pending rotation for the key: {arn}."
        ))
    }

    // AWS documents these refusals without a message: the wording is ours.
    pub fn new_material_already_associated() -> Self {
        KmsError::IncorrectKeyMaterial(
            "KMS expected new key material but the key material being imported is already associated with the KMS key.".into(),
        )
    }

    pub fn import_options_symmetric_only() -> Self {
        KmsError::Validation(
            "ImportType, KeyMaterialId and KeyMaterialDescription are only usable with symmetric encryption keys.".into(),
        )
    }

    pub fn material_id_with_new_material() -> Self {
        KmsError::Validation(
            "You cannot specify a key material ID with ImportType set to NEW_KEY_MATERIAL.".into(),
        )
    }

    pub fn several_materials_multi_region() -> Self {
        KmsError::UnsupportedOperation(
            "Importing new key material into a multi-Region key is not supported by this version of ferrokms.".into(),
        )
    }

    pub fn material_not_associated(material: impl Display, arn: impl Display) -> Self {
        KmsError::NotFound(format!(
            "Key material {material} is not associated with the KMS key {arn}."
        ))
    }

    /// Material other than the material imported into the key before.
    pub fn key_material_mismatch() -> Self {
        KmsError::IncorrectKeyMaterial(
            "The key material is not the key material that was previously imported into this KMS key.".into(),
        )
    }

    // Multi-Region keys.

    pub fn not_multi_region(arn: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!("{arn} is not a multi-region key."))
    }

    /// ReplicateKey of a replica.
    pub fn not_multi_region_primary(arn: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!("{arn} is not a multi-region primary key."))
    }

    /// UpdatePrimaryRegion of a replica (AWS writes "multi-Region" here).
    pub fn not_current_primary(arn: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!("{arn} is not a multi-Region primary key."))
    }

    /// ReplicateKey to a Region that has a copy of the key.
    pub fn replica_exists(arn: impl Display) -> Self {
        KmsError::AlreadyExists(format!("{arn} already exists."))
    }

    /// A Region member (`member`) that is not a Region name.
    pub fn region_invalid(raw: impl Display, member: impl Display) -> Self {
        Self::one_violation(
            Some(raw.to_string().as_str()),
            member,
            r"Member must satisfy regular expression pattern: ^([a-z]+-){2,3}\d+$",
        )
    }

    /// A Region member (`member`) naming a Region this service does not serve.
    pub fn region_not_served(raw: impl Display, member: impl Display) -> Self {
        Self::one_violation(
            Some(raw.to_string().as_str()),
            member,
            "Member must be a Region this service serves",
        )
    }

    // Custom key stores.

    /// An unknown custom key store (AWS gives no message).
    pub fn custom_key_store_not_found() -> Self {
        KmsError::CustomKeyStoreNotFound(String::new())
    }

    /// CreateKey in an unknown custom key store.
    pub fn custom_key_store_does_not_exist(id: impl Display) -> Self {
        KmsError::CustomKeyStoreNotFound(format!("Custom key store {id} does not exist."))
    }

    fn custom_key_store_state(id: &str, state: &str, needed: &str) -> Self {
        KmsError::CustomKeyStoreInvalidState(format!("Custom key store {id} is {state}; {needed}."))
    }

    pub fn custom_key_store_not_connected_for_create(id: &str, state: &str) -> Self {
        Self::custom_key_store_state(id, state, "it must be CONNECTED to create keys in it")
    }

    pub fn custom_key_store_not_connected(id: &str, state: &str) -> Self {
        Self::custom_key_store_state(id, state, "it must be CONNECTED")
    }

    /// UpdateCustomKeyStore of a setting that changes only while the store is disconnected.
    pub fn custom_key_store_must_disconnect_to_update(id: &str, state: &str) -> Self {
        Self::custom_key_store_state(
            id,
            state,
            "disconnect it before changing that (only its name, and an external key store's proxy path and credential, can change while it is not DISCONNECTED)",
        )
    }

    pub fn custom_key_store_must_disconnect_to_delete(id: &str, state: &str) -> Self {
        Self::custom_key_store_state(id, state, "disconnect it before deleting it")
    }

    /// ConnectCustomKeyStore of a store whose connection failed.
    pub fn custom_key_store_must_reconnect(id: &str, state: &str) -> Self {
        Self::custom_key_store_state(id, state, "disconnect it, then connect it again")
    }

    /// DisconnectCustomKeyStore of a store that is disconnected.
    pub fn custom_key_store_not_connected_to_disconnect(id: &str, state: &str) -> Self {
        Self::custom_key_store_state(id, state, "it is not connected")
    }

    pub fn custom_key_store_name_in_use() -> Self {
        KmsError::CustomKeyStoreNameInUse(
            "The specified custom key store name is already assigned to another custom key store in the account. Try again with a custom key store name that is unique in the account.".into(),
        )
    }

    pub fn custom_key_stores_limit(max: impl Display, in_use: impl Display) -> Self {
        KmsError::LimitExceeded(format!(
            "Custom key stores quota for this account in this region is {max}, current usage is {in_use}."
        ))
    }

    /// DeleteCustomKeyStore of a store that still has `count` keys.
    pub fn custom_key_store_has_keys(id: impl Display, count: impl Display) -> Self {
        KmsError::CustomKeyStoreHasCMKs(format!(
            "Custom key store {id} still has {count} KMS keys. Schedule their deletion and delete the custom key store when they are gone."
        ))
    }

    /// CreateKey in an AWS_CLOUDHSM store without that origin (or with an XksKeyId).
    pub fn cloudhsm_store_needs_cloudhsm_origin(id: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "To create a KMS key in custom key store {id}, set Origin to AWS_CLOUDHSM (and give no XksKeyId)."
        ))
    }

    /// CreateKey in an external key store without that origin and an XksKeyId.
    pub fn external_store_needs_external_key(id: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "To create a KMS key in external key store {id}, set Origin to EXTERNAL_KEY_STORE and give the XksKeyId of its external key."
        ))
    }

    /// GenerateRandom in an external key store.
    pub fn random_in_external_store(id: impl Display) -> Self {
        KmsError::UnsupportedOperation(format!(
            "GenerateRandom does not take an external key store ({id})."
        ))
    }

    pub fn cloudhsm_cluster_not_found(cluster_id: impl Display) -> Self {
        KmsError::CloudHsmClusterNotFound(format!(
            "AWS KMS cannot find the AWS CloudHSM cluster with the specified cluster ID: {cluster_id}."
        ))
    }

    /// The cluster serves another custom key store of the account.
    pub fn cloudhsm_cluster_in_use(cluster_id: impl Display, store_id: impl Display) -> Self {
        KmsError::CloudHsmClusterInUse(format!(
            "The AWS CloudHSM cluster {cluster_id} is already associated with custom key store {store_id}."
        ))
    }

    /// A store's new cluster shares no trust anchor with its current one.
    pub fn cloudhsm_cluster_not_related(cluster_id: impl Display, store_id: impl Display) -> Self {
        KmsError::CloudHsmClusterNotRelated(format!(
            "The AWS CloudHSM cluster {cluster_id} is not related to the cluster of custom key store {store_id}: they do not share a trust anchor."
        ))
    }

    pub fn incorrect_trust_anchor(cluster_id: impl Display) -> Self {
        KmsError::IncorrectTrustAnchor(format!(
            "The trust anchor certificate in the request is not the trust anchor certificate of the specified AWS CloudHSM cluster {cluster_id}."
        ))
    }

    /// CreateCustomKeyStore of an external key store with AWS_CLOUDHSM members.
    pub fn cloudhsm_members_for_external_store() -> Self {
        KmsError::Validation(
            "CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword are valid only for an AWS_CLOUDHSM custom key store.".into(),
        )
    }

    /// CreateCustomKeyStore of an AWS_CLOUDHSM store with XksProxy members.
    pub fn xks_members_for_cloudhsm_store() -> Self {
        KmsError::Validation(
            "XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store.".into(),
        )
    }

    /// UpdateCustomKeyStore of external key store `id` with AWS_CLOUDHSM members.
    pub fn cloudhsm_members_for_external_store_update(id: impl Display) -> Self {
        KmsError::Validation(format!(
            "KeyStorePassword and CloudHsmClusterId are valid only for an AWS_CLOUDHSM custom key store; {id} is EXTERNAL_KEY_STORE."
        ))
    }

    /// UpdateCustomKeyStore of AWS_CLOUDHSM store `id` with XksProxy members.
    pub fn xks_members_for_cloudhsm_store_update(id: impl Display) -> Self {
        KmsError::Validation(format!(
            "XksProxy parameters are valid only for an EXTERNAL_KEY_STORE custom key store; {id} is AWS_CLOUDHSM."
        ))
    }

    pub fn cloudhsm_members_missing() -> Self {
        KmsError::Validation(
            "An AWS_CLOUDHSM custom key store needs CloudHsmClusterId, TrustAnchorCertificate and KeyStorePassword.".into(),
        )
    }

    pub fn xks_members_missing() -> Self {
        KmsError::Validation(
            "An EXTERNAL_KEY_STORE custom key store needs XksProxyUriEndpoint, XksProxyUriPath, XksProxyConnectivity and XksProxyAuthenticationCredential.".into(),
        )
    }

    /// XksProxyVpcEndpointServiceName without VPC_ENDPOINT_SERVICE connectivity, or vice versa.
    pub fn xks_vpc_endpoint_service_name_mismatch() -> Self {
        KmsError::Validation(
            "XksProxyVpcEndpointServiceName is required with VPC_ENDPOINT_SERVICE connectivity and valid only with it.".into(),
        )
    }

    pub fn xks_proxy_uri_in_use() -> Self {
        KmsError::XksProxyUriInUse(
            "The combination of the XksProxyUriEndpoint and XksProxyUriPath values is already associated with an external key store in this account and Region.".into(),
        )
    }

    pub fn xks_access_key_id_missing() -> Self {
        Self::one_violation(
            None,
            "xksProxyAuthenticationCredential.accessKeyId",
            "Member must not be null",
        )
    }

    pub fn xks_secret_access_key_missing() -> Self {
        Self::one_violation(
            None,
            "xksProxyAuthenticationCredential.rawSecretAccessKey",
            "Member must not be null",
        )
    }

    pub fn xks_access_key_id_invalid() -> Self {
        Self::one_violation(
            None,
            "xksProxyAuthenticationCredential.accessKeyId",
            "Member must have length between 20 and 30 and satisfy regular expression pattern: ^[A-Z2-7]+$",
        )
    }

    pub fn xks_secret_access_key_invalid() -> Self {
        Self::one_violation(
            None,
            "xksProxyAuthenticationCredential.rawSecretAccessKey",
            "Member must have length between 43 and 64 and satisfy regular expression pattern: ^[a-zA-Z0-9\\/+=]+$",
        )
    }

    /// The external key serves another KMS key of the store.
    pub fn xks_key_in_use(external_key: impl Display, store_id: impl Display) -> Self {
        KmsError::XksKeyAlreadyInUse(format!(
            "The external key {external_key} is already associated with a KMS key in custom key store {store_id}."
        ))
    }

    /// An external key that is not an enabled AES-256 key for encryption and decryption.
    pub fn xks_key_unusable() -> Self {
        KmsError::XksKeyInvalidConfiguration(
            "The external key must be an AES-256 symmetric key that is enabled and performs encryption and decryption.".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::reference::{covered, expand, recorded_messages as recorded};

    #[test]
    fn constructors_say_what_aws_says() {
        let rows = recorded();
        for (code, pattern, error) in covered() {
            assert!(
                rows.iter().any(|(c, m)| c == code && m == pattern),
                "no recorded row {code}\t{pattern}"
            );
            assert_eq!(error.to_string(), expand(pattern), "{code}: {pattern}");
        }
    }

    /// Every recorded single-violation ValidationException, taken apart into value, member
    /// and constraint, reads the same when [`violation`] and [`KmsError::validation_errors`]
    /// put it together again.
    #[test]
    fn validation_frame_is_aws_s() {
        let mut seen = 0;
        for (code, message) in recorded() {
            let Some(one) = message.strip_prefix("1 validation error detected: ") else {
                continue;
            };
            assert_eq!(code, "ValidationException");
            let (value, rest) = if let Some(rest) = one.strip_prefix("Value at '") {
                (None, rest)
            } else {
                let rest = one.strip_prefix("Value '").expect("a value or none");
                let (value, rest) = rest.split_once("' at '").expect("the member");
                (Some(value), rest)
            };
            let (member, constraint) = rest
                .split_once("' failed to satisfy constraint: ")
                .expect("the constraint");
            let rebuilt = KmsError::validation_errors(&[violation(value, member, constraint)]);
            assert_eq!(rebuilt.to_string(), message);
            seen += 1;
        }
        assert!(seen > 0, "the recorded messages hold validation errors");
        assert_eq!(
            KmsError::validation_errors(&[violation(Some("a"), "x", "c"), null_violation("y")])
                .to_string(),
            "2 validation errors detected: Value 'a' at 'x' failed to satisfy constraint: c; Value null at 'y' failed to satisfy constraint: Member must not be null"
        );
    }
}
