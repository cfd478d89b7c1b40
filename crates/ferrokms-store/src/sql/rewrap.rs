//! Finding and replacing the secrets stored wrapped under the root key, for a move from one
//! root key to another: each replacement happens only where the stored form is still the one
//! read, so a move can stop anywhere and start again, beside running nodes.

use ferrokms_core::ids::{AccountId, KeyArn, KeyId, Region};
use ferrokms_core::material::MaterialId;
use sqlx::any::AnyRow;
use sqlx::Row;

use super::{backend, commit, corrupt, SqlStore};
use crate::outbox::Intent;
use crate::{SecretHolder, StoreResult, WrappedSecret};

/// How a row names the holder of the secret it carries.
type HolderOf = fn(&AnyRow) -> StoreResult<SecretHolder>;

/// Where wrapped secrets are kept: a query for those not in format `$1`, at most `$2` (each
/// names the secret's column `wrapped`), and how a row names its holder.
/// `substr` of a blob is a blob on SQLite and bytea on PostgreSQL: its first byte.
const SOURCES: &[(&str, HolderOf)] = &[
    (
        "SELECT m.region, m.key_id, k.account_id, m.material_id, m.wrapped \
         FROM key_materials m JOIN keys k ON k.region = m.region AND k.key_id = m.key_id \
         WHERE substr(m.wrapped, 1, 1) <> $1 ORDER BY m.region, m.key_id, m.material_id \
         LIMIT $2",
        material_holder,
    ),
    (
        "SELECT access_key_id, wrapped_secret AS wrapped FROM access_keys \
         WHERE substr(wrapped_secret, 1, 1) <> $1 ORDER BY access_key_id LIMIT $2",
        |row| {
            Ok(SecretHolder::AccessKey {
                access_key_id: row.try_get("access_key_id").map_err(backend)?,
            })
        },
    ),
    (
        "SELECT region, id, wrapped_password AS wrapped FROM custom_key_stores \
         WHERE substr(wrapped_password, 1, 1) <> $1 ORDER BY region, id LIMIT $2",
        |row| {
            let region: String = row.try_get("region").map_err(backend)?;
            Ok(SecretHolder::KeyStorePassword {
                region: Region::parse(&region).ok_or_else(|| corrupt("region"))?,
                id: row.try_get("id").map_err(backend)?,
            })
        },
    ),
    (
        "SELECT wrapped FROM audit_signing_key WHERE id = 1 AND substr(wrapped, 1, 1) <> $1 \
         LIMIT $2",
        |_| Ok(SecretHolder::AuditSigningKey),
    ),
];

fn material_holder(row: &AnyRow) -> StoreResult<SecretHolder> {
    let text = |c: &str| row.try_get::<String, _>(c).map_err(backend);
    let key = KeyArn {
        region: Region::parse(&text("region")?).ok_or_else(|| corrupt("region"))?,
        account: AccountId::parse(&text("account_id")?).ok_or_else(|| corrupt("key account"))?,
        key_id: KeyId::parse(&text("key_id")?).ok_or_else(|| corrupt("key id"))?,
    };
    let material =
        MaterialId::parse(&text("material_id")?).ok_or_else(|| corrupt("material id"))?;
    Ok(SecretHolder::Material { key, material })
}

impl SqlStore {
    pub(super) async fn wrapped_not_in_format(
        &self,
        format: u8,
        limit: usize,
    ) -> StoreResult<Vec<WrappedSecret>> {
        let format = [format];
        let mut out = Vec::new();
        for (sql, holder) in SOURCES {
            let left = limit.saturating_sub(out.len());
            if left == 0 {
                break;
            }
            let rows = sqlx::query(*sql)
                .bind(&format[..])
                .bind(i64::try_from(left).unwrap_or(i64::MAX))
                .fetch_all(&self.writer)
                .await
                .map_err(backend)?;
            for row in &rows {
                out.push(WrappedSecret {
                    holder: holder(row)?,
                    wrapped: row.try_get("wrapped").map_err(backend)?,
                });
            }
        }
        Ok(out)
    }

    pub(super) async fn replace_wrapped(
        &self,
        audit: &Intent,
        changes: &[(WrappedSecret, Vec<u8>)],
    ) -> StoreResult<usize> {
        let mut tx = self.writer.begin().await.map_err(backend)?;
        let mut replaced = 0;
        for (old, new) in changes {
            let query = match &old.holder {
                SecretHolder::Material { key, material } => sqlx::query(
                    "UPDATE key_materials SET wrapped = $1 WHERE region = $2 AND key_id = $3 \
                     AND material_id = $4 AND wrapped = $5",
                )
                .bind(new.as_slice())
                .bind(key.region.as_str())
                .bind(key.key_id.to_string())
                .bind(material.to_string()),
                SecretHolder::AccessKey { access_key_id } => sqlx::query(
                    "UPDATE access_keys SET wrapped_secret = $1 WHERE access_key_id = $2 \
                     AND wrapped_secret = $3",
                )
                .bind(new.as_slice())
                .bind(access_key_id.as_str()),
                SecretHolder::KeyStorePassword { region, id } => sqlx::query(
                    "UPDATE custom_key_stores SET wrapped_password = $1 WHERE region = $2 \
                     AND id = $3 AND wrapped_password = $4",
                )
                .bind(new.as_slice())
                .bind(region.as_str())
                .bind(id.as_str()),
                SecretHolder::AuditSigningKey => sqlx::query(
                    "UPDATE audit_signing_key SET wrapped = $1 WHERE id = 1 AND wrapped = $2",
                )
                .bind(new.as_slice()),
            };
            let done = query
                .bind(old.wrapped.as_slice())
                .execute(&mut *tx)
                .await
                .map_err(backend)?;
            replaced += usize::try_from(done.rows_affected()).unwrap_or(usize::MAX);
        }
        commit(tx, audit).await?;
        Ok(replaced)
    }
}
