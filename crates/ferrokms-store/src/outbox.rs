//! The audit record of the request a write belongs to. A request's handler runs inside
//! [`scope`]; every write transaction of a backend stores the record of its scope in the same
//! transaction, so a change is never durable without a durable record of the request that
//! made it. The audit log later chains the final record and removes the one from the outbox.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::AuditRecord;

tokio::task_local! {
    static CURRENT: Arc<Intent>;
}

/// The record a request's writes carry: the request as it was asked, before its answer is
/// known.
#[derive(Debug)]
pub struct Intent {
    record: AuditRecord,
    /// The node whose request this is: its own records a restarted node chains at once.
    node: String,
    written: AtomicBool,
}

/// A record in the outbox, and the node that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRecord {
    pub node: String,
    pub record: AuditRecord,
}

impl Intent {
    pub fn new(record: AuditRecord, node: &str) -> Arc<Self> {
        Arc::new(Intent {
            record,
            node: node.to_owned(),
            written: AtomicBool::new(false),
        })
    }

    pub fn record(&self) -> &AuditRecord {
        &self.record
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    /// Whether a write of this request committed, and with it this record.
    pub fn written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }

    pub(crate) fn mark_written(&self) {
        self.written.store(true, Ordering::Release);
    }
}

/// Runs `work` with `intent` as the record of every write it makes.
pub async fn scope<F: Future>(intent: Arc<Intent>, work: F) -> F::Output {
    CURRENT.scope(intent, work).await
}

/// The intent of the running request, if it has one (background jobs have none).
pub(crate) fn current() -> Option<Arc<Intent>> {
    CURRENT.try_with(Arc::clone).ok()
}
