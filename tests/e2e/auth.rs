//! SigV4 verification, dev mode and STS GetCallerIdentity.

use std::time::{Duration, SystemTime};

use crate::harness::{code, message, raw_post, Server, REGION};
use crate::new_key;

#[tokio::test]
async fn wrong_secret_and_unknown_access_key_are_refused() {
    let server = Server::start();
    let bad_secret = server.client_with(REGION, &server.access_key_id, "not-the-secret");
    let err = bad_secret.list_keys().send().await.unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
    assert_eq!(
        message(&err),
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
    );
    let stranger = server.client_with(REGION, "AKIAIOSFODNN7EXAMPLE", "whatever");
    let err = stranger.list_keys().send().await.unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");
    assert_eq!(
        message(&err),
        "The security token included in the request is invalid."
    );
    let err = stranger.create_key().send().await.unwrap_err();
    assert_eq!(code(&err), "UnrecognizedClientException");
    assert!(server
        .client()
        .list_keys()
        .send()
        .await
        .unwrap()
        .keys()
        .is_empty());
}

#[test]
fn missing_incomplete_and_tampered_signatures() {
    let server = Server::start();
    let headers = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
        let mut h = vec![
            ("host".to_owned(), server.addr.clone()),
            (
                "x-amz-target".to_owned(),
                "TrentService.ListKeys".to_owned(),
            ),
            (
                "content-type".to_owned(),
                "application/x-amz-json-1.1".to_owned(),
            ),
        ];
        h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        h
    };
    let r = raw_post(&server.addr, &headers(&[]), b"{}");
    assert_eq!(
        (r.status, r.error_type().as_str()),
        (400, "MissingAuthenticationTokenException")
    );
    assert_eq!(r.message().as_deref(), Some("Missing Authentication Token"));

    let auth = format!(
        "AWS4-HMAC-SHA256 Credential={}/20240101/us-east-1/kms/aws4_request",
        server.access_key_id
    );
    let r = raw_post(&server.addr, &headers(&[("authorization", &auth)]), b"{}");
    assert_eq!(r.error_type(), "IncompleteSignatureException");
    assert!(r
        .message()
        .unwrap()
        .starts_with("Authorization header requires 'Signature' parameter."));

    // Sign one body, send another.
    let headers = server.signed_headers(
        &server.access_key_id,
        &server.secret_access_key,
        "kms",
        Some("TrentService.CreateKey"),
        br#"{"Description": "signed"}"#,
        SystemTime::now(),
    );
    let r = raw_post(&server.addr, &headers, br#"{"Description": "changed"}"#);
    assert_eq!(r.error_type(), "InvalidSignatureException");
    let r = raw_post(&server.addr, &headers, br#"{"Description": "signed"}"#);
    assert_eq!(
        r.status, 200,
        "the untampered request is accepted: {}",
        r.body
    );
}

#[test]
fn clock_skew_beyond_fifteen_minutes_is_refused() {
    let server = Server::start();
    let now = SystemTime::now();
    let ok = server.signed(
        "kms",
        Some("TrentService.ListKeys"),
        b"{}",
        now - Duration::from_secs(10 * 60),
    );
    assert_eq!(ok.status, 200);
    let old = server.signed(
        "kms",
        Some("TrentService.ListKeys"),
        b"{}",
        now - Duration::from_secs(20 * 60),
    );
    assert_eq!(old.error_type(), "InvalidSignatureException");
    let m = old.message().unwrap();
    assert!(
        m.starts_with("Signature expired: ") && m.ends_with(" - 15 min.)"),
        "{m}"
    );
    let future = server.signed(
        "kms",
        Some("TrentService.ListKeys"),
        b"{}",
        now + Duration::from_secs(20 * 60),
    );
    assert_eq!(future.error_type(), "InvalidSignatureException");
    assert!(future
        .message()
        .unwrap()
        .starts_with("Signature not yet current: "));
}

#[test]
fn sts_get_caller_identity_names_the_admin() {
    let server = Server::start();
    let r = server.signed(
        "sts",
        None,
        b"Action=GetCallerIdentity&Version=2011-06-15",
        SystemTime::now(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.body.contains(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
    ));
    assert!(r.body.contains("<Account>111122223333</Account>"));
    assert!(r
        .body
        .contains("<Arn>arn:aws:iam::111122223333:user/admin</Arn>"));
    let bad = server.signed_with(
        &server.access_key_id,
        "wrong",
        "sts",
        None,
        b"Action=GetCallerIdentity&Version=2011-06-15",
        SystemTime::now(),
    );
    assert_eq!(bad.status, 403);
    assert!(
        bad.body.contains("<Code>InvalidSignature</Code>"),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn dev_mode_accepts_any_credentials_and_maps_accounts() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &["--dev", "--ephemeral"]);
    let anyone = server.client_with(REGION, "test", "test");
    let (_, arn) = new_key(&anyone).await;
    assert!(
        arn.starts_with("arn:aws:kms:us-east-1:000000000000:key/"),
        "{arn}"
    );
    let numbered = server.client_with(REGION, "123456789012", "anything");
    let (id, arn) = new_key(&numbered).await;
    assert!(
        arn.starts_with("arn:aws:kms:us-east-1:123456789012:key/"),
        "{arn}"
    );
    let err = anyone.describe_key().key_id(&id).send().await.unwrap_err();
    assert_eq!(
        code(&err),
        "NotFoundException",
        "accounts do not see each other's keys"
    );
    let r = server.signed_with(
        "123456789012",
        "x",
        "sts",
        None,
        b"Action=GetCallerIdentity&Version=2011-06-15",
        SystemTime::now(),
    );
    assert!(
        r.body.contains("<Account>123456789012</Account>"),
        "{}",
        r.body
    );

    let temp = tempfile::tempdir().unwrap();
    let other = Server::start_in(
        temp.path(),
        &["--dev", "--ephemeral", "--dev-account-id", "444455556666"],
    );
    let (_, arn) = new_key(&other.client_with(REGION, "x", "y")).await;
    assert!(
        arn.starts_with("arn:aws:kms:us-east-1:444455556666:key/"),
        "{arn}"
    );
}

#[test]
fn dev_mode_refuses_to_listen_beyond_loopback() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(["serve", "--dev", "--ephemeral", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("loopback"));
}
