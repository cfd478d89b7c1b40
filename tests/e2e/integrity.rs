//! The audit trail proves itself without trusting its own database: forgeries made by
//! someone who can write the database (and nothing else) are caught by `audit verify` with
//! the public key and digests kept outside it. The forger is a Python script that edits the
//! SQLite file directly, so this module runs in the SQLite suite; verification itself does
//! not depend on the backend.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::harness::{copy_service, exported, ferrokms_command, ferrokms_in, Server};
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
if mode in ("append", "duplicate"):
    seq, prev, event = c.execute("SELECT seq, hash, event FROM audit_events ORDER BY seq DESC LIMIT 1").fetchone()
    if mode == "append":
        event = event.replace('"eventID":"', '"eventID":"forged-')
    h = hashlib.sha256(f"{prev}\n{seq + 1}\n{event}".encode()).hexdigest()
    event_id = "forged-" if mode == "append" else ""
    c.execute("INSERT INTO audit_events SELECT ?, ? || event_id, event_time, account_id, event_name, event_source, read_only, username, access_key_id, resources, ?, ?, ? FROM audit_events WHERE seq = ?",
              (seq + 1, event_id, event, prev, h, seq))
    c.commit()
    sys.exit(0)
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

/// Starts `serve` on `dir` and expects it to refuse; its error output.
fn refuses_to_serve(dir: &Path) -> String {
    let mut serving = ferrokms_command(dir)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
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
    assert!(!out.status.success(), "it served");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn sql(dir: &Path, statement: &str) {
    crate::harness::store_sql(dir, statement);
}

fn verify(dir: &Path, extra: &[&str]) -> std::process::Output {
    let args: Vec<&str> = ["audit", "verify"].iter().chain(extra).copied().collect();
    ferrokms_in(dir, &args)
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
    let out = ferrokms_in(&dir, &["audit", "export-digests", kept.to_str().unwrap()]);
    assert!(out.status.success(), "{out:?}");
    assert!(kept.join("audit-digests.jsonl").is_file());
    // The operator's own copy of the public key, taken when the service was set up.
    std::fs::copy(
        dir.join("audit-signing-key.pem"),
        kept.join("audit-signing-key.pem"),
    )
    .unwrap();
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
    let refusal = refuses_to_serve(&resigned);
    assert!(
        refusal.contains("audit signing key in the store"),
        "{refusal}"
    );

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

    // Refreshing the operator's copy from the cut store is refused: the copy is evidence.
    let out = ferrokms_in(&cut, &["audit", "export-digests", copies]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("keep that copy as evidence"));

    // Append a well-chained event of one's own at the end: the service does not sign on
    // after it, and verify names it.
    let appended = copy("appended");
    forge(&appended, "append");
    let problem = refused(&appended, &["--public-key", key]);
    assert!(problem.contains("covered by no signed digest"), "{problem}");
    let refusal = refuses_to_serve(&appended);
    assert!(refusal.contains("not signed by this service"), "{refusal}");

    // Chain a record a second time, word for word.
    let repeated = copy("repeated");
    forge(&repeated, "duplicate");
    let problem = refused(&repeated, &["--public-key", key]);
    assert!(problem.contains("repeats the event ID"), "{problem}");

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

#[tokio::test]
async fn records_put_into_the_outbox_by_a_writer_of_the_database_are_not_chained() {
    if crate::POSTGRES {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("data");
    let server = Server::start_in(&dir, &[]);
    let (id, _) = new_key(&server.client()).await;
    server.stop();
    // A record that claims the admin disabled a key, left in the outbox as if a request's
    // write had committed with it and the node had stopped before chaining it.
    let node = std::fs::read_to_string(dir.join("node-id")).unwrap();
    sql(
        &dir,
        &format!(
            "INSERT INTO audit_outbox (event_id, event_time, account_id, event_name, event_source, \
             read_only, username, access_key_id, resources, event, node_id, seal) \
             SELECT 'forged-in-outbox', 0, account_id, 'DisableKey', event_source, 0, username, \
             access_key_id, resources, replace(event, 'CreateKey', 'DisableKey'), '{}', \
             '{}' FROM audit_events WHERE event_name = 'CreateKey';",
            node.trim(),
            "00".repeat(32)
        ),
    );
    let server = Server::start_in(&dir, &[]);
    encrypt(&server.client(), &id, "x").await.unwrap();
    server.stop();
    let out = verify(&dir, &[]);
    assert!(out.status.success(), "{out:?}");
    let text: String = exported(&dir).iter().map(|e| e.to_string()).collect();
    assert!(text.contains("\"eventName\":\"Encrypt\""));
    assert!(
        !text.contains("DisableKey"),
        "a forged outbox record was chained"
    );
}
