//! ExplainDecision (`FerroKMS_20261201.ExplainDecision`), the API behind the console's "why
//! was I denied?": who may ask, about whom and about which key.

use std::time::SystemTime;

use serde_json::{json, Value};

use crate::harness::{RawResponse, Server};

const TARGET: &str = "FerroKMS_20261201.ExplainDecision";
const BOB: (&str, &str) = (
    "AKIAEXPLAINBOB000001",
    "explain-bob-secret-explain-bob-secret-01",
);
const CARL: (&str, &str) = (
    "AKIAEXPLAINCARL00001",
    "explain-carl-secret-explain-carl-secret1",
);
const EVE: (&str, &str) = (
    "AKIAEXPLAINEVE000001",
    "explain-eve-secret-explain-eve-secret-001",
);
const BOB_ARN: &str = "arn:aws:iam::111122223333:user/bob";
const ADMIN_ARN: &str = "arn:aws:iam::111122223333:user/admin";

fn start() -> (tempfile::TempDir, Server) {
    let temp = tempfile::tempdir().expect("temp dir");
    let user = |name: &str, account: &str, key: (&str, &str), actions: &[&str]| {
        format!(
            "[[users]]\nname = \"{name}\"\naccount = \"{account}\"\naccess_keys = [{{ id = \"{}\", secret = \"{}\" }}]\n[users.policies]\np = '{}'\n",
            key.0,
            key.1,
            json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]})
        )
    };
    let config = [
        user("bob", "111122223333", BOB, &["kms:*"]),
        user(
            "carl",
            "111122223333",
            CARL,
            &["kms:*", "iam:SimulatePrincipalPolicy"],
        ),
        user(
            "eve",
            "444455556666",
            EVE,
            &["kms:*", "iam:SimulatePrincipalPolicy"],
        ),
    ]
    .join("\n");
    let path = temp.path().join("ferrokms.toml");
    std::fs::write(&path, config).expect("write config");
    let data = temp.path().join("data");
    let server = Server::start_with_args(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.to_str().expect("utf-8"),
            "--config",
            path.to_str().expect("utf-8"),
        ],
        &data,
    );
    (temp, server)
}

fn explain(server: &Server, who: Option<(&str, &str)>, body: Value) -> RawResponse {
    let (key, secret) = who.unwrap_or((&server.access_key_id, &server.secret_access_key));
    server.signed_with(
        key,
        secret,
        "kms",
        Some(TARGET),
        body.to_string().as_bytes(),
        SystemTime::now(),
    )
}

fn key_with_policy(server: &Server, statements: Value) -> String {
    let made = server.kms("CreateKey", "{}");
    assert_eq!(made.status, 200, "{}", made.body);
    let id = made.json()["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("a key id")
        .to_owned();
    let policy = json!({"Version": "2012-10-17", "Statement": statements}).to_string();
    let put = server.kms(
        "PutKeyPolicy",
        &json!({"KeyId": id, "Policy": policy, "BypassPolicyLockoutSafetyCheck": true}).to_string(),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    id
}

fn allow(principal: &str, actions: Value) -> Value {
    json!({"Effect": "Allow", "Principal": {"AWS": principal}, "Action": actions, "Resource": "*"})
}

fn denied_for(r: &RawResponse, permission: &str) {
    assert_eq!(r.status, 400, "{}", r.body);
    assert_eq!(r.error_type(), "AccessDeniedException", "{}", r.body);
    let message = r.message().unwrap_or_default();
    assert!(message.contains(permission), "{message}");
}

#[test]
fn explain_decision_says_why_and_only_to_those_who_may_read_the_policies() {
    let (_temp, server) = start();
    // Only the admin may use this key.
    let admin_only = key_with_policy(
        &server,
        json!([
            json!({"Sid": "AdminOnly", "Effect": "Allow", "Principal": {"AWS": ADMIN_ARN}, "Action": "kms:*", "Resource": "*"})
        ]),
    );
    // Bob was denied DescribeKey; the admin asks why.
    let r = explain(
        &server,
        None,
        json!({"Action": "kms:DescribeKey", "KeyId": admin_only, "Principal": BOB_ARN}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let answer = r.json();
    assert_eq!(answer["Allowed"], false);
    let text = answer["Explanation"].as_str().expect("text");
    assert!(
        text.contains("caller: arn:aws:iam::111122223333:user/bob"),
        "{text}"
    );
    assert!(text.contains("\"AdminOnly\""), "{text}");
    assert!(text.contains("decision: DENIED"), "{text}");
    // The same question about the admin: allowed, by the statement that names them.
    let r = explain(
        &server,
        None,
        json!({"Action": "DescribeKey", "KeyId": admin_only, "Principal": ADMIN_ARN}),
    );
    assert_eq!(r.json()["Allowed"], true, "{}", r.body);

    // Bob himself cannot ask: the report would show him a policy he may not read.
    denied_for(
        &explain(
            &server,
            Some(BOB),
            json!({"Action": "kms:DescribeKey", "KeyId": admin_only}),
        ),
        "kms:GetKeyPolicy",
    );
    // Reading the policy is not enough: the grants are in the report too.
    let policy_only = key_with_policy(
        &server,
        json!([
            allow(ADMIN_ARN, json!("kms:*")),
            allow(BOB_ARN, json!("kms:GetKeyPolicy"))
        ]),
    );
    denied_for(
        &explain(
            &server,
            Some(BOB),
            json!({"Action": "kms:Encrypt", "KeyId": policy_only}),
        ),
        "kms:ListGrants",
    );
    let readable = key_with_policy(
        &server,
        json!([
            allow(ADMIN_ARN, json!("kms:*")),
            allow(BOB_ARN, json!(["kms:GetKeyPolicy", "kms:ListGrants"]))
        ]),
    );
    let r = explain(
        &server,
        Some(BOB),
        json!({"Action": "kms:Encrypt", "KeyId": readable}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["Allowed"], false);

    // An alias is followed to its key, and the key's permissions decide: an alias of the
    // admin-only key is refused to bob although he may read another key.
    let alias = server.kms(
        "CreateAlias",
        &json!({"AliasName": "alias/elsewhere", "TargetKeyId": admin_only}).to_string(),
    );
    assert_eq!(alias.status, 200, "{}", alias.body);
    denied_for(
        &explain(
            &server,
            Some(BOB),
            json!({"Action": "kms:Decrypt", "KeyId": "alias/elsewhere"}),
        ),
        "kms:GetKeyPolicy",
    );

    // About another principal: iam:SimulatePrincipalPolicy, which bob lacks and carl has.
    denied_for(
        &explain(
            &server,
            Some(BOB),
            json!({"Action": "kms:Encrypt", "KeyId": readable, "Principal": ADMIN_ARN}),
        ),
        "iam:SimulatePrincipalPolicy",
    );
    let default_key = key_with_policy(&server, json!([crate::root_allows_all("111122223333")]));
    let r = explain(
        &server,
        Some(CARL),
        json!({"Action": "kms:Encrypt", "KeyId": default_key, "Principal": BOB_ARN}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.json()["Allowed"], true, "{}", r.body);

    // Never about another account's principal, nor on another account's key, even with
    // every permission in one's own account and a key policy that lets the account in.
    denied_for(
        &explain(
            &server,
            Some(CARL),
            json!({"Action": "kms:Encrypt", "Principal": "arn:aws:iam::444455556666:user/eve"}),
        ),
        "iam:SimulatePrincipalPolicy",
    );
    let shared = key_with_policy(
        &server,
        json!([
            crate::root_allows_all("111122223333"),
            allow("arn:aws:iam::444455556666:root", json!("kms:*"))
        ]),
    );
    let arn = format!("arn:aws:kms:us-east-1:111122223333:key/{shared}");
    let r = explain(
        &server,
        Some(EVE),
        json!({"Action": "kms:Encrypt", "KeyId": arn}),
    );
    denied_for(&r, "kms:GetKeyPolicy");
    assert!(
        !r.body.contains("statement"),
        "another account learns nothing of the policy: {}",
        r.body
    );

    // Without a key: the action on `*`, decided by the caller's IAM policies.
    let r = explain(&server, Some(BOB), json!({"Action": "kms:CreateKey"}));
    assert_eq!(r.json()["Allowed"], true, "{}", r.body);
    let r = explain(&server, Some(BOB), json!({"KeyId": readable}));
    assert_eq!(r.error_type(), "ValidationException", "{}", r.body);

    // It is ferrokms's own operation: not in AWS's namespace.
    let r = server.kms(
        "ExplainDecision",
        &json!({"Action": "kms:Encrypt"}).to_string(),
    );
    assert_eq!(r.error_type(), "UnknownOperationException", "{}", r.body);

    // Each question is in the audit trail, read-only, with the key it was about.
    let events = crate::harness::events_named(&server, "ExplainDecision");
    assert!(events.len() >= 10, "{events:?}");
    assert!(events.iter().all(|e| e["readOnly"] == true));
    assert!(events
        .iter()
        .any(|e| e["errorCode"] == "AccessDeniedException" && e["userIdentity"]["arn"] == BOB_ARN));
    assert!(events
        .iter()
        .any(|e| e["requestParameters"]["principal"] == BOB_ARN
            && e["resources"][0]["ARN"]
                .as_str()
                .is_some_and(|a| a.ends_with(&admin_only))));
}
