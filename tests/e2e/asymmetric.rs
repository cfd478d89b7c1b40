//! Asymmetric and HMAC keys through the real server: RSA, ECC and ML-DSA signing, RSA-OAEP,
//! MACs, data key pairs and ECDH. Checks by an independent implementation (pyca/cryptography)
//! live in tests/interop/.

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    DataKeyPairSpec, EncryptionAlgorithmSpec, KeyAgreementAlgorithmSpec, KeySpec, KeyUsageType,
    MacAlgorithmSpec, MessageType, SigningAlgorithmSpec,
};
use aws_sdk_kms::Client;

use crate::harness::{code, message, Server};

/// Whether this build makes keys of `spec`: a FIPS build refuses secp256k1 (tests/e2e/fips.rs).
fn fips_approves(spec: &KeySpec) -> bool {
    !cfg!(feature = "fips") || *spec != KeySpec::EccSecgP256K1
}

async fn create(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> (String, String) {
    let out = kms
        .create_key()
        .key_spec(spec)
        .key_usage(usage)
        .send()
        .await
        .unwrap();
    let meta = out.key_metadata().unwrap();
    (meta.key_id().to_owned(), meta.arn().unwrap().to_owned())
}

fn sha(bits: usize, data: &[u8]) -> Vec<u8> {
    use aws_lc_rs::digest;
    let alg = match bits {
        256 => &digest::SHA256,
        384 => &digest::SHA384,
        _ => &digest::SHA512,
    };
    digest::digest(alg, data).as_ref().to_vec()
}

#[tokio::test]
async fn describe_key_lists_the_algorithms_of_each_spec() {
    let server = Server::start();
    let kms = server.client();
    let cases: &[(KeySpec, KeyUsageType, &str, &[&str])] = &[
        (
            KeySpec::Rsa2048,
            KeyUsageType::SignVerify,
            "SigningAlgorithms",
            &[
                "RSASSA_PKCS1_V1_5_SHA_256",
                "RSASSA_PKCS1_V1_5_SHA_384",
                "RSASSA_PKCS1_V1_5_SHA_512",
                "RSASSA_PSS_SHA_256",
                "RSASSA_PSS_SHA_384",
                "RSASSA_PSS_SHA_512",
            ],
        ),
        (
            KeySpec::Rsa3072,
            KeyUsageType::EncryptDecrypt,
            "EncryptionAlgorithms",
            &["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"],
        ),
        (
            KeySpec::EccNistP384,
            KeyUsageType::SignVerify,
            "SigningAlgorithms",
            &["ECDSA_SHA_384"],
        ),
        (
            KeySpec::EccSecgP256K1,
            KeyUsageType::SignVerify,
            "SigningAlgorithms",
            &["ECDSA_SHA_256"],
        ),
        (
            KeySpec::EccNistP521,
            KeyUsageType::KeyAgreement,
            "KeyAgreementAlgorithms",
            &["ECDH"],
        ),
        (
            KeySpec::Hmac224,
            KeyUsageType::GenerateVerifyMac,
            "MacAlgorithms",
            &["HMAC_SHA_224"],
        ),
        (
            KeySpec::MlDsa65,
            KeyUsageType::SignVerify,
            "SigningAlgorithms",
            &["ML_DSA_SHAKE_256"],
        ),
    ];
    for (spec, usage, list, expected) in cases.iter().filter(|c| fips_approves(&c.0)) {
        let (id, _) = create(&kms, spec.clone(), usage.clone()).await;
        let raw = server.kms("DescribeKey", &format!(r#"{{"KeyId": "{id}"}}"#));
        let meta = &raw.json()["KeyMetadata"];
        assert_eq!(meta["KeySpec"], spec.as_str());
        assert_eq!(meta["KeyUsage"], usage.as_str());
        assert_eq!(meta[list], serde_json::json!(expected), "{spec:?}");
        for other in [
            "EncryptionAlgorithms",
            "SigningAlgorithms",
            "MacAlgorithms",
            "KeyAgreementAlgorithms",
        ] {
            if other != *list {
                assert!(
                    meta.get(other).is_none(),
                    "{spec:?} should not list {other}"
                );
            }
        }
    }
}

#[tokio::test]
async fn invalid_spec_and_usage_pairs_are_refused() {
    let server = Server::start();
    let kms = server.client_in("sa-east-1");
    for (spec, usage) in [
        (KeySpec::Rsa2048, KeyUsageType::GenerateVerifyMac),
        (KeySpec::EccNistP256, KeyUsageType::EncryptDecrypt),
        (KeySpec::Hmac256, KeyUsageType::EncryptDecrypt),
        (KeySpec::EccSecgP256K1, KeyUsageType::KeyAgreement),
    ] {
        let err = kms
            .create_key()
            .key_spec(spec.clone())
            .key_usage(usage.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            (code(&err), message(&err)),
            (
                "ValidationException".into(),
                format!(
                    "KeyUsage {} is not compatible with KeySpec {}",
                    usage.as_str(),
                    spec.as_str()
                )
            )
        );
    }
    let err = kms
        .create_key()
        .key_spec(KeySpec::Hmac256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "You must specify a KeyUsage value for all KMS keys except for symmetric encryption keys."
    );
    assert!(kms.list_keys().send().await.unwrap().keys().is_empty());
}

#[tokio::test]
async fn sign_and_verify_with_every_algorithm_raw_and_digest() {
    let server = Server::start();
    let kms = server.client();
    let message_bytes = b"the message".to_vec();
    let specs = [
        (KeySpec::Rsa2048, 0),
        (KeySpec::EccNistP256, 256),
        (KeySpec::EccNistP384, 384),
        (KeySpec::EccNistP521, 512),
        (KeySpec::EccSecgP256K1, 256),
    ];
    for (spec, _) in specs.into_iter().filter(|(s, _)| fips_approves(s)) {
        let (id, arn) = create(&kms, spec.clone(), KeyUsageType::SignVerify).await;
        let meta = kms.describe_key().key_id(&id).send().await.unwrap();
        for alg in meta.key_metadata().unwrap().signing_algorithms() {
            let bits: usize = alg.as_str().rsplit('_').next().unwrap().parse().unwrap();
            for (message_type, msg) in [
                (MessageType::Raw, message_bytes.clone()),
                (MessageType::Digest, sha(bits, &message_bytes)),
            ] {
                let signed = kms
                    .sign()
                    .key_id(&id)
                    .message(Blob::new(msg.clone()))
                    .message_type(message_type.clone())
                    .signing_algorithm(alg.clone())
                    .send()
                    .await
                    .unwrap();
                assert_eq!(signed.key_id(), Some(arn.as_str()));
                assert_eq!(signed.signing_algorithm(), Some(alg));
                let signature = signed.signature().unwrap().clone();
                // Sign with DIGEST equals Sign with RAW: both verify against the raw message.
                let verified = kms
                    .verify()
                    .key_id(&id)
                    .message(Blob::new(message_bytes.clone()))
                    .message_type(MessageType::Raw)
                    .signature(signature.clone())
                    .signing_algorithm(alg.clone())
                    .send()
                    .await
                    .unwrap();
                assert!(verified.signature_valid());
                assert_eq!(verified.key_id(), Some(arn.as_str()));

                let mut bad = signature.as_ref().to_vec();
                let last = bad.len() - 1;
                bad[last / 2] ^= 1;
                let err = kms
                    .verify()
                    .key_id(&id)
                    .message(Blob::new(message_bytes.clone()))
                    .signature(Blob::new(bad))
                    .signing_algorithm(alg.clone())
                    .send()
                    .await
                    .unwrap_err();
                assert_eq!(
                    code(&err),
                    "KMSInvalidSignatureException",
                    "{spec:?} {alg:?}"
                );
                assert_eq!(message(&err), "");
            }
        }
    }
}

#[tokio::test]
async fn ml_dsa_signs_and_verifies() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = create(&kms, KeySpec::MlDsa44, KeyUsageType::SignVerify).await;
    let sig = kms
        .sign()
        .key_id(&id)
        .message(Blob::new("post-quantum"))
        .signing_algorithm(SigningAlgorithmSpec::MlDsaShake256)
        .send()
        .await
        .unwrap();
    assert_eq!(
        sig.signature().unwrap().as_ref().len(),
        2420,
        "ML-DSA-44 signatures are 2420 bytes"
    );
    let ok = kms
        .verify()
        .key_id(&id)
        .message(Blob::new("post-quantum"))
        .signature(sig.signature().unwrap().clone())
        .signing_algorithm(SigningAlgorithmSpec::MlDsaShake256)
        .send()
        .await
        .unwrap();
    assert!(ok.signature_valid());
    let err = kms
        .verify()
        .key_id(&id)
        .message(Blob::new("post-quantun"))
        .signature(sig.signature().unwrap().clone())
        .signing_algorithm(SigningAlgorithmSpec::MlDsaShake256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "KMSInvalidSignatureException");
}

#[tokio::test]
async fn signing_refusals_follow_aws() {
    let server = Server::start();
    let kms = server.client();
    let (p256, _) = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let sign = |key: &str, alg: SigningAlgorithmSpec, msg: Vec<u8>, mt: MessageType| {
        kms.sign()
            .key_id(key)
            .message(Blob::new(msg))
            .message_type(mt)
            .signing_algorithm(alg)
            .send()
    };
    let err = sign(
        &p256,
        SigningAlgorithmSpec::EcdsaSha384,
        b"m".to_vec(),
        MessageType::Raw,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "InvalidKeyUsageException".into(),
            "Algorithm ECDSA_SHA_384 is incompatible with key spec ECC_NIST_P256.".into()
        )
    );
    let err = sign(
        &p256,
        SigningAlgorithmSpec::EcdsaSha256,
        vec![1; 31],
        MessageType::Digest,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "ValidationException".into(),
            "Digest is invalid length for algorithm ECDSA_SHA_256.".into()
        )
    );
    let err = sign(
        &p256,
        SigningAlgorithmSpec::EcdsaSha256,
        vec![1; 4097],
        MessageType::Raw,
    )
    .await
    .unwrap_err();
    assert_eq!(
        message(&err),
        "1 validation error detected: Value at 'message' failed to satisfy constraint: Member must have length less than or equal to 4096"
    );
    let (symmetric, symmetric_arn) = crate::new_key(&kms).await;
    let err = sign(
        &symmetric,
        SigningAlgorithmSpec::EcdsaSha256,
        b"m".to_vec(),
        MessageType::Raw,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "InvalidKeyUsageException".into(),
            format!("{symmetric_arn} key usage is ENCRYPT_DECRYPT which is not valid for Sign.")
        )
    );
    let (_, p256_arn) = (
        p256.clone(),
        format!("arn:aws:kms:us-east-1:111122223333:key/{p256}"),
    );
    kms.disable_key().key_id(&p256).send().await.unwrap();
    let err = sign(
        &p256,
        SigningAlgorithmSpec::EcdsaSha256,
        b"m".to_vec(),
        MessageType::Raw,
    )
    .await
    .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "DisabledException".into(),
            format!("{p256_arn} is disabled.")
        )
    );
    // GetPublicKey still answers for a disabled key, as AWS does.
    let pk = kms.get_public_key().key_id(&p256).send().await.unwrap();
    assert_eq!(pk.key_id(), Some(p256_arn.as_str()));
    assert_eq!(pk.key_spec(), Some(&KeySpec::EccNistP256));
    assert_eq!(pk.signing_algorithms(), [SigningAlgorithmSpec::EcdsaSha256]);
    assert!(pk.encryption_algorithms().is_empty());
    let der = pk.public_key().unwrap().as_ref();
    assert_eq!(der[0], 0x30, "DER SubjectPublicKeyInfo");
    let err = kms
        .get_public_key()
        .key_id(&symmetric)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("UnsupportedOperationException".into(), String::new())
    );
}

#[tokio::test]
async fn rsa_oaep_encrypt_decrypt_and_limits() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = create(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    for (alg, max) in [
        (EncryptionAlgorithmSpec::RsaesOaepSha1, 214),
        (EncryptionAlgorithmSpec::RsaesOaepSha256, 190),
    ] {
        let pt = vec![9u8; max];
        let out = kms
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new(pt.clone()))
            .encryption_algorithm(alg.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(arn.as_str()));
        assert_eq!(out.encryption_algorithm(), Some(&alg));
        let ct = out.ciphertext_blob().unwrap().clone();
        assert_eq!(ct.as_ref().len(), 256);
        let back = kms
            .decrypt()
            .key_id(&id)
            .ciphertext_blob(ct.clone())
            .encryption_algorithm(alg.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), &pt[..]);
        assert_eq!(back.key_id(), Some(arn.as_str()));
        let err = kms
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new(vec![9u8; max + 1]))
            .encryption_algorithm(alg.clone())
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            (code(&err), message(&err)),
            (
                "ValidationException".into(),
                format!(
                    "Algorithm {} and key spec RSA_2048 cannot encrypt data larger than {max} bytes.",
                    alg.as_str()
                )
            )
        );
        let other = if alg == EncryptionAlgorithmSpec::RsaesOaepSha1 {
            EncryptionAlgorithmSpec::RsaesOaepSha256
        } else {
            EncryptionAlgorithmSpec::RsaesOaepSha1
        };
        let err = kms
            .decrypt()
            .key_id(&id)
            .ciphertext_blob(ct.clone())
            .encryption_algorithm(other)
            .send()
            .await
            .unwrap_err();
        assert_eq!(code(&err), "InvalidCiphertextException");
        let err = kms.decrypt().ciphertext_blob(ct).send().await.unwrap_err();
        assert_eq!(
            code(&err),
            "InvalidCiphertextException",
            "no KeyId: read as a symmetric blob"
        );
    }
    let err = crate::encrypt(&kms, &id, "x").await.unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "InvalidKeyUsageException".into(),
            "Algorithm SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.".into()
        )
    );
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .encryption_context("a", "b")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let (symmetric, _) = crate::new_key(&kms).await;
    let err = kms
        .encrypt()
        .key_id(&symmetric)
        .plaintext(Blob::new("x"))
        .encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "Algorithm RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT."
    );

    // ReEncrypt from a symmetric blob to RSA and back.
    let sym_ct = crate::encrypt(&kms, &symmetric, "hop").await.unwrap();
    let to_rsa = kms
        .re_encrypt()
        .ciphertext_blob(sym_ct.ciphertext_blob().unwrap().clone())
        .destination_key_id(&id)
        .destination_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .send()
        .await
        .unwrap();
    let back = kms
        .re_encrypt()
        .ciphertext_blob(to_rsa.ciphertext_blob().unwrap().clone())
        .source_key_id(&id)
        .source_encryption_algorithm(EncryptionAlgorithmSpec::RsaesOaepSha256)
        .destination_key_id(&symmetric)
        .send()
        .await
        .unwrap();
    let plain = crate::decrypt(&kms, back.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"hop");
}

#[tokio::test]
async fn macs_round_trip_and_refuse_tampering() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = create(&kms, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    let out = kms
        .generate_mac()
        .key_id(&id)
        .message(Blob::new("authentic"))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn.as_str()));
    let tag = out.mac().unwrap().clone();
    assert_eq!(tag.as_ref().len(), 32);
    let again = kms
        .generate_mac()
        .key_id(&id)
        .message(Blob::new("authentic"))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    assert_eq!(again.mac(), Some(&tag), "HMAC is deterministic");
    let ok = kms
        .verify_mac()
        .key_id(&id)
        .message(Blob::new("authentic"))
        .mac(tag.clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap();
    assert!(ok.mac_valid());
    let err = kms
        .verify_mac()
        .key_id(&id)
        .message(Blob::new("authentiC"))
        .mac(tag.clone())
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        ("KMSInvalidMacException".into(), String::new())
    );
    let err = kms
        .generate_mac()
        .key_id(&id)
        .message(Blob::new("m"))
        .mac_algorithm(MacAlgorithmSpec::HmacSha512)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "InvalidKeyUsageException".into(),
            "Algorithm HMAC_SHA_512 is incompatible with key spec HMAC_256.".into()
        )
    );
    let (symmetric, symmetric_arn) = crate::new_key(&kms).await;
    let err = kms
        .generate_mac()
        .key_id(&symmetric)
        .message(Blob::new("m"))
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        format!("{symmetric_arn} key usage is ENCRYPT_DECRYPT which is not valid for GenerateMac.")
    );
}

#[tokio::test]
async fn data_key_pairs_are_sealed_under_a_symmetric_key() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = crate::new_key(&kms).await;
    for spec in [DataKeyPairSpec::Rsa2048, DataKeyPairSpec::EccNistP256] {
        let out = kms
            .generate_data_key_pair()
            .key_id(&id)
            .key_pair_spec(spec.clone())
            .encryption_context("pair", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(arn.as_str()));
        assert_eq!(out.key_pair_spec(), Some(&spec));
        let private = out.private_key_plaintext().unwrap().as_ref().to_vec();
        assert_eq!(private[0], 0x30, "PKCS#8 DER");
        let opened = kms
            .decrypt()
            .ciphertext_blob(out.private_key_ciphertext_blob().unwrap().clone())
            .encryption_context("pair", "1")
            .send()
            .await
            .unwrap();
        assert_eq!(opened.plaintext().unwrap().as_ref(), &private[..]);
        assert!(out.public_key().unwrap().as_ref().len() > 60);
    }
    let out = kms
        .generate_data_key_pair_without_plaintext()
        .key_id(&id)
        .key_pair_spec(DataKeyPairSpec::EccNistP384)
        .send()
        .await
        .unwrap();
    assert!(out.private_key_ciphertext_blob().is_some() && out.public_key().is_some());
    let raw = server.kms(
        "GenerateDataKeyPairWithoutPlaintext",
        &format!(r#"{{"KeyId": "{id}", "KeyPairSpec": "ECC_NIST_P256"}}"#),
    );
    assert!(raw.json().get("PrivateKeyPlaintext").is_none());
    let (rsa, _) = create(&kms, KeySpec::Rsa2048, KeyUsageType::EncryptDecrypt).await;
    let err = kms
        .generate_data_key_pair()
        .key_id(&rsa)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "InvalidKeyUsageException".into(),
            "You cannot generate a data key with an asymmetric CMK".into()
        )
    );
}

#[tokio::test]
async fn ecdh_secrets_agree_between_two_kms_keys() {
    let server = Server::start();
    let kms = server.client();
    let (a, a_arn) = create(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let (b, _) = create(&kms, KeySpec::EccNistP256, KeyUsageType::KeyAgreement).await;
    let public = |k: String| {
        let kms = kms.clone();
        async move {
            kms.get_public_key()
                .key_id(k)
                .send()
                .await
                .unwrap()
                .public_key()
                .unwrap()
                .clone()
        }
    };
    let (pa, pb) = (public(a.clone()).await, public(b.clone()).await);
    let ab = kms
        .derive_shared_secret()
        .key_id(&a)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(pb)
        .send()
        .await
        .unwrap();
    let ba = kms
        .derive_shared_secret()
        .key_id(&b)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(pa)
        .send()
        .await
        .unwrap();
    assert_eq!(ab.shared_secret(), ba.shared_secret());
    assert_eq!(ab.shared_secret().unwrap().as_ref().len(), 32);
    assert_eq!(ab.key_id(), Some(a_arn.as_str()));
    assert_eq!(ab.key_origin().map(|o| o.as_str()), Some("AWS_KMS"));
    let err = kms
        .derive_shared_secret()
        .key_id(&a)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new("InvalidPublicKey"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    let (signer, signer_arn) = create(&kms, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    let err = kms
        .derive_shared_secret()
        .key_id(&signer)
        .key_agreement_algorithm(KeyAgreementAlgorithmSpec::Ecdh)
        .public_key(Blob::new("x"))
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "InvalidKeyUsageException".into(),
            format!(
                "{signer_arn} key usage is SIGN_VERIFY which is not valid for DeriveSharedSecret."
            )
        )
    );
}
