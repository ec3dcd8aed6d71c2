//! `paywarden vault status|rotate-kek`: inspect and rotate the key-encryption
//! key while the gateway keeps serving.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use crate::server::files::DevSecrets;
use crate::server::{current_kek, kek_entries};
use crate::services::kek_rotation;
use crate::vault::{Kek, KekVersion, StaticKeyring};

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// How many live tokens (and stored idempotent responses) each KEK version protects.
    Status,
    /// Re-wrap every data key under a new KEK (resumable; safe while serving).
    RotateKek {
        /// File with the new KEK: 32 random bytes, base64 (`paywarden secrets generate`).
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        /// Version for the new KEK (default: one above every configured version).
        #[arg(long)]
        new_version: Option<u32>,
        /// Stop after this many records (the rest are picked up by the next run).
        #[arg(long)]
        limit: Option<u64>,
    },
}

pub async fn run(ctx: CliContext, cmd: VaultCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        VaultCommand::Status => {
            let counts = kek_rotation::status(&store).await?;
            let responses = kek_rotation::response_status(&store).await?;
            let value = json!({
                "kek_versions": counts.iter().map(|(v, n)| json!({"version": v, "tokens": n})).collect::<Vec<_>>(),
                "idempotent_responses": responses.iter().map(|(v, n)| json!({"version": v, "responses": n})).collect::<Vec<_>>(),
            });
            output::print(ctx.json, &value, || {
                let mut lines: Vec<String> = counts
                    .iter()
                    .map(|(v, n)| format!("KEK version {v}: {n} tokens"))
                    .collect();
                if lines.is_empty() {
                    lines.push("no live tokens".to_owned());
                }
                lines.extend(
                    responses
                        .iter()
                        .map(|(v, n)| format!("KEK version {v}: {n} stored idempotent responses")),
                );
                lines.join("\n")
            });
        }
        VaultCommand::RotateKek {
            new_key_file,
            new_version,
            limit,
        } => {
            let current = current_kek(&ctx.config, ctx.dev)?
                .context("missing configuration: vault.kek_file or vault.kek (the KEK in use now)")?;
            let mut keys = kek_entries(&ctx.config, current, ctx.dev)?;
            let next = new_version.unwrap_or_else(|| keys.iter().map(|(v, _)| v.get()).max().unwrap_or(0) + 1);
            let to = KekVersion::new(next);
            if keys.iter().any(|(v, _)| *v == to) {
                anyhow::bail!("--new-version {next} is already a configured KEK version");
            }
            keys.push((
                to,
                Kek::read_file(&new_key_file, DevSecrets::new(ctx.dev, &ctx.config.data_dir))?,
            ));
            let keyring = StaticKeyring::new(to, keys)?;
            let quiet = ctx.json;
            let report = kek_rotation::rotate(&store, &keyring, &ctx.actor("vault rotate-kek"), to, limit, |r| {
                if !quiet {
                    eprint!(
                        "\rre-wrapping data keys under KEK version {next}: {} done, {} skipped",
                        r.rewrapped, r.skipped
                    );
                    let _ = std::io::stderr().flush();
                }
            })
            .await?;
            if !quiet {
                eprintln!();
            }
            output::print(ctx.json, &json!({ "version": next, "report": report }), || {
                format!(
                    "{} data keys re-wrapped under KEK version {next}; {} remaining under other versions; \
                     stored idempotent responses: {} re-wrapped, {} remaining{}",
                    report.rewrapped,
                    report.remaining,
                    report.responses_rewrapped,
                    report.responses_remaining,
                    if report.remaining > 0 || report.responses_remaining > 0 {
                        " (run again to finish)"
                    } else {
                        ""
                    }
                )
            });
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
