//! Helpers the test modules share: keys, encryption, policy documents.

use aws_sdk_kms::Client;

/// Creates a symmetric key; returns (key id, key ARN).
pub async fn new_key(client: &Client) -> (String, String) {
    let out = client.create_key().send().await.expect("create key");
    let meta = out.key_metadata().expect("metadata");
    (
        meta.key_id().to_owned(),
        meta.arn().expect("arn").to_owned(),
    )
}

/// Encrypt with no encryption context.
pub async fn encrypt(
    client: &Client,
    key: &str,
    plaintext: impl Into<Vec<u8>>,
) -> Result<
    aws_sdk_kms::operation::encrypt::EncryptOutput,
    aws_sdk_kms::error::SdkError<aws_sdk_kms::operation::encrypt::EncryptError>,
> {
    client
        .encrypt()
        .key_id(key)
        .plaintext(aws_sdk_kms::primitives::Blob::new(plaintext))
        .send()
        .await
}

/// Decrypt with no encryption context and no KeyId.
pub async fn decrypt(
    client: &Client,
    blob: aws_sdk_kms::primitives::Blob,
) -> Result<
    aws_sdk_kms::operation::decrypt::DecryptOutput,
    aws_sdk_kms::error::SdkError<aws_sdk_kms::operation::decrypt::DecryptError>,
> {
    client.decrypt().ciphertext_blob(blob).send().await
}

/// A key policy document of these statements.
pub fn policy(statements: serde_json::Value) -> String {
    serde_json::json!({"Version": "2012-10-17", "Statement": statements}).to_string()
}

/// The statement of AWS's default key policy: the account's root may do everything, so IAM
/// policies decide for the account's principals.
pub fn root_allows_all(account: &str) -> serde_json::Value {
    serde_json::json!({
        "Sid": "Enable IAM User Permissions",
        "Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{account}:root")},
        "Action": "kms:*",
        "Resource": "*"
    })
}

/// ConnectCustomKeyStore, which answers 200 whatever then happens to the connection.
pub async fn connect_store(kms: &Client, id: &str) {
    kms.connect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("ConnectCustomKeyStore");
}

/// DisconnectCustomKeyStore; the error code if it is refused.
pub async fn disconnect_store(kms: &Client, id: &str) -> Result<(), String> {
    kms.disconnect_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| crate::harness::code(&e))
}

/// DeleteCustomKeyStore; the error code if it is refused.
pub async fn delete_store(kms: &Client, id: &str) -> Result<(), String> {
    kms.delete_custom_key_store()
        .custom_key_store_id(id)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| crate::harness::code(&e))
}

/// A custom key store's connection state and error code, as DescribeCustomKeyStores tells.
pub async fn store_state(
    kms: &Client,
    id: &str,
) -> (
    aws_sdk_kms::types::ConnectionStateType,
    Option<aws_sdk_kms::types::ConnectionErrorCodeType>,
) {
    let out = kms
        .describe_custom_key_stores()
        .custom_key_store_id(id)
        .send()
        .await
        .expect("DescribeCustomKeyStores");
    let entry = &out.custom_key_stores()[0];
    (
        entry.connection_state().expect("a state").clone(),
        entry.connection_error_code().cloned(),
    )
}
