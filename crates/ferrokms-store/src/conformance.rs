//! The behaviour every `Store` backend must show, run by each backend's tests against a real,
//! empty database.

use ferrokms_core::ids::{AccountId, AliasName, KeyArn, KeyId, Region};
use ferrokms_core::key::{
    default_key_policy, KeyManager, KeyMetadata, KeySpec, KeyState, KeyUsage, Origin,
};
use ferrokms_core::material::{MaterialId, WrappedMaterial};
use ferrokms_core::tags::Tag;

use crate::outbox::{self, Intent};
use crate::{
    AccessKeyRecord, AliasRecord, AuditDigest, AuditRecord, CustomKeyStoreRecord, GrantRecord,
    KeyUsageMark, Page, PrincipalKind, PrincipalRecord, Removal, RoleTrust, RotationType,
    SecretHolder, SessionInfo, Store, StoreError, StoredMaterial, WrappedSecret,
};

fn region(s: &str) -> Region {
    Region::parse(s).expect("test region")
}

fn account(s: &str) -> AccountId {
    AccountId::parse(s).expect("test account")
}

/// A symmetric key of `acct` in `region_name` with one (fake) material version.
pub fn new_key(region_name: &str, acct: &str) -> (KeyMetadata, StoredMaterial) {
    let material_id = MaterialId::generate().expect("random");
    let account = account(acct);
    let key = KeyMetadata {
        arn: KeyArn {
            region: region(region_name),
            account: account.clone(),
            key_id: KeyId::generate(false).expect("random"),
        },
        creation_date: 1_700_000_000_000,
        description: "conformance".into(),
        key_usage: KeyUsage::EncryptDecrypt,
        key_spec: KeySpec::SymmetricDefault,
        origin: Origin::AwsKms,
        key_manager: KeyManager::Customer,
        state: KeyState::Enabled,
        deletion_date: None,
        pending_window_days: None,
        current_material: material_id,
        policy: default_key_policy(&account).into(),
        public_key: None,
        rotation: Default::default(),
        import: Default::default(),
        replication: None,
        custom_key_store: None,
        revision: 0,
    };
    let material = StoredMaterial {
        material_id,
        wrapped: WrappedMaterial::from_stored(vec![1, 2, 3, 4]),
        created: 1_700_000_000_000,
        rotation_type: None,
    };
    (key, material)
}

fn tag(k: &str, v: &str) -> Tag {
    Tag {
        key: k.into(),
        value: v.into(),
    }
}

fn page(after: Option<&str>, limit: usize) -> Page<'_> {
    Page { after, limit }
}

/// Runs every check in order against an empty store.
pub async fn run_all(store: &dyn Store) {
    access_keys(store).await;
    principals(store).await;
    keys_are_stored_whole_and_scoped_by_region(store).await;
    updates_refuse_stale_revisions(store).await;
    listing_pages_in_key_order(store).await;
    aliases(store).await;
    tags(store).await;
    grants(store).await;
    rotation_and_deletion(store).await;
    writes_carry_their_request_record(store).await;
    concurrent_writers_lose_nothing_and_duplicate_nothing(store).await;
    job_runs_find_the_keys_whose_moment_has_come(store).await;
    keys_created_together_stand_or_fall_alone(store).await;
    custom_key_stores(store).await;
    secrets_move_to_another_root_format(store).await;
}

fn key_store(id: &str, name: &str) -> CustomKeyStoreRecord {
    CustomKeyStoreRecord {
        region: region("eu-west-3"),
        account: account("121212121212"),
        id: id.into(),
        name: name.into(),
        revision: 0,
        document: format!("{{\"id\":\"{id}\"}}"),
        wrapped_password: vec![1, 3, 3],
    }
}

/// Custom key stores: names unique per account and region, a quota per account, updates
/// that lose no race, deletion.
async fn custom_key_stores(store: &dyn Store) {
    let (r, a) = (region("eu-west-3"), account("121212121212"));
    let first = key_store("cks-00000000000000001", "one");
    store
        .create_custom_key_store(audit(), &first, 2)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_custom_key_store(audit(), &key_store("cks-00000000000000002", "one"), 2)
            .await,
        Err(StoreError::AlreadyExists)
    ));
    let mut other_account = key_store("cks-00000000000000003", "one");
    other_account.account = account("343434343434");
    store
        .create_custom_key_store(audit(), &other_account, 2)
        .await
        .unwrap();
    let second = key_store("cks-00000000000000004", "two");
    store
        .create_custom_key_store(audit(), &second, 2)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_custom_key_store(audit(), &key_store("cks-00000000000000005", "three"), 2)
            .await,
        Err(StoreError::LimitExceeded { in_use: 3 })
    ));
    assert_eq!(
        store.custom_key_stores(&r, &a).await.unwrap(),
        vec![first.clone(), second.clone()]
    );

    let mut renamed = first.clone();
    renamed.name = "uno".into();
    renamed.document = "{\"state\":\"CONNECTED\"}".into();
    assert_eq!(
        store
            .update_custom_key_store(audit(), &renamed)
            .await
            .unwrap(),
        1
    );
    // A writer that read revision 0 too loses; one taking a used name is refused.
    assert!(matches!(
        store.update_custom_key_store(audit(), &first).await,
        Err(StoreError::Conflict)
    ));
    let mut clash = second.clone();
    clash.name = "uno".into();
    assert!(matches!(
        store.update_custom_key_store(audit(), &clash).await,
        Err(StoreError::AlreadyExists)
    ));
    let stored = store.custom_key_stores(&r, &a).await.unwrap();
    assert_eq!(stored[0].name, "uno");
    assert_eq!(stored[0].revision, 1);
    assert_eq!(stored[0].document, renamed.document);
    assert_eq!(stored[1], second);

    assert!(store
        .delete_custom_key_store(audit(), &r, &a, &second.id)
        .await
        .unwrap());
    assert!(!store
        .delete_custom_key_store(audit(), &r, &a, &second.id)
        .await
        .unwrap());
    assert!(matches!(
        store.update_custom_key_store(audit(), &second).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(store.custom_key_stores(&r, &a).await.unwrap().len(), 1);
}

/// A move to another root key finds every wrapped secret not yet in the new format and
/// replaces it only where the stored form is still the one read, until none is left.
async fn secrets_move_to_another_root_format(store: &dyn Store) {
    const NEW: u8 = 0xEE;
    let (key, mut material) = new_key("eu-north-1", "777788889999");
    material.wrapped = WrappedMaterial::from_stored(vec![1, 5, 5, 5]);
    store
        .create_key(audit(), &key, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    let access = AccessKeyRecord {
        access_key_id: "AKIAREWRAP0000000001".into(),
        account: account("777788889999"),
        principal_arn: "arn:aws:iam::777788889999:user/rewrap".into(),
        user_id: "AIDAREWRAP".into(),
        wrapped_secret: vec![1, 6, 6],
        created: 5,
        session: None,
    };
    store.put_access_key(audit(), &access).await.unwrap();
    // Seen once, so that a cache (where there is one) holds the old form.
    assert!(store
        .access_key(&access.access_key_id)
        .await
        .unwrap()
        .is_some());
    let new_form = |old: &[u8]| {
        let mut new = old.to_vec();
        new[0] = NEW;
        new
    };

    let first = store.secrets_not_in_format(NEW, 1000).await.unwrap();
    let mine = first
        .iter()
        .find(|s| matches!(&s.holder, SecretHolder::Material { key: k, .. } if *k == key.arn))
        .expect("the key's material is listed")
        .clone();
    assert_eq!(mine.wrapped, vec![1, 5, 5, 5]);
    assert!(first.iter().any(|s| s.holder
        == SecretHolder::KeyStorePassword {
            region: region("eu-west-3"),
            id: "cks-00000000000000001".into(),
        }));
    assert!(first.iter().any(|s| s.holder
        == SecretHolder::AccessKey {
            access_key_id: access.access_key_id.clone()
        }));
    // A stale read (another mover got there first) replaces nothing.
    let stale = WrappedSecret {
        holder: mine.holder.clone(),
        wrapped: vec![1, 0, 0, 0],
    };
    assert_eq!(
        store
            .rewrap_secrets(audit(), &[(stale, vec![NEW, 9, 9, 9])])
            .await
            .unwrap(),
        0
    );
    assert_eq!(store.secrets_not_in_format(NEW, 1000).await.unwrap(), first);

    // Small batches, as a mover that stops and starts again would take them.
    let mut moved = 0;
    loop {
        let batch = store.secrets_not_in_format(NEW, 3).await.unwrap();
        if batch.is_empty() {
            break;
        }
        assert!(batch.len() <= 3);
        let changes: Vec<_> = batch
            .into_iter()
            .map(|s| {
                let new = new_form(&s.wrapped);
                (s, new)
            })
            .collect();
        assert_eq!(
            store.rewrap_secrets(audit(), &changes).await.unwrap(),
            changes.len()
        );
        moved += changes.len();
    }
    assert_eq!(moved, first.len());
    let stored = store
        .material(key.region(), &key.id(), &material.material_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.wrapped.as_stored(), &[NEW, 5, 5, 5]);
    assert_eq!(
        store
            .access_key(&access.access_key_id)
            .await
            .unwrap()
            .unwrap()
            .wrapped_secret,
        vec![NEW, 6, 6]
    );
}

/// Creations that commit together (SQLite shares commits between them) must each succeed or
/// fail on their own: a duplicate among them fails alone and the rest are stored.
async fn keys_created_together_stand_or_fall_alone(store: &dyn Store) {
    let (existing, material) = new_key("ca-central-1", "444455556666");
    store
        .create_key(audit(), &existing, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    let before = store
        .key_count(existing.region(), existing.account())
        .await
        .unwrap();
    let mut batch: Vec<(KeyMetadata, StoredMaterial)> = (0..31)
        .map(|_| new_key("ca-central-1", "444455556666"))
        .collect();
    batch.insert(17, (existing.clone(), material.clone()));
    let tags = [tag("n", "v")];
    let outcomes = futures_util::future::join_all(
        batch
            .iter()
            .map(|(k, m)| store.create_key(audit(), k, std::slice::from_ref(m), &tags)),
    )
    .await;
    for (i, ((key, _), outcome)) in batch.iter().zip(&outcomes).enumerate() {
        if i == 17 {
            assert!(
                matches!(outcome, Err(StoreError::AlreadyExists)),
                "{outcome:?}"
            );
        } else {
            assert!(outcome.is_ok(), "{outcome:?}");
            assert!(store.key(key.region(), &key.id()).await.unwrap().is_some());
            assert_eq!(
                store
                    .list_tags(key.region(), &key.id(), page(None, 10))
                    .await
                    .unwrap(),
                tags
            );
        }
    }
    assert_eq!(
        store
            .key_count(existing.region(), existing.account())
            .await
            .unwrap(),
        before + 31,
        "the duplicate counted nothing"
    );
}

async fn is_due(store: &dyn Store, key: &KeyMetadata, now: i64) -> bool {
    store
        .keys_due(now)
        .await
        .unwrap()
        .iter()
        .any(|k| k.arn == key.arn)
}

async fn state_count(store: &dyn Store, state: KeyState) -> usize {
    store
        .key_states()
        .await
        .unwrap()
        .iter()
        .find(|(s, _)| s == state.as_str())
        .map_or(0, |(_, n)| *n)
}

async fn job_runs_find_the_keys_whose_moment_has_come(store: &dyn Store) {
    let (mut key, material) = new_key("eu-north-1", "111122223333");
    let pending_before = state_count(store, KeyState::PendingDeletion).await;
    store
        .create_key(audit(), &key, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    assert!(!is_due(store, &key, i64::MAX).await, "nothing scheduled");

    key.rotation.enabled = true;
    key.rotation.next = Some(5_000);
    key.revision = store.update_key(audit(), &key).await.unwrap();
    assert!(!is_due(store, &key, 4_999).await);
    assert!(is_due(store, &key, 5_000).await);

    let mut rotated = key.clone();
    rotated.rotation.next = Some(9_000);
    let next = StoredMaterial {
        material_id: MaterialId::generate().expect("random"),
        ..material.clone()
    };
    rotated.current_material = next.material_id;
    key.revision = store.rotate_key(audit(), &rotated, &next).await.unwrap();
    key.rotation.next = Some(9_000);
    assert!(!is_due(store, &key, 5_000).await, "rotation moved it on");
    assert!(is_due(store, &key, 9_000).await);

    // Pending deletion: only the deletion date counts, as a pending key is not rotated.
    key.state = KeyState::PendingDeletion;
    key.deletion_date = Some(20_000);
    key.revision = store.update_key(audit(), &key).await.unwrap();
    assert!(!is_due(store, &key, 9_000).await);
    assert!(is_due(store, &key, 20_000).await);
    assert_eq!(
        state_count(store, KeyState::PendingDeletion).await,
        pending_before + 1
    );
    assert!(store
        .delete_key(audit(), key.region(), &key.id())
        .await
        .unwrap());
    assert!(!is_due(store, &key, i64::MAX).await);
    assert_eq!(
        state_count(store, KeyState::PendingDeletion).await,
        pending_before
    );
}

/// Reads a key and adds one to the number in its description until the write lands.
async fn bump(store: &dyn Store, region: &Region, id: &KeyId, times: usize) {
    for _ in 0..times {
        loop {
            let mut key = store.key(region, id).await.unwrap().unwrap();
            let n: usize = key.description.parse().unwrap();
            key.description = (n + 1).to_string();
            match store.update_key(audit(), &key).await {
                Ok(_) => break,
                Err(StoreError::Conflict) => continue,
                Err(e) => panic!("{e}"),
            }
        }
    }
}

async fn concurrent_writers_lose_nothing_and_duplicate_nothing(store: &dyn Store) {
    let (mut key, material) = new_key("ap-south-1", "111122223333");
    key.description = "0".into();
    store
        .create_key(audit(), &key, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    let (region, id) = (key.region().clone(), key.id());
    tokio::join!(
        bump(store, &region, &id, 10),
        bump(store, &region, &id, 10),
        bump(store, &region, &id, 10),
        bump(store, &region, &id, 10),
    );
    let stored = store.key(&region, &id).await.unwrap().unwrap();
    assert_eq!(stored.description, "40", "no update was lost");
    assert_eq!(store.key_count(&region, key.account()).await.unwrap(), 1);
    assert_eq!(
        store
            .key_count(&region, &account("999988887777"))
            .await
            .unwrap(),
        0
    );

    let alias = AliasRecord {
        region: region.clone(),
        account: key.account().clone(),
        name: AliasName::parse_new("alias/contended").unwrap(),
        target: id,
        created: 1,
        updated: 1,
    };
    let made = tokio::join!(
        store.create_alias(audit(), &alias, 10),
        store.create_alias(audit(), &alias, 10),
        store.create_alias(audit(), &alias, 10),
        store.create_alias(audit(), &alias, 10),
    );
    let made = [made.0, made.1, made.2, made.3];
    assert_eq!(made.iter().filter(|r| r.is_ok()).count(), 1, "{made:?}");
    assert!(made
        .iter()
        .all(|r| matches!(r, Ok(()) | Err(StoreError::AlreadyExists))));

    assert!(store.delete_key(audit(), &region, &id).await.unwrap());
    assert!(!store.delete_key(audit(), &region, &id).await.unwrap());
    assert_eq!(
        store.key_count(&region, key.account()).await.unwrap(),
        0,
        "a deleted key is counted out once"
    );
}

fn request_record(event_id: &str) -> AuditRecord {
    AuditRecord {
        seq: 0,
        event_id: event_id.into(),
        event_time: 1_700_000_000_000,
        account: "111122223333".into(),
        event_name: "CreateKey".into(),
        event_source: "kms.amazonaws.com".into(),
        read_only: false,
        username: "alice".into(),
        access_key_id: "AKIAEXAMPLE".into(),
        resources: vec![],
        event: format!("{{\"eventID\":\"{event_id}\"}}"),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// The record of a change made by a test: each its own, as each change of a service is.
/// Leaked, so that futures running side by side can each borrow their own.
pub fn audit() -> &'static Intent {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Box::leak(Box::new(Intent::new(
        request_record(&format!("conformance-{n}")),
        "node-1",
        String::new(),
    )))
}

/// A committed write leaves its record in the outbox; a refused one does not; the audit
/// log's append of the final record takes it out.
async fn writes_carry_their_request_record(store: &dyn Store) {
    let (key, material) = new_key("eu-north-1", "111122223333");
    let made = Intent::new(request_record("made"), "node-1", "seal-of-made".into());
    store
        .create_key(&made, &key, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    assert!(made.written());
    let refused = Intent::new(request_record("refused"), "node-1", String::new());
    let again = store
        .create_key(&refused, &key, std::slice::from_ref(&material), &[])
        .await;
    assert!(again.is_err());
    assert!(!refused.written());
    let ours = |pending: Vec<outbox::OutboxRecord>| -> Vec<outbox::OutboxRecord> {
        pending
            .into_iter()
            .filter(|o| ["made", "refused"].contains(&o.record.event_id.as_str()))
            .collect()
    };
    assert_eq!(
        ours(store.audit_outbox().await.unwrap()),
        [outbox::OutboxRecord {
            node: "node-1".into(),
            seal: "seal-of-made".into(),
            record: request_record("made")
        }]
    );

    let seq = store.last_audit_event().await.unwrap().map_or(0, |r| r.seq) + 1;
    let mut chained = request_record("made");
    chained.seq = seq;
    chained.hash = "h".into();
    let (used, _) = new_key("us-east-1", "111122223333");
    let mark = |operation: &str, at: i64, event: &str| KeyUsageMark {
        region: used.region().clone(),
        key_id: used.id(),
        operation: operation.into(),
        at,
        event_id: event.into(),
        request_id: format!("request-{event}"),
    };
    assert_eq!(
        store
            .key_last_usage(used.region(), &used.id())
            .await
            .unwrap(),
        None
    );
    store
        .append_audit_events(
            std::slice::from_ref(&chained),
            None,
            &[mark("Encrypt", 100, "made")],
        )
        .await
        .unwrap();
    assert_eq!(
        store
            .key_last_usage(used.region(), &used.id())
            .await
            .unwrap(),
        Some(mark("Encrypt", 100, "made"))
    );
    assert!(ours(store.audit_outbox().await.unwrap()).is_empty());
    // The end of the chain, and that no digest was taken there.
    let (end, digest) = store.audit_chain_end().await.unwrap().unwrap();
    assert_eq!(
        (end.seq, end.event_id.as_str(), digest),
        (seq, "made", None)
    );
    let mut signed = request_record("signed");
    signed.seq = seq + 1;
    signed.hash = "h2".into();
    let taken = AuditDigest {
        upto_seq: seq + 1,
        chain_hash: "h2".into(),
        signature: vec![1, 2, 3],
        created: 5,
        previous: "p".into(),
    };
    store
        .append_audit_events(&[signed], Some(&taken), &[mark("Decrypt", 50, "older")])
        .await
        .unwrap();
    assert_eq!(
        store
            .key_last_usage(used.region(), &used.id())
            .await
            .unwrap(),
        Some(mark("Encrypt", 100, "made")),
        "a batch committed late does not put back an older use"
    );
    let (end, digest) = store.audit_chain_end().await.unwrap().unwrap();
    assert_eq!((end.seq, digest), (seq + 1, Some(taken.clone())));

    // A batch whose places another appender took is refused whole: neither its digest nor
    // any of its events is kept.
    let mut late = request_record("late");
    late.seq = seq + 2;
    late.hash = "h3".into();
    let mut clash = request_record("clash");
    clash.seq = seq + 1;
    clash.hash = "h4".into();
    let late_digest = AuditDigest {
        upto_seq: seq + 2,
        chain_hash: "h3".into(),
        signature: vec![4],
        created: 6,
        previous: "q".into(),
    };
    assert!(matches!(
        store
            .append_audit_events(
                &[late, clash],
                Some(&late_digest),
                &[mark("Sign", 200, "late")]
            )
            .await,
        Err(StoreError::Conflict)
    ));
    assert_eq!(
        store
            .key_last_usage(used.region(), &used.id())
            .await
            .unwrap(),
        Some(mark("Encrypt", 100, "made")),
        "a refused batch records no use"
    );
    let started = store.usage_tracking_start(1_000).await.unwrap();
    assert_eq!(store.usage_tracking_start(2_000).await.unwrap(), started);
    let (end, digest) = store.audit_chain_end().await.unwrap().unwrap();
    assert_eq!((end.seq, digest), (seq + 1, Some(taken)));
    assert!(!store.audit_digests().await.unwrap().contains(&late_digest));
}

async fn rotation_and_deletion(store: &dyn Store) {
    let (key, first) = new_key("me-south-1", "111122223333");
    store
        .create_key(
            audit(),
            &key,
            std::slice::from_ref(&first),
            &[tag("t", "1")],
        )
        .await
        .unwrap();
    let alias = AliasRecord {
        region: key.region().clone(),
        account: key.account().clone(),
        name: AliasName::parse_new("alias/doomed").unwrap(),
        target: key.id(),
        created: 1,
        updated: 1,
    };
    store.create_alias(audit(), &alias, 50).await.unwrap();

    let second = StoredMaterial {
        material_id: MaterialId::generate().unwrap(),
        wrapped: WrappedMaterial::from_stored(vec![5, 6]),
        created: first.created + 1,
        rotation_type: Some(RotationType::OnDemand),
    };
    let mut rotated = key.clone();
    rotated.current_material = second.material_id;
    let rev = store.rotate_key(audit(), &rotated, &second).await.unwrap();
    assert!(
        matches!(
            store.rotate_key(audit(), &rotated, &second).await,
            Err(StoreError::Conflict)
        ),
        "a stale rotation adds nothing"
    );
    let stored = store.key(key.region(), &key.id()).await.unwrap().unwrap();
    assert_eq!(
        (stored.current_material, stored.revision),
        (second.material_id, rev)
    );
    assert_eq!(
        store.materials(key.region(), &key.id()).await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert!(store
        .all_keys()
        .await
        .unwrap()
        .iter()
        .any(|k| k.id() == key.id()));

    let mut emptied = stored.clone();
    emptied.description = "material removed".into();
    // One version removed by id; the other stays.
    emptied.revision = store
        .change_materials(
            audit(),
            &emptied,
            None,
            Removal::Only(std::slice::from_ref(&second.material_id)),
        )
        .await
        .unwrap();
    assert_eq!(
        store.materials(key.region(), &key.id()).await.unwrap(),
        vec![first.clone()]
    );
    // A version put again under its id replaces the one stored.
    let replaced = StoredMaterial {
        created: first.created + 5,
        ..first.clone()
    };
    emptied.revision = store
        .change_materials(audit(), &emptied, Some(&replaced), Removal::Only(&[]))
        .await
        .unwrap();
    assert_eq!(
        store.materials(key.region(), &key.id()).await.unwrap(),
        vec![replaced.clone()]
    );
    let rev = store
        .change_materials(audit(), &emptied, None, Removal::All)
        .await
        .unwrap();
    assert!(store
        .materials(key.region(), &key.id())
        .await
        .unwrap()
        .is_empty());
    emptied.revision = rev;
    store
        .change_materials(audit(), &emptied, Some(&first), Removal::All)
        .await
        .unwrap();
    assert_eq!(
        store.materials(key.region(), &key.id()).await.unwrap(),
        vec![first.clone()]
    );
    assert!(matches!(
        store
            .change_materials(audit(), &emptied, None, Removal::All)
            .await,
        Err(StoreError::Conflict)
    ));

    assert!(store
        .delete_key(audit(), key.region(), &key.id())
        .await
        .unwrap());
    assert!(
        !store
            .delete_key(audit(), key.region(), &key.id())
            .await
            .unwrap(),
        "idempotent"
    );
    assert_eq!(store.key(key.region(), &key.id()).await.unwrap(), None);
    assert!(store
        .materials(key.region(), &key.id())
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store
            .material(key.region(), &key.id(), &first.material_id)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .alias(key.region(), key.account(), &alias.name)
            .await
            .unwrap(),
        None
    );
    assert!(store
        .list_tags(key.region(), &key.id(), page(None, 10))
        .await
        .unwrap()
        .is_empty());
}

async fn grants(store: &dyn Store) {
    let (key, material) = new_key("eu-south-1", "111122223333");
    store
        .create_key(audit(), &key, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    let grant = |id: &str, retiring: Option<&str>| GrantRecord {
        region: key.region().clone(),
        key_id: key.id(),
        grant_id: id.into(),
        account: key.account().clone(),
        name: Some("n".into()),
        grantee_principal: "arn:aws:iam::111122223333:role/app".into(),
        retiring_principal: retiring.map(str::to_owned),
        document: "{}".into(),
        created: 3,
    };
    let retiring = "arn:aws:iam::111122223333:user/ops";
    store
        .create_grant(audit(), &grant("b", Some(retiring)), 2)
        .await
        .unwrap();
    store
        .create_grant(audit(), &grant("a", None), 2)
        .await
        .unwrap();
    let third = GrantRecord {
        name: Some("third".into()),
        ..grant("c", None)
    };
    assert!(matches!(
        store.create_grant(audit(), &third, 2).await,
        Err(StoreError::LimitExceeded { in_use: 3 })
    ));
    let renamed = GrantRecord {
        name: Some("other".into()),
        ..grant("a", None)
    };
    assert!(matches!(
        store.create_grant(audit(), &renamed, 5).await,
        Err(StoreError::AlreadyExists)
    ));
    // A grant with the name and terms of one the key has is that grant.
    assert_eq!(
        store
            .create_grant(audit(), &grant("d", None), 5)
            .await
            .unwrap(),
        "a"
    );
    let ids = |v: Vec<GrantRecord>| -> Vec<String> { v.into_iter().map(|g| g.grant_id).collect() };
    let all = store
        .grants_of_key(key.region(), &key.id(), page(None, 10))
        .await
        .unwrap();
    assert_eq!(all[1], grant("b", Some(retiring)));
    assert_eq!(ids(all), ["a", "b"]);
    let after = store
        .grants_of_key(key.region(), &key.id(), page(Some("a"), 10))
        .await
        .unwrap();
    assert_eq!(ids(after), ["b"]);
    let retirable = store
        .grants_retirable_by(key.region(), retiring, page(None, 10))
        .await
        .unwrap();
    assert_eq!(ids(retirable), ["b"]);
    assert!(store
        .delete_grant(audit(), key.region(), &key.id(), "b")
        .await
        .unwrap());
    assert!(!store
        .delete_grant(audit(), key.region(), &key.id(), "b")
        .await
        .unwrap());
    let ghost = KeyId::generate(false).unwrap();
    let mut orphan = grant("z", None);
    orphan.key_id = ghost;
    assert!(matches!(
        store.create_grant(audit(), &orphan, 5).await,
        Err(StoreError::NotFound)
    ));
}

async fn access_keys(store: &dyn Store) {
    assert_eq!(store.access_key_count().await.unwrap(), 0);
    let record = AccessKeyRecord {
        access_key_id: "AKIAEXAMPLE000000001".into(),
        account: account("111122223333"),
        principal_arn: "arn:aws:iam::111122223333:user/admin".into(),
        user_id: "AIDAEXAMPLE".into(),
        wrapped_secret: vec![9, 9, 9],
        created: 5,
        session: None,
    };
    store.put_access_key(audit(), &record).await.unwrap();
    assert!(matches!(
        store.put_access_key(audit(), &record).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.access_key("AKIAEXAMPLE000000001").await.unwrap(),
        Some(record)
    );
    assert_eq!(store.access_key("AKIAOTHER").await.unwrap(), None);
    assert_eq!(store.access_key_count().await.unwrap(), 1);

    let arn = "arn:aws:iam::111122223333:user/admin";
    assert!(store.identity_policies(arn).await.unwrap().is_empty());
    store
        .put_identity_policy(audit(), arn, "b", "{\"v\":1}")
        .await
        .unwrap();
    store
        .put_identity_policy(audit(), arn, "a", "{\"v\":2}")
        .await
        .unwrap();
    store
        .put_identity_policy(audit(), arn, "b", "{\"v\":3}")
        .await
        .unwrap();
    assert_eq!(
        store.identity_policies(arn).await.unwrap(),
        vec!["{\"v\":2}".to_owned(), "{\"v\":3}".to_owned()]
    );
    assert!(store
        .identity_policies("arn:aws:iam::111122223333:user/other")
        .await
        .unwrap()
        .is_empty());
}

async fn principals(store: &dyn Store) {
    let alice = PrincipalRecord {
        arn: "arn:aws:iam::111122223333:user/alice".into(),
        account: account("111122223333"),
        kind: PrincipalKind::User,
        name: "alice".into(),
        unique_id: "AIDAALICE".into(),
        created: 7,
    };
    store.put_principal(audit(), &alice).await.unwrap();
    assert!(matches!(
        store.put_principal(audit(), &alice).await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.principal(&alice.arn).await.unwrap(),
        Some(alice.clone())
    );
    assert_eq!(
        store
            .principal("arn:aws:iam::111122223333:user/none")
            .await
            .unwrap(),
        None
    );
    let listed = store.list_principals().await.unwrap();
    assert!(listed.contains(&alice));

    let key = AccessKeyRecord {
        access_key_id: "AKIAALICE00000000001".into(),
        account: alice.account.clone(),
        principal_arn: alice.arn.clone(),
        user_id: alice.unique_id.clone(),
        wrapped_secret: vec![1],
        created: 8,
        session: None,
    };
    store.put_access_key(audit(), &key).await.unwrap();
    assert_eq!(
        store.access_key_ids_of(&alice.arn).await.unwrap(),
        vec![key.access_key_id.clone()]
    );
    assert!(store
        .delete_access_key(audit(), &key.access_key_id)
        .await
        .unwrap());
    assert!(!store
        .delete_access_key(audit(), &key.access_key_id)
        .await
        .unwrap());
    assert_eq!(store.access_key(&key.access_key_id).await.unwrap(), None);

    let temporary = AccessKeyRecord {
        access_key_id: "ASIAROLESESSION00001".into(),
        account: alice.account.clone(),
        principal_arn: "arn:aws:sts::111122223333:assumed-role/app/s1".into(),
        user_id: "AROAAPP:s1".into(),
        wrapped_secret: vec![2],
        created: 9,
        session: Some(SessionInfo {
            token_hash: "ab".repeat(32),
            expires: 99,
            role_arn: "arn:aws:iam::111122223333:role/app".into(),
        }),
    };
    store.put_access_key(audit(), &temporary).await.unwrap();
    assert_eq!(
        store.access_key(&temporary.access_key_id).await.unwrap(),
        Some(temporary)
    );
    let role = "arn:aws:iam::111122223333:role/app";
    assert_eq!(store.trust_policy(role).await.unwrap(), None);
    let trust = |document: &str, max_session_seconds| RoleTrust {
        role_arn: role.to_owned(),
        document: document.to_owned(),
        max_session_seconds,
    };
    store
        .put_trust_policy(audit(), &trust("{\"a\":1}", 3600))
        .await
        .unwrap();
    store
        .put_trust_policy(audit(), &trust("{\"a\":2}", 7200))
        .await
        .unwrap();
    assert_eq!(
        store.trust_policy(role).await.unwrap(),
        Some(trust("{\"a\":2}", 7200))
    );

    store
        .put_identity_policy(audit(), &alice.arn, "p", "{}")
        .await
        .unwrap();
    assert!(store
        .delete_identity_policy(audit(), &alice.arn, "p")
        .await
        .unwrap());
    assert!(!store
        .delete_identity_policy(audit(), &alice.arn, "p")
        .await
        .unwrap());
    assert!(store
        .identity_policies(&alice.arn)
        .await
        .unwrap()
        .is_empty());
}

async fn keys_are_stored_whole_and_scoped_by_region(store: &dyn Store) {
    let (key, material) = new_key("us-east-1", "111122223333");
    store
        .create_key(
            audit(),
            &key,
            std::slice::from_ref(&material),
            &[tag("team", "a")],
        )
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_key(audit(), &key, std::slice::from_ref(&material), &[])
            .await,
        Err(StoreError::AlreadyExists)
    ));
    assert_eq!(
        store.key(key.region(), &key.id()).await.unwrap(),
        Some(key.clone())
    );
    assert_eq!(
        store.key(&region("eu-west-1"), &key.id()).await.unwrap(),
        None
    );
    let got = store
        .material(key.region(), &key.id(), &material.material_id)
        .await
        .unwrap();
    assert_eq!(got, Some(material));
    let unknown = MaterialId::generate().unwrap();
    assert_eq!(
        store
            .material(key.region(), &key.id(), &unknown)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .list_tags(key.region(), &key.id(), page(None, 50))
            .await
            .unwrap(),
        vec![tag("team", "a")]
    );
}

async fn updates_refuse_stale_revisions(store: &dyn Store) {
    let (key, material) = new_key("us-east-1", "111122223333");
    store
        .create_key(audit(), &key, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    let mut first = key.clone();
    first.description = "first".into();
    let rev = store.update_key(audit(), &first).await.unwrap();
    assert_eq!(rev, key.revision + 1);
    let mut stale = key.clone();
    stale.description = "stale".into();
    assert!(matches!(
        store.update_key(audit(), &stale).await,
        Err(StoreError::Conflict)
    ));
    let stored = store.key(key.region(), &key.id()).await.unwrap().unwrap();
    assert_eq!(stored.description, "first");
    assert_eq!(stored.revision, rev);
}

async fn listing_pages_in_key_order(store: &dyn Store) {
    let acct = "444455556666";
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (key, material) = new_key("ap-south-1", acct);
        store
            .create_key(audit(), &key, std::slice::from_ref(&material), &[])
            .await
            .unwrap();
        ids.push(key.id().to_string());
    }
    let (other, m) = new_key("ap-south-1", "777788889999");
    store
        .create_key(audit(), &other, std::slice::from_ref(&m), &[])
        .await
        .unwrap();
    ids.sort();
    let r = region("ap-south-1");
    let a = account(acct);
    let first = store.list_keys(&r, &a, page(None, 2)).await.unwrap();
    assert_eq!(
        first.len(),
        3,
        "a page returns one extra row to show there is more"
    );
    let last_seen = first[1].id().to_string();
    let rest = store
        .list_keys(&r, &a, page(Some(&last_seen), 10))
        .await
        .unwrap();
    let mut seen: Vec<String> = first[..2].iter().map(|k| k.id().to_string()).collect();
    seen.extend(rest.iter().map(|k| k.id().to_string()));
    assert_eq!(seen, ids);
}

async fn aliases(store: &dyn Store) {
    let (key, material) = new_key("us-west-2", "111122223333");
    let (key2, material2) = new_key("us-west-2", "111122223333");
    store
        .create_key(audit(), &key, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    store
        .create_key(audit(), &key2, std::slice::from_ref(&material2), &[])
        .await
        .unwrap();
    let alias = |name: &str, target: KeyId| AliasRecord {
        region: key.region().clone(),
        account: key.account().clone(),
        name: AliasName::parse_new(name).unwrap(),
        target,
        created: 10,
        updated: 10,
    };
    let a = alias("alias/b", key.id());
    store.create_alias(audit(), &a, 2).await.unwrap();
    assert!(matches!(
        store.create_alias(audit(), &a, 2).await,
        Err(StoreError::AlreadyExists)
    ));
    store
        .create_alias(audit(), &alias("alias/a", key.id()), 2)
        .await
        .unwrap();
    assert!(matches!(
        store
            .create_alias(audit(), &alias("alias/c", key.id()), 2)
            .await,
        Err(StoreError::LimitExceeded { in_use: 3 })
    ));
    store
        .create_alias(audit(), &alias("alias/c", key2.id()), 2)
        .await
        .unwrap();
    assert_eq!(
        store
            .alias(key.region(), key.account(), &a.name)
            .await
            .unwrap(),
        Some(a.clone())
    );
    let names = |v: Vec<AliasRecord>| -> Vec<String> {
        v.into_iter().map(|a| a.name.to_string()).collect()
    };
    let all = store
        .list_aliases(key.region(), key.account(), None, page(None, 10))
        .await
        .unwrap();
    assert_eq!(names(all), ["alias/a", "alias/b", "alias/c"]);
    let of_key2 = store
        .list_aliases(
            key.region(),
            key.account(),
            Some(&key2.id()),
            page(None, 10),
        )
        .await
        .unwrap();
    assert_eq!(names(of_key2), ["alias/c"]);
    let after_a = store
        .list_aliases(key.region(), key.account(), None, page(Some("alias/a"), 1))
        .await
        .unwrap();
    assert_eq!(names(after_a), ["alias/b", "alias/c"]);
    // Byte order, whatever the database's collation: upper case before lower.
    let upper = alias("alias/Zeta", key2.id());
    store.create_alias(audit(), &upper, 2).await.unwrap();
    let all = store
        .list_aliases(key.region(), key.account(), None, page(None, 10))
        .await
        .unwrap();
    assert_eq!(names(all), ["alias/Zeta", "alias/a", "alias/b", "alias/c"]);
    let after_upper = store
        .list_aliases(
            key.region(),
            key.account(),
            None,
            page(Some("alias/Zeta"), 10),
        )
        .await
        .unwrap();
    assert_eq!(names(after_upper), ["alias/a", "alias/b", "alias/c"]);
    assert!(store
        .delete_alias(
            audit(),
            key.region(),
            key.account(),
            &upper.name,
            &key2.id()
        )
        .await
        .unwrap());

    let mut moved = alias("alias/b", key2.id());
    moved.updated = 20;
    // An alias moves only from the key it points at now.
    let mut stale = moved.clone();
    stale.target = key.id();
    assert!(matches!(
        store.retarget_alias(audit(), &stale, &key2.id(), 50).await,
        Err(StoreError::Conflict)
    ));
    store
        .retarget_alias(audit(), &moved, &key.id(), 50)
        .await
        .unwrap();
    let stored = store
        .alias(key.region(), key.account(), &moved.name)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stored.target, stored.created, stored.updated),
        (key2.id(), 10, 20)
    );
    let missing = alias("alias/none", key.id());
    assert!(matches!(
        store.retarget_alias(audit(), &missing, &key.id(), 50).await,
        Err(StoreError::NotFound)
    ));
    assert!(
        !store
            .delete_alias(audit(), key.region(), key.account(), &a.name, &key.id())
            .await
            .unwrap(),
        "an alias that points elsewhere now is not deleted"
    );
    assert!(store
        .delete_alias(audit(), key.region(), key.account(), &a.name, &moved.target)
        .await
        .unwrap());
    assert!(!store
        .delete_alias(audit(), key.region(), key.account(), &a.name, &moved.target)
        .await
        .unwrap());
    let other_account = account("999999999999");
    assert_eq!(
        store
            .alias(key.region(), &other_account, &missing.name)
            .await
            .unwrap(),
        None
    );
}

async fn tags(store: &dyn Store) {
    let (key, material) = new_key("us-east-2", "111122223333");
    store
        .create_key(audit(), &key, std::slice::from_ref(&material), &[])
        .await
        .unwrap();
    let (r, id) = (key.region().clone(), key.id());
    store
        .tag_key(audit(), &r, &id, &[tag("b", "1"), tag("a", "1")], 3)
        .await
        .unwrap();
    store
        .tag_key(audit(), &r, &id, &[tag("a", "2")], 3)
        .await
        .unwrap();
    assert!(matches!(
        store
            .tag_key(audit(), &r, &id, &[tag("c", "1"), tag("d", "1")], 3)
            .await,
        Err(StoreError::LimitExceeded { in_use: 4 })
    ));
    let all = store.list_tags(&r, &id, page(None, 50)).await.unwrap();
    assert_eq!(
        all,
        vec![tag("a", "2"), tag("b", "1")],
        "a refused write adds nothing"
    );
    store
        .untag_key(audit(), &r, &id, &["a".into(), "zz".into()])
        .await
        .unwrap();
    assert_eq!(
        store.list_tags(&r, &id, page(None, 50)).await.unwrap(),
        vec![tag("b", "1")]
    );
    let ghost = KeyId::generate(false).unwrap();
    assert!(matches!(
        store
            .tag_key(audit(), &r, &ghost, &[tag("a", "1")], 3)
            .await,
        Err(StoreError::NotFound)
    ));
}
