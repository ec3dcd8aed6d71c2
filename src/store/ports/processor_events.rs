//! The inbound processor events port: which processor events a connection
//! already applied, and the lookups an inbound webhook makes before it knows
//! its tenant.

use std::future::Future;

use crate::domain::ids::{ConnectionId, PaymentId};
use crate::domain::tenant::Tenant;
use crate::store::processor_connections::ConnectionRow;
use crate::store::processor_events::ProcessorEventRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

pub trait ProcessorEventStore: Send + Sync {
    /// Whether event `event_id` of `connection` was recorded.
    fn processor_event_seen(
        &self,
        connection: &ConnectionId,
        event_id: &str,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;

    /// Stages an event's record; one already recorded for the connection
    /// fails the unit with `Duplicate`.
    fn insert_processor_event(&self, work: &mut UnitOfWork, row: &ProcessorEventRow);

    /// Connection `id` of any tenant; `None` if missing. For inbound
    /// webhooks only, trusted once the delivery verified with its secret.
    fn connection_by_id(
        &self,
        id: &ConnectionId,
    ) -> impl Future<Output = Result<Option<ConnectionRow>, StoreError>> + Send;

    /// The tenant's payment through `connector` with processor reference
    /// `reference`; `None` if there is none.
    fn payment_by_processor_reference(
        &self,
        tenant: &Tenant,
        connector: &ConnectionId,
        reference: &str,
    ) -> impl Future<Output = Result<Option<PaymentId>, StoreError>> + Send;
}
