//! The gateway process: resolving configuration into what the server needs,
//! wiring services together, and running the listener until shutdown.

pub mod anomaly_config;
pub mod capacity;
pub mod config;
pub mod connector_settings;
pub mod database;
pub mod deadlines;
pub mod dev;
pub mod fd_limit;
pub mod gateway;
pub mod linger;
pub mod listener;
pub mod policies;
pub mod posture;
pub mod rate_limit_config;
pub mod sca_config;
pub mod secrets;
pub mod settings;
pub mod telemetry;
pub mod tls;

pub use gateway::{Abandoned, Gateway, GatewayOptions};
pub use policies::*;
pub use settings::*;

/// Why the gateway refuses to start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("refusing to start: missing required configuration:\n{}\nSet them in paywarden.toml or the environment, or run with --dev for a local development setup.", .0.iter().map(|m| format!("  - {m}")).collect::<Vec<_>>().join("\n"))]
    Missing(Vec<String>),
    #[error("refusing to start: {0}")]
    Invalid(String),
}
