//! The `events` table: the transactional outbox. Events are inserted in the
//! transaction of the change they describe and never updated; listing is
//! newest first (event ids are time-ordered).

use sqlx::{Any, Executor};

use super::unit_of_work::UnitOfWork;
use super::webhook_deliveries::{enqueue_for_events_op, NewEvent};
use super::write_op::{batch_chunks, class_size, values_rows, StatementsPerCount, Value, WriteOp};
use super::StoreError;
use crate::domain::ids::EventId;
use crate::domain::tenant::Tenant;

/// An event row as stored; `data` is the JSON snapshot of the object.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub merchant_id: String,
    pub mode: String,
    #[sqlx(rename = "type")]
    pub event_type: String,
    pub object_id: String,
    pub data: String,
    pub created_at: i64,
}

/// The columns of an event as read: an event that shares its snapshot with an
/// earlier event of the same change reads that event's `data` (`s`).
const COLUMNS: &str =
    "e.id, e.merchant_id, e.mode, e.type, e.object_id, COALESCE(e.data, s.data) AS data, e.created_at";
const FROM: &str = "FROM events e LEFT JOIN events s ON s.id = e.snapshot_of AND s.merchant_id = e.merchant_id";

/// The inserts of the events of one change, in order, and of their webhook
/// deliveries (one per enabled endpoint of the merchant and mode subscribed to
/// the event's type), for the job of that change. Events after the first whose
/// `data` equals the first's store no copy of it, only a reference
/// (`snapshot_of`): a payment confirmed at once writes its snapshot once for
/// `payment.created` and `payment.succeeded`.
pub fn insert_ops(rows: &[EventRow]) -> Vec<WriteOp> {
    let Some(first) = rows.first() else { return Vec::new() };
    let mut params = Vec::with_capacity(rows.len() * EVENT_COLUMNS);
    for row in rows {
        let shared = row.id != first.id && row.data == first.data;
        params.extend([
            (&row.id).into(),
            (&row.merchant_id).into(),
            (&row.mode).into(),
            (&row.event_type).into(),
            (&row.object_id).into(),
            if shared { Value::NullText } else { (&row.data).into() },
            if shared { (&first.id).into() } else { Value::NullText },
            row.created_at.into(),
        ]);
    }
    let events = WriteOp::new(insert_sql(rows.len()), params);
    let mut ops = vec![events];
    let fan_out: Vec<NewEvent<'_>> = rows
        .iter()
        .map(|row| NewEvent {
            id: &row.id,
            event_type: &row.event_type,
        })
        .collect();
    ops.extend(enqueue_for_events_op(
        &first.merchant_id,
        &first.mode,
        first.created_at,
        &fan_out,
    ));
    ops
}

const EVENT_COLUMNS: usize = 8;
/// Most events one change writes (more are inserted in several statements'
/// worth of rows, which never happens: a change emits two at most).
const MAX_EVENTS_PER_CHANGE: usize = 8;

/// `INSERT … VALUES ($1, …, $8), ($9, …)` for `rows` rows, built once per count
/// from constants.
fn insert_sql(rows: usize) -> std::borrow::Cow<'static, str> {
    static STATEMENTS: StatementsPerCount = StatementsPerCount::new(MAX_EVENTS_PER_CHANGE, insert_statement);
    STATEMENTS.get(rows)
}

fn insert_statement(rows: usize) -> String {
    let mut sql = String::from(
        "INSERT INTO events (id, merchant_id, mode, type, object_id, data, snapshot_of, created_at) VALUES ",
    );
    for row in 0..rows {
        if row > 0 {
            sql.push_str(", ");
        }
        let placeholders: Vec<String> = (1..=EVENT_COLUMNS)
            .map(|c| format!("${}", row * EVENT_COLUMNS + c))
            .collect();
        sql.push('(');
        sql.push_str(&placeholders.join(", "));
        sql.push(')');
    }
    sql
}

/// [`insert_ops`] added to a unit of work.
pub fn insert_in(work: &mut UnitOfWork, rows: &[EventRow]) {
    for op in insert_ops(rows) {
        work.push(op);
    }
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &EventId,
) -> Result<Option<EventRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} {FROM} WHERE e.id = $1 AND e.merchant_id = $2 AND e.mode = $3"
    ))
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}

/// The events with these `(merchant_id, id)` keys, in no particular order,
/// of whichever mode: the caller checks each one's mode (the delivery worker
/// reads a round's events at once). Unknown keys are left out.
pub async fn get_many<'e, E>(db: E, keys: &[(&str, &str)]) -> Result<Vec<EventRow>, StoreError>
where
    E: Executor<'e, Database = Any> + Copy,
{
    static STATEMENTS: StatementsPerCount = StatementsPerCount::new(3, get_many_statement);
    let mut rows = Vec::with_capacity(keys.len());
    for chunk in batch_chunks(keys.len()) {
        let sql = STATEMENTS.get(chunk.class);
        let mut query = sqlx::query_as(&sql);
        for i in 0..chunk.size {
            // Padding: a key no event has.
            let (merchant, id) = (i < chunk.rows)
                .then(|| keys.get(chunk.start + i))
                .flatten()
                .copied()
                .unwrap_or(("", ""));
            query = query.bind(merchant).bind(id);
        }
        rows.extend(query.fetch_all(db).await?);
    }
    Ok(rows)
}

/// Joined on the primary key (merchant, id), one lookup per key.
fn get_many_statement(class: usize) -> String {
    format!(
        "SELECT {COLUMNS} FROM (VALUES {}) AS k \
         JOIN events e ON e.merchant_id = k.column1 AND e.id = k.column2 \
         LEFT JOIN events s ON s.id = e.snapshot_of AND s.merchant_id = e.merchant_id",
        values_rows(class_size(class), &["TEXT", "TEXT"], 1)
    )
}

/// Up to `limit` events of `tenant`, newest first, older than `before` when
/// given, of one type when given.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    event_type: Option<&str>,
    before: Option<&EventId>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    // `$2 IS NULL OR …`: one constant statement serves every filter combination.
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} {FROM} WHERE e.merchant_id = $1 AND e.mode = $5 \
         AND ($2 IS NULL OR e.type = $2) AND ($3 IS NULL OR e.id < $3) \
         ORDER BY e.id DESC LIMIT $4"
    ))
    .bind(tenant.merchant_str())
    .bind(event_type)
    .bind(before.map(EventId::as_str))
    .bind(limit)
    .bind(tenant.mode_str())
    .fetch_all(db)
    .await?)
}

impl super::ports::EventStore for super::Store {
    fn insert_events(&self, work: &mut UnitOfWork, rows: &[EventRow]) {
        insert_in(work, rows);
    }

    async fn get_event(&self, tenant: &Tenant, id: &EventId) -> Result<Option<EventRow>, StoreError> {
        get(self.reader(), tenant, id).await
    }

    async fn list_events(
        &self,
        tenant: &Tenant,
        event_type: Option<&str>,
        before: Option<&EventId>,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        list(self.reader(), tenant, event_type, before, limit).await
    }

    async fn deliveries_of_event(
        &self,
        event_id: &str,
    ) -> Result<Vec<super::webhook_deliveries::DeliveryRow>, StoreError> {
        super::webhook_deliveries::of_event(self.reader(), event_id).await
    }

    async fn get_events_by_keys(&self, keys: &[(&str, &str)]) -> Result<Vec<EventRow>, StoreError> {
        get_many(self.reader(), keys).await
    }
}
