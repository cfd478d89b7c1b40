//! Real clients against the real server, through the programs in `tests/interop/`: boto3,
//! the AWS Encryption SDK and pyca/cryptography, Tink and the Encryption SDK CLI (Python),
//! the AWS SDK for Go v2, and the AWS SDK and Encryption SDK for JavaScript.

use std::process::Command;

use crate::harness::Server;

/// Runs one script of tests/interop against a fresh server; it must print `marker`.
fn run_script(name: &str, marker: &str) {
    run_script_on(&Server::start(), name, marker);
}

fn run_script_on(server: &Server, name: &str, marker: &str) {
    let mut python = Command::new("python3");
    python
        .arg(format!(
            "{}/tests/interop/{name}",
            env!("CARGO_MANIFEST_DIR")
        ))
        // botocore's own endpoint setting, for clients that build their boto3 client
        // themselves (Tink, the Encryption SDK CLI).
        .env("AWS_ENDPOINT_URL_KMS", &server.endpoint)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    run_client(
        python,
        server,
        marker,
        "pip install boto3 aws-encryption-sdk cryptography",
    );
}

/// Runs a client program against `server` (its endpoint and the admin's key pair in the
/// environment); it must succeed and print `marker`. `install` says what it needs.
fn run_client(mut command: Command, server: &Server, marker: &str, install: &str) {
    let out = command
        .env("FERROKMS_ENDPOINT", &server.endpoint)
        .env("AWS_ACCESS_KEY_ID", &server.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
        .output()
        .unwrap_or_else(|e| panic!("{command:?} does not run ({install}): {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "interop client failed ({install})\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains(marker), "{stdout}");
}

#[test]
fn python_aws_stack_interoperates() {
    run_script("boto3_esdk.py", "python interop: ok");
}

/// Tink's KMS envelope AEAD and the AWS Encryption SDK CLI (PyPI `tink[awskms]`,
/// `aws-encryption-sdk-cli`).
#[test]
fn tink_and_the_encryption_sdk_cli_interoperate() {
    run_script(
        "tink_and_esdk_cli.py",
        "tink and encryption sdk cli interop: ok",
    );
}

/// Where Debian's golang-github-aws-aws-sdk-go-v2-dev keeps the SDK's sources.
const DEBIAN_GOPATH: &str = "/usr/share/gocode";

/// The AWS SDK for Go v2, built from Debian's sources in GOPATH mode (nothing downloaded).
#[test]
fn go_sdk_interoperates() {
    assert!(
        std::path::Path::new(DEBIAN_GOPATH)
            .join("src/github.com/aws/aws-sdk-go-v2/service/kms")
            .is_dir(),
        "apt-get install golang-go golang-github-aws-aws-sdk-go-v2-dev (scripts/test-all.sh does)"
    );
    let mut go = Command::new("go");
    go.args(["run", "main.go"])
        .current_dir(format!("{}/tests/interop/go", env!("CARGO_MANIFEST_DIR")))
        .env("GO111MODULE", "off")
        .env("GOPATH", DEBIAN_GOPATH)
        .env(
            "GOCACHE",
            format!("{}/gocache", env!("CARGO_TARGET_TMPDIR")),
        );
    run_client(
        go,
        &Server::start(),
        "go interop: ok",
        "apt-get install golang-go",
    );
}

/// The AWS SDK for JavaScript v3 and the AWS Encryption SDK for JavaScript, from the npm
/// packages locked in tests/interop/js (`npm ci --prefix tests/interop/js`).
#[test]
fn javascript_sdk_and_encryption_sdk_interoperate() {
    let dir = format!("{}/tests/interop/js", env!("CARGO_MANIFEST_DIR"));
    assert!(
        std::path::Path::new(&dir)
            .join("node_modules/@aws-crypto/client-node")
            .is_dir(),
        "run `npm ci --prefix tests/interop/js` (scripts/test-all.sh does)"
    );
    let mut node = Command::new("node");
    node.arg("kms_and_esdk.mjs").current_dir(&dir);
    run_client(
        node,
        &Server::start(),
        "javascript interop: ok",
        "npm ci --prefix tests/interop/js",
    );
}

/// Signatures, RSA-OAEP, ECDH and data key pairs checked by pyca/cryptography.
#[test]
fn asymmetric_crypto_agrees_with_an_independent_implementation() {
    run_script("asymmetric_cryptography.py", "asymmetric interop: ok");
}

/// Material wrapped outside ferrokms (OAEP and RSA-AES key wrap) imports, re-imports, is
/// deleted and expires.
#[test]
fn imported_material_wrapped_by_pyca_cryptography() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &["--dev", "--ephemeral", "--debug-clock"]);
    run_script_on(&server, "import_material.py", "import interop: ok");
}

/// RSA, ECC, Ed25519 and HMAC material made and wrapped by pyca/cryptography imports and
/// works as the key it was made for; material of another kind or size is refused.
#[test]
fn every_key_type_imports_material_made_by_pyca_cryptography() {
    run_script("import_every_key_type.py", "import every key type: ok");
}

/// A symmetric key holds several imported materials: one pending until RotateKeyOnDemand,
/// each deleted, re-imported and expiring on its own.
#[test]
fn several_imported_materials_rotate_and_expire_one_by_one() {
    let temp = tempfile::tempdir().unwrap();
    let server = Server::start_in(temp.path(), &["--dev", "--ephemeral", "--debug-clock"]);
    run_script_on(&server, "several_materials.py", "several materials: ok");
}

/// Ed25519 signatures checked by pyca/cryptography, Ed25519ph, and ML-DSA signatures of a
/// mu computed by the script as FIPS 204 defines it.
#[test]
fn eddsa_and_external_mu_agree_with_independent_implementations() {
    run_script("eddsa_and_external_mu.py", "eddsa and external mu: ok");
}

/// Where Terraform finds providers without downloading them (`TF_PLUGIN_MIRROR`, or the
/// machine's /opt/tf-plugins): a filesystem mirror, as `terraform providers mirror` writes.
fn terraform_mirror() -> std::path::PathBuf {
    std::env::var_os("TF_PLUGIN_MIRROR")
        .map(Into::into)
        .unwrap_or_else(|| "/opt/tf-plugins".into())
}

/// Terraform's AWS provider manages a key (rotation, tags), its alias and a ciphertext, and
/// reads the plaintext back through aws_kms_secrets; decrypting under another encryption
/// context is refused; destroy schedules the key's deletion. Only where the machine has a `terraform`
/// binary and the provider in a local mirror: nothing is downloaded.
#[tokio::test]
async fn terraform_manages_a_key_alias_and_ciphertext() {
    let found = Command::new("terraform").arg("version").output();
    if !found.as_ref().is_ok_and(|o| o.status.success()) {
        eprintln!("SKIPPED terraform_manages_a_key_alias_and_ciphertext: no `terraform` on PATH (it is not downloaded)");
        return;
    }
    let mirror = terraform_mirror();
    if !mirror.join("registry.terraform.io/hashicorp/aws").is_dir() {
        eprintln!(
            "SKIPPED terraform_manages_a_key_alias_and_ciphertext: no hashicorp/aws provider in {} (set TF_PLUGIN_MIRROR; it is not downloaded)",
            mirror.display()
        );
        return;
    }
    let server = Server::start();
    let work = tempfile::tempdir().expect("temp dir");
    std::fs::copy(
        format!(
            "{}/tests/interop/terraform/main.tf",
            env!("CARGO_MANIFEST_DIR")
        ),
        work.path().join("main.tf"),
    )
    .expect("copy main.tf");
    let cli_config = work.path().join("terraformrc");
    std::fs::write(
        &cli_config,
        format!(
            "provider_installation {{\n  filesystem_mirror {{\n    path = \"{}\"\n  }}\n}}\n",
            mirror.display()
        ),
    )
    .expect("write the CLI config");
    let terraform = |args: &[&str]| {
        Command::new("terraform")
            .args(args)
            .current_dir(work.path())
            .env("TF_CLI_CONFIG_FILE", &cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_VAR_endpoint", &server.endpoint)
            .env("AWS_ACCESS_KEY_ID", &server.access_key_id)
            .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .output()
            .expect("terraform runs")
    };
    let ok = |args: &[&str]| {
        let out = terraform(args);
        assert!(
            out.status.success(),
            "terraform {args:?}\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    ok(&["init", "-input=false", "-no-color"]);
    ok(&["apply", "-auto-approve", "-input=false", "-no-color"]);
    assert_eq!(ok(&["output", "-raw", "decrypted"]), "terraform round trip");
    let key_id = ok(&["output", "-raw", "key_id"]);

    // What Terraform made is what the API shows.
    let kms = server.client();
    let meta = kms
        .describe_key()
        .key_id("alias/terraform-interop")
        .send()
        .await
        .expect("DescribeKey");
    assert_eq!(meta.key_metadata().expect("metadata").key_id(), key_id);
    let rotation = kms
        .get_key_rotation_status()
        .key_id(&key_id)
        .send()
        .await
        .expect("rotation");
    assert!(rotation.key_rotation_enabled());
    let tags = kms
        .list_resource_tags()
        .key_id(&key_id)
        .send()
        .await
        .expect("tags");
    assert!(tags
        .tags()
        .iter()
        .any(|t| t.tag_key() == "team" && t.tag_value() == "platform"));

    // The error path: decrypting with another encryption context is refused by the server,
    // and Terraform reports AWS's error.
    let refused = terraform(&[
        "apply",
        "-auto-approve",
        "-input=false",
        "-no-color",
        "-var",
        "decrypt_purpose=other",
    ]);
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("InvalidCiphertextException"), "{said}");

    ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
    // A new client: the server has closed the old one's idle connection meanwhile.
    let gone = server
        .client()
        .describe_key()
        .key_id(&key_id)
        .send()
        .await
        .expect("DescribeKey");
    assert_eq!(
        gone.key_metadata().expect("metadata").key_state(),
        Some(&aws_sdk_kms::types::KeyState::PendingDeletion)
    );
    server.stop();
}
