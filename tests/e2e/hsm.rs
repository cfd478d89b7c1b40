//! The root key inside an HSM (SoftHSM2 through PKCS#11): `ferrokms init --hsm` makes it in
//! the token, the service wraps everything under it, and `ferrokms migrate-root-key` moves a
//! data directory's secrets into the HSM and back without changing a key id or ciphertext.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use aws_sdk_kms::primitives::Blob;

use crate::harness::{ferrokms_command, Server};
use crate::{decrypt, encrypt, new_key};

pub const SOFTHSM_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";
const PIN: &str = "87654321";

/// The SoftHSM2 configuration every server of this suite reads (`SOFTHSM2_CONF`), with one
/// token folder; each test makes its own token in it.
fn softhsm_conf() -> &'static PathBuf {
    static CONF: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    &CONF
        .get_or_init(|| {
            let dir = tempfile::tempdir().expect("temp dir");
            let tokens = dir.path().join("tokens");
            std::fs::create_dir(&tokens).expect("token dir");
            let conf = dir.path().join("softhsm2.conf");
            std::fs::write(
                &conf,
                format!(
                    "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\n",
                    tokens.display()
                ),
            )
            .expect("softhsm2.conf");
            std::env::set_var("SOFTHSM2_CONF", &conf);
            (dir, conf)
        })
        .1
}

/// Makes a SoftHSM2 token labelled `label`; returns a PIN file (mode 0600) in `dir`.
pub fn new_token(label: &str, dir: &Path) -> PathBuf {
    static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());
    let conf = softhsm_conf();
    {
        let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
        let out = Command::new("softhsm2-util")
            .env("SOFTHSM2_CONF", conf)
            .args(["--init-token", "--free", "--label", label])
            .args(["--pin", PIN, "--so-pin", "12345678"])
            .output()
            .expect("softhsm2-util runs (apt-get install softhsm2)");
        assert!(out.status.success(), "{out:?}");
    }
    std::fs::create_dir_all(dir).unwrap();
    let pin = dir.join("hsm-pin");
    std::fs::write(&pin, format!("{PIN}\n")).unwrap();
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600)).unwrap();
    pin
}

fn ferrokms(data_dir: &Path, args: &[&str]) -> Output {
    crate::harness::ferrokms_in(data_dir, args)
}

fn init_hsm(data_dir: &Path, token: &str, pin_file: &Path) -> Output {
    ferrokms(
        data_dir,
        &[
            "init",
            "--hsm",
            "--module",
            SOFTHSM_MODULE,
            "--token-label",
            token,
            "--pin-file",
            pin_file.to_str().unwrap(),
        ],
    )
}

fn stdout(out: &Output) -> String {
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn a_service_rooted_in_an_hsm_keeps_no_root_key_file_and_needs_the_token() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let pin = new_token("rooted", temp.path());
    let made = stdout(&init_hsm(&dir, "rooted", &pin));
    assert!(made.contains("made in HSM token \"rooted\""), "{made}");
    assert!(
        !dir.join("root-key").exists(),
        "no root key outside the HSM"
    );
    let config = std::fs::read_to_string(dir.join("hsm.toml")).unwrap();
    assert!(
        !config.contains(PIN),
        "hsm.toml names where the PIN is, not the PIN"
    );
    let mode = std::fs::metadata(dir.join("hsm.toml"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    // A second init finds the key there rather than making another.
    std::fs::remove_file(dir.join("hsm.toml")).unwrap();
    let again = stdout(&init_hsm(&dir, "rooted", &pin));
    assert!(again.contains("found in HSM token"), "{again}");
    assert!(!dir.join("root-key").exists());

    let server = Server::start_in(&dir, &[]);
    assert!(
        server.root_key.contains("HSM token \"rooted\""),
        "{}",
        server.root_key
    );
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let blob = encrypt(&kms, &id, "under the HSM").await.unwrap();
    let blob = blob.ciphertext_blob().unwrap().clone();
    let data_key = kms
        .generate_data_key()
        .key_id(&id)
        .number_of_bytes(32)
        .send()
        .await
        .unwrap();
    server.stop();
    assert!(!dir.join("root-key").exists());

    // Restarted: the admin's secret and the key's material open from the token again.
    let server = Server::start_in(&dir, &[]);
    let kms = server.client();
    let plain = decrypt(&kms, blob.clone()).await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"under the HSM");
    let back = decrypt(&kms, data_key.ciphertext_blob().unwrap().clone())
        .await
        .unwrap();
    assert_eq!(back.plaintext(), data_key.plaintext());
    server.stop();

    // A backup restores into another data directory that names the same token.
    let file = temp.path().join("backup.jsonl");
    let out = ferrokms(&dir, &["backup", "--out", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let moved = temp.path().join("moved");
    std::fs::create_dir_all(&moved).unwrap();
    std::fs::copy(dir.join("hsm.toml"), moved.join("hsm.toml")).unwrap();
    std::fs::copy(
        dir.join("admin-credentials"),
        moved.join("admin-credentials"),
    )
    .unwrap();
    let out = ferrokms(&moved, &["restore", "--from", file.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    let server = Server::start_in(&moved, &[]);
    let plain = decrypt(&server.client(), blob.clone()).await.unwrap();
    assert_eq!(plain.plaintext().unwrap().as_ref(), b"under the HSM");
    server.stop();

    // Without the PIN the token stays shut, and so does the service.
    std::fs::write(&pin, "00000000\n").unwrap();
    let refused = ferrokms_command(&dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("refused the PIN"), "{said}");
}

#[tokio::test]
async fn secrets_move_into_the_hsm_and_back_without_changing_a_ciphertext() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let pin = new_token("moving", temp.path());

    // A service on a root-key file, with keys and ciphertexts of several kinds.
    let server = Server::start_in(&dir, &[]);
    let kms = server.client();
    let mut blobs = Vec::new();
    for i in 0..6 {
        let (id, _) = new_key(&kms).await;
        let blob = encrypt(&kms, &id, format!("secret {i}")).await.unwrap();
        blobs.push((
            id,
            blob.ciphertext_blob().unwrap().clone(),
            format!("secret {i}"),
        ));
    }
    let signer = kms
        .create_key()
        .key_usage(aws_sdk_kms::types::KeyUsageType::SignVerify)
        .key_spec(aws_sdk_kms::types::KeySpec::EccNistP256)
        .send()
        .await
        .unwrap()
        .key_metadata()
        .unwrap()
        .key_id()
        .to_owned();
    let (access_key, secret) = (
        server.access_key_id.clone(),
        server.secret_access_key.clone(),
    );
    server.stop();

    let said = stdout(&init_hsm(&dir, "moving", &pin));
    assert!(said.contains("migrate-root-key --to hsm"), "{said}");
    // Part of the way: the service reads both root keys in between.
    let part = stdout(&ferrokms(
        &dir,
        &["migrate-root-key", "--to", "hsm", "--at-most", "3"],
    ));
    assert!(
        part.contains("rewrapped 3 secrets") && part.contains("more are left"),
        "{part}"
    );
    let check = |stage: &'static str| {
        let blobs = blobs.clone();
        let (dir, signer) = (dir.clone(), signer.clone());
        let (access_key, secret) = (access_key.clone(), secret.clone());
        async move {
            let server = Server::start_in(&dir, &[]);
            let kms = server.client_with(crate::harness::REGION, &access_key, &secret);
            for (id, blob, plain) in &blobs {
                let out = kms
                    .decrypt()
                    .key_id(id)
                    .ciphertext_blob(blob.clone())
                    .send()
                    .await;
                let out = out.unwrap_or_else(|e| panic!("{stage}: {e:?}"));
                assert_eq!(
                    out.plaintext().unwrap().as_ref(),
                    plain.as_bytes(),
                    "{stage}"
                );
            }
            let signed = kms
                .sign()
                .key_id(&signer)
                .message(Blob::new("m"))
                .signing_algorithm(aws_sdk_kms::types::SigningAlgorithmSpec::EcdsaSha256)
                .send()
                .await
                .unwrap_or_else(|e| panic!("{stage}: {e:?}"));
            assert!(signed.signature().is_some());
            let root_key = server.root_key.clone();
            server.stop();
            let audit = ferrokms(&dir, &["audit", "verify"]);
            assert!(audit.status.success(), "{stage}: {audit:?}");
            root_key
        }
    };
    let mixed = check("part of the way into the HSM").await;
    assert!(
        mixed.contains("HSM token \"moving\"") && mixed.contains("open too"),
        "{mixed}"
    );

    let rest = stdout(&ferrokms(&dir, &["migrate-root-key", "--to", "hsm"]));
    assert!(rest.contains("every secret is now under the key"), "{rest}");
    let again = stdout(&ferrokms(&dir, &["migrate-root-key", "--to", "hsm"]));
    assert!(again.contains("rewrapped 0 secrets"), "{again}");
    // The old root key is no longer needed at all.
    std::fs::rename(dir.join("root-key"), temp.path().join("old-root-key")).unwrap();
    let inside = check("all in the HSM").await;
    assert!(!inside.contains("open too"), "{inside}");

    // And back to a root-key file (a new one), after which the HSM is no longer needed.
    let back = stdout(&ferrokms(&dir, &["migrate-root-key", "--to", "file"]));
    assert!(
        back.contains("every secret is now under the root-key file"),
        "{back}"
    );
    assert!(dir.join("root-key").exists());
    std::fs::rename(dir.join("hsm.toml"), temp.path().join("hsm.toml.retired")).unwrap();
    let outside = check("back on a root-key file").await;
    assert!(outside.starts_with("file "), "{outside}");
}
