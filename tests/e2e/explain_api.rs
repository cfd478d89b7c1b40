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
const DANA: (&str, &str) = (
    "AKIAEXPLAINDANA00001",
    "explain-dana-secret-explain-dana-secret1",
);
const BOB_ARN: &str = "arn:aws:iam::111122223333:user/bob";
const ADMIN_ARN: &str = "arn:aws:iam::111122223333:user/admin";

fn start() -> (tempfile::TempDir, Server) {
    let temp = tempfile::tempdir().expect("temp dir");
    let user = |name: &str, account: &str, key: (&str, &str), statements: Value| {
        format!(
            "[[users]]\nname = \"{name}\"\naccount = \"{account}\"\naccess_keys = [{{ id = \"{}\", secret = \"{}\" }}]\n[users.policies]\np = '{}'\n",
            key.0,
            key.1,
            json!({"Version": "2012-10-17", "Statement": statements})
        )
    };
    let allow_all =
        |actions: Value| json!([{"Effect": "Allow", "Action": actions, "Resource": "*"}]);
    let config = [
        user("bob", "111122223333", BOB, allow_all(json!(["kms:*"]))),
        user(
            "carl",
            "111122223333",
            CARL,
            allow_all(json!(["kms:*", "iam:SimulatePrincipalPolicy"])),
        ),
        user(
            "eve",
            "444455556666",
            EVE,
            allow_all(json!(["kms:*", "iam:SimulatePrincipalPolicy"])),
        ),
        // May ask about anyone but the role app, whatever the ARN it is named by.
        user(
            "dana",
            "111122223333",
            DANA,
            json!([
                {"Effect": "Allow", "Action": ["kms:*", "iam:SimulatePrincipalPolicy"], "Resource": "*"},
                {"Effect": "Deny", "Action": "iam:SimulatePrincipalPolicy", "Resource": "arn:aws:iam::111122223333:role/app"}
            ]),
        ),
        "[[roles]]\nname = \"app\"\n".to_owned(),
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

    // A role is asked about as its role, whether named by its ARN or a session's; and only
    // in AWS's partition.
    for subject in [
        "arn:aws:iam::111122223333:role/app",
        "arn:aws:sts::111122223333:assumed-role/app/s1",
        "arn:aws-cn:iam::111122223333:user/bob",
    ] {
        denied_for(
            &explain(
                &server,
                Some(DANA),
                json!({"Action": "kms:Encrypt", "Principal": subject}),
            ),
            "iam:SimulatePrincipalPolicy",
        );
    }
    let r = explain(
        &server,
        Some(DANA),
        json!({"Action": "kms:Encrypt", "Principal": BOB_ARN}),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    // Another Region's ARN of a key, or of an alias, is refused as every operation refuses
    // it: here a replica whose own policy bob may not read.
    let primary_policy = json!({
        "Version": "2012-10-17",
        "Statement": [allow(ADMIN_ARN, json!("kms:*")), allow(BOB_ARN, json!(["kms:GetKeyPolicy", "kms:ListGrants"]))]
    });
    let primary = server.kms(
        "CreateKey",
        &json!({"MultiRegion": true, "BypassPolicyLockoutSafetyCheck": true, "Policy": primary_policy.to_string()})
            .to_string(),
    );
    assert_eq!(primary.status, 200, "{}", primary.body);
    let mrk = primary.json()["KeyMetadata"]["KeyId"]
        .as_str()
        .expect("id")
        .to_owned();
    let replica_policy = json!({"Version": "2012-10-17", "Statement": [
        {"Sid": "ReplicaSecret", "Effect": "Allow", "Principal": {"AWS": ADMIN_ARN}, "Action": "kms:*", "Resource": "*"}
    ]});
    let replicated = server.kms(
        "ReplicateKey",
        &json!({"KeyId": mrk, "ReplicaRegion": "eu-west-1", "Policy": replica_policy.to_string(),
                "BypassPolicyLockoutSafetyCheck": true})
        .to_string(),
    );
    assert_eq!(replicated.status, 200, "{}", replicated.body);
    let r = explain(
        &server,
        Some(BOB),
        json!({"Action": "kms:Decrypt", "KeyId": mrk}),
    );
    assert_eq!(r.status, 200, "bob may read the primary's: {}", r.body);
    for other_region in [
        format!("arn:aws:kms:eu-west-1:111122223333:key/{mrk}"),
        "arn:aws:kms:eu-west-1:111122223333:alias/elsewhere".to_owned(),
    ] {
        let r = explain(
            &server,
            Some(BOB),
            json!({"Action": "kms:Decrypt", "KeyId": other_region}),
        );
        assert_eq!(r.error_type(), "NotFoundException", "{}", r.body);
        assert_eq!(
            r.message().as_deref(),
            Some("Invalid arn eu-west-1"),
            "{}",
            r.body
        );
        assert!(!r.body.contains("ReplicaSecret"));
    }

    // Another account's alias: refused alike whether it exists or not.
    let probe = |name: &str| {
        let arn = format!("arn:aws:kms:us-east-1:111122223333:alias/{name}");
        let r = explain(
            &server,
            Some(EVE),
            json!({"Action": "kms:Decrypt", "KeyId": arn}),
        );
        denied_for(&r, "kms:GetKeyPolicy");
        r.message().unwrap_or_default().replace(&arn, "ALIAS")
    };
    assert_eq!(probe("elsewhere"), probe("no-such-alias"));

    // ListGrants is decided with ListGrants's own condition keys.
    let no_grant_listing = key_with_policy(
        &server,
        json!([
            allow(ADMIN_ARN, json!("kms:*")),
            allow(BOB_ARN, json!(["kms:GetKeyPolicy", "kms:ListGrants"])),
            {"Effect": "Deny", "Principal": {"AWS": BOB_ARN}, "Action": "kms:ListGrants", "Resource": "*",
             "Condition": {"Bool": {"kms:GrantIsForAWSResource": "false"}}}
        ]),
    );
    let listed = server.signed_with(
        BOB.0,
        BOB.1,
        "kms",
        Some("TrentService.ListGrants"),
        json!({"KeyId": no_grant_listing}).to_string().as_bytes(),
        SystemTime::now(),
    );
    denied_for(&listed, "kms:ListGrants");
    denied_for(
        &explain(
            &server,
            Some(BOB),
            json!({"Action": "kms:Decrypt", "KeyId": no_grant_listing}),
        ),
        "kms:ListGrants",
    );

    // Bounded input.
    let long = "x".repeat(1025);
    let r = explain(
        &server,
        Some(BOB),
        json!({"Action": "kms:CreateKey", "Conditions": {"aws:SourceIp": long}}),
    );
    assert_eq!(r.error_type(), "ValidationException", "{}", r.body);
    let big: serde_json::Map<String, Value> = (0..9)
        .map(|i| (format!("k{i}"), Value::String("v".repeat(1000))))
        .collect();
    let r = explain(
        &server,
        Some(BOB),
        json!({"Action": "kms:CreateKey", "EncryptionContext": big}),
    );
    assert_eq!(r.error_type(), "ValidationException", "{}", r.body);
    // A principal that does not exist is the question's error, not the service's.
    let r = explain(
        &server,
        Some(CARL),
        json!({"Action": "kms:Encrypt", "Principal": "arn:aws:iam::111122223333:user/nobody"}),
    );
    assert_eq!(r.error_type(), "NotFoundException", "{}", r.body);

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
        .any(|e| e["errorCode"] == "AccessDeniedException"
            && e["userIdentity"]["arn"] == BOB_ARN
            && e["resources"][0]["ARN"]
                .as_str()
                .is_some_and(|a| a.ends_with(&admin_only))));
    assert!(events
        .iter()
        .any(|e| e["requestParameters"]["principal"] == BOB_ARN
            && e["resources"][0]["ARN"]
                .as_str()
                .is_some_and(|a| a.ends_with(&admin_only))));
}
