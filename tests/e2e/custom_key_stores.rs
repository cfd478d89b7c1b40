//! AWS_CLOUDHSM custom key stores over a real PKCS#11 token (SoftHSM2) that the config file
//! names as a CloudHSM cluster: creation and its refusals, description, connection with the
//! store's password (a wrong one leaves the store FAILED with INVALID_CREDENTIALS), updates
//! allowed by connection state, and deletion.

use std::path::{Path, PathBuf};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType, DataKeyPairSpec, KeySpec,
    KeyState, KeyUsageType, OriginType,
};
use aws_sdk_kms::Client;

use crate::harness::{code, message, Server};
use crate::hsm::{new_token, SOFTHSM_MODULE};

const CLUSTER: &str = "cluster-abcdefgHIJKL";
pub(crate) const ANCHOR: &str =
    "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
pub(crate) const PASSWORD: &str = "87654321";

/// A token labelled `cluster` and a config file naming it as that CloudHSM cluster; returns
/// the config file.
pub(crate) fn cluster_config(temp: &Path, cluster: &str) -> PathBuf {
    new_token(cluster, temp);
    let anchor = temp.join("customerCA.crt");
    std::fs::write(&anchor, ANCHOR).unwrap();
    let config = temp.join("ferrokms.toml");
    std::fs::write(
        &config,
        format!(
            "[[cloudhsm_clusters]]\nid = \"{cluster}\"\nmodule = \"{SOFTHSM_MODULE}\"\n\
             token_label = \"{cluster}\"\ntrust_anchor_file = \"{}\"\n",
            anchor.display()
        ),
    )
    .unwrap();
    config
}

#[tokio::test]
async fn a_cloudhsm_key_store_is_created_connected_updated_and_deleted_as_in_aws() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let config = cluster_config(temp.path(), CLUSTER);
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap()]);
    let kms = server.client();
    let create = |name: &str, cluster: &str, anchor: &str, password: &str| {
        kms.create_custom_key_store()
            .custom_key_store_name(name)
            .cloud_hsm_cluster_id(cluster)
            .trust_anchor_certificate(anchor)
            .key_store_password(password)
            .send()
    };

    let err = create("a", "cluster-1bad", ANCHOR, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let err = create("a", "cluster-zzzzzzzzzzzz", ANCHOR, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CloudHsmClusterNotFoundException");
    let err = create(
        "a",
        CLUSTER,
        "-----BEGIN CERTIFICATE-----\nother\n-----END CERTIFICATE-----",
        PASSWORD,
    )
    .await
    .unwrap_err();
    assert_eq!(code(&err), "IncorrectTrustAnchorException");
    let err = kms
        .create_custom_key_store()
        .custom_key_store_name("x")
        .custom_key_store_type(CustomKeyStoreType::ExternalKeyStore)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "ValidationException",
        "an external store needs its proxy"
    );

    let id = create("payments", CLUSTER, ANCHOR, "wrong-password")
        .await
        .unwrap()
        .custom_key_store_id()
        .unwrap()
        .to_owned();
    assert!(id.starts_with("cks-") && id.len() == 21, "{id}");
    let err = create("payments", "cluster-zzzzzzzzzzzz", ANCHOR, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CloudHsmClusterNotFoundException");
    let err = create("other", CLUSTER, ANCHOR, PASSWORD)
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CloudHsmClusterInUseException");

    let all = kms.describe_custom_key_stores().send().await.unwrap();
    let entry = &all.custom_key_stores()[0];
    assert_eq!(all.custom_key_stores().len(), 1);
    assert_eq!(entry.custom_key_store_name(), Some("payments"));
    assert_eq!(entry.cloud_hsm_cluster_id(), Some(CLUSTER));
    assert_eq!(entry.trust_anchor_certificate(), Some(ANCHOR));
    assert_eq!(
        entry.custom_key_store_type(),
        Some(&CustomKeyStoreType::AwsCloudhsm)
    );
    assert_eq!(
        entry.connection_state(),
        Some(&ConnectionStateType::Disconnected)
    );
    assert!(entry.creation_date().is_some());
    let by_name = kms
        .describe_custom_key_stores()
        .custom_key_store_name("payments")
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_name.custom_key_stores()[0].custom_key_store_id(),
        Some(id.as_str())
    );
    let err = kms
        .describe_custom_key_stores()
        .custom_key_store_id("cks-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreNotFoundException");

    // The token refuses the password: the call succeeds, the store is FAILED.
    crate::connect_store(&kms, &id).await;
    assert_eq!(
        crate::store_state(&kms, &id).await,
        (
            ConnectionStateType::Failed,
            Some(ConnectionErrorCodeType::InvalidCredentials)
        )
    );
    let err = kms
        .connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreInvalidStateException");
    crate::disconnect_store(&kms, &id).await.unwrap();
    assert_eq!(
        crate::store_state(&kms, &id).await,
        (ConnectionStateType::Disconnected, None)
    );
    assert_eq!(
        crate::disconnect_store(&kms, &id).await,
        Err("CustomKeyStoreInvalidStateException".into())
    );

    // With the right password it connects; while connected only the name may change.
    kms.update_custom_key_store()
        .custom_key_store_id(&id)
        .key_store_password(PASSWORD)
        .send()
        .await
        .unwrap();
    crate::connect_store(&kms, &id).await;
    assert_eq!(
        crate::store_state(&kms, &id).await,
        (ConnectionStateType::Connected, None)
    );
    crate::connect_store(&kms, &id).await;
    let err = kms
        .update_custom_key_store()
        .custom_key_store_id(&id)
        .key_store_password("another-one")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreInvalidStateException");
    kms.update_custom_key_store()
        .custom_key_store_id(&id)
        .new_custom_key_store_name("payments-2")
        .send()
        .await
        .unwrap();
    assert_eq!(
        crate::delete_store(&kms, &id).await,
        Err("CustomKeyStoreInvalidStateException".into())
    );

    // Another store's name is taken; its own new name is kept across a restart.
    server.stop();
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap()]);
    let kms = server.client();
    let all = kms.describe_custom_key_stores().send().await.unwrap();
    assert_eq!(
        all.custom_key_stores()[0].custom_key_store_name(),
        Some("payments-2")
    );
    crate::disconnect_store(&kms, &id).await.unwrap();
    crate::delete_store(&kms, &id).await.unwrap();
    let err = kms
        .describe_custom_key_stores()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreNotFoundException");
    let none = kms.describe_custom_key_stores().send().await.unwrap();
    assert!(none.custom_key_stores().is_empty());
}

async fn connected_store(kms: &Client, cluster: &str) -> String {
    let id = kms
        .create_custom_key_store()
        .custom_key_store_name("in-the-token")
        .cloud_hsm_cluster_id(cluster)
        .trust_anchor_certificate(ANCHOR)
        .key_store_password(PASSWORD)
        .send()
        .await
        .unwrap()
        .custom_key_store_id()
        .unwrap()
        .to_owned();
    crate::connect_store(kms, &id).await;
    id
}

async fn encrypt_with(kms: &Client, key: &str, text: &str) -> Blob {
    kms.encrypt()
        .key_id(key)
        .plaintext(Blob::new(text))
        .encryption_context("purpose", "e2e")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone()
}

async fn decrypt_with(
    kms: &Client,
    blob: &Blob,
) -> Result<Vec<u8>, aws_sdk_kms::error::SdkError<aws_sdk_kms::operation::decrypt::DecryptError>> {
    kms.decrypt()
        .ciphertext_blob(blob.clone())
        .encryption_context("purpose", "e2e")
        .send()
        .await
        .map(|o| o.plaintext().unwrap().as_ref().to_vec())
}

#[tokio::test]
async fn keys_of_a_cloudhsm_key_store_live_and_work_in_its_token() {
    let cluster = "cluster-tokenKEYSabcd";
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let config = cluster_config(temp.path(), cluster);
    let args = ["--config", config.to_str().unwrap()];
    let server = Server::start_in(&dir, &args);
    let kms = server.client();
    let store = connected_store(&kms, cluster).await;

    // What AWS refuses in a custom key store.
    let create = || kms.create_key().custom_key_store_id(&store);
    let err = create().send().await.unwrap_err();
    assert_eq!(
        code(&err),
        "UnsupportedOperationException",
        "Origin must be AWS_CLOUDHSM"
    );
    let err = create()
        .origin(OriginType::AwsCloudhsm)
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::EncryptDecrypt)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    let err = create()
        .origin(OriginType::AwsCloudhsm)
        .multi_region(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    let err = kms
        .create_key()
        .origin(OriginType::AwsCloudhsm)
        .custom_key_store_id("cks-00000000000000000")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreNotFoundException");

    let made = create()
        .origin(OriginType::AwsCloudhsm)
        .send()
        .await
        .unwrap();
    let meta = made.key_metadata().unwrap();
    assert_eq!(meta.origin(), Some(&OriginType::AwsCloudhsm));
    assert_eq!(meta.custom_key_store_id(), Some(store.as_str()));
    assert_eq!(meta.cloud_hsm_cluster_id(), Some(cluster));
    assert_eq!(meta.key_state(), Some(&KeyState::Enabled));
    let key = meta.arn().unwrap().to_owned();
    let (plain_key, _) = crate::new_key(&kms).await;

    let blob = encrypt_with(&kms, &key, "sealed in the token").await;
    assert_eq!(
        decrypt_with(&kms, &blob).await.unwrap(),
        b"sealed in the token"
    );
    let err = kms
        .decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "InvalidCiphertextException",
        "the context is bound"
    );
    let data_key = kms
        .generate_data_key()
        .key_id(&key)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let opened = decrypt_with_no_context(&kms, data_key.ciphertext_blob().unwrap()).await;
    assert_eq!(opened, data_key.plaintext().unwrap().as_ref());
    // ReEncrypt moves a ciphertext out of the token and back.
    let moved = kms
        .re_encrypt()
        .ciphertext_blob(blob.clone())
        .source_encryption_context("purpose", "e2e")
        .destination_key_id(&plain_key)
        .destination_encryption_context("purpose", "e2e")
        .send()
        .await
        .unwrap();
    let back = kms
        .re_encrypt()
        .ciphertext_blob(moved.ciphertext_blob().unwrap().clone())
        .source_encryption_context("purpose", "e2e")
        .destination_key_id(&key)
        .destination_encryption_context("purpose", "e2e")
        .send()
        .await
        .unwrap();
    assert_eq!(
        decrypt_with(&kms, back.ciphertext_blob().unwrap())
            .await
            .unwrap(),
        b"sealed in the token"
    );
    let random = kms
        .generate_random()
        .number_of_bytes(32)
        .custom_key_store_id(&store)
        .send()
        .await
        .unwrap();
    assert_eq!(random.plaintext().unwrap().as_ref().len(), 32);
    let err = kms
        .generate_data_key_pair()
        .key_id(&key)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    let err = kms
        .enable_key_rotation()
        .key_id(&key)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    assert_eq!(
        crate::delete_store(&kms, &store).await,
        Err("CustomKeyStoreInvalidStateException".into())
    );

    // Disconnected: its keys are Unavailable, other keys keep working.
    crate::disconnect_store(&kms, &store).await.unwrap();
    let err = decrypt_with(&kms, &blob).await.unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    assert_eq!(message(&err), format!("{key} is unavailable."));
    let err = kms
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    let shown = kms.describe_key().key_id(&key).send().await.unwrap();
    assert_eq!(
        shown.key_metadata().unwrap().key_state(),
        Some(&KeyState::Unavailable)
    );
    let err = kms
        .generate_random()
        .number_of_bytes(8)
        .custom_key_store_id(&store)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreInvalidStateException");
    let err = create()
        .origin(OriginType::AwsCloudhsm)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreInvalidStateException");
    assert_eq!(
        crate::delete_store(&kms, &store).await,
        Err("CustomKeyStoreHasCMKsException".into())
    );
    let other = encrypt_with(&kms, &plain_key, "not in a store").await;
    assert_eq!(decrypt_with(&kms, &other).await.unwrap(), b"not in a store");

    // Connected again, and after a restart (which logs in to the token anew), it works.
    crate::connect_store(&kms, &store).await;
    assert_eq!(
        decrypt_with(&kms, &blob).await.unwrap(),
        b"sealed in the token"
    );
    server.stop();
    let server = Server::start_in(&dir, &args);
    let kms = server.client();
    assert_eq!(
        decrypt_with(&kms, &blob).await.unwrap(),
        b"sealed in the token"
    );
    server.stop();

    // The key lives only in the token: with the token gone, nothing ferrokms keeps opens it.
    let out = std::process::Command::new("softhsm2-util")
        .args(["--delete-token", "--token", cluster])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let server = Server::start_in(&dir, &args);
    let kms = server.client();
    let err = decrypt_with(&kms, &blob).await.unwrap_err();
    assert_eq!(code(&err), "KMSInvalidStateException");
    assert_eq!(decrypt_with(&kms, &other).await.unwrap(), b"not in a store");
}

async fn decrypt_with_no_context(kms: &Client, blob: &Blob) -> Vec<u8> {
    kms.decrypt()
        .ciphertext_blob(blob.clone())
        .send()
        .await
        .unwrap()
        .plaintext()
        .unwrap()
        .as_ref()
        .to_vec()
}

/// The labels of the secret keys in a token, as OpenSC's pkcs11-tool (a PKCS#11 client of
/// its own) lists them.
fn token_key_labels(token: &str) -> Vec<String> {
    let out = std::process::Command::new("pkcs11-tool")
        .args([
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            token,
            "--login",
        ])
        .args(["--pin", PASSWORD, "--list-objects", "--type", "secrkey"])
        .output()
        .expect("pkcs11-tool runs (apt-get install opensc)");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().strip_prefix("label:"))
        .map(|l| l.trim().to_owned())
        .collect()
}

#[tokio::test]
async fn a_deleted_key_takes_its_token_key_with_it() {
    let cluster = "cluster-deletionABCD";
    let temp = tempfile::tempdir().unwrap();
    let config = cluster_config(temp.path(), cluster);
    let server = Server::start_in(
        temp.path(),
        &[
            "--dev",
            "--ephemeral",
            "--debug-clock",
            "--config",
            config.to_str().unwrap(),
        ],
    );
    let kms = server.client();
    let store = connected_store(&kms, cluster).await;
    // As in AWS, a CloudHSM store's key shows no CurrentKeyMaterialId: each key's token key
    // is the label its creation added.
    let mut keys = Vec::new();
    for _ in 0..2 {
        let before = token_key_labels(cluster);
        let made = kms
            .create_key()
            .custom_key_store_id(&store)
            .origin(OriginType::AwsCloudhsm)
            .send()
            .await
            .unwrap();
        let meta = made.key_metadata().unwrap();
        assert_eq!(meta.current_key_material_id(), None);
        let added: Vec<String> = token_key_labels(cluster)
            .into_iter()
            .filter(|l| !before.contains(l))
            .collect();
        assert_eq!(added.len(), 1, "{added:?}");
        assert!(added[0].starts_with("ferrokms:"), "{added:?}");
        keys.push((meta.key_id().to_owned(), added[0].clone()));
    }
    let mut labels = token_key_labels(cluster);
    labels.sort();
    let mut expected: Vec<String> = keys.iter().map(|(_, l)| l.clone()).collect();
    expected.sort();
    assert_eq!(labels, expected, "one token key per KMS key, nothing else");

    kms.schedule_key_deletion()
        .key_id(&keys[0].0)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    server.advance_clock_days(8);
    assert_eq!(server.run_jobs().1, 1);
    assert_eq!(token_key_labels(cluster), vec![keys[1].1.clone()]);
    assert_eq!(
        crate::delete_store(&kms, &store).await,
        Err("CustomKeyStoreInvalidStateException".into())
    );
    crate::disconnect_store(&kms, &store).await.unwrap();
    assert_eq!(
        crate::delete_store(&kms, &store).await,
        Err("CustomKeyStoreHasCMKsException".into())
    );
}
