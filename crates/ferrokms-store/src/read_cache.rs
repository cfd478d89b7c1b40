//! Rows kept in memory so that a hot key costs no query.
//!
//! A store that one process owns (SQLite, whose data directory `serve` locks) sees every
//! write to a cached row, and drops the row once its transaction has committed. A store that
//! nodes share (PostgreSQL) also drops what other nodes' notifications name, and uses its
//! entries only while it knows it has heard every notification up to a recent moment
//! (`Freshness`, kept by `shared_cache`). A read that raced a write must not put back the
//! row it read, which may be older than the write: `fill` keeps an entry only if no write
//! happened since the read began (`ticket`).

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::StoreResult;

pub struct BoundedCache<K, V> {
    capacity: usize,
    inner: Mutex<Entries<K, V>>,
    /// For a shared store: entries are used only while fresh.
    freshness: Option<Arc<Freshness>>,
}

/// Until when a shared store's cached rows may be used: every change committed before a
/// moment `bound` earlier than that has been heard and dropped. Moved forward by each of the
/// node's own heartbeats that comes back through the notification channel (notifications
/// arrive in commit order, so every change committed before the heartbeat's was heard
/// first); set to the past when the channel is lost, since what was said meanwhile is lost.
pub struct Freshness {
    origin: Instant,
    bound: Duration,
    /// Nanoseconds after `origin`; 0 is "not fresh".
    until: AtomicU64,
}

impl Freshness {
    pub fn new(bound: Duration) -> Self {
        Freshness {
            origin: Instant::now(),
            bound,
            until: AtomicU64::new(0),
        }
    }

    /// The moment `at` as the number a heartbeat carries.
    pub fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.origin).as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn is_fresh(&self) -> bool {
        self.stamp(Instant::now()) < self.until.load(Ordering::SeqCst)
    }

    /// A heartbeat sent at `sent` (a `stamp`) came back.
    pub fn heard(&self, sent: u64) {
        if sent > self.stamp(Instant::now()) {
            return;
        }
        let bound = u64::try_from(self.bound.as_nanos()).unwrap_or(u64::MAX);
        self.until
            .fetch_max(sent.saturating_add(bound), Ordering::SeqCst);
    }

    /// The channel was lost: nothing cached may be used until a heartbeat comes back.
    pub fn lost(&self) {
        self.until.store(0, Ordering::SeqCst);
    }
}

/// What the cache holds for a key.
pub enum Lookup<V> {
    Hit(V),
    /// Not held: read the store, then `fill` with the ticket.
    Miss(Ticket),
    /// The cache may not be used now: read the store and keep nothing.
    Bypass,
}

/// How long a shared store keeps an entry: should a change escape the announcements (SQL
/// run by hand with the triggers disabled), its old copy does not live for ever.
const SHARED_MAX_AGE: Duration = Duration::from_secs(60);

struct Entries<K, V> {
    map: HashMap<K, (V, Instant)>,
    /// Bumped by every invalidation.
    writes: u64,
}

/// When a read began, for `fill`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Ticket(u64);

impl<K: Hash + Eq + Clone, V: Clone> BoundedCache<K, V> {
    pub fn new(capacity: usize, freshness: Option<Arc<Freshness>>) -> Self {
        BoundedCache {
            capacity,
            inner: Mutex::new(Entries {
                map: HashMap::new(),
                writes: 0,
            }),
            freshness,
        }
    }

    fn usable(&self) -> bool {
        self.freshness.as_ref().is_none_or(|f| f.is_fresh())
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, Entries<K, V>> {
        // A panic while holding the lock cannot leave the map half-changed in a way that
        // matters: every operation is a single map call.
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cached value, or a ticket to `fill` it with after reading the store.
    pub fn get(&self, key: &K) -> Lookup<V> {
        let mut entries = self.entries();
        // Checked under the lock: a loss of the channel marks the cache stale before it
        // clears it, so a ticket taken after the clear is never handed out.
        if !self.usable() {
            return Lookup::Bypass;
        }
        match entries.map.get(key) {
            Some((_, kept)) if self.freshness.is_some() && kept.elapsed() > SHARED_MAX_AGE => {
                entries.map.remove(key);
                Lookup::Miss(Ticket(entries.writes))
            }
            Some((v, _)) => Lookup::Hit(v.clone()),
            None => Lookup::Miss(Ticket(entries.writes)),
        }
    }

    /// Keeps `value`, read from the store after `ticket` was taken, unless a write has
    /// happened since (or the cache went stale).
    pub fn fill(&self, ticket: Ticket, key: K, value: V) {
        let mut entries = self.entries();
        if entries.writes != ticket.0 || !self.usable() {
            return;
        }
        if entries.map.len() >= self.capacity && !entries.map.contains_key(&key) {
            // Any entry will do: a hot one comes back on its next read.
            if let Some(victim) = entries.map.keys().next().cloned() {
                entries.map.remove(&victim);
            }
        }
        entries.map.insert(key, (value, Instant::now()));
    }

    /// Drops `key`, after a write to its row has committed.
    pub fn invalidate(&self, key: &K) {
        let mut entries = self.entries();
        entries.writes += 1;
        entries.map.remove(key);
    }

    /// Drops everything, after a write whose rows are not known by key.
    pub fn clear(&self) {
        let mut entries = self.entries();
        entries.writes += 1;
        entries.map.clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries().map.len()
    }

    #[cfg(test)]
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One shared copy of each distinct text among cached rows (key policies: most keys of an
/// account carry the same default policy). Bounded; when full it starts again.
pub struct Interner {
    capacity: usize,
    texts: Mutex<std::collections::HashSet<std::sync::Arc<str>>>,
}

impl Interner {
    pub fn new(capacity: usize) -> Self {
        Interner {
            capacity,
            texts: Mutex::new(Default::default()),
        }
    }

    pub fn intern(&self, text: std::sync::Arc<str>) -> std::sync::Arc<str> {
        let mut texts = self.texts.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(shared) = texts.get(&*text) {
            return shared.clone();
        }
        if texts.len() >= self.capacity {
            texts.clear();
        }
        texts.insert(text.clone());
        text
    }
}

/// A file that every process writing rows cached elsewhere rewrites with a fresh random
/// value after its commit. A reader with a cache reads it before each cached read (a few
/// microseconds for a small file in the page cache, against a query's thread round trips)
/// and drops its entries when it changed: a change another process finished before a
/// request began is seen by that request.
pub struct ChangeStamp {
    path: PathBuf,
    seen: Mutex<Vec<u8>>,
}

impl ChangeStamp {
    pub fn new(path: PathBuf) -> Self {
        ChangeStamp {
            path,
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Says that rows changed (after the change committed).
    pub fn touch(&self) -> std::io::Result<()> {
        let value: [u8; 16] = ferrokms_core::random::array()
            .map_err(|_| std::io::Error::other("no randomness for the change stamp"))?;
        let hex: String = value.iter().map(|b| format!("{b:02x}")).collect();
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(format!(".{hex}"));
        // A rename replaces the stamp whole, so a reader never sees a half-written one.
        std::fs::write(&temporary, hex.as_bytes())?;
        std::fs::rename(&temporary, &self.path)
    }

    /// Whether the stamp changed since the last call that said so, running `on_change`
    /// (which drops the cached rows) under the same lock before any reader goes on.
    pub fn check(&self, on_change: impl FnOnce()) {
        let now = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            // Never touched (or unreadable): nothing is known to have changed elsewhere;
            // an unreadable stamp is treated as a change, to be safe.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(_) => {
                on_change();
                return;
            }
        };
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if *seen != now {
            on_change();
            *seen = now;
        }
    }
}

/// The value of `key` from `cache` if there is one, else `load`ed (and kept if no write
/// raced the load).
pub async fn read_through<K, V, Fut>(
    cache: Option<&BoundedCache<K, V>>,
    key: K,
    load: impl FnOnce() -> Fut,
) -> StoreResult<V>
where
    K: Hash + Eq + Clone,
    V: Clone,
    Fut: Future<Output = StoreResult<V>>,
{
    let Some(cache) = cache else {
        return load().await;
    };
    let ticket = match cache.get(&key) {
        Lookup::Hit(value) => return Ok(value),
        Lookup::Miss(ticket) => ticket,
        Lookup::Bypass => return load().await,
    };
    let value = load().await?;
    cache.fill(ticket, key, value.clone());
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    impl<V> Lookup<V> {
        fn hit(self) -> Option<V> {
            match self {
                Lookup::Hit(v) => Some(v),
                _ => None,
            }
        }

        fn ticket(self) -> Ticket {
            match self {
                Lookup::Miss(t) => t,
                _ => panic!("expected a miss"),
            }
        }
    }

    #[test]
    fn a_read_that_raced_a_write_is_not_kept() {
        let cache = BoundedCache::<u32, &str>::new(4, None);
        let ticket = cache.get(&1).ticket();
        // A write commits and invalidates while the read is in flight.
        cache.invalidate(&1);
        cache.fill(ticket, 1, "old");
        assert!(cache.get(&1).hit().is_none());
        let ticket = cache.get(&1).ticket();
        cache.fill(ticket, 1, "new");
        assert_eq!(cache.get(&1).hit(), Some("new"));
        cache.invalidate(&1);
        assert!(cache.get(&1).hit().is_none());
    }

    #[test]
    fn a_shared_cache_is_used_only_while_its_heartbeat_is_recent() {
        let freshness = Arc::new(Freshness::new(Duration::from_millis(200)));
        let cache = BoundedCache::<u32, &str>::new(4, Some(freshness.clone()));
        assert!(matches!(cache.get(&1), Lookup::Bypass), "nothing heard yet");

        let sent = Instant::now();
        freshness.heard(freshness.stamp(sent));
        let ticket = cache.get(&1).ticket();
        cache.fill(ticket, 1, "row");
        assert_eq!(cache.get(&1).hit(), Some("row"));

        // A heartbeat sent before another one that came back does not move the bound back.
        freshness.heard(freshness.stamp(sent) / 2);
        assert_eq!(cache.get(&1).hit(), Some("row"));

        // No heartbeat for longer than the bound: the entry is kept but not used.
        std::thread::sleep(Duration::from_millis(250));
        assert!(matches!(cache.get(&1), Lookup::Bypass));
        freshness.heard(freshness.stamp(Instant::now()));
        assert_eq!(cache.get(&1).hit(), Some("row"));

        // A ticket taken while fresh is worthless once the channel was lost and the cache
        // cleared, even when freshness came back before the fill.
        let ticket = cache.get(&2).ticket();
        freshness.lost();
        cache.clear();
        assert!(matches!(cache.get(&1), Lookup::Bypass));
        freshness.heard(freshness.stamp(Instant::now()));
        cache.fill(ticket, 2, "read before the loss");
        assert!(cache.get(&2).hit().is_none());

        // While stale nothing is kept.
        let ticket = cache.get(&3).ticket();
        freshness.lost();
        cache.fill(ticket, 3, "read while stale");
        freshness.heard(freshness.stamp(Instant::now()));
        assert!(cache.get(&3).hit().is_none());
    }

    #[test]
    fn a_stamp_touched_by_another_writer_is_seen_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("stamp");
        let (reader, writer) = (ChangeStamp::new(path.clone()), ChangeStamp::new(path));
        let changes = std::cell::Cell::new(0);
        reader.check(|| changes.set(changes.get() + 1));
        assert_eq!(changes.get(), 0, "never touched");
        writer.touch().unwrap();
        reader.check(|| changes.set(changes.get() + 1));
        reader.check(|| changes.set(changes.get() + 1));
        assert_eq!(changes.get(), 1);
        writer.touch().unwrap();
        reader.check(|| changes.set(changes.get() + 1));
        assert_eq!(changes.get(), 2);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temporaries left"
        );
    }

    #[test]
    fn equal_texts_share_one_copy() {
        let interner = Interner::new(2);
        let a = interner.intern("policy".into());
        let b = interner.intern("policy".into());
        assert!(std::sync::Arc::ptr_eq(&a, &b));
        assert_eq!(&*interner.intern("other".into()), "other");
    }

    #[test]
    fn it_holds_at_most_its_capacity() {
        let cache = BoundedCache::<u32, u32>::new(3, None);
        for i in 0..10 {
            let ticket = cache.get(&i).ticket();
            cache.fill(ticket, i, i * 10);
            assert!(cache.len() <= 3);
            assert_eq!(cache.get(&i).hit(), Some(i * 10));
        }
        cache.clear();
        assert!(cache.is_empty());
    }
}
