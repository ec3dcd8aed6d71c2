//! `paywarden secrets generate`: print a fresh base64 pepper for production
//! configuration (to be written to a 0600 file, never committed).

use std::process::ExitCode;

use clap::Subcommand;
use secrecy::ExposeSecret;
use serde_json::json;

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Print 32 random bytes, base64-encoded (for secrets.api_key_pepper_file).
    Generate,
}

pub async fn run(ctx: CliContext, cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCommand::Generate => {
            let value = crate::server::secrets::generate_encoded()?;
            output::print(ctx.json, &json!({ "secret": value.expose_secret() }), || {
                value.expose_secret().to_owned()
            });
        }
    }
    Ok(ExitCode::SUCCESS)
}
