//! The real aws CLI against the real server, through `tests/aws-cli-smoke.sh`.

use std::process::Command;

#[test]
fn aws_cli_smoke_script_passes() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws-cli-smoke.sh");
    let mut command = Command::new("bash");
    command
        .arg(script)
        .env("FERROKMS_BIN", env!("CARGO_BIN_EXE_ferrokms"));
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
}
