//! The `webhook_deliveries` table: one row per endpoint × event, the
//! outbox's fan-out, and the lease that makes one worker the owner of an
//! attempt.
//!
//! Single-statement primitives, the same statements as group-commit
//! [`WriteOp`]s, and multi-row ones for a whole round of claims or a batch
//! of records (a few statements instead of one or two per delivery), so
//! that the delivery worker's claims and records share commits instead of
//! paying one each. A lease is taken with a conditional UPDATE
//! (compare-and-set on `lease_until`), which serialises on the row in both
//! backends: of two replicas claiming the same delivery, exactly one sees
//! `true`. Every later write of the attempt is conditional on the lease token,
//! so a worker whose lease ran out cannot overwrite the next owner's result.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::webhook_attempts::AttemptRow;
use super::write_op::{
    batch_chunks, class_size, values_rows, Expect, Failure, RowCounts, StatementsPerCount, Value, WriteOp,
};
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

/// An event of a change, as its fan-out needs it (this module does not
/// depend on [`super::events`], which calls it).
#[derive(Debug, Clone, Copy)]
pub struct NewEvent<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
}

/// The deliveries of the events of one change (all of `merchant_id` in
/// `mode`, created at `created_at`): for each event, one per enabled
/// endpoint of its merchant and mode subscribed to its type (or to `*`).
/// One statement for all of them; `None` without events.
pub fn enqueue_for_events_op(
    merchant_id: &str,
    mode: &str,
    created_at: i64,
    events: &[NewEvent<'_>],
) -> Option<WriteOp> {
    if events.is_empty() {
        return None;
    }
    // `events` is a JSON array of strings without escapes (event types are
    // `[a-z_.]`), so `"type"` appears in it exactly when subscribed. The
    // substring test is `replace(…) <> events`, not `LIKE $n`: SQLite
    // re-prepares a statement whose LIKE pattern is a parameter every time the
    // pattern changes, and this runs for every change.
    let mut params: Vec<Value> = vec![created_at.into(), merchant_id.into(), mode.into()];
    for event in events {
        params.push(event.id.into());
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
/// endpoint. Candidates only: take them with [`claim_many_ops`].
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

/// A delivery by its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeliveryKey<'a> {
    pub endpoint_id: &'a str,
    pub event_id: &'a str,
}

const CLAIM_MANY_TYPES: [&str; 2] = ["TEXT", "TEXT"];

/// `UPDATE … FROM (VALUES …)` for a chunk of claims: the same conditions as
/// [`CLAIM`], one lease token for the whole round.
fn claim_many_statement(class: usize) -> String {
    format!(
        "UPDATE webhook_deliveries SET lease_token = $1, lease_until = $2 FROM (VALUES {}) AS v \
         WHERE webhook_deliveries.endpoint_id = v.column1 AND webhook_deliveries.event_id = v.column2 \
         AND webhook_deliveries.status = 'pending' AND webhook_deliveries.next_attempt_at <= $3 \
         AND (webhook_deliveries.lease_until IS NULL OR webhook_deliveries.lease_until < $3)",
        values_rows(class_size(class), &CLAIM_MANY_TYPES, 4)
    )
}

/// Takes the leases of a round's deliveries that are still pending, due and
/// unleased at `now`, until `until`, all under `token`: a statement per
/// chunk of [`BATCH_SIZES`](super::write_op::BATCH_SIZES) instead of one per
/// delivery. The counts say how many were taken; when fewer than asked (a
/// race with another replica), [`claimed`] says which.
pub fn claim_many_ops(keys: &[DeliveryKey<'_>], token: &str, now: i64, until: i64) -> (Vec<WriteOp>, RowCounts) {
    static STATEMENTS: StatementsPerCount = StatementsPerCount::new(3, claim_many_statement);
    let mut counts = RowCounts::default();
    let ops = batch_chunks(keys.len())
        .map(|chunk| {
            let mut params: Vec<Value> = vec![token.into(), until.into(), now.into()];
            for i in 0..chunk.size {
                let key = (i < chunk.rows).then(|| keys.get(chunk.start + i)).flatten();
                // Padding: a key no delivery has.
                params.push(key.map_or("", |k| k.endpoint_id).into());
                params.push(key.map_or("", |k| k.event_id).into());
            }
            WriteOp::new(STATEMENTS.get(chunk.class), params).count_to(counts.counter())
        })
        .collect();
    (ops, counts)
}

fn claimed_statement(class: usize) -> String {
    format!(
        "SELECT d.endpoint_id, d.event_id FROM (VALUES {}) AS v JOIN webhook_deliveries d \
         ON d.endpoint_id = v.column1 AND d.event_id = v.column2 WHERE d.lease_token = $1",
        values_rows(class_size(class), &CLAIM_MANY_TYPES, 2)
    )
}

/// Which of `keys` are leased under `token` now: `(endpoint_id, event_id)`.
pub async fn claimed<'e, E>(db: E, keys: &[DeliveryKey<'_>], token: &str) -> Result<Vec<(String, String)>, StoreError>
where
    E: Executor<'e, Database = Any> + Copy,
{
    static STATEMENTS: StatementsPerCount = StatementsPerCount::new(3, claimed_statement);
    let mut won = Vec::with_capacity(keys.len());
    for chunk in batch_chunks(keys.len()) {
        let sql = STATEMENTS.get(chunk.class);
        let mut query = sqlx::query_as::<_, (String, String)>(&sql).bind(token);
        for i in 0..chunk.size {
            let key = (i < chunk.rows).then(|| keys.get(chunk.start + i)).flatten();
            query = query
                .bind(key.map_or("", |k| k.endpoint_id))
                .bind(key.map_or("", |k| k.event_id));
        }
        won.extend(query.fetch_all(db).await?);
    }
    Ok(won)
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

/// Records an attempt's outcome and releases the lease, as a group-commit
/// statement: `held` is set if the lease was still `token`'s and the
/// outcome was written.
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

/// One attempt's outcome to record in a batch ([`finish_many_ops`]).
#[derive(Debug, Clone)]
pub struct Finish<'a> {
    pub key: DeliveryKey<'a>,
    pub token: &'a str,
    pub outcome: AttemptOutcome<'a>,
}

const FINISH_MANY_TYPES: [&str; 8] = ["TEXT", "BIGINT", "BIGINT", "TEXT", "BIGINT", "TEXT", "TEXT", "TEXT"];

/// [`FINISH`] for a chunk of attempts: `UPDATE … FROM (VALUES …)`, each row
/// conditional on its own lease token.
fn finish_many_statement(class: usize) -> String {
    format!(
        "UPDATE webhook_deliveries SET status = v.column1, attempts = webhook_deliveries.attempts + 1, \
         next_attempt_at = v.column2, last_status_code = v.column3, last_error = v.column4, updated_at = v.column5, \
         lease_token = NULL, lease_until = NULL FROM (VALUES {}) AS v \
         WHERE webhook_deliveries.endpoint_id = v.column6 AND webhook_deliveries.event_id = v.column7 \
         AND webhook_deliveries.lease_token = v.column8",
        values_rows(class_size(class), &FINISH_MANY_TYPES, 1)
    )
}

/// [`finish_attempt_op`] for many attempts at once: a statement per chunk.
/// Each delivery's outcome is written only if its lease is still its
/// token's; the counts say how many were.
pub fn finish_many_ops(rows: &[Finish<'_>]) -> (Vec<WriteOp>, RowCounts) {
    static STATEMENTS: StatementsPerCount = StatementsPerCount::new(3, finish_many_statement);
    let mut counts = RowCounts::default();
    let ops = batch_chunks(rows.len())
        .map(|chunk| {
            let mut params: Vec<Value> = Vec::with_capacity(chunk.size * FINISH_MANY_TYPES.len());
            for i in 0..chunk.size {
                match (i < chunk.rows).then(|| rows.get(chunk.start + i)).flatten() {
                    Some(f) => params.extend([
                        f.outcome.status.into(),
                        f.outcome.next_attempt_at.into(),
                        f.outcome.status_code.into(),
                        f.outcome.error.into(),
                        f.outcome.now.into(),
                        f.key.endpoint_id.into(),
                        f.key.event_id.into(),
                        f.token.into(),
                    ]),
                    // Padding: a key no delivery has.
                    None => params.extend([
                        "pending".into(),
                        0i64.into(),
                        Value::NullInt,
                        Value::NullText,
                        0i64.into(),
                        "".into(),
                        "".into(),
                        "".into(),
                    ]),
                }
            }
            WriteOp::new(STATEMENTS.get(chunk.class), params).count_to(counts.counter())
        })
        .collect();
    (ops, counts)
}

/// Gives a lease back unused (the attempt was not sent), so that the
/// delivery is due again at once rather than after its lease.
pub fn release_op(key: DeliveryKey<'_>, token: &str) -> WriteOp {
    WriteOp::new(
        "UPDATE webhook_deliveries SET lease_token = NULL, lease_until = NULL \
         WHERE endpoint_id = $1 AND event_id = $2 AND lease_token = $3",
        vec![key.endpoint_id.into(), key.event_id.into(), token.into()],
    )
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
pub fn fail_pending_of_endpoint_in(work: &mut UnitOfWork, endpoint_id: &str, reason: &str, now: i64) {
    work.push(WriteOp::new(
        "UPDATE webhook_deliveries SET status = 'failed', last_error = $1, updated_at = $2, \
         lease_token = NULL, lease_until = NULL WHERE endpoint_id = $3 AND status = 'pending'",
        vec![reason.into(), now.into(), endpoint_id.into()],
    ));
}

impl super::ports::WebhookDeliveryStore for super::Store {
    async fn due_deliveries(&self, now: i64, per_endpoint: i64, limit: i64) -> Result<Vec<DeliveryRow>, StoreError> {
        due(self.reader(), now, per_endpoint, limit).await
    }

    fn claim_deliveries(
        &self,
        work: &mut UnitOfWork,
        keys: &[DeliveryKey<'_>],
        token: &str,
        now: i64,
        until: i64,
    ) -> RowCounts {
        let (ops, counts) = claim_many_ops(keys, token, now, until);
        ops.into_iter().for_each(|op| work.push(op));
        counts
    }

    async fn claimed_deliveries(
        &self,
        keys: &[DeliveryKey<'_>],
        token: &str,
    ) -> Result<Vec<(String, String)>, StoreError> {
        claimed(self.reader(), keys, token).await
    }

    fn insert_attempts_if_leased(&self, work: &mut UnitOfWork, rows: &[(&AttemptRow, &str)]) {
        match rows {
            [(row, token)] => work.push(super::webhook_attempts::insert_if_leased_op(row, token)),
            _ => super::webhook_attempts::insert_many_if_leased_ops(rows)
                .into_iter()
                .for_each(|op| work.push(op)),
        }
    }

    fn finish_deliveries(&self, work: &mut UnitOfWork, rows: &[Finish<'_>]) -> RowCounts {
        let (ops, counts) = finish_many_ops(rows);
        ops.into_iter().for_each(|op| work.push(op));
        counts
    }

    fn finish_leased_delivery(
        &self,
        work: &mut UnitOfWork,
        key: DeliveryKey<'_>,
        token: &str,
        outcome: &AttemptOutcome<'_>,
    ) {
        let mut finish = finish_attempt_op(
            key.endpoint_id,
            key.event_id,
            token,
            outcome,
            Arc::new(AtomicBool::new(false)),
        );
        // The lease must still be the caller's, or nothing is written.
        finish.expect = Expect::OneRow(Failure::Conflict);
        work.push(finish);
    }

    fn release_delivery(&self, work: &mut UnitOfWork, key: DeliveryKey<'_>, token: &str) {
        work.push(release_op(key, token));
    }

    async fn recorded_attempts(&self, ids: &[&str]) -> Result<Vec<String>, StoreError> {
        super::webhook_attempts::recorded(self.reader(), ids).await
    }
}
