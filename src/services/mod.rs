//! Services: the gateway's use cases. Each function takes domain types,
//! commits its state change together with its audit entry as one unit of
//! work (`store::unit_of_work`) and returns domain types. No HTTP and no
//! database driver type here; SQL only through `store`.
//!
//! Callers (the API, the CLI, the server's wiring) hand every use case the
//! storage handle [`Store`], re-exported here so that they depend on this
//! layer only: to them it is opaque, a value they pass along and never query.

pub mod actor;
pub mod anomaly;
pub mod api_keys;
pub mod audit;
pub mod audit_writer;
pub mod auth;
pub mod connections;
pub mod error;
pub mod events;
pub mod fraud;
pub mod health;
pub mod idempotency;
pub mod kek_rotation;
pub mod key_freeze;
pub mod key_hasher;
pub mod lockouts;
pub mod merchants;
pub mod operators;
pub mod payments;
pub mod posture;
pub mod rate_limit;
pub mod reconciliation;
pub mod refunds;
pub mod tokens;
pub mod webhook_endpoints;

pub use crate::store::Store;
pub use error::ServiceError;
