//! Custom key stores: one row each, the name unique per account and region, updates guarded
//! by a revision.

use ferrokms_core::ids::{AccountId, Region};
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{backend, commit, corrupt, count, is_unique_violation, SqlStore};
use crate::outbox::Intent;
use crate::{CustomKeyStoreRecord, StoreError, StoreResult};

fn record_from_row(row: &AnyRow) -> StoreResult<CustomKeyStoreRecord> {
    let text = |c: &str| row.try_get::<String, _>(c).map_err(backend);
    Ok(CustomKeyStoreRecord {
        region: Region::parse(&text("region")?).ok_or_else(|| corrupt("key store region"))?,
        account: AccountId::parse(&text("account_id")?)
            .ok_or_else(|| corrupt("key store account"))?,
        id: text("id")?,
        name: text("name")?,
        revision: row.try_get("revision").map_err(backend)?,
        document: text("document")?,
        wrapped_password: row.try_get("wrapped_password").map_err(backend)?,
    })
}

fn name_taken(e: sqlx::Error) -> StoreError {
    if is_unique_violation(&e) {
        StoreError::AlreadyExists
    } else {
        backend(e)
    }
}

impl SqlStore {
    pub(super) async fn insert_key_store(
        &self,
        audit: &Intent,
        r: &CustomKeyStoreRecord,
        max_per_account: usize,
    ) -> StoreResult<()> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let n: i64 = sqlx::query(
            "SELECT COUNT(*) AS n FROM custom_key_stores WHERE region = $1 AND account_id = $2",
        )
        .bind(r.region.as_str())
        .bind(r.account.as_str())
        .fetch_one(&mut *tx)
        .await
        .and_then(|row| row.try_get("n"))
        .map_err(backend)?;
        if count(n) >= max_per_account {
            return Err(StoreError::LimitExceeded {
                in_use: count(n) + 1,
            });
        }
        sqlx::query(
            "INSERT INTO custom_key_stores (region, id, account_id, name, revision, document, \
             wrapped_password) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(r.region.as_str())
        .bind(&r.id)
        .bind(r.account.as_str())
        .bind(&r.name)
        .bind(r.revision)
        .bind(&r.document)
        .bind(r.wrapped_password.as_slice())
        .execute(&mut *tx)
        .await
        .map_err(name_taken)?;
        commit(tx, audit).await
    }

    pub(super) async fn key_stores_of(
        &self,
        region: &Region,
        account: &AccountId,
    ) -> StoreResult<Vec<CustomKeyStoreRecord>> {
        sqlx::query(
            "SELECT * FROM custom_key_stores WHERE region = $1 AND account_id = $2 ORDER BY id",
        )
        .bind(region.as_str())
        .bind(account.as_str())
        .fetch_all(&self.reader)
        .await
        .map_err(backend)?
        .iter()
        .map(record_from_row)
        .collect()
    }

    pub(super) async fn replace_key_store(
        &self,
        audit: &Intent,
        r: &CustomKeyStoreRecord,
    ) -> StoreResult<i64> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let next = r.revision + 1;
        let done = sqlx::query(
            "UPDATE custom_key_stores SET name = $1, revision = $2, document = $3, \
             wrapped_password = $4 WHERE region = $5 AND account_id = $6 AND id = $7 \
             AND revision = $8",
        )
        .bind(&r.name)
        .bind(next)
        .bind(&r.document)
        .bind(r.wrapped_password.as_slice())
        .bind(r.region.as_str())
        .bind(r.account.as_str())
        .bind(&r.id)
        .bind(r.revision)
        .execute(&mut *tx)
        .await
        .map_err(name_taken)?;
        if done.rows_affected() == 0 {
            let exists = sqlx::query(
                "SELECT 1 AS one FROM custom_key_stores WHERE region = $1 AND account_id = $2 \
                 AND id = $3",
            )
            .bind(r.region.as_str())
            .bind(r.account.as_str())
            .bind(&r.id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(backend)?;
            return Err(if exists.is_some() {
                StoreError::Conflict
            } else {
                StoreError::NotFound
            });
        }
        commit(tx, audit).await?;
        Ok(next)
    }

    pub(super) async fn remove_key_store(
        &self,
        audit: &Intent,
        region: &Region,
        account: &AccountId,
        id: &str,
    ) -> StoreResult<bool> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let done = sqlx::query(
            "DELETE FROM custom_key_stores WHERE region = $1 AND account_id = $2 AND id = $3",
        )
        .bind(region.as_str())
        .bind(account.as_str())
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(backend)?;
        commit(tx, audit).await?;
        Ok(done.rows_affected() > 0)
    }
}
