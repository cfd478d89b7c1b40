//! Secrets hygiene: after a workload with plaintexts and data keys the test knows, none of
//! them is in the data directory (database, WAL, every file) or in the server's debug log,
//! raw or as base64 or hex.

use std::path::{Path, PathBuf};

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{DataKeyPairSpec, DataKeySpec};
use base64::Engine;

use crate::harness::Server;
use crate::new_key;

fn random_secret() -> Vec<u8> {
    let mut bytes = vec![0u8; 32];
    aws_lc_rs::rand::fill(&mut bytes).unwrap();
    bytes
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(files_under(&path));
        } else {
            found.push(path);
        }
    }
    found
}

/// The forms a secret could leak in.
fn forms(secret: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = secret.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        secret.to_vec(),
        base64::engine::general_purpose::STANDARD
            .encode(secret)
            .into_bytes(),
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(secret)
            .into_bytes(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[tokio::test]
async fn no_plaintext_or_data_key_reaches_the_disk_or_the_log() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let log = temp.path().join("server.log");
    let dir_text = dir.to_str().unwrap().to_owned();
    let server = Server::start_logging(
        &["serve", "--listen", "127.0.0.1:0", "--data-dir", &dir_text],
        &dir,
        Some(&log),
    );
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    let mut secrets = Vec::new();
    for _ in 0..5 {
        let plaintext = random_secret();
        let blob = kms
            .encrypt()
            .key_id(&id)
            .plaintext(Blob::new(plaintext.clone()))
            .send()
            .await
            .unwrap()
            .ciphertext_blob
            .unwrap();
        let back = kms.decrypt().ciphertext_blob(blob).send().await.unwrap();
        assert_eq!(back.plaintext().unwrap().as_ref(), plaintext.as_slice());
        secrets.push(plaintext);
        let data_key = kms
            .generate_data_key()
            .key_id(&id)
            .key_spec(DataKeySpec::Aes256)
            .send()
            .await
            .unwrap();
        secrets.push(data_key.plaintext().unwrap().as_ref().to_vec());
    }
    let pair = kms
        .generate_data_key_pair()
        .key_id(&id)
        .key_pair_spec(DataKeyPairSpec::EccNistP256)
        .send()
        .await
        .unwrap();
    secrets.push(pair.private_key_plaintext().unwrap().as_ref().to_vec());
    server.stop();

    let mut scanned = files_under(&dir);
    assert!(
        scanned.iter().any(|p| p.ends_with("ferrokms.db")),
        "{scanned:?}"
    );
    scanned.push(log.clone());
    assert!(
        std::fs::read_to_string(&log).unwrap().contains("DEBUG"),
        "the log was written at debug level"
    );
    for file in &scanned {
        let bytes = std::fs::read(file).unwrap();
        for secret in &secrets {
            for form in forms(secret) {
                assert!(
                    !contains(&bytes, &form),
                    "{} holds a secret ({} bytes form)",
                    file.display(),
                    form.len()
                );
            }
        }
    }
}
