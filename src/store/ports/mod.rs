//! The storage ports: one trait per aggregate, of single-query primitives,
//! which the services depend on instead of on [`Store`](super::Store).
//!
//! Two implementations keep the same semantics, written once in each
//! method's doc:
//! - [`Store`](super::Store), the SQL backend (SQLite and PostgreSQL): each
//!   method is a statement of a table module (`store::merchants`, …);
//! - `store::memory::MemoryStore` (tests only), an in-memory double that the
//!   services' unit tests run against. The contract tests (`store::contract`)
//!   run the same assertions against the double, SQLite and PostgreSQL, so
//!   the double cannot drift from the database.
//!
//! # What every implementation guarantees
//! - **Reads** are `async` and see committed state only. Not found is
//!   `Ok(None)` (or an empty page), never an error.
//! - **Writes** are staged into a [`UnitOfWork`], each implementation staging
//!   its own payload (the SQL backend a constant statement with parameters,
//!   the double a typed change). Nothing is written until
//!   [`Commit::commit`]; then every staged write and audit entry applies, or
//!   none does.
//! - A staged write that must change one row and finds none in the expected
//!   state (missing, another tenant's, changed meanwhile) fails the whole
//!   unit with `StoreError::Conflict`; an insert that collides on a unique
//!   value fails it with `StoreError::Duplicate`.
//! - A primitive that takes a [`Tenant`](crate::domain::tenant::Tenant) sees
//!   only that merchant's rows of that mode: another merchant's or mode's row
//!   is exactly like a missing one.
//!
//! Multi-step logic (read, decide, write conditionally; retry on `Conflict`)
//! lives one layer up, in `services`.
//!
//! Services take the store as a generic parameter (`S: MerchantStore +
//! Commit`), not a trait object: calls are statically dispatched and no
//! future is boxed, so the hot path costs what calling the table module
//! directly did. Each trait's methods carry the aggregate in their names,
//! so that one type implements them all without ambiguity.

mod anomalies;
mod api_keys;
mod audit;
mod auth;
mod connections;
mod events;
mod fraud;
mod idempotency;
mod lockouts;
mod merchants;
mod operators;
mod payments;
mod processor_events;
mod rate_buckets;
mod reconciliation;
mod refunds;
mod sca;
mod signals;
mod tokens;
mod webhook_deliveries;
mod webhook_endpoints;

use std::future::Future;

pub use anomalies::AnomalyStore;
pub use api_keys::ApiKeyStore;
pub use audit::AuditStore;
pub use auth::AuthStore;
pub use connections::ConnectionStore;
pub use events::EventStore;
pub use fraud::FraudStore;
pub use idempotency::IdempotencyStore;
pub use lockouts::LockoutStore;
pub use merchants::MerchantStore;
pub use operators::OperatorStore;
pub use payments::PaymentStore;
pub use processor_events::ProcessorEventStore;
pub use rate_buckets::RateBuckets;
pub use reconciliation::ReconciliationStore;
pub use refunds::RefundStore;
pub use sca::ScaStore;
pub use signals::SignalStore;
pub use tokens::TokenStore;
pub use webhook_deliveries::WebhookDeliveryStore;
pub use webhook_endpoints::WebhookEndpointStore;

use super::unit_of_work::UnitOfWork;
use super::StoreError;

/// Commits units of work.
pub trait Commit: Send + Sync {
    /// Applies every write staged in `work` and appends its audit entries
    /// (chained), all or nothing; returns once that is durable, or with the
    /// first staged write's failure (`Conflict`, `Duplicate`, a fault), in
    /// which case nothing of `work` was written.
    fn commit(&self, work: UnitOfWork) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Call after committing a change of a key, a merchant or a lockout and
    /// before answering it: returns once no reader can still act on the
    /// state before the change (the SQL backend's authentication cache,
    /// `store::auth_state`; for the double, which no other process caches,
    /// the generation moves on at once).
    fn auth_state_changed(&self) -> impl Future<Output = ()> + Send;
}

impl Commit for super::Store {
    async fn commit(&self, work: UnitOfWork) -> Result<(), StoreError> {
        super::Store::commit(self, work).await
    }

    async fn auth_state_changed(&self) {
        super::Store::auth_state_changed(self).await;
    }
}
