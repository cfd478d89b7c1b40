//! The SQL backends behind one implementation over sqlx's `Any` driver: SQLite, the embedded
//! default (one file in WAL mode with `synchronous = FULL`, one writer connection, a small
//! reader pool), and PostgreSQL for many nodes sharing one database. Statements use numbered
//! placeholders (`$1`), which both read; what differs lives in [`Dialect`] and the migrations.

use crate::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Once};
use std::time::Duration;

use async_trait::async_trait;
use ferrokms_core::ids::{AccountId, AliasName, KeyId, Region};
use ferrokms_core::key::{KeyMetadata, Millis};
use ferrokms_core::material::{MaterialId, WrappedMaterial};
use ferrokms_core::tags::Tag;
use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::{Any, AnyPool, Row, Transaction};

mod key_stores;
mod rewrap;
mod shared_cache;

pub use shared_cache::APPLICATION_NAME as CACHE_APPLICATION_NAME;

use crate::group_commit::{self, GroupCommit};
use crate::read_cache::{read_through, BoundedCache, ChangeStamp, Freshness, Interner, Lookup};
use crate::statement::{Statement, Tuple};
use crate::{
    outbox::{self, Intent},
    AccessKeyRecord, AliasRecord, AuditDigest, AuditQuery, AuditRecord, BackupRow, GrantRecord,
    KeyUsageMark, Page, PrincipalKind, PrincipalRecord, Removal, RoleTrust, RotationType,
    SessionInfo, StoreError, StoreResult, StoredMaterial, WrappedSecret,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// The first nine SQLite schema versions (each applied once, in order, in one transaction
/// with the rest that a database lacks).
const SQLITE_BEGINNING: &[&str] = &[
    r#"
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL
);
CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    principal_arn TEXT NOT NULL,
    user_id TEXT NOT NULL,
    wrapped_secret BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE keys (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (region, key_id)
);
CREATE INDEX keys_by_account ON keys (region, account_id, key_id);
CREATE TABLE key_materials (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    material_id TEXT NOT NULL,
    wrapped BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (region, key_id, material_id),
    FOREIGN KEY (region, key_id) REFERENCES keys (region, key_id) ON DELETE CASCADE
);
CREATE TABLE aliases (
    region TEXT NOT NULL,
    account_id TEXT NOT NULL,
    alias_name TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (region, account_id, alias_name)
);
CREATE INDEX aliases_by_target ON aliases (region, target_key_id);
CREATE TABLE tags (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (region, key_id, tag_key),
    FOREIGN KEY (region, key_id) REFERENCES keys (region, key_id) ON DELETE CASCADE
);
"#,
    r#"
CREATE TABLE identity_policies (
    principal_arn TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (principal_arn, policy_name)
);
INSERT INTO identity_policies (principal_arn, policy_name, document)
    SELECT principal_arn, 'AdministratorAccess',
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}'
    FROM access_keys WHERE principal_arn LIKE 'arn:aws:iam::%:user/admin';
"#,
    r#"
CREATE TABLE principals (
    arn TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
INSERT OR IGNORE INTO principals (arn, account_id, kind, name, unique_id, created_at)
    SELECT principal_arn, account_id, 'user', 'admin', user_id, MIN(created_at)
    FROM access_keys GROUP BY principal_arn;
CREATE INDEX access_keys_by_principal ON access_keys (principal_arn);
"#,
    r#"
CREATE TABLE grants (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    name TEXT,
    grantee_principal TEXT NOT NULL,
    retiring_principal TEXT,
    document TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (region, key_id, grant_id),
    FOREIGN KEY (region, key_id) REFERENCES keys (region, key_id) ON DELETE CASCADE
);
CREATE INDEX grants_by_retiring ON grants (region, retiring_principal);
"#,
    r#"
ALTER TABLE access_keys ADD COLUMN session_token_hash TEXT;
ALTER TABLE access_keys ADD COLUMN expires_at INTEGER;
ALTER TABLE access_keys ADD COLUMN role_arn TEXT;
CREATE TABLE trust_policies (
    role_arn TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
"#,
    r#"
ALTER TABLE key_materials ADD COLUMN rotation_type TEXT;
"#,
    r#"
CREATE TABLE audit_events (
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_time INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_source TEXT NOT NULL,
    read_only INTEGER NOT NULL,
    username TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    resources TEXT NOT NULL,
    event TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_by_name ON audit_events (account_id, event_name, seq);
"#,
    r#"
CREATE TABLE audit_digests (
    upto_seq INTEGER PRIMARY KEY,
    chain_hash TEXT NOT NULL,
    signature BLOB NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE audit_signing_key (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    wrapped BLOB NOT NULL,
    public_key BLOB NOT NULL
);
"#,
    r#"
CREATE TABLE audit_outbox (
    event_id TEXT PRIMARY KEY,
    event_time INTEGER NOT NULL,
    account_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_source TEXT NOT NULL,
    read_only INTEGER NOT NULL,
    username TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    resources TEXT NOT NULL,
    event TEXT NOT NULL
);
"#,
];

/// PostgreSQL's first schema version: the SQLite schema as it stands after its ninth;
/// its `rowid` columns give rows an insertion order, as SQLite's implicit one does.
const POSTGRES_BEGINNING: &str = r#"
CREATE TABLE accounts (
    account_id TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);
CREATE TABLE access_keys (
    access_key_id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    principal_arn TEXT NOT NULL,
    user_id TEXT NOT NULL,
    wrapped_secret BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    session_token_hash TEXT,
    expires_at BIGINT,
    role_arn TEXT
);
CREATE INDEX access_keys_by_principal ON access_keys (principal_arn);
CREATE TABLE keys (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    revision BIGINT NOT NULL,
    metadata TEXT NOT NULL,
    PRIMARY KEY (region, key_id)
);
CREATE INDEX keys_by_account ON keys (region, account_id, key_id);
CREATE TABLE key_materials (
    rowid BIGSERIAL,
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    material_id TEXT NOT NULL,
    wrapped BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    rotation_type TEXT,
    PRIMARY KEY (region, key_id, material_id),
    FOREIGN KEY (region, key_id) REFERENCES keys (region, key_id) ON DELETE CASCADE
);
CREATE TABLE aliases (
    region TEXT NOT NULL,
    account_id TEXT NOT NULL,
    alias_name TEXT NOT NULL,
    target_key_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (region, account_id, alias_name)
);
CREATE INDEX aliases_by_target ON aliases (region, target_key_id);
CREATE TABLE tags (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    tag_key TEXT NOT NULL,
    tag_value TEXT NOT NULL,
    PRIMARY KEY (region, key_id, tag_key),
    FOREIGN KEY (region, key_id) REFERENCES keys (region, key_id) ON DELETE CASCADE
);
CREATE TABLE identity_policies (
    principal_arn TEXT NOT NULL,
    policy_name TEXT NOT NULL,
    document TEXT NOT NULL,
    PRIMARY KEY (principal_arn, policy_name)
);
CREATE TABLE principals (
    arn TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    unique_id TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE grants (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    grant_id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    name TEXT,
    grantee_principal TEXT NOT NULL,
    retiring_principal TEXT,
    document TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (region, key_id, grant_id),
    FOREIGN KEY (region, key_id) REFERENCES keys (region, key_id) ON DELETE CASCADE
);
CREATE INDEX grants_by_retiring ON grants (region, retiring_principal);
CREATE TABLE trust_policies (
    role_arn TEXT PRIMARY KEY,
    document TEXT NOT NULL
);
CREATE TABLE audit_events (
    seq BIGINT PRIMARY KEY,
    event_id TEXT NOT NULL,
    event_time BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_source TEXT NOT NULL,
    read_only BIGINT NOT NULL,
    username TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    resources TEXT NOT NULL,
    event TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX audit_by_name ON audit_events (account_id, event_name, seq);
CREATE TABLE audit_digests (
    upto_seq BIGINT PRIMARY KEY,
    chain_hash TEXT NOT NULL,
    signature BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE TABLE audit_signing_key (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    wrapped BYTEA NOT NULL,
    public_key BYTEA NOT NULL
);
CREATE TABLE audit_outbox (
    rowid BIGSERIAL,
    event_id TEXT PRIMARY KEY,
    event_time BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    event_source TEXT NOT NULL,
    read_only BIGINT NOT NULL,
    username TEXT NOT NULL,
    access_key_id TEXT NOT NULL,
    resources TEXT NOT NULL,
    event TEXT NOT NULL
);
"#;

/// Every schema version after those, written once for both backends: `BLOB` is written for
/// binary columns and becomes PostgreSQL's `BYTEA`.
const MIGRATIONS: &[Step] = &[
    Step::Both(
        r#"
ALTER TABLE audit_outbox ADD COLUMN node_id TEXT NOT NULL DEFAULT '';
"#,
    ),
    Step::Both(
        r#"
CREATE TABLE key_counts (
    region TEXT NOT NULL,
    account_id TEXT NOT NULL,
    n BIGINT NOT NULL,
    PRIMARY KEY (region, account_id)
);
INSERT INTO key_counts (region, account_id, n)
    SELECT region, account_id, COUNT(*) FROM keys GROUP BY region, account_id;
"#,
    ),
    Step::Both(
        r#"
ALTER TABLE keys ADD COLUMN state TEXT NOT NULL DEFAULT '';
ALTER TABLE keys ADD COLUMN due_at BIGINT;
CREATE INDEX keys_by_due_date ON keys (due_at);
CREATE INDEX keys_unfilled ON keys (region, key_id) WHERE state = '';
"#,
    ),
    Step::Both(
        r#"
CREATE TABLE custom_key_stores (
    region TEXT NOT NULL,
    id TEXT NOT NULL,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    revision BIGINT NOT NULL,
    document TEXT NOT NULL,
    wrapped_password BLOB NOT NULL,
    PRIMARY KEY (region, id)
);
CREATE UNIQUE INDEX custom_key_store_names ON custom_key_stores (region, account_id, name);
"#,
    ),
    Step::Both(
        r#"
ALTER TABLE trust_policies ADD COLUMN max_session_seconds BIGINT NOT NULL DEFAULT 3600;
"#,
    ),
    Step::Both(
        r#"
ALTER TABLE audit_digests ADD COLUMN previous TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_outbox ADD COLUMN seal TEXT NOT NULL DEFAULT '';
"#,
    ),
    Step::PostgresOnly(shared_cache::TRIGGERS),
    Step::Both(
        r#"
CREATE TABLE key_last_usage (
    region TEXT NOT NULL,
    key_id TEXT NOT NULL,
    operation TEXT NOT NULL,
    used_at BIGINT NOT NULL,
    event_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    PRIMARY KEY (region, key_id)
);
CREATE TABLE usage_tracking (
    id BIGINT PRIMARY KEY CHECK (id = 1),
    started_at BIGINT NOT NULL
);
"#,
    ),
];

/// One schema version after the first ones.
enum Step {
    Both(&'static str),
    /// A version that only PostgreSQL needs; SQLite counts it without running anything, so
    /// that both number their versions alike.
    PostgresOnly(&'static str),
}

/// The schema versions of a backend, in order: SQLite's nine first steps or PostgreSQL's one
/// (the same schema), then the shared ones.
/// What [`SqlStore::probe`] saw.
#[derive(Clone, Debug)]
pub struct StoreProbe {
    pub schema_version: i64,
    /// The schema this build migrates to.
    pub known_schema_version: i64,
    /// The database's clock, in milliseconds since the epoch.
    pub database_millis: i64,
}

fn migrations(dialect: Dialect) -> Vec<std::borrow::Cow<'static, str>> {
    use std::borrow::Cow;
    let first: Vec<Cow<'static, str>> = match dialect {
        Dialect::Sqlite => SQLITE_BEGINNING.iter().map(|m| Cow::Borrowed(*m)).collect(),
        Dialect::Postgres => vec![Cow::Borrowed(POSTGRES_BEGINNING)],
    };
    first
        .into_iter()
        .chain(MIGRATIONS.iter().map(|step| match (step, dialect) {
            (Step::Both(sql), Dialect::Sqlite) => Cow::Borrowed(*sql),
            (Step::Both(sql), Dialect::Postgres) => Cow::Owned(sql.replace("BLOB", "BYTEA")),
            (Step::PostgresOnly(_), Dialect::Sqlite) => Cow::Borrowed("SELECT 1;"),
            (Step::PostgresOnly(sql), Dialect::Postgres) => Cow::Borrowed(*sql),
        }))
        .collect()
}

/// Rows per multi-row INSERT: at 13 columns, well under both backends' bound-parameter limits.
const AUDIT_ROWS_PER_STATEMENT: usize = 1000;

pub struct SqlStore {
    dialect: Dialect,
    writer: AnyPool,
    reader: AnyPool,
    /// Set only while this process is the store's one writer (`cache_reads`) or hears every
    /// other writer (`cache_shared`).
    cache: Option<Arc<ReadCache>>,
    /// PostgreSQL with a cache: the tasks that hear other nodes' changes.
    _listening: Option<shared_cache::Listening>,
    /// SQLite: touched after every change to access keys and identity policies, which the
    /// `ferrokms admin` tool makes beside a running server.
    identity_stamp: Option<ChangeStamp>,
    /// SQLite: the committer of write-only transactions (see `execute_atomically`).
    group_commit: Option<GroupCommit>,
}

/// Keys and aliases as last read, so that the hot path of a cryptographic call costs no
/// query. Sized to hold a busy account's working set, not a whole store of 100,000 keys.
struct ReadCache {
    keys: BoundedCache<(Region, KeyId), Option<KeyMetadata>>,
    aliases: BoundedCache<(Region, AccountId, AliasName), Option<AliasRecord>>,
    access_keys: BoundedCache<String, Option<AccessKeyRecord>>,
    identity_policies: BoundedCache<String, Vec<String>>,
    /// A key's first page of grants, with the page size it was read with.
    grants: BoundedCache<(Region, KeyId), (usize, Vec<GrantRecord>)>,
    policies: Interner,
}

impl ReadCache {
    fn new(freshness: Option<Arc<Freshness>>) -> Self {
        ReadCache {
            keys: BoundedCache::new(CACHED_KEYS, freshness.clone()),
            aliases: BoundedCache::new(CACHED_ALIASES, freshness.clone()),
            access_keys: BoundedCache::new(CACHED_IDENTITIES, freshness.clone()),
            identity_policies: BoundedCache::new(CACHED_IDENTITIES, freshness.clone()),
            grants: BoundedCache::new(CACHED_GRANT_LISTS, freshness),
            policies: Interner::new(DISTINCT_POLICIES),
        }
    }

    fn forget_identities(&self) {
        self.access_keys.clear();
        self.identity_policies.clear();
    }

    fn clear(&self) {
        self.keys.clear();
        self.aliases.clear();
        self.grants.clear();
        self.forget_identities();
    }
}

/// Whether a write-only transaction may wait to share its commit with others.
#[derive(Clone, Copy)]
enum Commit {
    Shared,
    Own,
}

/// AWS's quota of keys per region: one busy account's keys fit. About 600 bytes each once
/// their policies are shared (docs/performance.md).
const CACHED_KEYS: usize = 100_000;
const DISTINCT_POLICIES: usize = 10_000;
const CACHED_ALIASES: usize = 10_000;
const CACHED_IDENTITIES: usize = 10_000;
/// Keys whose grants are held; each list is at most the quota of grants per key.
const CACHED_GRANT_LISTS: usize = 1_000;

fn backend(e: sqlx::Error) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(what.to_owned())
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

fn count(n: i64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn limit_param(page: &Page<'_>) -> i64 {
    i64::try_from(page.limit.saturating_add(1)).unwrap_or(i64::MAX)
}

/// The sqlx URL of an SQLite file, opened in `mode` (`ro`, `rwc`).
fn sqlite_url(path: &str, mode: &str) -> String {
    let mut url = String::from("sqlite://");
    for c in path.chars() {
        match c {
            '%' | '?' | '#' | ' ' => url.push_str(&format!("%{:02X}", c as u32)),
            _ => url.push(c),
        }
    }
    url.push_str("?mode=");
    url.push_str(mode);
    url
}

fn install_drivers() {
    static ONCE: Once = Once::new();
    ONCE.call_once(sqlx::any::install_default_drivers);
}

/// What every SQLite connection is set to. Deleted rows (destroyed key material among them)
/// are overwritten, not left in free pages.
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
     PRAGMA foreign_keys = ON; PRAGMA secure_delete = ON; PRAGMA busy_timeout = 10000;";

/// A database URL may name a password; errors and logs get it without.
fn redact_url(url: &str) -> String {
    match url.split_once("://").zip(url.rsplit_once('@')) {
        Some(((scheme, _), (_, host))) => format!("{scheme}://…@{host}"),
        None => url.to_owned(),
    }
}

impl SqlStore {
    /// Looks at a store without changing it (no migration, an SQLite file opened read-only):
    /// what `ferrokms doctor` reports. `location` is an SQLite file or a PostgreSQL URL.
    pub async fn probe(location: &str) -> StoreResult<StoreProbe> {
        install_drivers();
        let postgres = location.starts_with("postgres://") || location.starts_with("postgresql://");
        let (url, dialect) = if postgres {
            (location.to_owned(), Dialect::Postgres)
        } else {
            if !Path::new(location).is_file() {
                return Err(StoreError::Backend(format!("{location} does not exist")));
            }
            // Read-only still makes the WAL's side files of a database in WAL mode; with no
            // WAL file (no writer, cleanly stopped) the file is read as it is, touching nothing.
            let url = if Path::new(&format!("{location}-wal")).exists() {
                sqlite_url(location, "ro")
            } else {
                format!("{}&immutable=1", sqlite_url(location, "ro"))
            };
            (url, Dialect::Sqlite)
        };
        let pool = AnyPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(Duration::from_secs(3))
            .connect(&url)
            .await
            .map_err(|e| {
                StoreError::Backend(format!("connecting to {}: {e}", redact_url(location)))
            })?;
        let version: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            .fetch_one(&pool)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        let now_sql = match dialect {
            Dialect::Postgres => {
                "SELECT CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)"
            }
            Dialect::Sqlite => {
                "SELECT CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)"
            }
        };
        let database_millis: i64 = sqlx::query(now_sql)
            .fetch_one(&pool)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        pool.close().await;
        Ok(StoreProbe {
            schema_version: version,
            known_schema_version: i64::try_from(migrations(dialect).len()).unwrap_or(i64::MAX),
            database_millis,
        })
    }

    /// Opens (creating if needed) an SQLite database file and brings its schema up to date.
    pub async fn open_sqlite(path: &Path) -> StoreResult<Self> {
        install_drivers();
        let path = path
            .to_str()
            .ok_or_else(|| StoreError::Backend("the database path is not UTF-8".into()))?;
        let url = sqlite_url(path, "rwc");
        let pool = |connections: u32| {
            AnyPoolOptions::new()
                .max_connections(connections)
                .after_connect(|conn, _| {
                    Box::pin(async move {
                        sqlx::raw_sql(SQLITE_PRAGMAS).execute(conn).await?;
                        Ok(())
                    })
                })
                .connect(&url)
        };
        let writer = pool(1).await.map_err(backend)?;
        let reader = pool(4).await.map_err(backend)?;
        let store = SqlStore {
            dialect: Dialect::Sqlite,
            group_commit: Some(GroupCommit::start(writer.clone())),
            writer,
            reader,
            cache: None,
            _listening: None,
            identity_stamp: Some(ChangeStamp::new(PathBuf::from(format!(
                "{path}.identities"
            )))),
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to a PostgreSQL database (`postgres://user@host/db`) that several nodes may
    /// share, and brings its schema up to date.
    pub async fn connect_postgres(url: &str) -> StoreResult<Self> {
        install_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(16)
            // Fail fast while the database is away (a request makes one or two attempts);
            // the pool reconnects once it is back.
            .acquire_timeout(Duration::from_secs(1))
            .connect(url)
            .await
            .map_err(|e| StoreError::Backend(format!("connecting to {}: {e}", redact_url(url))))?;
        let store = SqlStore {
            dialect: Dialect::Postgres,
            writer: pool.clone(),
            reader: pool,
            cache: None,
            _listening: None,
            identity_stamp: None,
            group_commit: None,
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Keeps keys and aliases in memory once read. Only for a store no other process writes
    /// keys or aliases to, such as an SQLite file whose data directory this process has
    /// locked: a write elsewhere would not reach the cache.
    pub fn cache_reads(mut self) -> Self {
        self.cache = Some(Arc::new(ReadCache::new(None)));
        self
    }

    /// Keeps keys, aliases, grants and identities in memory on a node that shares its
    /// PostgreSQL database (`url`, the one it connected to) with others, dropping what any
    /// writer changes as PostgreSQL announces it (`sql/shared_cache.rs`, which says why no
    /// node answers from a row older than a change that has returned).
    pub async fn cache_shared(mut self, url: &str) -> StoreResult<Self> {
        if self.dialect != Dialect::Postgres {
            return Err(StoreError::Backend(
                "only a PostgreSQL store hears other writers' changes".into(),
            ));
        }
        let freshness = Arc::new(Freshness::new(shared_cache::FRESH_FOR));
        let cache = Arc::new(ReadCache::new(Some(freshness.clone())));
        self._listening = Some(shared_cache::start(url, cache.clone(), freshness).await?);
        self.cache = Some(cache);
        Ok(self)
    }

    /// After a change that may alter what another node's cache answers, whatever its
    /// outcome (a commit whose answer was lost, a retry that finds the work done, a
    /// revocation racing another, may each return while the change is still fresh): on
    /// PostgreSQL, waits until no node may still use a copy older than the change
    /// (`shared_cache::BOUND`), so that the change holds everywhere once it returns. Writes
    /// that only add a row under a fresh random id (a new key, a new access key) need not.
    async fn changed_everywhere(&self) {
        if self.dialect == Dialect::Postgres {
            tokio::time::sleep(shared_cache::BOUND).await;
        }
    }

    async fn insert_grant(
        &self,
        audit: &Intent,
        grant: &GrantRecord,
        max_per_key: usize,
    ) -> StoreResult<String> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let key_id = grant.key_id.to_string();
        lock_key(&mut tx, self.dialect, grant.region.as_str(), &key_id).await?;
        if grant.name.is_some() {
            let same = sqlx::query(
                "SELECT grant_id FROM grants WHERE region = $1 AND key_id = $2 AND name = $3 \
                 AND grantee_principal = $4 AND retiring_principal IS NOT DISTINCT FROM $5 \
                 AND document = $6",
            )
            .bind(grant.region.as_str())
            .bind(&key_id)
            .bind(&grant.name)
            .bind(&grant.grantee_principal)
            .bind(&grant.retiring_principal)
            .bind(&grant.document)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            if let Some(row) = same {
                return row.try_get("grant_id").map_err(backend);
            }
        }
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM grants WHERE region = $1 AND key_id = $2")
            .bind(grant.region.as_str())
            .bind(grant.key_id.to_string())
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        if count(n) >= max_per_key {
            return Err(StoreError::LimitExceeded {
                in_use: count(n) + 1,
            });
        }
        sqlx::query(
            "INSERT INTO grants (region, key_id, grant_id, account_id, name, grantee_principal, \
             retiring_principal, document, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(grant.region.as_str())
        .bind(grant.key_id.to_string())
        .bind(&grant.grant_id)
        .bind(grant.account.as_str())
        .bind(&grant.name)
        .bind(&grant.grantee_principal)
        .bind(&grant.retiring_principal)
        .bind(&grant.document)
        .bind(grant.created)
        .execute(&mut *tx)
        .await
        .map_err(|e| match &e {
            sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::AlreadyExists,
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => StoreError::NotFound,
            _ => backend(e),
        })?;
        commit(tx, audit).await?;
        Ok(grant.grant_id.clone())
    }

    async fn read_grants_of_key(
        &self,
        region: &Region,
        key: &KeyId,
        page: Page<'_>,
    ) -> StoreResult<Vec<GrantRecord>> {
        sqlx::query(
            "SELECT * FROM grants WHERE region = $1 AND key_id = $2 AND grant_id > $3 \
             ORDER BY grant_id LIMIT $4",
        )
        .bind(region.as_str())
        .bind(key.to_string())
        .bind(page.after.unwrap_or(""))
        .bind(limit_param(&page))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(grant_from_row)
        .collect()
    }

    /// PostgreSQL takes one statement per query, and each is a round trip to the server
    /// (with the transaction's BEGIN and COMMIT, five for a batch, against which a node's
    /// requests wait). Data-modifying common table expressions make the whole batch one
    /// statement, atomic on its own; PostgreSQL runs each of them whether or not the final
    /// query reads it.
    async fn append_audit_events_in_one_statement(
        &self,
        events: &[AuditRecord],
        digest: Option<&AuditDigest>,
        usage: &[KeyUsageMark],
    ) -> StoreResult<()> {
        if events.is_empty() && digest.is_none() && usage.is_empty() {
            return Ok(());
        }
        let mut statement = Statement::for_dialect(self.dialect, "WITH ");
        if !usage.is_empty() {
            statement.push("usage AS (");
            push_usage_upsert(&mut statement, usage);
            statement.push("), ");
        }
        if let Some(d) = digest {
            statement.push("digest AS (");
            push_digest_insert(&mut statement, d);
            statement.push("), ");
        }
        if !events.is_empty() {
            statement.push("events AS (");
            push_events_insert(&mut statement, events);
            statement.push("), outbox AS (");
            push_outbox_delete(&mut statement, events);
            statement.push("), ");
        }
        statement.push("appended AS (SELECT 1) SELECT 1 FROM appended");
        statement
            .build()?
            .execute(&self.writer)
            .await
            .map(drop)
            .map_err(append_failure)
    }

    /// After a write to a key's grants (committed or not).
    fn grants_written(&self, region: &Region, id: &KeyId) {
        if let Some(cache) = &self.cache {
            cache.grants.invalidate(&(region.clone(), *id));
        }
    }

    /// The cache, once entries that another process may have changed are dropped.
    fn identity_cache(&self) -> Option<&ReadCache> {
        let cache = self.cache.as_ref()?;
        if let Some(stamp) = &self.identity_stamp {
            stamp.check(|| cache.forget_identities());
        }
        Some(cache)
    }

    /// After a write to access keys or identity policies, committed or not: this process
    /// forgets them, and says so to others. A change that committed but could not be
    /// announced is an error, since a running server would not see it.
    fn identities_written(&self) -> StoreResult<()> {
        if let Some(cache) = &self.cache {
            cache.forget_identities();
        }
        match &self.identity_stamp {
            Some(stamp) => stamp.touch().map_err(|e| {
                StoreError::Backend(format!(
                    "the change to access keys or identity policies committed, but a running \
                     server learns of it only on restart: {e}"
                ))
            }),
            None => Ok(()),
        }
    }

    /// After a write to a key's row (committed or not).
    fn key_written(&self, region: &Region, id: &KeyId) {
        if let Some(cache) = &self.cache {
            cache.keys.invalidate(&(region.clone(), *id));
        }
    }

    /// After a write to aliases; deleting a key removes aliases it does not name one by one.
    fn aliases_written(&self, alias: Option<(&Region, &AccountId, &AliasName)>) {
        if let Some(cache) = &self.cache {
            match alias {
                Some((r, a, n)) => cache.aliases.invalidate(&(r.clone(), a.clone(), n.clone())),
                None => cache.aliases.clear(),
            }
        }
    }

    /// Runs `statements` as one transaction. On SQLite it is a single multi-statement query,
    /// since each statement sent apart is a round trip to the connection's thread and, on a
    /// busy machine, those waits rather than SQLite made up most of a write's time; and it
    /// may share its commit with others (`group_commit`). On PostgreSQL, which takes one
    /// statement per query, the statements run one after another.
    async fn execute_atomically(
        &self,
        statements: Vec<Statement>,
        commit: Commit,
    ) -> Result<(), sqlx::Error> {
        let built = |s: Statement| s.build().map_err(|e| sqlx::Error::Protocol(e.to_string()));
        match self.dialect {
            Dialect::Sqlite => {
                let mut body = Statement::for_dialect(self.dialect, "");
                for part in statements {
                    body.append(part);
                    body.push("; ");
                }
                match (&self.group_commit, commit) {
                    (Some(group), Commit::Shared) => group.execute(body).await,
                    _ => group_commit::commit_alone(&self.writer, body).await,
                }
            }
            Dialect::Postgres => {
                let queries = statements
                    .into_iter()
                    .map(built)
                    .collect::<Result<Vec<_>, _>>()?;
                let mut tx = self.writer.begin().await?;
                for query in queries {
                    query.execute(&mut *tx).await?;
                }
                tx.commit().await
            }
        }
    }

    /// `execute_atomically`, with the record of the change the writes make (see `outbox`),
    /// as `commit` adds it.
    async fn execute_with_intent(
        &self,
        mut statements: Vec<Statement>,
        audit: &Intent,
    ) -> Result<(), sqlx::Error> {
        if audit.kept() {
            statements.push(outbox_insert(
                Statement::for_dialect(self.dialect, ""),
                audit,
            ));
        }
        self.execute_atomically(statements, Commit::Shared).await?;
        audit.mark_written();
        Ok(())
    }

    async fn migrate(&self) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        if self.dialect == Dialect::Postgres {
            // Nodes starting together migrate one after the other.
            sqlx::query("SELECT pg_advisory_xact_lock(7263917)")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let migrations = migrations(self.dialect);
        sqlx::query("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT NOT NULL)")
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
        let current: i64 = sqlx::query("SELECT COALESCE(MAX(version), 0) FROM schema_version")
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        let known = i64::try_from(migrations.len()).unwrap_or(i64::MAX);
        if current > known {
            return Err(StoreError::Corrupt(format!(
                "database schema version {current} is newer than this ferrokms ({known})"
            )));
        }
        for (i, sql) in migrations.into_iter().enumerate().skip(count(current)) {
            // Only the constants above, never input.
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.into_owned()))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query("INSERT INTO schema_version (version) VALUES ($1)")
                .bind(i64::try_from(i + 1).unwrap_or(i64::MAX))
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        tx.commit().await.map_err(backend)?;
        self.fill_key_columns().await
    }

    /// Fills the `state` and `due_at` columns of keys stored before they existed (or
    /// restored from such a backup), which the migration could not compute in SQL. Each
    /// batch commits, so an interrupted fill goes on at the next start.
    async fn fill_key_columns(&self) -> StoreResult<()> {
        loop {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let rows = sqlx::query(
                "SELECT region, key_id, metadata, revision FROM keys WHERE state = '' LIMIT 500",
            )
            .fetch_all(&mut *tx)
            .await
            .map_err(backend)?;
            if rows.is_empty() {
                return Ok(());
            }
            for row in &rows {
                let key = key_from_row(row)?;
                sqlx::query(
                    "UPDATE keys SET state = $1, due_at = $2 WHERE region = $3 AND key_id = $4",
                )
                .bind(key.state.as_str())
                .bind(key.next_job_at())
                .bind(row.try_get::<String, _>("region").map_err(backend)?)
                .bind(row.try_get::<String, _>("key_id").map_err(backend)?)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
            tx.commit().await.map_err(backend)?;
        }
    }

    pub async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }
}

/// An append that lost its sequence numbers to another writer is a Conflict.
fn append_failure(err: sqlx::Error) -> StoreError {
    if is_unique_violation(&err) {
        StoreError::Conflict
    } else {
        backend(err)
    }
}

fn push_digest_insert(statement: &mut Statement, d: &AuditDigest) {
    statement.push(
        "INSERT INTO audit_digests (upto_seq, chain_hash, signature, created_at, previous) \
         VALUES ",
    );
    statement.push_tuples(&[d], |row, d| {
        row.bind(d.upto_seq)
            .bind(d.chain_hash.clone())
            .bind(d.signature.clone())
            .bind(d.created)
            .bind(d.previous.clone());
    });
}

fn push_events_insert(statement: &mut Statement, events: &[AuditRecord]) {
    statement.push(&format!(
        "INSERT INTO audit_events ({RECORD_COLUMNS}, seq, prev_hash, hash) VALUES "
    ));
    statement.push_tuples(events, |row, e| {
        push_record(row, e);
        row.bind(e.seq)
            .bind(e.prev_hash.clone())
            .bind(e.hash.clone());
    });
}

/// The outbox copies of events now in the chain.
fn push_outbox_delete(statement: &mut Statement, events: &[AuditRecord]) {
    statement.push("DELETE FROM audit_outbox WHERE event_id IN ");
    statement.push_tuples(&[events], |row, events| {
        for e in *events {
            row.bind(e.event_id.clone());
        }
    });
}

/// Each key's last use, kept unless the stored one is later (batches of two nodes may
/// commit out of order).
fn push_usage_upsert(statement: &mut Statement, usage: &[KeyUsageMark]) {
    statement.push(
        "INSERT INTO key_last_usage (region, key_id, operation, used_at, event_id, request_id) \
         VALUES ",
    );
    statement.push_tuples(usage, |row, u| {
        row.bind(u.region.as_str().to_owned())
            .bind(u.key_id.to_string())
            .bind(u.operation.clone())
            .bind(u.at)
            .bind(u.event_id.clone())
            .bind(u.request_id.clone());
    });
    statement.push(
        " ON CONFLICT (region, key_id) DO UPDATE SET operation = excluded.operation, \
         used_at = excluded.used_at, event_id = excluded.event_id, \
         request_id = excluded.request_id WHERE excluded.used_at >= key_last_usage.used_at",
    );
}

/// The columns `audit_events` and `audit_outbox` share, in the order `push_record` binds.
const RECORD_COLUMNS: &str = "event_id, event_time, account_id, event_name, event_source, \
     read_only, username, access_key_id, resources, event";

fn push_record(row: &mut Tuple<'_>, r: &AuditRecord) {
    row.bind(r.event_id.clone())
        .bind(r.event_time)
        .bind(r.account.clone())
        .bind(r.event_name.clone())
        .bind(r.event_source.clone())
        .bind(i64::from(r.read_only))
        .bind(r.username.clone())
        .bind(r.access_key_id.clone())
        .bind(r.resources.join(" "))
        .bind(r.event.clone());
}

/// The tables a backup holds, in an order that satisfies foreign keys, with the order of
/// their rows (creation order where it matters).
const BACKUP_TABLES: &[(&str, &str)] = &[
    ("accounts", "account_id"),
    ("principals", "arn"),
    ("access_keys", "access_key_id"),
    ("identity_policies", "principal_arn, policy_name"),
    ("trust_policies", "role_arn"),
    ("keys", "region, key_id"),
    ("key_materials", "region, key_id, created_at, rowid"),
    ("aliases", "region, account_id, alias_name"),
    ("tags", "region, key_id, tag_key"),
    ("grants", "region, key_id, grant_id"),
    ("audit_signing_key", "id"),
    ("audit_events", "seq"),
    ("audit_digests", "upto_seq"),
    ("audit_outbox", "event_time, rowid"),
    ("custom_key_stores", "region, id"),
];

/// A column of a backup row as JSON. `rowid` (PostgreSQL's stand-in for SQLite's implicit
/// one) is left out, so that a backup of either backend restores into the other.
fn backup_columns(row: &AnyRow) -> StoreResult<serde_json::Map<String, serde_json::Value>> {
    use sqlx::any::AnyTypeInfoKind as Kind;
    use sqlx::{Column, ValueRef};
    let mut out = serde_json::Map::new();
    for (i, column) in row.columns().iter().enumerate() {
        if column.name() == "rowid" {
            continue;
        }
        let raw = row.try_get_raw(i).map_err(backend)?;
        let value = if raw.is_null() {
            serde_json::Value::Null
        } else {
            match raw.type_info().kind() {
                Kind::Text => {
                    serde_json::Value::from(row.try_get::<String, _>(i).map_err(backend)?)
                }
                Kind::SmallInt | Kind::Integer | Kind::BigInt | Kind::Bool => {
                    serde_json::Value::from(row.try_get::<i64, _>(i).map_err(backend)?)
                }
                Kind::Blob => {
                    BackupRow::blob_value(&row.try_get::<Vec<u8>, _>(i).map_err(backend)?)
                }
                other => {
                    return Err(StoreError::Corrupt(format!(
                        "column {} holds a {other:?}",
                        column.name()
                    )));
                }
            }
        };
        out.insert(column.name().to_owned(), value);
    }
    Ok(out)
}

/// Holds a key's row until the transaction ends, so that checks of its grants, aliases and
/// tags (quotas, duplicates) hold when several nodes write at once. SQLite has one writer,
/// which serialises these transactions already.
async fn lock_key(
    tx: &mut sqlx::AnyConnection,
    dialect: Dialect,
    region: &str,
    key_id: &str,
) -> StoreResult<()> {
    if dialect == Dialect::Postgres {
        sqlx::query("SELECT 1 FROM keys WHERE region = $1 AND key_id = $2 FOR UPDATE")
            .bind(region.to_owned())
            .bind(key_id.to_owned())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
    }
    Ok(())
}

/// Appends to `statement` the insert of a request's record into the outbox.
fn outbox_insert(mut statement: Statement, intent: &outbox::Intent) -> Statement {
    statement.push(&format!(
        "INSERT INTO audit_outbox ({RECORD_COLUMNS}, node_id, seal) VALUES "
    ));
    statement.push_tuples(&[intent], |row, i| {
        push_record(row, i.record());
        row.bind(i.node().to_owned()).bind(i.seal().to_owned());
    });
    statement.push(" ON CONFLICT DO NOTHING");
    statement
}

/// Commits a write transaction together with the audit record of the change (`outbox`).
async fn commit(mut tx: Transaction<'_, Any>, audit: &Intent) -> StoreResult<()> {
    if audit.kept() {
        outbox_insert(Statement::new(""), audit)
            .build()?
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
    }
    tx.commit().await.map_err(backend)?;
    audit.mark_written();
    Ok(())
}

fn key_from_row(row: &AnyRow) -> StoreResult<KeyMetadata> {
    let json: String = row.try_get("metadata").map_err(backend)?;
    let revision: i64 = row.try_get("revision").map_err(backend)?;
    let mut key: KeyMetadata =
        serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    key.revision = revision;
    Ok(key)
}

/// Stores a key read at revision `$7` as revision `$4`; its state and next job moment
/// are kept in their own columns for the queries that need only them.
const UPDATE_KEY: &str = "UPDATE keys SET metadata = $1, state = $2, due_at = $3, revision = $4 \
     WHERE region = $5 AND key_id = $6 AND revision = $7";

fn key_json(key: &KeyMetadata) -> StoreResult<String> {
    serde_json::to_string(key).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn alias_from_row(row: &AnyRow) -> StoreResult<AliasRecord> {
    let text = |c: &str| -> StoreResult<String> { row.try_get(c).map_err(backend) };
    Ok(AliasRecord {
        region: Region::parse(&text("region")?).ok_or_else(|| corrupt("alias region"))?,
        account: AccountId::parse(&text("account_id")?).ok_or_else(|| corrupt("alias account"))?,
        name: AliasName::parse_existing(&text("alias_name")?).map_err(|_| corrupt("alias name"))?,
        target: KeyId::parse(&text("target_key_id")?).ok_or_else(|| corrupt("alias target"))?,
        created: row.try_get("created_at").map_err(backend)?,
        updated: row.try_get("updated_at").map_err(backend)?,
    })
}

fn digest_from_row(r: &AnyRow) -> StoreResult<AuditDigest> {
    Ok(AuditDigest {
        upto_seq: r.try_get("upto_seq").map_err(backend)?,
        chain_hash: r.try_get("chain_hash").map_err(backend)?,
        signature: r.try_get("signature").map_err(backend)?,
        created: r.try_get("created_at").map_err(backend)?,
        previous: r.try_get("previous").map_err(backend)?,
    })
}

fn audit_from_row(row: &AnyRow) -> StoreResult<AuditRecord> {
    let text = |c: &str| -> StoreResult<String> { row.try_get(c).map_err(backend) };
    let resources = text("resources")?;
    Ok(AuditRecord {
        seq: row.try_get("seq").map_err(backend)?,
        event_id: text("event_id")?,
        event_time: row.try_get("event_time").map_err(backend)?,
        account: text("account_id")?,
        event_name: text("event_name")?,
        event_source: text("event_source")?,
        read_only: row.try_get::<i64, _>("read_only").map_err(backend)? != 0,
        username: text("username")?,
        access_key_id: text("access_key_id")?,
        resources: resources.split_whitespace().map(str::to_owned).collect(),
        event: text("event")?,
        prev_hash: text("prev_hash")?,
        hash: text("hash")?,
    })
}

fn grant_from_row(row: &AnyRow) -> StoreResult<GrantRecord> {
    let text = |c: &str| -> StoreResult<String> { row.try_get(c).map_err(backend) };
    Ok(GrantRecord {
        region: Region::parse(&text("region")?).ok_or_else(|| corrupt("grant region"))?,
        key_id: KeyId::parse(&text("key_id")?).ok_or_else(|| corrupt("grant key"))?,
        grant_id: text("grant_id")?,
        account: AccountId::parse(&text("account_id")?).ok_or_else(|| corrupt("grant account"))?,
        name: row.try_get("name").map_err(backend)?,
        grantee_principal: text("grantee_principal")?,
        retiring_principal: row.try_get("retiring_principal").map_err(backend)?,
        document: text("document")?,
        created: row.try_get("created_at").map_err(backend)?,
    })
}

fn principal_from_row(row: &AnyRow) -> StoreResult<PrincipalRecord> {
    let text = |c: &str| -> StoreResult<String> { row.try_get(c).map_err(backend) };
    Ok(PrincipalRecord {
        arn: text("arn")?,
        account: AccountId::parse(&text("account_id")?)
            .ok_or_else(|| corrupt("principal account"))?,
        kind: PrincipalKind::parse(&text("kind")?).ok_or_else(|| corrupt("principal kind"))?,
        name: text("name")?,
        unique_id: text("unique_id")?,
        created: row.try_get("created_at").map_err(backend)?,
    })
}

/// Inserts versions of a key's material.
fn materials_insert(
    dialect: Dialect,
    region: &str,
    key_id: &str,
    materials: &[StoredMaterial],
) -> Statement {
    let mut insert = Statement::for_dialect(
        dialect,
        "INSERT INTO key_materials (region, key_id, material_id, wrapped, created_at, rotation_type) VALUES ",
    );
    insert.push_tuples(materials, |row, m| {
        row.bind(region.to_owned())
            .bind(key_id.to_owned())
            .bind(m.material_id.to_string())
            .bind(m.wrapped.as_stored().to_vec())
            .bind(m.created)
            .bind(m.rotation_type.map(RotationType::as_str));
    });
    insert
}

fn material_from_row(row: &AnyRow) -> StoreResult<StoredMaterial> {
    let id: String = row.try_get("material_id").map_err(backend)?;
    let rotation: Option<String> = row.try_get("rotation_type").map_err(backend)?;
    Ok(StoredMaterial {
        material_id: MaterialId::parse(&id).ok_or_else(|| corrupt("material id"))?,
        wrapped: WrappedMaterial::from_stored(row.try_get("wrapped").map_err(backend)?),
        created: row.try_get("created_at").map_err(backend)?,
        rotation_type: rotation
            .map(|r| RotationType::parse(&r).ok_or_else(|| corrupt("rotation type")))
            .transpose()?,
    })
}

/// Adds tags, or overwrites the values of those with the same keys (a request's tag keys
/// are distinct, as `check_new_tags` makes sure).
fn tags_upsert(dialect: Dialect, region: &str, key_id: &str, tags: &[Tag]) -> Statement {
    let mut upsert = Statement::for_dialect(
        dialect,
        "INSERT INTO tags (region, key_id, tag_key, tag_value) VALUES ",
    );
    upsert.push_tuples(tags, |row, t| {
        row.bind(region.to_owned())
            .bind(key_id.to_owned())
            .bind(t.key.clone())
            .bind(t.value.clone());
    });
    upsert.push(
        " ON CONFLICT (region, key_id, tag_key) DO UPDATE SET tag_value = excluded.tag_value",
    );
    upsert
}

/// Counts the aliases of a key inside a transaction and refuses one more than the quota.
async fn check_alias_quota(
    tx: &mut sqlx::AnyConnection,
    alias: &AliasRecord,
    max_per_key: usize,
) -> StoreResult<()> {
    let n: i64 = sqlx::query(
        "SELECT COUNT(*) FROM aliases WHERE region = $1 AND target_key_id = $2 AND alias_name != $3",
    )
    .bind(alias.region.as_str())
    .bind(alias.target.to_string())
    .bind(alias.name.as_str())
    .fetch_one(&mut *tx)
    .await
    .map_err(backend)?
    .try_get(0)
    .map_err(backend)?;
    if count(n) >= max_per_key {
        return Err(StoreError::LimitExceeded {
            in_use: count(n) + 1,
        });
    }
    Ok(())
}

#[async_trait]
impl Identities for SqlStore {
    async fn put_access_key(&self, audit: &Intent, r: &AccessKeyRecord) -> StoreResult<()> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            sqlx::query(
                "INSERT INTO accounts (account_id, created_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            )
            .bind(r.account.as_str())
            .bind(r.created)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            sqlx::query(
                "INSERT INTO access_keys (access_key_id, account_id, principal_arn, user_id, \
                 wrapped_secret, created_at, session_token_hash, expires_at, role_arn) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            )
            .bind(&r.access_key_id)
            .bind(r.account.as_str())
            .bind(&r.principal_arn)
            .bind(&r.user_id)
            .bind(&r.wrapped_secret)
            .bind(r.created)
            .bind(r.session.as_ref().map(|s| s.token_hash.clone()))
            .bind(r.session.as_ref().map(|s| s.expires))
            .bind(r.session.as_ref().map(|s| s.role_arn.clone()))
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists
                } else {
                    backend(e)
                }
            })?;
            commit(tx, audit).await
        }
        .await;
        let announced = self.identities_written();
        let value = result?;
        announced?;
        Ok(value)
    }

    async fn access_key(&self, access_key_id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        let cache = self.identity_cache().map(|c| &c.access_keys);
        read_through(cache, access_key_id.to_owned(), || async {
            let row = sqlx::query("SELECT * FROM access_keys WHERE access_key_id = $1")
                .bind(access_key_id)
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?;
            let Some(row) = row else { return Ok(None) };
            let account: String = row.try_get("account_id").map_err(backend)?;
            Ok(Some(AccessKeyRecord {
                access_key_id: row.try_get("access_key_id").map_err(backend)?,
                account: AccountId::parse(&account).ok_or_else(|| corrupt("access key account"))?,
                principal_arn: row.try_get("principal_arn").map_err(backend)?,
                user_id: row.try_get("user_id").map_err(backend)?,
                wrapped_secret: row.try_get("wrapped_secret").map_err(backend)?,
                created: row.try_get("created_at").map_err(backend)?,
                session: match row
                    .try_get::<Option<String>, _>("session_token_hash")
                    .map_err(backend)?
                {
                    None => None,
                    Some(token_hash) => Some(SessionInfo {
                        token_hash,
                        expires: row
                            .try_get::<Option<i64>, _>("expires_at")
                            .map_err(backend)?
                            .ok_or_else(|| corrupt("session expiry"))?,
                        role_arn: row
                            .try_get::<Option<String>, _>("role_arn")
                            .map_err(backend)?
                            .ok_or_else(|| corrupt("session role"))?,
                    }),
                },
            }))
        })
        .await
    }

    async fn put_trust_policy(&self, audit: &Intent, role: &RoleTrust) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO trust_policies (role_arn, document, max_session_seconds) \
             VALUES ($1, $2, $3) ON CONFLICT (role_arn) DO UPDATE SET \
             document = excluded.document, max_session_seconds = excluded.max_session_seconds",
        )
        .bind(role.role_arn.clone())
        .bind(role.document.clone())
        .bind(role.max_session_seconds)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        commit(tx, audit).await?;
        Ok(())
    }

    async fn trust_policy(&self, role_arn: &str) -> StoreResult<Option<RoleTrust>> {
        let Some(row) = sqlx::query(
            "SELECT document, max_session_seconds FROM trust_policies WHERE role_arn = $1",
        )
        .bind(role_arn)
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?
        else {
            return Ok(None);
        };
        Ok(Some(RoleTrust {
            role_arn: role_arn.to_owned(),
            document: row.try_get("document").map_err(backend)?,
            max_session_seconds: row.try_get("max_session_seconds").map_err(backend)?,
        }))
    }

    async fn access_key_count(&self) -> StoreResult<usize> {
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM access_keys")
            .fetch_one(&self.reader)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        Ok(count(n))
    }

    async fn put_principal(&self, audit: &Intent, p: &PrincipalRecord) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        sqlx::query(
            "INSERT INTO principals (arn, account_id, kind, name, unique_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&p.arn)
        .bind(p.account.as_str())
        .bind(p.kind.as_str())
        .bind(&p.name)
        .bind(&p.unique_id)
        .bind(p.created)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AlreadyExists
            } else {
                backend(e)
            }
        })?;
        commit(tx, audit).await?;
        Ok(())
    }

    async fn principal(&self, arn: &str) -> StoreResult<Option<PrincipalRecord>> {
        sqlx::query("SELECT * FROM principals WHERE arn = $1")
            .bind(arn)
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?
            .map(|row| principal_from_row(&row))
            .transpose()
    }

    async fn list_principals(&self) -> StoreResult<Vec<PrincipalRecord>> {
        sqlx::query("SELECT * FROM principals ORDER BY arn")
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
            .iter()
            .map(principal_from_row)
            .collect()
    }

    async fn delete_access_key(&self, audit: &Intent, access_key_id: &str) -> StoreResult<bool> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let done = sqlx::query("DELETE FROM access_keys WHERE access_key_id = $1")
                .bind(access_key_id)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            commit(tx, audit).await?;
            Ok(done.rows_affected() > 0)
        }
        .await;
        let announced = self.identities_written();
        self.changed_everywhere().await;
        let value = result?;
        announced?;
        Ok(value)
    }

    async fn access_key_ids_of(&self, principal_arn: &str) -> StoreResult<Vec<String>> {
        let rows = sqlx::query(
            "SELECT access_key_id FROM access_keys WHERE principal_arn = $1 ORDER BY access_key_id",
        )
        .bind(principal_arn)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|r| r.try_get("access_key_id").map_err(backend))
            .collect()
    }

    async fn delete_identity_policy(
        &self,
        audit: &Intent,
        principal_arn: &str,
        name: &str,
    ) -> StoreResult<bool> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let done = sqlx::query(
                "DELETE FROM identity_policies WHERE principal_arn = $1 AND policy_name = $2",
            )
            .bind(principal_arn)
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            commit(tx, audit).await?;
            Ok(done.rows_affected() > 0)
        }
        .await;
        let announced = self.identities_written();
        self.changed_everywhere().await;
        let value = result?;
        announced?;
        Ok(value)
    }

    async fn put_identity_policy(
        &self,
        audit: &Intent,
        principal_arn: &str,
        name: &str,
        document: &str,
    ) -> StoreResult<()> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            sqlx::query(
                "INSERT INTO identity_policies (principal_arn, policy_name, document) VALUES ($1, $2, $3) \
                 ON CONFLICT (principal_arn, policy_name) DO UPDATE SET document = excluded.document",
            )
            .bind(principal_arn)
            .bind(name)
            .bind(document)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            commit(tx, audit).await?;
            Ok(())
        }
        .await;
        let announced = self.identities_written();
        self.changed_everywhere().await;
        let value = result?;
        announced?;
        Ok(value)
    }

    async fn identity_policy(
        &self,
        principal_arn: &str,
        name: &str,
    ) -> StoreResult<Option<String>> {
        sqlx::query(
            "SELECT document FROM identity_policies WHERE principal_arn = $1 AND policy_name = $2",
        )
        .bind(principal_arn)
        .bind(name)
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?
        .map(|r| r.try_get("document").map_err(backend))
        .transpose()
    }

    async fn identity_policies(&self, principal_arn: &str) -> StoreResult<Vec<String>> {
        let cache = self.identity_cache().map(|c| &c.identity_policies);
        read_through(cache, principal_arn.to_owned(), || async {
            let rows = sqlx::query(
                "SELECT document FROM identity_policies WHERE principal_arn = $1 ORDER BY policy_name",
            )
            .bind(principal_arn)
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?;
            rows.iter()
                .map(|r| r.try_get("document").map_err(backend))
                .collect()
        })
        .await
    }
}

#[async_trait]
impl Keys for SqlStore {
    async fn create_key(
        &self,
        audit: &Intent,
        key: &KeyMetadata,
        materials: &[StoredMaterial],
        tags: &[Tag],
    ) -> StoreResult<()> {
        let result = async {
            let region = key.region().as_str();
            let id = key.id().to_string();
            let metadata = key_json(key)?;
            let statement = |sql: &str| Statement::for_dialect(self.dialect, sql);
            // Kept beside the keys so that the keys-per-region quota costs one row read.
            let mut count = statement(
                "INSERT INTO key_counts (region, account_id, n) VALUES (",
            );
            count.push_values(|row| {
                row.bind(region.to_owned()).bind(key.account().as_str().to_owned());
            });
            count.push(", 1) ON CONFLICT (region, account_id) DO UPDATE SET n = key_counts.n + 1");
            let mut insert = statement(
                "INSERT INTO keys (region, key_id, account_id, revision, metadata, state, due_at) VALUES ",
            );
            insert.push_tuples(&[key], |row, key| {
                row.bind(region.to_owned())
                    .bind(id.clone())
                    .bind(key.account().as_str().to_owned())
                    .bind(key.revision)
                    .bind(metadata.clone())
                    .bind(key.state.as_str())
                    .bind(key.next_job_at());
            });
            let mut statements = vec![count, insert];
            if !materials.is_empty() {
                statements.push(materials_insert(self.dialect, region, &id, materials));
            }
            if !tags.is_empty() {
                statements.push(tags_upsert(self.dialect, region, &id, tags));
            }
            self.execute_with_intent(statements, audit).await.map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists
                } else {
                    backend(e)
                }
            })
        }
        .await;
        self.key_written(key.region(), &key.id());
        result
    }

    async fn key(&self, region: &Region, id: &KeyId) -> StoreResult<Option<KeyMetadata>> {
        let cache = self.cache.as_ref();
        read_through(cache.map(|c| &c.keys), (region.clone(), *id), || async {
            let found = sqlx::query(
                "SELECT metadata, revision FROM keys WHERE region = $1 AND key_id = $2",
            )
            .bind(region.as_str())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?
            .map(|row| key_from_row(&row))
            .transpose()?;
            Ok(found.map(|mut key| {
                if let Some(cache) = cache {
                    key.policy = cache.policies.intern(key.policy);
                }
                key
            }))
        })
        .await
    }

    async fn list_keys(
        &self,
        region: &Region,
        account: &AccountId,
        page: Page<'_>,
    ) -> StoreResult<Vec<KeyMetadata>> {
        sqlx::query(
            "SELECT metadata, revision FROM keys WHERE region = $1 AND account_id = $2 AND key_id > $3 \
             ORDER BY key_id LIMIT $4",
        )
        .bind(region.as_str())
        .bind(account.as_str())
        .bind(page.after.unwrap_or(""))
        .bind(limit_param(&page))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn update_key(&self, audit: &Intent, key: &KeyMetadata) -> StoreResult<i64> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let next = key.revision + 1;
            let mut stored = key.clone();
            stored.revision = next;
            let done = sqlx::query(UPDATE_KEY)
                .bind(key_json(&stored)?)
                .bind(stored.state.as_str())
                .bind(stored.next_job_at())
                .bind(next)
                .bind(key.region().as_str())
                .bind(key.id().to_string())
                .bind(key.revision)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if done.rows_affected() == 1 {
                commit(tx, audit).await?;
                Ok(next)
            } else {
                Err(StoreError::Conflict)
            }
        }
        .await;
        self.key_written(key.region(), &key.id());
        self.changed_everywhere().await;
        result
    }

    async fn material(
        &self,
        region: &Region,
        id: &KeyId,
        material: &MaterialId,
    ) -> StoreResult<Option<StoredMaterial>> {
        sqlx::query(
            "SELECT * FROM key_materials WHERE region = $1 AND key_id = $2 AND material_id = $3",
        )
        .bind(region.as_str())
        .bind(id.to_string())
        .bind(material.to_string())
        .fetch_optional(&self.reader)
        .await
        .map_err(backend)?
        .map(|row| material_from_row(&row))
        .transpose()
    }

    async fn materials(&self, region: &Region, id: &KeyId) -> StoreResult<Vec<StoredMaterial>> {
        sqlx::query(
            "SELECT * FROM key_materials WHERE region = $1 AND key_id = $2 ORDER BY created_at, rowid",
        )
        .bind(region.as_str())
        .bind(id.to_string())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(material_from_row)
        .collect()
    }

    async fn rotate_key(
        &self,
        audit: &Intent,
        key: &KeyMetadata,
        material: &StoredMaterial,
    ) -> StoreResult<i64> {
        let result = async {
            let next = key.revision + 1;
            let mut stored = key.clone();
            stored.revision = next;
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let done = sqlx::query(UPDATE_KEY)
                .bind(key_json(&stored)?)
                .bind(stored.state.as_str())
                .bind(stored.next_job_at())
                .bind(next)
                .bind(key.region().as_str())
                .bind(key.id().to_string())
                .bind(key.revision)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
            materials_insert(
                self.dialect,
                key.region().as_str(),
                &key.id().to_string(),
                std::slice::from_ref(material),
            )
            .build()?
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            commit(tx, audit).await?;
            Ok(next)
        }
        .await;
        self.key_written(key.region(), &key.id());
        self.changed_everywhere().await;
        result
    }

    async fn change_materials(
        &self,
        audit: &Intent,
        key: &KeyMetadata,
        put: Option<&StoredMaterial>,
        remove: Removal<'_>,
    ) -> StoreResult<i64> {
        let result = async {
            let next = key.revision + 1;
            let mut stored = key.clone();
            stored.revision = next;
            let (region, id) = (key.region().as_str(), key.id().to_string());
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let done = sqlx::query(UPDATE_KEY)
                .bind(key_json(&stored)?)
                .bind(stored.state.as_str())
                .bind(stored.next_job_at())
                .bind(next)
                .bind(region)
                .bind(&id)
                .bind(key.revision)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if done.rows_affected() != 1 {
                return Err(StoreError::Conflict);
            }
            let removed: Vec<String> = match remove {
                Removal::All => Vec::new(),
                Removal::Only(ids) => ids
                    .iter()
                    .chain(put.map(|p| &p.material_id))
                    .map(|m| m.to_string())
                    .collect(),
            };
            if matches!(remove, Removal::All) {
                sqlx::query("DELETE FROM key_materials WHERE region = $1 AND key_id = $2")
                    .bind(region)
                    .bind(&id)
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            for material in &removed {
                sqlx::query(
                    "DELETE FROM key_materials WHERE region = $1 AND key_id = $2 AND material_id = $3",
                )
                .bind(region)
                .bind(&id)
                .bind(material)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            }
            if let Some(material) = put {
                materials_insert(self.dialect, region, &id, std::slice::from_ref(material))
                    .build()?
                    .execute(&mut *tx)
                    .await
                    .map_err(backend)?;
            }
            commit(tx, audit).await?;
            Ok(next)
        }
        .await;
        self.key_written(key.region(), &key.id());
        self.changed_everywhere().await;
        result
    }

    async fn delete_key(&self, audit: &Intent, region: &Region, id: &KeyId) -> StoreResult<bool> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            sqlx::query("DELETE FROM aliases WHERE region = $1 AND target_key_id = $2")
                .bind(region.as_str())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            let account: Option<String> =
                sqlx::query("SELECT account_id FROM keys WHERE region = $1 AND key_id = $2")
                    .bind(region.as_str())
                    .bind(id.to_string())
                    .fetch_optional(&mut *tx)
                    .await
                    .map_err(backend)?
                    .map(|r| r.try_get("account_id"))
                    .transpose()
                    .map_err(backend)?;
            // Material, tags and grants go with the key (ON DELETE CASCADE).
            let done = sqlx::query("DELETE FROM keys WHERE region = $1 AND key_id = $2")
                .bind(region.as_str())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            if done.rows_affected() == 0 {
                // Another deleter was first: this one changed nothing, and records nothing.
                return Ok(false);
            }
            sqlx::query("DELETE FROM key_last_usage WHERE region = $1 AND key_id = $2")
                .bind(region.as_str())
                .bind(id.to_string())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            sqlx::query("UPDATE key_counts SET n = n - 1 WHERE region = $1 AND account_id = $2")
                .bind(region.as_str())
                .bind(account)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            commit(tx, audit).await?;
            Ok(true)
        }
        .await;
        self.key_written(region, id);
        self.aliases_written(None);
        self.grants_written(region, id);
        self.changed_everywhere().await;
        result
    }

    async fn key_count(&self, region: &Region, account: &AccountId) -> StoreResult<usize> {
        let n: Option<i64> =
            sqlx::query("SELECT n FROM key_counts WHERE region = $1 AND account_id = $2")
                .bind(region.as_str())
                .bind(account.as_str())
                .fetch_optional(&self.reader)
                .await
                .map_err(backend)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(backend)?;
        Ok(count(n.unwrap_or(0)))
    }

    async fn keys_due(&self, now: i64) -> StoreResult<Vec<KeyMetadata>> {
        sqlx::query(
            "SELECT metadata, revision FROM keys WHERE due_at <= $1 ORDER BY region, key_id",
        )
        .bind(now)
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(key_from_row)
        .collect()
    }

    async fn key_states(&self) -> StoreResult<Vec<(String, usize)>> {
        sqlx::query("SELECT state, COUNT(*) AS n FROM keys GROUP BY state ORDER BY state")
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
            .iter()
            .map(|r| {
                let n: i64 = r.try_get("n").map_err(backend)?;
                Ok((r.try_get("state").map_err(backend)?, count(n)))
            })
            .collect()
    }

    async fn all_keys(&self) -> StoreResult<Vec<KeyMetadata>> {
        sqlx::query("SELECT metadata, revision FROM keys ORDER BY region, key_id")
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
            .iter()
            .map(key_from_row)
            .collect()
    }
}

#[async_trait]
impl Aliases for SqlStore {
    async fn create_alias(
        &self,
        audit: &Intent,
        alias: &AliasRecord,
        max_per_key: usize,
    ) -> StoreResult<()> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let exists = sqlx::query(
                "SELECT 1 FROM aliases WHERE region = $1 AND account_id = $2 AND alias_name = $3",
            )
            .bind(alias.region.as_str())
            .bind(alias.account.as_str())
            .bind(alias.name.as_str())
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            if exists.is_some() {
                return Err(StoreError::AlreadyExists);
            }
            lock_key(
                &mut tx,
                self.dialect,
                alias.region.as_str(),
                &alias.target.to_string(),
            )
            .await?;
            check_alias_quota(&mut tx, alias, max_per_key).await?;
            sqlx::query(
                "INSERT INTO aliases (region, account_id, alias_name, target_key_id, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .bind(alias.region.as_str())
            .bind(alias.account.as_str())
            .bind(alias.name.as_str())
            .bind(alias.target.to_string())
            .bind(alias.created)
            .bind(alias.updated)
            .execute(&mut *tx)
            .await
            .map_err(|e| {
                // Another node made the same alias since the check above.
                if is_unique_violation(&e) {
                    StoreError::AlreadyExists
                } else {
                    backend(e)
                }
            })?;
            commit(tx, audit).await
        }
        .await;
        self.aliases_written(Some((&alias.region, &alias.account, &alias.name)));
        self.changed_everywhere().await;
        result
    }

    async fn alias(
        &self,
        region: &Region,
        account: &AccountId,
        name: &AliasName,
    ) -> StoreResult<Option<AliasRecord>> {
        let cache = self.cache.as_ref().map(|c| &c.aliases);
        read_through(
            cache,
            (region.clone(), account.clone(), name.clone()),
            || async {
                sqlx::query(
                "SELECT * FROM aliases WHERE region = $1 AND account_id = $2 AND alias_name = $3",
            )
            .bind(region.as_str())
            .bind(account.as_str())
            .bind(name.as_str())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?
            .map(|row| alias_from_row(&row))
            .transpose()
            },
        )
        .await
    }

    async fn retarget_alias(
        &self,
        audit: &Intent,
        alias: &AliasRecord,
        from: &KeyId,
        max_per_key: usize,
    ) -> StoreResult<()> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            lock_key(
                &mut tx,
                self.dialect,
                alias.region.as_str(),
                &alias.target.to_string(),
            )
            .await?;
            check_alias_quota(&mut tx, alias, max_per_key).await?;
            let done = sqlx::query(
                "UPDATE aliases SET target_key_id = $1, updated_at = $2 \
                 WHERE region = $3 AND account_id = $4 AND alias_name = $5 \
                 AND target_key_id = $6",
            )
            .bind(alias.target.to_string())
            .bind(alias.updated)
            .bind(alias.region.as_str())
            .bind(alias.account.as_str())
            .bind(alias.name.as_str())
            .bind(from.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            if done.rows_affected() == 0 {
                let exists = sqlx::query(
                    "SELECT 1 FROM aliases WHERE region = $1 AND account_id = $2 \
                     AND alias_name = $3",
                )
                .bind(alias.region.as_str())
                .bind(alias.account.as_str())
                .bind(alias.name.as_str())
                .fetch_optional(&mut *tx)
                .await
                .map_err(backend)?
                .is_some();
                return Err(if exists {
                    StoreError::Conflict
                } else {
                    StoreError::NotFound
                });
            }
            commit(tx, audit).await
        }
        .await;
        self.aliases_written(Some((&alias.region, &alias.account, &alias.name)));
        self.changed_everywhere().await;
        result
    }

    async fn delete_alias(
        &self,
        audit: &Intent,
        region: &Region,
        account: &AccountId,
        name: &AliasName,
        target: &KeyId,
    ) -> StoreResult<bool> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let done = sqlx::query(
                "DELETE FROM aliases WHERE region = $1 AND account_id = $2 AND alias_name = $3 \
                 AND target_key_id = $4",
            )
            .bind(region.as_str())
            .bind(account.as_str())
            .bind(name.as_str())
            .bind(target.to_string())
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            commit(tx, audit).await?;
            Ok(done.rows_affected() > 0)
        }
        .await;
        self.aliases_written(Some((region, account, name)));
        self.changed_everywhere().await;
        result
    }

    async fn list_aliases(
        &self,
        region: &Region,
        account: &AccountId,
        target: Option<&KeyId>,
        page: Page<'_>,
    ) -> StoreResult<Vec<AliasRecord>> {
        let target = target.map(|t| t.to_string());
        // Names in byte order on both backends (SQLite's default; PostgreSQL's only with
        // the "C" collation): the API merges them with names of its own, in that order.
        let query = match self.dialect {
            Dialect::Sqlite => {
                "SELECT * FROM aliases WHERE region = $1 AND account_id = $2 \
                 AND ($3 IS NULL OR target_key_id = $4) AND alias_name > $5 \
                 ORDER BY alias_name LIMIT $6"
            }
            Dialect::Postgres => {
                "SELECT * FROM aliases WHERE region = $1 AND account_id = $2 \
                 AND ($3 IS NULL OR target_key_id = $4) AND alias_name COLLATE \"C\" > $5 \
                 ORDER BY alias_name COLLATE \"C\" LIMIT $6"
            }
        };
        sqlx::query(query)
            .bind(region.as_str())
            .bind(account.as_str())
            .bind(&target)
            .bind(&target)
            .bind(page.after.unwrap_or(""))
            .bind(limit_param(&page))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
            .iter()
            .map(alias_from_row)
            .collect()
    }
}

#[async_trait]
impl Tags for SqlStore {
    async fn tag_key(
        &self,
        audit: &Intent,
        region: &Region,
        id: &KeyId,
        tags: &[Tag],
        max_tags: usize,
    ) -> StoreResult<()> {
        let id = id.to_string();
        let mut tx = self.writer.begin().await.map_err(backend)?;
        lock_key(&mut tx, self.dialect, region.as_str(), &id).await?;
        if !tags.is_empty() {
            tags_upsert(self.dialect, region.as_str(), &id, tags)
                .build()?
                .execute(&mut *tx)
                .await
                .map_err(|e| match &e {
                    sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                        StoreError::NotFound
                    }
                    _ => backend(e),
                })?;
        }
        let n: i64 = sqlx::query("SELECT COUNT(*) FROM tags WHERE region = $1 AND key_id = $2")
            .bind(region.as_str())
            .bind(&id)
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
        if count(n) > max_tags {
            // Dropping the transaction rolls the new tags back.
            return Err(StoreError::LimitExceeded { in_use: count(n) });
        }
        commit(tx, audit).await
    }

    async fn untag_key(
        &self,
        audit: &Intent,
        region: &Region,
        id: &KeyId,
        tag_keys: &[String],
    ) -> StoreResult<()> {
        let id = id.to_string();
        let mut tx = self.writer.begin().await.map_err(backend)?;
        for key in tag_keys {
            sqlx::query("DELETE FROM tags WHERE region = $1 AND key_id = $2 AND tag_key = $3")
                .bind(region.as_str())
                .bind(&id)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        commit(tx, audit).await
    }

    async fn list_tags(
        &self,
        region: &Region,
        id: &KeyId,
        page: Page<'_>,
    ) -> StoreResult<Vec<Tag>> {
        let rows = sqlx::query(
            "SELECT tag_key, tag_value FROM tags WHERE region = $1 AND key_id = $2 AND tag_key > $3 \
             ORDER BY tag_key LIMIT $4",
        )
        .bind(region.as_str())
        .bind(id.to_string())
        .bind(page.after.unwrap_or(""))
        .bind(limit_param(&page))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?;
        rows.iter()
            .map(|row| {
                Ok(Tag {
                    key: row.try_get("tag_key").map_err(backend)?,
                    value: row.try_get("tag_value").map_err(backend)?,
                })
            })
            .collect()
    }
}

#[async_trait]
impl Grants for SqlStore {
    async fn create_grant(
        &self,
        audit: &Intent,
        grant: &GrantRecord,
        max_per_key: usize,
    ) -> StoreResult<String> {
        let outcome = self.insert_grant(audit, grant, max_per_key).await;
        self.grants_written(&grant.region, &grant.key_id);
        // A grant token lets a caller use a grant at once, on any node; and a retry that
        // finds the grant made (or a commit whose answer was lost) must wait as the first
        // call did.
        self.changed_everywhere().await;
        outcome
    }

    async fn grants_of_key(
        &self,
        region: &Region,
        key: &KeyId,
        page: Page<'_>,
    ) -> StoreResult<Vec<GrantRecord>> {
        // The first page, which authorization reads on every call that needs a grant.
        let cache = self.cache.as_ref().filter(|_| page.after.is_none());
        let ticket = match cache.map(|c| c.grants.get(&(region.clone(), *key))) {
            Some(Lookup::Hit((limit, grants))) if limit == page.limit => return Ok(grants),
            Some(Lookup::Miss(ticket)) => Some(ticket),
            // Read with another page size: read again, keep nothing.
            Some(Lookup::Hit(_)) | Some(Lookup::Bypass) | None => None,
        };
        let grants = self.read_grants_of_key(region, key, page).await?;
        if let (Some(cache), Some(ticket)) = (cache, ticket) {
            cache
                .grants
                .fill(ticket, (region.clone(), *key), (page.limit, grants.clone()));
        }
        Ok(grants)
    }

    async fn grants_retirable_by(
        &self,
        region: &Region,
        retiring_principal: &str,
        page: Page<'_>,
    ) -> StoreResult<Vec<GrantRecord>> {
        sqlx::query(
            "SELECT * FROM grants WHERE region = $1 AND retiring_principal = $2 \
             AND (key_id || '/' || grant_id) > $3 ORDER BY key_id, grant_id LIMIT $4",
        )
        .bind(region.as_str())
        .bind(retiring_principal)
        .bind(page.after.unwrap_or(""))
        .bind(limit_param(&page))
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(grant_from_row)
        .collect()
    }

    async fn delete_grant(
        &self,
        audit: &Intent,
        region: &Region,
        key: &KeyId,
        grant_id: &str,
    ) -> StoreResult<bool> {
        let outcome = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let done = sqlx::query(
                "DELETE FROM grants WHERE region = $1 AND key_id = $2 AND grant_id = $3",
            )
            .bind(region.as_str())
            .bind(key.to_string())
            .bind(grant_id)
            .execute(&mut *tx)
            .await
            .map_err(backend)?;
            commit(tx, audit).await?;
            Ok(done.rows_affected() > 0)
        }
        .await;
        self.grants_written(region, key);
        // Also when nothing was deleted: a revocation racing this one may have committed
        // and be waiting still, and this caller must not learn the grant is gone before it
        // is gone everywhere.
        self.changed_everywhere().await;
        outcome
    }
}

#[async_trait]
impl CustomKeyStores for SqlStore {
    async fn create_custom_key_store(
        &self,
        audit: &Intent,
        record: &crate::CustomKeyStoreRecord,
        max_per_account: usize,
    ) -> StoreResult<()> {
        self.insert_key_store(audit, record, max_per_account).await
    }

    async fn custom_key_stores(
        &self,
        region: &Region,
        account: &AccountId,
    ) -> StoreResult<Vec<crate::CustomKeyStoreRecord>> {
        self.key_stores_of(region, account).await
    }

    async fn update_custom_key_store(
        &self,
        audit: &Intent,
        record: &crate::CustomKeyStoreRecord,
    ) -> StoreResult<i64> {
        self.replace_key_store(audit, record).await
    }

    async fn delete_custom_key_store(
        &self,
        audit: &Intent,
        region: &Region,
        account: &AccountId,
        id: &str,
    ) -> StoreResult<bool> {
        self.remove_key_store(audit, region, account, id).await
    }
}

#[async_trait]
impl AuditTrail for SqlStore {
    async fn append_audit_events(
        &self,
        events: &[AuditRecord],
        digest: Option<&AuditDigest>,
        usage: &[KeyUsageMark],
    ) -> StoreResult<()> {
        // A batch longer than one multi-row INSERT (events kept after failed appends) could
        // pass PostgreSQL's 65,535 parameters in one statement; it takes the slow path.
        if self.dialect == Dialect::Postgres && events.len() <= AUDIT_ROWS_PER_STATEMENT {
            return self
                .append_audit_events_in_one_statement(events, digest, usage)
                .await;
        }
        let mut statements = Vec::new();
        if !usage.is_empty() {
            let mut upsert = Statement::for_dialect(self.dialect, "");
            push_usage_upsert(&mut upsert, usage);
            statements.push(upsert);
        }
        if let Some(d) = digest {
            let mut insert = Statement::for_dialect(self.dialect, "");
            push_digest_insert(&mut insert, d);
            statements.push(insert);
        }
        for chunk in events.chunks(AUDIT_ROWS_PER_STATEMENT) {
            let mut insert = Statement::for_dialect(self.dialect, "");
            push_events_insert(&mut insert, chunk);
            let mut delete = Statement::for_dialect(self.dialect, "");
            push_outbox_delete(&mut delete, chunk);
            statements.extend([insert, delete]);
        }
        self.execute_atomically(statements, Commit::Own)
            .await
            .map_err(append_failure)
    }

    async fn key_last_usage(
        &self,
        region: &Region,
        id: &KeyId,
    ) -> StoreResult<Option<KeyUsageMark>> {
        let row = sqlx::query("SELECT * FROM key_last_usage WHERE region = $1 AND key_id = $2")
            .bind(region.as_str())
            .bind(id.to_string())
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(KeyUsageMark {
            region: region.clone(),
            key_id: *id,
            operation: row.try_get("operation").map_err(backend)?,
            at: row.try_get("used_at").map_err(backend)?,
            event_id: row.try_get("event_id").map_err(backend)?,
            request_id: row.try_get("request_id").map_err(backend)?,
        }))
    }

    async fn usage_tracking_start(&self, now: Millis) -> StoreResult<Millis> {
        sqlx::query(
            "INSERT INTO usage_tracking (id, started_at) VALUES (1, $1) ON CONFLICT DO NOTHING",
        )
        .bind(now)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        sqlx::query("SELECT started_at FROM usage_tracking WHERE id = 1")
            .fetch_one(&self.writer)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)
    }

    async fn chained_events(&self, event_ids: &[&str]) -> StoreResult<Vec<(String, String)>> {
        let mut found = Vec::new();
        for chunk in event_ids.chunks(AUDIT_ROWS_PER_STATEMENT) {
            let mut query = Statement::for_dialect(
                self.dialect,
                "SELECT event_id, event FROM audit_events WHERE event_id IN ",
            );
            query.push_tuples(&[chunk], |row, chunk| {
                for id in *chunk {
                    row.bind((*id).to_owned());
                }
            });
            for row in query
                .build()?
                .fetch_all(&self.writer)
                .await
                .map_err(backend)?
            {
                found.push((
                    row.try_get("event_id").map_err(backend)?,
                    row.try_get("event").map_err(backend)?,
                ));
            }
        }
        Ok(found)
    }

    async fn drop_chained_outbox(&self, event_ids: &[&str]) -> StoreResult<()> {
        for chunk in event_ids.chunks(AUDIT_ROWS_PER_STATEMENT) {
            let mut delete =
                Statement::for_dialect(self.dialect, "DELETE FROM audit_outbox WHERE event_id IN ");
            delete.push_tuples(&[chunk], |row, chunk| {
                for id in *chunk {
                    row.bind((*id).to_owned());
                }
            });
            delete.push(" AND event_id IN (SELECT event_id FROM audit_events)");
            delete
                .build()?
                .execute(&self.writer)
                .await
                .map_err(backend)?;
        }
        Ok(())
    }

    async fn audit_outbox(&self) -> StoreResult<Vec<outbox::OutboxRecord>> {
        sqlx::query(
            "SELECT CAST(0 AS BIGINT) AS seq, event_id, event_time, account_id, event_name, \
             event_source, read_only, username, access_key_id, resources, event, \
             '' AS prev_hash, '' AS hash, node_id, seal \
             FROM audit_outbox ORDER BY event_time, rowid",
        )
        .fetch_all(&self.writer)
        .await
        .map_err(backend)?
        .iter()
        .map(|row| {
            Ok(outbox::OutboxRecord {
                node: row.try_get("node_id").map_err(backend)?,
                seal: row.try_get("seal").map_err(backend)?,
                record: audit_from_row(row)?,
            })
        })
        .collect()
    }

    async fn audit_digests(&self) -> StoreResult<Vec<AuditDigest>> {
        sqlx::query("SELECT * FROM audit_digests ORDER BY upto_seq")
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
            .iter()
            .map(digest_from_row)
            .collect()
    }

    async fn audit_chain_end(&self) -> StoreResult<Option<(AuditRecord, Option<AuditDigest>)>> {
        // One statement, so one snapshot, even while other nodes append.
        let Some(row) = sqlx::query(
            "SELECT e.*, d.upto_seq, d.chain_hash, d.signature, d.created_at, d.previous \
             FROM audit_events e LEFT JOIN audit_digests d ON d.upto_seq = e.seq \
             ORDER BY e.seq DESC LIMIT 1",
        )
        .fetch_optional(&self.writer)
        .await
        .map_err(backend)?
        else {
            return Ok(None);
        };
        let event = audit_from_row(&row)?;
        let upto: Option<i64> = row.try_get("upto_seq").map_err(backend)?;
        let digest = match upto {
            Some(_) => Some(digest_from_row(&row)?),
            None => None,
        };
        Ok(Some((event, digest)))
    }

    async fn audit_signing_key(
        &self,
        candidate: (&[u8], &[u8]),
    ) -> StoreResult<(Vec<u8>, Vec<u8>)> {
        sqlx::query(
            "INSERT INTO audit_signing_key (id, wrapped, public_key) VALUES (1, $1, $2) ON CONFLICT DO NOTHING",
        )
        .bind(candidate.0)
        .bind(candidate.1)
        .execute(&self.writer)
        .await
        .map_err(backend)?;
        let row = sqlx::query("SELECT wrapped, public_key FROM audit_signing_key WHERE id = 1")
            .fetch_one(&self.writer)
            .await
            .map_err(backend)?;
        Ok((
            row.try_get("wrapped").map_err(backend)?,
            row.try_get("public_key").map_err(backend)?,
        ))
    }

    async fn stored_audit_signing_key(&self) -> StoreResult<Option<(Vec<u8>, Vec<u8>)>> {
        sqlx::query("SELECT wrapped, public_key FROM audit_signing_key WHERE id = 1")
            .fetch_optional(&self.reader)
            .await
            .map_err(backend)?
            .map(|row| {
                Ok((
                    row.try_get("wrapped").map_err(backend)?,
                    row.try_get("public_key").map_err(backend)?,
                ))
            })
            .transpose()
    }

    async fn audit_events(&self, after_seq: i64, limit: usize) -> StoreResult<Vec<AuditRecord>> {
        sqlx::query("SELECT * FROM audit_events WHERE seq > $1 ORDER BY seq LIMIT $2")
            .bind(after_seq)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
            .iter()
            .map(audit_from_row)
            .collect()
    }

    async fn last_audit_event(&self) -> StoreResult<Option<AuditRecord>> {
        sqlx::query("SELECT * FROM audit_events ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&self.writer)
            .await
            .map_err(backend)?
            .map(|r| audit_from_row(&r))
            .transpose()
    }

    async fn lookup_audit_events(
        &self,
        query: &AuditQuery,
        before_seq: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<AuditRecord>> {
        let (column, value) = match &query.attribute {
            Some((c, v)) => (Some(c.column()), Some(v.clone())),
            None => (None, None),
        };
        // The column comes from a fixed list, never from the caller.
        let filter = match column {
            Some("resources") => "AND (' ' || resources || ' ') LIKE ('% ' || $5 || ' %')",
            Some(c) => match c {
                "event_name" => "AND event_name = $5",
                "username" => "AND username = $5",
                "access_key_id" => "AND access_key_id = $5",
                "read_only" => "AND read_only = CASE WHEN $5 = 'true' THEN 1 ELSE 0 END",
                "event_id" => "AND event_id = $5",
                "event_source" => "AND event_source = $5",
                "resource_type" => "AND (resources != '') = ($5 = 'AWS::KMS::Key')",
                _ => "AND $5 IS NULL",
            },
            None => "AND $5 IS NULL",
        };
        let sql = format!(
            "SELECT * FROM audit_events WHERE account_id = $1 AND seq < $2 AND event_time >= $3 \
             AND event_time <= $4 {filter} ORDER BY seq DESC LIMIT $6"
        );
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .bind(&query.account)
            .bind(before_seq.unwrap_or(i64::MAX))
            .bind(query.start.unwrap_or(i64::MIN))
            .bind(query.end.unwrap_or(i64::MAX))
            .bind(value)
            .bind(i64::try_from(limit).unwrap_or(i64::MAX))
            .fetch_all(&self.reader)
            .await
            .map_err(backend)?
            .iter()
            .map(audit_from_row)
            .collect()
    }
}

#[async_trait]
impl Maintenance for SqlStore {
    fn is_shared(&self) -> bool {
        self.dialect == Dialect::Postgres
    }

    async fn backup(&self) -> StoreResult<Vec<BackupRow>> {
        let mut tx = self.reader.begin().await.map_err(backend)?;
        if self.dialect == Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
        }
        let mut rows = Vec::new();
        for (table, order) in BACKUP_TABLES {
            let sql = format!("SELECT * FROM {table} ORDER BY {order}");
            for row in sqlx::query(sqlx::AssertSqlSafe(sql))
                .fetch_all(&mut *tx)
                .await
                .map_err(backend)?
            {
                rows.push(BackupRow {
                    table: (*table).to_owned(),
                    row: backup_columns(&row)?,
                });
            }
        }
        tx.rollback().await.map_err(backend)?;
        Ok(rows)
    }

    async fn restore(&self, rows: &[BackupRow]) -> StoreResult<()> {
        let result = async {
            let mut tx = self.writer.begin().await.map_err(backend)?;
            let in_use: i64 = sqlx::query(
                "SELECT (SELECT COUNT(*) FROM keys) + (SELECT COUNT(*) FROM principals) \
                 + (SELECT COUNT(*) FROM audit_events)",
            )
            .fetch_one(&mut *tx)
            .await
            .map_err(backend)?
            .try_get(0)
            .map_err(backend)?;
            if in_use > 0 {
                return Err(StoreError::AlreadyExists);
            }
            for r in rows {
                if !BACKUP_TABLES.iter().any(|(t, _)| *t == r.table) {
                    return Err(StoreError::Corrupt(format!("unknown table {:?}", r.table)));
                }
                // Names reach the SQL text, so only plain lower-case identifiers pass.
                if let Some(bad) = r.row.keys().find(|c| {
                    c.is_empty() || !c.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                }) {
                    return Err(StoreError::Corrupt(format!("bad column name {bad:?}")));
                }
                let columns: Vec<&str> = r.row.keys().map(String::as_str).collect();
                let mut insert = Statement::new(&format!(
                    "INSERT INTO {} ({}) VALUES (",
                    r.table,
                    columns.join(", ")
                ));
                for (i, (column, value)) in r.row.iter().enumerate() {
                    if i > 0 {
                        insert.push(", ");
                    }
                    match value {
                        serde_json::Value::Null => {
                            insert.push("NULL");
                        }
                        serde_json::Value::String(text) => {
                            insert.bind(text.clone());
                        }
                        serde_json::Value::Number(n) => {
                            let n = n
                                .as_i64()
                                .ok_or_else(|| StoreError::Corrupt(format!("number {n}")))?;
                            insert.bind(n);
                        }
                        serde_json::Value::Object(_) => {
                            insert.bind(r.blob(column).ok_or_else(|| corrupt("blob"))?);
                        }
                        other => return Err(StoreError::Corrupt(format!("value {other}"))),
                    }
                }
                insert.push(")");
                insert.build()?.execute(&mut *tx).await.map_err(backend)?;
            }
            tx.commit().await.map_err(backend)
        }
        .await;
        if let Some(cache) = &self.cache {
            cache.clear();
        }
        let announced = self.identities_written();
        result?;
        announced
    }

    async fn secrets_not_in_format(
        &self,
        format: u8,
        limit: usize,
    ) -> StoreResult<Vec<WrappedSecret>> {
        self.wrapped_not_in_format(format, limit).await
    }

    async fn rewrap_secrets(
        &self,
        audit: &Intent,
        changes: &[(WrappedSecret, Vec<u8>)],
    ) -> StoreResult<usize> {
        let result = self.replace_wrapped(audit, changes).await;
        self.changed_everywhere().await;
        if changes
            .iter()
            .any(|(s, _)| matches!(s.holder, crate::SecretHolder::AccessKey { .. }))
        {
            let announced = self.identities_written();
            let value = result?;
            announced?;
            return Ok(value);
        }
        result
    }
}
