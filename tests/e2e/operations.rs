//! What operators get from the binary besides the service: JSON log lines, shell
//! completions and the manual page, all from the one CLI definition, and `doctor`.

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

/// A self-signed certificate for 127.0.0.1 that ends `days` from now (negative: ended).
fn certificate_ending_in(dir: &std::path::Path, days: i64) -> std::path::PathBuf {
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("params");
    params.not_before = time::OffsetDateTime::now_utc() - time::Duration::days(400);
    params.not_after = time::OffsetDateTime::now_utc() + time::Duration::days(days);
    let key = rcgen::KeyPair::generate().expect("key pair");
    let cert = params.self_signed(&key).expect("certificate");
    let path = dir.join(format!("cert-{days}.pem"));
    std::fs::write(&path, cert.pem()).expect("write certificate");
    path
}

/// `ferrokms doctor` on a healthy data directory finds nothing; each fault an operator can
/// make is named, with what to do, and makes it exit 1; it changes nothing it looks at.
#[test]
fn doctor_names_what_an_operator_must_fix() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    Server::start_in(&data, &[]).stop();
    let data_arg = data.to_str().expect("utf-8");
    let doctor = |args: &[&str]| {
        let out = ferrokms(&[&["doctor"], args].concat(), &[]);
        let said = String::from_utf8_lossy(&out.stdout).into_owned();
        (out.status.code(), said)
    };
    let before: Vec<_> = std::fs::read_dir(&data)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();

    let (code, said) = doctor(&["--data-dir", data_arg]);
    assert_eq!(code, Some(0), "{said}");
    for expected in [
        "no problems found",
        "is private (mode 700)",
        "root-key is private (mode 600)",
        "root key: file",
        "the SQLite store is reachable, schema version",
        "the clock is within",
    ] {
        assert!(said.contains(expected), "{expected:?} not in\n{said}");
    }

    // A root key others can read.
    let root_key = data.join("root-key");
    std::fs::set_permissions(&root_key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let (code, said) = doctor(&["--data-dir", data_arg]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains(&format!(
            "PROBLEM {} is readable by group or others (mode 644): chmod 600 {}",
            root_key.display(),
            root_key.display()
        )),
        "{said}"
    );
    // The service would refuse it too, and doctor says so.
    assert!(said.contains("PROBLEM root key: "), "{said}");
    std::fs::set_permissions(&root_key, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    // Certificates from the config: soon ending, ended, and fine.
    for (days, expected) in [
        (10, "expires in 9 days"),
        (-1, "expired on"),
        (200, "is valid for 199 more days"),
    ] {
        let cert = certificate_ending_in(dir.path(), days);
        let key = dir.path().join("tls-key.pem");
        std::fs::write(&key, "not read by doctor").expect("write key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let config = dir.path().join("config.toml");
        std::fs::write(
            &config,
            format!(
                "data_dir = \"{}\"\ntls_cert = \"{}\"\ntls_key = \"{}\"\n",
                data.display(),
                cert.display(),
                key.display()
            ),
        )
        .expect("write config");
        let (code, said) = doctor(&["--config", config.to_str().expect("utf-8")]);
        assert!(said.contains(expected), "{expected:?} not in\n{said}");
        assert_eq!(code, Some(if days > 30 { 0 } else { 1 }), "{said}");
    }

    // A store that cannot be reached.
    let (code, said) = doctor(&[
        "--data-dir",
        data_arg,
        "--store",
        "postgres://postgres@127.0.0.1:1/nowhere",
    ]);
    assert_eq!(code, Some(1), "{said}");
    assert!(
        said.contains("PROBLEM the PostgreSQL store cannot be read"),
        "{said}"
    );
    assert!(
        !said.contains("postgres@"),
        "the URL's user is not shown: {said}"
    );

    // A lost root key, and a directory that is not there.
    std::fs::rename(&root_key, dir.path().join("moved-root-key")).expect("move");
    let (code, said) = doctor(&["--data-dir", data_arg]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("has no root key"), "{said}");
    assert!(!root_key.exists(), "doctor made a root key");
    let missing = dir.path().join("missing");
    let (code, said) = doctor(&["--data-dir", missing.to_str().expect("utf-8")]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("ferrokms init --data-dir"), "{said}");
    assert!(!missing.exists(), "doctor made the directory");

    let mut after: Vec<_> = std::fs::read_dir(&data)
        .expect("list")
        .map(|e| e.expect("entry").file_name())
        .collect();
    after.sort();
    let mut before = before;
    before.retain(|n| n != "root-key");
    before.sort();
    assert_eq!(after, before, "doctor changed the data directory");
}

/// Under systemd (JOURNAL_STREAM set) the first start does not print the admin's secret:
/// the journal is readable by more than the service's user. The file holds it.
#[test]
fn the_admin_secret_is_kept_out_of_the_journal() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().expect("temp dir");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ferrokms"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir.path())
        .env("JOURNAL_STREAM", "8:12345")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("ferrokms starts");
    let mut banner = String::new();
    for line in BufReader::new(child.stdout.take().expect("stdout")).lines() {
        let line = line.expect("banner");
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("try: ") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let file = dir.path().join("admin-credentials");
    let kept = std::fs::read_to_string(&file).expect("the credentials file");
    let secret = kept
        .lines()
        .find_map(|l| l.strip_prefix("export AWS_SECRET_ACCESS_KEY="))
        .expect("a secret in the file");
    assert!(!banner.contains(secret), "{banner}");
    assert!(!banner.contains("AWS_SECRET_ACCESS_KEY"), "{banner}");
    assert!(
        banner.contains(&format!("admin credentials in {}", file.display())),
        "{banner}"
    );
}

/// `ferrokms doctor --endpoint` checks a running node: it answers, its clock agrees, and
/// the certificate it presents is trusted and not ending; an untrusted certificate or an
/// address nobody listens on is named.
#[test]
fn doctor_checks_a_running_node() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (cert, key, _) = crate::tls::certificate(dir.path(), "doctor");
    let server = Server::start_in(
        &dir.path().join("data"),
        &[
            "--tls-cert",
            cert.to_str().expect("utf-8"),
            "--tls-key",
            key.to_str().expect("utf-8"),
        ],
    );
    assert!(server.endpoint.starts_with("https://"));
    let doctor = |args: &[&str]| {
        let out = ferrokms(&[&["doctor"], args].concat(), &[]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    };
    let ca = cert.to_str().expect("utf-8");
    let (code, said) = doctor(&["--endpoint", &server.endpoint, "--ca-bundle", ca]);
    assert_eq!(code, Some(0), "{said}");
    for expected in [
        format!("ok      the node at {} answers (HTTP/1.1 ", server.endpoint),
        format!("the certificate {} presents is valid for", server.endpoint),
        "the clock is within".to_owned(),
    ] {
        assert!(said.contains(&expected), "{expected:?} not in\n{said}");
    }
    assert!(
        !said.contains("root key"),
        "only the node was asked about: {said}"
    );

    let (code, said) = doctor(&["--endpoint", &server.endpoint]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("failed the TLS handshake"), "{said}");
    server.stop();

    let (code, said) = doctor(&["--endpoint", "http://127.0.0.1:1"]);
    assert_eq!(code, Some(1), "{said}");
    assert!(said.contains("cannot be reached"), "{said}");
}
