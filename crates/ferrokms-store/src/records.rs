//! Records the store keeps beside key metadata.

use ferrokms_core::ids::{AccountId, AliasName, KeyId, Region};
use ferrokms_core::key::Millis;
use ferrokms_core::material::{MaterialId, WrappedMaterial};

/// One version of a key's material, as stored (wrapped).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredMaterial {
    pub material_id: MaterialId,
    pub wrapped: WrappedMaterial,
    pub created: Millis,
    /// How this version came to be: None for a key's first material.
    pub rotation_type: Option<RotationType>,
}

/// Which material versions `Keys::change_materials` removes.
#[derive(Clone, Copy, Debug)]
pub enum Removal<'a> {
    All,
    Only(&'a [MaterialId]),
}

/// AWS's RotationType.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RotationType {
    Automatic,
    OnDemand,
}

impl RotationType {
    pub fn as_str(self) -> &'static str {
        match self {
            RotationType::Automatic => "AUTOMATIC",
            RotationType::OnDemand => "ON_DEMAND",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "AUTOMATIC" => Some(RotationType::Automatic),
            "ON_DEMAND" => Some(RotationType::OnDemand),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AliasRecord {
    pub region: Region,
    pub account: AccountId,
    pub name: AliasName,
    pub target: KeyId,
    pub created: Millis,
    pub updated: Millis,
}

/// An access key and the principal it signs for. The secret is wrapped under the root key.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessKeyRecord {
    pub access_key_id: String,
    pub account: AccountId,
    pub principal_arn: String,
    pub user_id: String,
    pub wrapped_secret: Vec<u8>,
    pub created: Millis,
    /// Set for temporary credentials of an assumed role.
    pub session: Option<SessionInfo>,
}

/// What makes an access key temporary: its session token (kept only as a SHA-256 hex
/// digest), its expiry, and the role whose session it is.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SessionInfo {
    pub token_hash: String,
    pub expires: Millis,
    pub role_arn: String,
}

impl std::fmt::Debug for AccessKeyRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKeyRecord")
            .field("access_key_id", &self.access_key_id)
            .field("account", &self.account)
            .field("principal_arn", &self.principal_arn)
            .finish_non_exhaustive()
    }
}

/// Whether a principal is an IAM user or an IAM role.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    Role,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "user",
            PrincipalKind::Role => "role",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "user" => Some(PrincipalKind::User),
            "role" => Some(PrincipalKind::Role),
            _ => None,
        }
    }
}

/// An IAM user or role of an account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrincipalRecord {
    pub arn: String,
    pub account: AccountId,
    pub kind: PrincipalKind,
    pub name: String,
    /// AWS's unique id (`AIDA...` for users, `AROA...` for roles).
    pub unique_id: String,
    pub created: Millis,
}

/// Who may assume a role, and for how long at most (its MaxSessionDuration, seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleTrust {
    pub role_arn: String,
    pub document: String,
    pub max_session_seconds: i64,
}

/// A grant on a key. `document` holds what the store need not query (operations and
/// constraints) as JSON.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantRecord {
    pub region: Region,
    pub key_id: KeyId,
    pub grant_id: String,
    /// The account that issued the grant (the key's).
    pub account: AccountId,
    pub name: Option<String>,
    pub grantee_principal: String,
    pub retiring_principal: Option<String>,
    pub document: String,
    pub created: Millis,
}

/// One audit event, chained to the one before it by `prev_hash`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditRecord {
    /// 1, 2, 3, ... with no gaps.
    pub seq: i64,
    pub event_id: String,
    pub event_time: Millis,
    /// The account the event belongs to (CloudTrail's recipientAccountId).
    pub account: String,
    pub event_name: String,
    pub event_source: String,
    pub read_only: bool,
    pub username: String,
    pub access_key_id: String,
    /// Key ARNs the event names.
    pub resources: Vec<String>,
    /// The CloudTrail record, as JSON.
    pub event: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The last successful cryptographic use of a key (GetKeyLastUsage), carried by the audit
/// event of the request and stored with its batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyUsageMark {
    pub region: Region,
    pub key_id: KeyId,
    /// One of the model's KeyLastUsageTrackingOperation values.
    pub operation: String,
    pub at: Millis,
    pub event_id: String,
    pub request_id: String,
}

/// The lookup attributes CloudTrail's LookupEvents filters by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditAttribute {
    EventName,
    ResourceName,
    ResourceType,
    Username,
    AccessKeyId,
    ReadOnly,
    EventId,
    EventSource,
}

impl AuditAttribute {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "EventName" => AuditAttribute::EventName,
            "ResourceName" => AuditAttribute::ResourceName,
            "ResourceType" => AuditAttribute::ResourceType,
            "Username" => AuditAttribute::Username,
            "AccessKeyId" => AuditAttribute::AccessKeyId,
            "ReadOnly" => AuditAttribute::ReadOnly,
            "EventId" => AuditAttribute::EventId,
            "EventSource" => AuditAttribute::EventSource,
            _ => return None,
        })
    }

    pub fn column(self) -> &'static str {
        match self {
            AuditAttribute::EventName => "event_name",
            AuditAttribute::ResourceName => "resources",
            AuditAttribute::ResourceType => "resource_type",
            AuditAttribute::Username => "username",
            AuditAttribute::AccessKeyId => "access_key_id",
            AuditAttribute::ReadOnly => "read_only",
            AuditAttribute::EventId => "event_id",
            AuditAttribute::EventSource => "event_source",
        }
    }
}

/// A LookupEvents query: one account, an optional attribute filter and time range.
#[derive(Clone, Debug, Default)]
pub struct AuditQuery {
    pub account: String,
    pub attribute: Option<(AuditAttribute, String)>,
    pub start: Option<Millis>,
    pub end: Option<Millis>,
}

/// A signed statement of how far the audit chain reached, and its hash there.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditDigest {
    pub upto_seq: i64,
    pub chain_hash: String,
    pub signature: Vec<u8>,
    pub created: Millis,
    /// SHA-256 (hex) of the signature of the digest before this one, or `GENESIS` for the
    /// first; empty in digests made before digests were linked.
    pub previous: String,
}

/// Where a secret wrapped under the root key is kept, which is also what its wrapping is
/// bound to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretHolder {
    /// A version of a key's material.
    Material {
        key: ferrokms_core::ids::KeyArn,
        material: MaterialId,
    },
    /// The secret of an access key (a user's or an STS session's).
    AccessKey { access_key_id: String },
    /// The private key that signs audit digests.
    AuditSigningKey,
    /// The password (token PIN) of a custom key store.
    KeyStorePassword { region: Region, id: String },
}

/// A secret as stored: wrapped under the root key. `Debug` shows only its holder and length.
#[derive(Clone, PartialEq, Eq)]
pub struct WrappedSecret {
    pub holder: SecretHolder,
    pub wrapped: Vec<u8>,
}

impl std::fmt::Debug for WrappedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "WrappedSecret({:?}, <{} bytes>)",
            self.holder,
            self.wrapped.len()
        )
    }
}

/// A custom key store as stored. Its name is unique in its account and region.
#[derive(Clone, PartialEq, Eq)]
pub struct CustomKeyStoreRecord {
    pub region: Region,
    pub account: AccountId,
    pub id: String,
    pub name: String,
    /// Bumped by every update, so that racing updates end in one result.
    pub revision: i64,
    /// The rest of the store (type, cluster, trust anchor, connection state) as the server
    /// keeps it: JSON.
    pub document: String,
    /// The key store password (the token PIN), wrapped under the root key.
    pub wrapped_password: Vec<u8>,
}

impl std::fmt::Debug for CustomKeyStoreRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CustomKeyStoreRecord")
            .field("region", &self.region)
            .field("account", &self.account)
            .field("id", &self.id)
            .field("name", &self.name)
            .field("revision", &self.revision)
            .field("document", &self.document)
            .finish_non_exhaustive()
    }
}
