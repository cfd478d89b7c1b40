//! Keys over time, with the server's clock moved forward through the dev-mode debug endpoint:
//! automatic and on-demand rotation, and the deletion executor.

use aws_sdk_kms::types::{IncludeKeyMaterial, KeySpec, KeyUsageType};

use crate::harness::{code, message, Server, REGION};
use crate::{decrypt, encrypt, new_key};

fn dev_server() -> (tempfile::TempDir, Server) {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &["--dev", "--ephemeral", "--debug-clock"]);
    (temp, server)
}

#[tokio::test]
async fn automatic_rotation_keeps_old_ciphertexts_readable() {
    let (_t, server) = dev_server();
    let kms = server.client_with(REGION, "test", "test");
    let (id, arn) = new_key(&kms).await;
    let first_material = kms.describe_key().key_id(&id).send().await.unwrap();
    let first_material = first_material
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_owned();
    let old = encrypt(&kms, &id, "before rotation")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();

    let status = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(!status.key_rotation_enabled());
    kms.enable_key_rotation()
        .key_id(&id)
        .rotation_period_in_days(90)
        .send()
        .await
        .unwrap();
    let status = kms
        .get_key_rotation_status()
        .key_id(&arn)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(90));
    assert_eq!(status.key_id(), Some(arn.as_str()));
    let next = status.next_rotation_date().unwrap().secs();

    server.advance_clock_days(89);
    assert_eq!(server.run_jobs(), (0, 0), "not due yet");
    server.advance_clock_days(2);
    assert_eq!(server.run_jobs(), (1, 0));
    assert_eq!(server.run_jobs(), (0, 0), "rotating is idempotent");
    let rotations = crate::harness::events_named(&server, "RotateKey");
    assert_eq!(rotations.len(), 1, "{rotations:?}");
    assert_eq!(rotations[0]["eventType"], "AwsServiceEvent");

    let meta = kms.describe_key().key_id(&id).send().await.unwrap();
    let current = meta
        .key_metadata()
        .unwrap()
        .current_key_material_id()
        .unwrap()
        .to_owned();
    assert_ne!(current, first_material);
    let status = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(status.next_rotation_date().unwrap().secs() >= next + 89 * 86_400);

    let back = decrypt(&kms, old.clone()).await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"before rotation");
    assert_eq!(back.key_material_id(), Some(first_material.as_str()));
    let new = encrypt(&kms, &id, "after").await.unwrap();
    let back = decrypt(&kms, new.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(
        back.key_material_id(),
        Some(current.as_str()),
        "Encrypt uses the newest material"
    );
    let moved = kms
        .re_encrypt()
        .ciphertext_blob(old)
        .destination_key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(
        moved.source_key_material_id(),
        Some(first_material.as_str())
    );
    assert_eq!(moved.destination_key_material_id(), Some(current.as_str()));

    let rotations = kms.list_key_rotations().key_id(&id).send().await.unwrap();
    assert_eq!(rotations.rotations().len(), 1);
    let r = &rotations.rotations()[0];
    assert_eq!(r.rotation_type().map(|t| t.as_str()), Some("AUTOMATIC"));
    assert_eq!(r.key_material_id(), Some(current.as_str()));
    let all = kms
        .list_key_rotations()
        .key_id(&id)
        .include_key_material(IncludeKeyMaterial::AllKeyMaterial)
        .send()
        .await
        .unwrap();
    assert_eq!(all.rotations().len(), 2);

    kms.disable_key_rotation().key_id(&id).send().await.unwrap();
    server.advance_clock_days(400);
    assert_eq!(server.run_jobs(), (0, 0), "rotation off: nothing happens");
}

#[tokio::test]
async fn on_demand_rotation_and_its_limits() {
    let (_t, server) = dev_server();
    let kms = server.client_with(REGION, "test", "test");
    let (id, arn) = new_key(&kms).await;
    let old = encrypt(&kms, &id, "v1")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    for _ in 0..25 {
        let out = kms.rotate_key_on_demand().key_id(&id).send().await.unwrap();
        assert_eq!(out.key_id(), Some(arn.as_str()));
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
            "LimitExceededException".into(),
            format!("The on-demand rotations limit has been reached for the given keyId. No more on-demand rotations can be performed for this key: {arn}")
        )
    );
    let page = kms
        .list_key_rotations()
        .key_id(&id)
        .limit(10)
        .send()
        .await
        .unwrap();
    assert_eq!(page.rotations().len(), 10);
    assert!(page.truncated());
    assert_eq!(
        decrypt(&kms, old)
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref(),
        b"v1"
    );

    let (rsa, _) = {
        let out = kms
            .create_key()
            .key_spec(KeySpec::Rsa2048)
            .key_usage(KeyUsageType::SignVerify)
            .send()
            .await
            .unwrap();
        let m = out.key_metadata().unwrap();
        (m.key_id().to_owned(), m.arn().unwrap().to_owned())
    };
    for err in [
        code(
            &kms.enable_key_rotation()
                .key_id(&rsa)
                .send()
                .await
                .unwrap_err(),
        ),
        code(
            &kms.rotate_key_on_demand()
                .key_id(&rsa)
                .send()
                .await
                .unwrap_err(),
        ),
    ] {
        assert_eq!(err, "UnsupportedOperationException");
    }
    let err = kms
        .enable_key_rotation()
        .key_id(&id)
        .rotation_period_in_days(30)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        message(&err),
        "1 validation error detected: Value '30' at 'rotationPeriodInDays' failed to satisfy constraint: Member must have value greater than or equal to 90"
    );
    let (disabled, disabled_arn) = new_key(&kms).await;
    kms.disable_key().key_id(&disabled).send().await.unwrap();
    let err = kms
        .rotate_key_on_demand()
        .key_id(&disabled)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "DisabledException".into(),
            format!("{disabled_arn} is disabled.")
        )
    );
}

#[tokio::test]
async fn keys_are_destroyed_when_the_waiting_period_ends() {
    let (_t, server) = dev_server();
    let kms = server.client_with(REGION, "test", "test");
    let (doomed, _) = new_key(&kms).await;
    let (saved, _) = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/doomed")
        .target_key_id(&doomed)
        .send()
        .await
        .unwrap();
    let ct = encrypt(&kms, &doomed, "gone soon")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    kms.schedule_key_deletion()
        .key_id(&doomed)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    kms.schedule_key_deletion()
        .key_id(&saved)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();

    server.advance_clock_days(6);
    assert_eq!(server.run_jobs(), (0, 0));
    kms.cancel_key_deletion()
        .key_id(&saved)
        .send()
        .await
        .unwrap();
    server.advance_clock_days(2);
    assert_eq!(
        server.run_jobs(),
        (0, 1),
        "only the key still pending deletion goes"
    );
    assert_eq!(server.run_jobs(), (0, 0), "deleting is idempotent");
    let deletions: Vec<_> = crate::harness::events_named(&server, "DeleteKey")
        .into_iter()
        .filter(|e| e["eventType"] == "AwsServiceEvent")
        .collect();
    assert_eq!(deletions.len(), 1, "{deletions:?}");
    assert!(deletions[0]["resources"][0]["ARN"]
        .as_str()
        .unwrap()
        .ends_with(&doomed));
    assert_eq!(
        deletions[0]["userIdentity"]["invokedBy"],
        "kms.amazonaws.com"
    );

    let err = kms.describe_key().key_id(&doomed).send().await.unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
    let err = decrypt(&kms, ct).await.unwrap_err();
    assert_eq!(
        code(&err),
        "InvalidCiphertextException",
        "its ciphertexts are lost for good"
    );
    let aliases = kms.list_aliases().send().await.unwrap();
    assert!(
        aliases
            .aliases()
            .iter()
            .all(|a| a.target_key_id().is_none()),
        "its aliases went with it"
    );
    let saved_meta = kms.describe_key().key_id(&saved).send().await.unwrap();
    assert_eq!(
        saved_meta
            .key_metadata()
            .unwrap()
            .key_state()
            .map(|s| s.as_str()),
        Some("Disabled")
    );
}

#[test]
fn the_debug_clock_is_refused_outside_dev_mode() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--debug-clock",
            "--data-dir",
        ])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--dev"));
    // And without the flag, the debug path is just another unauthenticated request.
    let server = Server::start();
    let r = crate::harness::raw_post_to(
        &server.addr,
        "/ferrokms/debug/run-jobs",
        &[("host".into(), server.addr.clone())],
        b"",
    );
    assert_eq!(r.error_type(), "MissingAuthenticationTokenException");
}

#[tokio::test]
async fn aws_managed_keys_appear_on_first_use_and_refuse_changes() {
    let server = Server::start();
    let kms = server.client();
    let d = kms
        .describe_key()
        .key_id("alias/aws/ebs")
        .send()
        .await
        .unwrap();
    let meta = d.key_metadata().unwrap();
    let id = meta.key_id().to_owned();
    assert_eq!(meta.key_manager().map(|m| m.as_str()), Some("AWS"));
    assert!(meta.enabled());
    let again = kms
        .describe_key()
        .key_id("alias/aws/ebs")
        .send()
        .await
        .unwrap();
    assert_eq!(again.key_metadata().unwrap().key_id(), id, "made once");
    let aliases = kms.list_aliases().send().await.unwrap();
    let ebs = aliases
        .aliases()
        .iter()
        .find(|a| a.alias_name() == Some("alias/aws/ebs"))
        .unwrap();
    assert_eq!(ebs.target_key_id(), Some(id.as_str()));
    let status = kms
        .get_key_rotation_status()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(365));
    let policy = kms.get_key_policy().key_id(&id).send().await.unwrap();
    assert!(policy
        .policy()
        .unwrap()
        .contains("\"kms:ViaService\" : \"ec2.us-east-1.amazonaws.com\""));

    // Usable only through its service; never changed by hand.
    for err in [
        code(&encrypt(&kms, "alias/aws/ebs", "x").await.unwrap_err()),
        code(&kms.disable_key().key_id(&id).send().await.unwrap_err()),
        code(
            &kms.schedule_key_deletion()
                .key_id(&id)
                .send()
                .await
                .unwrap_err(),
        ),
        code(
            &kms.enable_key_rotation()
                .key_id(&id)
                .send()
                .await
                .unwrap_err(),
        ),
        code(
            &kms.put_key_policy()
                .key_id(&id)
                .policy("{}")
                .send()
                .await
                .unwrap_err(),
        ),
        code(
            &kms.delete_alias()
                .alias_name("alias/aws/ebs")
                .send()
                .await
                .unwrap_err(),
        ),
    ] {
        assert_eq!(err, "AccessDeniedException");
    }
    let (mine, _) = new_key(&kms).await;
    let err = kms
        .update_alias()
        .alias_name("alias/aws/ebs")
        .target_key_id(&mine)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "InvalidAliasNameException");
    let err = kms
        .describe_key()
        .key_id("alias/aws/not-a-service")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
}
