//! # paywarden
//!
//! A self-hostable, security-first payment gateway.
//!
//! # Layout
//!
//! Data flows one way: HTTP edge → domain types → services → storage.
//!
//! - [`domain`]: pure types and rules (ids, keys, permissions, money, audit
//!   chain). No I/O. Values exist only if they parsed.
//! - [`vault`]: envelope encryption of card data under versioned KEKs, card
//!   fingerprints, the in-memory CVC holder.
//! - [`store`]: the only SQL, one code path over SQLite and PostgreSQL.
//! - [`connectors`]: processors behind one trait; the built-in sandbox.
//! - [`services`]: use cases; each owns its transaction, so a state change and
//!   its audit entry commit together.
//! - [`api`]: the axum router, extractors, `ApiError`, OpenAPI.
//! - [`metrics`]: Prometheus metrics (no key, id or address in any label),
//!   served on the operator listener.
//! - [`server`]: configuration, TLS, the accept loop, graceful shutdown.
//! - [`cli`]: the operator commands of the `paywarden` binary.
//! - [`webhooks`]: signed outbound webhooks from the events outbox: the
//!   delivery worker, the SSRF guard, and the signature verifier exported
//!   for merchants ([`webhooks::verify`]).

pub mod api;
pub mod cli;
pub mod connectors;
pub mod domain;
pub mod metrics;
pub mod secret_files;
pub mod server;
pub mod services;
pub mod store;
pub mod vault;
pub mod webhooks;
