//! Seeded keys (`serve --dev --seed FILE`, `[[seed]]`): fixed ids and material, applied at
//! every start, so a test suite gets the same ARNs and its ciphertexts decrypt run after run.

use std::path::Path;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::signature::KeyPair;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{KeyState, MacAlgorithmSpec, SigningAlgorithmSpec};
use base64::Engine;

use crate::harness::{events_named, ferrokms_command, Server};

const SYMMETRIC: &str = "11111111-1111-4111-8111-111111111111";
const HMAC: &str = "22222222-2222-4222-8222-222222222222";
const RSA: &str = "33333333-3333-4333-8333-333333333333";
const GENERATED: &str = "44444444-4444-4444-8444-444444444444";
const ACCOUNT: &str = "000000000000";

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn rsa_pem() -> (String, Vec<u8>) {
    let key = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
    let der: aws_lc_rs::encoding::Pkcs8V1Der = key.as_der().unwrap();
    let public: aws_lc_rs::encoding::PublicKeyX509Der = key.public_key().as_der().unwrap();
    let body = b64(der.as_ref());
    let lines: Vec<&str> = body
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    (
        format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            lines.join("\n")
        ),
        public.as_ref().to_vec(),
    )
}

fn write_seeds(path: &Path, symmetric: &[u8], hmac: &[u8], pem: &str) {
    let text = format!(
        r#"
[[seed]]
key_id = "{SYMMETRIC}"
description = "payments"
material = "{}"
aliases = ["alias/payments"]
tags = {{ team = "billing" }}
rotation_period_days = 180

[[seed]]
key_id = "{HMAC}"
key_spec = "HMAC_256"
key_usage = "GENERATE_VERIFY_MAC"
material = "{}"

[[seed]]
key_id = "{RSA}"
key_spec = "RSA_2048"
key_usage = "SIGN_VERIFY"
private_key_pem = """{pem}"""

[[seed]]
key_id = "{GENERATED}"
enabled = false
"#,
        b64(symmetric),
        b64(hmac)
    );
    std::fs::write(path, text).unwrap();
}

fn arn(id: &str) -> String {
    format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/{id}")
}

#[tokio::test]
async fn seeded_keys_are_the_same_on_every_run() {
    let temp = tempfile::tempdir().unwrap();
    let seeds = temp.path().join("seeds.toml");
    let (symmetric, hmac) = ([5u8; 32], [6u8; 40]);
    let (pem, public) = rsa_pem();
    write_seeds(&seeds, &symmetric, &hmac, &pem);
    let seed_flag = seeds.to_str().unwrap();
    let first_dir = temp.path().join("first");
    let server = Server::start_in(&first_dir, &["--dev", "--seed", seed_flag]);
    let kms = server.client();

    let described = kms
        .describe_key()
        .key_id("alias/payments")
        .send()
        .await
        .unwrap();
    let meta = described.key_metadata().unwrap();
    assert_eq!(meta.arn(), Some(arn(SYMMETRIC).as_str()));
    assert_eq!(meta.description(), Some("payments"));
    let sealed = kms
        .encrypt()
        .key_id("alias/payments")
        .plaintext(Blob::new(b"kept across runs".to_vec()))
        .send()
        .await
        .unwrap()
        .ciphertext_blob()
        .unwrap()
        .clone();
    let rotation = kms
        .get_key_rotation_status()
        .key_id(SYMMETRIC)
        .send()
        .await
        .unwrap();
    assert!(rotation.key_rotation_enabled());
    assert_eq!(rotation.rotation_period_in_days(), Some(180));
    let tags = kms
        .list_resource_tags()
        .key_id(SYMMETRIC)
        .send()
        .await
        .unwrap();
    assert_eq!(tags.tags().len(), 1);
    assert_eq!(tags.tags()[0].tag_value(), "billing");

    let mac = kms
        .generate_mac()
        .key_id(HMAC)
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .message(Blob::new(b"m".to_vec()))
        .send()
        .await
        .unwrap();
    let expected = aws_lc_rs::hmac::sign(
        &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, &hmac),
        b"m",
    );
    assert_eq!(mac.mac().unwrap().as_ref(), expected.as_ref());

    let got = kms.get_public_key().key_id(RSA).send().await.unwrap();
    assert_eq!(got.public_key().unwrap().as_ref(), public.as_slice());
    let sig = kms
        .sign()
        .key_id(RSA)
        .message(Blob::new(b"m".to_vec()))
        .signing_algorithm(SigningAlgorithmSpec::RsassaPssSha256)
        .send()
        .await
        .unwrap();
    aws_lc_rs::signature::UnparsedPublicKey::new(
        &aws_lc_rs::signature::RSA_PSS_2048_8192_SHA256,
        &public,
    )
    .verify(b"m", sig.signature().unwrap().as_ref())
    .expect("the seeded private key signed");

    let generated = kms.describe_key().key_id(GENERATED).send().await.unwrap();
    assert_eq!(
        generated.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );
    let created = events_named(&server, "CreateKey").len();
    assert_eq!(created, 4, "one record per seeded key");
    drop(server);

    // The same start again changes nothing, and never undoes what was done to a seeded key
    // since (a seed makes keys; it does not re-enable one or bring back its alias).
    let server = Server::start_in(&first_dir, &["--dev", "--seed", seed_flag]);
    assert_eq!(events_named(&server, "CreateKey").len(), 4);
    let kms = server.client();
    assert_eq!(kms.list_keys().send().await.unwrap().keys().len(), 4);
    kms.disable_key().key_id(SYMMETRIC).send().await.unwrap();
    kms.delete_alias()
        .alias_name("alias/payments")
        .send()
        .await
        .unwrap();
    drop(server);
    let server = Server::start_in(&first_dir, &["--dev", "--seed", seed_flag]);
    let kms = server.client();
    let meta = kms.describe_key().key_id(SYMMETRIC).send().await.unwrap();
    assert_eq!(
        meta.key_metadata().unwrap().key_state(),
        Some(&KeyState::Disabled)
    );
    assert!(kms
        .describe_key()
        .key_id("alias/payments")
        .send()
        .await
        .is_err());
    kms.enable_key().key_id(SYMMETRIC).send().await.unwrap();
    drop(server);

    // A new store seeded alike reads the old ciphertext: same key, same material id.
    let second_dir = temp.path().join("second");
    let server = Server::start_in(&second_dir, &["--dev", "--seed", seed_flag]);
    let opened = server
        .client()
        .decrypt()
        .ciphertext_blob(sealed.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"kept across runs");
    assert_eq!(opened.key_id(), Some(arn(SYMMETRIC).as_str()));
    drop(server);

    // Other material under a seeded key id stops the start, and changes nothing.
    write_seeds(&seeds, &[7u8; 32], &hmac, &pem);
    let out = ferrokms_command(&first_dir)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&first_dir)
        .args(["--seed", seed_flag])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "seed {SYMMETRIC}: the stored key has other material"
        )),
        "{stderr}"
    );
    write_seeds(&seeds, &symmetric, &hmac, &pem);
    let server = Server::start_in(&first_dir, &["--dev", "--seed", seed_flag]);
    assert_eq!(events_named(&server, "CreateKey").len(), 4);
    let opened = server
        .client()
        .decrypt()
        .ciphertext_blob(sealed)
        .send()
        .await
        .unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"kept across runs");
}

#[test]
fn a_bad_seed_file_is_refused_without_showing_its_material() {
    let temp = tempfile::tempdir().unwrap();
    let seeds = temp.path().join("seeds.toml");
    let secret = b64(&[9u8; 32]);
    std::fs::write(
        &seeds,
        format!("[[seed]]\nkey_id = \"{SYMMETRIC}\"\nmaterail = \"{secret}\"\n"),
    )
    .unwrap();
    let data = temp.path().join("data");
    let out = ferrokms_command(&data)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--seed")
        .arg(&seeds)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("materail"),
        "{stderr}"
    );
    assert!(!stderr.contains(&secret), "{stderr}");
}

#[test]
fn a_key_or_alias_seeded_twice_is_refused() {
    let temp = tempfile::tempdir().unwrap();
    let seeds = temp.path().join("seeds.toml");
    std::fs::write(
        &seeds,
        format!("[[seed]]\nkey_id = \"{SYMMETRIC}\"\naliases = [\"alias/a\"]\n[[seed]]\nkey_id = \"{HMAC}\"\naliases = [\"alias/a\"]\n"),
    )
    .unwrap();
    let data = temp.path().join("data");
    let out = ferrokms_command(&data)
        .args(["serve", "--dev", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--seed")
        .arg(&seeds)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("alias/a is seeded twice"));
}

#[test]
fn outside_dev_mode_a_seed_only_names_keys_for_imported_material() {
    let temp = tempfile::tempdir().unwrap();
    let seeds = temp.path().join("seeds.toml");
    std::fs::write(
        &seeds,
        format!(
            "[[seed]]\nkey_id = \"{SYMMETRIC}\"\nmaterial = \"{}\"\n",
            b64(&[1u8; 32])
        ),
    )
    .unwrap();
    let data = temp.path().join("data");
    let out = ferrokms_command(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--seed")
        .arg(&seeds)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("outside --dev a seed makes only keys of Origin EXTERNAL"),
        "{stderr}"
    );
    // Nor may an EXTERNAL seed bring its material along.
    std::fs::write(
        &seeds,
        format!(
            "[[seed]]\nkey_id = \"{SYMMETRIC}\"\norigin = \"EXTERNAL\"\nmaterial = \"{}\"\n",
            b64(&[1u8; 32])
        ),
    )
    .unwrap();
    let out = ferrokms_command(&data)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .arg("--seed")
        .arg(&seeds)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("through ImportKeyMaterial"));
}

#[tokio::test]
async fn a_strict_mode_seed_makes_a_key_waiting_for_its_import() {
    let temp = tempfile::tempdir().unwrap();
    let seeds = temp.path().join("seeds.toml");
    std::fs::write(
        &seeds,
        format!("[[seed]]\nkey_id = \"{SYMMETRIC}\"\norigin = \"EXTERNAL\"\naliases = [\"alias/imported\"]\n"),
    )
    .unwrap();
    let data = temp.path().join("data");
    let server = Server::start_in(&data, &["--seed", seeds.to_str().unwrap()]);
    let kms = server.client();
    let meta = kms
        .describe_key()
        .key_id("alias/imported")
        .send()
        .await
        .unwrap();
    let meta = meta.key_metadata().unwrap();
    assert_eq!(
        meta.arn(),
        Some(format!("arn:aws:kms:us-east-1:111122223333:key/{SYMMETRIC}").as_str())
    );
    assert_eq!(meta.key_state(), Some(&KeyState::PendingImport));
}
