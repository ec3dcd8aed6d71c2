//! The `paywarden` command line: `serve` and the operator commands. Every
//! command takes `--config`/`--data-dir` (and `--database-url`) and `--json`,
//! acts on the configured database, and is itself audited.

mod anomalies;
mod audit;
mod check;
mod connectors;
mod context;
mod key_freeze;
mod keys;
mod lockouts;
mod merchants;
mod operators;
mod output;
mod secrets;
mod serve;
mod step_up;
mod vault;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "paywarden",
    version,
    about = "A self-hostable, security-first payment gateway"
)]
pub struct Cli {
    /// Configuration file (default: ./paywarden.toml if present).
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory (SQLite database, development secrets).
    #[arg(long, global = true, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Database URL (sqlite://… or postgres://…), overriding the configuration.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "PAYWARDEN_DATABASE_URL",
        hide_env_values = true
    )]
    database_url: Option<String>,
    /// Print a machine-readable JSON result.
    #[arg(long, global = true)]
    json: bool,
    /// Development mode: generate (or reuse) development-only secrets in the data dir.
    #[arg(long, global = true)]
    dev: bool,
    /// The enrolled operator stepping up for a privileged command (unfreeze,
    /// a key with tokens:reveal, rotate-kek, audit export, lockout clear,
    /// operator enroll/remove): see `paywarden operator enroll`.
    #[arg(long, global = true, value_name = "NAME")]
    operator: Option<String>,
    /// That operator's current TOTP code (prompted for on a terminal when omitted).
    #[arg(long, global = true, value_name = "CODE", value_parser = step_up::totp_arg)]
    totp: Option<step_up::TotpArg>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTPS API server.
    Serve(serve::ServeArgs),
    /// Manage merchants.
    #[command(subcommand)]
    Merchant(merchants::MerchantCommand),
    /// Manage API keys.
    #[command(subcommand, visible_alias = "keys")]
    Key(keys::KeyCommand),
    /// List the anomaly detectors' alerts.
    #[command(subcommand)]
    Anomalies(anomalies::AnomalyCommand),
    /// Verify or export the tamper-evident audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Audit this deployment against the gateway's practices (pass / warn / fail).
    Check(check::CheckArgs),
    /// Inspect merchants' processor connections.
    #[command(subcommand)]
    Connectors(connectors::ConnectorCommand),
    /// Inspect or lift lockouts of client addresses.
    #[command(subcommand)]
    Lockout(lockouts::LockoutCommand),
    /// Enroll, list or remove operators (TOTP step-up for privileged commands).
    #[command(subcommand)]
    Operator(operators::OperatorCommand),
    /// Inspect the card vault and rotate its key-encryption key.
    #[command(subcommand)]
    Vault(vault::VaultCommand),
    /// Generate secret material for a production configuration.
    #[command(subcommand)]
    Secrets(secrets::SecretsCommand),
}

/// Parses the command line and runs the command.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let json = cli.json;
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            output::error(json, &e);
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let ctx = context::CliContext::new(&cli)?;
    // The file `Config::load` read: the one given, or ./paywarden.toml if present.
    let config_file = cli
        .config
        .clone()
        .or_else(|| Some(PathBuf::from("paywarden.toml")).filter(|p| p.exists()));
    match cli.command {
        Command::Serve(args) => serve::run(ctx, args).await,
        Command::Merchant(cmd) => merchants::run(ctx, cmd).await,
        Command::Key(cmd) => keys::run(ctx, cmd).await,
        Command::Anomalies(cmd) => anomalies::run(ctx, cmd).await,
        Command::Audit(cmd) => audit::run(ctx, cmd).await,
        Command::Lockout(cmd) => lockouts::run(ctx, cmd).await,
        Command::Operator(cmd) => operators::run(ctx, cmd).await,
        Command::Connectors(cmd) => connectors::run(ctx, cmd).await,
        Command::Check(args) => check::run(ctx, args, config_file.as_deref()).await,
        Command::Secrets(cmd) => secrets::run(ctx, cmd).await,
        Command::Vault(cmd) => vault::run(ctx, cmd).await,
    }
}
