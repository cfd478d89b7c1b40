//! Multi-Region keys: replicas share id and material, so ciphertexts cross regions; other
//! properties stay independent.

use aws_sdk_kms::types::{KeyState, MultiRegionKeyType};

use crate::harness::{code, message, Server};
use crate::{decrypt, encrypt, new_key};

#[tokio::test]
async fn replicas_decrypt_across_regions_and_follow_rotation() {
    let server = Server::start();
    let east = server.client_in("us-east-1");
    let west = server.client_in("eu-west-1");
    let south = server.client_in("ap-south-1");
    let created = east.create_key().multi_region(true).send().await.unwrap();
    let meta = created.key_metadata().unwrap();
    let (id, east_arn) = (meta.key_id().to_owned(), meta.arn().unwrap().to_owned());
    let from_east = encrypt(&east, &id, "crosses regions")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();

    let out = east
        .replicate_key()
        .key_id(&id)
        .replica_region("eu-west-1")
        .description("west copy")
        .send()
        .await
        .unwrap();
    let replica = out.replica_key_metadata().unwrap();
    let west_arn = format!("arn:aws:kms:eu-west-1:111122223333:key/{id}");
    assert_eq!(replica.arn(), Some(west_arn.as_str()));
    assert_eq!(replica.key_id(), id);
    let config = replica.multi_region_configuration().unwrap();
    assert_eq!(
        config.multi_region_key_type(),
        Some(&MultiRegionKeyType::Replica)
    );
    assert_eq!(config.primary_key().unwrap().arn(), Some(east_arn.as_str()));
    assert!(out.replica_policy().unwrap().contains("kms:*"));

    let back = decrypt(&west, from_east.clone()).await.unwrap();
    assert_eq!(back.plaintext().unwrap().as_ref(), b"crosses regions");
    assert_eq!(
        back.key_id(),
        Some(west_arn.as_str()),
        "answered by the replica"
    );
    let from_west = encrypt(&west, &id, "and back")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    assert_eq!(
        decrypt(&east, from_west)
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref(),
        b"and back"
    );
    assert_eq!(
        code(&decrypt(&south, from_east.clone()).await.unwrap_err()),
        "InvalidCiphertextException"
    );

    let primary = east.describe_key().key_id(&id).send().await.unwrap();
    let config = primary
        .key_metadata()
        .unwrap()
        .multi_region_configuration()
        .unwrap();
    assert_eq!(
        config.multi_region_key_type(),
        Some(&MultiRegionKeyType::Primary)
    );
    assert_eq!(config.replica_keys().len(), 1);
    assert_eq!(config.replica_keys()[0].region(), Some("eu-west-1"));

    // Rotation is shared: the replica gets each new version.
    east.rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    let current = |c: aws_sdk_kms::Client| {
        let id = id.clone();
        async move {
            c.describe_key()
                .key_id(id)
                .send()
                .await
                .unwrap()
                .key_metadata()
                .unwrap()
                .current_key_material_id()
                .unwrap()
                .to_owned()
        }
    };
    assert_eq!(current(east.clone()).await, current(west.clone()).await);
    let rotated = encrypt(&east, &id, "new material")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    assert_eq!(
        decrypt(&west, rotated)
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref(),
        b"new material"
    );
    let err = west
        .rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");

    // Enabled state, aliases and tags are each copy's own.
    west.disable_key().key_id(&id).send().await.unwrap();
    encrypt(&east, &id, "east still works").await.unwrap();
    let w = west.describe_key().key_id(&id).send().await.unwrap();
    assert_eq!(
        w.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );
    east.create_alias()
        .alias_name("alias/mrk")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    assert!(west
        .list_aliases()
        .send()
        .await
        .unwrap()
        .aliases()
        .iter()
        .all(|a| a.target_key_id().is_none()));
    west.enable_key().key_id(&id).send().await.unwrap();

    // Refusals.
    let err = west
        .replicate_key()
        .key_id(&id)
        .replica_region("ap-south-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        (code(&err), message(&err)),
        (
            "UnsupportedOperationException".into(),
            format!("{west_arn} is not a multi-region primary key.")
        )
    );
    let err = east
        .replicate_key()
        .key_id(&id)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "AlreadyExistsException");
    let (single, _) = new_key(&east).await;
    let err = east
        .replicate_key()
        .key_id(&single)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "UnsupportedOperationException");

    // The primary can move.
    east.update_primary_region()
        .key_id(&id)
        .primary_region("eu-west-1")
        .send()
        .await
        .unwrap();
    let e = east.describe_key().key_id(&id).send().await.unwrap();
    let w = west.describe_key().key_id(&id).send().await.unwrap();
    let kind = |m: &aws_sdk_kms::operation::describe_key::DescribeKeyOutput| {
        m.key_metadata()
            .unwrap()
            .multi_region_configuration()
            .unwrap()
            .multi_region_key_type()
            .cloned()
    };
    assert_eq!(kind(&e), Some(MultiRegionKeyType::Replica));
    assert_eq!(kind(&w), Some(MultiRegionKeyType::Primary));
    west.rotate_key_on_demand()
        .key_id(&id)
        .send()
        .await
        .unwrap();
    assert_eq!(current(east.clone()).await, current(west.clone()).await);
    assert_eq!(
        decrypt(&west, from_east)
            .await
            .unwrap()
            .plaintext()
            .unwrap()
            .as_ref(),
        b"crosses regions"
    );
}

#[tokio::test]
async fn a_primary_is_deleted_only_after_its_replicas() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &["--dev", "--ephemeral", "--debug-clock"]);
    let east = server.client_with("us-east-1", "test", "test");
    let west = server.client_with("eu-west-1", "test", "test");
    let created = east.create_key().multi_region(true).send().await.unwrap();
    let id = created.key_metadata().unwrap().key_id().to_owned();
    east.replicate_key()
        .key_id(&id)
        .replica_region("eu-west-1")
        .send()
        .await
        .unwrap();

    let out = east
        .schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    assert_eq!(out.key_state(), Some(&KeyState::PendingReplicaDeletion));
    assert!(
        out.deletion_date().is_none(),
        "the window waits for the replicas"
    );
    west.schedule_key_deletion()
        .key_id(&id)
        .pending_window_in_days(7)
        .send()
        .await
        .unwrap();
    server.advance_clock_days(8);
    assert_eq!(server.run_jobs(), (0, 1), "only the replica goes first");
    // The job's change to the primary, which no request asked for, is a service event.
    let synced = crate::harness::events_named(&server, "SynchronizeMultiRegionKey");
    assert_eq!(synced.len(), 1, "{synced:?}");
    assert_eq!(synced[0]["eventType"], "AwsServiceEvent");
    assert_eq!(
        synced[0]["resources"][0]["ARN"],
        created.key_metadata().unwrap().arn().unwrap()
    );
    let primary = east.describe_key().key_id(&id).send().await.unwrap();
    let meta = primary.key_metadata().unwrap();
    assert_eq!(meta.key_state(), Some(&KeyState::PendingDeletion));
    assert!(meta
        .multi_region_configuration()
        .unwrap()
        .replica_keys()
        .is_empty());
    assert!(meta.deletion_date().is_some());
    server.advance_clock_days(8);
    assert_eq!(server.run_jobs(), (0, 1));
    assert_eq!(
        code(&east.describe_key().key_id(&id).send().await.unwrap_err()),
        "NotFoundException"
    );
}
