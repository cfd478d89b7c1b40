//! The audit trail proves itself without trusting its own database: forgeries made by
//! someone who can write the database (and nothing else) are caught by `audit verify` with
//! the public key and digests kept outside it. The forger is a Python script that edits the
//! SQLite file directly, so this module runs in the SQLite suite; verification itself does
//! not depend on the backend.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{copy_service, ferrokms_command, Server};
use crate::{encrypt, new_key};

/// Rewrites event 3 (a management event becomes a data event) and recomputes the hash chain after it, then
/// either deletes every digest (`drop`) or re-signs them all with a key of the forger's own,
/// which it also stores as the store's signing key (`resign`).
const FORGER: &str = r#"
import hashlib, sqlite3, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

db, mode = sys.argv[1], sys.argv[2]
c = sqlite3.connect(db)
c.execute("UPDATE audit_events SET event = replace(event, 'Management', 'Data') WHERE seq = 3")
assert '"Data"' in c.execute("SELECT event FROM audit_events WHERE seq = 3").fetchone()[0]
prev = c.execute("SELECT hash FROM audit_events WHERE seq = 2").fetchone()[0]
hashes_at = {}
for seq, event in c.execute("SELECT seq, event FROM audit_events WHERE seq >= 3 ORDER BY seq").fetchall():
    h = hashlib.sha256(f"{prev}\n{seq}\n{event}".encode()).hexdigest()
    c.execute("UPDATE audit_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, h, seq))
    hashes_at[seq] = h
    prev = h
if mode == "drop":
    c.execute("DELETE FROM audit_digests")
else:
    key = ec.generate_private_key(ec.SECP256R1())
    public = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    c.execute("UPDATE audit_signing_key SET public_key = ?", (public,))
    link = "0" * 64
    for (upto, chain_hash) in c.execute("SELECT upto_seq, chain_hash FROM audit_digests ORDER BY upto_seq").fetchall():
        chain_hash = hashes_at.get(upto, chain_hash)
        message = f"ferrokms-audit-digest/v2\n{upto}\n{chain_hash}\n{link}".encode()
        signature = key.sign(message, ec.ECDSA(hashes.SHA256()))
        c.execute("UPDATE audit_digests SET chain_hash = ?, signature = ?, previous = ? WHERE upto_seq = ?",
                  (chain_hash, signature, link, upto))
        link = hashlib.sha256(signature).hexdigest()
c.commit()
"#;

fn forge(dir: &Path, mode: &str) {
    let out = Command::new("python3")
        .args(["-c", FORGER])
        .arg(dir.join("ferrokms.db"))
        .arg(mode)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

fn sql(dir: &Path, statement: &str) {
    crate::harness::store_sql(dir, statement);
}

fn verify(dir: &Path, extra: &[&str]) -> std::process::Output {
    ferrokms_command(dir)
        .args(["audit", "verify", "--data-dir"])
        .arg(dir)
        .args(extra)
        .output()
        .unwrap()
}

fn refused(dir: &Path, extra: &[&str]) -> String {
    let out = verify(dir, extra);
    assert!(!out.status.success(), "the forgery went unnoticed: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A service with a few requests in its trail (one digest each), stopped, and the operator's
/// copy of its public key and digests, kept apart from it.
async fn audited_service(temp: &Path) -> (PathBuf, PathBuf) {
    let dir = temp.join("data");
    let server = Server::start_in(&dir, &[]);
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    for _ in 0..6 {
        encrypt(&kms, &id, "x").await.unwrap();
    }
    server.stop();
    let kept = temp.join("kept-elsewhere");
    let out = ferrokms_command(&dir)
        .args(["audit", "export-digests"])
        .arg(&kept)
        .arg("--data-dir")
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(kept.join("audit-digests.jsonl").is_file());
    (dir, kept)
}

#[tokio::test]
async fn a_writer_of_the_database_alone_cannot_make_verify_lie() {
    if crate::POSTGRES {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let (dir, kept) = audited_service(temp.path()).await;
    let key = kept.join("audit-signing-key.pem");
    let key = key.to_str().unwrap();
    let copies = kept.to_str().unwrap();
    let out = verify(&dir, &["--public-key", key, "--digests", copies]);
    assert!(out.status.success(), "the untouched log is intact: {out:?}");
    let copy = |name: &str| {
        let target = temp.path().join(name);
        copy_service(&dir, &target);
        target
    };

    // Rewrite an event, recompute the chain and delete the digests.
    let dropped = copy("dropped");
    forge(&dropped, "drop");
    let problem = refused(&dropped, &["--public-key", key]);
    assert!(problem.contains("covered by no signed digest"), "{problem}");

    // Rewrite an event, recompute the chain and re-sign every digest with a key of one's own,
    // stored in place of the service's.
    let resigned = copy("resigned");
    forge(&resigned, "resign");
    let problem = refused(&resigned, &["--public-key", key]);
    assert!(problem.contains("bad signature"), "{problem}");
    // The data directory's own copy of the key is not the forger's either, and the service
    // refuses to sign on under the swapped key.
    assert!(refused(&resigned, &[]).contains("bad signature"));
    let mut serving = ferrokms_command(&resigned)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&resigned)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while serving.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = serving.kill();
    let out = serving.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("audit signing key in the store"));

    // Delete one digest from the middle.
    let deleted = copy("deleted-digest");
    sql(
        &deleted,
        "DELETE FROM audit_digests WHERE upto_seq = (SELECT upto_seq FROM audit_digests ORDER BY upto_seq LIMIT 1 OFFSET 2);",
    );
    let problem = refused(&deleted, &["--public-key", key]);
    assert!(
        problem.contains("does not follow the digest before it"),
        "{problem}"
    );

    // Cut the last events off together with their digests: only the copy shows it.
    let cut = copy("cut");
    sql(
        &cut,
        "DELETE FROM audit_events WHERE seq > (SELECT MAX(seq) - 2 FROM audit_events); \
         DELETE FROM audit_digests WHERE upto_seq > (SELECT MAX(seq) FROM audit_events);",
    );
    let alone = verify(&cut, &["--public-key", key]);
    assert!(alone.status.success(), "{alone:?}");
    assert!(String::from_utf8_lossy(&alone.stdout).contains("no copy of the digests given"));
    let problem = refused(&cut, &["--public-key", key, "--digests", copies]);
    assert!(
        problem.contains("in the copy is not in the store"),
        "{problem}"
    );

    // Without a key from outside the store, verify refuses to vouch for anything.
    std::fs::remove_file(cut.join("audit-signing-key.pem")).unwrap();
    assert!(refused(&cut, &[]).contains("never from the store"));
}

#[tokio::test]
async fn digests_are_copied_as_they_are_made() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let copies = temp.path().join("offbox");
    let config = temp.path().join("ferrokms.toml");
    std::fs::write(
        &config,
        format!("audit_digest_dir = {:?}\n", copies.to_str().unwrap()),
    )
    .unwrap();
    let server = Server::start_in(&dir, &["--config", config.to_str().unwrap()]);
    let kms = server.client();
    let (id, _) = new_key(&kms).await;
    encrypt(&kms, &id, "x").await.unwrap();
    server.stop();
    let lines = std::fs::read_to_string(copies.join("audit-digests.jsonl")).unwrap();
    assert!(lines.lines().count() >= 2, "{lines}");
    let out = verify(&dir, &["--digests", copies.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("digests of the copy are in the store"));
}
