//! The real aws CLI against the real server, through `tests/aws-cli-smoke.sh`.

use std::process::Command;

#[test]
fn aws_cli_smoke_script_passes() {
    smoke("aws", "aws-cli/1.");
}

/// The aws CLI v2, from Debian's awscli package.
#[test]
fn aws_cli_v2_smoke_script_passes() {
    smoke("/usr/bin/aws", "aws-cli/2.");
}

/// Runs the smoke script with the aws command `cli`, whose --version must start with
/// `version`.
fn smoke(cli: &str, version: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws-cli-smoke.sh");
    let mut command = Command::new("bash");
    command
        .arg(script)
        .env("FERROKMS_BIN", env!("CARGO_BIN_EXE_ferrokms"))
        .env("AWS_CLI", cli);
    if crate::POSTGRES {
        // `serve` takes its database from FERROKMS_STORE when no --store is given.
        command.env("FERROKMS_STORE", crate::harness::fresh_database());
    }
    let out = command.output().expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "smoke script failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("aws-cli smoke: ok"), "{stdout}");
    assert!(stdout.starts_with(version), "{stdout}");
}
