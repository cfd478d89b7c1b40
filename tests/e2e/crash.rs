//! Crash consistency: the real server under a mixed load (CreateKey, CreateAlias, Encrypt,
//! PutKeyPolicy, CreateGrant, ScheduleKeyDeletion) is killed with SIGKILL at a random moment,
//! round after round, and restarted on the same store. After each restart every
//! acknowledged key, alias, grant and policy is there, every acknowledged ciphertext
//! decrypts, nothing half-made is visible, and at the end the audit chain verifies.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantOperation, KeyState};
use aws_sdk_kms::Client;

use crate::harness::{ferrokms_command, Server};
use crate::{policy, root_allows_all};

const ROUNDS: u64 = 8;
const WORKERS: usize = 6;
const ACCOUNT: &str = "111122223333";
const GRANTEE: &str = "arn:aws:iam::111122223333:user/grantee";

/// What the server acknowledged about one key.
#[derive(Default, Clone)]
struct Acked {
    alias: Option<String>,
    ciphertext: Option<(Vec<u8>, Vec<u8>)>,
    policy_sid: Option<String>,
    grant: Option<String>,
    pending_deletion: bool,
}

type Ledger = Arc<Mutex<BTreeMap<String, Acked>>>;

/// A small deterministic generator, so that a failing round can be run again.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

/// One key's life, step by step; each step recorded once acknowledged. Stops at the first
/// error (the server died).
async fn key_life(kms: &Client, ledger: &Ledger, tag: String, delete: bool) -> Option<()> {
    let created = kms.create_key().send().await.ok()?;
    let arn = created.key_metadata()?.arn()?.to_owned();
    ledger.lock().unwrap().insert(arn.clone(), Acked::default());
    let record = |f: &dyn Fn(&mut Acked)| {
        if let Some(a) = ledger.lock().unwrap().get_mut(&arn) {
            f(a);
        }
    };
    let alias = format!("alias/crash-{tag}");
    kms.create_alias()
        .alias_name(&alias)
        .target_key_id(&arn)
        .send()
        .await
        .ok()?;
    record(&|a| a.alias = Some(alias.clone()));
    let plaintext = format!("acknowledged {tag}").into_bytes();
    let blob = kms
        .encrypt()
        .key_id(&alias)
        .plaintext(Blob::new(plaintext.clone()))
        .send()
        .await
        .ok()?
        .ciphertext_blob?
        .into_inner();
    record(&|a| a.ciphertext = Some((blob.clone(), plaintext.clone())));
    let sid = format!("crash-{tag}");
    let mut statement = root_allows_all(ACCOUNT);
    statement["Sid"] = sid.clone().into();
    kms.put_key_policy()
        .key_id(&arn)
        .policy(policy(serde_json::json!([statement])))
        .send()
        .await
        .ok()?;
    record(&|a| a.policy_sid = Some(sid.clone()));
    let grant = kms
        .create_grant()
        .key_id(&arn)
        .grantee_principal(GRANTEE)
        .operations(GrantOperation::Decrypt)
        .send()
        .await
        .ok()?
        .grant_id?;
    record(&|a| a.grant = Some(grant.clone()));
    if delete {
        kms.schedule_key_deletion()
            .key_id(&arn)
            .pending_window_in_days(7)
            .send()
            .await
            .ok()?;
        record(&|a| a.pending_deletion = true);
    }
    Some(())
}

async fn check(kms: &Client, ledger: &Ledger) {
    let acked = ledger.lock().unwrap().clone();
    for (arn, a) in &acked {
        let meta = kms
            .describe_key()
            .key_id(arn)
            .send()
            .await
            .unwrap_or_else(|e| panic!("acknowledged key {arn} is gone: {e:?}"));
        let state = meta.key_metadata().unwrap().key_state().unwrap().clone();
        if a.pending_deletion {
            assert_eq!(state, KeyState::PendingDeletion, "{arn}");
        }
        if let Some(alias) = &a.alias {
            let target = kms.describe_key().key_id(alias).send().await.unwrap();
            assert_eq!(target.key_metadata().unwrap().arn(), Some(arn.as_str()));
        }
        if let Some(sid) = &a.policy_sid {
            let text = kms
                .get_key_policy()
                .key_id(arn)
                .send()
                .await
                .unwrap()
                .policy
                .unwrap();
            assert!(text.contains(sid.as_str()), "{arn}: {text}");
        }
        if let Some(grant) = &a.grant {
            let grants = kms.list_grants().key_id(arn).send().await.unwrap();
            assert!(
                grants.grants().iter().any(|g| g.grant_id() == Some(grant)),
                "{arn} lost grant {grant}"
            );
        }
        if let (Some((blob, plaintext)), KeyState::Enabled) = (&a.ciphertext, &state) {
            let out = kms
                .decrypt()
                .ciphertext_blob(Blob::new(blob.clone()))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{arn}: an acknowledged ciphertext: {e:?}"));
            assert_eq!(out.plaintext().unwrap().as_ref(), plaintext.as_slice());
        }
    }
    // Nothing half-made: every key listed describes whole, every alias names a key.
    let mut listed = kms.list_keys().limit(1000).into_paginator().send();
    while let Some(page) = listed.next().await {
        for key in page.unwrap().keys() {
            let described = kms
                .describe_key()
                .key_id(key.key_arn().unwrap())
                .send()
                .await
                .unwrap();
            assert!(described.key_metadata().unwrap().key_state().is_some());
        }
    }
    let aliases = kms.list_aliases().limit(100).send().await.unwrap();
    for alias in aliases.aliases() {
        if let Some(target) = alias.target_key_id() {
            kms.describe_key().key_id(target).send().await.unwrap();
        }
    }
}

fn audit_verifies(dir: &Path) {
    let out = ferrokms_command(dir)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn kills_at_random_moments_lose_nothing_acknowledged() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let ledger: Ledger = Arc::default();
    let mut seed = 0x9e37_79b9_7f4a_7c15 ^ u64::from(std::process::id());
    eprintln!("crash rounds with seed {seed:#x}");
    for round in 0..ROUNDS {
        let server = Server::start_in(&dir, &[]);
        let kms = server.client();
        check(&kms, &ledger).await;
        let workers: Vec<_> = (0..WORKERS)
            .map(|w| {
                let (kms, ledger) = (kms.clone(), ledger.clone());
                tokio::spawn(async move {
                    for n in 0.. {
                        let tag = format!("{round}-{w}-{n}");
                        if key_life(&kms, &ledger, tag, n % 3 == 0).await.is_none() {
                            break;
                        }
                    }
                })
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(150 + next(&mut seed) % 600)).await;
        server.kill();
        for w in workers {
            w.await.unwrap();
        }
    }
    let server = Server::start_in(&dir, &[]);
    check(&server.client(), &ledger).await;
    let keys = ledger.lock().unwrap().len();
    assert!(keys >= ROUNDS as usize, "the load made keys: {keys}");
    server.stop();
    audit_verifies(&dir);
}
