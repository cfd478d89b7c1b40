//! What operators get from the binary besides the service: JSON log lines, shell
//! completions and the manual page, all from the one CLI definition.

use std::process::Command;

use crate::harness::Server;

fn ferrokms(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(args)
        .envs(env.iter().copied())
        .output()
        .expect("ferrokms runs")
}

#[test]
fn logs_are_json_lines_when_asked_for() {
    let temp = tempfile::tempdir().expect("temp dir");
    let log = temp.path().join("server.log");
    let server = Server::start_logging_with(
        &["serve", "--dev", "--ephemeral", "--listen", "127.0.0.1:0"],
        temp.path(),
        Some(&log),
        &[("FERROKMS_LOG_FORMAT", "json")],
    );
    let answer = server.kms("ListKeys", "{}");
    assert_eq!(answer.status, 200, "{}", answer.body);
    server.stop();
    let text = std::fs::read_to_string(&log).expect("the log");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["fields"]["operation"] == "ListKeys"
            && l["fields"]["message"] == "ok"
            && l["level"] == "INFO"),
        "{text}"
    );

    // Anything else is refused before the service starts.
    let out = ferrokms(&["--help"], &[("FERROKMS_LOG_FORMAT", "yaml")]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("text or json"));
}

#[test]
fn completions_and_the_manual_page_come_from_the_cli_definition() {
    for shell in ["bash", "zsh", "fish"] {
        let out = ferrokms(&["completions", shell], &[]);
        assert!(out.status.success(), "{out:?}");
        let script = String::from_utf8_lossy(&out.stdout);
        for word in ["serve", "xks-proxy", "migrate-root-key", "data-dir"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    let out = ferrokms(&["man"], &[]);
    assert!(out.status.success(), "{out:?}");
    let page = String::from_utf8_lossy(&out.stdout);
    assert!(page.contains(".TH ferrokms"), "{page}");
    for word in ["serve", "admin", "audit", "completions"] {
        assert!(page.contains(word), "the manual page lacks {word}");
    }
    // With --out-dir, every page the top one names is there.
    let dir = tempfile::tempdir().expect("temp dir");
    let out = ferrokms(
        &["man", "--out-dir", dir.path().to_str().expect("utf-8")],
        &[],
    );
    assert!(out.status.success(), "{out:?}");
    let serve =
        std::fs::read_to_string(dir.path().join("ferrokms-serve.1")).expect("ferrokms-serve.1");
    assert!(
        serve.contains("drain\\-seconds") || serve.contains("drain-seconds"),
        "{serve}"
    );
    assert!(dir.path().join("ferrokms.1").exists());
    assert!(dir.path().join("ferrokms-admin.1").exists());
}
