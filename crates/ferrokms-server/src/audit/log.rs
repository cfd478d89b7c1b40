//! Group commit: requests hand their events to one writer task, which appends whatever has
//! queued up in a single transaction and then answers every request of the batch.

use std::sync::Arc;

use ferrokms_store::{AuditRecord, Store, StoreError};
use tokio::sync::{mpsc, oneshot};

use super::{chain_hash, GENESIS};

/// Most events written in one transaction.
const MAX_BATCH: usize = 512;

/// An event before the log has placed it in the chain.
pub struct PendingEvent {
    pub record: AuditRecord,
}

struct Queued {
    event: PendingEvent,
    done: oneshot::Sender<Result<(), ()>>,
}

#[derive(Clone)]
pub struct AuditLog {
    queue: mpsc::Sender<Queued>,
}

#[derive(Debug, thiserror::Error)]
#[error("the audit event could not be made durable")]
pub struct AuditFailed;

impl AuditLog {
    /// Starts the writer, continuing the chain from the last stored event.
    pub async fn start(store: Arc<dyn Store>) -> Result<Self, StoreError> {
        let last = store.last_audit_event().await?;
        let (queue, rx) = mpsc::channel(4096);
        tokio::spawn(writer(store, rx, last));
        Ok(AuditLog { queue })
    }

    /// Returns once the event is on disk; an error means it is not, and the request it
    /// describes must fail.
    pub async fn record(&self, event: PendingEvent) -> Result<(), AuditFailed> {
        let (done, wait) = oneshot::channel();
        self.queue
            .send(Queued { event, done })
            .await
            .map_err(|_| AuditFailed)?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            _ => Err(AuditFailed),
        }
    }
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Queued>, last: Option<AuditRecord>) {
    let (mut seq, mut hash) = match last {
        Some(r) => (r.seq, r.hash),
        None => (0, GENESIS.to_owned()),
    };
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        let mut records = Vec::with_capacity(batch.len());
        let (mut next_seq, mut next_hash) = (seq, hash.clone());
        for q in &batch {
            let mut r = q.event.record.clone();
            next_seq += 1;
            r.seq = next_seq;
            r.prev_hash = next_hash.clone();
            r.hash = chain_hash(&next_hash, next_seq, &r.event);
            next_hash = r.hash.clone();
            records.push(r);
        }
        let outcome = store.append_audit_events(&records).await;
        match &outcome {
            Ok(()) => {
                seq = next_seq;
                hash = next_hash;
            }
            Err(e) => {
                tracing::error!(error = %e, "audit events could not be written");
                // Pick up wherever the stored chain really ends before the next batch.
                if let Ok(Some(r)) = store.last_audit_event().await {
                    seq = r.seq;
                    hash = r.hash;
                }
            }
        }
        for q in batch {
            let _ = q.done.send(outcome.as_ref().map(drop).map_err(drop));
        }
    }
}
