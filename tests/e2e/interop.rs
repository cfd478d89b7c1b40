//! boto3, the AWS Encryption SDK and pyca/cryptography against the real server, through
//! `tests/interop/boto3_esdk.py`.

use std::process::Command;

use crate::harness::Server;

#[test]
fn python_aws_stack_interoperates() {
    let server = Server::start();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop/boto3_esdk.py");
    let out = Command::new("python3")
        .arg(script)
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
    assert!(stdout.contains("python interop: ok"), "{stdout}");
}
