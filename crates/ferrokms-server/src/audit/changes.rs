//! The records of changes made outside a request.

use std::sync::Arc;

use ferrokms_core::ids::AccountId;
use ferrokms_store::{AuditRecord, Intent};
use serde_json::Value;

use super::event::{operator_event, ChangeSource};
use super::AuditKeys;

/// Changes that no request asked for (`ferrokms admin`, the config file, first start, a
/// move to another root key): each write carries its own record (`event::operator_event`),
/// and the records of the writes that committed are chained afterwards (`chain_now`).
pub struct Changes {
    by: ChangeSource,
    node: String,
    keys: Arc<AuditKeys>,
    made: std::sync::Mutex<Vec<Arc<Intent>>>,
}

impl Changes {
    pub fn new(by: ChangeSource, node: &str, keys: Arc<AuditKeys>) -> Self {
        Changes {
            by,
            node: node.to_owned(),
            keys,
            made: Default::default(),
        }
    }

    /// The IAM-style record a write of `event_name` on `resource` carries.
    pub fn record(
        &self,
        event_name: &str,
        account: &AccountId,
        parameters: Value,
        resource: (&str, &str),
    ) -> Arc<Intent> {
        self.record_from(
            "iam.amazonaws.com",
            event_name,
            account.as_str(),
            parameters,
            resource,
        )
    }

    /// The record a write of `event_name` of `event_source` on `resource` carries.
    pub fn record_from(
        &self,
        event_source: &str,
        event_name: &str,
        account: &str,
        parameters: Value,
        resource: (&str, &str),
    ) -> Arc<Intent> {
        let event = operator_event(
            self.by,
            event_source,
            event_name,
            account,
            parameters,
            resource,
            crate::bootstrap::now_millis(),
        );
        let seal = self.keys.seal(&event.record, &self.node);
        let intent = Intent::new(event.record, &self.node, seal);
        if let Ok(mut made) = self.made.lock() {
            made.push(intent.clone());
        }
        intent
    }

    /// The records of the changes that committed, in order.
    pub fn committed(&self) -> Vec<AuditRecord> {
        self.made
            .lock()
            .map(|made| {
                made.iter()
                    .filter(|i| i.written())
                    .map(|i| i.record().clone())
                    .collect()
            })
            .unwrap_or_default()
    }
}
