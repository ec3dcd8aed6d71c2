//! Outbound webhooks: from the `events` outbox to the merchant's server.
//!
//! # Layout
//!
//! - [`signature`]: `Paywarden-Signature` signing and the verifier exported to
//!   merchants ([`verify`]).
//! - [`ssrf`]: the URL policy and the resolver that keeps live-mode deliveries
//!   on public addresses.
//! - [`secret`]: `whsec_…` signing secrets, sealed at rest by the vault.
//! - [`endpoint`]: an endpoint as the API and events show it.
//! - [`payload`]: the event JSON, identical in the API and in deliveries.
//! - [`settings`]: retry schedule, lease, poll interval, the HTTP clients.
//! - [`delivery`]: the background worker that claims due deliveries under a
//!   lease, POSTs them, records every attempt, retries with backoff and
//!   disables an endpoint whose delivery ran out of retries.
//! - [`lanes`]: per-endpoint slots of the worker (in-flight caps, one
//!   attempt at a time for a failing endpoint).
//!
//! Deliveries are at least once: a delivery is only marked delivered after a
//! 2xx response was recorded, so a crash between the POST and the record
//! sends it again. Receivers deduplicate on the event id.

pub mod delivery;
pub mod endpoint;
pub mod lanes;
pub mod payload;
pub mod secret;
pub mod settings;
pub mod signature;
pub mod ssrf;

pub use signature::{verify, verify_at, VerifiedEvent, VerifyError};
