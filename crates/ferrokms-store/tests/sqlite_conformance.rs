use ferrokms_store::{conformance, SqlStore, Store};

#[tokio::test]
async fn sqlite_backend_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("ferrokms.db"))
        .await
        .unwrap();
    conformance::run_all(&store).await;
}

#[tokio::test]
async fn reopening_keeps_data_and_does_not_rerun_migrations() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrokms.db");
    let before = {
        let store = SqlStore::open_sqlite(&path).await.unwrap();
        conformance::run_all(&store).await;
        let n = store.access_key_count().await.unwrap();
        store.close().await;
        n
    };
    assert!(before > 0);
    let store = SqlStore::open_sqlite(&path).await.unwrap();
    assert_eq!(store.access_key_count().await.unwrap(), before);
}
