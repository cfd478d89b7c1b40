//! Background jobs: automatic key rotation, and destroying keys whose deletion waiting period
//! is over. Each run is idempotent; two nodes running at once do each thing once.

use std::future::Future;

use ferrokms_core::key::{KeyJob, KeyMetadata, Millis};
use ferrokms_store::{RotationType, StoreError};

use crate::api::{remove_imported_material, rotate_key, Services};
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
            match services.store.update_key(&copy).await {
                Ok(_) => break,
                Err(StoreError::Conflict) => continue,
                Err(e) => return Err(e),
            }
        }
    }
    Ok(())
}

/// Runs a job's writes with `event` as their record, then chains it. Like a request's, the
/// record commits with the writes, so a crash cannot leave the change unaudited.
async fn audited<T>(audit: &AuditLog, event: PendingEvent, work: impl Future<Output = T>) -> T {
    let intent = audit.intent(event.record.clone());
    let out = audit.scope(intent.clone(), work).await;
    if intent.written() {
        // Durable in the outbox either way; the log's writer retries a failed append.
        let _ = audit.record(event, true).await;
    }
    out
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
                let deleted = audited(
                    audit,
                    event,
                    services.store.delete_key(key.region(), &key.id()),
                )
                .await?;
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
                    forget_replica(services, &key, now).await?;
                }
            }
            Some(KeyJob::ExpireImportedMaterial) => {
                let event = service_event("DeleteExpiredKeyMaterial", &key.arn, now, None);
                match audited(
                    audit,
                    event,
                    remove_imported_material(services, key.clone()),
                )
                .await
                {
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
                let rotation = rotate_key(services, key.clone(), RotationType::Automatic, now);
                match audited(audit, event, rotation).await {
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
