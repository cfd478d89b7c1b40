//! Where the model is silent and ferrokms used to answer differently from AWS (issue 19):
//! each behaviour through the real SDK.

use aws_sdk_kms::types::{KeySpec, KeyUsageType, OriginType, Tag};
use aws_sdk_kms::Client;

use crate::harness::{code, message, Server};

/// Spec, usage, origin, multi-Region: what CreateKey is given.
type KeyKind = (
    Option<KeySpec>,
    Option<KeyUsageType>,
    Option<OriginType>,
    bool,
);

/// A key of each kind Terraform's `aws_kms_key` can make: (key id, ARN, origin AWS_KMS).
async fn one_key_of_each_kind(kms: &Client) -> Vec<(String, String, bool)> {
    let mut keys = Vec::new();
    let kinds: [KeyKind; 7] = [
        (None, None, None, false),
        (None, None, None, true),
        (
            Some(KeySpec::Rsa2048),
            Some(KeyUsageType::EncryptDecrypt),
            None,
            false,
        ),
        (
            Some(KeySpec::Rsa3072),
            Some(KeyUsageType::SignVerify),
            None,
            false,
        ),
        (
            Some(KeySpec::EccNistP256),
            Some(KeyUsageType::SignVerify),
            None,
            false,
        ),
        (
            Some(KeySpec::Hmac256),
            Some(KeyUsageType::GenerateVerifyMac),
            None,
            false,
        ),
        (None, None, Some(OriginType::External), false),
    ];
    for (spec, usage, origin, multi_region) in kinds {
        let made = kms
            .create_key()
            .set_key_spec(spec)
            .set_key_usage(usage)
            .set_origin(origin.clone())
            .multi_region(multi_region)
            .send()
            .await
            .unwrap();
        let meta = made.key_metadata().unwrap();
        keys.push((
            meta.key_id().to_owned(),
            meta.arn().unwrap().to_owned(),
            origin.is_none(),
        ));
    }
    keys
}

#[tokio::test]
async fn terraform_reads_every_kind_of_key() {
    let server = Server::start();
    let kms = server.client();
    for (id, arn, aws_kms_origin) in one_key_of_each_kind(&kms).await {
        // What the provider's read does, in its order.
        let described = kms.describe_key().key_id(&id).send().await.unwrap();
        let meta = described.key_metadata().unwrap();
        kms.get_key_policy().key_id(&id).send().await.unwrap();
        kms.list_resource_tags().key_id(&id).send().await.unwrap();
        let rotation = kms.get_key_rotation_status().key_id(&id).send().await;
        if !aws_kms_origin {
            // The provider asks only keys of origin AWS_KMS; AWS refuses the others.
            let err = rotation.unwrap_err();
            assert_eq!(
                (code(&err), message(&err)),
                (
                    "UnsupportedOperationException".to_owned(),
                    format!("{arn} origin is EXTERNAL which is not valid for this operation.")
                )
            );
            continue;
        }
        let status = rotation.unwrap_or_else(|e| panic!("{:?}: {e:?}", meta.key_spec()));
        assert!(!status.key_rotation_enabled(), "{:?}", meta.key_spec());
        assert_eq!(status.key_id(), Some(arn.as_str()));
        assert_eq!(status.rotation_period_in_days(), None);
        assert!(status.next_rotation_date().is_none());
    }
}

#[tokio::test]
async fn a_key_that_cannot_rotate_is_refused_for_its_state_first() {
    let server = Server::start();
    let kms = server.client();
    let rsa = kms
        .create_key()
        .key_spec(KeySpec::Rsa2048)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let rsa = rsa.key_metadata().unwrap().arn().unwrap().to_owned();

    // Enabled: the spec is what is wrong, and AWS says so without a message.
    let err = kms
        .rotate_key_on_demand()
        .key_id(&rsa)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("UnsupportedOperationException".to_owned(), String::new())
    );

    // Disabled: the state is checked first (recorded on AWS for RotateKeyOnDemand).
    kms.disable_key().key_id(&rsa).send().await.unwrap();
    let disabled = (
        "DisabledException".to_owned(),
        format!("{rsa} is disabled."),
    );
    let err = kms
        .rotate_key_on_demand()
        .key_id(&rsa)
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&err), message(&err)), disabled);
    let err = kms
        .enable_key_rotation()
        .key_id(&rsa)
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&err), message(&err)), disabled);
    let err = kms
        .disable_key_rotation()
        .key_id(&rsa)
        .send()
        .await
        .unwrap_err();
    assert_eq!((code(&err), message(&err)), disabled);
    // Reading the status is allowed in every state.
    let status = kms
        .get_key_rotation_status()
        .key_id(&rsa)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());

    // An imported key rotates on demand to imported material (AWS, 2025): one without any is
    // refused for its state; automatic rotation stays refused for its origin (the answer
    // AWS was recorded giving before 2025, and still documents for automatic rotation).
    let external = kms
        .create_key()
        .origin(OriginType::External)
        .send()
        .await
        .unwrap();
    let external = external.key_metadata().unwrap().arn().unwrap().to_owned();
    let err = kms
        .rotate_key_on_demand()
        .key_id(&external)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "KMSInvalidStateException".to_owned(),
            format!("{external} is pending import.")
        )
    );
    let err = kms
        .enable_key_rotation()
        .key_id(&external)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "UnsupportedOperationException".to_owned(),
            format!("{external} origin is EXTERNAL which is not valid for this operation.")
        )
    );
}

#[tokio::test]
async fn the_aws_tag_prefix_is_reserved_in_any_case() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = crate::new_key(&kms).await;
    for key in ["aws:x", "AWS:x", "Aws:team"] {
        let tag = Tag::builder().tag_key(key).tag_value("v").build().unwrap();
        let err = kms
            .tag_resource()
            .key_id(&id)
            .tags(tag.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            (code(&err), message(&err)),
            (
                "TagException".to_owned(),
                "Tags beginning with aws: are reserved".to_owned()
            ),
            "{key}"
        );
        let err = kms.create_key().tags(tag).send().await.unwrap_err();
        assert_eq!(code(&err), "TagException", "{key}");
    }
    let tags = kms.list_resource_tags().key_id(&id).send().await.unwrap();
    assert!(tags.tags().is_empty(), "nothing was tagged");
    // Not the prefix: allowed.
    let fine = Tag::builder()
        .tag_key("awsome")
        .tag_value("v")
        .build()
        .unwrap();
    kms.tag_resource()
        .key_id(&id)
        .tags(fine)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_new_alias_name_has_no_colon() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = crate::new_key(&kms).await;
    let err = kms
        .create_alias()
        .alias_name("alias/my:alias")
        .target_key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "ValidationException".to_owned(),
            "alias/my:alias contains invalid characters for an alias".to_owned()
        )
    );
    let aliases = kms.list_aliases().key_id(&id).send().await.unwrap();
    assert!(aliases.aliases().is_empty(), "no alias was made");
    for fine in ["alias/my-alias_/", "alias/my_alias-/x"] {
        kms.create_alias()
            .alias_name(fine)
            .target_key_id(&id)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn get_key_last_usage_names_the_last_successful_cryptographic_call() {
    use aws_sdk_kms::operation::RequestId;
    use aws_sdk_kms::primitives::Blob;
    use aws_sdk_kms::types::SigningAlgorithmSpec;

    let server = Server::start();
    let kms = server.client();
    let (id, arn) = crate::new_key(&kms).await;
    let fresh = kms.get_key_last_usage().key_id(&id).send().await.unwrap();
    assert_eq!(fresh.key_id(), Some(id.as_str()));
    assert!(fresh.key_last_usage().is_none(), "never used");
    let created = fresh.key_creation_date().unwrap().secs();
    assert!(fresh.tracking_start_date().unwrap().secs() >= created);

    let encrypted = crate::encrypt(&kms, &id, "x").await.unwrap();
    let request_id = encrypted.request_id().unwrap().to_owned();
    // Neither a read nor a failed call is a use.
    kms.describe_key().key_id(&id).send().await.unwrap();
    kms.decrypt()
        .key_id(&id)
        .ciphertext_blob(Blob::new(vec![1u8; 64]))
        .send()
        .await
        .unwrap_err();
    let used = kms.get_key_last_usage().key_id(&arn).send().await.unwrap();
    let last = used.key_last_usage().expect("used once");
    assert_eq!(last.operation().map(|o| o.as_str()), Some("Encrypt"));
    assert_eq!(last.kms_request_id(), Some(request_id.as_str()));
    // The event id is the one the audit trail gives the Encrypt.
    let events = crate::harness::events_named(&server, "Encrypt");
    assert_eq!(events.len(), 1);
    assert_eq!(
        last.cloud_trail_event_id(),
        events[0]["eventID"].as_str(),
        "{events:?}"
    );
    assert!(last.timestamp().unwrap().secs() >= created);

    // Another key's use is its own.
    let signer = kms
        .create_key()
        .key_spec(KeySpec::EccNistP256)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap();
    let signer = signer.key_metadata().unwrap().key_id().to_owned();
    kms.sign()
        .key_id(&signer)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .send()
        .await
        .unwrap();
    let signed = kms
        .get_key_last_usage()
        .key_id(&signer)
        .send()
        .await
        .unwrap();
    assert_eq!(
        signed
            .key_last_usage()
            .and_then(|u| u.operation())
            .map(|o| o.as_str()),
        Some("Sign")
    );
    let still = kms.get_key_last_usage().key_id(&id).send().await.unwrap();
    assert_eq!(
        still.key_last_usage().and_then(|u| u.kms_request_id()),
        Some(request_id.as_str())
    );
}

#[tokio::test]
async fn get_key_last_usage_is_not_for_another_account_even_if_the_policy_allows() {
    use crate::{policy, root_allows_all};
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &["--dev", "--ephemeral"]);
    let owner = server.client_with(crate::harness::REGION, "111111111111", "x");
    let partner = server.client_with(crate::harness::REGION, "222222222222", "x");
    let (id, arn) = crate::new_key(&owner).await;
    let shared = policy(serde_json::json!([
        root_allows_all("111111111111"),
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::222222222222:root"},
         "Action": ["kms:GetKeyLastUsage", "kms:DescribeKey"], "Resource": "*"}
    ]));
    owner
        .put_key_policy()
        .key_id(&id)
        .policy(&shared)
        .send()
        .await
        .unwrap();
    partner.describe_key().key_id(&arn).send().await.unwrap();
    let err = partner
        .get_key_last_usage()
        .key_id(&arn)
        .send()
        .await
        .unwrap_err();
    assert!(
        ["AccessDeniedException", "NotFoundException"].contains(&code(&err).as_str()),
        "{err:?}"
    );
    owner
        .get_key_last_usage()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
}

#[tokio::test]
async fn a_replica_has_a_description_of_its_own() {
    let server = Server::start();
    let kms = server.client();
    let primary = kms
        .create_key()
        .multi_region(true)
        .description("the primary's")
        .send()
        .await
        .unwrap();
    let id = primary.key_metadata().unwrap().key_id().to_owned();
    let replica = kms
        .replicate_key()
        .key_id(&id)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        replica.replica_key_metadata().unwrap().description(),
        Some("")
    );
    let west = server.client_in("eu-west-1");
    west.update_key_description()
        .key_id(&id)
        .description("the replica's")
        .send()
        .await
        .unwrap();
    let described = kms.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        described.key_metadata().unwrap().description(),
        Some("the primary's")
    );
}

/// SM2 exists in AWS's China Regions only, and in ferrokms nowhere (README).
#[tokio::test]
async fn sm2_is_refused_as_aws_refuses_it_outside_china() {
    let server = Server::start();
    let kms = server.client();
    let err = kms
        .create_key()
        .key_spec(KeySpec::Sm2)
        .key_usage(KeyUsageType::SignVerify)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "UnsupportedOperationException".to_owned(),
            "KeySpec SM2 is not supported in this Region".to_owned()
        )
    );
    let (id, _) = crate::new_key(&kms).await;
    let err = kms
        .generate_data_key_pair()
        .key_id(&id)
        .key_pair_spec(aws_sdk_kms::types::DataKeyPairSpec::Sm2)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");
    let listed = kms.list_keys().send().await.unwrap();
    assert_eq!(listed.keys().len(), 1, "nothing made");
}

/// `shared/reference/<name>`, beside the checkout.
fn reference_file(name: &str) -> std::path::PathBuf {
    let mut dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    loop {
        let candidate = dir.join("shared/reference").join(name);
        if candidate.exists() {
            return candidate;
        }
        assert!(dir.pop(), "shared/reference/{name} not found");
    }
}

/// Every enum member of every operation's input, given a value outside its set, is refused
/// with the model's values in the model's order.
#[test]
fn enum_lists_in_validation_messages_are_the_models() {
    let model: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(reference_file("models/kms-service-2.json")).unwrap(),
    )
    .unwrap();
    let shapes = &model["shapes"];
    let server = Server::start();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for (operation, op) in model["operations"].as_object().unwrap() {
        let Some(input) = op["input"]["shape"].as_str() else {
            continue;
        };
        let members = shapes[input]["members"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        for (member, spec) in members {
            let shape = &shapes[spec["shape"].as_str().unwrap()];
            let Some(values) = shape["enum"].as_array() else {
                continue;
            };
            let values: Vec<&str> = values.iter().filter_map(|v| v.as_str()).collect();
            let body = serde_json::json!({ member.clone(): "NOT_A_MODEL_VALUE" }).to_string();
            let r = server.kms(operation, &body);
            let expected = format!(
                "Member must satisfy enum value set: [{}]",
                values.join(", ")
            );
            let message = r.message().unwrap_or_default();
            checked += 1;
            if r.error_type() != "ValidationException" || !message.contains(&expected) {
                wrong.push(format!(
                    "{operation}.{member}: {} {message}",
                    r.error_type()
                ));
            }
        }
    }
    assert!(checked > 25, "{checked}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Where a key is both unsuitable and disabled: cryptographic operations answer the key's
/// suitability first (as AWS's recorded answers for keys of the wrong usage), rotation its
/// state first (recorded: a disabled RSA key's RotateKeyOnDemand is DisabledException).
#[tokio::test]
async fn suitability_comes_before_state_in_cryptographic_operations() {
    let server = Server::start();
    let kms = server.client();
    let (symmetric, _) = crate::new_key(&kms).await;
    let sealed = kms
        .encrypt()
        .key_id(&symmetric)
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let hmac = kms
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .key_usage(KeyUsageType::GenerateVerifyMac)
        .send()
        .await
        .unwrap();
    let hmac = hmac.key_metadata().unwrap().arn().unwrap().to_owned();
    for disabled in [false, true] {
        if disabled {
            kms.disable_key().key_id(&hmac).send().await.unwrap();
        }
        let err = kms
            .re_encrypt()
            .ciphertext_blob(sealed.clone())
            .source_key_id(&hmac)
            .destination_key_id(&symmetric)
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            (code(&err), message(&err)),
            (
                "IncorrectKeyException".to_owned(),
                "The key ID in the request does not identify a CMK that can perform this operation."
                    .to_owned()
            ),
            "disabled: {disabled}"
        );
        let err = kms
            .encrypt()
            .key_id(&hmac)
            .plaintext(aws_sdk_kms::primitives::Blob::new(b"x".to_vec()))
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            (code(&err), message(&err)),
            (
                "InvalidKeyUsageException".to_owned(),
                format!("{hmac} key usage is GENERATE_VERIFY_MAC which is not valid for Encrypt.")
            ),
            "disabled: {disabled}"
        );
    }
}
