//! `paywarden secrets generate`: a fresh base64 secret (API-key pepper, KEK,
//! fingerprint key) for production configuration, printed or written to a new
//! owner-only file (never committed, never over an existing file: replacing a
//! KEK would make everything wrapped under it unreadable).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use secrecy::ExposeSecret;
use serde_json::json;

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// 32 random bytes, base64-encoded (a pepper, KEK or fingerprint key).
    Generate {
        /// Write it to this new file, mode 0600, instead of printing it
        /// (refused if the file exists).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub async fn run(ctx: CliContext, cmd: SecretsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        SecretsCommand::Generate { output: None } => {
            let value = crate::server::secrets::generate_encoded()?;
            output::print(ctx.json, &json!({ "secret": value.expose_secret() }), || {
                value.expose_secret().to_owned()
            });
        }
        SecretsCommand::Generate { output: Some(path) } => {
            let value = crate::server::secrets::generate_encoded()?;
            crate::secret_files::write_private(&path, value.expose_secret().as_bytes())
                .with_context(|| format!("cannot create {} (an existing file is never replaced)", path.display()))?;
            if ctx.json {
                output::print(true, &json!({ "file": path }), String::new);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
