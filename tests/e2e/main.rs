//! End-to-end tests: the real `ferrokms` binary over real HTTP, driven by the real
//! `aws-sdk-kms` client (and by raw requests signed with `aws-sigv4` where a client would not
//! send what we need to test).

mod aliases;
mod auth;
mod cli;
mod crypto;
mod harness;
mod keys;
mod persistence;
mod protocol;
mod tags;

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
