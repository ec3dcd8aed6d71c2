//! The `processor_events` table: the event ids of verified inbound processor
//! webhooks, per connection, so that a delivery is applied once; and the two
//! reads an inbound webhook needs before it knows its tenant: the connection
//! by id alone, and a payment by its processor reference.
//!
//! Single-statement primitives. The read by connection id alone is for
//! inbound webhooks only: what it returns is trusted only after the
//! delivery verified with that connection's own signing secret.

use sqlx::{Any, Executor};

use super::processor_connections::ConnectionRow;
use super::unit_of_work::UnitOfWork;
use super::write_op::{Failure, WriteOp};
use super::StoreError;
use crate::domain::ids::{ConnectionId, PaymentId};
use crate::domain::tenant::Tenant;

/// One applied (or deliberately ignored) processor event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessorEventRow {
    pub connection_id: String,
    /// The processor's event id (`evt_…`).
    pub event_id: String,
    pub merchant_id: String,
    pub mode: String,
    /// The processor's event type (`charge.refunded`).
    pub event_type: String,
    /// What it did here (`payment_succeeded`, `refund_created`, `ignored`, …).
    pub outcome: String,
    pub received_at: i64,
}

/// Records an event; one already recorded for the connection fails the unit
/// with `Duplicate`.
pub fn insert(work: &mut UnitOfWork, row: &ProcessorEventRow) {
    work.push(
        WriteOp::new(
            "INSERT INTO processor_events (connection_id, event_id, merchant_id, mode, event_type, outcome, \
             received_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            vec![
                row.connection_id.as_str().into(),
                row.event_id.as_str().into(),
                row.merchant_id.as_str().into(),
                row.mode.as_str().into(),
                row.event_type.as_str().into(),
                row.outcome.as_str().into(),
                row.received_at.into(),
            ],
        )
        .expect_one(Failure::Duplicate),
    );
}

/// Whether event `event_id` of connection `connection` was recorded.
pub async fn seen<'e>(
    db: impl Executor<'e, Database = Any>,
    connection: &ConnectionId,
    event_id: &str,
) -> Result<bool, StoreError> {
    let found: Option<(i64,)> =
        sqlx::query_as("SELECT 1 FROM processor_events WHERE connection_id = $1 AND event_id = $2")
            .bind(connection.as_str())
            .bind(event_id)
            .fetch_optional(db)
            .await?;
    Ok(found.is_some())
}

/// Connection `id` of any merchant and mode, or `None`.
pub async fn connection<'e>(
    db: impl Executor<'e, Database = Any>,
    id: &ConnectionId,
) -> Result<Option<ConnectionRow>, StoreError> {
    Ok(sqlx::query_as(&format!(
        "SELECT {} FROM processor_connections WHERE id = $1",
        super::processor_connections::COLUMNS
    ))
    .bind(id.as_str())
    .fetch_optional(db)
    .await?)
}

/// The id of the tenant's payment made through connection `connector` whose
/// processor reference is `reference`, or `None`.
pub async fn payment_by_reference<'e>(
    db: impl Executor<'e, Database = Any>,
    tenant: &Tenant,
    connector: &ConnectionId,
    reference: &str,
) -> Result<Option<PaymentId>, StoreError> {
    // `connector LIKE 'conn_%'` repeats the partial index's condition, so
    // that both backends use it.
    let found: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM payments WHERE merchant_id = $1 AND processor_reference = $2 AND connector LIKE 'conn_%' \
         AND connector = $3 AND mode = $4 LIMIT 1",
    )
    .bind(tenant.merchant_str())
    .bind(reference)
    .bind(connector.as_str())
    .bind(tenant.mode_str())
    .fetch_optional(db)
    .await?;
    Ok(found.map(|(id,)| PaymentId::from_trusted(id)))
}

impl super::ports::ProcessorEventStore for super::Store {
    async fn processor_event_seen(&self, connection: &ConnectionId, event_id: &str) -> Result<bool, StoreError> {
        seen(self.reader(), connection, event_id).await
    }

    fn insert_processor_event(&self, work: &mut UnitOfWork, row: &ProcessorEventRow) {
        insert(work, row);
    }

    async fn connection_by_id(&self, id: &ConnectionId) -> Result<Option<ConnectionRow>, StoreError> {
        connection(self.reader(), id).await
    }

    async fn payment_by_processor_reference(
        &self,
        tenant: &Tenant,
        connector: &ConnectionId,
        reference: &str,
    ) -> Result<Option<PaymentId>, StoreError> {
        payment_by_reference(self.reader(), tenant, connector, reference).await
    }
}
