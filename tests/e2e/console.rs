//! The web console (`console/`): served by the binary at `/console/` with the headers a
//! console needs, and used in a real browser (Debian's Chromium, driven by playwright-core
//! in `console/tests/console.test.mjs`) against a strict-mode server.

use crate::harness::{raw_post, raw_request, RawResponse, Server};
use std::path::{Path, PathBuf};
use std::process::Command;

fn get(addr: &str, path: &str) -> RawResponse {
    raw_request(addr, "GET", path, &[("host".into(), addr.into())], b"")
}

#[test]
fn the_console_is_served_with_its_headers_and_only_where_asked_for() {
    let server = Server::start();
    let page = get(&server.addr, "/console/");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("<div id=\"app\">"), "{}", page.body);
    let csp = page.header("content-security-policy").expect("a CSP");
    for directive in [
        "script-src 'self'",
        "frame-ancestors 'none'",
        "default-src 'none'",
    ] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    assert_eq!(page.header("x-frame-options"), Some("DENY"));
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    // The page's scripts are its own files, served with their hashed names.
    let script = page
        .body
        .split("src=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a script");
    let asset = get(&server.addr, script);
    assert_eq!(asset.status, 200, "{script}");
    assert!(asset
        .header("content-type")
        .is_some_and(|t| t.starts_with("text/javascript")));
    assert!(asset
        .header("cache-control")
        .is_some_and(|c| c.contains("immutable")));
    let bare = get(&server.addr, "/console");
    assert_eq!(bare.status, 308);
    assert_eq!(bare.header("location"), Some("/console/"));
    assert_eq!(get(&server.addr, "/console/assets/nothing.js").status, 404);

    // API answers, refusals included, may not be kept by any cache.
    let refused = raw_post(&server.addr, &[], b"{}");
    assert_eq!(refused.header("cache-control"), Some("no-store"));
    let answered = server.kms("ListKeys", "{}");
    assert_eq!(answered.status, 200);
    assert_eq!(answered.header("cache-control"), Some("no-store"));
    server.stop();

    // Switched off, /console/ is just another unsigned request.
    let dir = tempfile::tempdir().expect("temp dir");
    let off = Server::start_in(dir.path(), &["--console", "off"]);
    let unsigned = get(&off.addr, "/console/");
    assert_ne!(unsigned.status, 200);
    assert!(unsigned.header("content-security-policy").is_none());
    assert!(
        unsigned.body.contains("MissingAuthenticationToken") || unsigned.body.contains("__type"),
        "{}",
        unsigned.body
    );
    off.stop();
}

fn console_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("console")
}

/// A user of the server's account with an access key and an IAM policy allowing all of
/// KMS: only a key policy can deny them.
fn user_with_kms_access(data_dir: &Path, name: &str) -> (String, String) {
    crate::harness::user_with_policy(
        data_dir,
        name,
        r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"kms:*","Resource":"*"}]}"#,
    )
}

/// Keys made before the browser starts: a page of 25 and a few more.
const PAGING_KEYS: usize = 27;

/// The browser test. It needs `npm ci --prefix console` (playwright-core) and Debian's
/// Chromium (`apt-get install chromium`), which `.ci/run` installs.
#[tokio::test]
async fn a_person_uses_the_console_in_a_real_browser() {
    let console = console_dir();
    assert!(
        console.join("node_modules/playwright-core").is_dir(),
        "playwright-core is missing: run `npm ci --prefix console` (.ci/run does)"
    );
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    assert!(
        Path::new(&chromium).exists(),
        "{chromium} is missing: apt-get install chromium (.ci/run does)"
    );
    // With a CloudHSM cluster (a SoftHSM token), and a key store in it, disconnected.
    let temp = tempfile::tempdir().expect("temp dir");
    let config = crate::custom_key_stores::cluster_config(temp.path(), "cluster-consoleTESTab");
    let server = Server::start_in(
        &temp.path().join("data"),
        &["--config", config.to_str().expect("utf-8")],
    );
    let store = server
        .client()
        .create_custom_key_store()
        .custom_key_store_name("console-hsm")
        .cloud_hsm_cluster_id("cluster-consoleTESTab")
        .trust_anchor_certificate(crate::custom_key_stores::ANCHOR)
        .key_store_password(crate::custom_key_stores::PASSWORD)
        .send()
        .await
        .expect("CreateCustomKeyStore")
        .custom_key_store_id()
        .expect("an id")
        .to_owned();
    let (bob_key, bob_secret) = user_with_kms_access(&server.data_dir, "bob");
    // A read-only role, and carol, who may do nothing but assume it.
    let role_arn = "arn:aws:iam::111122223333:role/auditor";
    for args in [
        &["admin", "create-role", "--role", "auditor"][..],
        &[
            "admin",
            "put-role-policy",
            "--role",
            "auditor",
            "--policy-name",
            "read",
            "--policy-document",
            r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["kms:Describe*","kms:List*","kms:Get*"],"Resource":"*"}]}"#,
        ][..],
    ] {
        let out = crate::harness::ferrokms_in(&server.data_dir, args);
        assert!(out.status.success(), "{args:?}: {out:?}");
    }
    let (carol_key, carol_secret) = crate::harness::user_with_policy(
        &server.data_dir,
        "carol",
        &format!(
            r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"{role_arn}"}}]}}"#
        ),
    );
    let scratch = server.kms(
        "CreateKey",
        r#"{"Tags": [{"TagKey": "purpose", "TagValue": "scratch"}]}"#,
    );
    assert_eq!(scratch.status, 200, "{}", scratch.body);
    let scratch_key = scratch.json()["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("a key id")
        .to_owned();
    // More keys than a page holds, for the list's paging.
    for _ in 0..PAGING_KEYS {
        let made = server.kms(
            "CreateKey",
            r#"{"Tags": [{"TagKey": "batch", "TagValue": "paging"}]}"#,
        );
        assert_eq!(made.status, 200, "{}", made.body);
    }
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);
    let out = Command::new("node")
        .arg("--test")
        .arg("--test-reporter=spec")
        .arg(console.join("tests/console.test.mjs"))
        .current_dir(&console)
        .env("FERROKMS_ENDPOINT", &server.endpoint)
        .env("ADMIN_KEY", &server.access_key_id)
        .env("ADMIN_SECRET", &server.secret_access_key)
        .env("BOB_KEY", &bob_key)
        .env("BOB_SECRET", &bob_secret)
        .env("CAROL_KEY", &carol_key)
        .env("CAROL_SECRET", &carol_secret)
        .env("ROLE_ARN", role_arn)
        .env("SCRATCH_KEY", &scratch_key)
        .env("SCREENSHOTS", &screenshots)
        .env("CHROMIUM", &chromium)
        .env("PAGING_KEYS", PAGING_KEYS.to_string())
        .env("STORE_ID", &store)
        .output()
        .expect("node runs");
    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "the browser test failed:\n{report}");
    eprintln!("screenshots in {}", screenshots.display());

    // What the browser did is in the trail as any client's calls are: the admin's
    // PutKeyPolicy, bob's refused DescribeKey, the ScheduleKeyDeletion.
    let events = |name: &str| crate::harness::events_named(&server, name);
    let put = events("PutKeyPolicy");
    assert!(
        put.iter().any(|e| e["userIdentity"]["arn"]
            .as_str()
            .is_some_and(|a| a.ends_with("user/admin"))),
        "{put:?}"
    );
    let bobs = crate::harness::lookup(
        &server,
        serde_json::json!({"LookupAttributes": [{"AttributeKey": "Username", "AttributeValue": "bob"}]}),
    );
    let refused = bobs["Events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| {
            serde_json::from_str::<serde_json::Value>(e["CloudTrailEvent"].as_str()?).ok()
        })
        .filter(|e| e["eventName"] == "DescribeKey" && e["errorCode"] == "AccessDeniedException")
        .count();
    assert!(
        refused >= 1,
        "bob's refused DescribeKey is not in the trail"
    );
    let scheduled = events("ScheduleKeyDeletion");
    assert_eq!(scheduled.len(), 1, "{scheduled:?}");
    // Sent from the browser: its User-Agent, not a client's of this test's.
    let agent = scheduled[0]["userAgent"].as_str().unwrap_or_default();
    assert!(agent.contains("Chrome"), "{agent}");
    server.stop();
}
