//! Walking the chain: the first event that was changed, removed, inserted or reordered.

use ferrokms_core::asymmetric;
use ferrokms_core::key::{KeySpec, MessageType, SigningAlgorithm};
use ferrokms_store::{Store, StoreError};

use super::{chain_hash, GENESIS};

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Intact {
        events: i64,
    },
    Broken {
        seq: i64,
        event_id: String,
        problem: String,
    },
}

/// Checks the chain event by event, then the signed digests: each must match the chain
/// where it was taken and carry a good signature, and the log must reach the last one.
pub async fn verify(store: &dyn Store) -> Result<Verdict, StoreError> {
    let digests = store.audit_digests().await?;
    let public = store
        .stored_audit_signing_key()
        .await?
        .map(|(_, public)| public)
        .unwrap_or_default();
    let mut pending = digests.iter().peekable();
    let (mut seq, mut hash) = (0i64, GENESIS.to_owned());
    loop {
        let batch = store.audit_events(seq, 1000).await?;
        if batch.is_empty() {
            if let Some(d) = pending.next() {
                return Ok(Verdict::Broken {
                    seq: d.upto_seq,
                    event_id: String::new(),
                    problem: format!(
                        "the log ends at event {seq} but a signed digest covers up to event {}: events were cut off the end",
                        d.upto_seq
                    ),
                });
            }
            return Ok(Verdict::Intact { events: seq });
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
            seq = r.seq;
            hash = r.hash.clone();
            while let Some(d) = pending.next_if(|d| d.upto_seq <= seq) {
                let signed = asymmetric::verify(
                    KeySpec::EccNistP256,
                    &public,
                    SigningAlgorithm::EcdsaSha256,
                    MessageType::Raw,
                    &super::digest_message(d.upto_seq, &d.chain_hash),
                    &d.signature,
                )
                .unwrap_or(false);
                if !signed {
                    return Ok(broken(format!(
                        "the digest up to event {} has a bad signature",
                        d.upto_seq
                    )));
                }
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
