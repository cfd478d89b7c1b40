//! Walking the chain: the first event that was changed, removed, inserted or reordered, and
//! the first digest that was forged, removed or replaced. Nothing is taken from the store on
//! trust: the public key comes from outside it (`anchor`), and so may a copy of the digests.

use ferrokms_core::asymmetric;
use ferrokms_core::key::{KeySpec, MessageType, SigningAlgorithm};
use ferrokms_store::{AuditDigest, Store, StoreError};

use super::{chain_hash, digest_link, digest_message, GENESIS};

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        events: i64,
        digests: usize,
        /// How many digests of the outside copy were found in the store.
        copied: usize,
    },
    Broken {
        seq: i64,
        event_id: String,
        problem: String,
    },
}

/// What the store's digests are checked against.
pub struct Anchor<'a> {
    /// The signing key's public half (DER), from a file the operator keeps.
    pub public_key: &'a [u8],
    /// Digests copied off the store earlier (`anchor::read_copy`), if any.
    pub copy: &'a [AuditDigest],
}

fn signed_by(public_key: &[u8], d: &AuditDigest) -> bool {
    asymmetric::verify(
        KeySpec::EccNistP256,
        public_key,
        SigningAlgorithm::EcdsaSha256,
        MessageType::Raw,
        &digest_message(d),
        &d.signature,
    )
    .unwrap_or(false)
}

fn broken_at(seq: i64, problem: String) -> Verdict {
    Verdict::Broken {
        seq,
        event_id: String::new(),
        problem,
    }
}

/// Checks the digests among themselves: each signed by the key from outside, each naming the
/// one before it (digests made before they were linked may only come first).
fn check_digests(digests: &[AuditDigest], public_key: &[u8]) -> Option<Verdict> {
    let mut expected = GENESIS.to_owned();
    let mut linked = false;
    for d in digests {
        if !signed_by(public_key, d) {
            return Some(broken_at(
                d.upto_seq,
                format!(
                    "the digest up to event {} has a bad signature: it was not made with the \
                     audit signing key given",
                    d.upto_seq
                ),
            ));
        }
        match d.previous.is_empty() {
            true if linked => {
                return Some(broken_at(
                    d.upto_seq,
                    format!(
                        "the digest up to event {} names no previous digest",
                        d.upto_seq
                    ),
                ))
            }
            true => {}
            false if d.previous != expected => {
                return Some(broken_at(
                    d.upto_seq,
                    format!(
                        "the digest up to event {} does not follow the digest before it: a \
                         digest was removed or replaced",
                        d.upto_seq
                    ),
                ))
            }
            false => linked = true,
        }
        expected = digest_link(&d.signature);
    }
    None
}

/// Every digest of the copy must still be in the store, unchanged.
fn check_copy(stored: &[AuditDigest], anchor: &Anchor<'_>) -> Result<usize, Verdict> {
    for c in anchor.copy {
        if !signed_by(anchor.public_key, c) {
            return Err(broken_at(
                c.upto_seq,
                format!(
                    "the copied digest up to event {} is not signed by the key given",
                    c.upto_seq
                ),
            ));
        }
        let kept = stored
            .binary_search_by_key(&c.upto_seq, |d| d.upto_seq)
            .ok()
            .and_then(|i| stored.get(i));
        if kept != Some(c) {
            return Err(broken_at(
                c.upto_seq,
                format!(
                    "the digest up to event {} in the copy is not in the store: events and \
                     digests were cut off or replaced",
                    c.upto_seq
                ),
            ));
        }
    }
    Ok(anchor.copy.len())
}

/// The first column of an event's row that differs from what its record (the JSON the chain
/// hashes) says. LookupEvents and `audit export` select by these columns, so a changed one
/// would hide or misattribute an event that still hashes.
fn column_not_from_event(
    r: &ferrokms_store::AuditRecord,
    e: &serde_json::Value,
) -> Option<&'static str> {
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
    let identity = &e["userIdentity"];
    let username = identity["arn"]
        .as_str()
        .map(|arn| arn.rsplit('/').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let resources: Vec<String> = e["resources"]
        .as_array()
        .map(|rs| rs.iter().map(|x| text(&x["ARN"])).collect())
        .unwrap_or_default();
    let seconds = time::OffsetDateTime::parse(
        e["eventTime"].as_str().unwrap_or_default(),
        &time::format_description::well_known::Rfc3339,
    )
    .map(|t| t.unix_timestamp())
    .ok();
    if r.event_id != text(&e["eventID"]) {
        Some("event ID")
    } else if r.account != text(&e["recipientAccountId"]) {
        Some("account")
    } else if r.event_name != text(&e["eventName"]) {
        Some("event name")
    } else if r.event_source != text(&e["eventSource"]) {
        Some("event source")
    } else if Some(r.read_only) != e["readOnly"].as_bool() {
        Some("read-only")
    } else if r.access_key_id != text(&identity["accessKeyId"]) {
        Some("access key")
    } else if r.username != username {
        Some("user name")
    } else if r.resources != resources {
        Some("resources")
    } else if seconds != Some(r.event_time.div_euclid(1000)) {
        Some("event time")
    } else {
        None
    }
}

/// Checks the chain event by event, then the signed digests: each must match the chain
/// where it was taken, carry a good signature under the key from outside and name the digest
/// before it, the last event must be covered by a digest, and every digest of the copy must
/// be in the store.
pub async fn verify(store: &dyn Store, anchor: &Anchor<'_>) -> Result<Verdict, StoreError> {
    let mut digests = store.audit_digests().await?;
    if let Some(v) = check_digests(&digests, anchor.public_key) {
        return Ok(v);
    }
    let copied = match check_copy(&digests, anchor) {
        Ok(n) => n,
        Err(v) => return Ok(v),
    };
    let mut pending = digests.iter().peekable();
    let (mut seq, mut hash) = (0i64, GENESIS.to_owned());
    let mut seen: std::collections::HashMap<String, (bool, bool)> = Default::default();
    loop {
        let batch = store.audit_events(seq, 1000).await?;
        if batch.is_empty() {
            if let Some(d) = pending.next() {
                return Ok(broken_at(
                    d.upto_seq,
                    format!(
                        "the log ends at event {seq} but a signed digest covers up to event {}: \
                         events were cut off the end",
                        d.upto_seq
                    ),
                ));
            }
            let mut signed_to = digests.last().map_or(0, |d| d.upto_seq);
            if signed_to < seq {
                // A running service may have appended since the digests were read: read
                // them again, and check the new ones as the others were.
                digests = store.audit_digests().await?;
                if let Some(v) = check_digests(&digests, anchor.public_key) {
                    return Ok(v);
                }
                if let Some(d) = digests.iter().find(|d| d.upto_seq == seq) {
                    if d.chain_hash != hash {
                        return Ok(broken_at(
                            seq,
                            format!("event {seq} does not match the signed digest taken there"),
                        ));
                    }
                    signed_to = seq;
                }
            }
            if signed_to < seq {
                return Ok(broken_at(
                    signed_to + 1,
                    format!(
                        "events {} to {seq} are covered by no signed digest: they were \
                         rewritten, or added, after the last digest (were digests deleted?)",
                        signed_to + 1
                    ),
                ));
            }
            return Ok(Verdict::Intact {
                events: seq,
                digests: digests.len(),
                copied,
            });
        }
        for r in batch {
            let broken = |problem: String| Verdict::Broken {
                seq: r.seq,
                event_id: r.event_id.clone(),
                problem,
            };
            if r.seq != seq + 1 {
                return Ok(broken(format!(
                    "event {} is missing: the log jumps from {seq} to {}",
                    seq + 1,
                    r.seq
                )));
            }
            if r.prev_hash != hash {
                return Ok(broken(format!(
                    "event {} does not follow event {seq}: an event was inserted, removed or reordered",
                    r.seq
                )));
            }
            if chain_hash(&r.prev_hash, r.seq, &r.event) != r.hash {
                return Ok(broken(format!("event {} was changed", r.seq)));
            }
            let event: serde_json::Value = match serde_json::from_str(&r.event) {
                Ok(v) => v,
                Err(_) => return Ok(broken(format!("event {} is not a record", r.seq))),
            };
            if let Some(column) = column_not_from_event(&r, &event) {
                return Ok(broken(format!(
                    "event {}'s {column} column does not say what its signed record says: the \
                     column was changed",
                    r.seq
                )));
            }
            // A request's record may be chained twice only as the version its writes carried
            // (`answerRecorded: false`, chained after a crash) and the final one.
            let intent = event["additionalEventData"]["answerRecorded"] == false;
            let (intent_seen, final_seen) =
                seen.entry(r.event_id.clone()).or_insert((false, false));
            let again = if intent { intent_seen } else { final_seen };
            if *again {
                return Ok(broken(format!(
                    "event {} repeats the event ID of an earlier event: a record was replayed",
                    r.seq
                )));
            }
            *again = true;
            seq = r.seq;
            hash = r.hash.clone();
            while let Some(d) = pending.next_if(|d| d.upto_seq <= seq) {
                if d.upto_seq == seq && d.chain_hash != hash {
                    return Ok(broken(format!(
                        "event {} does not match the signed digest taken there",
                        d.upto_seq
                    )));
                }
            }
        }
    }
}
