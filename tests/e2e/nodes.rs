//! Several nodes on one PostgreSQL database: what one node changes holds on the others once
//! its answer is sent, though every node caches keys, aliases, grants and identities (each
//! hears the others' changes through PostgreSQL and a change returns only when no node can
//! still answer from an older copy), racing writes end in one result, jobs act once, and the
//! audit log of all nodes is one verifiable chain.

use aws_sdk_kms::types::{GrantOperation, KeyState};

use crate::harness::{code, events_named, ferrokms_command, Server};
use crate::{encrypt, new_key, policy, root_allows_all};

fn two_nodes(extra: &[&str]) -> (tempfile::TempDir, Server, Server) {
    let temp = tempfile::tempdir().unwrap();
    let a = Server::start_in(&temp.path().join("a"), extra);
    let b = a.another_node(&temp.path().join("b"), extra);
    (temp, a, b)
}

#[tokio::test]
async fn a_change_on_one_node_holds_on_another_at_once() {
    let (_t, a, b) = two_nodes(&[]);
    let (on_a, on_b) = (a.client(), b.client());
    let (id, arn) = new_key(&on_a).await;
    let blob = encrypt(&on_b, &id, "made on a, used on b")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let plain = crate::decrypt(&on_a, blob).await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"made on a, used on b");

    on_a.disable_key().key_id(&id).send().await.unwrap();
    let err = encrypt(&on_b, &id, "x").await.unwrap_err();
    assert_eq!(code(&err), "DisabledException");
    on_a.enable_key().key_id(&id).send().await.unwrap();
    encrypt(&on_b, &id, "x").await.unwrap();

    let deny_encrypt = policy(serde_json::json!([
        root_allows_all("111122223333"),
        {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*"}
    ]));
    on_a.put_key_policy()
        .key_id(&id)
        .policy(deny_encrypt)
        .send()
        .await
        .unwrap();
    let err = encrypt(&on_b, &id, "x").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");

    on_a.schedule_key_deletion()
        .key_id(&arn)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    let seen = on_b.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        seen.key_metadata().unwrap().key_state(),
        Some(&KeyState::PendingDeletion)
    );
    a.stop();
    b.stop();
}

#[tokio::test]
async fn racing_writes_on_two_nodes_end_in_one_result() {
    let (_t, a, b) = two_nodes(&[]);
    let (on_a, on_b) = (a.client(), b.client());
    let (id, _) = new_key(&on_a).await;

    for i in 0..10 {
        let name = format!("alias/race-{i}");
        let (ra, rb) = tokio::join!(
            on_a.create_alias()
                .alias_name(&name)
                .target_key_id(&id)
                .send(),
            on_b.create_alias()
                .alias_name(&name)
                .target_key_id(&id)
                .send(),
        );
        let codes = [&ra, &rb].map(|r| r.as_ref().err().map(code));
        assert_eq!(
            codes.iter().filter(|c| c.is_none()).count(),
            1,
            "exactly one node makes {name}: {codes:?}"
        );
        assert!(codes.contains(&Some("AlreadyExistsException".to_owned())));
    }

    let grantee = "arn:aws:iam::111122223333:user/app";
    for i in 0..10 {
        let grant = |client: &aws_sdk_kms::Client| {
            client
                .create_grant()
                .key_id(&id)
                .grantee_principal(grantee)
                .operations(GrantOperation::Encrypt)
                .name(format!("retry-{i}"))
                .send()
        };
        let (ga, gb) = tokio::join!(grant(&on_a), grant(&on_b));
        let (ga, gb) = (ga.unwrap(), gb.unwrap());
        assert_eq!(ga.grant_id(), gb.grant_id(), "one grant for one name");
    }
    let grants = on_a.list_grants().key_id(&id).send().await.unwrap();
    assert_eq!(grants.grants().len(), 10);

    for _ in 0..5 {
        let (key, _) = new_key(&on_a).await;
        let (disabled, scheduled) = tokio::join!(
            on_a.disable_key().key_id(&key).send(),
            on_b.schedule_key_deletion().key_id(&key).send(),
        );
        scheduled.unwrap();
        if let Err(e) = &disabled {
            assert_eq!(code(e), "KMSInvalidStateException");
        }
        let state = on_a.describe_key().key_id(&key).send().await.unwrap();
        assert_eq!(
            state.key_metadata().unwrap().key_state(),
            Some(&KeyState::PendingDeletion)
        );
    }
    a.stop();
    b.stop();
}

#[tokio::test]
async fn jobs_act_once_and_all_nodes_keep_one_audit_chain() {
    let (_t, a, b) = two_nodes(&["--dev", "--debug-clock"]);
    let (on_a, on_b) = (
        a.client_with(crate::harness::REGION, "test", "test"),
        b.client_with(crate::harness::REGION, "test", "test"),
    );
    let (doomed, _) = new_key(&on_a).await;
    on_b.schedule_key_deletion()
        .key_id(&doomed)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    a.advance_clock_days(8);
    b.advance_clock_days(8);
    let (ra, rb) = std::thread::scope(|s| {
        let ja = s.spawn(|| a.run_jobs());
        let jb = s.spawn(|| b.run_jobs());
        (ja.join().unwrap(), jb.join().unwrap())
    });
    assert_eq!(ra.1 + rb.1, 1, "one node deletes the key");
    let deletions: Vec<_> = events_named(&a, "DeleteKey")
        .into_iter()
        .filter(|e| e["eventType"] == "AwsServiceEvent")
        .collect();
    assert_eq!(deletions.len(), 1, "{deletions:?}");

    let (key, _) = new_key(&on_a).await;
    let mut tasks = Vec::new();
    for client in [&on_a, &on_b, &on_a, &on_b] {
        let (client, key) = (client.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..25 {
                encrypt(&client, &key, "from both nodes").await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert!(
        events_named(&b, "Encrypt").len() >= 50,
        "lookups page at 50"
    );
    a.stop();
    b.stop();
    let out = ferrokms_command(&_t.path().join("a"))
        .args(["audit", "verify", "--data-dir"])
        .arg(_t.path().join("a"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    let events: usize = said
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or_default();
    assert!(events >= 100 + 4, "{said}");
}

#[tokio::test]
async fn a_grant_revoked_on_one_node_stops_working_on_another() {
    use crate::identities::{start_with_config, BOB_KEY, BOB_SECRET};
    let temp = tempfile::tempdir().unwrap();
    let a = start_with_config(&temp, &[]);
    let config = temp.path().join("ferrokms.toml");
    let b = a.another_node(
        &temp.path().join("b"),
        &["--config", config.to_str().unwrap()],
    );
    let admin = a.client();
    let bob_on_b = b.client_with(crate::harness::REGION, BOB_KEY, BOB_SECRET);
    let (id, _) = new_key(&admin).await;
    let err = encrypt(&bob_on_b, &id, "x").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException", "bob has no grant yet");
    let grant = admin
        .create_grant()
        .key_id(&id)
        .grantee_principal("arn:aws:iam::111122223333:user/bob")
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    encrypt(&bob_on_b, &id, "x").await.unwrap();
    admin
        .revoke_grant()
        .key_id(&id)
        .grant_id(grant.grant_id().unwrap())
        .send()
        .await
        .unwrap();
    let err = encrypt(&bob_on_b, &id, "x").await.unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "revoked on a, refused on b"
    );
    a.stop();
    b.stop();
}
