//! Background jobs: automatic key rotation, and destroying keys whose deletion waiting period
//! is over. Each run is idempotent; two nodes running at once do each thing once.

use ferrokms_core::key::{KeyJob, KeyMetadata, Millis};
use ferrokms_store::{Intent, RotationType, StoreError};

use crate::api::{expire_imported_materials, rotate_key, Services};
use crate::audit::event::service_event;
use crate::audit::{AuditLog, PendingEvent};

#[derive(Debug, Default, PartialEq, Eq)]
pub struct JobReport {
    pub rotated: usize,
    pub deleted: usize,
    /// Keys whose imported material expired.
    pub expired: usize,
}

/// Tells the other copies of a multi-Region key that this one is gone.
async fn forget_replica(
    services: &Services,
    audit: &AuditLog,
    deleted: &KeyMetadata,
    now: Millis,
) -> Result<(), StoreError> {
    let Some(replication) = &deleted.replication else {
        return Ok(());
    };
    let regions = std::iter::once(&replication.primary_region).chain(&replication.replica_regions);
    for region in regions.filter(|r| *r != deleted.region()) {
        for _ in 0..8 {
            let Some(mut copy) = services.store.key(region, &deleted.id()).await? else {
                break;
            };
            copy.replica_deleted(deleted.region(), now);
            // AWS records its own changes to the copies of a multi-Region key so.
            let event = service_event("SynchronizeMultiRegionKey", &copy.arn, now, None);
            let intent = audit.intent(event.record.clone());
            let written = services.store.update_key(&intent, &copy).await;
            finish(audit, event, &intent).await;
            match written {
                Ok(_) => break,
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Chains a job's `event` once its writes, which carried `intent` (made from it), have
/// committed. Like a request's, the record commits with the writes, so a crash cannot leave
/// the change unaudited.
async fn finish(audit: &AuditLog, event: PendingEvent, intent: &Intent) {
    if intent.written() {
        // Durable in the outbox either way; the log's writer retries a failed append.
        let _ = audit.record(event, true).await;
    }
}

pub async fn run_due(
    services: &Services,
    audit: &AuditLog,
    now: Millis,
) -> Result<JobReport, StoreError> {
    let mut report = JobReport::default();
    for key in services.store.keys_due(now).await? {
        match key.job_due(now) {
            None => {}
            Some(KeyJob::Delete) => {
                let event = service_event("DeleteKey", &key.arn, now, None);
                let intent = audit.intent(event.record.clone());
                let deleted = services
                    .store
                    .delete_key(&intent, key.region(), &key.id())
                    .await;
                finish(audit, event, &intent).await;
                let deleted = deleted?;
                if deleted {
                    services.materials.forget_key(&key.arn);
                    if let Some(link) = &key.custom_key_store {
                        // As in AWS, the token key goes too when this node is connected to
                        // its store; a disconnected store's stays behind in its token.
                        services
                            .key_stores
                            .destroy_key(&link.id, &key.current_material);
                    }
                    tracing::info!(key = %key.arn, "key deleted at the end of its waiting period");
                    report.deleted += 1;
                    forget_replica(services, audit, &key, now).await?;
                }
            }
            Some(KeyJob::ExpireImportedMaterial) => {
                let event = service_event("DeleteExpiredKeyMaterial", &key.arn, now, None);
                let intent = audit.intent(event.record.clone());
                let removed = expire_imported_materials(services, &intent, key.clone(), now).await;
                finish(audit, event, &intent).await;
                match removed {
                    Ok(_) => report.expired += 1,
                    Err(e) => {
                        tracing::warn!(key = %key.arn, error = %e, "expiring imported material failed")
                    }
                }
            }
            Some(KeyJob::Rotate) => {
                let event = service_event(
                    "RotateKey",
                    &key.arn,
                    now,
                    Some(serde_json::json!({ "rotationType": "AUTOMATIC" })),
                );
                let intent = audit.intent(event.record.clone());
                let rotation =
                    rotate_key(services, &intent, key.clone(), RotationType::Automatic, now).await;
                finish(audit, event, &intent).await;
                match rotation {
                    Ok(_) => report.rotated += 1,
                    Err(e) => {
                        tracing::warn!(key = %key.arn, error = %e, "automatic rotation failed")
                    }
                }
            }
        }
    }
    Ok(report)
}
