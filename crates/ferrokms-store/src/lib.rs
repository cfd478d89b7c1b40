//! Durable state of ferrokms behind one backend-neutral [`Store`] trait, with its SQLite and
//! PostgreSQL backends and the conformance suite every backend must pass.
//!
//! # Map
//! - [`Store`]: every method is one transaction. Each write takes the [`Intent`] (audit
//!   record) of the change as a parameter and stores it in the outbox in the same
//!   transaction ([`outbox`]), so a change can never be durable without its record, and a
//!   write without one does not compile.
//! - `sql`: the one SQL implementation for both backends (`Dialect` covers what differs);
//!   its schema migrations are written once (`MIGRATIONS`) after the historical first
//!   steps; `sql/key_stores.rs` and `sql/rewrap.rs` hold custom key stores and root-key
//!   moves. SQLite writes share commits (`group_commit`). A store owned by one process keeps
//!   keys, aliases, grants and identities in memory (`read_cache`); so does a PostgreSQL
//!   node, which hears every writer's changes through triggers and `LISTEN`, and whose
//!   changes return only once no node can answer from an older copy
//!   (`sql/shared_cache.rs`).
//! - `records`: the rows as Rust types (`StoredMaterial`, `GrantRecord`, `AuditRecord`,
//!   `AuditDigest`, ...); `statement`: SQL built with bound parameters, never with input.
//! - [`conformance`]: the behaviour every backend must show, run against SQLite and the
//!   real PostgreSQL by `tests/`.

pub mod conformance;
mod group_commit;
pub mod outbox;
mod read_cache;
mod records;
mod sql;
mod statement;

use async_trait::async_trait;
use ferrokms_core::ids::{AccountId, AliasName, KeyId, Region};
use ferrokms_core::key::{KeyMetadata, Millis};
use ferrokms_core::material::MaterialId;
use ferrokms_core::tags::Tag;
pub use outbox::Intent;

pub use records::{
    AccessKeyRecord, AliasRecord, AuditAttribute, AuditDigest, AuditQuery, AuditRecord,
    CustomKeyStoreRecord, GrantRecord, KeyUsageMark, PrincipalKind, PrincipalRecord, Removal,
    RoleTrust, RotationType, SecretHolder, SessionInfo, StoredMaterial, WrappedSecret,
};
pub use sql::{SqlStore, StoreProbe, CACHE_APPLICATION_NAME};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another writer changed the record since it was read; read again and retry.
    #[error("the record changed since it was read")]
    Conflict,
    #[error("the record already exists")]
    AlreadyExists,
    #[error("the record does not exist")]
    NotFound,
    /// A per-key quota would be exceeded; `in_use` is the count the write would have made.
    #[error("quota exceeded ({in_use} in use)")]
    LimitExceeded { in_use: usize },
    #[error("storage backend failed: {0}")]
    Backend(String),
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// One row of a backup: its table and its columns (blobs as `{"hex": "..."}`).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct BackupRow {
    pub table: String,
    pub row: serde_json::Map<String, serde_json::Value>,
}

impl BackupRow {
    pub fn blob_value(bytes: &[u8]) -> serde_json::Value {
        serde_json::json!({ "hex": ferrokms_core::hex::encode(bytes) })
    }

    /// The bytes of a blob column.
    pub fn blob(&self, column: &str) -> Option<Vec<u8>> {
        from_hex(self.row.get(column)?.get("hex")?.as_str()?)
    }
}

use ferrokms_core::hex::decode as from_hex;

/// One page of a listing: `after` is the sort key of the last item a caller saw.
#[derive(Debug, Clone, Copy)]
pub struct Page<'a> {
    pub after: Option<&'a str>,
    pub limit: usize,
}

/// Everything ferrokms keeps, one trait per resource. Each method is one transaction: it
/// happens whole or not at all, and once it returns Ok the change survives a crash. Each
/// write takes the audit record of its change (`Intent`), which it commits with it.
///
/// Callers bring the traits in with `use ferrokms_store::prelude::*`.
pub trait Store:
    Identities + Keys + Aliases + Tags + Grants + CustomKeyStores + AuditTrail + Maintenance
{
}

impl<T> Store for T where
    T: Identities + Keys + Aliases + Tags + Grants + CustomKeyStores + AuditTrail + Maintenance
{
}

/// IAM principals, their access keys (stored wrapped), identity policies and roles' trust policies.
#[async_trait]
pub trait Identities: Send + Sync {
    async fn put_access_key(&self, audit: &Intent, record: &AccessKeyRecord) -> StoreResult<()>;
    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>>;
    async fn access_key_count(&self) -> StoreResult<usize>;
    /// Sets the trust policy of a role (who may assume it) and how long its sessions may
    /// last.
    async fn put_trust_policy(&self, audit: &Intent, role: &RoleTrust) -> StoreResult<()>;
    async fn trust_policy(&self, role_arn: &str) -> StoreResult<Option<RoleTrust>>;
    /// Adds an IAM user or role; AlreadyExists if its ARN is taken.
    async fn put_principal(&self, audit: &Intent, principal: &PrincipalRecord) -> StoreResult<()>;
    async fn principal(&self, arn: &str) -> StoreResult<Option<PrincipalRecord>>;
    async fn list_principals(&self) -> StoreResult<Vec<PrincipalRecord>>;
    /// Revokes an access key; returns whether it existed.
    async fn delete_access_key(&self, audit: &Intent, access_key_id: &str) -> StoreResult<bool>;
    async fn access_key_ids_of(&self, principal_arn: &str) -> StoreResult<Vec<String>>;
    /// Detaches a named identity policy; returns whether it was attached.
    async fn delete_identity_policy(
        &self,
        audit: &Intent,
        principal_arn: &str,
        name: &str,
    ) -> StoreResult<bool>;
    /// Attaches (or replaces) a named identity policy to a principal.
    async fn put_identity_policy(
        &self,
        audit: &Intent,
        principal_arn: &str,
        name: &str,
        document: &str,
    ) -> StoreResult<()>;
    /// The document of one named identity policy of a principal.
    async fn identity_policy(&self, principal_arn: &str, name: &str)
        -> StoreResult<Option<String>>;
    /// The identity policy documents attached to a principal, in name order.
    async fn identity_policies(&self, principal_arn: &str) -> StoreResult<Vec<String>>;
}

/// Keys with their material versions, and the queries the background jobs and metrics make.
#[async_trait]
pub trait Keys: Send + Sync {
    /// Stores a new key with its material versions (none for a key awaiting imported
    /// material; all of them for a multi-Region replica) and its tags.
    async fn create_key(
        &self,
        audit: &Intent,
        key: &KeyMetadata,
        materials: &[StoredMaterial],
        tags: &[Tag],
    ) -> StoreResult<()>;
    /// Removes the versions `remove` names, then stores `put` (replacing a version of the
    /// same id) and the key, in one transaction: imports, and the deletion or expiry of
    /// imported material.
    async fn change_materials(
        &self,
        audit: &Intent,
        key: &KeyMetadata,
        put: Option<&StoredMaterial>,
        remove: Removal<'_>,
    ) -> StoreResult<i64>;
    async fn key(&self, region: &Region, id: &KeyId) -> StoreResult<Option<KeyMetadata>>;
    /// Keys of one account in one region, in key-id order, at most `page.limit + 1`.
    async fn list_keys(
        &self,
        region: &Region,
        account: &AccountId,
        page: Page<'_>,
    ) -> StoreResult<Vec<KeyMetadata>>;
    /// Replaces a key's metadata if its revision is still `key.revision`; returns the new one.
    async fn update_key(&self, audit: &Intent, key: &KeyMetadata) -> StoreResult<i64>;
    async fn material(
        &self,
        region: &Region,
        id: &KeyId,
        material: &MaterialId,
    ) -> StoreResult<Option<StoredMaterial>>;

    /// Every material version of a key, oldest first.
    async fn materials(&self, region: &Region, id: &KeyId) -> StoreResult<Vec<StoredMaterial>>;
    /// Adds a material version and stores the key (whose current material it now names) in
    /// one transaction; Conflict if the key changed since it was read.
    async fn rotate_key(
        &self,
        audit: &Intent,
        key: &KeyMetadata,
        material: &StoredMaterial,
    ) -> StoreResult<i64>;
    /// Destroys a key with every version of its material, its tags, grants and aliases.
    /// Returns whether there was such a key, so that racing deleters both succeed.
    async fn delete_key(&self, audit: &Intent, region: &Region, id: &KeyId) -> StoreResult<bool>;
    /// How many keys an account has in a region.
    async fn key_count(&self, region: &Region, account: &AccountId) -> StoreResult<usize>;
    /// Every key of every account and region, in key order: for tools and tests.
    async fn all_keys(&self) -> StoreResult<Vec<KeyMetadata>>;
    /// The keys whose `KeyMetadata::next_job_at` is at or before `now`, in key order: what
    /// a background job run looks at.
    async fn keys_due(&self, now: i64) -> StoreResult<Vec<KeyMetadata>>;
    /// How many keys are in each key state (by its wire name), for metrics.
    async fn key_states(&self) -> StoreResult<Vec<(String, usize)>>;
}

/// Aliases of keys.
#[async_trait]
pub trait Aliases: Send + Sync {
    /// Fails with AlreadyExists, or LimitExceeded when the target has `max_per_key` aliases.
    async fn create_alias(
        &self,
        audit: &Intent,
        alias: &AliasRecord,
        max_per_key: usize,
    ) -> StoreResult<()>;
    async fn alias(
        &self,
        region: &Region,
        account: &AccountId,
        name: &AliasName,
    ) -> StoreResult<Option<AliasRecord>>;
    /// Points an existing alias at another key, if it still points at `from` (the key the
    /// caller was authorized on): NotFound if there is no such alias, Conflict if it points
    /// elsewhere now.
    async fn retarget_alias(
        &self,
        audit: &Intent,
        alias: &AliasRecord,
        from: &KeyId,
        max_per_key: usize,
    ) -> StoreResult<()>;
    /// Deletes an alias if it still points at `target`; whether one was deleted.
    async fn delete_alias(
        &self,
        audit: &Intent,
        region: &Region,
        account: &AccountId,
        name: &AliasName,
        target: &KeyId,
    ) -> StoreResult<bool>;
    /// Aliases in name order, optionally only those pointing at `target`; at most `limit + 1`.
    async fn list_aliases(
        &self,
        region: &Region,
        account: &AccountId,
        target: Option<&KeyId>,
        page: Page<'_>,
    ) -> StoreResult<Vec<AliasRecord>>;
}

/// Tags of keys.
#[async_trait]
pub trait Tags: Send + Sync {
    /// Adds or overwrites tags; LimitExceeded if the key would carry more than `max_tags`.
    async fn tag_key(
        &self,
        audit: &Intent,
        region: &Region,
        id: &KeyId,
        tags: &[Tag],
        max_tags: usize,
    ) -> StoreResult<()>;
    async fn untag_key(
        &self,
        audit: &Intent,
        region: &Region,
        id: &KeyId,
        tag_keys: &[String],
    ) -> StoreResult<()>;

    /// Tags in key order, at most `limit + 1`.
    async fn list_tags(&self, region: &Region, id: &KeyId, page: Page<'_>)
        -> StoreResult<Vec<Tag>>;
}

/// Grants on keys.
#[async_trait]
pub trait Grants: Send + Sync {
    /// Stores a grant and returns its id; LimitExceeded when its key has `max_per_key`
    /// grants, NotFound if the key is gone. If the key has a grant with the same name,
    /// principals and document, that grant's id is returned and nothing is stored, so that
    /// retries on different nodes make one grant.
    async fn create_grant(
        &self,
        audit: &Intent,
        grant: &GrantRecord,
        max_per_key: usize,
    ) -> StoreResult<String>;
    /// A key's grants in grant-id order, at most `page.limit + 1`.
    async fn grants_of_key(
        &self,
        region: &Region,
        key: &KeyId,
        page: Page<'_>,
    ) -> StoreResult<Vec<GrantRecord>>;
    /// Grants that name `retiring_principal`, ordered by `key id/grant id`.
    async fn grants_retirable_by(
        &self,
        region: &Region,
        retiring_principal: &str,
        page: Page<'_>,
    ) -> StoreResult<Vec<GrantRecord>>;
    /// Removes a grant; returns whether it existed.
    async fn delete_grant(
        &self,
        audit: &Intent,
        region: &Region,
        key: &KeyId,
        grant_id: &str,
    ) -> StoreResult<bool>;
}

/// Custom key stores (CloudHSM and external).
#[async_trait]
pub trait CustomKeyStores: Send + Sync {
    /// Stores a new custom key store; AlreadyExists if its account has one of that name in
    /// the region, LimitExceeded if it has `max_per_account` there.
    async fn create_custom_key_store(
        &self,
        audit: &Intent,
        record: &CustomKeyStoreRecord,
        max_per_account: usize,
    ) -> StoreResult<()>;
    /// The custom key stores of an account in a region, in id order.
    async fn custom_key_stores(
        &self,
        region: &Region,
        account: &AccountId,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>>;
    /// Replaces a custom key store if its revision is still `record.revision`; returns the
    /// new one. Conflict if it changed, NotFound if it is gone, AlreadyExists if the new name
    /// is taken.
    async fn update_custom_key_store(
        &self,
        audit: &Intent,
        record: &CustomKeyStoreRecord,
    ) -> StoreResult<i64>;
    /// Removes a custom key store; returns whether it existed.
    async fn delete_custom_key_store(
        &self,
        audit: &Intent,
        region: &Region,
        account: &AccountId,
        id: &str,
    ) -> StoreResult<bool>;
}

/// The audit trail: its chained events, signed digests, the outbox of records that writes committed, and the signing key.
#[async_trait]
pub trait AuditTrail: Send + Sync {
    /// Appends audit events and the digest that signs them, durably, all or none; Conflict if
    /// a sequence number is taken (another writer appended first). `usage` (at most one per
    /// key) becomes each key's last use unless the stored one is later.
    async fn append_audit_events(
        &self,
        events: &[AuditRecord],
        digest: Option<&AuditDigest>,
        usage: &[KeyUsageMark],
    ) -> StoreResult<()>;
    /// A key's last successful cryptographic use, if one was recorded.
    async fn key_last_usage(
        &self,
        region: &Region,
        id: &KeyId,
    ) -> StoreResult<Option<KeyUsageMark>>;
    /// The moment this store began recording key usage: `now` at the first call ever.
    async fn usage_tracking_start(&self, now: Millis) -> StoreResult<Millis>;
    /// Records of requests whose writes committed but whose final record is not yet in the
    /// chain, oldest first; `append_audit_events` removes the one with the same event id.
    async fn audit_outbox(&self) -> StoreResult<Vec<outbox::OutboxRecord>>;
    /// The events in the chain with one of `event_ids`, as (event id, event).
    async fn chained_events(&self, event_ids: &[&str]) -> StoreResult<Vec<(String, String)>>;
    /// Removes outbox records whose event is in the chain already (a record put back after
    /// it was chained must not be chained twice).
    async fn drop_chained_outbox(&self, event_ids: &[&str]) -> StoreResult<()>;
    async fn audit_digests(&self) -> StoreResult<Vec<AuditDigest>>;
    /// The last event and the digest taken there, if there is one, read at one moment:
    /// where the next append goes, and whether that end is signed.
    async fn audit_chain_end(&self) -> StoreResult<Option<(AuditRecord, Option<AuditDigest>)>>;
    /// The audit signing key (wrapped private, public), storing `candidate` if there is none.
    async fn audit_signing_key(&self, candidate: (&[u8], &[u8]))
        -> StoreResult<(Vec<u8>, Vec<u8>)>;
    async fn stored_audit_signing_key(&self) -> StoreResult<Option<(Vec<u8>, Vec<u8>)>>;
    /// Events after `after_seq`, in order, at most `limit`.
    async fn audit_events(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRecord>>;
    async fn last_audit_event(&self) -> StoreResult<Option<AuditRecord>>;
    /// Newest first, before `before_seq`, at most `limit`.
    async fn lookup_audit_events(
        &self,
        query: &AuditQuery,
        before_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>>;
}

/// What the tools do to a whole store: back it up, restore it, move its secrets to another root key.
#[async_trait]
pub trait Maintenance: Send + Sync {
    /// Whether other nodes may write to this store at the same time.
    fn is_shared(&self) -> bool;
    /// Every row of every table, in an order `restore` can insert them, read from one
    /// snapshot: for `ferrokms backup`. Key material and secrets stay wrapped as stored.
    async fn backup(&self) -> StoreResult<Vec<BackupRow>>;
    /// Inserts the rows of a backup into an empty store, all or none; AlreadyExists if the
    /// store holds keys, principals or audit events.
    async fn restore(&self, rows: &[BackupRow]) -> StoreResult<()>;

    /// Up to `limit` secrets wrapped under the root key (key material, access-key secrets,
    /// custom key store passwords, the audit signing key) whose wrapped form does not start
    /// with `format`: what a move to
    /// another root key has still to rewrap.
    async fn secrets_not_in_format(
        &self,
        format: u8,
        limit: usize,
    ) -> StoreResult<Vec<WrappedSecret>>;
    /// Stores each secret's new wrapped form where the stored one is still the one read
    /// (`WrappedSecret::wrapped`), all in one transaction; returns how many it replaced.
    async fn rewrap_secrets(
        &self,
        audit: &Intent,
        changes: &[(WrappedSecret, Vec<u8>)],
    ) -> StoreResult<usize>;
}

/// The traits of [`Store`], for `use ferrokms_store::prelude::*`.
pub mod prelude {
    pub use crate::{
        Aliases, AuditTrail, CustomKeyStores, Grants, Identities, Keys, Maintenance, Store, Tags,
    };
}
