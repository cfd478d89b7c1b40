//! Walking the chain: the first event that was changed, removed, inserted or reordered.

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

pub async fn verify(store: &dyn Store) -> Result<Verdict, StoreError> {
    let (mut seq, mut hash) = (0i64, GENESIS.to_owned());
    loop {
        let batch = store.audit_events(seq, 1000).await?;
        if batch.is_empty() {
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
            hash = r.hash;
        }
    }
}
