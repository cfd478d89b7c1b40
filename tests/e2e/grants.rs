//! Grants: temporary, constrained delegation that works as if a policy allowed it.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{GrantConstraints, GrantOperation};
use serde_json::json;

use crate::harness::{code, message, REGION};
use crate::identities::{start_with_config, ALICE_KEY, ALICE_SECRET, BOB_KEY, BOB_SECRET};
use crate::{encrypt, new_key};

const ALICE: &str = "arn:aws:iam::111122223333:user/alice";
const BOB: &str = "arn:aws:iam::111122223333:user/bob";

#[tokio::test]
async fn a_grant_allows_its_operations_within_its_constraints_until_retired() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_config(&temp, &[]);
    let admin = server.client();
    let bob = server.client_with(REGION, BOB_KEY, BOB_SECRET);
    let (id, arn) = new_key(&admin).await;
    let (other, _) = new_key(&admin).await;

    // Bob has no IAM policy: nothing but a grant lets him use the key.
    let err = encrypt(&bob, &id, "x").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");

    let created = admin
        .create_grant()
        .key_id(&id)
        .grantee_principal(BOB)
        .retiring_principal(ALICE)
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("app", "payroll")
                .build(),
        )
        .name("payroll-writer")
        .send()
        .await
        .unwrap();
    let grant_id = created.grant_id().unwrap().to_owned();
    let token = created.grant_token().unwrap().to_owned();
    assert_eq!(grant_id.len(), 64);

    let allowed = bob
        .encrypt()
        .key_id(&arn)
        .plaintext(Blob::new("salary"))
        .encryption_context("app", "payroll")
        .encryption_context("month", "11")
        .grant_tokens(&token)
        .send()
        .await
        .unwrap();
    let back = bob
        .decrypt()
        .ciphertext_blob(allowed.ciphertext_blob().unwrap().clone())
        .encryption_context("app", "payroll")
        .encryption_context("month", "11")
        .send()
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"salary");
    for context in [None, Some("other-app")] {
        let err = bob
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new("x"))
            .set_encryption_context(context.map(|v| [("app".to_owned(), v.to_owned())].into()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "AccessDeniedException", "{context:?}");
    }
    let err = bob
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(32)
        .encryption_context("app", "payroll")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "not an operation of the grant"
    );
    let err = encrypt(&bob, &other, "x").await.unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "a grant is for one key"
    );
    let err = bob
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .grant_tokens("not-a-token")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidGrantTokenException");

    // Same name and terms: the same grant, a fresh token.
    let again = admin
        .create_grant()
        .key_id(&id)
        .grantee_principal(BOB)
        .retiring_principal(ALICE)
        .operations(GrantOperation::Encrypt)
        .operations(GrantOperation::Decrypt)
        .constraints(
            GrantConstraints::builder()
                .encryption_context_subset("app", "payroll")
                .build(),
        )
        .name("payroll-writer")
        .send()
        .await
        .unwrap();
    assert_eq!(again.grant_id(), Some(grant_id.as_str()));
    assert_ne!(again.grant_token(), Some(token.as_str()));

    let listed = server
        .kms("ListGrants", &format!(r#"{{"KeyId": "{id}"}}"#))
        .json();
    assert_eq!(listed["Truncated"], false);
    let entry = &listed["Grants"][0];
    assert_eq!(listed["Grants"].as_array().unwrap().len(), 1);
    assert_eq!(entry["KeyId"], arn.as_str());
    assert_eq!(entry["GrantId"], grant_id.as_str());
    assert_eq!(entry["Name"], "payroll-writer");
    assert_eq!(entry["GranteePrincipal"], BOB);
    assert_eq!(entry["RetiringPrincipal"], ALICE);
    assert_eq!(entry["IssuingAccount"], "arn:aws:iam::111122223333:root");
    assert_eq!(entry["Operations"], json!(["Encrypt", "Decrypt"]));
    assert_eq!(
        entry["Constraints"],
        json!({"EncryptionContextSubset": {"app": "payroll"}})
    );
    let filtered = admin
        .list_grants()
        .key_id(&id)
        .grantee_principal(ALICE)
        .send()
        .await
        .unwrap();
    assert!(filtered.grants().is_empty());

    // Alice, the retiring principal, needs no key permission to retire it.
    let alice = server.client_with(REGION, ALICE_KEY, ALICE_SECRET);
    let err = alice
        .list_retirable_grants()
        .retiring_principal(ALICE)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "an IAM-only action alice lacks"
    );
    let retirable = admin
        .list_retirable_grants()
        .retiring_principal(ALICE)
        .send()
        .await
        .unwrap();
    assert_eq!(retirable.grants().len(), 1);
    alice
        .retire_grant()
        .grant_token(&token)
        .send()
        .await
        .unwrap();
    let err = encrypt(&bob, &id, "x").await.unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "a retired grant allows nothing"
    );
    let err = alice
        .retire_grant()
        .grant_token(&token)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}

#[tokio::test]
async fn revoke_and_deny_beat_grants() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_config(&temp, &[]);
    let admin = server.client();
    let bob = server.client_with(REGION, BOB_KEY, BOB_SECRET);
    let (id, _) = new_key(&admin).await;
    let grant = admin
        .create_grant()
        .key_id(&id)
        .grantee_principal(BOB)
        .operations(GrantOperation::Encrypt)
        .send()
        .await
        .unwrap();
    let grant_id = grant.grant_id().unwrap().to_owned();
    encrypt(&bob, &id, "ok").await.unwrap();

    let deny = json!({"Version": "2012-10-17", "Statement": [
        crate::root_allows_all("111122223333"),
        {"Effect": "Deny", "Principal": {"AWS": BOB}, "Action": "kms:Encrypt", "Resource": "*"}
    ]});
    admin
        .put_key_policy()
        .key_id(&id)
        .policy(deny.to_string())
        .send()
        .await
        .unwrap();
    let err = encrypt(&bob, &id, "x").await.unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "an explicit deny wins over a grant"
    );
    let default = json!({"Version": "2012-10-17", "Statement": [
        crate::root_allows_all("111122223333")
    ]});
    admin
        .put_key_policy()
        .key_id(&id)
        .policy(default.to_string())
        .send()
        .await
        .unwrap();
    encrypt(&bob, &id, "ok again").await.unwrap();

    let err = bob
        .revoke_grant()
        .key_id(&id)
        .grant_id(&grant_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "AccessDeniedException",
        "the grantee may not revoke"
    );
    admin
        .revoke_grant()
        .key_id(&id)
        .grant_id(&grant_id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        code(&encrypt(&bob, &id, "x").await.unwrap_err()),
        "AccessDeniedException"
    );
    let err = admin
        .revoke_grant()
        .key_id(&id)
        .grant_id(&grant_id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "NotFoundException".into(),
            format!("Grant ID {grant_id} not found")
        )
    );
    let err = admin
        .revoke_grant()
        .key_id(&id)
        .grant_id("nope")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidGrantIdException");
    let err = admin
        .create_grant()
        .key_id(&id)
        .grantee_principal(BOB)
        .operations(GrantOperation::Encrypt)
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "DryRunOperationException");
    assert!(admin
        .list_grants()
        .key_id(&id)
        .send()
        .await
        .unwrap()
        .grants()
        .is_empty());
}

/// ferrokms has no AWS services to act for: a grant naming a service principal, as grantee or
/// as retiring principal, is refused and nothing is made (silently dropping the retiring
/// one would leave a grant no one named can retire).
#[tokio::test]
async fn grants_naming_service_principals_are_refused_and_nothing_is_made() {
    let server = crate::harness::Server::start();
    let admin = server.client();
    let (id, _) = new_key(&admin).await;
    let refusals = [
        admin
            .create_grant()
            .key_id(&id)
            .grantee_service_principal("rds.amazonaws.com")
            .retiring_principal(ALICE)
            .constraints(
                GrantConstraints::builder()
                    .source_arn("arn:aws:rds:us-east-1:111122223333:db:orders")
                    .build(),
            )
            .operations(GrantOperation::Decrypt)
            .send()
            .await
            .unwrap_err(),
        admin
            .create_grant()
            .key_id(&id)
            .grantee_principal(BOB)
            .retiring_service_principal("rds.amazonaws.com")
            .operations(GrantOperation::Decrypt)
            .send()
            .await
            .unwrap_err(),
    ];
    for err in &refusals {
        assert_eq!(code(err), "UnsupportedOperationException", "{err:?}");
        assert!(
            message(err).contains("service principals"),
            "{}",
            message(err)
        );
    }
    let grants = admin.list_grants().key_id(&id).send().await.unwrap();
    assert!(grants.grants().is_empty(), "{:?}", grants.grants());
}
