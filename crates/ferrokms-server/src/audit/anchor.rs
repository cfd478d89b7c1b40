//! What `audit verify` trusts that the database does not hold: the public half of the audit
//! signing key as a file (written once into the data directory, copied wherever the operator
//! keeps it) and copies of the signed digests (`audit export-digests`, or written as they are
//! made into an `audit_digest_dir`), as CloudTrail keeps its digest files apart from its logs.
//!
//! A writer of the database alone can then rewrite an event and its chain, or re-sign the
//! digests with a key of its own, or delete them: the signatures fail under the key from
//! outside, the missing or replaced digest breaks the link of the next one, and a digest in
//! the copy that the store no longer holds shows what was cut.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ferrokms_store::AuditDigest;
use serde::{Deserialize, Serialize};

use crate::sigv4::sha256_hex;
use crate::ServerError;

/// The public key's file in a data directory.
pub const PUBLIC_KEY_FILE: &str = "audit-signing-key.pem";
/// The digests' file in an export or digest directory.
pub const DIGESTS_FILE: &str = "audit-digests.jsonl";

const PEM_BEGIN: &str = "-----BEGIN PUBLIC KEY-----";
const PEM_END: &str = "-----END PUBLIC KEY-----";

/// The SHA-256 of the public key (its DER SubjectPublicKeyInfo), as `init`, the banner and
/// `verify` print it.
pub fn fingerprint(public_der: &[u8]) -> String {
    format!("SHA256:{}", sha256_hex(public_der))
}

pub fn to_pem(public_der: &[u8]) -> String {
    let encoded = BASE64.encode(public_der);
    let mut pem = format!("{PEM_BEGIN}\n");
    for line in encoded.as_bytes().chunks(64) {
        pem.push_str(&String::from_utf8_lossy(line));
        pem.push('\n');
    }
    pem.push_str(PEM_END);
    pem.push('\n');
    pem
}

pub fn from_pem(text: &str) -> Option<Vec<u8>> {
    let body = text.split(PEM_BEGIN).nth(1)?.split(PEM_END).next()?;
    let joined: String = body.split_whitespace().collect();
    BASE64.decode(joined).ok().filter(|der| !der.is_empty())
}

/// Reads a public key file (PEM) as DER.
pub fn read_public_key(file: &Path) -> Result<Vec<u8>, ServerError> {
    let text = std::fs::read_to_string(file)
        .map_err(|e| ServerError::Io(format!("reading {}: {e}", file.display())))?;
    from_pem(&text).ok_or_else(|| {
        ServerError::Config(format!(
            "{} holds no PEM public key (-----BEGIN PUBLIC KEY-----)",
            file.display()
        ))
    })
}

/// Writes the public key into the data directory on first start; later starts check that
/// the store's key is still the one written, so that a key swapped in the database stops the
/// service instead of signing on.
pub fn keep_public_key(data_dir: &Path, public_der: &[u8]) -> Result<PathBuf, ServerError> {
    let file = data_dir.join(PUBLIC_KEY_FILE);
    match std::fs::read_to_string(&file) {
        Ok(text) => {
            if from_pem(&text).as_deref() != Some(public_der) {
                return Err(ServerError::Config(format!(
                    "the audit signing key in the store is not the one in {} ({}): the database \
                     was changed, or belongs to another service",
                    file.display(),
                    fingerprint(public_der)
                )));
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            write_new(&file, to_pem(public_der).as_bytes())?;
        }
        Err(e) => return Err(ServerError::Io(format!("reading {}: {e}", file.display()))),
    }
    Ok(file)
}

fn write_new(file: &Path, bytes: &[u8]) -> Result<(), ServerError> {
    let io = |e: std::io::Error| ServerError::Io(format!("writing {}: {e}", file.display()));
    let mut f = std::fs::File::create(file).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)
}

/// A digest as a line of a digests file.
#[derive(Serialize, Deserialize, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DigestLine {
    pub upto_seq: i64,
    pub chain_hash: String,
    pub previous: String,
    pub signature: String,
    pub created: i64,
}

impl From<&AuditDigest> for DigestLine {
    fn from(d: &AuditDigest) -> Self {
        DigestLine {
            upto_seq: d.upto_seq,
            chain_hash: d.chain_hash.clone(),
            previous: d.previous.clone(),
            signature: BASE64.encode(&d.signature),
            created: d.created,
        }
    }
}

impl DigestLine {
    pub fn digest(&self) -> Option<AuditDigest> {
        Some(AuditDigest {
            upto_seq: self.upto_seq,
            chain_hash: self.chain_hash.clone(),
            previous: self.previous.clone(),
            signature: BASE64.decode(&self.signature).ok()?,
            created: self.created,
        })
    }
}

/// Writes `digests` as `dir/audit-digests.jsonl`. A copy already there is evidence: every
/// digest it holds must still be in the store, unchanged (else nothing is written and the
/// first one missing is named), and the new file holds them all.
pub fn export(dir: &Path, digests: &[AuditDigest]) -> Result<(), ServerError> {
    std::fs::create_dir_all(dir)
        .map_err(|e| ServerError::Io(format!("creating {}: {e}", dir.display())))?;
    if dir.join(DIGESTS_FILE).exists() {
        for kept in read_copy(dir)? {
            let found = digests
                .binary_search_by_key(&kept.upto_seq, |d| d.upto_seq)
                .ok()
                .and_then(|i| digests.get(i));
            if found != Some(&kept) {
                return Err(ServerError::Config(format!(
                    "the store no longer holds the digest up to event {} that {} holds: the \
                     audit log was cut or rewritten; keep that copy as evidence",
                    kept.upto_seq,
                    dir.join(DIGESTS_FILE).display()
                )));
            }
        }
    }
    let mut text = String::new();
    for d in digests {
        let line = serde_json::to_string(&DigestLine::from(d))
            .map_err(|e| ServerError::Io(e.to_string()))?;
        text.push_str(&line);
        text.push('\n');
    }
    let staged = dir.join(format!(".{DIGESTS_FILE}.new"));
    write_new(&staged, text.as_bytes())?;
    let file = dir.join(DIGESTS_FILE);
    std::fs::rename(&staged, &file)
        .map_err(|e| ServerError::Io(format!("writing {}: {e}", file.display())))
}

/// Appends one digest to `dir/audit-digests.jsonl`, as the audit writer does after each
/// batch when a digest directory is configured.
pub fn append(dir: &Path, digest: &AuditDigest) -> std::io::Result<()> {
    let mut line = serde_json::to_string(&DigestLine::from(digest))?;
    line.push('\n');
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(DIGESTS_FILE))?;
    f.write_all(line.as_bytes())
}

/// The digests of a copy: `dir/audit-digests.jsonl`, or the file itself, in upto order.
pub fn read_copy(path: &Path) -> Result<Vec<AuditDigest>, ServerError> {
    let file = if path.is_dir() {
        path.join(DIGESTS_FILE)
    } else {
        path.to_owned()
    };
    let text = std::fs::read_to_string(&file)
        .map_err(|e| ServerError::Io(format!("reading {}: {e}", file.display())))?;
    let mut digests = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let digest = serde_json::from_str::<DigestLine>(line)
            .ok()
            .and_then(|l| l.digest())
            .ok_or_else(|| {
                ServerError::Config(format!("{} line {}: not a digest", file.display(), n + 1))
            })?;
        digests.push(digest);
    }
    digests.sort_by_key(|d| d.upto_seq);
    digests.dedup();
    Ok(digests)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_round_trips_and_refuses_what_is_not_one() {
        let der: Vec<u8> = (0..91u8).collect();
        assert_eq!(from_pem(&to_pem(&der)), Some(der));
        assert_eq!(from_pem("not a key"), None);
        assert_eq!(from_pem(&format!("{PEM_BEGIN}\n!!\n{PEM_END}\n")), None);
    }

    #[test]
    fn a_store_whose_key_changed_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        keep_public_key(dir.path(), b"first key").unwrap();
        keep_public_key(dir.path(), b"first key").unwrap();
        let err = keep_public_key(dir.path(), b"another key").unwrap_err();
        assert!(err.to_string().contains("not the one in"), "{err}");
    }
}
