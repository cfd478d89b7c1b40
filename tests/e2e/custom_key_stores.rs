//! AWS_CLOUDHSM custom key stores over a real PKCS#11 token (SoftHSM2) that the config file
//! names as a CloudHSM cluster: creation and its refusals, description, connection with the
//! store's password (a wrong one leaves the store FAILED with INVALID_CREDENTIALS), updates
//! allowed by connection state, and deletion.

use aws_sdk_kms::types::{ConnectionErrorCodeType, ConnectionStateType, CustomKeyStoreType};
use aws_sdk_kms::Client;

use crate::harness::{code, Server};
use crate::hsm::{new_token, SOFTHSM_MODULE};

const CLUSTER: &str = "cluster-abcdefgHIJKL";
const ANCHOR: &str = "-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----\n";
const PASSWORD: &str = "87654321";

async fn state(kms: &Client, id: &str) -> (ConnectionStateType, Option<ConnectionErrorCodeType>) {
    let out = kms
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
        .unwrap();
    let entry = &out.custom_key_stores()[0];
    (
        entry.connection_state().unwrap().clone(),
        entry.connection_error_code().cloned(),
    )
}

#[tokio::test]
async fn a_cloudhsm_key_store_is_created_connected_updated_and_deleted_as_in_aws() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    new_token(CLUSTER, temp.path());
    let anchor = temp.path().join("customerCA.crt");
    std::fs::write(&anchor, ANCHOR).unwrap();
    let config = temp.path().join("ferrokms.toml");
    std::fs::write(
        &config,
        format!(
            "[[cloudhsm_clusters]]\nid = \"{CLUSTER}\"\nmodule = \"{SOFTHSM_MODULE}\"\n\
             token_label = \"{CLUSTER}\"\ntrust_anchor_file = \"{}\"\n",
            anchor.display()
        ),
    )
    .unwrap();
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
    assert_eq!(code(&err), "UnsupportedOperationException");

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
    kms.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state(&kms, &id).await,
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
    kms.disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state(&kms, &id).await,
        (ConnectionStateType::Disconnected, None)
    );
    let err = kms
        .disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreInvalidStateException");

    // With the right password it connects; while connected only the name may change.
    kms.update_custom_key_store()
        .custom_key_store_id(&id)
        .key_store_password(PASSWORD)
        .send()
        .await
        .unwrap();
    kms.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        state(&kms, &id).await,
        (ConnectionStateType::Connected, None)
    );
    kms.connect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
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
    let err = kms
        .delete_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "CustomKeyStoreInvalidStateException");

    // Another store's name is taken; its own new name is kept across a restart.
    server.stop();
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap()]);
    let kms = server.client();
    let all = kms.describe_custom_key_stores().send().await.unwrap();
    assert_eq!(
        all.custom_key_stores()[0].custom_key_store_name(),
        Some("payments-2")
    );
    kms.disconnect_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
    kms.delete_custom_key_store()
        .custom_key_store_id(&id)
        .send()
        .await
        .unwrap();
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
