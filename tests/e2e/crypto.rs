use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::DataKeySpec;

use crate::harness::{code, message, Server};
use crate::{decrypt, encrypt, new_key};

#[tokio::test]
async fn encrypt_decrypt_round_trip_by_every_key_name() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/rt")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let names = [
        id.clone(),
        arn.clone(),
        "alias/rt".into(),
        "arn:aws:kms:us-east-1:111122223333:alias/rt".into(),
    ];
    for name in &names {
        let out = kms
            .encrypt()
            .key_id(name)
            .plaintext(Blob::new(b"top secret".to_vec()))
            .encryption_context("service", "payments")
            .encryption_context("stage", "prod")
            .send()
            .await
            .unwrap();
        assert_eq!(
            out.key_id(),
            Some(arn.as_str()),
            "Encrypt answers with the key ARN"
        );
        assert_eq!(
            out.encryption_algorithm().map(|a| a.as_str()),
            Some("SYMMETRIC_DEFAULT")
        );
        let blob = out.ciphertext_blob().unwrap().clone();
        assert!(!blob.as_ref().windows(10).any(|w| w == b"top secret"));

        let plain = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .encryption_context("stage", "prod")
            .encryption_context("service", "payments")
            .send()
            .await
            .unwrap();
        assert_eq!(plain.plaintext().unwrap().as_ref(), b"top secret");
        assert_eq!(plain.key_id(), Some(arn.as_str()));
        let with_key = kms
            .decrypt()
            .key_id(name)
            .ciphertext_blob(blob.clone())
            .encryption_context("stage", "prod")
            .encryption_context("service", "payments")
            .send()
            .await
            .unwrap();
        assert_eq!(with_key.plaintext().unwrap().as_ref(), b"top secret");

        let err = kms
            .decrypt()
            .ciphertext_blob(blob.clone())
            .encryption_context("service", "payments")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            code(&err),
            "InvalidCiphertextException",
            "a missing context entry fails"
        );
        let err = decrypt(&kms, blob).await.unwrap_err();
        assert_eq!(code(&err), "InvalidCiphertextException");
    }
}

#[tokio::test]
async fn decrypt_reports_the_material_version_it_used() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let material = kms
        .describe_key()
        .key_id(&id)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_owned();
    let ct = encrypt(&kms, &id, "m").await.unwrap();
    let out = decrypt(&kms, ct.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(out.key_material_id(), Some(material.as_str()));
}

#[tokio::test]
async fn wrong_key_and_tampered_ciphertext_are_refused() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let (other, _) = new_key(&kms).await;
    let blob = encrypt(&kms, &id, "payload")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .as_ref()
        .to_vec();
    let err = kms
        .decrypt()
        .key_id(&other)
        .ciphertext_blob(Blob::new(blob.clone()))
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "IncorrectKeyException");
    assert_eq!(
        message(&err),
        "The key ID in the request does not identify a CMK that can perform this operation."
    );
    for i in [0, 1, 20, 60, blob.len() / 2, blob.len() - 1] {
        let mut bad = blob.clone();
        bad[i] ^= 0x40;
        let err = decrypt(&kms, Blob::new(bad)).await.unwrap_err();
        assert_eq!(code(&err), "InvalidCiphertextException", "byte {i}");
    }
    let err = decrypt(&kms, Blob::new(blob[..40].to_vec()))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidCiphertextException");
    let err = decrypt(&kms, Blob::new(b"not a ciphertext at all".to_vec()))
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidCiphertextException");
}

#[tokio::test]
async fn plaintext_limits_match_aws() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let max = vec![7u8; 4096];
    let ct = encrypt(&kms, &id, max.clone()).await.unwrap();
    let back = decrypt(&kms, ct.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), &max[..]);
    let err = encrypt(&kms, &id, vec![7u8; 4097]).await.unwrap_err();
    assert_eq!(code(&err), "ValidationException");
    assert_eq!(
        message(&err),
        "1 validation error detected: Value at 'plaintext' failed to satisfy constraint: Member must have length less than or equal to 4096"
    );
}

#[tokio::test]
async fn re_encrypt_moves_ciphertext_to_another_key_and_context() {
    let server = Server::start();
    let kms = server.client();
    let (src, src_arn) = new_key(&kms).await;
    let (dst, dst_arn) = new_key(&kms).await;
    let ct = kms
        .encrypt()
        .key_id(&src)
        .plaintext(Blob::new("moving"))
        .encryption_context("a", "1")
        .send()
        .await
        .unwrap();
    let out = kms
        .re_encrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .source_encryption_context("a", "1")
        .destination_key_id(&dst)
        .destination_encryption_context("b", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(out.source_key_id(), Some(src_arn.as_str()));
    assert_eq!(out.key_id(), Some(dst_arn.as_str()));
    assert!(out.source_key_material_id().is_some() && out.destination_key_material_id().is_some());
    let blob = out.ciphertext_blob().unwrap().clone();
    let err = kms
        .decrypt()
        .key_id(&src)
        .ciphertext_blob(blob.clone())
        .encryption_context("b", "2")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "IncorrectKeyException");
    let plain = kms
        .decrypt()
        .ciphertext_blob(blob)
        .encryption_context("b", "2")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"moving");
    assert_eq!(plain.key_id(), Some(dst_arn.as_str()));
    let err = kms
        .re_encrypt()
        .ciphertext_blob(ct.ciphertext_blob().unwrap().clone())
        .destination_key_id(&dst)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "InvalidCiphertextException",
        "source context is checked"
    );
}

#[tokio::test]
async fn data_keys_by_spec_and_by_length() {
    let server = Server::start();
    let kms = server.client();
    let (id, arn) = new_key(&kms).await;
    for (spec, len) in [(DataKeySpec::Aes256, 32), (DataKeySpec::Aes128, 16)] {
        let out = kms
            .generate_data_key()
            .key_id(&id)
            .key_spec(spec)
            .encryption_context("purpose", "test")
            .send()
            .await
            .unwrap();
        assert_eq!(out.key_id(), Some(arn.as_str()));
        let plain = out.plaintext().unwrap().as_ref().to_vec();
        assert_eq!(plain.len(), len);
        let back = kms
            .decrypt()
            .ciphertext_blob(out.ciphertext_blob().unwrap().clone())
            .encryption_context("purpose", "test")
            .send()
            .await
            .unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), &plain[..]);
    }
    let out = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(64)
        .send()
        .await
        .unwrap();
    assert_eq!(out.plaintext().unwrap().as_ref().len(), 64);
    let out = kms
        .generate_data_key_without_plaintext()
        .key_id(&id)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_id(), Some(arn.as_str()));
    let back = decrypt(&kms, out.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref().len(), 32);

    let both = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(32)
        .key_spec(DataKeySpec::Aes256)
        .send()
        .await
        .unwrap_err();
    let neither = kms
        .generate_data_key()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    for err in [both, neither] {
        assert_eq!(code(&err), "ValidationException");
        assert_eq!(
            message(&err),
            "Please specify either number of bytes or key spec."
        );
    }
    let err = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(1025)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"
    );
}

#[tokio::test]
async fn generate_random_bytes_and_limits() {
    let server = Server::start();
    let kms = server.client();
    let a = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    let b = kms
        .generate_random()
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    assert_eq!(a.plaintext().unwrap().as_ref().len(), 32);
    assert_ne!(
        a.plaintext().unwrap().as_ref(),
        b.plaintext().unwrap().as_ref()
    );
    assert_eq!(
        kms.generate_random()
            .number_of_bytes(1024)
            .send()
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref()
            .len(),
        1024
    );
    for (n, text) in [
        (0, "1 validation error detected: Value '0' at 'numberOfBytes' failed to satisfy constraint: Member must have value greater than or equal to 1"),
        (1025, "1 validation error detected: Value '1025' at 'numberOfBytes' failed to satisfy constraint: Member must have value less than or equal to 1024"),
    ] {
        let err = kms.generate_random().number_of_bytes(n).send().await.unwrap_err();
        assert_eq!((code(&err), message(&err)), ("ValidationException".into(), text.into()));
    }
    let err = kms.generate_random().send().await.unwrap_err();
    assert_eq!(message(&err), "NumberOfBytes is required.");
}

#[tokio::test]
async fn dry_run_answers_400_when_the_call_would_succeed() {
    let server = Server::start();
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "DryRunOperationException");
    assert_eq!(
        message(&err),
        "The request would have succeeded, but the DryRun option is set."
    );
    let raw = server.kms(
        "GenerateDataKey",
        &format!(r#"{{"KeyId": "{id}", "KeySpec": "AES_256", "DryRun": true}}"#),
    );
    assert_eq!(
        raw.status, 400,
        "AWS answers DryRunOperationException with 400"
    );
    assert_eq!(raw.error_type(), "DryRunOperationException");
    // IGNORE_CIPHERTEXT checks only whether the key could decrypt: no ciphertext needed.
    let raw = server.kms(
        "Decrypt",
        &format!(
            r#"{{"KeyId": "{id}", "DryRun": true, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]}}"#
        ),
    );
    assert_eq!(raw.error_type(), "DryRunOperationException");
    let raw = server.kms(
        "Decrypt",
        r#"{"DryRun": true, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]}"#,
    );
    assert_eq!(raw.error_type(), "ValidationException");
    let raw = server.kms(
        "Decrypt",
        &format!(r#"{{"KeyId": "{id}", "DryRun": true}}"#),
    );
    assert_eq!(
        raw.message().as_deref(),
        Some("1 validation error detected: Value null at 'ciphertextBlob' failed to satisfy constraint: Member must not be null"),
        "without the modifier the ciphertext is required"
    );
    kms.disable_key().key_id(&id).send().await.unwrap();
    let raw = server.kms(
        "Decrypt",
        &format!(
            r#"{{"KeyId": "{id}", "DryRun": true, "DryRunModifiers": ["IGNORE_CIPHERTEXT"]}}"#
        ),
    );
    assert_eq!(raw.error_type(), "DisabledException");
    let err = kms
        .encrypt()
        .key_id(&id)
        .plaintext(Blob::new("x"))
        .dry_run(true)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        code(&err),
        "DisabledException",
        "a dry run that would fail says why"
    );
}
