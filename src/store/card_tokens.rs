//! The `card_tokens` table: masked card facts in clear, the number only as an
//! envelope (wrapped data key + ciphertext). Not found comes back as `None`;
//! an id collision as `StoreError::Duplicate`.

use sqlx::{Any, Executor};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::ids::TokenId;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;

/// A token row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenRow {
    pub id: String,
    pub merchant_id: String,
    pub mode: String,
    pub brand: String,
    pub bin: String,
    pub last4: String,
    pub exp_month: i64,
    pub exp_year: i64,
    pub fingerprint: String,
    pub kek_version: i64,
    /// Base64; `None` once shredded.
    pub wrapped_dek: Option<String>,
    /// Base64; `None` once shredded.
    pub ciphertext: Option<String>,
    pub created_at: i64,
    pub shredded_at: Option<i64>,
}

/// The columns of a token, in the order of [`TokenRow`] (written once).
macro_rules! token_columns {
    () => {
        "id, merchant_id, mode, brand, bin, last4, exp_month, exp_year, fingerprint, kek_version, \
         wrapped_dek, ciphertext, created_at, shredded_at"
    };
}

const COLUMNS: &str = token_columns!();

/// The insert of a new token, for a group-commit job.
pub fn insert_op(row: &TokenRow) -> WriteOp {
    WriteOp::new(
        "INSERT INTO card_tokens (id, merchant_id, mode, brand, bin, last4, exp_month, exp_year, fingerprint, \
         kek_version, wrapped_dek, ciphertext, created_at, shredded_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, NULL)",
        vec![
            (&row.id).into(),
            (&row.merchant_id).into(),
            (&row.mode).into(),
            (&row.brand).into(),
            (&row.bin).into(),
            (&row.last4).into(),
            row.exp_month.into(),
            row.exp_year.into(),
            (&row.fingerprint).into(),
            row.kek_version.into(),
            (&row.wrapped_dek).into(),
            (&row.ciphertext).into(),
            row.created_at.into(),
        ],
    )
}

/// A [`TokenRow`] from a result row of a driver other than sqlx, whose
/// columns are [`COLUMNS`] in order: `$get` is the driver's typed getter.
macro_rules! token_row_from {
    ($row:ident . $get:ident) => {
        TokenRow {
            id: $row.$get(0)?,
            merchant_id: $row.$get(1)?,
            mode: $row.$get(2)?,
            brand: $row.$get(3)?,
            bin: $row.$get(4)?,
            last4: $row.$get(5)?,
            exp_month: $row.$get(6)?,
            exp_year: $row.$get(7)?,
            fingerprint: $row.$get(8)?,
            kek_version: $row.$get(9)?,
            wrapped_dek: $row.$get(10)?,
            ciphertext: $row.$get(11)?,
            created_at: $row.$get(12)?,
            shredded_at: $row.$get(13)?,
        }
    };
}

/// [`get_live`] on the hot reads' path: inline on SQLite (no thread hop),
/// through the shared clients on PostgreSQL ([`super::pg_fast`]). It is on
/// the path of every payment.
pub async fn get_live_inline(
    store: &super::Store,
    tenant: &Tenant,
    id: &TokenId,
) -> Result<Option<TokenRow>, StoreError> {
    const SQL: &str = concat!(
        "SELECT ",
        token_columns!(),
        " FROM card_tokens WHERE id = $1 AND merchant_id = $2 AND mode = $3 AND shredded_at IS NULL"
    );
    let mapping = super::hot_read::RowMapping {
        table: "card_tokens",
        from_sqlite: |r| Ok(token_row_from!(r.get)),
        from_postgres: |r| Ok(token_row_from!(r.try_get)),
    };
    let params = [id.as_str(), tenant.merchant_str(), tenant.mode_str()];
    super::hot_read::one(store, SQL, params, mapping, get_live(store.reader(), tenant, id)).await
}

/// The token `id` only if it is `tenant`'s and not shredded.
pub async fn get_live<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &TokenId,
) -> Result<Option<TokenRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM card_tokens WHERE id = $1 AND merchant_id = $2 AND mode = $3 AND shredded_at IS NULL"
    );
    Ok(sqlx::query_as(&sql)
        .bind(id.as_str())
        .bind(tenant.merchant_str())
        .bind(tenant.mode_str())
        .fetch_optional(db)
        .await?)
}

/// Destroys the token's key material and ciphertext; a token that is not a
/// live token of `tenant` at commit time fails the unit with `Conflict`.
pub fn shred(work: &mut UnitOfWork, tenant: &Tenant, id: &TokenId, at: Timestamp) {
    work.push(
        WriteOp::new(
            "UPDATE card_tokens SET wrapped_dek = NULL, ciphertext = NULL, shredded_at = $1 \
             WHERE id = $2 AND merchant_id = $3 AND mode = $4 AND shredded_at IS NULL",
            vec![
                at.as_millis().into(),
                id.as_str().into(),
                tenant.merchant_str().into(),
                tenant.mode_str().into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Live tokens per KEK version, for `vault status`.
pub async fn count_by_kek_version<'e>(db: impl Executor<'e, Database = Any>) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kek_version, COUNT(*) FROM card_tokens WHERE shredded_at IS NULL GROUP BY kek_version ORDER BY kek_version",
    )
    .fetch_all(db)
    .await?)
}

/// What re-wrapping needs of a token.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WrappedKeyRow {
    pub id: String,
    pub merchant_id: String,
    pub kek_version: i64,
    pub wrapped_dek: String,
    pub ciphertext: String,
}

/// Up to `limit` live tokens with ids after `after` whose data key is not
/// wrapped by `version`, in id order.
pub async fn page_not_at_version<'e>(
    db: impl Executor<'e, Database = Any>,
    version: i64,
    after: &str,
    limit: i64,
) -> Result<Vec<WrappedKeyRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT id, merchant_id, kek_version, wrapped_dek, ciphertext FROM card_tokens \
         WHERE kek_version <> $1 AND shredded_at IS NULL AND wrapped_dek IS NOT NULL AND ciphertext IS NOT NULL \
         AND id > $2 ORDER BY id LIMIT $3",
    )
    .bind(version)
    .bind(after)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Replaces a token's wrapped data key, only if it is still wrapped by
/// `from` (a concurrent shred or rotation wins); `changed` is set to whether
/// it did.
pub fn rewrap(work: &mut UnitOfWork, id: &str, from: i64, to: i64, wrapped_dek: &str, changed: Arc<AtomicBool>) {
    work.push(
        WriteOp::new(
            "UPDATE card_tokens SET kek_version = $1, wrapped_dek = $2 \
             WHERE id = $3 AND kek_version = $4 AND shredded_at IS NULL",
            vec![to.into(), wrapped_dek.into(), id.into(), from.into()],
        )
        .report_to(changed),
    );
}

impl super::ports::TokenStore for super::Store {
    fn insert_token(&self, work: &mut UnitOfWork, row: &TokenRow) {
        work.push(insert_op(row));
    }

    async fn get_live_token(&self, tenant: &Tenant, id: &TokenId) -> Result<Option<TokenRow>, StoreError> {
        get_live(self.reader(), tenant, id).await
    }

    async fn get_live_token_for_payment(&self, tenant: &Tenant, id: &TokenId) -> Result<Option<TokenRow>, StoreError> {
        get_live_inline(self, tenant, id).await
    }

    fn shred_token(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &TokenId, at: Timestamp) {
        shred(work, tenant, id, at);
    }

    fn count_reveal(&self, work: &mut UnitOfWork, key_id: &str, now_ms: i64, window_ms: i64, limit: i64) {
        super::reveal_allowances::count_reveal(work, key_id, now_ms, window_ms, limit);
    }

    async fn tokens_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        count_by_kek_version(self.reader()).await
    }

    async fn tokens_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        limit: i64,
    ) -> Result<Vec<WrappedKeyRow>, StoreError> {
        page_not_at_version(self.reader(), version, after, limit).await
    }

    fn rewrap_token(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        from: i64,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    ) {
        rewrap(work, id, from, to, wrapped_dek, changed);
    }
}
