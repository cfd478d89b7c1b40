//! The audit record of the change a write makes. Every write method of the `Store` takes an
//! [`Intent`] as a parameter, so that a write without its record does not compile; the
//! backend stores the record in the write's own transaction, so a change is never durable
//! without a durable record of what made it (a request, an operator's command, the config
//! file, a background job). The audit log later chains the final record and removes the one
//! from the outbox.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::AuditRecord;

/// The record a request's writes carry: the request as it was asked, before its answer is
/// known.
#[derive(Debug)]
pub struct Intent {
    record: AuditRecord,
    /// The node whose request this is: its own records a restarted node chains at once.
    node: String,
    /// The writer's MAC over the record and node, so that a row put into the outbox by
    /// someone who can only write the database is not chained as if the service made it.
    seal: String,
    written: AtomicBool,
    /// False only for a service that keeps no audit log (`serve --dev --no-audit`).
    kept: bool,
}

/// A record in the outbox, and the node that wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutboxRecord {
    pub node: String,
    pub seal: String,
    pub record: AuditRecord,
}

impl Intent {
    pub fn new(record: AuditRecord, node: &str, seal: String) -> Arc<Self> {
        Arc::new(Intent {
            record,
            node: node.to_owned(),
            seal,
            written: AtomicBool::new(false),
            kept: true,
        })
    }

    /// The record of a change on a service that keeps no audit log: the backend stores
    /// nothing of it.
    pub fn unkept(record: AuditRecord) -> Arc<Self> {
        Arc::new(Intent {
            record,
            node: String::new(),
            seal: String::new(),
            written: AtomicBool::new(false),
            kept: false,
        })
    }

    /// Whether the backend stores this record with the write.
    pub fn kept(&self) -> bool {
        self.kept
    }

    pub fn record(&self) -> &AuditRecord {
        &self.record
    }

    pub fn node(&self) -> &str {
        &self.node
    }

    pub fn seal(&self) -> &str {
        &self.seal
    }

    /// Whether a write of this request committed, and with it this record.
    pub fn written(&self) -> bool {
        self.written.load(Ordering::Acquire)
    }

    pub(crate) fn mark_written(&self) {
        self.written.store(true, Ordering::Release);
    }
}
