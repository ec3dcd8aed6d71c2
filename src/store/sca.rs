//! The `sca_counters` table: per tenant and card fingerprint, the payments
//! exempted from SCA since the card's last SCA (how many, their total in
//! euro cents) and when it last passed SCA.
//!
//! Every write is one upsert that adds in place (`consecutive + 1`), so
//! concurrent payments of one card never lose a count; the low-value one
//! carries the limits as its condition and must change its row, so of two
//! payments that would each be the 5th only one commits (the other's unit
//! fails with `Conflict`, and the service decides it again).

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::{Store, StoreError};
use crate::domain::sca::{LOW_VALUE_MAX_CONSECUTIVE, LOW_VALUE_MAX_CUMULATIVE};
use crate::domain::tenant::Tenant;

/// A card's counters as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct ScaCounterRow {
    pub consecutive: i64,
    pub cumulative_cents: i64,
    /// When the card last passed SCA (ms), if ever.
    pub authenticated_at: Option<i64>,
}

fn cents_value(cents: u64) -> i64 {
    i64::try_from(cents).unwrap_or(i64::MAX)
}

const COUNT_SQL: &str = "INSERT INTO sca_counters \
     (merchant_id, mode, fingerprint, consecutive, cumulative_cents, authenticated_at, updated_at) \
     VALUES ($1, $2, $3, 1, $4, NULL, $5) \
     ON CONFLICT (merchant_id, mode, fingerprint) DO UPDATE SET consecutive = sca_counters.consecutive + 1, \
     cumulative_cents = sca_counters.cumulative_cents + excluded.cumulative_cents, updated_at = excluded.updated_at";

/// The statement of [`count_low_value`]: [`COUNT_SQL`] within the limits.
const COUNT_LOW_VALUE_SQL: &str = "INSERT INTO sca_counters \
     (merchant_id, mode, fingerprint, consecutive, cumulative_cents, authenticated_at, updated_at) \
     VALUES ($1, $2, $3, 1, $4, NULL, $5) \
     ON CONFLICT (merchant_id, mode, fingerprint) DO UPDATE SET consecutive = sca_counters.consecutive + 1, \
     cumulative_cents = sca_counters.cumulative_cents + excluded.cumulative_cents, updated_at = excluded.updated_at \
     WHERE sca_counters.consecutive + 1 <= $6 AND sca_counters.cumulative_cents + excluded.cumulative_cents <= $7";

/// Counts a low-value payment within the limits; past them the unit fails
/// with `Conflict`.
pub fn count_low_value(work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, cents: u64, at: i64) {
    work.push(
        WriteOp::new(
            COUNT_LOW_VALUE_SQL,
            vec![
                tenant.merchant_str().into(),
                tenant.mode_str().into(),
                fingerprint.into(),
                cents_value(cents).into(),
                at.into(),
                i64::from(LOW_VALUE_MAX_CONSECUTIVE).into(),
                cents_value(LOW_VALUE_MAX_CUMULATIVE.cents()).into(),
            ],
        )
        .expect_one(Failure::Conflict),
    );
}

/// Counts a payment exempted otherwise, unconditionally.
pub fn count_exempt(work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, cents: u64, at: i64) {
    work.push(WriteOp::new(
        COUNT_SQL,
        vec![
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
            fingerprint.into(),
            cents_value(cents).into(),
            at.into(),
        ],
    ));
}

/// The card passed SCA at `at`: zero counters.
pub fn reset(work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, at: i64) {
    work.push(WriteOp::new(
        "INSERT INTO sca_counters \
         (merchant_id, mode, fingerprint, consecutive, cumulative_cents, authenticated_at, updated_at) \
         VALUES ($1, $2, $3, 0, 0, $4, $4) \
         ON CONFLICT (merchant_id, mode, fingerprint) DO UPDATE SET consecutive = 0, cumulative_cents = 0, \
         authenticated_at = excluded.authenticated_at, updated_at = excluded.updated_at",
        vec![
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
            fingerprint.into(),
            at.into(),
        ],
    ));
}

/// The card's counters; `None` if it has none.
pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    fingerprint: &str,
) -> Result<Option<ScaCounterRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT consecutive, cumulative_cents, authenticated_at FROM sca_counters \
         WHERE merchant_id = $1 AND mode = $2 AND fingerprint = $3",
    )
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .bind(fingerprint)
    .fetch_optional(db)
    .await?)
}

impl crate::store::ports::ScaStore for Store {
    async fn get_sca_counters(&self, tenant: &Tenant, fingerprint: &str) -> Result<Option<ScaCounterRow>, StoreError> {
        get(self.reader(), tenant, fingerprint).await
    }

    fn count_low_value(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, cents: u64, at: i64) {
        count_low_value(work, tenant, fingerprint, cents, at);
    }

    fn count_exempt(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, cents: u64, at: i64) {
        count_exempt(work, tenant, fingerprint, cents, at);
    }

    fn reset_sca_counters(&self, work: &mut UnitOfWork, tenant: &Tenant, fingerprint: &str, at: i64) {
        reset(work, tenant, fingerprint, at);
    }
}
