//! The `idempotency_keys` table: per merchant, mode, key lineage (the API key
//! that made the record, and the keys rotated from it) and client key, the
//! MAC of the first request and, once it finished, its sealed response. Not found comes
//! back as `None`; a key held by a live record as `StoreError::Duplicate`
//! (from [`claim`]); conditional updates return whether a row changed.
//!
//! Invariant: no column holds a request body or an unkeyed hash of one, and
//! the response is only ever written sealed (see `services::idempotency`).

use sqlx::{Any, Executor};

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::time::Timestamp;

/// `state` of a record whose first request is still running.
pub const IN_PROGRESS: &str = "in_progress";
/// `state` of a record holding its response.
pub const DONE: &str = "done";

/// A record as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct IdempotencyRow {
    pub merchant_id: String,
    pub mode: String,
    /// The lineage of the API key that made the record (`api_keys.lineage_id`).
    pub lineage_id: String,
    pub key: String,
    /// Hex HMAC-SHA-256 of the request under the idempotency MAC key.
    pub request_mac: String,
    pub state: String,
    /// The request that holds (or held) the lock and produced the response.
    pub request_id: String,
    pub locked_until: i64,
    pub status_code: Option<i64>,
    /// Base64 ciphertext of the response; `None` while in progress.
    pub response: Option<String>,
    /// Base64 wrapped data key of `response`.
    pub wrapped_dek: Option<String>,
    pub kek_version: Option<i64>,
    pub created_at: i64,
    pub expires_at: i64,
}

const COLUMNS: &str =
    "merchant_id, mode, lineage_id, key, request_mac, state, request_id, locked_until, status_code, response, \
                       wrapped_dek, kek_version, created_at, expires_at";

/// What identifies a record: the caller's tenant and key lineage, and the
/// client's key. Every read and write names all four, so a record is only ever
/// seen by the key lineage that made it.
#[derive(Debug, Clone, Copy)]
pub struct RecordKey<'a> {
    pub merchant_id: &'a str,
    pub mode: &'a str,
    pub lineage_id: &'a str,
    pub key: &'a str,
}

/// What [`claim_op`] writes: a fresh in-progress record.
#[derive(Debug, Clone)]
pub struct NewClaim<'a> {
    pub record: RecordKey<'a>,
    pub request_mac: &'a str,
    pub request_id: &'a str,
    pub now: Timestamp,
    pub locked_until: Timestamp,
    pub expires_at: Timestamp,
}

/// Inserts an in-progress record, or replaces the record holding the key if
/// it has expired, or if it is still in progress with an expired lock and the
/// same request MAC (its gateway died mid-request). Anything else holding the
/// key (a live record) is `StoreError::Duplicate`. One statement, so two
/// concurrent claims of one key cannot both succeed.
pub fn claim_op(c: &NewClaim<'_>) -> WriteOp {
    WriteOp::new(
        "INSERT INTO idempotency_keys (merchant_id, mode, lineage_id, key, request_mac, state, request_id, \
         locked_until, status_code, response, wrapped_dek, kek_version, created_at, expires_at) \
         VALUES ($1, $10, $11, $2, $3, 'in_progress', $4, $5, NULL, NULL, NULL, NULL, $6, $7) \
         ON CONFLICT (merchant_id, mode, lineage_id, key) DO UPDATE SET request_mac = excluded.request_mac, state = excluded.state, \
         request_id = excluded.request_id, locked_until = excluded.locked_until, status_code = NULL, \
         response = NULL, wrapped_dek = NULL, kek_version = NULL, created_at = excluded.created_at, \
         expires_at = excluded.expires_at \
         WHERE idempotency_keys.expires_at <= $8 \
         OR (idempotency_keys.state = 'in_progress' AND idempotency_keys.locked_until <= $9 \
             AND idempotency_keys.request_mac = excluded.request_mac)",
        vec![
            c.record.merchant_id.into(),
            c.record.key.into(),
            c.request_mac.into(),
            c.request_id.into(),
            c.locked_until.as_millis().into(),
            c.now.as_millis().into(),
            c.expires_at.as_millis().into(),
            c.now.as_millis().into(),
            c.now.as_millis().into(),
            c.record.mode.into(),
            c.record.lineage_id.into(),
        ],
    )
    .expect_one(Failure::Duplicate)
}

/// The record `record`, whatever its state or age.
pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    record: RecordKey<'_>,
) -> Result<Option<IdempotencyRow>, StoreError> {
    let sql = format!(
        "SELECT {COLUMNS} FROM idempotency_keys \
         WHERE merchant_id = $1 AND mode = $2 AND lineage_id = $3 AND key = $4"
    );
    Ok(sqlx::query_as(&sql)
        .bind(record.merchant_id)
        .bind(record.mode)
        .bind(record.lineage_id)
        .bind(record.key)
        .fetch_optional(db)
        .await?)
}

/// The sealed response of a finished request.
#[derive(Debug, Clone)]
pub struct Finished<'a> {
    pub status_code: i64,
    pub response: &'a str,
    pub wrapped_dek: &'a str,
    pub kek_version: i64,
}

/// Stores the response and marks the record done, only if `request_id` still
/// holds it in progress (a takeover wins). Returns whether it changed.
pub fn finish_op(record: RecordKey<'_>, request_id: &str, f: &Finished<'_>, changed: Arc<AtomicBool>) -> WriteOp {
    WriteOp::new(
        "UPDATE idempotency_keys SET state = 'done', status_code = $1, response = $2, wrapped_dek = $3, \
         kek_version = $4 \
         WHERE merchant_id = $5 AND mode = $6 AND lineage_id = $7 AND key = $8 AND request_id = $9 \
         AND state = 'in_progress'",
        vec![
            f.status_code.into(),
            f.response.into(),
            f.wrapped_dek.into(),
            f.kek_version.into(),
            record.merchant_id.into(),
            record.mode.into(),
            record.lineage_id.into(),
            record.key.into(),
            request_id.into(),
        ],
    )
    .report_to(changed)
}

/// Deletes the in-progress record held by `request_id` (its request failed
/// and may be retried). Returns whether it existed.
pub fn release_op(record: RecordKey<'_>, request_id: &str) -> WriteOp {
    WriteOp::new(
        "DELETE FROM idempotency_keys \
         WHERE merchant_id = $1 AND mode = $2 AND lineage_id = $3 AND key = $4 AND request_id = $5 \
         AND state = 'in_progress'",
        vec![
            record.merchant_id.into(),
            record.mode.into(),
            record.lineage_id.into(),
            record.key.into(),
            request_id.into(),
        ],
    )
}

/// Deletes every record that expired at or before `now`, in a statement of
/// its own (maintenance); returns how many.
pub async fn delete_expired(store: &super::Store, now: Timestamp) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    let done = sqlx::query("DELETE FROM idempotency_keys WHERE expires_at <= $1")
        .bind(now.as_millis())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

/// Stored responses per KEK version, for `vault status`.
pub async fn count_by_kek_version<'e>(db: impl Executor<'e, Database = Any>) -> Result<Vec<(i64, i64)>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT kek_version, COUNT(*) FROM idempotency_keys WHERE state = 'done' AND kek_version IS NOT NULL \
         GROUP BY kek_version ORDER BY kek_version",
    )
    .fetch_all(db)
    .await?)
}

/// What re-wrapping needs of a stored response.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WrappedResponseRow {
    pub merchant_id: String,
    pub mode: String,
    pub lineage_id: String,
    pub key: String,
    pub request_mac: String,
    pub kek_version: i64,
    pub wrapped_dek: String,
    pub response: String,
}

impl WrappedResponseRow {
    /// The record this row is.
    pub fn record(&self) -> RecordKey<'_> {
        RecordKey {
            merchant_id: &self.merchant_id,
            mode: &self.mode,
            lineage_id: &self.lineage_id,
            key: &self.key,
        }
    }
}

/// Up to `limit` stored responses after the record `after` whose data key is
/// not wrapped by `version`, in primary-key order (an empty `after` starts at
/// the beginning).
pub async fn page_not_at_version<'e>(
    db: impl Executor<'e, Database = Any>,
    version: i64,
    after: RecordKey<'_>,
    limit: i64,
) -> Result<Vec<WrappedResponseRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT merchant_id, mode, lineage_id, key, request_mac, kek_version, wrapped_dek, response \
         FROM idempotency_keys \
         WHERE state = 'done' AND kek_version <> $1 AND wrapped_dek IS NOT NULL AND response IS NOT NULL \
         AND (merchant_id, mode, lineage_id, key) > ($2, $3, $4, $5) \
         ORDER BY merchant_id, mode, lineage_id, key LIMIT $6",
    )
    .bind(version)
    .bind(after.merchant_id)
    .bind(after.mode)
    .bind(after.lineage_id)
    .bind(after.key)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

/// Replaces a stored response's wrapped data key, only if the row still holds
/// exactly the key that was re-wrapped (a concurrent rotation, expiry or reuse
/// of the key wins); `changed` is set to whether it did.
pub fn rewrap(
    work: &mut UnitOfWork,
    record: RecordKey<'_>,
    old_wrapped_dek: &str,
    to: i64,
    wrapped_dek: &str,
    changed: Arc<AtomicBool>,
) {
    work.push(
        WriteOp::new(
            "UPDATE idempotency_keys SET kek_version = $1, wrapped_dek = $2 \
             WHERE merchant_id = $3 AND mode = $4 AND lineage_id = $5 AND key = $6 AND wrapped_dek = $7 \
             AND state = 'done'",
            vec![
                to.into(),
                wrapped_dek.into(),
                record.merchant_id.into(),
                record.mode.into(),
                record.lineage_id.into(),
                record.key.into(),
                old_wrapped_dek.into(),
            ],
        )
        .report_to(changed),
    );
}

impl super::ports::IdempotencyStore for super::Store {
    fn claim_idempotency_key(&self, work: &mut UnitOfWork, claim: &NewClaim<'_>) {
        work.push(claim_op(claim));
    }

    async fn get_idempotency_record(&self, record: RecordKey<'_>) -> Result<Option<IdempotencyRow>, StoreError> {
        get(self.reader(), record).await
    }

    fn finish_idempotency_record(
        &self,
        work: &mut UnitOfWork,
        record: RecordKey<'_>,
        request_id: &str,
        finished: &Finished<'_>,
        changed: Arc<AtomicBool>,
    ) {
        work.push(finish_op(record, request_id, finished, changed));
    }

    fn release_idempotency_record(&self, work: &mut UnitOfWork, record: RecordKey<'_>, request_id: &str) {
        work.push(release_op(record, request_id));
    }

    async fn delete_expired_idempotency_records(&self, now: Timestamp) -> Result<u64, StoreError> {
        delete_expired(self, now).await
    }

    async fn idempotency_responses_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        count_by_kek_version(self.reader()).await
    }

    async fn idempotency_responses_not_at_kek_version(
        &self,
        version: i64,
        after: RecordKey<'_>,
        limit: i64,
    ) -> Result<Vec<WrappedResponseRow>, StoreError> {
        page_not_at_version(self.reader(), version, after, limit).await
    }

    fn rewrap_idempotency_response(
        &self,
        work: &mut UnitOfWork,
        record: RecordKey<'_>,
        old_wrapped_dek: &str,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    ) {
        rewrap(work, record, old_wrapped_dek, to, wrapped_dek, changed);
    }
}
