//! The `payments` table, each payment's history a JSON array in its row.
//!
//! Writes are compare-and-set: an update names the version it read and
//! changes nothing if the row moved on in between, so two concurrent changes
//! of one payment can never both apply. Refund amounts are reserved with a
//! conditional increment that the database checks against what was captured.

use sqlx::{Any, Executor};

use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::ids::PaymentId;
use crate::domain::tenant::Tenant;

/// A payment row as stored. Money columns are minor units of `currency`.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct PaymentRow {
    pub id: String,
    pub merchant_id: String,
    pub mode: String,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub capture_method: String,
    pub payment_method: Option<String>,
    pub amount_capturable: i64,
    pub amount_received: i64,
    pub amount_refunded: i64,
    pub description: Option<String>,
    /// JSON object of strings.
    pub metadata: String,
    pub customer_ip: Option<String>,
    pub customer_email: Option<String>,
    pub return_url: Option<String>,
    pub connector: String,
    pub processor_reference: Option<String>,
    pub decline_code: Option<String>,
    pub failure_code: Option<String>,
    pub failure_message: Option<String>,
    /// JSON, while the customer has something to do.
    pub next_action: Option<String>,
    pub action_expires_at: Option<i64>,
    pub cancellation_reason: Option<String>,
    /// The key-scoped idempotency key of the request that created it.
    pub idempotency_key: Option<String>,
    /// `capture` / `cancel` while a request holds the payment for that call
    /// to a processor with external effects (see `services::payments`).
    pub claim: Option<String>,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    /// JSON array of [`HistoryEntry`], oldest first.
    pub history: String,
}

const COLUMNS: &str = "id, merchant_id, mode, status, amount, currency, capture_method, payment_method, \
     amount_capturable, amount_received, amount_refunded, description, metadata, customer_ip, customer_email, \
     return_url, connector, processor_reference, decline_code, failure_code, failure_message, next_action, \
     action_expires_at, cancellation_reason, idempotency_key, version, created_at, updated_at, history, claim";

/// One entry of a payment's history: an attempt or a transition.
///
/// Stored as a JSON array `[at, action, from, to, outcome, amount, reason]`
/// (the column is rewritten on every change of its payment, so names repeated
/// in every entry would be most of its bytes). Entries written as objects
/// with those names (before 2026-12-06, and by PostgreSQL migration 11) are
/// read too, and rewritten as arrays by the payment's next change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// Milliseconds since the epoch.
    pub at: i64,
    pub action: String,
    pub from_status: Option<String>,
    pub to_status: String,
    pub outcome: String,
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

/// The stored array form, by reference (what is written).
type EntryRef<'a> = (
    i64,
    &'a str,
    Option<&'a str>,
    &'a str,
    &'a str,
    Option<i64>,
    Option<&'a str>,
);

/// The stored array form, owned (what is read).
type EntryArray = (i64, String, Option<String>, String, String, Option<i64>, Option<String>);

/// The earlier object form.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryObject {
    at: i64,
    action: String,
    from: Option<String>,
    to: String,
    outcome: String,
    amount: Option<i64>,
    reason: Option<String>,
}

impl serde::Serialize for HistoryEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let entry: EntryRef<'_> = (
            self.at,
            &self.action,
            self.from_status.as_deref(),
            &self.to_status,
            &self.outcome,
            self.amount,
            self.reason.as_deref(),
        );
        entry.serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for HistoryEntry {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EitherForm;
        impl<'de> serde::de::Visitor<'de> for EitherForm {
            type Value = HistoryEntry;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a history entry (array or object)")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, seq: A) -> Result<HistoryEntry, A::Error> {
                let (at, action, from_status, to_status, outcome, amount, reason): EntryArray =
                    serde::Deserialize::deserialize(serde::de::value::SeqAccessDeserializer::new(seq))?;
                Ok(HistoryEntry {
                    at,
                    action,
                    from_status,
                    to_status,
                    outcome,
                    amount,
                    reason,
                })
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> Result<HistoryEntry, A::Error> {
                let o: EntryObject =
                    serde::Deserialize::deserialize(serde::de::value::MapAccessDeserializer::new(map))?;
                Ok(HistoryEntry {
                    at: o.at,
                    action: o.action,
                    from_status: o.from,
                    to_status: o.to,
                    outcome: o.outcome,
                    amount: o.amount,
                    reason: o.reason,
                })
            }
        }
        deserializer.deserialize_any(EitherForm)
    }
}

/// The entries of a stored `history` column.
pub fn parse_history(column: &str) -> Result<Vec<HistoryEntry>, StoreError> {
    serde_json::from_str(column).map_err(|e| StoreError::Corrupt(format!("payment history: {e}")))
}

/// The `history` column holding `entries`.
pub fn history_column(entries: &[HistoryEntry]) -> Result<String, StoreError> {
    serde_json::to_string(entries).map_err(|e| StoreError::Corrupt(format!("payment history: {e}")))
}

/// The statement of [`insert_op`].
pub(crate) const INSERT_SQL: &str =
    "INSERT INTO payments (id, merchant_id, mode, status, amount, currency, capture_method, payment_method, \
         amount_capturable, amount_received, amount_refunded, description, metadata, customer_ip, customer_email, \
         return_url, connector, processor_reference, decline_code, failure_code, failure_message, next_action, \
         action_expires_at, cancellation_reason, idempotency_key, version, created_at, updated_at, history, claim) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, \
         $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)";

pub fn insert_op(row: &PaymentRow) -> WriteOp {
    WriteOp::new(
        INSERT_SQL,
        vec![
            (&row.id).into(),
            (&row.merchant_id).into(),
            (&row.mode).into(),
            (&row.status).into(),
            row.amount.into(),
            (&row.currency).into(),
            (&row.capture_method).into(),
            (&row.payment_method).into(),
            row.amount_capturable.into(),
            row.amount_received.into(),
            row.amount_refunded.into(),
            (&row.description).into(),
            (&row.metadata).into(),
            (&row.customer_ip).into(),
            (&row.customer_email).into(),
            (&row.return_url).into(),
            (&row.connector).into(),
            (&row.processor_reference).into(),
            (&row.decline_code).into(),
            (&row.failure_code).into(),
            (&row.failure_message).into(),
            (&row.next_action).into(),
            row.action_expires_at.into(),
            (&row.cancellation_reason).into(),
            (&row.idempotency_key).into(),
            row.version.into(),
            row.created_at.into(),
            row.updated_at.into(),
            (&row.history).into(),
            (&row.claim).into(),
        ],
    )
}

/// The statement of [`update_op`].
pub(crate) const UPDATE_SQL: &str =
    "UPDATE payments SET status = $1, payment_method = $2, amount_capturable = $3, amount_received = $4, \
         processor_reference = $5, decline_code = $6, failure_code = $7, failure_message = $8, next_action = $9, \
         action_expires_at = $10, cancellation_reason = $11, version = $12, updated_at = $13, history = $14, \
         claim = $19 \
         WHERE id = $15 AND merchant_id = $16 AND version = $17 AND mode = $18";

/// Writes every mutable column of `row` (whose `version` is the new one) if
/// the stored row still has version `row.version - 1`; otherwise the job
/// fails with `StoreError::Conflict`.
pub fn update_op(row: &PaymentRow) -> WriteOp {
    WriteOp::new(
        UPDATE_SQL,
        vec![
            (&row.status).into(),
            (&row.payment_method).into(),
            row.amount_capturable.into(),
            row.amount_received.into(),
            (&row.processor_reference).into(),
            (&row.decline_code).into(),
            (&row.failure_code).into(),
            (&row.failure_message).into(),
            (&row.next_action).into(),
            row.action_expires_at.into(),
            (&row.cancellation_reason).into(),
            row.version.into(),
            row.updated_at.into(),
            (&row.history).into(),
            (&row.id).into(),
            (&row.merchant_id).into(),
            (row.version - 1).into(),
            (&row.mode).into(),
            (&row.claim).into(),
        ],
    )
    .expect_one(Failure::Conflict)
}

/// Adds `amount` to what is refunded of a succeeded payment, only if the
/// total stays within what was captured; otherwise the job fails with
/// `StoreError::Conflict`.
pub fn reserve_refund_op(tenant: &Tenant, id: &PaymentId, amount: i64, at: i64) -> WriteOp {
    WriteOp::new(
        "UPDATE payments SET amount_refunded = amount_refunded + $1, version = version + 1, updated_at = $2 \
         WHERE id = $3 AND merchant_id = $4 AND mode = $5 AND status = 'succeeded' \
         AND amount_refunded + $1 <= amount_received",
        vec![
            amount.into(),
            at.into(),
            id.as_str().into(),
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
        ],
    )
    .expect_one(Failure::Conflict)
}

/// Gives back a reservation made by [`reserve_refund_op`] (the refund failed).
pub fn release_refund_op(tenant: &Tenant, id: &PaymentId, amount: i64, at: i64) -> WriteOp {
    WriteOp::new(
        "UPDATE payments SET amount_refunded = amount_refunded - $1, version = version + 1, updated_at = $2 \
         WHERE id = $3 AND merchant_id = $4 AND mode = $5 AND amount_refunded >= $1",
        vec![
            amount.into(),
            at.into(),
            id.as_str().into(),
            tenant.merchant_str().into(),
            tenant.mode_str().into(),
        ],
    )
}

pub async fn get<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    id: &PaymentId,
) -> Result<Option<PaymentRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1 AND merchant_id = $2 AND mode = $3"
    ))
    .bind(id.as_str())
    .bind(tenant.merchant_str())
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}

/// A payment by id alone, for the customer-facing challenge page (which
/// proves itself with the challenge secret, not an API key): only a payment
/// that carries a `next_action` (the challenge link and its secret) has a
/// page, so no other is ever found here. On SQLite a partial index holds
/// just those (payments are keyed by merchant there).
pub async fn get_unscoped<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &PaymentId,
) -> Result<Option<PaymentRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE id = $1 AND next_action IS NOT NULL"
    ))
    .bind(id.as_str())
    .fetch_optional(db)
    .await?)
}

/// The payment of `tenant` created with this (key-scoped) idempotency key,
/// if any.
pub async fn get_by_idempotency_key<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    key: &str,
    since: i64,
) -> Result<Option<PaymentRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE merchant_id = $1 AND idempotency_key = $2 AND created_at >= $3 \
         AND mode = $4 ORDER BY id DESC LIMIT 1"
    ))
    .bind(tenant.merchant_str())
    .bind(key)
    .bind(since)
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?)
}

/// Filters of a payment list; `None` means any.
#[derive(Debug, Default, Clone)]
pub struct ListFilter<'a> {
    pub status: Option<&'a str>,
    /// Created at or after (milliseconds).
    pub created_gte: Option<i64>,
    /// Created at or before (milliseconds).
    pub created_lte: Option<i64>,
    /// Only payments older than this one (ids are time-ordered).
    pub before: Option<&'a PaymentId>,
}

/// Up to `limit` payments of `tenant`, newest first.
pub async fn list<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    filter: ListFilter<'_>,
    limit: i64,
) -> Result<Vec<PaymentRow>, StoreError> {
    // One constant statement for every filter combination: `$n IS NULL OR …`.
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE merchant_id = $1 AND mode = $7 \
         AND ($2 IS NULL OR status = $2) \
         AND ($3 IS NULL OR created_at >= $3) \
         AND ($4 IS NULL OR created_at <= $4) \
         AND ($5 IS NULL OR id < $5) \
         ORDER BY id DESC LIMIT $6"
    ))
    .bind(tenant.merchant_str())
    .bind(filter.status)
    .bind(filter.created_gte)
    .bind(filter.created_lte)
    .bind(filter.before.map(PaymentId::as_str))
    .bind(limit)
    .bind(tenant.mode_str())
    .fetch_all(db)
    .await?)
}

/// Payments whose customer challenge expired before `now`, oldest first.
pub async fn expired_actions<'e>(
    db: impl Executor<'e, Database = Any>,
    now: i64,
    limit: i64,
) -> Result<Vec<PaymentRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM payments WHERE status = 'requires_action' AND action_expires_at < $1 \
         ORDER BY action_expires_at LIMIT $2"
    ))
    .bind(now)
    .bind(limit)
    .fetch_all(db)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_column_is_compact_round_trips_in_order_and_reads_the_object_form() {
        let entries = vec![
            HistoryEntry {
                at: 1,
                action: "create".into(),
                from_status: None,
                to_status: "requires_confirmation".into(),
                outcome: "succeeded".into(),
                amount: Some(500),
                reason: None,
            },
            HistoryEntry {
                at: 2,
                action: "confirm".into(),
                from_status: Some("requires_confirmation".into()),
                to_status: "processing".into(),
                outcome: "succeeded".into(),
                amount: None,
                reason: Some("why".into()),
            },
        ];
        let column = history_column(&entries).unwrap();
        assert_eq!(
            column,
            r#"[[1,"create",null,"requires_confirmation","succeeded",500,null],[2,"confirm","requires_confirmation","processing","succeeded",null,"why"]]"#
        );
        assert_eq!(parse_history(&column).unwrap(), entries);
        // The earlier object form (and a column mixing both) reads the same.
        let objects = r#"[{"at":1,"action":"create","from":null,"to":"requires_confirmation","outcome":"succeeded","amount":500,"reason":null},
            [2,"confirm","requires_confirmation","processing","succeeded",null,"why"]]"#;
        assert_eq!(parse_history(objects).unwrap(), entries);
        for broken in [
            r#"[[1,"create",null,"requires_confirmation","succeeded",500]]"#,
            r#"[[1,"create",null,"requires_confirmation","succeeded",500,null,"extra"]]"#,
            r#"[{"at":1,"action":"create","to":"x","outcome":"y","amount":null,"reason":null,"evil":1}]"#,
            r#"[{"at":"1","action":"create","from":null,"to":"x","outcome":"y","amount":null,"reason":null}]"#,
            r#"[7]"#,
        ] {
            assert!(matches!(parse_history(broken), Err(StoreError::Corrupt(_))), "{broken}");
        }
        assert!(parse_history("[]").unwrap().is_empty());
        assert!(matches!(parse_history("{"), Err(StoreError::Corrupt(_))));
    }
}
