//! boto3, the AWS Encryption SDK and pyca/cryptography against the real server, through the
//! scripts in `tests/interop/`.

use std::process::Command;

use crate::harness::Server;

/// Runs one script of tests/interop against a fresh server; it must print `marker`.
fn run_script(name: &str, marker: &str) {
    run_script_on(&Server::start(), name, marker);
}

fn run_script_on(server: &Server, name: &str, marker: &str) {
    let script = format!("{}/tests/interop/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(&script)
        .env("FERROKMS_ENDPOINT", &server.endpoint)
        .env("AWS_ACCESS_KEY_ID", &server.access_key_id)
        .env("AWS_SECRET_ACCESS_KEY", &server.secret_access_key)
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "interop script failed (pip install boto3 aws-encryption-sdk cryptography)\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains(marker), "{stdout}");
}

#[test]
fn python_aws_stack_interoperates() {
    run_script("boto3_esdk.py", "python interop: ok");
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
