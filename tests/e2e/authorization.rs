//! A table of authorization cases through the real server: for each key policy, principal and
//! operation, allowed or denied as AWS would decide.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::Tag;
use aws_sdk_kms::Client;
use serde_json::{json, Value};

use crate::harness::{code, REGION};
use crate::identities::{start_with_config, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET};

const ROOT: &str = "arn:aws:iam::111122223333:root";
const ADMIN: &str = "arn:aws:iam::111122223333:user/admin";
const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";

#[derive(Clone, Copy, Debug)]
enum Who {
    Admin,
    Alice,
    Bob,
}

#[derive(Clone, Copy, Debug)]
enum Op {
    Encrypt,
    EncryptViaAlias,
    Decrypt,
    DescribeKey,
    ScheduleKeyDeletion,
}

struct Case {
    name: &'static str,
    statements: Value,
    who: Who,
    op: Op,
    allowed: bool,
}

fn root_all() -> Value {
    crate::root_allows_all("111122223333")
}

fn cases() -> Vec<Case> {
    let c = |name, statements, who, op, allowed| Case {
        name,
        statements,
        who,
        op,
        allowed,
    };
    vec![
        // The seeds' example: the default policy delegates to IAM policies.
        c(
            "default policy, admin",
            json!([root_all()]),
            Who::Admin,
            Op::ScheduleKeyDeletion,
            true,
        ),
        c(
            "default policy, alice within her IAM policy",
            json!([root_all()]),
            Who::Alice,
            Op::Encrypt,
            true,
        ),
        c(
            "default policy, alice beyond her IAM policy",
            json!([root_all()]),
            Who::Alice,
            Op::ScheduleKeyDeletion,
            false,
        ),
        c(
            "default policy, bob without IAM policy",
            json!([root_all()]),
            Who::Bob,
            Op::Encrypt,
            false,
        ),
        c(
            "bob named for Decrypt only: Decrypt",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Decrypt", "Resource": "*"}]),
            Who::Bob,
            Op::Decrypt,
            true,
        ),
        c(
            "bob named for Decrypt only: Encrypt",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Decrypt", "Resource": "*"}]),
            Who::Bob,
            Op::Encrypt,
            false,
        ),
        c(
            "action wildcards",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Describe*", "Resource": "*"}]),
            Who::Bob,
            Op::DescribeKey,
            true,
        ),
        // The seeds' example: a statement for a Lambda service principal lets no user in.
        c(
            "service principal statement",
            json!([root_all(), {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "kms:*", "Resource": "*"}]),
            Who::Bob,
            Op::Encrypt,
            false,
        ),
        // The seeds' example: kms:CallerAccount with kms:ViaService admits only calls made
        // through that service, never direct ones.
        c(
            "CallerAccount and ViaService",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333", "kms:ViaService": "lambda.us-east-1.amazonaws.com"}}}]),
            Who::Bob,
            Op::Encrypt,
            false,
        ),
        c(
            "CallerAccount alone",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
                "Condition": {"StringEquals": {"kms:CallerAccount": "111122223333"}}}]),
            Who::Bob,
            Op::Encrypt,
            true,
        ),
        c(
            "explicit deny beats an IAM allow",
            json!([root_all(), {"Effect": "Deny", "Principal": {"AWS": ALICE}, "Action": "kms:Encrypt", "Resource": "*"}]),
            Who::Alice,
            Op::Encrypt,
            false,
        ),
        c(
            "NotPrincipal deny spares the admin",
            json!([root_all(), {"Effect": "Deny", "NotPrincipal": {"AWS": [ADMIN, ROOT]}, "Action": "kms:*", "Resource": "*"}]),
            Who::Admin,
            Op::Encrypt,
            true,
        ),
        c(
            "NotPrincipal deny catches alice",
            json!([root_all(), {"Effect": "Deny", "NotPrincipal": {"AWS": [ADMIN, ROOT]}, "Action": "kms:*", "Resource": "*"}]),
            Who::Alice,
            Op::Encrypt,
            false,
        ),
        c(
            "RequestAlias: through the alias",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"StringEquals": {"kms:RequestAlias": "alias/approved"}}}]),
            Who::Bob,
            Op::EncryptViaAlias,
            true,
        ),
        c(
            "RequestAlias: by key id",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"StringEquals": {"kms:RequestAlias": "alias/approved"}}}]),
            Who::Bob,
            Op::Encrypt,
            false,
        ),
        c(
            "ResourceAliases",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/approved"}}}]),
            Who::Bob,
            Op::Encrypt,
            true,
        ),
        c(
            "ResourceTag matches",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": "payments"}}}]),
            Who::Bob,
            Op::Encrypt,
            true,
        ),
        c(
            "ResourceTag differs",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/team": "billing"}}}]),
            Who::Bob,
            Op::Encrypt,
            false,
        ),
        c(
            "SourceIp inside",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "127.0.0.0/8"}}}]),
            Who::Bob,
            Op::Encrypt,
            true,
        ),
        c(
            "SourceIp outside",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"IpAddress": {"aws:SourceIp": "10.0.0.0/8"}}}]),
            Who::Bob,
            Op::Encrypt,
            false,
        ),
        c(
            "EncryptionAlgorithm",
            json!([root_all(), {"Effect": "Allow", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*",
                "Condition": {"StringEquals": {"kms:EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}}}]),
            Who::Bob,
            Op::Encrypt,
            true,
        ),
    ]
}

async fn attempt(client: &Client, op: Op, key: &str, ciphertext: &Blob) -> Result<(), String> {
    let result = match op {
        Op::Encrypt => crate::encrypt(client, key, "x")
            .await
            .map(drop)
            .map_err(|e| code(&e)),
        Op::EncryptViaAlias => crate::encrypt(client, "alias/approved", "x")
            .await
            .map(drop)
            .map_err(|e| code(&e)),
        Op::Decrypt => crate::decrypt(client, ciphertext.clone())
            .await
            .map(drop)
            .map_err(|e| code(&e)),
        Op::DescribeKey => client
            .describe_key()
            .key_id(key)
            .send()
            .await
            .map(drop)
            .map_err(|e| code(&e)),
        Op::ScheduleKeyDeletion => client
            .schedule_key_deletion()
            .key_id(key)
            .send()
            .await
            .map(drop)
            .map_err(|e| code(&e)),
    };
    result
}

#[tokio::test]
async fn the_authorization_table() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_config(&temp, &[]);
    let admin = server.client();
    let alice = server.client_with(REGION, ALICE_KEY, ALICE_SECRET);
    let bob = server.client_with(REGION, BOB_KEY, BOB_SECRET);
    let mut failures = Vec::new();
    for case in cases() {
        let key = admin
            .create_key()
            .tags(
                Tag::builder()
                    .tag_key("team")
                    .tag_value("payments")
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let id = key.key_metadata().unwrap().key_id().to_owned();
        // One alias name at a time: move it to this case's key.
        let _ = admin
            .delete_alias()
            .alias_name("alias/approved")
            .send()
            .await;
        admin
            .create_alias()
            .alias_name("alias/approved")
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
        let ciphertext = crate::encrypt(&admin, &id, "x")
            .await
            .unwrap()
            .ciphertext_blob()
            .unwrap()
            .clone();
        let doc = json!({"Version": "2012-10-17", "Statement": case.statements}).to_string();
        admin
            .put_key_policy()
            .key_id(&id)
            .policy(doc)
            .bypass_policy_lockout_safety_check(true)
            .send()
            .await
            .unwrap();
        let client = match case.who {
            Who::Admin => &admin,
            Who::Alice => &alice,
            Who::Bob => &bob,
        };
        let outcome = attempt(client, case.op, &id, &ciphertext).await;
        let ok = match (&outcome, case.allowed) {
            (Ok(()), true) => true,
            (Err(c), false) => c == "AccessDeniedException",
            _ => false,
        };
        if !ok {
            failures.push(format!(
                "{}: {:?} {:?} gave {outcome:?}",
                case.name, case.who, case.op
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
