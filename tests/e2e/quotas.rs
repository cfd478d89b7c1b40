//! Quotas as AWS applies them: request rates per account and region (ThrottlingException,
//! which the SDKs retry) and limits on resources (LimitExceededException), set in the
//! config's `[quotas]`.

use std::time::Duration;

use aws_sdk_kms::config::retry::RetryConfig;
use aws_sdk_kms::Client;

use crate::harness::{code, message, Server, REGION};
use crate::{encrypt, new_key, policy, root_allows_all};

fn start_with_quotas(temp: &tempfile::TempDir, quotas: &str) -> Server {
    let config = temp.path().join("ferrokms.toml");
    std::fs::write(&config, format!("[quotas]\n{quotas}\n")).unwrap();
    Server::start_in(
        &temp.path().join("data"),
        &["--config", config.to_str().unwrap(), "--quotas", "on"],
    )
}

#[tokio::test]
async fn a_burst_beyond_the_rate_is_throttled_and_the_rest_succeeds() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_quotas(&temp, "symmetric = 20");
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let (kms, id) = (kms.clone(), id.clone());
            tokio::spawn(async move { encrypt(&kms, &id, "burst").await })
        })
        .collect();
    let (mut ok, mut throttled) = (0, 0);
    for call in calls {
        match call.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => {
                assert_eq!(code(&e), "ThrottlingException");
                assert_eq!(
                    message(&e),
                    "You have exceeded the rate at which you may call KMS. Reduce the frequency of your calls."
                );
                assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(400));
                throttled += 1;
            }
        }
    }
    assert!(ok >= 20, "a second's worth goes through: {ok}");
    assert!(throttled >= 1, "the rest of the burst is throttled");
    // Control-plane operations have buckets of their own.
    kms.describe_key().key_id(&id).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let blob = encrypt(&kms, &id, "after a second")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    // Decrypt finds its key in the blob, and counts against the same class.
    let calls: Vec<_> = (0..40)
        .map(|_| {
            let (kms, blob) = (kms.clone(), blob.clone());
            tokio::spawn(async move { crate::decrypt(&kms, blob).await })
        })
        .collect();
    let mut throttled = 0;
    for call in calls {
        if let Err(e) = call.await.unwrap() {
            assert_eq!(code(&e), "ThrottlingException");
            throttled += 1;
        }
    }
    assert!(throttled >= 1, "decrypts are counted too");
}

#[tokio::test]
async fn the_sdk_retry_turns_throttling_into_success() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_quotas(&temp, "[quotas.operations]\nCreateKey = 2");
    let config = aws_sdk_kms::Config::builder()
        .behavior_version(aws_sdk_kms::config::BehaviorVersion::latest())
        .region(aws_sdk_kms::config::Region::new(REGION))
        .credentials_provider(aws_credential_types::Credentials::new(
            &server.access_key_id,
            &server.secret_access_key,
            None,
            None,
            "test",
        ))
        .endpoint_url(&server.endpoint)
        .retry_config(
            RetryConfig::standard()
                .with_max_attempts(10)
                .with_initial_backoff(Duration::from_millis(200)),
        )
        .build();
    let retrying = Client::from_conf(config);
    let without_retry = server.client();
    new_key(&without_retry).await;
    new_key(&without_retry).await;
    let err = without_retry.create_key().send().await.unwrap_err();
    assert_eq!(code(&err), "ThrottlingException");
    for _ in 0..4 {
        new_key(&retrying).await;
    }
    let keys = without_retry.list_keys().send().await.unwrap();
    assert_eq!(keys.keys().len(), 6);
}

#[tokio::test]
async fn resource_quotas_refuse_the_one_too_many() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_quotas(
        &temp,
        "keys_per_region = 2\naliases_per_key = 2\ngrants_per_key = 2\ntags_per_key = 3\n\
         key_policy_bytes = 600\nenabled = false",
    );
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    new_key(&kms).await;
    let err = kms.create_key().send().await.unwrap_err();
    assert_eq!(code(&err), "LimitExceededException");
    assert!(message(&err).contains("quota"), "{}", message(&err));

    for name in ["alias/one", "alias/two"] {
        kms.create_alias()
            .alias_name(name)
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
    }
    let err = kms
        .create_alias()
        .alias_name("alias/three")
        .target_key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "LimitExceededException");

    for n in 0..2 {
        kms.create_grant()
            .key_id(&id)
            .grantee_principal(format!("arn:aws:iam::111122223333:user/u{n}"))
            .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
            .send()
            .await
            .unwrap();
    }
    let err = kms
        .create_grant()
        .key_id(&id)
        .grantee_principal("arn:aws:iam::111122223333:user/u2")
        .operations(aws_sdk_kms::types::GrantOperation::Encrypt)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "LimitExceededException");

    let tag = |k: &str| {
        aws_sdk_kms::types::Tag::builder()
            .tag_key(k)
            .tag_value("v")
            .build()
            .unwrap()
    };
    kms.tag_resource()
        .key_id(&id)
        .tags(tag("a"))
        .tags(tag("b"))
        .tags(tag("c"))
        .send()
        .await
        .unwrap();
    let err = kms
        .tag_resource()
        .key_id(&id)
        .tags(tag("d"))
        .send()
        .await
        .unwrap_err();
    assert!(
        ["LimitExceededException", "TagException"].contains(&code(&err).as_str()),
        "{}",
        code(&err)
    );

    let small = policy(serde_json::json!([root_allows_all("111122223333")]));
    kms.put_key_policy()
        .key_id(&id)
        .policy(&small)
        .send()
        .await
        .unwrap();
    let padded = policy(serde_json::json!([
        root_allows_all("111122223333"),
        {"Sid": "x".repeat(400), "Effect": "Deny", "Principal": "*", "Action": "kms:Sign", "Resource": "*"}
    ]));
    let err = kms
        .put_key_policy()
        .key_id(&id)
        .policy(padded)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "LimitExceededException");
}

/// GenerateDataKeyPair* has a rate per KeyPairSpec (RSA_4096 at 1 per second in AWS).
#[tokio::test]
async fn data_key_pairs_are_throttled_by_their_spec() {
    use aws_sdk_kms::types::DataKeyPairSpec;
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_quotas(&temp, "[quotas.data_key_pairs]\nRSA_2048 = 2");
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let burst = |spec: DataKeyPairSpec| {
        let calls: Vec<_> = (0..6)
            .map(|_| {
                let (kms, id, spec) = (kms.clone(), id.clone(), spec.clone());
                tokio::spawn(async move {
                    kms.generate_data_key_pair_without_plaintext()
                        .key_id(id)
                        .key_pair_spec(spec)
                        .send()
                        .await
                })
            })
            .collect::<Vec<_>>();
        async move {
            let mut throttled = 0;
            for call in calls {
                if let Err(e) = call.await.unwrap() {
                    assert_eq!(code(&e), "ThrottlingException");
                    throttled += 1;
                }
            }
            throttled
        }
    };
    let throttled = burst(DataKeyPairSpec::Rsa2048).await;
    assert!((1..=4).contains(&throttled), "{throttled} of 6 throttled");
    assert_eq!(
        burst(DataKeyPairSpec::EccNistP256).await,
        0,
        "ECC pairs have a rate of their own (100 per second)"
    );
}

/// A key may carry more tags than AWS's 50 when the quota says so, and policy conditions on
/// resource tags see every one of them.
#[tokio::test]
async fn conditions_see_every_tag_a_raised_quota_allows() {
    use aws_sdk_kms::types::Tag;
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_quotas(&temp, "tags_per_key = 60");
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let tags: Vec<Tag> = (0..56)
        .map(|i| {
            Tag::builder()
                .tag_key(format!("t{i:02}"))
                .tag_value(if i == 55 { "deny" } else { "v" })
                .build()
                .unwrap()
        })
        .collect();
    kms.tag_resource()
        .key_id(&id)
        .set_tags(Some(tags))
        .send()
        .await
        .unwrap();
    let deny_by_last_tag = serde_json::json!({
        "Effect": "Deny",
        "Principal": "*",
        "Action": "kms:Encrypt",
        "Resource": "*",
        "Condition": {"StringEquals": {"aws:ResourceTag/t55": "deny"}}
    });
    kms.put_key_policy()
        .key_id(&id)
        .policy(policy(serde_json::json!([
            root_allows_all("111122223333"),
            deny_by_last_tag
        ])))
        .send()
        .await
        .unwrap();
    let err = encrypt(&kms, &id, "x").await.unwrap_err();
    assert_eq!(code(&err), "AccessDeniedException");
}

#[tokio::test]
async fn sts_and_lookup_events_are_rate_limited_like_kms() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_quotas(
        &temp,
        "[quotas.operations]\nLookupEvents = 2\nGetCallerIdentity = 3",
    );
    let now = std::time::SystemTime::now;
    let lookups: Vec<u16> = (0..6)
        .map(|_| {
            server
                .signed("cloudtrail", Some(crate::harness::LOOKUP), b"{}", now())
                .status
        })
        .collect();
    assert!(
        lookups.iter().filter(|s| **s == 200).count() >= 2,
        "{lookups:?}"
    );
    let throttled = server.signed("cloudtrail", Some(crate::harness::LOOKUP), b"{}", now());
    assert_eq!(throttled.status, 400, "{}", throttled.body);
    assert!(
        throttled.body.contains("ThrottlingException"),
        "{}",
        throttled.body
    );

    let body = b"Action=GetCallerIdentity&Version=2011-06-15";
    let answers: Vec<u16> = (0..8)
        .map(|_| server.signed("sts", None, body, now()).status)
        .collect();
    assert!(
        answers.iter().filter(|s| **s == 200).count() >= 3,
        "{answers:?}"
    );
    let throttled = server.signed("sts", None, body, now());
    assert_eq!(throttled.status, 400, "{}", throttled.body);
    assert!(
        throttled.body.contains("<Code>Throttling</Code>"),
        "{}",
        throttled.body
    );
    // KMS itself is not slowed by either.
    server.client().list_keys().send().await.unwrap();
}

/// The limit of on-demand rotations is AWS's 25 by default and the config's when set, for
/// generated and imported material alike.
#[tokio::test]
async fn the_on_demand_rotation_limit_is_configurable() {
    let temp = tempfile::tempdir().unwrap();
    let server = start_with_quotas(&temp, "on_demand_rotations_per_key = 2");
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    for _ in 0..2 {
        kms.rotate_key_on_demand().key_id(&id).send().await.unwrap();
    }
    let err = kms
        .rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "LimitExceededException".to_owned(),
            format!("The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {arn}")
        )
    );
}
