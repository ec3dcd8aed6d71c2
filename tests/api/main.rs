//! Integration tests: the real gateway over real TLS against a real database,
//! every test on SQLite and on PostgreSQL.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]

mod support;

mod anomaly;
mod api_keys;
mod attacks;
mod audit;
mod auth;
mod check;
mod cli;
mod connectors;
mod conventions;
mod database_tls;
mod elements;
mod events;
mod fault_proxy;
mod faults;
mod fraud;
mod freeze;
mod group_commit;
mod idempotency;
mod kek_rotation;
mod merchant;
mod metrics;
mod migrations;
mod operators;
mod payment_store;
mod payments;
mod process;
mod processor_double;
mod rate_limits;
mod receiver;
mod refunds;
mod sca;
mod secret_files;
mod tenancy;
mod tokens;
mod webhook_batches;
mod webhook_crash;
mod webhook_isolation;
mod webhooks;
