//! The events port: the transactional outbox as the API and the services
//! see it. Events are inserted in the unit of the change they describe,
//! with their webhook deliveries, and never updated; event ids are
//! time-ordered, so newest first is by id. (The delivery worker's claims,
//! leases and records are the webhook deliveries port's.)

use std::future::Future;

use crate::domain::ids::EventId;
use crate::domain::tenant::Tenant;
use crate::store::events::EventRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_deliveries::DeliveryRow;
use crate::store::StoreError;

pub trait EventStore: Send + Sync {
    /// Stages the events of one change, in order (all of the first one's
    /// merchant and mode), and their fan-out: one pending delivery, due at
    /// the event's `created_at`, per enabled endpoint of that merchant and
    /// mode subscribed to the event's type or to `*`. An event id the
    /// merchant already has fails the unit with `Duplicate`, a merchant that
    /// does not exist with `Constraint`; no events stages nothing.
    fn insert_events(&self, work: &mut UnitOfWork, rows: &[EventRow]);

    /// The tenant's event `id`; `None` if missing or another merchant's or
    /// mode's.
    fn get_event(
        &self,
        tenant: &Tenant,
        id: &EventId,
    ) -> impl Future<Output = Result<Option<EventRow>, StoreError>> + Send;

    /// Up to `limit` of the tenant's events, newest first, older than
    /// `before` when given, of type `event_type` when given.
    fn list_events(
        &self,
        tenant: &Tenant,
        event_type: Option<&str>,
        before: Option<&EventId>,
        limit: i64,
    ) -> impl Future<Output = Result<Vec<EventRow>, StoreError>> + Send;

    /// The deliveries of event `event_id` (of any merchant), by endpoint id;
    /// empty if none.
    fn deliveries_of_event(&self, event_id: &str) -> impl Future<Output = Result<Vec<DeliveryRow>, StoreError>> + Send;

    /// The events with these `(merchant_id, id)` keys, of whichever mode
    /// (the delivery worker checks each one against its endpoint), in no
    /// particular order; unknown keys are left out.
    fn get_events_by_keys(
        &self,
        keys: &[(&str, &str)],
    ) -> impl Future<Output = Result<Vec<EventRow>, StoreError>> + Send;
}
