use ferrokms_store::prelude::*;
use ferrokms_store::{conformance, SqlStore};

#[tokio::test]
async fn sqlite_backend_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("ferrokms.db"))
        .await
        .unwrap();
    conformance::run_all(&store).await;
}

/// The read cache of a store one process owns must not change what any read returns.
#[tokio::test]
async fn sqlite_backend_with_its_read_cache_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqlStore::open_sqlite(&dir.path().join("ferrokms.db"))
        .await
        .unwrap()
        .cache_reads();
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

/// `ferrokms admin` changes access keys and identity policies in its own process while a
/// server with a read cache runs: the server must see each change once the tool is done.
#[tokio::test]
async fn a_caching_store_sees_identity_changes_another_process_made() {
    use ferrokms_core::ids::AccountId;
    use ferrokms_store::AccessKeyRecord;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrokms.db");
    let server = SqlStore::open_sqlite(&path).await.unwrap().cache_reads();
    let tool = SqlStore::open_sqlite(&path).await.unwrap();
    let user = "arn:aws:iam::111122223333:user/carol";
    let record = AccessKeyRecord {
        access_key_id: "AKIACAROL00000000001".into(),
        account: AccountId::parse("111122223333").unwrap(),
        principal_arn: user.into(),
        user_id: "AIDACAROL".into(),
        wrapped_secret: vec![1, 2, 3],
        created: 1,
        session: None,
    };
    // The server has looked the key up (and cached that it does not exist) before the
    // tool creates it.
    for _ in 0..2 {
        assert_eq!(
            server.access_key(&record.access_key_id).await.unwrap(),
            None
        );
        assert!(server.identity_policies(user).await.unwrap().is_empty());
    }
    tool.put_access_key(ferrokms_store::conformance::audit(), &record)
        .await
        .unwrap();
    tool.put_identity_policy(ferrokms_store::conformance::audit(), user, "p", "{}")
        .await
        .unwrap();
    for _ in 0..2 {
        assert_eq!(
            server.access_key(&record.access_key_id).await.unwrap(),
            Some(record.clone())
        );
        assert_eq!(server.identity_policies(user).await.unwrap(), ["{}"]);
    }
    tool.put_identity_policy(ferrokms_store::conformance::audit(), user, "p", "{\"v\":2}")
        .await
        .unwrap();
    assert_eq!(server.identity_policies(user).await.unwrap(), ["{\"v\":2}"]);
    assert!(tool
        .delete_identity_policy(ferrokms_store::conformance::audit(), user, "p")
        .await
        .unwrap());
    assert!(server.identity_policies(user).await.unwrap().is_empty());
    assert!(tool
        .delete_access_key(ferrokms_store::conformance::audit(), &record.access_key_id)
        .await
        .unwrap());
    assert_eq!(
        server.access_key(&record.access_key_id).await.unwrap(),
        None
    );
}

/// Keys stored before the `state` and `due_at` columns existed get them at the next start.
#[tokio::test]
async fn keys_from_before_the_job_columns_are_filled_in_at_start() {
    use ferrokms_core::key::KeyState;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ferrokms.db");
    let store = SqlStore::open_sqlite(&path).await.unwrap();
    let (mut key, material) = conformance::new_key("us-east-1", "111122223333");
    key.state = KeyState::PendingDeletion;
    key.deletion_date = Some(1_000);
    store
        .create_key(ferrokms_store::conformance::audit(), &key, &[material], &[])
        .await
        .unwrap();
    store.close().await;

    sqlx::any::install_default_drivers();
    let raw = sqlx::AnyPool::connect(&format!("sqlite://{}", path.display()))
        .await
        .unwrap();
    sqlx::query("UPDATE keys SET state = '', due_at = NULL")
        .execute(&raw)
        .await
        .unwrap();
    raw.close().await;

    let store = SqlStore::open_sqlite(&path).await.unwrap();
    let due = store.keys_due(1_000).await.unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].arn, key.arn);
    assert_eq!(
        store.key_states().await.unwrap(),
        [("PendingDeletion".to_owned(), 1)]
    );
}
