//! The Debian package (scripts/build-deb.sh): installed on this machine with dpkg, its
//! service started once as systemd would start it (the unit's ExecStart, as its user), used
//! by a client, stopped, and purged. Needs root, or sudo without a password, as CI has.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use crate::harness::client_at;

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout == b"0\n")
}

/// `command args` as root: directly when the tests run as root, else through `sudo -n`.
fn as_root(program: &str, args: &[&str]) -> Output {
    let mut command = if is_root() {
        Command::new(program)
    } else {
        let mut sudo = Command::new("sudo");
        sudo.args(["-n", program]);
        sudo
    };
    command.args(args).output().unwrap_or_else(|e| {
        panic!("{program} {args:?} does not run ({e}): the package test needs root or sudo -n")
    })
}

fn ok(program: &str, args: &[&str]) -> String {
    let out = as_root(program, args);
    assert!(
        out.status.success(),
        "{program} {args:?}\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Removes the package, its user and its data whatever the test did.
struct Installed;

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = as_root("pkill", &["-u", "ferrokms"]);
        let _ = as_root("dpkg", &["--purge", "ferrokms"]);
        let _ = as_root("rm", &["-rf", "/var/lib/ferrokms"]);
        let _ = as_root("userdel", &["ferrokms"]);
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

#[tokio::test]
async fn the_debian_package_installs_and_its_service_runs_hardened() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out_dir = tempfile::tempdir().expect("temp dir");
    let built = Command::new(format!("{root}/scripts/build-deb.sh"))
        .arg(env!("CARGO_BIN_EXE_ferrokms"))
        .arg(out_dir.path())
        // The debug binary is large; xz would take most of the test's time.
        .env("DEB_COMPRESSION", "none")
        .output()
        .expect("build-deb.sh runs");
    assert!(built.status.success(), "{built:?}");
    let deb = String::from_utf8_lossy(&built.stdout).trim().to_owned();
    assert!(Path::new(&deb).is_file(), "{deb}");
    // What the package holds: the unit, the conffile, the manual and completions.
    let contents = ok("dpkg-deb", &["--contents", &deb]);
    for path in [
        "./usr/bin/ferrokms",
        "./lib/systemd/system/ferrokms.service",
        "./etc/ferrokms/config.toml",
        "./usr/share/man/man1/ferrokms.1.gz",
        "./usr/share/man/man1/ferrokms-serve.1.gz",
        "./usr/share/bash-completion/completions/ferrokms",
    ] {
        assert!(contents.contains(path), "{path} missing from\n{contents}");
    }

    // It purges what it installs, and removes the data directory it made: never on a
    // machine where ferrokms is installed or has left its data.
    let installed = as_root("dpkg", &["-s", "ferrokms"]).status.success();
    assert!(
        !installed && !Path::new("/var/lib/ferrokms").exists(),
        "refusing to run: ferrokms is installed here, or /var/lib/ferrokms exists; this test installs and purges the package, so run it on a machine without"
    );
    let _cleanup = Installed;
    ok("dpkg", &["-i", &deb]);
    let passwd = ok("getent", &["passwd", "ferrokms"]);
    assert!(
        passwd.contains("/var/lib/ferrokms") && passwd.contains("nologin"),
        "{passwd}"
    );
    let state = ok("stat", &["-c", "%U %a", "/var/lib/ferrokms"]);
    assert_eq!(state.trim(), "ferrokms 700");
    let conf = ok("stat", &["-c", "%U:%G %a", "/etc/ferrokms/config.toml"]);
    assert_eq!(conf.trim(), "root:ferrokms 640");

    // The unit as installed: its own user, systemd's hardening, no capabilities.
    let unit = std::fs::read_to_string("/lib/systemd/system/ferrokms.service").expect("unit");
    for line in [
        "User=ferrokms",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "StateDirectory=ferrokms",
        "CapabilityBoundingSet=\n",
        "AmbientCapabilities=\n",
    ] {
        assert!(unit.contains(line), "the unit lacks {line:?}");
    }
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let verified = as_root(
            "systemd-analyze",
            &["verify", "/lib/systemd/system/ferrokms.service"],
        );
        let said = String::from_utf8_lossy(&verified.stderr);
        assert!(
            !said.contains("ferrokms.service:"),
            "systemd-analyze finds fault with the unit:\n{said}"
        );
    }
    let exec_start = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");

    // Start it once as systemd would (this machine runs no systemd): the unit's ExecStart as
    // its user, with its umask. The operator's one edit: a free port.
    let port = free_port();
    let config = ok("cat", &["/etc/ferrokms/config.toml"]);
    let config = config.replace(
        "listen = \"127.0.0.1:4599\"",
        &format!("listen = \"127.0.0.1:{port}\""),
    );
    let edited = out_dir.path().join("config.toml");
    std::fs::write(&edited, config).expect("write config");
    ok(
        "cp",
        &[edited.to_str().expect("utf-8"), "/etc/ferrokms/config.toml"],
    );
    let mut words = exec_start.split_whitespace();
    let program = words.next().expect("a program");
    let script = format!(
        "umask 0077; exec {program} {}",
        words.collect::<Vec<_>>().join(" ")
    );
    let mut child = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "ferrokms", "--", "sh", "-c", &script]);
        c
    } else {
        let mut c = Command::new("sudo");
        c.args(["-n", "-u", "ferrokms", "sh", "-c", &script]);
        c
    };
    let mut child = child
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("the service starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut banner = String::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.expect("banner");
        banner.push_str(&line);
        banner.push('\n');
        if line.starts_with("try: ") {
            break;
        }
    }
    // The rest of its output, read so that the service never writes to a closed pipe.
    std::thread::spawn(move || for _ in lines {});
    assert!(
        banner.contains(&format!("ferrokms listening on http://127.0.0.1:{port}")),
        "{banner}"
    );
    assert!(
        banner.contains("data directory: /var/lib/ferrokms"),
        "{banner}"
    );
    let value = |name: &str| {
        banner
            .lines()
            .find_map(|l| l.strip_prefix(&format!("export {name}=")))
            .map(|v| v.split_whitespace().next().unwrap_or_default().to_owned())
            .unwrap_or_else(|| panic!("no {name} in\n{banner}"))
    };
    let (key, secret) = (value("AWS_ACCESS_KEY_ID"), value("AWS_SECRET_ACCESS_KEY"));

    // A client's round trip through the installed service.
    let endpoint = format!("http://127.0.0.1:{port}");
    let kms = client_at(&endpoint, "us-east-1", &key, &secret);
    let made = kms.create_key().send().await.expect("CreateKey");
    let key_id = made.key_metadata().expect("metadata").key_id().to_owned();
    let sealed = kms
        .encrypt()
        .key_id(&key_id)
        .plaintext(aws_sdk_kms::primitives::Blob::new(b"packaged".to_vec()))
        .send()
        .await
        .expect("Encrypt");
    let opened = kms
        .decrypt()
        .ciphertext_blob(sealed.ciphertext_blob().expect("blob").clone())
        .send()
        .await
        .expect("Decrypt");
    assert_eq!(opened.plaintext().expect("plaintext").as_ref(), b"packaged");

    // Everything it wrote is the service user's, and its secrets only that user's.
    let files = ok(
        "find",
        &["/var/lib/ferrokms", "-type", "f", "-printf", "%u %m %p\n"],
    );
    assert!(files.contains("/var/lib/ferrokms/root-key"), "{files}");
    for line in files.lines() {
        assert!(line.starts_with("ferrokms "), "{line}");
        if line.ends_with("/root-key") || line.contains("credentials") {
            assert!(line.starts_with("ferrokms 600 "), "{line}");
        }
    }

    // SIGTERM (systemctl stop): it exits cleanly.
    ok("pkill", &["-TERM", "-u", "ferrokms"]);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the service did not stop"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(status.success(), "{status}");

    // Purge takes the configuration and never the keys.
    let purged = ok("dpkg", &["--purge", "ferrokms"]);
    assert!(!Path::new("/etc/ferrokms/config.toml").exists());
    assert!(!Path::new("/usr/bin/ferrokms").exists());
    let kept = as_root("test", &["-f", "/var/lib/ferrokms/root-key"]);
    assert!(kept.status.success(), "purge took the root key: {purged}");
}
