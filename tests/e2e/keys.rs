use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_kms::types::{KeySpec, KeyState, KeyUsageType, Tag};

use crate::harness::{code, message, Server};
use crate::{decrypt, encrypt, new_key};

fn now_secs() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

#[tokio::test]
async fn create_and_describe_return_full_metadata() {
    let server = Server::start();
    let kms = server.client();
    let out = kms
        .create_key()
        .description("my app key")
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
    let meta = out.key_metadata().unwrap();
    let id = meta.key_id();
    assert_eq!(
        id.len(),
        36,
        "KeyMetadata.KeyId is the bare key id, as in AWS"
    );
    assert_eq!(
        meta.arn(),
        Some(format!("arn:aws:kms:us-east-1:111122223333:key/{id}").as_str())
    );
    assert_eq!(meta.aws_account_id(), Some("111122223333"));
    assert_eq!(meta.description(), Some("my app key"));
    assert!(meta.enabled());
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    assert_eq!(meta.key_spec(), Some(&KeySpec::SymmetricDefault));
    assert_eq!(meta.key_usage(), Some(&KeyUsageType::EncryptDecrypt));
    assert_eq!(meta.origin().map(|o| o.as_str()), Some("AWS_KMS"));
    assert_eq!(meta.key_manager().map(|m| m.as_str()), Some("CUSTOMER"));
    assert_eq!(
        meta.encryption_algorithms()
            .iter()
            .map(|a| a.as_str())
            .collect::<Vec<_>>(),
        ["SYMMETRIC_DEFAULT"]
    );
    assert_eq!(meta.multi_region(), Some(false));
    let created = meta.creation_date().unwrap().as_secs_f64();
    assert!((now_secs() - created).abs() < 60.0);
    let material = meta.current_key_material_id().unwrap();
    assert!(material.len() == 64 && material.bytes().all(|b| b.is_ascii_hexdigit()));

    let arn = meta.arn().unwrap().to_owned();
    kms.create_alias()
        .alias_name("alias/described")
        .target_key_id(id)
        .send()
        .await
        .unwrap();
    for name in [
        id.to_owned(),
        arn.clone(),
        "alias/described".to_owned(),
        "arn:aws:kms:us-east-1:111122223333:alias/described".to_owned(),
    ] {
        let d = kms.describe_key().key_id(&name).send().await.unwrap();
        assert_eq!(
            d.key_metadata().unwrap().arn(),
            Some(arn.as_str()),
            "{name}"
        );
    }
}

#[tokio::test]
async fn multi_region_keys_get_mrk_ids() {
    let server = Server::start();
    let out = server
        .client()
        .create_key()
        .multi_region(true)
        .send()
        .await
        .unwrap();
    let meta = out.key_metadata().unwrap();
    assert!(meta.key_id().starts_with("mrk-") && meta.key_id().len() == 36);
    assert_eq!(meta.multi_region(), Some(true));
}

#[tokio::test]
async fn list_keys_pages_through_every_key_once() {
    let server = Server::start();
    let kms = server.client_in("eu-north-1");
    let mut created = Vec::new();
    for _ in 0..5 {
        created.push(new_key(&kms).await.0);
    }
    let mut seen = Vec::new();
    let mut marker: Option<String> = None;
    let mut pages = 0;
    loop {
        let out = kms
            .list_keys()
            .limit(2)
            .set_marker(marker.clone())
            .send()
            .await
            .unwrap();
        pages += 1;
        for k in out.keys() {
            let id = k.key_id().unwrap().to_owned();
            assert_eq!(
                k.key_arn(),
                Some(format!("arn:aws:kms:eu-north-1:111122223333:key/{id}").as_str())
            );
            seen.push(id);
        }
        if !out.truncated() {
            assert!(out.next_marker().is_none());
            break;
        }
        marker = out.next_marker().map(str::to_owned);
        assert!(marker.is_some());
    }
    assert_eq!(pages, 3);
    created.sort();
    seen.sort();
    assert_eq!(seen, created);

    let all = kms.list_keys().send().await.unwrap();
    assert_eq!(all.keys().len(), 5);
    assert!(!all.truncated());
    let err = kms
        .list_keys()
        .marker("not-a-marker!")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidMarkerException");
    let err = kms.list_keys().limit(0).send().await.unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert_eq!(
        message(&err),
        "1 validation error detected: Value '0' at 'limit' failed to satisfy constraint: Member must have value greater than or equal to 1"
    );
}

#[tokio::test]
async fn disable_enable_and_description() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    kms.update_key_description()
        .key_id(&id)
        .description("new words")
        .send()
        .await
        .unwrap();
    kms.disable_key().key_id(&arn).send().await.unwrap();
    let meta = kms.describe_key().key_id(&id).send().await.unwrap();
    let meta = meta.key_metadata().unwrap();
    assert_eq!(meta.description(), Some("new words"));
    assert_eq!(meta.key_state(), Some(&KeyState::Disabled));
    assert!(!meta.enabled());
    let err = encrypt(&kms, &id, "x").await.unwrap_err();
    assert_eq!(code(&err), "DisabledException");
    assert_eq!(message(&err), format!("{arn} is disabled."));
    kms.enable_key().key_id(&id).send().await.unwrap();
    encrypt(&kms, &id, "x").await.unwrap();
}

#[tokio::test]
async fn deletion_is_scheduled_refused_while_pending_and_cancelled() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    let ct = encrypt(&kms, &id, "keep")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();

    for bad in [6, 31] {
        let err = kms
            .schedule_key_deletion()
            .key_id(&id)
            .pending_window_in_days(bad)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "ValidationException");
        assert_eq!(
            message(&err),
            "PendingWindowInDays must be between 7 and 30"
        );
    }
    let err = kms
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(400)
        .send()
        .await
        .unwrap_err();
    assert!(message(&err).contains("Member must have value less than or equal to 365"));
    let meta = kms.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().key_state(),
        Some(&KeyState::Enabled),
        "refused requests change nothing"
    );

    let out = kms
        .schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn.as_str()));
    assert_eq!(out.key_state(), Some(&KeyState::PendingDeletion));
    assert_eq!(out.pending_window_in_days(), Some(30));
    let days = (out.deletion_date().unwrap().as_secs_f64() - now_secs()) / 86400.0;
    assert!((days - 30.0).abs() < 0.01, "{days}");

    let pending = format!("{arn} is pending deletion.");
    let err = encrypt(&kms, &id, "x").await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("KMSInvalidStateException".into(), pending.clone())
    );
    let err = decrypt(&kms, ct.clone()).await.unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    let err = kms
        .schedule_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("KMSInvalidStateException".into(), pending.clone())
    );
    let err = kms.enable_key().key_id(&id).send().await.unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    let d = kms.describe_key().key_id(&id).send().await.unwrap();
    assert!(d.key_metadata().unwrap().deletion_date().is_some());
    let listed = kms.list_keys().send().await.unwrap();
    assert!(listed
        .keys()
        .iter()
        .any(|k| k.key_id() == Some(id.as_str())));

    let out = kms.cancel_key_deletion().key_id(&arn).send().await.unwrap();
    assert_eq!(out.key_id(), Some(arn.as_str()));
    let d = kms.describe_key().key_id(&id).send().await.unwrap();
    let meta = d.key_metadata().unwrap();
    assert_eq!(
        meta.key_state(),
        Some(&KeyState::Disabled),
        "AWS leaves a cancelled key disabled"
    );
    assert!(meta.deletion_date().is_none());
    let err = kms
        .cancel_key_deletion()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    assert_eq!(message(&err), format!("{arn} is not pending deletion."));

    kms.enable_key().key_id(&id).send().await.unwrap();
    let plain = decrypt(&kms, ct).await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"keep");

    let out = kms
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(out.pending_window_in_days(), Some(7));
}

#[tokio::test]
async fn unknown_and_malformed_key_ids_are_not_found() {
    let server = Server::start();
    let kms = server.client();
    let missing = "1234abcd-12ab-34cd-56ef-1234567890ab";
    let err = kms.describe_key().key_id(missing).send().await.unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
    assert_eq!(
        message(&err),
        format!("Key 'arn:aws:kms:us-east-1:111122223333:key/{missing}' does not exist")
    );
    let err = kms
        .describe_key()
        .key_id("fake-key-id")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "NotFoundException".into(),
            "Invalid keyId 'fake-key-id'".into()
        )
    );
    let err = kms
        .describe_key()
        .key_id("alias/nothing")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Alias arn:aws:kms:us-east-1:111122223333:alias/nothing is not found."
    );
    // Key-management operations take a key id or ARN, never an alias.
    let (id, _) = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/mgmt")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let err = kms
        .disable_key()
        .key_id("alias/mgmt")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "NotFoundException".into(),
            "Invalid keyId 'alias/mgmt'".into()
        )
    );
}

#[tokio::test]
async fn keys_are_regional() {
    let server = Server::start();
    let east = server.client_in("us-east-1");
    let west = server.client_in("eu-west-1");
    let (id, arn) = new_key(&east).await;
    let err = west.describe_key().key_id(&id).send().await.unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
    assert_eq!(
        message(&err),
        format!("Key 'arn:aws:kms:eu-west-1:111122223333:key/{id}' does not exist")
    );
    let err = west.describe_key().key_id(&arn).send().await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("NotFoundException".into(), "Invalid arn us-east-1".into())
    );
    let ct = encrypt(&east, &id, "regional").await.unwrap();
    let err = decrypt(&west, ct.ciphertext_blob().unwrap().clone())
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidCiphertextException");
    assert!(west.list_keys().send().await.unwrap().keys().is_empty());
    let (west_id, _) = new_key(&west).await;
    let west_arn = west
        .describe_key()
        .key_id(&west_id)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .arn()
        .unwrap()
        .to_owned();
    assert!(west_arn.starts_with("arn:aws:kms:eu-west-1:111122223333:key/"));
}

#[tokio::test]
async fn create_key_refusals_follow_aws_and_create_nothing() {
    let server = Server::start();
    let kms = server.client_in("ca-central-1");
    let err = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "ValidationException".into(),
            "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys.".into()
        )
    );
    let err = kms
        .create_key()
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "KeyUsage SIGN_VERIFY is not compatible with KeySpec SYMMETRIC_DEFAULT"
    );
    let long_key = "k".repeat(129);
    let err = kms
        .create_key()
        .tags(
            Tag::builder()
                .tag_key(&long_key)
                .tag_value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        format!("1 validation error detected: Value '{long_key}' at 'tags.1.member.tagKey' failed to satisfy constraint: Member must have length less than or equal to 128")
    );
    let many: Vec<Tag> = (0..51)
        .map(|i| {
            Tag::builder()
                .tag_key(format!("k{i}"))
                .tag_value("v")
                .build()
                .unwrap()
        })
        .collect();
    let err = kms
        .create_key()
        .set_tags(Some(many))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("TagException".into(), "Too many tags".into())
    );
    let err = kms
        .create_key()
        .tags(
            Tag::builder()
                .tag_key("aws:x")
                .tag_value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert_eq!(message(&err), "Tags beginning with aws: are reserved");
    let err = kms
        .create_key()
        .policy("not json")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "MalformedPolicyDocumentException");
    let err = kms
        .create_key()
        .description("d".repeat(8193))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert!(kms.list_keys().send().await.unwrap().keys().is_empty());
}
