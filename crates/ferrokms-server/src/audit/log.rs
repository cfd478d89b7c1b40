//! Group commit: requests hand their events to one writer task, which appends whatever has
//! queued up in a single transaction and then answers every request of the batch.

use std::sync::Arc;

use ferrokms_core::asymmetric;
use ferrokms_core::ids::KeyId;
use ferrokms_core::key::{KeySpec, MessageType, Millis, SigningAlgorithm};
use ferrokms_store::outbox::Intent;
use ferrokms_store::{AuditDigest, AuditRecord, KeyUsageMark, Store, StoreError};

use crate::ServerError;
use tokio::sync::{mpsc, oneshot};

use super::{chain_hash, AuditKeys, GENESIS};

/// Most events written in one transaction.
const MAX_BATCH: usize = 512;
/// Most answered-but-unchained records the writer retries from memory.
const MAX_KEPT: usize = 4096;

/// An event before the log has placed it in the chain.
pub struct PendingEvent {
    pub record: AuditRecord,
    /// The keys a successful cryptographic call used (GetKeyLastUsage), stored with the
    /// record's batch.
    pub usage: Vec<KeyUsageMark>,
}

struct Queued {
    event: PendingEvent,
    /// Set when the request's writes committed with their record in the store's outbox: the
    /// request stands even if this append fails, so the writer keeps the event for the next.
    kept_in_outbox: bool,
    done: oneshot::Sender<Result<(), ()>>,
}

#[derive(Clone)]
pub struct AuditLog {
    /// None when auditing is off (`serve --dev --no-audit`, to measure what it costs).
    queue: Option<mpsc::Sender<Queued>>,
    /// Seals the records writes leave in the outbox.
    keys: Option<Arc<AuditKeys>>,
    /// This node, as its outbox records name it.
    node: String,
}

#[derive(Debug, thiserror::Error)]
#[error("the audit event could not be made durable")]
pub struct AuditFailed;

impl AuditLog {
    /// Starts the writer, continuing the chain from the last stored event. Records of
    /// requests whose writes committed before a crash, and whose final record never reached
    /// the chain, are chained first.
    pub async fn start(
        store: Arc<dyn Store>,
        keys: Arc<AuditKeys>,
        node: &str,
        digest_dir: Option<std::path::PathBuf>,
    ) -> Result<Self, ServerError> {
        let mut chain = Chain::resume(store.as_ref(), keys.clone(), digest_dir).await?;
        let orphans = Orphans {
            now: crate::bootstrap::now_millis(),
            restarted_node: Some(node),
            pending: &[],
        };
        adopt_orphans(store.as_ref(), &mut chain, orphans).await?;
        let (queue, rx) = mpsc::channel(4096);
        tokio::spawn(writer(store, rx, chain));
        Ok(AuditLog {
            queue: Some(queue),
            keys: Some(keys),
            node: node.to_owned(),
        })
    }

    /// A log that records nothing: for dev mode only, to measure what auditing costs.
    pub fn disabled() -> Self {
        AuditLog {
            queue: None,
            keys: None,
            node: String::new(),
        }
    }

    /// The intent a request of this node carries into its writes.
    pub fn intent(&self, record: AuditRecord) -> Arc<Intent> {
        match (&self.queue, &self.keys) {
            (Some(_), Some(keys)) => {
                let seal = keys.seal(&record, &self.node);
                Intent::new(record, &self.node, seal)
            }
            _ => Intent::unkept(record),
        }
    }

    /// Returns once the event is durable. It is so when its batch is on disk, or already when
    /// the request's writes committed its record to the outbox (`kept_in_outbox`): then a
    /// failed append is retried by the writer, and the request stands. An error means the
    /// event is not durable, and the request it describes must fail.
    pub async fn record(
        &self,
        event: PendingEvent,
        kept_in_outbox: bool,
    ) -> Result<(), AuditFailed> {
        let Some(queue) = &self.queue else {
            return Ok(());
        };
        let (done, wait) = oneshot::channel();
        let sent = queue
            .send(Queued {
                event,
                kept_in_outbox,
                done,
            })
            .await;
        let appended = sent.is_ok() && matches!(wait.await, Ok(Ok(())));
        if appended || kept_in_outbox {
            Ok(())
        } else {
            Err(AuditFailed)
        }
    }
}

/// Chains `records` now, after whatever the store's chain ends with (another process may be
/// appending too): for the records of changes made outside a running server's requests,
/// such as `ferrokms admin` and the config file. Their outbox copies go in the same
/// transaction; if this fails they stay there, and the next server to sweep chains them.
pub async fn chain_now(
    store: &dyn Store,
    keys: &Arc<AuditKeys>,
    digest_dir: Option<std::path::PathBuf>,
    records: Vec<AuditRecord>,
) -> Result<(), ServerError> {
    if records.is_empty() {
        return Ok(());
    }
    let mut chain = Chain::resume(store, keys.clone(), digest_dir).await?;
    chain.append(store, records, &[]).await?;
    Ok(())
}

/// Where the chain ends, and the key that signs it.
struct Chain {
    seq: i64,
    hash: String,
    /// What the next digest names as its previous (`super::digest_link`).
    previous_digest: String,
    keys: Arc<AuditKeys>,
    /// Where each digest is also written as it is made, off the database.
    digest_dir: Option<std::path::PathBuf>,
}

impl Chain {
    async fn resume(
        store: &dyn Store,
        keys: Arc<AuditKeys>,
        digest_dir: Option<std::path::PathBuf>,
    ) -> Result<Self, StoreError> {
        let mut chain = Chain {
            seq: 0,
            hash: GENESIS.to_owned(),
            previous_digest: GENESIS.to_owned(),
            keys,
            digest_dir,
        };
        chain.reread(store).await?;
        Ok(chain)
    }

    /// Picks up wherever the stored chain and its digests end, if that end is one this
    /// service signed: every append stores its events with the digest that signs them, so
    /// an end that no good digest covers was written by someone else, and is not signed on.
    async fn reread(&mut self, store: &dyn Store) -> Result<(), StoreError> {
        let end = store.audit_chain_end().await?;
        let (last, digest) = match end {
            Some((r, d)) => (Some(r), d),
            None => (None, None),
        };
        let signed = match (&last, &digest) {
            (None, _) => true,
            (Some(r), Some(d)) => {
                d.upto_seq == r.seq
                    && d.chain_hash == r.hash
                    && asymmetric::verify(
                        KeySpec::EccNistP256,
                        self.keys.public(),
                        SigningAlgorithm::EcdsaSha256,
                        MessageType::Raw,
                        &super::digest_message(d),
                        &d.signature,
                    )
                    .unwrap_or(false)
            }
            _ => false,
        };
        if !signed {
            tracing::error!("the audit log ends in events no good digest of this service signs: refusing to append (run `ferrokms audit verify`)");
            return Err(StoreError::Corrupt(
                "the end of the audit log is not signed by this service".into(),
            ));
        }
        if let (Some(r), Some(d)) = (last, digest) {
            self.seq = r.seq;
            self.hash = r.hash;
            self.previous_digest = super::digest_link(&d.signature);
        }
        Ok(())
    }

    /// Places `records` after the end of the chain and stores them with a signed digest, in
    /// one transaction. When another node appended first, the batch goes after its events.
    async fn append(
        &mut self,
        store: &dyn Store,
        mut records: Vec<AuditRecord>,
        usage: &[KeyUsageMark],
    ) -> Result<(), StoreError> {
        const ATTEMPTS: usize = 32;
        let mut outcome = Err(StoreError::Conflict);
        for _ in 0..ATTEMPTS {
            let (mut next_seq, mut next_hash) = (self.seq, self.hash.clone());
            for r in &mut records {
                next_seq += 1;
                r.seq = next_seq;
                r.prev_hash = next_hash.clone();
                r.hash = chain_hash(&next_hash, next_seq, &r.event);
                next_hash = r.hash.clone();
            }
            // Each batch is signed where it ends, so that cutting events off the end shows,
            // and names the digest before it, so that removing or replacing one shows.
            let mut digest = AuditDigest {
                upto_seq: next_seq,
                chain_hash: next_hash.clone(),
                signature: Vec::new(),
                created: records.last().map(|r| r.event_time).unwrap_or_default(),
                previous: self.previous_digest.clone(),
            };
            digest.signature = asymmetric::sign(
                KeySpec::EccNistP256,
                self.keys.signing(),
                SigningAlgorithm::EcdsaSha256,
                MessageType::Raw,
                &super::digest_message(&digest),
            )
            .map_err(|_| StoreError::Backend("signing the audit digest failed".into()))?;
            outcome = store
                .append_audit_events(&records, Some(&digest), usage)
                .await;
            match &outcome {
                Ok(()) => {
                    self.seq = next_seq;
                    self.hash = next_hash;
                    self.previous_digest = super::digest_link(&digest.signature);
                    if let Some(dir) = &self.digest_dir {
                        if let Err(e) = super::anchor::append(dir, &digest) {
                            tracing::error!(error = %e, dir = %dir.display(), "copying an audit digest failed");
                        }
                    }
                    return Ok(());
                }
                // Another node (or a commit whose answer was lost) took these places: pick
                // up wherever the stored chain really ends, without the records that are in
                // it already, word for word (a retried batch, an orphan two nodes adopted).
                Err(StoreError::Conflict) => {
                    self.reread(store).await?;
                    records = without_chained(store, records).await?;
                    if records.is_empty() {
                        return Ok(());
                    }
                }
                Err(_) => break,
            }
        }
        outcome
    }
}

/// `records` less those whose event is in the chain already, word for word.
async fn without_chained(
    store: &dyn Store,
    records: Vec<AuditRecord>,
) -> Result<Vec<AuditRecord>, StoreError> {
    let ids: Vec<&str> = records.iter().map(|r| r.event_id.as_str()).collect();
    let chained = store.chained_events(&ids).await?;
    Ok(records
        .into_iter()
        .filter(|r| {
            !chained
                .iter()
                .any(|(id, event)| *id == r.event_id && *event == r.event)
        })
        .collect())
}

/// How old an outbox record must be before a sweep chains it in place of the writer that
/// left it: a live writer chains its own within milliseconds, and a request in flight (or an
/// admin command between its write and its chaining) must not see its record chained twice.
/// At start, this node's own records are chained at once (`Orphans::restarted_node`).
const OUTBOX_GRACE: Millis = 60_000;

/// Which outbox records to adopt.
struct Orphans<'a> {
    now: Millis,
    /// At start: this node's own records belong to its earlier, stopped self.
    restarted_node: Option<&'a str>,
    /// Records this node still means to chain itself.
    pending: &'a [&'a str],
}

/// Chains the outbox records of requests whose node stopped before chaining them.
async fn adopt_orphans(
    store: &dyn Store,
    chain: &mut Chain,
    which: Orphans<'_>,
) -> Result<(), StoreError> {
    let cutoff = which.now - OUTBOX_GRACE;
    let (sealed, forged): (Vec<_>, Vec<_>) = store
        .audit_outbox()
        .await?
        .into_iter()
        .partition(|o| chain.keys.opens(o));
    if !forged.is_empty() {
        // Left where they are, for the operator to look at; never signed into the chain.
        tracing::error!(
            count = forged.len(),
            "audit outbox records without this service's seal: not chained (the database was written by someone else)"
        );
    }
    let ids: Vec<&str> = sealed.iter().map(|o| o.record.event_id.as_str()).collect();
    let chained: Vec<String> = store
        .chained_events(&ids)
        .await?
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    if !chained.is_empty() {
        // Their request's record is in the chain already (put back after it was chained,
        // or chained by another node meanwhile): never a second time.
        let chained: Vec<&str> = chained.iter().map(String::as_str).collect();
        tracing::warn!(
            count = chained.len(),
            "audit outbox records already in the chain: dropped"
        );
        store.drop_chained_outbox(&chained).await?;
    }
    let orphans: Vec<AuditRecord> = sealed
        .into_iter()
        .filter(|o| !chained.contains(&o.record.event_id))
        .filter(|o| {
            (o.record.event_time <= cutoff || which.restarted_node == Some(o.node.as_str()))
                && !which.pending.contains(&o.record.event_id.as_str())
        })
        .map(|o| o.record)
        .collect();
    if orphans.is_empty() {
        return Ok(());
    }
    tracing::warn!(
        count = orphans.len(),
        "chaining the records of writes whose answer was not recorded"
    );
    chain.append(store, orphans, &[]).await
}

/// The latest use of each key among a batch's events: one row per key to write.
fn last_use_of_each_key(batch: &[Queued]) -> Vec<KeyUsageMark> {
    let mut latest: std::collections::HashMap<(&str, KeyId), &KeyUsageMark> =
        std::collections::HashMap::new();
    for mark in batch.iter().flat_map(|q| &q.event.usage) {
        let slot = latest
            .entry((mark.region.as_str(), mark.key_id))
            .or_insert(mark);
        if mark.at >= slot.at {
            *slot = mark;
        }
    }
    latest.into_values().cloned().collect()
}

async fn writer(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Queued>, mut chain: Chain) {
    // Final records of requests that were answered although their append failed; their
    // outbox records hold them durably until one of these retries succeeds.
    let mut kept: Vec<AuditRecord> = Vec::new();
    let mut sweep = tokio::time::interval(std::time::Duration::from_secs(60));
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let first = tokio::select! {
            queued = rx.recv() => match queued {
                Some(q) => q,
                None => break,
            },
            _ = sweep.tick() => {
                let pending: Vec<&str> = kept.iter().map(|r| r.event_id.as_str()).collect();
                let orphans = Orphans {
                    now: crate::bootstrap::now_millis(),
                    restarted_node: None,
                    pending: &pending,
                };
                if let Err(e) = adopt_orphans(store.as_ref(), &mut chain, orphans).await {
                    tracing::error!(error = %e, "chaining orphaned audit records failed");
                }
                continue;
            }
        };
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(q) => batch.push(q),
                Err(_) => break,
            }
        }
        // A batch whose commit failed as far as this writer knows may have committed all the
        // same (its answer lost): what reached the chain is not appended again.
        let mut records = match kept.is_empty() {
            true => Vec::new(),
            false => without_chained(store.as_ref(), kept.clone())
                .await
                .unwrap_or_else(|_| kept.clone()),
        };
        records.extend(batch.iter().map(|q| q.event.record.clone()));
        let usage = last_use_of_each_key(&batch);
        let started = std::time::Instant::now();
        let events = records.len();
        let outcome = chain.append(store.as_ref(), records, &usage).await;
        tracing::debug!(events, micros = ?started.elapsed().as_micros(), "audit batch");
        match &outcome {
            Ok(()) => kept.clear(),
            Err(e) => {
                tracing::error!(error = %e, "audit events could not be written");
                kept.extend(
                    batch
                        .iter()
                        .filter(|q| q.kept_in_outbox)
                        .map(|q| q.event.record.clone()),
                );
                // Beyond this the outbox alone keeps them, and the next start chains them.
                kept.truncate(MAX_KEPT);
            }
        }
        for q in batch {
            let _ = q.done.send(outcome.as_ref().map(drop).map_err(drop));
        }
    }
}
