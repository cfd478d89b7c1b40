//! The conformance suite against the real PostgreSQL of the test environment
//! (`FERROKMS_TEST_POSTGRES`, default postgres://postgres@127.0.0.1:5432), each test in a
//! database of its own that is dropped afterwards.

use ferrokms_store::prelude::*;
use std::process::Command;

use ferrokms_store::{conformance, SqlStore};

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
