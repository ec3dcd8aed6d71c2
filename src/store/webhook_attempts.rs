//! The `webhook_attempts` table: every HTTP attempt of a delivery, as the
//! merchant sees it through the API. Rows are inserted and never updated;
//! attempt ids are time-ordered, so listing is newest first by id.

use sqlx::{Any, Executor};

use super::write_op::{batch_chunks, class_size, values_rows, StatementsPerCount, Value, WriteOp};
use super::StoreError;
use crate::domain::ids::{WebhookAttemptId, WebhookEndpointId};
use crate::domain::tenant::Tenant;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AttemptRow {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub merchant_id: String,
    pub attempt: i64,
    pub attempted_at: i64,
    pub status_code: Option<i64>,
    pub error: Option<String>,
    pub duration_ms: i64,
    /// `succeeded` (a 2xx came back) or `failed`.
    pub outcome: String,
}

const COLUMNS: &str =
    "id, endpoint_id, event_id, merchant_id, attempt, attempted_at, status_code, error, duration_ms, outcome";

/// Inserts an attempt, as a group-commit statement, only while the delivery
/// is still leased under `token`: put it before the statement that writes
/// the outcome and releases the lease (which is conditional on the same
/// token), so that a worker whose lease ran out records neither.
pub fn insert_if_leased_op(row: &AttemptRow, token: &str) -> WriteOp {
    WriteOp::new(
        "INSERT INTO webhook_attempts (id, endpoint_id, event_id, merchant_id, attempt, attempted_at, status_code, \
         error, duration_ms, outcome) \
         SELECT CAST($1 AS TEXT), CAST($2 AS TEXT), CAST($3 AS TEXT), CAST($4 AS TEXT), CAST($5 AS BIGINT), \
         CAST($6 AS BIGINT), CAST($7 AS BIGINT), CAST($8 AS TEXT), CAST($9 AS BIGINT), CAST($10 AS TEXT) \
         WHERE EXISTS (SELECT 1 FROM webhook_deliveries d \
         WHERE d.endpoint_id = $2 AND d.event_id = $3 AND d.lease_token = $11)",
        Vec::from(leased_row(row, token)),
    )
}

/// An attempt and the lease token it is inserted under, as the parameters of
/// the statements below (`$1` to `$11`, or one row of `VALUES`).
fn leased_row(row: &AttemptRow, token: &str) -> [Value; 11] {
    [
        (&row.id).into(),
        (&row.endpoint_id).into(),
        (&row.event_id).into(),
        (&row.merchant_id).into(),
        row.attempt.into(),
        row.attempted_at.into(),
        row.status_code.into(),
        (&row.error).into(),
        row.duration_ms.into(),
        (&row.outcome).into(),
        token.into(),
    ]
}

const INSERT_MANY_TYPES: [&str; 11] = [
    "TEXT", "TEXT", "TEXT", "TEXT", "BIGINT", "BIGINT", "BIGINT", "TEXT", "BIGINT", "TEXT", "TEXT",
];

fn insert_many_statement(class: usize) -> String {
    format!(
        "INSERT INTO webhook_attempts (id, endpoint_id, event_id, merchant_id, attempt, attempted_at, status_code, \
         error, duration_ms, outcome) \
         SELECT v.column1, v.column2, v.column3, v.column4, v.column5, v.column6, v.column7, v.column8, v.column9, \
         v.column10 FROM (VALUES {}) AS v \
         WHERE EXISTS (SELECT 1 FROM webhook_deliveries d \
         WHERE d.endpoint_id = v.column2 AND d.event_id = v.column3 AND d.lease_token = v.column11)",
        values_rows(class_size(class), &INSERT_MANY_TYPES, 1)
    )
}

/// [`insert_if_leased_op`] for many attempts at once (each with its
/// delivery's lease token): a statement per chunk, each row inserted only
/// while its own delivery is leased under its token.
pub fn insert_many_if_leased_ops(rows: &[(&AttemptRow, &str)]) -> Vec<WriteOp> {
    static STATEMENTS: StatementsPerCount = StatementsPerCount::new(3, insert_many_statement);
    batch_chunks(rows.len())
        .map(|chunk| {
            let mut params: Vec<Value> = Vec::with_capacity(chunk.size * INSERT_MANY_TYPES.len());
            for i in 0..chunk.size {
                match (i < chunk.rows).then(|| rows.get(chunk.start + i)).flatten() {
                    Some((row, token)) => params.extend(leased_row(row, token)),
                    // Padding: leased under no token, so never inserted.
                    None => params.extend([
                        "".into(),
                        "".into(),
                        "".into(),
                        "".into(),
                        0i64.into(),
                        0i64.into(),
                        Value::NullInt,
                        Value::NullText,
                        0i64.into(),
                        "".into(),
                        Value::NullText,
                    ]),
                }
            }
            WriteOp::new(STATEMENTS.get(chunk.class), params)
        })
        .collect()
}

fn recorded_statement(class: usize) -> String {
    let placeholders: Vec<String> = (1..=class_size(class)).map(|i| format!("${i}")).collect();
    format!(
        "SELECT id FROM webhook_attempts WHERE id IN ({})",
        placeholders.join(", ")
    )
}

/// Which of the attempt ids `ids` are stored.
pub async fn recorded<'e, E>(db: E, ids: &[&str]) -> Result<Vec<String>, StoreError>
where
    E: Executor<'e, Database = Any> + Copy,
{
    static STATEMENTS: StatementsPerCount = StatementsPerCount::new(3, recorded_statement);
    let mut found = Vec::with_capacity(ids.len());
    for chunk in batch_chunks(ids.len()) {
        let sql = STATEMENTS.get(chunk.class);
        let mut query = sqlx::query_as::<_, (String,)>(&sql);
        for i in 0..chunk.size {
            let id = (i < chunk.rows).then(|| ids.get(chunk.start + i)).flatten();
            query = query.bind(id.copied().unwrap_or(""));
        }
        found.extend(query.fetch_all(db).await?.into_iter().map(|(id,)| id));
    }
    Ok(found)
}

/// Up to `limit` attempts to the tenant's endpoint, newest first, older than
/// `before` when given. An endpoint of another merchant or of the other mode
/// yields nothing.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    endpoint: &WebhookEndpointId,
    before: Option<&WebhookAttemptId>,
    limit: i64,
) -> Result<Vec<AttemptRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhook_attempts WHERE endpoint_id = $1 AND merchant_id = $2 \
         AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.id = $1 AND w.merchant_id = $2 AND w.mode = $5) \
         AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"
    ))
    .bind(endpoint.as_str())
    .bind(tenant.merchant_str())
    .bind(before.map(WebhookAttemptId::as_str))
    .bind(limit)
    .bind(tenant.mode_str())
    .fetch_all(db)
    .await?)
}
