//! The audit trail: a CloudTrail record for every request, nothing secret in any record,
//! tamper evidence, LookupEvents, and durability across a crash.

use std::process::Command;
use std::time::SystemTime;

use aws_sdk_kms::operation::RequestId;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::{json, Value};

use crate::harness::{code, copy_service, events_named, lookup, store_sql, Server, LOOKUP, REGION};
use crate::{decrypt, encrypt, new_key};

fn ferrokms(dir: &std::path::Path, args: &[&str]) -> std::process::Output {
    crate::harness::ferrokms_in(dir, args)
}

fn export(dir: &std::path::Path) -> Vec<Value> {
    crate::harness::exported(dir)
}

#[tokio::test]
async fn every_request_is_recorded_without_its_secrets() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    let secret = b"the-plaintext-under-test-7f3a9c".to_vec();
    let ct = kms
        .encrypt()
        .key_id(&id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(secret.clone()))
        .encryption_context("purpose", "audit-test")
        .send()
        .await
        .unwrap();
    let data_key = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let data_key = data_key.plaintext().unwrap().as_ref().to_vec();
    kms.disable_key().key_id(&id).send().await.unwrap();
    let err = encrypt(&kms, &id, "refused").await.unwrap_err();
    assert_eq!(code(&err), "DisabledException");
    let stranger = server.client_with(REGION, "AKIAUNKNOWN000000000", "x");
    assert!(stranger.list_keys().send().await.is_err());
    let forged = server.client_with(REGION, &server.access_key_id, "wrong-secret");
    assert!(forged.list_keys().send().await.is_err());

    let encrypts = events_named(&server, "Encrypt");
    assert_eq!(encrypts.len(), 2);
    let ok = encrypts
        .iter()
        .find(|e| e.get("errorCode").is_none())
        .unwrap();
    assert_eq!(ok["eventSource"], "kms.amazonaws.com");
    assert_eq!(ok["awsRegion"], REGION);
    assert_eq!(ok["eventType"], "AwsApiCall");
    assert_eq!(ok["readOnly"], true);
    assert_eq!(ok["recipientAccountId"], "111122223333");
    assert_eq!(ok["userIdentity"]["type"], "IAMUser");
    assert_eq!(
        ok["userIdentity"]["arn"],
        "arn:aws:iam::111122223333:user/admin"
    );
    assert_eq!(
        ok["userIdentity"]["accessKeyId"],
        server.access_key_id.as_str()
    );
    assert_eq!(
        ok["requestParameters"]["encryptionContext"]["purpose"],
        "audit-test"
    );
    assert_eq!(ok["resources"][0]["ARN"], arn.as_str());
    assert_eq!(ok["requestID"], ct.request_id().unwrap());
    let refused = encrypts
        .iter()
        .find(|e| e.get("errorCode").is_some())
        .unwrap();
    assert_eq!(refused["errorCode"], "DisabledException");
    assert_eq!(refused["errorMessage"], format!("{arn} is disabled."));
    let disable = events_named(&server, "DisableKey");
    assert_eq!(disable[0]["readOnly"], false);

    // Failed authentication is recorded too, as the service's own: a request whose
    // signature does not verify is not put into the trail of the account it names.
    let out = lookup(
        &server,
        json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "ListKeys"}]}),
    );
    assert!(
        !out.to_string().contains("InvalidSignatureException"),
        "{out}"
    );
    let forged_event = export(&server.data_dir)
        .into_iter()
        .find(|e| e["errorCode"] == "InvalidSignatureException")
        .expect("the forged request is recorded");
    assert_eq!(
        forged_event["userIdentity"]["accessKeyId"],
        server.access_key_id.as_str()
    );
    assert_eq!(forged_event["recipientAccountId"], "unknown");
    assert_eq!(forged_event["eventName"], "ListKeys");

    // Nothing secret anywhere, in any encoding.
    let all = export(&server.data_dir);
    assert!(all
        .iter()
        .any(|e| e["errorCode"] == "UnrecognizedClientException"));
    let text: String = all.iter().map(|e| e.to_string()).collect();
    for needle in [
        String::from_utf8_lossy(&secret).into_owned(),
        BASE64.encode(&secret),
        BASE64.encode(&data_key),
        BASE64.encode(ct.ciphertext_blob().unwrap().as_ref()),
        server.secret_access_key.clone(),
    ] {
        assert!(!text.contains(&needle), "an audit record contains {needle}");
    }
    let out = ferrokms(&server.data_dir, &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("audit log intact: "));
}

#[tokio::test]
async fn lookup_events_filters_and_pages() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    let (other, _) = new_key(&kms).await;
    for _ in 0..3 {
        encrypt(&kms, &id, "x").await.unwrap();
    }
    encrypt(&kms, &other, "x").await.unwrap();
    let by_key = lookup(
        &server,
        json!({"LookupAttributes": [{"AttributeKey": "ResourceName", "AttributeValue": arn}]}),
    );
    let names: Vec<&str> = by_key["Events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["EventName"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["Encrypt", "Encrypt", "Encrypt", "CreateKey"],
        "newest first"
    );
    let first = lookup(
        &server,
        json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}], "MaxResults": 3}),
    );
    assert_eq!(first["Events"].as_array().unwrap().len(), 3);
    let token = first["NextToken"].as_str().unwrap();
    let rest = lookup(
        &server,
        json!({"LookupAttributes": [{"AttributeKey": "EventName", "AttributeValue": "Encrypt"}], "NextToken": token}),
    );
    assert_eq!(rest["Events"].as_array().unwrap().len(), 1);
    assert!(rest.get("NextToken").is_none());
    let r = server.signed(
        "cloudtrail",
        Some(LOOKUP),
        br#"{"LookupAttributes": [{"AttributeKey": "Colour", "AttributeValue": "x"}]}"#,
        SystemTime::now(),
    );
    assert_eq!(r.error_type(), "InvalidLookupAttributesException");
}

fn verify_message(dir: &std::path::Path) -> String {
    let out = ferrokms(dir, &["audit", "verify"]);
    assert!(!out.status.success(), "tampering went unnoticed: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn audit_verify_names_the_tampered_event() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let server = Server::start_in(&dir, &[]);
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    for _ in 0..6 {
        encrypt(&kms, &id, "x").await.unwrap();
    }
    server.stop();
    let copy = |name: &str| {
        let target = temp.path().join(name);
        copy_service(&dir, &target);
        target
    };
    let edited = copy("edited");
    store_sql(
        &edited,
        "UPDATE audit_events SET event = replace(event, 'Management', 'Data') WHERE seq = 3;",
    );
    assert!(verify_message(&edited).contains("event 3 was changed"));

    // The columns LookupEvents selects by must say what the signed record says.
    let hidden = copy("hidden");
    store_sql(
        &hidden,
        "UPDATE audit_events SET account_id = 'unknown' WHERE seq = 4;",
    );
    assert!(verify_message(&hidden).contains("account column"));

    let removed = copy("removed");
    store_sql(&removed, "DELETE FROM audit_events WHERE seq = 4;");
    assert!(verify_message(&removed).contains("event 4 is missing"));

    let reordered = copy("reordered");
    store_sql(
        &reordered,
        "UPDATE audit_events SET seq = -5 WHERE seq = 5; UPDATE audit_events SET seq = 5 WHERE seq = 6; UPDATE audit_events SET seq = 6 WHERE seq = -5;",
    );
    assert!(verify_message(&reordered).contains("event 5 does not follow event 4"));

    let inserted = copy("inserted");
    store_sql(
        &inserted,
        "UPDATE audit_events SET seq = -(seq + 1) WHERE seq >= 5; UPDATE audit_events SET seq = -seq WHERE seq < 0; \
         INSERT INTO audit_events SELECT 5, 'forged', event_time, account_id, event_name, event_source, read_only, username, access_key_id, resources, event, prev_hash, hash FROM audit_events WHERE seq = 2;",
    );
    assert!(verify_message(&inserted).contains("event 5"));

    let truncated = copy("truncated");
    store_sql(
        &truncated,
        "DELETE FROM audit_events WHERE seq >= (SELECT MAX(seq) - 1 FROM audit_events);",
    );
    assert!(verify_message(&truncated).contains("cut off the end"));

    let forged_digest = copy("forged-digest");
    store_sql(
        &forged_digest,
        if crate::POSTGRES {
            "UPDATE audit_digests SET signature = '\\x3006020101020101'::bytea WHERE upto_seq = 3;"
        } else {
            "UPDATE audit_digests SET signature = X'3006020101020101' WHERE upto_seq = 3;"
        },
    );
    assert!(verify_message(&forged_digest).contains("bad signature"));

    let out = ferrokms(&dir, &["audit", "verify"]);
    assert!(out.status.success(), "the untouched log is intact: {out:?}");
}

#[tokio::test]
async fn acknowledged_requests_keep_their_events_across_a_crash() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let server = Server::start_in(&dir, &[]);
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let kms = kms.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for _ in 0..25 {
                let out = encrypt(&kms, &id, "under load").await.unwrap();
                ids.push(out.request_id().unwrap().to_owned());
            }
            ids
        }));
    }
    let mut acknowledged = Vec::new();
    for t in tasks {
        acknowledged.extend(t.await.unwrap());
    }
    server.kill();
    let out = ferrokms(&dir, &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    let recorded: std::collections::HashSet<String> = export(&dir)
        .iter()
        .filter_map(|e| e["requestID"].as_str().map(str::to_owned))
        .collect();
    for id in &acknowledged {
        assert!(
            recorded.contains(id),
            "acknowledged request {id} has no event"
        );
    }
    // The chain continues after the restart.
    let again = Server::start_in(&dir, &[]);
    decrypt(
        &again.client(),
        encrypt(&again.client(), &id, "y")
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .clone(),
    )
    .await
    .unwrap();
    again.stop();
    let out = ferrokms(&dir, &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
}

/// SQL that makes every insert into `table` fail, as a full disk would.
fn refuse_inserts(table: &str) -> String {
    if crate::POSTGRES {
        format!(
            "CREATE OR REPLACE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'disk full'; END $$; \
             CREATE TRIGGER refuse BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION refuse();"
        )
    } else {
        format!(
            "CREATE TRIGGER refuse_{table} BEFORE INSERT ON {table} \
             BEGIN SELECT RAISE(ABORT, 'disk full'); END;"
        )
    }
}

#[tokio::test]
async fn work_without_a_durable_record_has_no_effect() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let server = Server::start_in(&dir, &[]);
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    store_sql(&dir, &refuse_inserts("audit_events"));
    let err = encrypt(&kms, &id, "unaudited").await.unwrap_err();
    assert_eq!(code(&err), "KMSInternalException");

    // A write commits its request's record with it, so the write stands although the chain
    // refuses the final record.
    let kept = kms.create_key().description("kept").send().await.unwrap();
    let kept_id = kept.key_metadata().unwrap().key_id().to_owned();
    let kept_request = kept.request_id().unwrap().to_owned();

    store_sql(&dir, &refuse_inserts("audit_outbox"));
    let err = kms
        .create_key()
        .description("refused")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInternalException");

    // What the writer held in memory to retry dies with it; the outbox does not.
    server.kill();
    // A copy of the sealed outbox record, as someone reading the database could keep one.
    store_sql(
        &dir,
        "CREATE TABLE saved_outbox AS SELECT * FROM audit_outbox;",
    );
    store_sql(
        &dir,
        if crate::POSTGRES {
            "DROP TRIGGER refuse ON audit_events; DROP TRIGGER refuse ON audit_outbox;"
        } else {
            "DROP TRIGGER refuse_audit_events; DROP TRIGGER refuse_audit_outbox;"
        },
    );
    let again = Server::start_in(&dir, &[]);
    let listed = again.client().list_keys().send().await.unwrap();
    let mut ids: Vec<&str> = listed.keys().iter().filter_map(|k| k.key_id()).collect();
    ids.sort_unstable();
    let mut expected = [id.as_str(), kept_id.as_str()];
    expected.sort_unstable();
    assert_eq!(ids, expected, "only the audited keys exist");
    again.stop();

    let out = ferrokms(&dir, &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    let recovered: Vec<Value> = export(&dir)
        .into_iter()
        .filter(|e| e["requestID"] == kept_request.as_str())
        .collect();
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0]["eventName"], "CreateKey");
    assert_eq!(recovered[0]["additionalEventData"]["answerRecorded"], false);

    // Put back after it was chained, the sealed record is not chained a second time.
    store_sql(&dir, "INSERT INTO audit_outbox SELECT * FROM saved_outbox;");
    let third = Server::start_in(&dir, &[]);
    third.client().list_keys().send().await.unwrap();
    third.stop();
    let out = ferrokms(&dir, &["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");
    let replayed = export(&dir)
        .into_iter()
        .filter(|e| e["requestID"] == kept_request.as_str())
        .count();
    assert_eq!(replayed, 1, "a replayed outbox record was chained again");
}

const METRICS_TOKEN: &str = "metrics-token-for-the-test";

fn get_metrics(addr: &str) -> (u16, String) {
    crate::harness::get_metrics(addr, Some(METRICS_TOKEN))
}

#[tokio::test]
async fn prometheus_metrics_count_requests_keys_and_usage() {
    let temp = tempfile::tempdir().unwrap();
    let config = crate::harness::metrics_config(temp.path(), METRICS_TOKEN);
    let data = temp.path().join("data");
    let server = Server::start_in(&data, &["--metrics", "--config", config.to_str().unwrap()]);
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    encrypt(&kms, &id, "a").await.unwrap();
    encrypt(&kms, &id, "b").await.unwrap();
    kms.disable_key().key_id(&id).send().await.unwrap();
    assert!(encrypt(&kms, &id, "c").await.is_err());
    let (status, text) = get_metrics(&server.addr);
    assert_eq!(status, 200);
    for line in [
        "ferrokms_requests_total{operation=\"Encrypt\",outcome=\"ok\"} 2".to_owned(),
        "ferrokms_requests_total{operation=\"Encrypt\",outcome=\"DisabledException\"} 1".to_owned(),
        "ferrokms_request_duration_seconds_count{operation=\"Encrypt\"} 3".to_owned(),
        "ferrokms_keys{state=\"Disabled\"} 1".to_owned(),
        format!("ferrokms_key_requests_total{{key=\"{arn}\",operation=\"Encrypt\"}} 3"),
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line} in\n{text}");
    }
    let plain = Server::start();
    let (status, _) = get_metrics(&plain.addr);
    assert_eq!(status, 400, "no metrics unless --metrics is given");
}

#[tokio::test]
async fn auditing_can_be_turned_off_only_in_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--no-audit",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused outside --dev"));

    let server = Server::start_in(dir.path(), &["--dev", "--no-audit"]);
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    encrypt(&kms, &id, "unrecorded").await.unwrap();
    server.stop();
    assert!(export(dir.path()).is_empty(), "nothing was recorded");
}
