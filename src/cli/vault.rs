//! `paywarden vault status|rotate-kek`: inspect and rotate the key-encryption
//! key while the gateway keeps serving.
//!
//! `rotate-kek` wraps only under a version that this configuration (the
//! replicas' own) already lists as readable, holding the very key given: a
//! version is never invented, since replicas that do not hold its key could
//! not read what was re-wrapped under it.

use std::io::Write;
use std::path::{Path, PathBuf};
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
    /// Re-wrap every data key under a KEK version the configuration lists
    /// (resumable; safe while serving).
    RotateKek {
        /// File with the new KEK: 32 random bytes, base64 (`paywarden secrets
        /// generate --output FILE`); the configuration must list it too.
        #[arg(long, value_name = "FILE")]
        new_key_file: PathBuf,
        /// The version of that KEK in the configuration (`vault.kek_version`
        /// or an entry of `vault.previous_kek_files`).
        #[arg(long)]
        new_version: u32,
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
            let next = new_version;
            let to = KekVersion::new(new_version);
            let keyring = rotation_keyring(&ctx, &new_key_file, to)?;
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

/// The configured KEKs with `to` current, provided the configuration lists
/// `to` and `new_key_file` holds the same key.
fn rotation_keyring(ctx: &CliContext, new_key_file: &Path, to: KekVersion) -> anyhow::Result<StaticKeyring> {
    let current = current_kek(&ctx.config, ctx.dev)?
        .context("missing configuration: vault.kek_file or vault.kek (the KEK in use now)")?;
    let keys = kek_entries(&ctx.config, current, ctx.dev)?;
    let Some((_, configured)) = keys.iter().find(|(v, _)| *v == to) else {
        let listed: Vec<String> = keys.iter().map(|(v, _)| v.to_string()).collect();
        anyhow::bail!(
            "KEK version {to} is not in this configuration (it lists {}): add it to vault.previous_kek_files on \
             every replica and restart them first, or they could not read what is re-wrapped under it \
             (README: Rotating the KEK)",
            listed.join(", ")
        );
    };
    let new = Kek::read_file(new_key_file, DevSecrets::new(ctx.dev, &ctx.config.data_dir))?;
    if !configured.same_key(&new) {
        anyhow::bail!(
            "{} does not hold the key this configuration lists as KEK version {to}",
            new_key_file.display()
        );
    }
    Ok(StaticKeyring::new(to, keys)?)
}
