//! The operation table: every operation of the KMS model declared once, with what it needs
//! to be allowed (which permission, on which resource, in which policy), whether it may use
//! a key of another account, whether it takes aliases for its key, its request rate,
//! whether it changes anything, and which request members its audit record may show.
//! Dispatch, authorization, quotas, the audit record and CloudTrail's `readOnly` read it;
//! `tests::table_matches_the_model` holds it to each operation's "Cross-account use" and
//! "Required permissions" in the service model.

/// A KMS operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Operation {
    CancelKeyDeletion,
    ConnectCustomKeyStore,
    CreateAlias,
    CreateCustomKeyStore,
    CreateGrant,
    CreateKey,
    Decrypt,
    DeleteAlias,
    DeleteCustomKeyStore,
    DeleteImportedKeyMaterial,
    DeriveSharedSecret,
    DescribeCustomKeyStores,
    DescribeKey,
    DisableKey,
    DisableKeyRotation,
    DisconnectCustomKeyStore,
    EnableKey,
    EnableKeyRotation,
    Encrypt,
    GenerateDataKey,
    GenerateDataKeyPair,
    GenerateDataKeyPairWithoutPlaintext,
    GenerateDataKeyWithoutPlaintext,
    GenerateMac,
    GenerateRandom,
    GetKeyLastUsage,
    GetKeyPolicy,
    GetKeyRotationStatus,
    GetParametersForImport,
    GetPublicKey,
    ImportKeyMaterial,
    ListAliases,
    ListGrants,
    ListKeyPolicies,
    ListKeyRotations,
    ListKeys,
    ListResourceTags,
    ListRetirableGrants,
    PutKeyPolicy,
    ReEncrypt,
    ReplicateKey,
    RetireGrant,
    RevokeGrant,
    RotateKeyOnDemand,
    ScheduleKeyDeletion,
    Sign,
    TagResource,
    UntagResource,
    UpdateAlias,
    UpdateCustomKeyStore,
    UpdateKeyDescription,
    UpdatePrimaryRegion,
    Verify,
    VerifyMac,
}

/// The resource of a request that a permission is checked on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum On {
    /// The key the request names (`KeyId`, or the key a ciphertext names).
    Key,
    /// ReEncrypt's source key.
    SourceKey,
    /// ReEncrypt's destination key.
    DestinationKey,
    /// The alias itself (`arn:aws:kms:<region>:<account>:alias/<name>`).
    Alias,
    /// The key an alias points to now (UpdateAlias, DeleteAlias).
    CurrentKey,
    /// The key an alias is to point to (CreateAlias, UpdateAlias).
    NewKey,
    /// UpdatePrimaryRegion: the replica in the Region that becomes primary.
    ReplicaKey,
    /// The caller's own account: actions on `*` (CreateKey, ListKeys, custom key stores).
    Account,
    /// ReplicateKey: the caller's account in the replica Region.
    ReplicaRegion,
}

/// Which policy decides a permission.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// The key's policy, with the caller's IAM policies where it delegates to them, and
    /// grants.
    Key,
    /// The caller's IAM (identity) policies alone.
    Iam,
}

impl On {
    pub fn policy(self) -> Policy {
        match self {
            On::Key
            | On::SourceKey
            | On::DestinationKey
            | On::CurrentKey
            | On::NewKey
            | On::ReplicaKey => Policy::Key,
            On::Alias | On::Account | On::ReplicaRegion => Policy::Iam,
        }
    }
}

/// When a permission is needed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum When {
    Always,
    /// Only when the request has `Tags`.
    TagsGiven,
    /// Only when nothing else allows it: RetireGrant's key-policy permission, needed by a
    /// caller who is neither the grant's retiring principal nor a grantee allowed to retire.
    Otherwise,
}

/// One permission an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Permission {
    /// The action, without `kms:`.
    pub action: &'static str,
    pub on: On,
    pub when: When,
}

/// What a request is counted against.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rate {
    /// The shared rate of its key's kind (symmetric, RSA, ECC, ML-DSA), counted when the
    /// key is found.
    ByKey,
    /// The shared symmetric rate (GenerateRandom).
    Symmetric,
    /// A rate of its own, in requests per second (AWS's default).
    Own(f64),
}

/// Everything the service knows about an operation apart from its handler.
#[derive(Debug)]
pub struct OperationSpec {
    pub operation: Operation,
    pub name: &'static str,
    pub permissions: &'static [Permission],
    /// Whether the key may be in another account (named by its ARN).
    pub cross_account: bool,
    /// Whether the key may be named by an alias or alias ARN.
    pub aliases: bool,
    pub rate: Rate,
    /// Whether the operation changes anything; CloudTrail calls the others read-only.
    pub writes: bool,
    /// The request members its audit record may show (never plaintexts, ciphertexts,
    /// messages, signatures, MACs, tokens or passwords).
    pub audited: &'static [&'static str],
}

impl OperationSpec {
    /// The permission checked on `on`, if the operation has one there.
    pub fn permission(&self, on: On) -> Option<&'static Permission> {
        self.permissions.iter().find(|p| p.on == on)
    }

    pub fn read_only(&self) -> bool {
        !self.writes
    }
}

const fn on(on: On, action: &'static str) -> Permission {
    Permission {
        action,
        on,
        when: When::Always,
    }
}

const fn with_tags(on: On) -> Permission {
    Permission {
        action: "TagResource",
        on,
        when: When::TagsGiven,
    }
}

/// The model's operations: name, permissions, cross-account, aliases, rate, writes,
/// audited members.
macro_rules! operations {
    ($( $op:ident {
        permissions: [$($perm:expr),* $(,)?],
        cross_account: $cross:expr,
        aliases: $aliases:expr,
        rate: $rate:expr,
        writes: $writes:expr,
        audited: [$($member:literal),* $(,)?] $(,)?
    } )*) => {
        /// Every operation of the KMS model, in the model's (alphabetical) order.
        pub static OPERATIONS: &[OperationSpec] = &[
            $( OperationSpec {
                operation: Operation::$op,
                name: stringify!($op),
                permissions: &[$($perm),*],
                cross_account: $cross,
                aliases: $aliases,
                rate: $rate,
                writes: $writes,
                audited: &[$($member),*],
            }, )*
        ];
    };
}

use On::*;
use Rate::*;

operations! {
    CancelKeyDeletion {
        permissions: [on(Key, "CancelKeyDeletion")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId"],
    }
    ConnectCustomKeyStore {
        permissions: [on(Account, "ConnectCustomKeyStore")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["CustomKeyStoreId"],
    }
    CreateAlias {
        permissions: [on(Alias, "CreateAlias"), on(NewKey, "CreateAlias")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["AliasName", "TargetKeyId"],
    }
    CreateCustomKeyStore {
        permissions: [on(Account, "CreateCustomKeyStore")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["CustomKeyStoreName", "CloudHsmClusterId", "CustomKeyStoreType",
            "XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyVpcEndpointServiceName",
            "XksProxyConnectivity"],
    }
    CreateGrant {
        permissions: [on(Key, "CreateGrant")],
        cross_account: true, aliases: false, rate: Own(50.0), writes: true,
        audited: ["KeyId", "GranteePrincipal", "RetiringPrincipal", "Operations",
            "Constraints", "Name", "DryRun"],
    }
    CreateKey {
        permissions: [on(Account, "CreateKey"), with_tags(Account)],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["Policy", "Description", "KeyUsage", "CustomerMasterKeySpec", "KeySpec",
            "Origin", "CustomKeyStoreId", "BypassPolicyLockoutSafetyCheck", "Tags",
            "MultiRegion", "XksKeyId"],
    }
    Decrypt {
        permissions: [on(Key, "Decrypt")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["EncryptionContext", "KeyId", "EncryptionAlgorithm", "DryRun"],
    }
    DeleteAlias {
        permissions: [on(Alias, "DeleteAlias"), on(CurrentKey, "DeleteAlias")],
        cross_account: false, aliases: false, rate: Own(15.0), writes: true,
        audited: ["AliasName"],
    }
    DeleteCustomKeyStore {
        permissions: [on(Account, "DeleteCustomKeyStore")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["CustomKeyStoreId"],
    }
    DeleteImportedKeyMaterial {
        permissions: [on(Key, "DeleteImportedKeyMaterial")],
        cross_account: false, aliases: false, rate: Own(15.0), writes: true,
        audited: ["KeyId"],
    }
    DeriveSharedSecret {
        permissions: [on(Key, "DeriveSharedSecret")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["KeyId", "KeyAgreementAlgorithm", "DryRun"],
    }
    DescribeCustomKeyStores {
        permissions: [on(Account, "DescribeCustomKeyStores")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: false,
        audited: ["CustomKeyStoreId", "CustomKeyStoreName", "Limit"],
    }
    DescribeKey {
        permissions: [on(Key, "DescribeKey")],
        cross_account: true, aliases: true, rate: Own(2000.0), writes: false,
        audited: ["KeyId"],
    }
    DisableKey {
        permissions: [on(Key, "DisableKey")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId"],
    }
    DisableKeyRotation {
        permissions: [on(Key, "DisableKeyRotation")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId"],
    }
    DisconnectCustomKeyStore {
        permissions: [on(Account, "DisconnectCustomKeyStore")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["CustomKeyStoreId"],
    }
    EnableKey {
        permissions: [on(Key, "EnableKey")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId"],
    }
    EnableKeyRotation {
        permissions: [on(Key, "EnableKeyRotation")],
        cross_account: false, aliases: false, rate: Own(15.0), writes: true,
        audited: ["KeyId", "RotationPeriodInDays"],
    }
    Encrypt {
        permissions: [on(Key, "Encrypt")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["KeyId", "EncryptionContext", "EncryptionAlgorithm", "DryRun"],
    }
    GenerateDataKey {
        permissions: [on(Key, "GenerateDataKey")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["KeyId", "EncryptionContext", "NumberOfBytes", "KeySpec", "DryRun"],
    }
    GenerateDataKeyPair {
        permissions: [on(Key, "GenerateDataKeyPair")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["EncryptionContext", "KeyId", "KeyPairSpec", "DryRun"],
    }
    GenerateDataKeyPairWithoutPlaintext {
        permissions: [on(Key, "GenerateDataKeyPairWithoutPlaintext")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["EncryptionContext", "KeyId", "KeyPairSpec", "DryRun"],
    }
    GenerateDataKeyWithoutPlaintext {
        permissions: [on(Key, "GenerateDataKeyWithoutPlaintext")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["KeyId", "EncryptionContext", "KeySpec", "NumberOfBytes", "DryRun"],
    }
    GenerateMac {
        permissions: [on(Key, "GenerateMac")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["KeyId", "MacAlgorithm", "DryRun"],
    }
    GenerateRandom {
        permissions: [on(Account, "GenerateRandom")],
        cross_account: false, aliases: false, rate: Symmetric, writes: false,
        audited: ["NumberOfBytes", "CustomKeyStoreId"],
    }
    GetKeyLastUsage {
        permissions: [on(Key, "GetKeyLastUsage")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: false,
        audited: ["KeyId"],
    }
    GetKeyPolicy {
        permissions: [on(Key, "GetKeyPolicy")],
        cross_account: false, aliases: false, rate: Own(1000.0), writes: false,
        audited: ["KeyId", "PolicyName"],
    }
    GetKeyRotationStatus {
        permissions: [on(Key, "GetKeyRotationStatus")],
        cross_account: true, aliases: false, rate: Own(1000.0), writes: false,
        audited: ["KeyId"],
    }
    GetParametersForImport {
        permissions: [on(Key, "GetParametersForImport")],
        cross_account: false, aliases: false, rate: Own(1.0), writes: false,
        audited: ["KeyId", "WrappingAlgorithm", "WrappingKeySpec"],
    }
    GetPublicKey {
        permissions: [on(Key, "GetPublicKey")],
        cross_account: true, aliases: true, rate: Own(2000.0), writes: false,
        audited: ["KeyId"],
    }
    ImportKeyMaterial {
        permissions: [on(Key, "ImportKeyMaterial")],
        cross_account: false, aliases: false, rate: Own(15.0), writes: true,
        audited: ["KeyId", "ValidTo", "ExpirationModel"],
    }
    ListAliases {
        permissions: [on(Account, "ListAliases")],
        cross_account: false, aliases: false, rate: Own(500.0), writes: false,
        audited: ["KeyId", "Limit"],
    }
    ListGrants {
        permissions: [on(Key, "ListGrants")],
        cross_account: true, aliases: false, rate: Own(100.0), writes: false,
        audited: ["Limit", "KeyId", "GrantId", "GranteePrincipal"],
    }
    ListKeyPolicies {
        permissions: [on(Key, "ListKeyPolicies")],
        cross_account: false, aliases: false, rate: Own(100.0), writes: false,
        audited: ["KeyId", "Limit"],
    }
    ListKeyRotations {
        permissions: [on(Key, "ListKeyRotations")],
        cross_account: false, aliases: false, rate: Own(100.0), writes: false,
        audited: ["KeyId", "IncludeKeyMaterial", "Limit"],
    }
    ListKeys {
        permissions: [on(Account, "ListKeys")],
        cross_account: false, aliases: false, rate: Own(500.0), writes: false,
        audited: ["Limit"],
    }
    ListResourceTags {
        permissions: [on(Key, "ListResourceTags")],
        cross_account: false, aliases: false, rate: Own(2000.0), writes: false,
        audited: ["KeyId", "Limit"],
    }
    ListRetirableGrants {
        permissions: [on(Account, "ListRetirableGrants")],
        cross_account: false, aliases: false, rate: Own(100.0), writes: false,
        audited: ["Limit", "RetiringPrincipal"],
    }
    PutKeyPolicy {
        permissions: [on(Key, "PutKeyPolicy")],
        cross_account: false, aliases: false, rate: Own(15.0), writes: true,
        audited: ["KeyId", "PolicyName", "Policy", "BypassPolicyLockoutSafetyCheck"],
    }
    ReEncrypt {
        permissions: [on(SourceKey, "ReEncryptFrom"), on(DestinationKey, "ReEncryptTo")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["SourceEncryptionContext", "SourceKeyId", "DestinationKeyId",
            "DestinationEncryptionContext", "SourceEncryptionAlgorithm",
            "DestinationEncryptionAlgorithm", "DryRun"],
    }
    ReplicateKey {
        permissions: [on(Key, "ReplicateKey"), on(ReplicaRegion, "CreateKey"),
            with_tags(ReplicaRegion)],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId", "ReplicaRegion", "Policy", "BypassPolicyLockoutSafetyCheck",
            "Description", "Tags"],
    }
    RetireGrant {
        permissions: [Permission { action: "RetireGrant", on: Key, when: When::Otherwise }],
        cross_account: true, aliases: false, rate: Own(50.0), writes: true,
        audited: ["KeyId", "GrantId", "DryRun"],
    }
    RevokeGrant {
        permissions: [on(Key, "RevokeGrant")],
        cross_account: true, aliases: false, rate: Own(50.0), writes: true,
        audited: ["KeyId", "GrantId", "DryRun"],
    }
    RotateKeyOnDemand {
        permissions: [on(Key, "RotateKeyOnDemand")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId"],
    }
    ScheduleKeyDeletion {
        permissions: [on(Key, "ScheduleKeyDeletion")],
        cross_account: false, aliases: false, rate: Own(15.0), writes: true,
        audited: ["KeyId", "PendingWindowInDays"],
    }
    Sign {
        permissions: [on(Key, "Sign")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["KeyId", "MessageType", "SigningAlgorithm", "DryRun"],
    }
    TagResource {
        permissions: [on(Key, "TagResource")],
        cross_account: false, aliases: false, rate: Own(10.0), writes: true,
        audited: ["KeyId", "Tags"],
    }
    UntagResource {
        permissions: [on(Key, "UntagResource")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId", "TagKeys"],
    }
    UpdateAlias {
        permissions: [on(Alias, "UpdateAlias"), on(CurrentKey, "UpdateAlias"),
            on(NewKey, "UpdateAlias")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["AliasName", "TargetKeyId"],
    }
    UpdateCustomKeyStore {
        permissions: [on(Account, "UpdateCustomKeyStore")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["CustomKeyStoreId", "NewCustomKeyStoreName", "CloudHsmClusterId",
            "XksProxyUriEndpoint", "XksProxyUriPath", "XksProxyVpcEndpointServiceName",
            "XksProxyConnectivity"],
    }
    UpdateKeyDescription {
        permissions: [on(Key, "UpdateKeyDescription")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId", "Description"],
    }
    UpdatePrimaryRegion {
        permissions: [on(Key, "UpdatePrimaryRegion"), on(ReplicaKey, "UpdatePrimaryRegion")],
        cross_account: false, aliases: false, rate: Own(5.0), writes: true,
        audited: ["KeyId", "PrimaryRegion"],
    }
    Verify {
        permissions: [on(Key, "Verify")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["KeyId", "MessageType", "SigningAlgorithm", "DryRun"],
    }
    VerifyMac {
        permissions: [on(Key, "VerifyMac")],
        cross_account: true, aliases: true, rate: ByKey, writes: false,
        audited: ["KeyId", "MacAlgorithm", "DryRun"],
    }
}

impl Operation {
    /// The operation named `name` in `X-Amz-Target`, if the model has it.
    pub fn spec_named(name: &str) -> Option<&'static OperationSpec> {
        OPERATIONS
            .binary_search_by(|spec| spec.name.cmp(name))
            .ok()
            .map(|i| &OPERATIONS[i])
    }

    pub fn spec(self) -> &'static OperationSpec {
        // The table is in the enum's order (checked by a test), so this never misses.
        &OPERATIONS[self as usize]
    }
}

#[cfg(test)]
mod tests;
