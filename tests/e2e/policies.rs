//! Key policies: stored as given, enforced on every call, with the lockout safety check.

use aws_sdk_kms::primitives::Blob;
use serde_json::{json, Value};

use crate::harness::{code, message, Server, REGION};
use crate::{decrypt, encrypt, new_key, policy, root_allows_all};

const ACCT: &str = "111122223333";

#[tokio::test]
async fn the_default_policy_and_a_given_one_are_returned_as_stored() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let got = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert_eq!(got.policy_name(), Some("default"));
    let doc: Value = serde_json::from_str(got.policy().unwrap()).unwrap();
    assert_eq!(
        doc["Statement"][0]["Principal"]["AWS"],
        format!("arn:aws:iam::{ACCT}:root")
    );
    assert_eq!(doc["Statement"][0]["Action"], "kms:*");

    let given = format!("{}\n", policy(json!([root_allows_all(ACCT)])));
    let out = kms.create_key().policy(&given).send().await.unwrap();
    let id = out.key_metadata().unwrap().key_id().to_owned();
    let got = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("default")
        .send()
        .await
        .unwrap();
    assert_eq!(got.policy(), Some(given.as_str()), "stored byte for byte");
    let names = kms.list_key_policies().key_id(&id).send().await.unwrap();
    assert_eq!(names.policy_names(), ["default"]);
    assert!(!names.truncated());
    let err = kms
        .get_key_policy()
        .key_id(&id)
        .policy_name("other")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

#[tokio::test]
async fn a_deny_in_the_key_policy_takes_effect_at_once() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    let ct = encrypt(&kms, &id, "before")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let deny_encrypt = policy(json!([
        root_allows_all(ACCT),
        {"Effect": "Deny", "Principal": "*", "Action": "kms:Encrypt", "Resource": "*"}
    ]));
    kms.put_key_policy()
        .key_id(&id)
        .policy(&deny_encrypt)
        .send()
        .await
        .unwrap();
    let err = encrypt(&kms, &id, "after").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert_eq!(
        message(&err),
        format!("User: arn:aws:iam::{ACCT}:user/admin is not authorized to perform: kms:Encrypt on resource: {arn} with an explicit deny in a resource-based policy")
    );
    let plain = decrypt(&kms, ct).await.unwrap();
    assert_eq!(
        plain.plaintext().unwrap().as_ref(),
        b"before",
        "Decrypt is still allowed"
    );
    let err = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(32)
        .send()
        .await;
    assert!(err.is_ok(), "only Encrypt is denied");
}

#[tokio::test]
async fn conditions_on_the_encryption_context_are_enforced() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let doc = policy(json!([
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")},
         "NotAction": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*"},
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")},
         "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "*",
         "Condition": {"StringEquals": {"kms:EncryptionContext:purpose": "backup"}}}
    ]));
    kms.put_key_policy()
        .key_id(&id)
        .policy(&doc)
        .send()
        .await
        .unwrap();
    let ok = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .encryption_context("purpose", "backup")
        .send()
        .await
        .unwrap();
    for context in [None, Some("restore")] {
        let err = kms
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new("x"))
            .set_encryption_context(context.map(|v| [("purpose".to_owned(), v.to_owned())].into()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "AccessDeniedException", "{context:?}");
    }
    let back = kms
        .decrypt()
        .ciphertext_blob(ok.ciphertext_blob().unwrap().clone())
        .encryption_context("purpose", "backup")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"x");
}

#[tokio::test]
async fn the_lockout_safety_check_and_its_bypass() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    let encrypt_only = policy(json!([
        {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")},
         "Action": ["kms:Encrypt", "kms:DescribeKey"], "Resource": "*"}
    ]));
    let err = kms
        .put_key_policy()
        .key_id(&id)
        .policy(&encrypt_only)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "MalformedPolicyDocumentException".into(),
            "The new key policy will not allow you to update the key policy in the future.".into()
        )
    );
    assert!(
        kms.get_key_policy().key_id(&id).send().await.is_ok(),
        "nothing changed"
    );
    let err = kms
        .create_key()
        .policy(&encrypt_only)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "MalformedPolicyDocumentException");

    kms.put_key_policy()
        .key_id(&id)
        .policy(&encrypt_only)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();
    encrypt(&kms, &id, "still allowed").await.unwrap();
    let err = kms.get_key_policy().key_id(&id).send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert!(message(&err).contains(&format!("kms:GetKeyPolicy on resource: {arn}")));
    let err = kms
        .put_key_policy()
        .key_id(&id)
        .policy(&encrypt_only)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "locked out, as AWS warns"
    );

    let created = kms
        .create_key()
        .policy(&encrypt_only)
        .bypass_policy_lockout_safety_check(true)
        .send()
        .await
        .unwrap();
    let new_id = created.key_metadata().unwrap().key_id();
    let err = kms.disable_key().key_id(new_id).send().await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
}

#[tokio::test]
async fn malformed_and_oversized_policies_are_refused() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    for bad in [
        "not json".to_owned(),
        policy(json!([{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}])),
        policy(
            json!([{"Effect": "Allow", "Principal": {"AWS": "not-an-arn"}, "Action": "kms:*", "Resource": "*"}]),
        ),
    ] {
        let err = kms
            .put_key_policy()
            .key_id(&id)
            .policy(&bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "MalformedPolicyDocumentException", "{bad}");
    }
    let mut big = vec![root_allows_all(ACCT)];
    for i in 0..400 {
        big.push(json!({"Sid": format!("padding{i:04}"), "Effect": "Allow",
            "Principal": {"AWS": format!("arn:aws:iam::{ACCT}:root")}, "Action": "kms:DescribeKey", "Resource": "*"}));
    }
    let big = policy(Value::Array(big));
    assert!(big.len() > 32 * 1024);
    let err = kms
        .put_key_policy()
        .key_id(&id)
        .policy(&big)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "LimitExceededException");
}

#[tokio::test]
async fn cross_account_use_follows_the_key_policy() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &["--dev", "--ephemeral"]);
    let owner = server.client_with(REGION, "111111111111", "x");
    let partner = server.client_with(REGION, "222222222222", "x");
    let stranger = server.client_with(REGION, "333333333333", "x");
    let (id, arn) = new_key(&owner).await;

    let err = encrypt(&partner, &arn, "x").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert!(message(&err).starts_with("User: arn:aws:iam::222222222222:root is not authorized"));
    let err = encrypt(&partner, &id, "x").await.unwrap_err();
    assert_eq!(
        code(&err),
        "NotFoundException",
        "a bare key id names a key in the caller's account"
    );

    let shared = policy(json!([
        root_allows_all("111111111111"),
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
         "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"], "Resource": "*"}
    ]));
    owner
        .put_key_policy()
        .key_id(&id)
        .policy(&shared)
        .send()
        .await
        .unwrap();
    let ct = encrypt(&partner, &arn, "shared").await.unwrap();
    assert_eq!(ct.key_id(), Some(arn.as_str()));
    let back = decrypt(&partner, ct.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"shared");
    let d = partner.describe_key().key_id(&arn).send().await.unwrap();
    assert_eq!(
        d.key_metadata().unwrap().aws_account_id(),
        Some("111111111111")
    );
    let err = partner
        .schedule_key_deletion()
        .key_id(&arn)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    let err = stranger
        .decrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
    assert!(
        partner.list_keys().send().await.unwrap().keys().is_empty(),
        "ListKeys shows own keys"
    );
}
