//! `ferrokms backup` and `ferrokms restore`: a service moved to a new data directory (or
//! database) with the same root key keeps its keys, aliases, ciphertexts and audit trail;
//! without that root key, restoring is refused.

use crate::harness::{code, ferrokms_command, Server};
use crate::{decrypt, encrypt, new_key};

#[tokio::test]
async fn a_restored_backup_serves_what_the_old_service_made() {
    let temp = tempfile::tempdir().unwrap();
    let old_dir = temp.path().join("old");
    let old = Server::start_in(&old_dir, &[]);
    let kms = old.client();
    let (id, _) = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/moved")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    let blob = encrypt(&kms, "alias/moved", "made before the move")
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    old.stop();

    let file = temp.path().join("backup.jsonl");
    let out = ferrokms_command(&old_dir)
        .args(["backup", "--data-dir"])
        .arg(&old_dir)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = std::fs::read_to_string(&file).unwrap();
    let root_key = std::fs::read(old_dir.join("root-key")).unwrap();
    assert!(!text.contains("made before the move"));
    assert!(
        !text.contains(
            &root_key
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
        "the root key is never in a backup"
    );

    let new_dir = temp.path().join("new");
    std::fs::create_dir_all(&new_dir).unwrap();
    let restore = || {
        ferrokms_command(&new_dir)
            .args(["restore", "--data-dir"])
            .arg(&new_dir)
            .arg("--from")
            .arg(&file)
            .output()
            .unwrap()
    };
    let refused = restore();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("root-key"));

    for f in ["root-key", "admin-credentials"] {
        std::fs::copy(old_dir.join(f), new_dir.join(f)).unwrap();
    }
    let out = restore();
    assert!(out.status.success(), "{out:?}");
    let again = restore();
    assert!(!again.status.success(), "a store is restored into once");
    assert!(String::from_utf8_lossy(&again.stderr).contains("not empty"));

    let new = Server::start_in(&new_dir, &[]);
    let kms = new.client();
    let plain = decrypt(&kms, blob).await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"made before the move");
    let described = kms
        .describe_key()
        .key_id("alias/moved")
        .send()
        .await
        .unwrap();
    assert_eq!(described.key_metadata().unwrap().key_id(), id);
    new.stop();
    let out = ferrokms_command(&new_dir)
        .args(["audit", "verify", "--data-dir"])
        .arg(&new_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[tokio::test]
async fn a_backup_does_not_open_under_another_root_key() {
    let temp = tempfile::tempdir().unwrap();
    let old_dir = temp.path().join("old");
    let old = Server::start_in(&old_dir, &[]);
    new_key(&old.client()).await;
    old.stop();
    let file = temp.path().join("backup.jsonl");
    let out = ferrokms_command(&old_dir)
        .args(["backup", "--data-dir"])
        .arg(&old_dir)
        .arg("--out")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");

    // A data directory with a root key of its own.
    let other_dir = temp.path().join("other");
    let other = Server::start_in(&other_dir, &["--dev"]);
    let err = other
        .client_with(crate::harness::REGION, "test", "test")
        .describe_key()
        .key_id("alias/none")
        .send()
        .await
        .unwrap_err();
    assert_eq!(code(&err), "NotFoundException");
    other.stop();
    let fresh_dir = temp.path().join("fresh");
    std::fs::create_dir_all(&fresh_dir).unwrap();
    std::fs::copy(other_dir.join("root-key"), fresh_dir.join("root-key")).unwrap();
    let out = ferrokms_command(&fresh_dir)
        .args(["restore", "--data-dir"])
        .arg(&fresh_dir)
        .arg("--from")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not open with"),
        "{out:?}"
    );
}
