//! Group commit: requests hand their events to one writer task, which appends whatever has
//! queued up in a single transaction and then answers every request of the batch.

use std::sync::Arc;

use ferrokms_core::asymmetric;
use ferrokms_core::key::{KeySpec, MessageType, SigningAlgorithm};
use ferrokms_core::material::{KeyMaterial, RootKeyProvider};
use ferrokms_store::{AuditDigest, AuditRecord, Store, StoreError};

use crate::ServerError;
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
    pub async fn start(
        store: Arc<dyn Store>,
        root: &dyn RootKeyProvider,
    ) -> Result<Self, ServerError> {
        let last = store.last_audit_event().await?;
        let (key, _) = super::signing_key(store.as_ref(), root).await?;
        let (queue, rx) = mpsc::channel(4096);
        tokio::spawn(writer(store, rx, last, key));
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

async fn writer(
    store: Arc<dyn Store>,
    mut rx: mpsc::Receiver<Queued>,
    last: Option<AuditRecord>,
    signing_key: KeyMaterial,
) {
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
        // Each batch is signed where it ends, so that cutting events off the end shows.
        let digest = asymmetric::sign(
            KeySpec::EccNistP256,
            &signing_key,
            SigningAlgorithm::EcdsaSha256,
            MessageType::Raw,
            &super::digest_message(next_seq, &next_hash),
        )
        .ok()
        .map(|signature| AuditDigest {
            upto_seq: next_seq,
            chain_hash: next_hash.clone(),
            signature,
            created: records.last().map(|r| r.event_time).unwrap_or_default(),
        });
        let outcome = match digest {
            Some(d) => store.append_audit_events(&records, Some(&d)).await,
            None => Err(StoreError::Backend(
                "signing the audit digest failed".into(),
            )),
        };
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
