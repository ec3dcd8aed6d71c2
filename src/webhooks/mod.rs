//! Outbound webhooks: from the `events` outbox to the merchant's server.
//!
//! # Layout
//!
//! - [`signature`]: `Paywarden-Signature` signing and the verifier exported to
//!   merchants ([`verify`]).
//! - [`ssrf`]: the URL policy and the resolver that keeps live-mode deliveries
//!   on public addresses.
//! - [`secret`]: `whsec_…` signing secrets, sealed at rest by the vault.
//! - [`endpoint`]: an endpoint as read, and its subscriptions.
//! - [`payload`]: an event as read, and the JSON deliveries carry, written
//!   by the API's views so that it is identical in the API and in deliveries.
//! - [`settings`]: retry schedule, lease, poll interval, attempt timeout,
//!   in-flight caps, the HTTP clients.
//! - [`delivery`]: the background worker that claims due deliveries under a
//!   lease, in batches, and starts each attempt as a task of its own, so
//!   that a slow or failing endpoint delays only itself.
//! - [`lanes`]: the worker's per-endpoint slots (in-flight caps, more claimed
//!   ahead for a quick endpoint, one attempt at a time for a failing one).
//! - [`round`]: a round's endpoints, events and opened secrets, read at once.
//! - [`attempt`]: one signed HTTP attempt, cut at the attempt deadline.
//! - [`record`]: attempts' outcomes written under their leases, many per
//!   job; retries with backoff, and disabling an endpoint whose delivery ran
//!   out of retries.
//!
//! The worker reads and writes through the storage ports
//! ([`DeliveryStores`]): the gateway's over the SQL backend, the unit tests'
//! over the in-memory double.
//!
//! Deliveries are at least once: a delivery is only marked delivered after a
//! 2xx response was recorded, so a crash between the POST and the record
//! sends it again. Receivers deduplicate on the event id.

pub mod attempt;
pub mod delivery;
pub mod endpoint;
pub mod lanes;
pub mod payload;
pub mod record;
pub mod round;
pub mod secret;
pub mod settings;
pub mod signature;
pub mod ssrf;

pub use signature::{verify, verify_at, VerifiedEvent, VerifyError};

#[cfg(test)]
mod tests;

use crate::store::{Commit, EventStore, WebhookDeliveryStore, WebhookEndpointStore};

/// The storage ports the delivery worker uses: its deliveries and attempts,
/// the endpoints it sends to (and disables), the events it sends.
pub trait DeliveryStores: WebhookDeliveryStore + WebhookEndpointStore + EventStore + Commit + Clone + 'static {}

impl<S: WebhookDeliveryStore + WebhookEndpointStore + EventStore + Commit + Clone + 'static> DeliveryStores for S {}
