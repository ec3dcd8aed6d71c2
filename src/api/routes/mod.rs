//! Thin handlers: extract, convert to domain types, call one service, map the
//! result. One module per resource.

pub mod anomalies;
pub mod api_keys;
pub mod connector_webhooks;
pub mod connectors;
pub mod elements;
pub mod events;
pub mod fraud;
pub mod health;
pub mod merchant;
pub mod payments;
pub mod refunds;
pub mod reviews;
pub mod sandbox_3ds;
pub mod tokens;
pub mod webhook_endpoints;
