//! Roles: STS AssumeRole issues temporary credentials that act with the role's policies.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use aws_sdk_kms::types::GrantOperation;
use serde_json::json;

use crate::harness::{code, message, Server, REGION};
use crate::identities::{start_with_config, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET};
use crate::{encrypt, new_key};

const APP_ROLE: &str = "arn:aws:iam::111122223333:role/app";

fn tag<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let end = xml[start..].find(&format!("</{name}>"))? + start;
    Some(&xml[start..end])
}

struct Session {
    access_key_id: String,
    secret: String,
    token: String,
    arn: String,
}

fn assume(
    server: &Server,
    ak: &str,
    sk: &str,
    role: &str,
    extra: &str,
) -> Result<Session, (u16, String)> {
    let body =
        format!("Action=AssumeRole&Version=2011-06-15&RoleArn={role}&RoleSessionName=s1{extra}");
    let r = server.signed_with(ak, sk, "sts", None, body.as_bytes(), SystemTime::now());
    if r.status != 200 {
        return Err((r.status, r.body));
    }
    let get = |n: &str| {
        tag(&r.body, n)
            .unwrap_or_else(|| panic!("{n} in {}", r.body))
            .to_owned()
    };
    Ok(Session {
        access_key_id: get("AccessKeyId"),
        secret: get("SecretAccessKey"),
        token: get("SessionToken"),
        arn: get("Arn"),
    })
}

fn session_client(server: &Server, s: &Session, token: Option<&str>) -> aws_sdk_kms::Client {
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(REGION))
        .credentials_provider(Credentials::new(
            &s.access_key_id,
            &s.secret,
            token.map(str::to_owned),
            None,
            "test",
        ))
        .endpoint_url(&server.endpoint)
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_kms::Client::from_conf(config)
}

#[tokio::test]
async fn an_assumed_role_acts_with_the_roles_policies() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_config(&temp, &[]);
    let admin = server.client();

    let (status, body) = assume(&server, BOB_KEY, BOB_SECRET, APP_ROLE, "")
        .err()
        .unwrap();
    assert_eq!(status, 403);
    assert!(body.contains("<Code>AccessDenied</Code>"), "{body}");
    assert!(body.contains("User: arn:aws:iam::111122223333:user/bob is not authorized to perform: sts:AssumeRole on resource: arn:aws:iam::111122223333:role/app"), "{body}");
    let (status, body) = assume(
        &server,
        ALICE_KEY,
        ALICE_SECRET,
        APP_ROLE,
        "&DurationSeconds=100",
    )
    .err()
    .unwrap();
    assert_eq!(status, 400, "{body}");

    let session = assume(
        &server,
        ALICE_KEY,
        ALICE_SECRET,
        APP_ROLE,
        "&DurationSeconds=900",
    )
    .unwrap();
    assert_eq!(session.arn, "arn:aws:sts::111122223333:assumed-role/app/s1");
    assert!(session.access_key_id.starts_with("ASIA"));
    let app = session_client(&server, &session, Some(&session.token));

    let (id, arn) = new_key(&admin).await;
    let ct = encrypt(&app, &id, "as the role").await.unwrap();
    assert_eq!(ct.key_id(), Some(arn.as_str()));
    let err = app
        .schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        format!("User: {} is not authorized to perform: kms:ScheduleKeyDeletion on resource: {arn} because no identity-based policy allows the kms:ScheduleKeyDeletion action", session.arn)
    );

    // Without its session token, or with another, the temporary key is refused.
    let no_token = session_client(&server, &session, None);
    assert_eq!(
        code(&no_token.list_keys().send().await.unwrap_err()),
        "UnrecognizedClientException"
    );
    let wrong = session_client(&server, &session, Some("forged"));
    assert_eq!(
        code(&wrong.list_keys().send().await.unwrap_err()),
        "UnrecognizedClientException"
    );

    // Key policies and grants that name the role apply to its sessions.
    let only_role = json!({"Version": "2012-10-17", "Statement": [
        crate::root_allows_all("111122223333"),
        {"Effect": "Deny", "Principal": {"AWS": APP_ROLE}, "Action": "kms:Encrypt", "Resource": "*"}
    ]});
    admin
        .put_key_policy()
        .key_id(&id)
        .policy(only_role.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(&encrypt(&app, &id, "x").await.unwrap_err()),
        "AccessDeniedException"
    );
    let (other, _) = new_key(&admin).await;
    let narrow = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/admin"}, "Action": "kms:*", "Resource": "*"}
    ]});
    admin
        .put_key_policy()
        .key_id(&other)
        .policy(narrow.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(&encrypt(&app, &other, "x").await.unwrap_err()),
        "AccessDeniedException"
    );
    admin
        .create_grant()
        .key_id(&other)
        .grantee_principal(APP_ROLE)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    encrypt(&app, &other, "granted to the role").await.unwrap();
}

#[tokio::test]
async fn a_trust_policy_naming_a_user_needs_no_iam_permission() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_config(&temp, &[]);
    let role = "arn:aws:iam::111122223333:role/bobs-role";
    let session = assume(&server, BOB_KEY, BOB_SECRET, role, "").unwrap();
    assert_eq!(
        session.arn,
        "arn:aws:sts::111122223333:assumed-role/bobs-role/s1"
    );
    let (status, _) = assume(&server, ALICE_KEY, ALICE_SECRET, role, "")
        .err()
        .unwrap();
    assert_eq!(status, 403, "alice is not trusted by bobs-role");
    let (status, _) = assume(
        &server,
        BOB_KEY,
        BOB_SECRET,
        "arn:aws:iam::111122223333:role/none",
        "",
    )
    .err()
    .unwrap();
    assert_eq!(status, 403);
}
