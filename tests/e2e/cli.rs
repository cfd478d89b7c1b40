//! The real aws CLI against the real server, through `tests/aws-cli-smoke.sh`.

use std::process::Command;

#[test]
fn aws_cli_smoke_script_passes() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/aws-cli-smoke.sh");
    let out = Command::new("bash")
        .arg(script)
        .env("FERROKMS_BIN", env!("CARGO_BIN_EXE_ferrokms"))
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "smoke script failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}"
    );
    assert!(stdout.contains("aws-cli smoke: ok"), "{stdout}");
}
