//! The `webhook_deliveries` table: one row per endpoint × event, the
//! outbox's fan-out, and the lease that makes one worker the owner of an
//! attempt.
//!
//! Single-statement primitives (and the same statements as group-commit
//! [`WriteOp`]s, so that the delivery worker's claims and records share
//! commits instead of paying one each). A lease is taken with a conditional UPDATE
//! (compare-and-set on `lease_until`), which serialises on the row in both
//! backends: of two replicas claiming the same delivery, exactly one sees
//! `true`. Every later write of the attempt is conditional on the lease token,
//! so a worker whose lease ran out cannot overwrite the next owner's result.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sqlx::{Any, Executor};

use super::events::EventRow;
use super::write_op::{StatementsPerCount, Value, WriteOp};
use super::StoreError;

/// A delivery row as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct DeliveryRow {
    pub endpoint_id: String,
    pub event_id: String,
    pub merchant_id: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status_code: Option<i64>,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "endpoint_id, event_id, merchant_id, status, attempts, next_attempt_at, last_status_code, \
     last_error, created_at, updated_at";

/// The deliveries of the events of one change: for each event, one per
/// enabled endpoint of its merchant and mode subscribed to its type (or to
/// `*`). One statement for all of them; `None` without events.
pub fn enqueue_for_events_op(events: &[EventRow]) -> Option<WriteOp> {
    let first = events.first()?;
    // `events` is a JSON array of strings without escapes (event types are
    // `[a-z_.]`), so `"type"` appears in it exactly when subscribed. The
    // substring test is `replace(…) <> events`, not `LIKE $n`: SQLite
    // re-prepares a statement whose LIKE pattern is a parameter every time the
    // pattern changes, and this runs for every change.
    let mut params: Vec<Value> = vec![
        first.created_at.into(),
        (&first.merchant_id).into(),
        (&first.mode).into(),
    ];
    for event in events {
        params.push((&event.id).into());
        params.push(format!("\"{}\"", event.event_type).into());
    }
    Some(WriteOp::new(enqueue_sql(events.len()), params))
}

/// Most events one statement takes; a change emits two at most.
const MAX_EVENTS: usize = 8;

fn enqueue_sql(events: usize) -> std::borrow::Cow<'static, str> {
    static STATEMENTS: StatementsPerCount = StatementsPerCount::new(MAX_EVENTS, enqueue_statement);
    STATEMENTS.get(events)
}

/// Built from constants and the number of events only: one `SELECT` of the
/// subscribed endpoints per event, joined by `UNION ALL` (a `VALUES` list
/// joined to the endpoints would be copied into a temporary table by SQLite
/// on every execution).
pub(crate) fn enqueue_statement(events: usize) -> String {
    let selects: Vec<String> = (0..events)
        .map(|i| {
            format!(
                "SELECT w.id, CAST(${} AS TEXT), w.merchant_id, w.mode, 'pending', 0, CAST($1 AS BIGINT), \
                 CAST($1 AS BIGINT), CAST($1 AS BIGINT) \
                 FROM webhook_endpoints w \
                 WHERE w.merchant_id = $2 AND w.mode = $3 AND w.status = 'enabled' \
                 AND (replace(w.events, ${}, '') <> w.events OR replace(w.events, '\"*\"', '') <> w.events)",
                4 + 2 * i,
                5 + 2 * i
            )
        })
        .collect();
    format!(
        "INSERT INTO webhook_deliveries (endpoint_id, event_id, merchant_id, mode, status, attempts, \
         next_attempt_at, created_at, updated_at) {}",
        selects.join(" UNION ALL ")
    )
}

/// Up to `limit` deliveries that are due at `now`, not leased, and whose
/// endpoint is enabled, with at most `per_endpoint` attempts in flight per
/// endpoint. Candidates only: take each with [`claim_op`].
///
/// Fair across endpoints: each endpoint's due deliveries are numbered
/// (`slot`), its leased ones (attempts in flight, on any replica) first, and
/// only slots up to `per_endpoint` that are free are returned. So an endpoint
/// with `per_endpoint` attempts in flight yields nothing, and its backlog
/// never fills the batch; the rest come round-robin, every endpoint's first
/// free slot before any endpoint's second, oldest due first within a slot.
/// The numbering reads every due pending row (the `webhook_deliveries_due`
/// index); deliveries that are backing off are not due and cost nothing.
pub async fn due<'e>(
    db: impl Executor<'e, Database = Any>,
    now: i64,
    per_endpoint: i64,
    limit: i64,
) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as(
        "SELECT endpoint_id, event_id, merchant_id, status, attempts, next_attempt_at, last_status_code, \
         last_error, created_at, updated_at FROM (\
         SELECT d.endpoint_id, d.event_id, d.merchant_id, d.status, d.attempts, d.next_attempt_at, \
         d.last_status_code, d.last_error, d.created_at, d.updated_at, d.lease_until, \
         ROW_NUMBER() OVER (PARTITION BY d.endpoint_id \
         ORDER BY CASE WHEN d.lease_until >= $1 THEN 0 ELSE 1 END, d.next_attempt_at, d.event_id) AS slot \
         FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND e.status = 'enabled'\
         ) due WHERE slot <= $2 AND (lease_until IS NULL OR lease_until < $1) \
         ORDER BY slot, next_attempt_at LIMIT $3",
    )
    .bind(now)
    .bind(per_endpoint)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

const CLAIM: &str = "UPDATE webhook_deliveries SET lease_token = $1, lease_until = $2 \
     WHERE endpoint_id = $3 AND event_id = $4 AND status = 'pending' AND next_attempt_at <= $5 \
     AND (lease_until IS NULL OR lease_until < $5)";

/// Takes the lease of a pending, due, unleased delivery until `until`;
/// `won` is set for the one caller that took it. Claims of a round go in one
/// group-commit job, so they share a commit with each other and with
/// payments.
pub fn claim_op(endpoint_id: &str, event_id: &str, token: &str, now: i64, until: i64, won: Arc<AtomicBool>) -> WriteOp {
    WriteOp::new(
        CLAIM,
        vec![
            token.into(),
            until.into(),
            endpoint_id.into(),
            event_id.into(),
            now.into(),
        ],
    )
    .report_to(won)
}

/// The outcome of one attempt, written under the lease.
#[derive(Debug, Clone)]
pub struct AttemptOutcome<'a> {
    /// `pending` (retry at `next_attempt_at`), `succeeded` or `failed`.
    pub status: &'a str,
    pub next_attempt_at: i64,
    pub status_code: Option<i64>,
    pub error: Option<&'a str>,
    pub now: i64,
}

const FINISH: &str = "UPDATE webhook_deliveries SET status = $1, attempts = attempts + 1, next_attempt_at = $2, \
     last_status_code = $3, last_error = $4, updated_at = $5, lease_token = NULL, lease_until = NULL \
     WHERE endpoint_id = $6 AND event_id = $7 AND lease_token = $8";

/// Records an attempt's outcome and releases the lease. `false` if the
/// lease is no longer `token`'s (it expired and another worker took it).
pub async fn finish_attempt<'e>(
    db: impl Executor<'e, Database = Any>,
    endpoint_id: &str,
    event_id: &str,
    token: &str,
    outcome: &AttemptOutcome<'_>,
) -> Result<bool, StoreError> {
    let done = sqlx::query(FINISH)
        .bind(outcome.status)
        .bind(outcome.next_attempt_at)
        .bind(outcome.status_code)
        .bind(outcome.error)
        .bind(outcome.now)
        .bind(endpoint_id)
        .bind(event_id)
        .bind(token)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

/// [`finish_attempt`] as a group-commit statement: `held` is set if the
/// lease was still `token`'s and the outcome was written.
pub fn finish_attempt_op(
    endpoint_id: &str,
    event_id: &str,
    token: &str,
    outcome: &AttemptOutcome<'_>,
    held: Arc<AtomicBool>,
) -> WriteOp {
    WriteOp::new(
        FINISH,
        vec![
            outcome.status.into(),
            outcome.next_attempt_at.into(),
            outcome.status_code.into(),
            outcome.error.into(),
            outcome.now.into(),
            endpoint_id.into(),
            event_id.into(),
            token.into(),
        ],
    )
    .report_to(held)
}

/// Gives up every pending delivery of an endpoint (it was disabled or
/// deleted) with `reason` as the last error. Returns how many.
pub async fn fail_pending_of_endpoint<'e>(
    db: impl Executor<'e, Database = Any>,
    endpoint_id: &str,
    reason: &str,
    now: i64,
) -> Result<u64, StoreError> {
    let done = sqlx::query(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $1, updated_at = $2, \
         lease_token = NULL, lease_until = NULL WHERE endpoint_id = $3 AND status = 'pending'",
    )
    .bind(reason)
    .bind(now)
    .bind(endpoint_id)
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

/// The deliveries of one event, in endpoint order (diagnostics and tests).
pub async fn of_event<'e>(
    db: impl Executor<'e, Database = Any>,
    event_id: &str,
) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE event_id = $1 ORDER BY endpoint_id"
    ))
    .bind(event_id)
    .fetch_all(db)
    .await?)
}

/// The deliveries of one endpoint, in event order.
pub async fn of_endpoint<'e>(
    db: impl Executor<'e, Database = Any>,
    endpoint_id: &str,
) -> Result<Vec<DeliveryRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY event_id"
    ))
    .bind(endpoint_id)
    .fetch_all(db)
    .await?)
}

/// Gives up every pending delivery of an endpoint (it was disabled or
/// deleted), in the unit that disables or deletes it.
pub fn fail_pending_of_endpoint_in(
    work: &mut super::unit_of_work::UnitOfWork,
    endpoint_id: &str,
    reason: &str,
    now: i64,
) {
    work.push(WriteOp::new(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $1, updated_at = $2, \
         lease_token = NULL, lease_until = NULL WHERE endpoint_id = $3 AND status = 'pending'",
        vec![reason.into(), now.into(), endpoint_id.into()],
    ));
}
