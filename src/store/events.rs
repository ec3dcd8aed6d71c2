//! The `events` table: the transactional outbox. Events are inserted in the
//! transaction of the change they describe and never updated; listing is
//! newest first (event ids are time-ordered).

use sqlx::{Any, AnyConnection, Executor};

use super::write_op::WriteOp;
use super::StoreError;
use crate::domain::ids::{EventId, MerchantId};

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

const COLUMNS: &str = "id, merchant_id, mode, type, object_id, data, created_at";

/// The insert of an event and of its webhook deliveries (one per enabled
/// endpoint of the merchant and mode subscribed to its type), for the job of
/// the change it describes.
pub fn insert_ops(row: &EventRow) -> Vec<WriteOp> {
    let event = WriteOp::new(
        "INSERT INTO events (id, merchant_id, mode, type, object_id, data, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
        vec![
            (&row.id).into(),
            (&row.merchant_id).into(),
            (&row.mode).into(),
            (&row.event_type).into(),
            (&row.object_id).into(),
            (&row.data).into(),
            row.created_at.into(),
        ],
    );
    vec![event, super::webhook_deliveries::enqueue_for_event_op(row)]
}

/// [`insert_ops`] in the caller's own transaction.
pub async fn insert(conn: &mut AnyConnection, row: &EventRow) -> Result<(), StoreError> {
    for op in insert_ops(row) {
        op.run_sqlx(conn).await?;
    }
    Ok(())
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    merchant: &MerchantId,
    id: &EventId,
) -> Result<Option<EventRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events WHERE id = $1 AND merchant_id = $2"
    ))
    .bind(id.as_str())
    .bind(merchant.as_str())
    .fetch_optional(db)
    .await?)
}

/// Up to `limit` events of `merchant`, newest first, older than `before` when
/// given, of one type when given.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    merchant: &MerchantId,
    event_type: Option<&str>,
    before: Option<&EventId>,
    limit: i64,
) -> Result<Vec<EventRow>, StoreError> {
    // `$2 IS NULL OR …`: one constant statement serves every filter combination.
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM events WHERE merchant_id = $1 \
         AND ($2 IS NULL OR type = $2) AND ($3 IS NULL OR id < $3) \
         ORDER BY id DESC LIMIT $4"
    ))
    .bind(merchant.as_str())
    .bind(event_type)
    .bind(before.map(EventId::as_str))
    .bind(limit)
    .fetch_all(db)
    .await?)
}
