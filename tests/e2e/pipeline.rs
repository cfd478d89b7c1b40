//! One pipeline for every request and every change: admin commands, the config file and
//! first start are recorded as IAM events; unauthenticated traffic stays bounded and out of
//! the accounts' trails; metrics take a bearer token and only the tables' names.

use std::path::Path;
use std::time::SystemTime;

use serde_json::{json, Value};

use crate::harness::{ferrokms_command, Server, REGION};
use crate::{encrypt, new_key};

use crate::harness::{exported, ferrokms_in as ferrokms, get_metrics};

/// (eventName, invokedBy) of the IAM events of the trail, in order.
fn iam_events(dir: &Path) -> Vec<(String, String)> {
    exported(dir)
        .iter()
        .filter(|e| e["eventSource"] == "iam.amazonaws.com")
        .map(|e| {
            (
                e["eventName"].as_str().unwrap().to_owned(),
                e["userIdentity"]["invokedBy"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

const POLICY: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#;

#[tokio::test]
async fn admin_commands_and_the_config_file_are_recorded_as_iam_events() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let config = temp.path().join("ferrokms.toml");
    std::fs::write(
        &config,
        format!(
            "[[users]]\nname = \"carol\"\naccess_keys = [{{ id = \"AKIACAROL00000000001\", secret = \"carol-secret-0123456789\" }}]\npolicies = {{ kms = '{POLICY}' }}\n\n[[roles]]\nname = \"deployer\"\npolicies = {{ kms = '{POLICY}' }}\n"
        ),
    )
    .unwrap();
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap()]);
    server.stop();
    let first = "ferrokms first start".to_owned();
    let file = "ferrokms config file".to_owned();
    let mut expected: Vec<(String, String)> = [
        ("CreateUser", &file),
        ("CreateAccessKey", &file),
        ("PutUserPolicy", &file),
        ("CreateRole", &file),
        ("UpdateAssumeRolePolicy", &file),
        ("PutRolePolicy", &file),
        ("CreateUser", &first),
        ("PutUserPolicy", &first),
        ("CreateAccessKey", &first),
    ]
    .iter()
    .map(|(n, by)| (n.to_string(), by.to_string()))
    .collect();
    assert_eq!(iam_events(&dir), expected);

    // The same config again changes nothing, and records nothing.
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap()]);
    server.stop();
    assert_eq!(iam_events(&dir), expected);

    let admin = "ferrokms admin".to_owned();
    let run = |args: &[&str]| {
        let out = ferrokms(&dir, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    run(&["admin", "create-user", "--user", "dave"]);
    let issued = run(&["admin", "create-access-key", "--user", "dave"]);
    let key_id = issued
        .lines()
        .find_map(|l| l.strip_prefix("export AWS_ACCESS_KEY_ID="))
        .unwrap()
        .to_owned();
    run(&[
        "admin",
        "put-user-policy",
        "--user",
        "dave",
        "--policy-name",
        "kms",
        "--policy-document",
        POLICY,
    ]);
    run(&[
        "admin",
        "delete-user-policy",
        "--user",
        "dave",
        "--policy-name",
        "kms",
    ]);
    run(&["admin", "create-role", "--role", "auditor"]);
    run(&[
        "admin",
        "put-role-policy",
        "--role",
        "auditor",
        "--policy-name",
        "kms",
        "--policy-document",
        POLICY,
    ]);
    run(&["admin", "delete-access-key", "--access-key-id", &key_id]);
    // A refused command changes nothing and records nothing.
    assert!(!ferrokms(
        &dir,
        &["admin", "delete-access-key", "--access-key-id", &key_id]
    )
    .status
    .success());
    for name in [
        "CreateUser",
        "CreateAccessKey",
        "PutUserPolicy",
        "DeleteUserPolicy",
        "CreateRole",
        "UpdateAssumeRolePolicy",
        "PutRolePolicy",
        "DeleteAccessKey",
    ] {
        expected.push((name.to_owned(), admin.clone()));
    }
    assert_eq!(iam_events(&dir), expected);

    let events = exported(&dir);
    let deleted = events
        .iter()
        .find(|e| e["eventName"] == "DeleteAccessKey")
        .unwrap();
    assert_eq!(deleted["requestParameters"]["accessKeyId"], key_id.as_str());
    assert_eq!(deleted["recipientAccountId"], "111122223333");
    let made = events
        .iter()
        .find(|e| e["eventName"] == "CreateAccessKey" && e["userIdentity"]["invokedBy"] == admin)
        .unwrap();
    assert!(!made.to_string().contains("SECRET"), "no secret in {made}");
    // The chain holds them all, signed.
    let out = ferrokms(&dir, &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
}

fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

fn store_bytes(dir: &Path) -> u64 {
    ["ferrokms.db", "ferrokms.db-wal"]
        .iter()
        .map(|f| file_size(&dir.join(f)))
        .sum()
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn a_flood_of_unauthenticated_requests_stays_bounded_and_out_of_the_trail() {
    if crate::POSTGRES {
        // The store's growth is measured on its file; the pipeline is the same on both.
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let config = crate::harness::metrics_config(temp.path(), "scraper-token-0123456789");
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap(), "--metrics"]);
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    encrypt(&kms, &id, "x").await.unwrap();

    let (bytes_before, rss_before) = (store_bytes(&dir), rss_kib(server.pid()));
    let events_before = exported(&dir).len();
    let requests = 3000;
    let started = std::time::Instant::now();
    for i in 0..requests {
        // The admin's real access key id, a wrong secret, an operation of the caller's
        // invention.
        let target = format!("TrentService.Invented{i}");
        let r = server.signed_with(
            &server.access_key_id,
            "not-the-secret",
            "kms",
            Some(&target),
            b"{}",
            SystemTime::now(),
        );
        assert_eq!(r.status, 400, "{}", r.body);
    }
    let elapsed = started.elapsed();
    let (bytes_after, rss_after) = (store_bytes(&dir), rss_kib(server.pid()));
    let events_after = exported(&dir).len();
    println!(
        "{requests} unauthenticated requests in {:.2} s: {} records kept, store (with its WAL) {} -> {} KiB, RSS {} -> {} KiB",
        elapsed.as_secs_f64(),
        events_after - events_before,
        bytes_before / 1024,
        bytes_after / 1024,
        rss_before,
        rss_after
    );
    // Five records a second at most from one address, where every request was recorded.
    let allowed = 5 * (elapsed.as_secs() as usize + 2);
    assert!(
        events_after - events_before <= allowed,
        "{} records for {requests} requests",
        events_after - events_before
    );
    // The WAL is checkpointed at a few MiB; the records themselves are a few KiB.
    assert!(bytes_after < 8 * 1024 * 1024, "{bytes_after}");
    assert!(
        rss_after < rss_before + 16 * 1024,
        "{rss_before} -> {rss_after} KiB"
    );

    // Unauthenticated calls are shown to the service's operator, never in the account the
    // access key id names; their event names come from the table.
    let unauthenticated: Vec<Value> = exported(&dir)
        .into_iter()
        .filter(|e| {
            e["errorCode"] == "IncompleteSignatureException"
                || e["errorCode"] == "InvalidSignatureException"
        })
        .collect();
    assert!(
        !unauthenticated.is_empty() && unauthenticated.len() < 100,
        "{}",
        unauthenticated.len()
    );
    for e in &unauthenticated {
        assert_eq!(e["recipientAccountId"], "unknown", "{e}");
        assert_eq!(e["eventName"], "Unknown", "{e}");
        assert!(e["requestParameters"].is_null());
    }
    assert!(unauthenticated
        .iter()
        .any(|e| e["additionalEventData"]["unrecordedBefore"].as_u64() > Some(0)));
    let lookup = crate::harness::lookup(&server, json!({}));
    assert!(!lookup.to_string().contains("not-the-secret"));
    assert!(
        !lookup.to_string().contains("InvalidSignatureException"),
        "{lookup}"
    );

    // Metrics: the token is required, and invented names share one label.
    assert_eq!(get_metrics(&server.addr, None).0, 401);
    assert_eq!(
        get_metrics(&server.addr, Some("scraper-token-wrong0000")).0,
        401
    );
    let (status, text) = get_metrics(&server.addr, Some("scraper-token-0123456789"));
    assert_eq!(status, 200);
    assert!(!text.contains("Invented"), "{text}");
    assert!(text
        .lines()
        .any(|l| l.starts_with("ferrokms_requests_total{operation=\"Unknown\"")));
    let unrecorded: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("ferrokms_unauthenticated_unrecorded_total "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(unrecorded > 2000, "{unrecorded}");
    println!("metrics: {} bytes after the flood", text.len());
    assert!(text.len() < 16 * 1024, "{}", text.len());
    let _ = REGION;
}

#[tokio::test]
async fn metrics_outside_dev_mode_need_a_token() {
    let temp = tempfile::tempdir().unwrap();
    let out = ferrokms_command(temp.path())
        .args([
            "serve",
            "--metrics",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(temp.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("metrics_bearer_token_file"));
}
