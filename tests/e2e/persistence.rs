//! Durability: what was acknowledged is there after a restart or a crash.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use aws_sdk_kms::primitives::Blob;

use crate::harness::Server;
use crate::new_key;

#[tokio::test]
async fn keys_aliases_and_ciphertexts_survive_a_restart() {
    let temp = tempfile::tempdir().unwrap();
    let first = Server::start_in(temp.path(), &[]);
    let kms = first.client();
    let (id, arn) = new_key(&kms).await;
    kms.create_alias()
        .alias_name("alias/durable")
        .target_key_id(&id)
        .send()
        .await
        .unwrap();
    kms.tag_resource()
        .key_id(&id)
        .tags(
            aws_sdk_kms::types::Tag::builder()
                .tag_key("t")
                .tag_value("v")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap();
    let ct = kms
        .encrypt()
        .key_id("alias/durable")
        .plaintext(Blob::new("still here"))
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let access_key = first.access_key_id.clone();
    first.stop();

    let second = Server::start_in(temp.path(), &[]);
    assert_eq!(
        second.access_key_id, access_key,
        "the admin key pair is kept"
    );
    let kms = second.client();
    let plain = kms
        .decrypt()
        .ciphertext_blob(ct)
        .encryption_context("k", "v")
        .send()
        .await
        .unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"still here");
    assert_eq!(plain.key_id(), Some(arn.as_str()));
    let d = kms
        .describe_key()
        .key_id("alias/durable")
        .send()
        .await
        .unwrap();
    assert_eq!(d.key_metadata().unwrap().key_id(), id);
    let tags = kms.list_resource_tags().key_id(&id).send().await.unwrap();
    assert_eq!(tags.tags().len(), 1);
}

#[tokio::test]
async fn acknowledged_writes_survive_a_kill() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &[]);
    let kms = server.client();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(new_key(&kms).await.0);
    }
    kms.disable_key().key_id(&ids[0]).send().await.unwrap();
    server.kill();

    let again = Server::start_in(temp.path(), &[]);
    let kms = again.client();
    let listed = kms.list_keys().send().await.unwrap();
    assert_eq!(listed.keys().len(), 10);
    let d = kms.describe_key().key_id(&ids[0]).send().await.unwrap();
    assert!(!d.key_metadata().unwrap().enabled());
}

#[test]
fn first_start_writes_private_sourceable_credentials_and_root_key() {
    let server = Server::start();
    let dir: &Path = &server.data_dir;
    let creds = dir.join("admin-credentials");
    let text = std::fs::read_to_string(&creds).unwrap();
    assert_eq!(
        text,
        format!(
            "export AWS_ACCESS_KEY_ID={}\nexport AWS_SECRET_ACCESS_KEY={}\n",
            server.access_key_id, server.secret_access_key
        )
    );
    for file in ["admin-credentials", "root-key"] {
        let mode = std::fs::metadata(dir.join(file))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    // The store holds the admin secret only wrapped: it appears nowhere in the database
    // file, or in a backup of the PostgreSQL database.
    let db = if crate::POSTGRES {
        let out = crate::harness::ferrokms_command(dir)
            .args(["backup", "--data-dir"])
            .arg(dir)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        out.stdout
    } else {
        std::fs::read(dir.join("ferrokms.db")).unwrap()
    };
    assert!(db.len() > 1000, "the store was read");
    assert!(!db
        .windows(server.secret_access_key.len())
        .any(|w| w == server.secret_access_key.as_bytes()));
}

#[tokio::test]
async fn ephemeral_store_is_removed_at_exit() {
    let unused = tempfile::tempdir().unwrap();
    let server = Server::start_in(unused.path(), &["--dev", "--ephemeral"]);
    let dir = server.printed_data_dir.clone();
    assert!(Path::new(&dir).is_dir(), "{dir}");
    new_key(&server.client_with("us-east-1", "a", "b")).await;
    server.stop();
    assert!(!Path::new(&dir).exists(), "{dir} should be gone");
}

#[tokio::test]
async fn a_config_file_sets_listen_address_and_data_dir() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("from-config");
    let config = temp.path().join("ferrokms.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndata_dir = \"{}\"\n",
            data.display()
        ),
    )
    .unwrap();
    let server = Server::start_with_args(&["serve", "--config", config.to_str().unwrap()], &data);
    assert_eq!(server.printed_data_dir, data.display().to_string());
    new_key(&server.client()).await;
    assert!(data.join("admin-credentials").is_file());
    assert_eq!(
        data.join("ferrokms.db").is_file(),
        !crate::POSTGRES,
        "state is in the data directory unless a database is named"
    );

    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nlisten_port = 5\n").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(["serve", "--config", config.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "an unknown setting is an error, not ignored"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("listen_port"));
}

/// A data directory has one owner at a time: a second `serve` (or a `restore`) on it is
/// refused while the first runs, since the server keeps what it read in memory. The tools
/// that work beside a server (`admin`, `backup`) still run.
#[tokio::test]
async fn a_second_server_on_the_same_data_directory_is_refused() {
    let server = Server::start();
    let dir = server.data_dir.clone();
    let mut second = crate::harness::ferrokms_command(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            second.kill().unwrap();
            panic!("a second server started on a data directory in use");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(!status.success());
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut second.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(stderr.contains("another ferrokms process"), "{stderr}");

    let backup = crate::harness::ferrokms_command(&dir)
        .args(["backup", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(backup.status.success(), "{backup:?}");
    let file = dir.join("backup.jsonl");
    std::fs::write(&file, &backup.stdout).unwrap();
    let restore = crate::harness::ferrokms_command(&dir)
        .args(["restore", "--data-dir"])
        .arg(&dir)
        .arg("--from")
        .arg(&file)
        .output()
        .unwrap();
    assert!(!restore.status.success());
    assert!(String::from_utf8_lossy(&restore.stderr).contains("another ferrokms process"));

    // The first server still answers.
    new_key(&server.client()).await;
}

/// The root key and the admin's credentials are their owner's alone: a server finding either
/// readable by its group or the world refuses to start rather than use it.
#[test]
fn secrets_readable_by_others_stop_the_server() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    Server::start_in(&dir, &[]).stop();
    let serve = || {
        crate::harness::ferrokms_command(&dir)
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    for (file, mode) in [("admin-credentials", 0o644), ("root-key", 0o640)] {
        let path = dir.join(file);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        let out = serve().wait_with_output().unwrap();
        assert!(!out.status.success(), "{file} at {mode:o}");
        let text = String::from_utf8_lossy(&out.stderr);
        assert!(text.contains("readable by others"), "{text}");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    Server::start_in(&dir, &[]).stop();
}
