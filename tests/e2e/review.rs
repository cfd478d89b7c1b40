//! The findings of the outside security review (issue 16), each proven through the real
//! server with the real AWS SDK (or raw signed requests where a client would not send what
//! the attack needs). Every test here failed on the code the review looked at.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, SystemTime};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantOperation, KeySpec, KeyUsageType, Tag};
use aws_sdk_kms::Client;
use serde_json::json;

use crate::harness::{code, message, Server, REGION};
use crate::{encrypt, new_key, policy, root_allows_all};

const ACCT: &str = "111122223333";
const OTHER: &str = "444455556666";
const ADMIN: &str = "arn:aws:iam::111122223333:user/admin";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const FRANK: &str = "arn:aws:iam::111122223333:user/frank";
const EVE: &str = "arn:aws:iam::444455556666:user/eve";

/// Users of the review: access key id and secret.
struct User(&'static str, &'static str);

/// kms:* and sts:AssumeRole.
const ALICE_USER: User = User(
    "AKIAREVIEWALICE00001",
    "review-alice-secret-review-alice-secret1",
);
/// No IAM policy: only key policies naming him, and grants, let him in.
const FRANK_USER: User = User(
    "AKIAREVIEWFRANK00001",
    "review-frank-secret-review-frank-secret1",
);
/// kms:ReplicateKey and kms:DescribeKey, and CreateAlias on alias/carol-* only.
const CAROL_USER: User = User(
    "AKIAREVIEWCAROL00001",
    "review-carol-secret-review-carol-secret1",
);
/// kms:*, with a Deny outside us-east-1.
const DAVE_USER: User = User(
    "AKIAREVIEWDAVE000001",
    "review-dave-secret-review-dave-secret-01",
);
/// kms:ReplicateKey, kms:CreateKey, kms:DescribeKey: no kms:TagResource.
const HEIDI_USER: User = User(
    "AKIAREVIEWHEIDI00001",
    "review-heidi-secret-review-heidi-secret1",
);
/// kms:Encrypt only on keys whose aliases include alias/z-54.
const IVAN_USER: User = User(
    "AKIAREVIEWIVAN000001",
    "review-ivan-secret-review-ivan-secret-01",
);
/// Another account's user, with kms:* in its own account's IAM.
const EVE_USER: User = User(
    "AKIAREVIEWEVE0000001",
    "review-eve-secret-review-eve-secret-0001",
);
/// Another account's user without any IAM policy.
const MALLORY_USER: User = User(
    "AKIAREVIEWMALLORY001",
    "review-mallory-secret-review-mallory-s01",
);
/// kms:* but never kms:RetireGrant, and kms:ListRetirableGrants except for alice.
const JUDY_USER: User = User(
    "AKIAREVIEWJUDY000001",
    "review-judy-secret-review-judy-secret-01",
);
const JUDY: &str = "arn:aws:iam::111122223333:user/judy";

fn config(dir: &std::path::Path, extra: &str) -> std::path::PathBuf {
    let user = |name: &str, account: &str, key: &User, policy: Option<serde_json::Value>| {
        let mut out = format!(
            "[[users]]\nname = \"{name}\"\naccount = \"{account}\"\naccess_keys = [{{ id = \"{}\", secret = \"{}\" }}]\n",
            key.0, key.1
        );
        if let Some(p) = policy {
            out.push_str(&format!(
                "[users.policies]\np = '{}'\n",
                json!({"Version": "2012-10-17", "Statement": p})
            ));
        }
        out
    };
    // Top-level keys and tables of `extra` come first, before the arrays of tables.
    let text = [
        extra.to_owned(),
        user(
            "alice",
            ACCT,
            &ALICE_USER,
            Some(json!([{"Effect": "Allow", "Action": ["kms:*", "sts:AssumeRole"], "Resource": "*"}])),
        ),
        user("frank", ACCT, &FRANK_USER, None),
        user(
            "carol",
            ACCT,
            &CAROL_USER,
            Some(json!([
                {"Effect": "Allow", "Action": ["kms:ReplicateKey", "kms:DescribeKey"], "Resource": "*"},
                {"Effect": "Allow", "Action": "kms:CreateAlias", "Resource": [
                    "arn:aws:kms:us-east-1:111122223333:alias/carol-*",
                    "arn:aws:kms:us-east-1:111122223333:key/*"]}
            ])),
        ),
        user(
            "dave",
            ACCT,
            &DAVE_USER,
            Some(json!([
                {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:*", "Resource": "*",
                 "Condition": {"StringNotEquals": {"aws:RequestedRegion": "us-east-1"}}}
            ])),
        ),
        user(
            "heidi",
            ACCT,
            &HEIDI_USER,
            Some(json!([{"Effect": "Allow", "Action": ["kms:ReplicateKey", "kms:CreateKey", "kms:DescribeKey"], "Resource": "*"}])),
        ),
        user(
            "ivan",
            ACCT,
            &IVAN_USER,
            Some(json!([{"Effect": "Allow", "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/z-54"}}}])),
        ),
        user(
            "eve",
            OTHER,
            &EVE_USER,
            Some(json!([{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}])),
        ),
        user("mallory", OTHER, &MALLORY_USER, None),
        user(
            "judy",
            ACCT,
            &JUDY_USER,
            Some(json!([
                {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:RetireGrant", "Resource": "*"},
                {"Effect": "Deny", "Action": "kms:ListRetirableGrants", "Resource": ALICE}
            ])),
        ),
        format!(
            "[[roles]]\nname = \"short\"\n[roles.policies]\nkms = '{}'\n[[roles]]\nname = \"long\"\nmax_session_duration = 7200\n",
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]})
        ),
    ]
    .join("\n");
    let path = dir.join("review.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start(temp: &tempfile::TempDir, extra_config: &str, extra_args: &[&str]) -> Server {
    let conf = config(temp.path(), extra_config);
    let data = temp.path().join("data");
    let mut args = vec![
        "serve",
        "--listen",
        "127.0.0.1:0",
        "--data-dir",
        data.to_str().unwrap(),
        "--config",
        conf.to_str().unwrap(),
    ];
    args.extend(extra_args);
    Server::start_with_args(&args, &data)
}

fn as_user(server: &Server, user: &User) -> Client {
    server.client_with(REGION, user.0, user.1)
}

async fn key_with_policy(admin: &Client, statements: serde_json::Value) -> (String, String) {
    let out = admin
        .create_key()
        .policy(policy(statements))
        .send()
        .await
        .expect("create key");
    let meta = out.key_metadata().unwrap();
    (meta.key_id().to_owned(), meta.arn().unwrap().to_owned())
}

/// Encrypt with an encryption context.
async fn encrypt_in(
    client: &Client,
    key: &str,
    plaintext: &str,
    context: &[(&str, &str)],
) -> Result<
    aws_sdk_kms::operation::encrypt::EncryptOutput,
    aws_sdk_kms::error::SdkError<aws_sdk_kms::operation::encrypt::EncryptError>,
> {
    let mut request = client
        .encrypt()
        .key_id(key)
        .plaintext(Blob::new(plaintext.to_owned()));
    for (k, v) in context {
        request = request.encryption_context(*k, *v);
    }
    request.send().await
}

/// A grant the admin makes.
async fn grant(
    admin: &Client,
    key: &str,
    grantee: &str,
    operations: &[GrantOperation],
    constraints: Option<GrantConstraints>,
) -> aws_sdk_kms::operation::create_grant::CreateGrantOutput {
    admin
        .create_grant()
        .key_id(key)
        .grantee_principal(grantee)
        .set_operations(Some(operations.to_vec()))
        .set_constraints(constraints)
        .send()
        .await
        .expect("create grant")
}

fn admin_all() -> serde_json::Value {
    json!({"Effect": "Allow", "Principal": {"AWS": ADMIN}, "Action": "kms:*", "Resource": "*"})
}

/// Finding 1: a negated operator holds when its key is absent, so "Deny unless encryption
/// context X" denies a request without one.
#[tokio::test]
async fn deny_unless_encryption_context_denies_a_request_without_one() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let alice = as_user(&server, &ALICE_USER);
    let (id, arn) = key_with_policy(
        &server.client(),
        json!([root_allows_all(ACCT), {
            "Effect": "Deny", "Principal": "*", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
            "Condition": {"StringNotEquals": {"kms:EncryptionContext:purpose": "backup"}}}]),
    )
    .await;
    let err = encrypt(&alice, &id, "no context").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert_eq!(
        message(&err),
        format!("User: {ALICE} is not authorized to perform: kms:Encrypt on resource: {arn} with an explicit deny in a resource-based policy")
    );
    encrypt_in(&alice, &id, "with context", &[("purpose", "backup")])
        .await
        .expect("the context the policy asks for");
    let err = encrypt_in(&alice, &id, "other context", &[("purpose", "other")])
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
}

/// Finding 1: GenerateDataKeyPair(WithoutPlaintext) is authorized with its encryption
/// context, for key policy conditions and for grant constraints alike.
#[tokio::test]
async fn data_key_pairs_are_authorized_with_their_encryption_context() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let frank = as_user(&server, &FRANK_USER);
    let (id, _) = key_with_policy(
        &admin,
        json!([root_allows_all(ACCT), {
            "Effect": "Allow", "Principal": {"AWS": FRANK}, "Action": "kms:GenerateDataKeyPair*", "Resource": "*",
            "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "pairs"}}}]),
    )
    .await;
    frank
        .generate_data_key_pair_without_plaintext()
        .key_id(&id)
        .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::EccNistP256)
        .encryption_context("purpose", "pairs")
        .send()
        .await
        .expect("the key policy's context condition sees the request's context");
    let err = frank
        .generate_data_key_pair()
        .key_id(&id)
        .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");

    let (granted, _) = new_key(&admin).await;
    grant(
        &admin,
        &granted,
        FRANK,
        &[GrantOperation::GenerateDataKeyPair],
        Some(
            GrantConstraints::builder()
                .encryption_context_subset("purpose", "grant")
                .build(),
        ),
    )
    .await;
    frank
        .generate_data_key_pair()
        .key_id(&granted)
        .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::EccNistP256)
        .encryption_context("purpose", "grant")
        .send()
        .await
        .expect("the grant's constraint sees the request's context");
    let err = frank
        .generate_data_key_pair()
        .key_id(&granted)
        .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::EccNistP256)
        .encryption_context("purpose", "other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
}

/// Finding 1: aws:RequestedRegion is set (a region lock works), aws:SourceVpce is absent
/// (a Deny unless through an endpoint denies), and the principal's own keys are there.
#[tokio::test]
async fn global_condition_keys_are_set_as_aws_sets_them() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let dave = as_user(&server, &DAVE_USER);
    let (id, _) = new_key(&dave).await;
    encrypt(&dave, &id, "home region").await.unwrap();
    let away = server.client_with("eu-west-1", DAVE_USER.0, DAVE_USER.1);
    let err = away.create_key().send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert_eq!(
        message(&err),
        "User: arn:aws:iam::111122223333:user/dave is not authorized to perform: kms:CreateKey on resource: * with an explicit deny in an identity-based policy"
    );

    let admin = server.client();
    let alice = as_user(&server, &ALICE_USER);
    let (vpce_only, _) = key_with_policy(
        &admin,
        json!([root_allows_all(ACCT), {
            "Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "kms:*", "Resource": "*",
            "Condition": {"StringNotEquals": {"aws:SourceVpce": "vpce-1a2b3c4d"}}}]),
    )
    .await;
    let err = encrypt(&alice, &vpce_only, "not through the endpoint")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    encrypt(&admin, &vpce_only, "admin is not denied")
        .await
        .unwrap();

    let frank = as_user(&server, &FRANK_USER);
    let (who, _) = key_with_policy(
        &admin,
        json!([root_allows_all(ACCT), {
            "Effect": "Allow", "Principal": {"AWS": FRANK}, "Action": "kms:Encrypt", "Resource": "*",
            "Condition": {
                "StringEquals": {"aws:PrincipalType": "User", "aws:username": "frank",
                                 "aws:PrincipalArn": FRANK, "aws:RequestedRegion": "us-east-1"},
                "StringLike": {"aws:userid": "AIDA*"},
                "Bool": {"aws:SecureTransport": "false", "aws:ViaAWSService": "false"},
                "NumericGreaterThan": {"aws:EpochTime": "1700000000"},
                "DateGreaterThan": {"aws:CurrentTime": "2024-01-01T00:00:00Z"},
                "Null": {"aws:SourceArn": "true", "kms:ViaService": "true"}}}]),
    )
    .await;
    encrypt(&frank, &who, "every key as AWS sets it")
        .await
        .expect("the request context holds the principal's keys");
}

/// Finding 2: a grantee's CreateGrant lets it create only grants of its own operations or
/// fewer, with constraints at least as strict.
#[tokio::test]
async fn a_grantee_cannot_widen_its_own_grant() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let frank = as_user(&server, &FRANK_USER);
    let (id, _) = new_key(&admin).await;
    grant(
        &admin,
        &id,
        FRANK,
        &[GrantOperation::Encrypt, GrantOperation::CreateGrant],
        None,
    )
    .await;
    for widened in [
        vec![GrantOperation::Decrypt],
        vec![GrantOperation::Encrypt, GrantOperation::Decrypt],
    ] {
        let err = frank
            .create_grant()
            .key_id(&id)
            .grantee_principal(FRANK)
            .set_operations(Some(widened.clone()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "AccessDeniedException", "{widened:?}");
    }
    let blob = encrypt(&admin, &id, "secret")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let err = crate::decrypt(&frank, blob).await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    // Within its own operations it may delegate, to another grantee too.
    frank
        .create_grant()
        .key_id(&id)
        .grantee_principal(ALICE)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .expect("a narrower grant");

    let (constrained, _) = new_key(&admin).await;
    grant(
        &admin,
        &constrained,
        FRANK,
        &[GrantOperation::Encrypt, GrantOperation::CreateGrant],
        Some(
            GrantConstraints::builder()
                .encryption_context_subset("team", "a")
                .build(),
        ),
    )
    .await;
    let err = frank
        .create_grant()
        .key_id(&constrained)
        .grantee_principal(FRANK)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "the constraint dropped"
    );
    frank
        .create_grant()
        .key_id(&constrained)
        .grantee_principal(FRANK)
        .operations(GrantOperation::Encrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("team", "a")
                .encryption_context_subset("project", "x")
                .build(),
        )
        .send()
        .await
        .expect("a stricter constraint");
}

/// Finding 3: UpdateAlias needs kms:UpdateAlias on the alias, on its current key and on the
/// new one; the new key must be of the same type and usage. CreateAlias needs its alias.
#[tokio::test]
async fn an_alias_cannot_be_pointed_away_from_another_teams_key() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let alice = as_user(&server, &ALICE_USER);
    // The payments team's key names its own principals; nobody else's IAM policy counts.
    let (payments, _) = key_with_policy(&admin, json!([admin_all()])).await;
    admin
        .create_alias()
        .alias_name("alias/payments")
        .target_key_id(&payments)
        .send()
        .await
        .unwrap();
    let (mine, _) = new_key(&alice).await;
    let err = alice
        .update_alias()
        .alias_name("alias/payments")
        .target_key_id(&mine)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let listed = admin.list_aliases().key_id(&payments).send().await.unwrap();
    assert_eq!(
        listed.aliases()[0].alias_name(),
        Some("alias/payments"),
        "the alias still points at the payments key"
    );
    let ct = encrypt(&admin, "alias/payments", "still theirs")
        .await
        .unwrap();
    assert!(ct.key_id().unwrap().ends_with(&payments));

    let rsa = admin
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap();
    let err = admin
        .update_alias()
        .alias_name("alias/payments")
        .target_key_id(rsa.key_metadata().unwrap().key_id())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException", "{}", message(&err));
    let (another, _) = new_key(&admin).await;
    admin
        .update_alias()
        .alias_name("alias/payments")
        .target_key_id(&another)
        .send()
        .await
        .expect("same type and usage");

    // CreateAlias: kms:CreateAlias on the alias (IAM policy) as well as on the key.
    let carol = as_user(&server, &CAROL_USER);
    let (shared, _) = new_key(&admin).await;
    carol
        .create_alias()
        .alias_name("alias/carol-1")
        .target_key_id(&shared)
        .send()
        .await
        .expect("an alias her policy names");
    let err = carol
        .create_alias()
        .alias_name("alias/payments-2")
        .target_key_id(&shared)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert_eq!(
        message(&err),
        "User: arn:aws:iam::111122223333:user/carol is not authorized to perform: kms:CreateAlias on resource: arn:aws:kms:us-east-1:111122223333:alias/payments-2 because no identity-based policy allows the kms:CreateAlias action"
    );
}

/// Finding 4: ListRetirableGrants names a principal of the caller's own account only.
#[tokio::test]
async fn retirable_grants_are_listed_only_within_the_callers_account() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let (id, _) = new_key(&admin).await;
    admin
        .create_grant()
        .key_id(&id)
        .grantee_principal(FRANK)
        .retiring_principal(ALICE)
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_equals("tenant", "secret-tenant")
                .build(),
        )
        .send()
        .await
        .unwrap();
    let alice = as_user(&server, &ALICE_USER);
    let own = alice
        .list_retirable_grants()
        .retiring_principal(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(own.grants().len(), 1);
    let eve = as_user(&server, &EVE_USER);
    let err = eve
        .list_retirable_grants()
        .retiring_principal(ALICE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert!(!message(&err).contains("secret-tenant"));
}

/// Finding 5: ReplicateKey needs kms:CreateKey (and kms:TagResource for tags) in the
/// replica Region; UpdatePrimaryRegion needs the replica's permission too and runs on the
/// primary only.
#[tokio::test]
async fn multi_region_operations_need_both_regions_permissions() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let primary = admin.create_key().multi_region(true).send().await.unwrap();
    let id = primary.key_metadata().unwrap().key_id().to_owned();

    let carol = as_user(&server, &CAROL_USER);
    let err = carol
        .replicate_key()
        .key_id(&id)
        .replica_region("eu-west-1")
        .policy(policy(json!([{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:user/carol"}, "Action": "kms:*", "Resource": "*"}])))
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert!(message(&err).contains("kms:CreateKey"), "{}", message(&err));
    let heidi = as_user(&server, &HEIDI_USER);
    let err = heidi
        .replicate_key()
        .key_id(&id)
        .replica_region("eu-west-1")
        .tags(Tag::builder().tag_key("t").tag_value("v").build().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert!(
        message(&err).contains("kms:TagResource"),
        "{}",
        message(&err)
    );
    // A region lock reaches the replica Region's permission.
    let dave = as_user(&server, &DAVE_USER);
    let err = dave
        .replicate_key()
        .key_id(&id)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let eu = server.client_in("eu-west-1");
    assert!(eu.describe_key().key_id(&id).send().await.is_err());

    // The replica's own policy refuses to become primary.
    admin
        .replicate_key()
        .key_id(&id)
        .replica_region("eu-west-1")
        .policy(policy(json!([root_allows_all(ACCT), {
            "Effect": "Deny", "Principal": "*", "Action": "kms:UpdatePrimaryRegion", "Resource": "*"}])))
        .send()
        .await
        .unwrap();
    let err = admin
        .update_primary_region()
        .key_id(&id)
        .primary_region("eu-west-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let replica = eu.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        replica
            .key_metadata()
            .unwrap()
            .multi_region_configuration()
            .unwrap()
            .multi_region_key_type()
            .map(|t| t.as_str()),
        Some("REPLICA")
    );
    // Called on a replica, in its Region, it is refused: only a primary hands over.
    admin
        .replicate_key()
        .key_id(&id)
        .replica_region("ap-southeast-2")
        .send()
        .await
        .unwrap();
    let err = server
        .client_in("ap-southeast-2")
        .update_primary_region()
        .key_id(&id)
        .primary_region("ap-southeast-2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "UnsupportedOperationException",
        "{}",
        message(&err)
    );
}

/// Finding 6: the signature must cover X-Amz-Target; a request signed without it cannot be
/// replayed as another operation.
#[tokio::test]
async fn an_unsigned_target_cannot_be_replayed_as_another_operation() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let (id, _) = new_key(&server.client()).await;
    let body = json!({"KeyId": id}).to_string();
    let mut headers = server.signed_headers(
        &server.access_key_id,
        &server.secret_access_key,
        "kms",
        None,
        body.as_bytes(),
        SystemTime::now(),
    );
    headers.push((
        "x-amz-target".into(),
        "TrentService.ScheduleKeyDeletion".into(),
    ));
    let r = crate::harness::raw_post(&server.addr, &headers, body.as_bytes());
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_type(), "IncompleteSignatureException");
    assert!(r.message().unwrap().contains("x-amz-target"), "{}", r.body);
    let state = server
        .client()
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state
            .key_metadata()
            .unwrap()
            .key_state()
            .map(|s| s.as_str()),
        Some("Enabled")
    );
}

/// Finding 7: a grant's SourceArn constraint is kept and enforced: a direct call, made on
/// behalf of no resource, is not allowed by it.
#[tokio::test]
async fn a_grant_keeps_and_enforces_its_source_arn() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let frank = as_user(&server, &FRANK_USER);
    let (id, _) = new_key(&admin).await;
    let source = "arn:aws:dynamodb:us-east-1:111122223333:table/Orders";
    admin
        .create_grant()
        .key_id(&id)
        .grantee_principal(FRANK)
        .operations(GrantOperation::Encrypt)
        .constraints(GrantConstraints::builder().source_arn(source).build())
        .send()
        .await
        .unwrap();
    let listed = admin.list_grants().key_id(&id).send().await.unwrap();
    assert_eq!(
        listed.grants()[0]
            .constraints()
            .and_then(|c| c.source_arn()),
        Some(source)
    );
    let err = encrypt(&frank, &id, "direct").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let err = admin
        .create_grant()
        .key_id(&id)
        .grantee_principal(FRANK)
        .operations(GrantOperation::Encrypt)
        .constraints(
            GrantConstraints::builder()
                .source_arn("not-an-arn-at-all-here")
                .build(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
}

/// Finding 8: a Region AWS does not have is refused as AWS refuses it; the list is the
/// config's when it has one.
#[tokio::test]
async fn invented_regions_are_refused() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let err = server
        .client_in("us-fake-1")
        .list_keys()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
    assert_eq!(
        message(&err),
        "Credential should be scoped to a valid region. "
    );
    server
        .client_in("ap-southeast-7")
        .list_keys()
        .send()
        .await
        .unwrap();

    let own = tempfile::tempdir().unwrap();
    let server = start(&own, "regions = [\"us-east-1\", \"xx-lab-1\"]", &[]);
    server
        .client_in("xx-lab-1")
        .list_keys()
        .send()
        .await
        .unwrap();
    let err = server
        .client_in("eu-west-1")
        .list_keys()
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidSignatureException");
}

/// Finding 9: aws:SecureTransport comes from the connection, so "Deny unless TLS" lets
/// HTTPS in and keeps plain HTTP out.
#[tokio::test]
async fn secure_transport_comes_from_the_connection() {
    let deny_plain = json!([root_allows_all(ACCT), {
        "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*",
        "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]);

    let temp = tempfile::tempdir().unwrap();
    let (cert, key, _) = crate::tls::certificate(temp.path(), "review");
    let server = start(
        &temp,
        "",
        &[
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let https = crate::tls::sdk_trusting(&server, &std::fs::read(&cert).unwrap());
    let (id, _) = key_with_policy(&https, deny_plain.clone()).await;
    encrypt(&https, &id, "over TLS")
        .await
        .expect("TLS is secure transport");

    let plain_dir = tempfile::tempdir().unwrap();
    let plain = start(&plain_dir, "", &[]);
    let (id, _) = key_with_policy(&plain.client(), deny_plain).await;
    let err = encrypt(&plain.client(), &id, "in the clear")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
}

fn assume(server: &Server, user: &User, role: &str, duration: u32) -> (u16, String) {
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::111122223333:role/{role}&RoleSessionName=s1&DurationSeconds={duration}"
    );
    let r = server.signed_with(
        user.0,
        user.1,
        "sts",
        None,
        body.as_bytes(),
        SystemTime::now(),
    );
    (r.status, r.body)
}

/// Finding 10: AssumeRole gives at most the role's MaxSessionDuration (3600 by default).
#[tokio::test]
async fn assume_role_is_bounded_by_the_roles_max_session_duration() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let (status, body) = assume(&server, &ALICE_USER, "short", 7200);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains(
            "The requested DurationSeconds exceeds the MaxSessionDuration set for this role."
        ),
        "{body}"
    );
    assert_eq!(assume(&server, &ALICE_USER, "short", 3600).0, 200);
    assert_eq!(assume(&server, &ALICE_USER, "long", 7200).0, 200);
    let (status, body) = assume(&server, &ALICE_USER, "long", 7201);
    assert_eq!(status, 400, "{body}");
    let (status, body) = assume(&server, &ALICE_USER, "long", 43_201);
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("Member must have value less than or equal to 43200"),
        "{body}"
    );
}

/// One HTTP/1.1 POST whose header bytes are exactly `headers`.
fn raw_bytes_post(addr: &str, headers: &[(String, Vec<u8>)], body: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut req = b"POST / HTTP/1.1\r\n".to_vec();
    for (k, v) in headers {
        req.extend_from_slice(k.as_bytes());
        req.extend_from_slice(b": ");
        req.extend_from_slice(v);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(
        format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        )
        .as_bytes(),
    );
    req.extend_from_slice(body);
    stream.write_all(&req).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    (status, text)
}

/// Finding 11: a signature covers the bytes of its headers; bytes that are not UTF-8 are
/// not read as U+FFFD, so one signature does not verify for other bytes.
#[tokio::test]
async fn a_signature_covers_header_bytes_not_their_lossy_reading() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let body = b"{}";
    // Signed over "x-tag: a\u{FFFD}"; sent with the byte 0xFF, which a lossy reading of the
    // header turns into the same U+FFFD.
    let identity = aws_credential_types::Credentials::new(
        &server.access_key_id,
        &server.secret_access_key,
        None,
        None,
        "test",
    )
    .into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region(REGION)
        .name("kms")
        .time(SystemTime::now())
        .settings(aws_sigv4::http_request::SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let unsigned = [
        ("host".to_owned(), server.addr.clone()),
        (
            "content-type".to_owned(),
            "application/x-amz-json-1.1".to_owned(),
        ),
        (
            "x-amz-target".to_owned(),
            "TrentService.ListKeys".to_owned(),
        ),
        ("x-tag".to_owned(), "a\u{FFFD}".to_owned()),
    ];
    let signable = aws_sigv4::http_request::SignableRequest::new(
        "POST",
        format!("{}/", server.endpoint),
        unsigned.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        aws_sigv4::http_request::SignableBody::Bytes(body),
    )
    .unwrap();
    let (instructions, _) = aws_sigv4::http_request::sign(signable, &params)
        .unwrap()
        .into_parts();
    let mut signed_over: Vec<(String, Vec<u8>)> = unsigned
        .iter()
        .map(|(k, v)| (k.clone(), v.clone().into_bytes()))
        .chain(
            instructions
                .headers()
                .map(|(k, v)| (k.to_owned(), v.as_bytes().to_vec())),
        )
        .collect();
    let (status, _) = raw_bytes_post(&server.addr, &signed_over, body);
    assert_eq!(status, 200, "the request as signed");
    for (k, v) in signed_over.iter_mut() {
        if k == "x-tag" {
            *v = b"a\xff".to_vec();
        }
    }
    let (status, text) = raw_bytes_post(&server.addr, &signed_over, body);
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("InvalidSignatureException"), "{text}");
}

/// Finding 12: kms:ResourceAliases sees every alias of the key, up to the configured quota.
#[tokio::test]
async fn resource_aliases_see_every_alias_the_quota_allows() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "[quotas]\naliases_per_key = 60", &[]);
    let admin = server.client();
    let (id, _) = new_key(&admin).await;
    for i in 0..55 {
        admin
            .create_alias()
            .alias_name(format!("alias/z-{i:02}"))
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
    }
    let ivan = as_user(&server, &IVAN_USER);
    encrypt(&ivan, &id, "the 55th alias counts")
        .await
        .expect("kms:ResourceAliases holds alias/z-54");
    let (other, _) = new_key(&admin).await;
    assert!(encrypt(&ivan, &other, "no alias").await.is_err());
}

/// Finding 13: numeric conditions never match inf or NaN; grant constraint keys ignore
/// case while their values do not.
#[tokio::test]
async fn numbers_that_are_not_numbers_allow_nothing_and_constraint_keys_ignore_case() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let frank = as_user(&server, &FRANK_USER);
    for (operator, value, allowed) in [
        ("NumericLessThan", "inf", false),
        ("NumericNotEquals", "NaN", false),
        ("NumericLessThan", "999999999999", true),
    ] {
        let (id, _) = key_with_policy(
            &admin,
            json!([root_allows_all(ACCT), {
                "Effect": "Allow", "Principal": {"AWS": FRANK}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {operator: {"kms:CallerAccount": value}}}]),
        )
        .await;
        assert_eq!(
            encrypt(&frank, &id, "x").await.is_ok(),
            allowed,
            "{operator} {value}"
        );
    }

    let (id, _) = new_key(&admin).await;
    grant(
        &admin,
        &id,
        FRANK,
        &[GrantOperation::Encrypt],
        Some(
            GrantConstraints::builder()
                .encryption_context_subset("Purpose", "reports")
                .build(),
        ),
    )
    .await;
    encrypt_in(&frank, &id, "x", &[("purpose", "reports")])
        .await
        .expect("the constraint's key matches without case");
    let err = encrypt_in(&frank, &id, "x", &[("purpose", "Reports")])
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "values keep their case"
    );
}

/// The other account: a key policy that lets another account in allows the cross-account
/// operations only; another account's keys are neither confirmed nor denied to exist.
#[tokio::test]
async fn another_account_gets_only_the_cross_account_operations() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let (id, arn) = key_with_policy(
        &admin,
        json!([root_allows_all(ACCT), {
            "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:*", "Resource": "*"}]),
    )
    .await;
    let eve = as_user(&server, &EVE_USER);
    encrypt(&eve, &arn, "cross-account use")
        .await
        .expect("Encrypt is a cross-account operation");
    let err = eve.disable_key().key_id(&arn).send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert_eq!(
        message(&err),
        format!("User: {EVE} is not authorized to perform: kms:DisableKey on this resource because the resource does not exist in this Region, no resource-based policies allow access, or a resource-based policy explicitly denies access")
    );
    let err = eve
        .schedule_key_deletion()
        .key_id(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let meta = admin.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().key_state().map(|s| s.as_str()),
        Some("Enabled")
    );
    let missing = arn.replace(&id, "00000000-0000-4000-8000-000000000000");
    let err = eve
        .describe_key()
        .key_id(&missing)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException", "not NotFoundException");
}

/// `ferrokms policy explain` decides as the server does and says why: the statement that
/// applied, the condition that held or failed, the grant that allowed.
#[tokio::test]
async fn policy_explain_agrees_with_the_server_and_shows_why() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let (id, arn) = key_with_policy(
        &admin,
        json!([root_allows_all(ACCT), {
            "Sid": "DenyWithoutPurpose", "Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*",
            "Condition": {"StringNotEquals": {"kms:EncryptionContext:purpose": "backup"}}}]),
    )
    .await;
    let explain = |args: &[&str]| {
        let out = crate::harness::ferrokms_command(&server.data_dir)
            .args(["policy", "explain", "--data-dir"])
            .arg(&server.data_dir)
            .args(args)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };

    let (status, text) = explain(&["--caller", ALICE, "--action", "kms:Encrypt", "--key", &id]);
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains("decision: DENIED (with an explicit deny in a resource-based policy)"),
        "{text}"
    );
    assert!(
        text.contains("* statement 1 \"DenyWithoutPurpose\" (Deny): applies"),
        "{text}"
    );
    assert!(text.contains("(request has no value)"), "{text}");
    let alice = as_user(&server, &ALICE_USER);
    assert_eq!(
        code(&encrypt(&alice, &id, "x").await.unwrap_err()),
        "AccessDeniedException"
    );

    let (status, text) = explain(&[
        "--caller",
        ALICE,
        "--action",
        "kms:Encrypt",
        "--key",
        &arn,
        "--encryption-context",
        "purpose=backup",
    ]);
    assert_eq!(status, Some(0), "{text}");
    assert!(text.contains("decision: ALLOWED"), "{text}");
    assert!(
        text.contains("condition not met: StringNotEquals"),
        "{text}"
    );
    encrypt_in(&alice, &id, "x", &[("purpose", "backup")])
        .await
        .unwrap();

    // Frank has no policy; a grant lets him encrypt.
    let (granted, _) = new_key(&admin).await;
    let (status, _) = explain(&[
        "--caller",
        FRANK,
        "--action",
        "kms:Encrypt",
        "--key",
        &granted,
    ]);
    assert_eq!(status, Some(1));
    let franks = grant(&admin, &granted, FRANK, &[GrantOperation::Encrypt], None).await;
    let (status, text) = explain(&[
        "--caller",
        FRANK,
        "--action",
        "kms:Encrypt",
        "--key",
        &granted,
    ]);
    assert_eq!(status, Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "decision: ALLOWED by grant {}",
            franks.grant_id().unwrap()
        )),
        "{text}"
    );

    // Another account, an operation that is not cross-account.
    let (shared, shared_arn) = key_with_policy(
        &admin,
        json!([root_allows_all(ACCT), {
            "Effect": "Allow", "Principal": {"AWS": OTHER}, "Action": "kms:*", "Resource": "*"}]),
    )
    .await;
    let (status, text) = explain(&[
        "--caller",
        EVE,
        "--action",
        "kms:DisableKey",
        "--key",
        &shared_arn,
    ]);
    assert_eq!(status, Some(1), "{text}");
    assert!(text.contains("cross-account"), "{text}");
    let (status, _) = explain(&[
        "--caller",
        EVE,
        "--action",
        "kms:Encrypt",
        "--key",
        &shared_arn,
    ]);
    assert_eq!(status, Some(0));
    assert!(admin.describe_key().key_id(&shared).send().await.is_ok());

    // Actions on `*`: the caller's IAM policies alone.
    let (status, text) = explain(&["--caller", FRANK, "--action", "kms:CreateKey"]);
    assert_eq!(status, Some(1), "{text}");
    assert!(
        text.contains("because no identity-based policy allows the kms:CreateKey action"),
        "{text}"
    );
}

fn assume_session(
    server: &Server,
    user: &User,
    role: &str,
    extra: &str,
) -> Result<Client, (u16, String)> {
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::111122223333:role/{role}&RoleSessionName=s1{extra}"
    );
    let r = server.signed_with(
        user.0,
        user.1,
        "sts",
        None,
        body.as_bytes(),
        SystemTime::now(),
    );
    if r.status != 200 {
        return Err((r.status, r.body));
    }
    let tag = |name: &str| {
        let start = r.body.find(&format!("<{name}>")).unwrap() + name.len() + 2;
        let end = r.body[start..].find(&format!("</{name}>")).unwrap() + start;
        r.body[start..end].to_owned()
    };
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(REGION))
        .credentials_provider(aws_credential_types::Credentials::new(
            tag("AccessKeyId"),
            tag("SecretAccessKey"),
            Some(tag("SessionToken")),
            None,
            "test",
        ))
        .endpoint_url(&server.endpoint)
        .retry_config(aws_sdk_kms::config::retry::RetryConfig::disabled())
        .build();
    Ok(Client::from_conf(config))
}

/// Second round (an attacker's review of the change): AssumeRole refuses what it would not
/// apply (a session policy) and roots; aws:TokenIssueTime lets "revoke older sessions" work.
#[tokio::test]
async fn sessions_carry_their_issue_time_and_refuse_what_would_not_bind_them() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let scoped = format!(
        "&Policy={}",
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]})
            .to_string()
            .bytes()
            .map(|b| format!("%{b:02X}"))
            .collect::<String>()
    );
    let (status, body) = assume_session(&server, &ALICE_USER, "short", &scoped)
        .expect_err("a session policy is refused, never ignored");
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("ValidationError"), "{body}");
    let root = server.signed_with(
        "111122223333",
        "any",
        "sts",
        None,
        b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::111122223333:role/short&RoleSessionName=s1",
        SystemTime::now(),
    );
    // The admin's key is no root's; a root can only be tried in dev mode, below.
    assert_ne!(root.status, 200);

    let session = assume_session(&server, &ALICE_USER, "short", "").unwrap();
    let (id, _) = new_key(&server.client()).await;
    encrypt(&session, &id, "before the revocation")
        .await
        .unwrap();
    // AWS's "revoke older sessions": deny every session issued before now.
    std::thread::sleep(Duration::from_millis(1100));
    let cutoff = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let revoke = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Deny", "Action": "*", "Resource": "*",
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": cutoff}}}]});
    let out = crate::harness::ferrokms_command(&server.data_dir)
        .args(["admin", "--data-dir"])
        .arg(&server.data_dir)
        .args([
            "put-role-policy",
            "--role",
            "short",
            "--policy-name",
            "revoke",
            "--policy-document",
        ])
        .arg(revoke.to_string())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let err = encrypt(&session, &id, "after").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    std::thread::sleep(Duration::from_millis(1100));
    let fresh = assume_session(&server, &ALICE_USER, "short", "").unwrap();
    encrypt(&fresh, &id, "a new session").await.unwrap();

    let dev = tempfile::tempdir().unwrap();
    let dev = Server::start_in(dev.path(), &["--dev"]);
    let root = dev.signed_with(
        "111122223333",
        "any",
        "sts",
        None,
        b"Action=AssumeRole&Version=2011-06-15&RoleArn=arn:aws:iam::111122223333:role/any&RoleSessionName=s1",
        SystemTime::now(),
    );
    assert_eq!(root.status, 403, "{}", root.body);
    assert!(
        root.body
            .contains("Roles may not be assumed by root accounts."),
        "{}",
        root.body
    );
}

/// Second round: a grant lets its grantee retire only that grant; an IAM Deny of
/// kms:RetireGrant holds even for a grant's retiring principal; ListRetirableGrants is
/// authorized on the retiring principal it names.
#[tokio::test]
async fn retiring_is_limited_to_ones_own_grant_and_deny_still_wins() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let frank = as_user(&server, &FRANK_USER);
    let (id, _) = new_key(&admin).await;
    let franks = grant(
        &admin,
        &id,
        FRANK,
        &[GrantOperation::Decrypt, GrantOperation::RetireGrant],
        None,
    )
    .await;
    let alices = grant(&admin, &id, ALICE, &[GrantOperation::Decrypt], None).await;
    let err = frank
        .retire_grant()
        .key_id(&id)
        .grant_id(alices.grant_id().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    frank
        .retire_grant()
        .key_id(&id)
        .grant_id(franks.grant_id().unwrap())
        .send()
        .await
        .expect("its own grant");

    let judys = admin
        .create_grant()
        .key_id(&id)
        .grantee_principal(FRANK)
        .retiring_principal(JUDY)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let judy = as_user(&server, &JUDY_USER);
    let err = judy
        .retire_grant()
        .key_id(&id)
        .grant_id(judys.grant_id().unwrap())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException", "an explicit deny wins");
    assert!(admin
        .list_grants()
        .key_id(&id)
        .send()
        .await
        .unwrap()
        .grants()
        .iter()
        .any(|g| g.grant_id() == judys.grant_id()));

    let err = judy
        .list_retirable_grants()
        .retiring_principal(ALICE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let own = judy
        .list_retirable_grants()
        .retiring_principal(JUDY)
        .send()
        .await
        .unwrap();
    assert_eq!(own.grants().len(), 1);
}

/// Second round: encryption context keys that differ only by case are one condition key,
/// and a Deny sees every value of it.
#[tokio::test]
async fn context_keys_that_differ_by_case_cannot_hide_a_value() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let (id, _) = key_with_policy(
        &server.client(),
        json!([root_allows_all(ACCT), {
            "Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "kms:GenerateDataKey*", "Resource": "*",
            "Condition": {"StringNotEquals": {"kms:EncryptionContext:tenant": "A"}}}]),
    )
    .await;
    let alice = as_user(&server, &ALICE_USER);
    let err = alice
        .generate_data_key()
        .key_id(&id)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("Tenant", "B")
        .encryption_context("tenant", "A")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    alice
        .generate_data_key()
        .key_id(&id)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .encryption_context("tenant", "A")
        .send()
        .await
        .expect("tenant A alone");
}

/// Second round: a grant is the key's side only; a grantee of another account needs its
/// own account's IAM policies too. Policies ferrokms could not evaluate as written are
/// refused; a stored identity policy that no longer parses fails its principal's requests.
#[tokio::test]
async fn grants_across_accounts_need_both_sides_and_unreadable_policies_fail_closed() {
    let temp = tempfile::tempdir().unwrap();
    let server = start(&temp, "", &[]);
    let admin = server.client();
    let (_, arn) = new_key(&admin).await;
    for grantee in [EVE, "arn:aws:iam::444455556666:user/mallory"] {
        grant(&admin, &arn, grantee, &[GrantOperation::Encrypt], None).await;
    }
    encrypt(&as_user(&server, &EVE_USER), &arn, "eve's IAM allows it")
        .await
        .unwrap();
    let err = encrypt(&as_user(&server, &MALLORY_USER), &arn, "no IAM policy")
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");

    let (id, _) = new_key(&admin).await;
    for bad in [
        json!([root_allows_all(ACCT), {"Effect": "Deny", "Principal": {"AWS": "arn:aws:iam::111122223333:user/a*"}, "Action": "kms:*", "Resource": "*"}]),
        json!([root_allows_all(ACCT), {"Effect": "Deny", "Principal": "*", "Action": "kms:CreateGrant", "Resource": "*",
            "Condition": {"StringEquals": {"kms:GranteePrincipal": "${aws:PrincipalArn}"}}}]),
    ] {
        let err = admin
            .put_key_policy()
            .key_id(&id)
            .policy(policy(bad))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "MalformedPolicyDocumentException");
    }

    crate::harness::store_sql(
        &server.data_dir,
        "INSERT INTO identity_policies (principal_arn, policy_name, document) VALUES ('arn:aws:iam::111122223333:user/dave', 'broken', '{\"Statement\":[{\"Effect\":\"Deny\"}]}')",
    );
    let dave = as_user(&server, &DAVE_USER);
    let err = dave.list_keys().send().await.unwrap_err();
    assert_eq!(
        code(&err),
        "KMSInternalException",
        "never the Allow without the Deny"
    );
}
