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
//! less than `FRESH_FOR` (a little under `BOUND`) ago has come back (`Freshness`): PostgreSQL delivers notifications in
//! commit order, so by then every change committed before that heartbeat was heard. A change
//! that can alter what a cached read answers waits `BOUND` after its commit before it
//! returns (`SqlStore::changed_everywhere`): once its answer is sent, no node uses a cached
//! copy older than the change. A lost connection makes the cache stale and empties it; it
//! is used again once a heartbeat comes back through the new connection.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};
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

/// How long a node uses its cache after sending a heartbeat that came back: less than
/// `BOUND`, the writer's wait, by a margin for timer rounding and clock-rate drift between
/// machines.
pub const FRESH_FOR: Duration = Duration::from_millis(90);

/// Silence on the listening connection after which it is taken for dead.
const SILENCE: Duration = Duration::from_secs(1);

pub const CHANNEL: &str = "ferrokms_rows";

/// The name a node's listening and heartbeat connections carry in `pg_stat_activity`.
pub const APPLICATION_NAME: &str = "ferrokms-cache";

/// The triggers that announce changes (PostgreSQL only). An update names the row before
/// and after; emptying a table says to drop everything (`*`). They fire always, also in a
/// session that replays replication (`session_replication_role = replica`). A deleted key's
/// grants go by cascade, which fires their triggers too.
pub const TRIGGERS: &str = r#"
CREATE FUNCTION ferrokms_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('ferrokms_rows', 'k ' || OLD.region || ' ' || OLD.key_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows', 'k ' || NEW.region || ' ' || NEW.key_id);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_alias_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('ferrokms_rows',
            'a ' || OLD.region || ' ' || OLD.account_id || ' ' || OLD.alias_name);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows',
            'a ' || NEW.region || ' ' || NEW.account_id || ' ' || NEW.alias_name);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_grant_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('ferrokms_rows', 'g ' || OLD.region || ' ' || OLD.key_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows', 'g ' || NEW.region || ' ' || NEW.key_id);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_access_key_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('ferrokms_rows', 's ' || OLD.access_key_id);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows', 's ' || NEW.access_key_id);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_identity_policy_changed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'INSERT' THEN
        PERFORM pg_notify('ferrokms_rows', 'p ' || OLD.principal_arn);
    END IF;
    IF TG_OP <> 'DELETE' THEN
        PERFORM pg_notify('ferrokms_rows', 'p ' || NEW.principal_arn);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION ferrokms_table_emptied() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('ferrokms_rows', '*');
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
CREATE TRIGGER keys_emptied AFTER TRUNCATE ON keys
    FOR EACH STATEMENT EXECUTE FUNCTION ferrokms_table_emptied();
CREATE TRIGGER aliases_emptied AFTER TRUNCATE ON aliases
    FOR EACH STATEMENT EXECUTE FUNCTION ferrokms_table_emptied();
CREATE TRIGGER grants_emptied AFTER TRUNCATE ON grants
    FOR EACH STATEMENT EXECUTE FUNCTION ferrokms_table_emptied();
CREATE TRIGGER access_keys_emptied AFTER TRUNCATE ON access_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ferrokms_table_emptied();
CREATE TRIGGER identity_policies_emptied AFTER TRUNCATE ON identity_policies
    FOR EACH STATEMENT EXECUTE FUNCTION ferrokms_table_emptied();
ALTER TABLE keys ENABLE ALWAYS TRIGGER keys_changed;
ALTER TABLE aliases ENABLE ALWAYS TRIGGER aliases_changed;
ALTER TABLE grants ENABLE ALWAYS TRIGGER grants_changed;
ALTER TABLE access_keys ENABLE ALWAYS TRIGGER access_keys_changed;
ALTER TABLE identity_policies ENABLE ALWAYS TRIGGER identity_policies_changed;
ALTER TABLE keys ENABLE ALWAYS TRIGGER keys_emptied;
ALTER TABLE aliases ENABLE ALWAYS TRIGGER aliases_emptied;
ALTER TABLE grants ENABLE ALWAYS TRIGGER grants_emptied;
ALTER TABLE access_keys ENABLE ALWAYS TRIGGER access_keys_emptied;
ALTER TABLE identity_policies ENABLE ALWAYS TRIGGER identity_policies_emptied;
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
    let sent = Arc::new(Heartbeats::default());
    let listening = tokio::spawn(listen(first, url, cache, freshness.clone(), sent.clone()));
    let beating = tokio::spawn(beat(heartbeats, freshness, sent));
    Ok(Listening {
        tasks: vec![listening, beating],
    })
}

/// The heartbeats a node sent and has not heard back: each carries a random nonce, and
/// only the moment the node itself kept for that nonce counts when it comes back, once.
/// Anyone who may connect to the database may also `NOTIFY` on its channels; a heartbeat
/// that named its own moment could be forged to keep a deaf node "fresh" for ever.
#[derive(Default)]
pub struct Heartbeats {
    sent: Mutex<VecDeque<(String, u64)>>,
}

/// About five seconds of heartbeats; older ones that never came back are forgotten.
const HEARTBEATS_KEPT: usize = 256;

impl Heartbeats {
    fn sent(&self, nonce: String, stamp: u64) {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        if sent.len() >= HEARTBEATS_KEPT {
            sent.pop_front();
        }
        sent.push_back((nonce, stamp));
    }

    /// The moment a heartbeat with this nonce was sent, if this node sent it and it has not
    /// come back before; it and every earlier one are forgotten.
    fn came_back(&self, nonce: &str) -> Option<u64> {
        let mut sent = self.sent.lock().unwrap_or_else(PoisonError::into_inner);
        let at = sent.iter().position(|(n, _)| n == nonce)?;
        let stamp = sent[at].1;
        sent.drain(..=at);
        Some(stamp)
    }
}

async fn beat(pool: PgPool, freshness: Arc<Freshness>, sent: Arc<Heartbeats>) {
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let Ok(nonce) = ferrokms_core::random::array::<16>() else {
            continue;
        };
        let nonce = ferrokms_core::hex::encode(&nonce);
        sent.sent(nonce.clone(), freshness.stamp(Instant::now()));
        let payload = format!("h {nonce}");
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
    sent: Arc<Heartbeats>,
) {
    loop {
        // The node's own heartbeats come every HEARTBEAT: silence this long means a
        // connection that is dead without saying so (a half-open socket), whose place in
        // the server's notification queue would also hold the queue up for every node.
        let received = tokio::time::timeout(SILENCE, listener.try_recv()).await;
        match received {
            Ok(Ok(Some(notification))) => cache.heard(notification.payload(), &sent, &freshness),
            // Connection lost and made again: what was said meanwhile is lost.
            Ok(Ok(None)) => {
                freshness.lost();
                cache.clear();
            }
            failed => {
                freshness.lost();
                cache.clear();
                let error = match failed {
                    Ok(Err(e)) => e.to_string(),
                    _ => format!("nothing heard for {SILENCE:?}"),
                };
                tracing::warn!(%error, "lost the channel of other nodes' changes; not caching until it is back");
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
    fn heard(&self, payload: &str, sent: &Heartbeats, freshness: &Freshness) {
        let (kind, rest) = payload.split_once(' ').unwrap_or((payload, ""));
        match kind {
            "h" => {
                if let Some(stamp) = sent.came_back(rest) {
                    freshness.heard(stamp);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_heartbeat_this_node_sent_counts_and_only_once() {
        let sent = Heartbeats::default();
        sent.sent("a".into(), 10);
        sent.sent("b".into(), 20);
        sent.sent("c".into(), 30);
        assert_eq!(sent.came_back("forged"), None);
        assert_eq!(sent.came_back("b"), Some(20));
        assert_eq!(sent.came_back("b"), None, "a replay");
        assert_eq!(sent.came_back("a"), None, "older than one that came back");
        assert_eq!(sent.came_back("c"), Some(30));
        for i in 0..HEARTBEATS_KEPT + 10 {
            sent.sent(i.to_string(), i as u64);
        }
        assert_eq!(sent.came_back("0"), None, "forgotten");
        let last = (HEARTBEATS_KEPT + 9).to_string();
        assert_eq!(sent.came_back(&last), Some((HEARTBEATS_KEPT + 9) as u64));
    }

    #[test]
    fn a_heartbeat_from_the_future_is_ignored() {
        let freshness = Freshness::new(FRESH_FOR);
        freshness.heard(u64::MAX);
        assert!(!freshness.is_fresh());
        freshness.heard(freshness.stamp(Instant::now()));
        assert!(freshness.is_fresh());
    }
}
