//! Services: the gateway's use cases. Each function takes domain types, runs
//! its transaction (state change + audit entry commit together) and returns
//! domain types. No HTTP here; SQL only through `store`.

pub mod actor;
pub mod api_keys;
pub mod audit;
pub mod audit_writer;
pub mod auth;
pub mod error;
pub mod events;
pub mod health;
pub mod idempotency;
pub mod kek_rotation;
pub mod key_hasher;
pub mod lockouts;
pub mod merchants;
pub mod payments;
pub mod rate_limit;
pub mod refunds;
pub mod tokens;
pub mod webhook_endpoints;

pub use error::ServiceError;
