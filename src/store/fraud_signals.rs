//! The fraud signals' table, `fraud_observations`: one row per screened
//! confirm (the card's fingerprint, keyed hashes of the customer's IP and
//! e-mail address, amount, currency, outcome), inserted in the payment's own
//! unit of work and never updated, and the one read per confirm that counts
//! earlier rows of the same card, IP and e-mail address over 1 h and 24 h.
//!
//! Every statement is scoped by tenant (merchant and mode): another
//! merchant's or mode's rows are never counted. Each count reads at most
//! [`MAX_COUNTED`] rows (the newest), so a key seen very often (a shared
//! NAT address) costs a bounded read; counts saturate there.

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::write_op::WriteOp;
use super::{Store, StoreError};
use crate::domain::tenant::Tenant;

/// The most rows one count reads (per key and per confirm): counts
/// saturate here. Kept small because a confirm reads up to this many rows
/// for each of its card, IP and e-mail address (the indexes cover the
/// columns read, so each row is an index entry, no table look-up).
pub const MAX_COUNTED: i64 = 100;

/// How many of a tenant's newest observations its usual amount averages.
pub const USUAL_SAMPLE: i64 = 1000;

/// What a screened confirm records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservationRow {
    pub payment_id: String,
    /// Milliseconds since the epoch: the time of the confirm.
    pub at: i64,
    /// The card's fingerprint.
    pub card_key: String,
    /// Keyed hash of the customer's IP address.
    pub ip_key: Option<String>,
    /// Keyed hash of the customer's e-mail address.
    pub email_key: Option<String>,
    pub currency: String,
    pub amount: i64,
    /// [`OUTCOME_ALLOWED`], [`OUTCOME_DECLINED`] or [`OUTCOME_BLOCKED`].
    pub outcome: i64,
}

/// Allowed by the rules (authorized, pending or challenged).
pub const OUTCOME_ALLOWED: i64 = 0;
/// Declined by the processor.
pub const OUTCOME_DECLINED: i64 = 1;
/// Blocked by the merchant's rules.
pub const OUTCOME_BLOCKED: i64 = 2;

/// The keys of one confirm that earlier rows are counted by.
#[derive(Debug, Clone, Copy)]
pub struct ObservationKeys<'a> {
    pub card_key: &'a str,
    pub ip_key: Option<&'a str>,
    pub email_key: Option<&'a str>,
}

/// Counts of earlier rows of one key (at most [`MAX_COUNTED`] read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct KeyCounts {
    pub payments_24h: i64,
    pub payments_1h: i64,
    pub declines_24h: i64,
    pub declines_1h: i64,
    /// Distinct cards among them: counted for the IP only, 0 for the card
    /// and the e-mail address.
    pub cards_24h: i64,
    pub cards_1h: i64,
}

/// What the read finds for one confirm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedCounts {
    pub card: KeyCounts,
    /// Zero counts when the confirm has no IP (the service leaves it out).
    pub ip: KeyCounts,
    pub email: KeyCounts,
    /// Some earlier row of the card exists (within the retention).
    pub card_seen: bool,
}

#[derive(sqlx::FromRow)]
struct SubjectRow {
    subject: String,
    #[sqlx(flatten)]
    counts: KeyCounts,
}

/// Stages recording one screened confirm (a repeated one is ignored).
pub fn insert(work: &mut UnitOfWork, tenant: &Tenant, row: &ObservationRow) {
    work.push(WriteOp::new(
        "INSERT INTO fraud_observations (merchant_id, mode, payment_id, at, card_key, ip_key, email_key, \
         currency, amount, outcome) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
         ON CONFLICT (merchant_id, mode, payment_id, at) DO NOTHING",
        vec![
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
            row.payment_id.as_str().into(),
            row.at.into(),
            row.card_key.as_str().into(),
            (&row.ip_key).into(),
            (&row.email_key).into(),
            row.currency.as_str().into(),
            row.amount.into(),
            row.outcome.into(),
        ],
    ));
}

/// The counts of one key: `$1` merchant, `$2` mode, `$3` the key, `$4` the
/// start of the last hour, `$5` the start of the last 24 hours.
macro_rules! counts_of {
    ($subject:literal, $column:literal, $key:literal, $cards:literal) => {
        concat!(
            "SELECT '",
            $subject,
            "' AS subject, COUNT(*) AS payments_24h, \
             COALESCE(SUM(CASE WHEN at >= $4 THEN 1 ELSE 0 END), 0) AS payments_1h, \
             COALESCE(SUM(CASE WHEN outcome = 1 THEN 1 ELSE 0 END), 0) AS declines_24h, \
             COALESCE(SUM(CASE WHEN outcome = 1 AND at >= $4 THEN 1 ELSE 0 END), 0) AS declines_1h, \
             ",
            $cards,
            " FROM (SELECT at, outcome, card_key FROM fraud_observations \
             WHERE merchant_id = $1 AND mode = $2 AND ",
            $column,
            " = ",
            $key,
            " AND at >= $5 ORDER BY at DESC LIMIT 100) w"
        )
    };
}

/// Distinct cards are counted for the IP only (each costs a temporary
/// B-tree on SQLite).
const COUNTS: &str = concat!(
    counts_of!(
        "card",
        "card_key",
        "$3",
        "CAST(0 AS BIGINT) AS cards_24h, CAST(0 AS BIGINT) AS cards_1h"
    ),
    " UNION ALL ",
    counts_of!(
        "ip",
        "ip_key",
        "$6",
        "COUNT(DISTINCT card_key) AS cards_24h, COUNT(DISTINCT CASE WHEN at >= $4 THEN card_key END) AS cards_1h"
    ),
    " UNION ALL ",
    counts_of!(
        "email",
        "email_key",
        "$7",
        "CAST(0 AS BIGINT) AS cards_24h, CAST(0 AS BIGINT) AS cards_1h"
    ),
    " UNION ALL SELECT 'seen' AS subject, COUNT(*) AS payments_24h, 0 AS payments_1h, 0 AS declines_24h, \
     0 AS declines_1h, 0 AS cards_24h, 0 AS cards_1h FROM (SELECT at FROM fraud_observations \
     WHERE merchant_id = $1 AND mode = $2 AND card_key = $3 LIMIT 1) s"
);

/// Counts the tenant's earlier rows of `keys` since `since_24h` (and of
/// those, since `since_1h`): one query.
pub async fn counts<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    keys: ObservationKeys<'_>,
    since_1h: i64,
    since_24h: i64,
) -> Result<ObservedCounts, StoreError> {
    let rows: Vec<SubjectRow> = sqlx::query_as(COUNTS)
        .bind(tenant.merchant_str())
        .bind(tenant.mode_str())
        .bind(keys.card_key)
        .bind(since_1h)
        .bind(since_24h)
        .bind(keys.ip_key)
        .bind(keys.email_key)
        .fetch_all(db)
        .await?;
    let mut found = ObservedCounts::default();
    for row in rows {
        match row.subject.as_str() {
            "card" => found.card = row.counts,
            "ip" => found.ip = row.counts,
            "email" => found.email = row.counts,
            "seen" => found.card_seen = row.counts.payments_24h > 0,
            other => return Err(StoreError::Corrupt(format!("fraud_observations subject {other}"))),
        }
    }
    Ok(found)
}

/// The count and sum of the amounts of the tenant's newest (at most
/// [`USUAL_SAMPLE`]) rows in `currency`.
pub async fn amounts<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    currency: &str,
) -> Result<(i64, i64), StoreError> {
    Ok(sqlx::query_as(
        "SELECT COUNT(*), COALESCE(CAST(SUM(amount) AS BIGINT), 0) FROM (SELECT amount FROM fraud_observations \
         WHERE merchant_id = $1 AND mode = $2 AND currency = $3 ORDER BY payment_id DESC LIMIT 1000) a",
    )
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .bind(currency)
    .fetch_one(db)
    .await?)
}

/// Deletes every row older than `before` (milliseconds); returns how many.
pub async fn prune(store: &Store, before: i64) -> Result<u64, StoreError> {
    let mut tx = store.begin().await?;
    let done = sqlx::query("DELETE FROM fraud_observations WHERE at < $1")
        .bind(before)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(done.rows_affected())
}

impl super::ports::SignalStore for Store {
    async fn observed_counts(
        &self,
        tenant: &Tenant,
        keys: ObservationKeys<'_>,
        since_1h: i64,
        since_24h: i64,
    ) -> Result<ObservedCounts, StoreError> {
        counts(self.reader(), tenant, keys, since_1h, since_24h).await
    }

    async fn observed_amounts(&self, tenant: &Tenant, currency: &str) -> Result<(i64, i64), StoreError> {
        amounts(self.reader(), tenant, currency).await
    }

    async fn prune_observations(&self, before: i64) -> Result<u64, StoreError> {
        prune(self, before).await
    }

    fn insert_observation(&self, work: &mut UnitOfWork, tenant: &Tenant, row: &ObservationRow) {
        insert(work, tenant, row);
    }
}
