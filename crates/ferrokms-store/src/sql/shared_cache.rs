//! The read cache of a node that shares its PostgreSQL database with others.
//!
//! Every row a node caches (keys, aliases, grants, access keys, identity policies) has a
//! trigger that announces its change with `pg_notify` inside the changing transaction, so
//! the announcement is sent if and only if the change commits, whichever process made it
//! (another node, `ferrokms admin`, a restore). Each node listens on one connection of its
//! own and drops what it hears named.
//!
//! Hearing is not enough: a notification in flight, or lost with a connection, would let a
//! node answer from an old row. So each node also sends itself a heartbeat every
//! `BOUND / 5` through the same channel, and uses its cache only while a heartbeat it sent
//! less than `BOUND` ago has come back (`Freshness`): PostgreSQL delivers notifications in
//! commit order, so by then every change committed before that heartbeat was heard. A change
//! that can alter what a cached read answers waits `BOUND` after its commit before it
//! returns (`SqlStore::changed_everywhere`): once its answer is sent, no node uses a cached
//! copy older than the change. A lost connection makes the cache stale and empties it; it
//! is used again once a heartbeat comes back through the new connection.

use std::sync::Arc;
use std::time::{Duration, Instant};

use ferrokms_core::ids::{AccountId, AliasName, KeyId, Region};
use sqlx::postgres::{PgListener, PgPool, PgPoolOptions};

use super::ReadCache;
use crate::read_cache::Freshness;
use crate::{StoreError, StoreResult};

/// How old a node's knowledge of other nodes' changes may be when it answers from its
/// cache; a change that could alter a cached answer waits this long before returning.
pub const BOUND: Duration = Duration::from_millis(100);

const HEARTBEAT: Duration = Duration::from_millis(20);

pub const CHANNEL: &str = "ferrokms_rows";

/// The name a node's listening and heartbeat connections carry in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "ferrokms-cache";

/// The triggers that announce changes (PostgreSQL only). A deleted key's grants and tags
/// go by cascade, which fires their triggers too.
pub const TRIGGERS: &str = r#"
CREATE FUNCTION ferrokms_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows', 'k ' || OLD.region || ' ' || OLD.key_id);
    ELSE
        PERFORM pg_notify('ferrokms_rows', 'k ' || NEW.region || ' ' || NEW.key_id);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_alias_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows',
            'a ' || OLD.region || ' ' || OLD.account_id || ' ' || OLD.alias_name);
    ELSE
        PERFORM pg_notify('ferrokms_rows',
            'a ' || NEW.region || ' ' || NEW.account_id || ' ' || NEW.alias_name);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_grant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows', 'g ' || OLD.region || ' ' || OLD.key_id);
    ELSE
        PERFORM pg_notify('ferrokms_rows', 'g ' || NEW.region || ' ' || NEW.key_id);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_access_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows', 's ' || OLD.access_key_id);
    ELSE
        PERFORM pg_notify('ferrokms_rows', 's ' || NEW.access_key_id);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_identity_policy_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows', 'p ' || OLD.principal_arn);
    ELSE
        PERFORM pg_notify('ferrokms_rows', 'p ' || NEW.principal_arn);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER keys_changed AFTER INSERT OR UPDATE OR DELETE ON keys
    FOR EACH ROW EXECUTE FUNCTION ferrokms_key_changed();
CREATE TRIGGER aliases_changed AFTER INSERT OR UPDATE OR DELETE ON aliases
    FOR EACH ROW EXECUTE FUNCTION ferrokms_alias_changed();
CREATE TRIGGER grants_changed AFTER INSERT OR UPDATE OR DELETE ON grants
    FOR EACH ROW EXECUTE FUNCTION ferrokms_grant_changed();
CREATE TRIGGER access_keys_changed AFTER INSERT OR UPDATE OR DELETE ON access_keys
    FOR EACH ROW EXECUTE FUNCTION ferrokms_access_key_changed();
CREATE TRIGGER identity_policies_changed AFTER INSERT OR UPDATE OR DELETE ON identity_policies
    FOR EACH ROW EXECUTE FUNCTION ferrokms_identity_policy_changed();
"#;

/// The listening and heartbeat tasks of a node; they stop when the store is dropped.
pub struct Listening {
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Listening {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn with_application_name(url: &str) -> String {
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}application_name={APPLICATION_NAME}")
}

async fn listener(url: &str) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect(url).await?;
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Starts listening (the first connection is made before this returns, so a database that
/// cannot be listened to is an error at start) and sending heartbeats.
pub async fn start(
    url: &str,
    cache: Arc<ReadCache>,
    freshness: Arc<Freshness>,
) -> StoreResult<Listening> {
    let url = with_application_name(url);
    let failed = |e: sqlx::Error| StoreError::Backend(format!("listening for changes: {e}"));
    let first = listener(&url).await.map_err(failed)?;
    let heartbeats = PgPoolOptions::new()
        .max_connections(1)
        // A late heartbeat only makes the cache stale for a while; one whose reconnection is
        // cut short each time would keep it stale for good.
        .acquire_timeout(Duration::from_secs(5))
        .connect(&url)
        .await
        .map_err(failed)?;
    let node: [u8; 16] = ferrokms_core::random::array()
        .map_err(|_| StoreError::Backend("no randomness for the node's heartbeat".into()))?;
    let node = ferrokms_core::hex::encode(&node);
    let listening = tokio::spawn(listen(first, url, cache, freshness.clone(), node.clone()));
    let beating = tokio::spawn(beat(heartbeats, freshness, node));
    Ok(Listening {
        tasks: vec![listening, beating],
    })
}

async fn beat(pool: PgPool, freshness: Arc<Freshness>, node: String) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let payload = format!("h {node} {}", freshness.stamp(Instant::now()));
        // A heartbeat that fails is simply not heard: the cache goes stale on its own.
        let _ = sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(payload)
            .execute(&pool)
            .await;
    }
}

async fn listen(
    mut listener: PgListener,
    url: String,
    cache: Arc<ReadCache>,
    freshness: Arc<Freshness>,
    node: String,
) {
    loop {
        match listener.try_recv().await {
            Ok(Some(notification)) => cache.heard(notification.payload(), &node, &freshness),
            // Connection lost and made again: what was said meanwhile is lost.
            Ok(None) => {
                freshness.lost();
                cache.clear();
            }
            Err(e) => {
                freshness.lost();
                cache.clear();
                tracing::warn!(error = %e, "lost the channel of other nodes' changes; not caching until it is back");
                loop {
                    tokio::time::sleep(BOUND).await;
                    if let Ok(again) = self::listener(&url).await {
                        listener = again;
                        break;
                    }
                }
            }
        }
    }
}

impl ReadCache {
    /// Drops what a notification names; one it cannot read drops everything of its kind.
    fn heard(&self, payload: &str, node: &str, freshness: &Freshness) {
        let (kind, rest) = payload.split_once(' ').unwrap_or((payload, ""));
        match kind {
            "h" => {
                if let Some((from, sent)) = rest.split_once(' ') {
                    if from == node {
                        if let Ok(sent) = sent.parse() {
                            freshness.heard(sent);
                        }
                    }
                }
            }
            "k" => match region_and_key(rest) {
                Some(key) => self.keys.invalidate(&key),
                None => self.keys.clear(),
            },
            "g" => match region_and_key(rest) {
                Some(key) => self.grants.invalidate(&key),
                None => self.grants.clear(),
            },
            "a" => {
                let mut fields = rest.splitn(3, ' ');
                let alias = (|| {
                    let region = Region::parse(fields.next()?)?;
                    let account = AccountId::parse(fields.next()?)?;
                    let name = AliasName::parse_existing(fields.next()?).ok()?;
                    Some((region, account, name))
                })();
                match alias {
                    Some(alias) => self.aliases.invalidate(&alias),
                    None => self.aliases.clear(),
                }
            }
            "s" => self.access_keys.invalidate(&rest.to_owned()),
            "p" => self.identity_policies.invalidate(&rest.to_owned()),
            _ => self.clear(),
        }
    }
}

fn region_and_key(rest: &str) -> Option<(Region, KeyId)> {
    let (region, key) = rest.split_once(' ')?;
    Some((Region::parse(region)?, KeyId::parse(key)?))
}
