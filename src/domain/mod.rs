//! Pure domain types and rules: no I/O, no HTTP, no SQL.
//!
//! Every type here can only be built through a parser (`parse`, `TryFrom`, or a
//! generator), so a value that exists past the edge is valid by construction.

pub mod anomaly;
pub mod api_key;
pub mod audit;
pub mod card;
pub mod connection;
pub mod country;
pub mod event;
pub mod fraud_rules;
pub mod idempotency_key;
pub mod ids;
pub mod merchant;
pub mod money;
pub mod operator;
pub mod payment;
pub mod payment_fields;
pub mod permission;
pub mod random;
pub mod rate_limit;
pub mod redact;
pub mod restrictions;
pub mod sca;
pub mod tenant;
pub mod time;
