//! The conformance suite against the real PostgreSQL of the test environment
//! (`FERROKMS_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432), each test in a
//! database of its own that is dropped afterwards.

use ferrokms_store::prelude::*;
use std::process::Command;

use ferrokms_core::ids::{AliasName, KeyId};
use ferrokms_store::{conformance, AccessKeyRecord, AliasRecord, GrantRecord, Page, SqlStore};

fn server_url() -> String {
    std::env::var("FERROKMS_TEST_POSTGRES")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into())
}

/// A database that exists for the life of the value.
struct ScratchDatabase {
    name: String,
}

impl ScratchDatabase {
    fn create(tag: &str) -> Self {
        let name = format!("ferrokms_test_{tag}_{}", std::process::id());
        psql(&format!("DROP DATABASE IF EXISTS {name}"));
        psql(&format!("CREATE DATABASE {name}"));
        ScratchDatabase { name }
    }

    fn url(&self) -> String {
        format!("{}/{}", server_url(), self.name)
    }
}

impl Drop for ScratchDatabase {
    fn drop(&mut self) {
        psql(&format!(
            "DROP DATABASE IF EXISTS {} WITH (FORCE)",
            self.name
        ));
    }
}

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            &format!("{}/postgres", server_url()),
            "-v",
            "ON_ERROR_STOP=1",
            "-c",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn postgres_backend_passes_the_conformance_suite() {
    let db = ScratchDatabase::create("conformance");
    let store = SqlStore::connect_postgres(&db.url()).await.unwrap();
    conformance::run_all(&store).await;
    store.close().await;
}

#[tokio::test]
async fn reconnecting_keeps_data_and_does_not_rerun_migrations() {
    let db = ScratchDatabase::create("reconnect");
    let before = {
        let store = SqlStore::connect_postgres(&db.url()).await.unwrap();
        conformance::run_all(&store).await;
        let n = store.access_key_count().await.unwrap();
        store.close().await;
        n
    };
    assert!(before > 0);
    let store = SqlStore::connect_postgres(&db.url()).await.unwrap();
    assert_eq!(store.access_key_count().await.unwrap(), before);
    store.close().await;
}

#[tokio::test]
async fn a_backup_of_either_backend_restores_into_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let sqlite = SqlStore::open_sqlite(&dir.path().join("ferrokms.db"))
        .await
        .unwrap();
    conformance::run_all(&sqlite).await;
    let from_sqlite = sqlite.backup().await.unwrap();
    assert!(from_sqlite.iter().any(|r| r.table == "key_materials"));

    let db = ScratchDatabase::create("restore");
    let postgres = SqlStore::connect_postgres(&db.url()).await.unwrap();
    postgres.restore(&from_sqlite).await.unwrap();
    assert_eq!(postgres.backup().await.unwrap(), from_sqlite);
    assert!(matches!(
        postgres.restore(&from_sqlite).await,
        Err(ferrokms_store::StoreError::AlreadyExists)
    ));

    let again = tempfile::tempdir().unwrap();
    let back = SqlStore::open_sqlite(&again.path().join("ferrokms.db"))
        .await
        .unwrap();
    back.restore(&postgres.backup().await.unwrap())
        .await
        .unwrap();
    assert_eq!(back.backup().await.unwrap(), from_sqlite);
    assert_eq!(
        back.all_keys().await.unwrap(),
        sqlite.all_keys().await.unwrap()
    );
    postgres.close().await;
}

#[tokio::test]
async fn postgres_backend_with_a_shared_cache_passes_the_conformance_suite() {
    let db = ScratchDatabase::create("conformance_cached");
    let store = node(&db).await;
    conformance::run_all(&store).await;
    store.close().await;
}

/// A node as `serve` opens one on PostgreSQL.
async fn node(db: &ScratchDatabase) -> SqlStore {
    SqlStore::connect_postgres(&db.url())
        .await
        .unwrap()
        .cache_shared(&db.url())
        .await
        .unwrap()
}

impl ScratchDatabase {
    fn run(&self, sql: &str) {
        let out = Command::new("psql")
            .args([&self.url(), "-v", "ON_ERROR_STOP=1", "-c", sql])
            .output()
            .expect("psql runs");
        assert!(
            out.status.success(),
            "psql {sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Points an alias elsewhere behind every node's back: with the table's trigger off
    /// for the transaction (which no ferrokms writer does), nothing is announced.
    fn retarget_unannounced(&self, alias: &str, target: KeyId) {
        self.run(&format!(
            "BEGIN; ALTER TABLE aliases DISABLE TRIGGER aliases_changed; \
             UPDATE aliases SET target_key_id = '{target}' WHERE alias_name = '{alias}'; \
             ALTER TABLE aliases ENABLE ALWAYS TRIGGER aliases_changed; COMMIT"
        ));
    }
}

struct Fixture {
    a: SqlStore,
    b: SqlStore,
    first: KeyId,
    second: KeyId,
    alias: AliasRecord,
}

impl Fixture {
    async fn new(db: &ScratchDatabase) -> Self {
        let (a, b) = (node(db).await, node(db).await);
        let (key, material) = conformance::new_key("us-east-1", "111122223333");
        let (other, other_material) = conformance::new_key("us-east-1", "111122223333");
        for (k, m) in [(&key, material), (&other, other_material)] {
            a.create_key(conformance::audit(), k, &[m], &[])
                .await
                .unwrap();
        }
        let alias = AliasRecord {
            region: key.region().clone(),
            account: key.account().clone(),
            name: AliasName::parse_new("alias/shared").unwrap(),
            target: key.id(),
            created: 1,
            updated: 1,
        };
        a.create_alias(conformance::audit(), &alias, 10)
            .await
            .unwrap();
        Fixture {
            a,
            b,
            first: key.id(),
            second: other.id(),
            alias,
        }
    }

    async fn seen_by_b(&self) -> KeyId {
        let alias = &self.alias;
        self.b
            .alias(&alias.region, &alias.account, &alias.name)
            .await
            .unwrap()
            .expect("the alias exists")
            .target
    }

    /// Reads the alias through `b` until `b` answers from its cache: the database then says
    /// `stored` while `b` still says `cached` (a node uses its cache only once its heartbeat
    /// has come back, which a busy machine may delay).
    async fn until_b_answers_from_its_cache(
        &self,
        db: &ScratchDatabase,
        cached: KeyId,
        stored: KeyId,
    ) {
        for _ in 0..100 {
            db.retarget_unannounced(self.alias.name.as_str(), cached);
            assert_eq!(self.seen_by_b().await, cached);
            db.retarget_unannounced(self.alias.name.as_str(), stored);
            if self.seen_by_b().await == cached {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the node never answered from its cache");
    }
}

// Several threads: psql, run from the test, blocks the thread it runs on, and a node
// whose heartbeats cannot run goes (rightly) stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_on_one_node_holds_on_another_that_cached_the_row_once_it_returns() {
    let db = ScratchDatabase::create("shared_cache");
    let f = Fixture::new(&db).await;
    f.until_b_answers_from_its_cache(&db, f.first, f.first)
        .await;

    // The alias that points elsewhere: a retargets it, and once a's call returns b follows.
    let mut moved = f.alias.clone();
    moved.target = f.second;
    f.a.retarget_alias(conformance::audit(), &moved, &f.first, 10)
        .await
        .unwrap();
    assert_eq!(f.seen_by_b().await, f.second);

    // A change replayed as replication does (session_replication_role = replica, which
    // skips ordinary triggers) is announced all the same.
    f.until_b_answers_from_its_cache(&db, f.second, f.second)
        .await;
    db.run(&format!(
        "SET session_replication_role = replica; \
         UPDATE aliases SET target_key_id = '{}' WHERE alias_name = 'alias/shared'",
        f.first
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.seen_by_b().await != f.first {
        assert!(
            std::time::Instant::now() < deadline,
            "a replicated change was not heard"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }

    // A disabled key, a revoked grant and a deleted access key, each read through b first.
    let region = f.alias.region.clone();
    let mut key = f.b.key(&region, &f.first).await.unwrap().unwrap();
    assert_eq!(
        f.b.key(&region, &f.first).await.unwrap().unwrap().state,
        key.state
    );
    key.state = ferrokms_core::key::KeyState::Disabled;
    f.a.update_key(conformance::audit(), &key).await.unwrap();
    assert_eq!(
        f.b.key(&region, &f.first).await.unwrap().unwrap().state,
        ferrokms_core::key::KeyState::Disabled
    );

    let grant = GrantRecord {
        region: region.clone(),
        key_id: f.first,
        grant_id: "g1".into(),
        account: f.alias.account.clone(),
        name: None,
        grantee_principal: "arn:aws:iam::111122223333:role/user".into(),
        retiring_principal: None,
        document: "{}".into(),
        created: 1,
    };
    let first_page = Page {
        after: None,
        limit: 10,
    };
    f.a.create_grant(conformance::audit(), &grant, 10)
        .await
        .unwrap();
    assert_eq!(
        f.b.grants_of_key(&region, &f.first, first_page)
            .await
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        f.b.grants_of_key(&region, &f.first, first_page)
            .await
            .unwrap()
            .len(),
        1
    );
    f.a.delete_grant(conformance::audit(), &region, &f.first, "g1")
        .await
        .unwrap();
    assert!(f
        .b
        .grants_of_key(&region, &f.first, first_page)
        .await
        .unwrap()
        .is_empty());

    let access_key = AccessKeyRecord {
        access_key_id: "AKIASHAREDCACHE00001".into(),
        account: f.alias.account.clone(),
        principal_arn: "arn:aws:iam::111122223333:user/u".into(),
        user_id: "AIDASHAREDCACHE".into(),
        wrapped_secret: vec![1, 2, 3],
        created: 1,
        session: None,
    };
    f.a.put_access_key(conformance::audit(), &access_key)
        .await
        .unwrap();
    assert!(f
        .b
        .access_key(&access_key.access_key_id)
        .await
        .unwrap()
        .is_some());
    assert!(f
        .b
        .access_key(&access_key.access_key_id)
        .await
        .unwrap()
        .is_some());
    f.a.delete_access_key(conformance::audit(), &access_key.access_key_id)
        .await
        .unwrap();
    assert!(f
        .b
        .access_key(&access_key.access_key_id)
        .await
        .unwrap()
        .is_none());
    f.a.close().await;
    f.b.close().await;
}

// Several threads: psql, run from the test, blocks the thread it runs on, and a node
// whose heartbeats cannot run goes (rightly) stale.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_that_loses_the_channel_of_changes_stops_answering_from_its_cache() {
    let db = ScratchDatabase::create("shared_cache_loss");
    let f = Fixture::new(&db).await;
    f.until_b_answers_from_its_cache(&db, f.first, f.second)
        .await;
    // b says first, the database second, and nothing will tell b. Its connection that hears
    // changes is cut: what it may have missed meanwhile is unknowable, so it must drop its
    // cache and read the database until it hears again.
    db.run(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{}' AND datname = current_database()",
        ferrokms_store::CACHE_APPLICATION_NAME
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while f.seen_by_b().await != f.second {
        assert!(
            std::time::Instant::now() < deadline,
            "the node kept answering from a cache it could no longer keep current"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // Once it hears again, it caches again.
    f.until_b_answers_from_its_cache(&db, f.second, f.first)
        .await;
    f.a.close().await;
    f.b.close().await;
}
