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

use crate::secret_files::DevSecrets;
use crate::server::{current_kek, kek_entries};
use crate::services::kek_rotation::{self, Wrapped};
use crate::vault::{Kek, KekVersion, StaticKeyring};

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// What each KEK version wraps: live tokens, stored idempotent responses,
    /// webhook signing secrets, processor connections' credentials,
    /// operators' TOTP secrets.
    Status {
        /// Exit 1, naming what is left, unless nothing is wrapped under this
        /// version (before removing a KEK from the configuration).
        #[arg(long, value_name = "VERSION")]
        check_unused: Option<u32>,
    },
    /// Re-wrap every data key under a KEK version the configuration lists
    /// (resumable; safe while serving; needs a step-up).
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
    let code = match cmd {
        VaultCommand::Status { check_unused } => {
            let inventory = kek_rotation::inventory(&store).await?;
            let left = check_unused.and_then(|v| inventory.iter().find(|w| w.version == i64::from(v) && w.total() > 0));
            let value = match check_unused {
                Some(v) => json!({
                    "kek_versions": inventory,
                    "check_unused": {"version": v, "unused": left.is_none()},
                }),
                None => json!({ "kek_versions": inventory }),
            };
            output::print(ctx.json, &value, || {
                let lines: Vec<String> = inventory
                    .iter()
                    .map(|w| format!("KEK version {}: {}", w.version, describe(w)))
                    .collect();
                if lines.is_empty() {
                    "nothing is wrapped by any KEK".to_owned()
                } else {
                    lines.join("\n")
                }
            });
            match left {
                Some(w) => {
                    eprintln!(
                        "KEK version {} still wraps {}: run `paywarden vault rotate-kek` again; \
                         keep this KEK configured everywhere",
                        w.version,
                        describe(w)
                    );
                    ExitCode::FAILURE
                }
                None => ExitCode::SUCCESS,
            }
        }
        VaultCommand::RotateKek {
            new_key_file,
            new_version,
            limit,
        } => {
            let to = KekVersion::new(new_version);
            let keyring = rotation_keyring(&ctx, &new_key_file, to)?;
            let actor = super::step_up::actor(&ctx, &store, "vault rotate-kek").await?;
            let quiet = ctx.json;
            let report = kek_rotation::rotate(&store, &keyring, &actor, to, limit, |r| {
                if !quiet {
                    eprint!(
                        "\rre-wrapping data keys under KEK version {to}: {} done, {} skipped",
                        r.rewrapped(),
                        r.skipped()
                    );
                    let _ = std::io::stderr().flush();
                }
            })
            .await?;
            if !quiet {
                eprintln!();
            }
            output::print(ctx.json, &json!({ "version": new_version, "report": report }), || {
                format!(
                    "re-wrapped under KEK version {to}: {} tokens, {} stored idempotent responses, \
                     {} webhook signing secrets, {} connection credentials, {} operator secrets; {}",
                    report.tokens.rewrapped,
                    report.idempotent_responses.rewrapped,
                    report.webhook_secrets.rewrapped,
                    report.connection_credentials.rewrapped,
                    report.operator_secrets.rewrapped,
                    if report.complete {
                        "nothing is left under other versions".to_owned()
                    } else {
                        format!(
                            "left under other versions: {} tokens, {} stored idempotent responses, \
                             {} webhook signing secrets, {} connection credentials, {} operator secrets \
                             (run again to finish)",
                            report.tokens.remaining,
                            report.idempotent_responses.remaining,
                            report.webhook_secrets.remaining,
                            report.connection_credentials.remaining,
                            report.operator_secrets.remaining
                        )
                    }
                )
            });
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}

fn describe(w: &Wrapped) -> String {
    format!(
        "{} tokens, {} stored idempotent responses, {} webhook signing secrets, {} connection credentials, \
         {} operator secrets",
        w.tokens, w.idempotent_responses, w.webhook_secrets, w.connection_credentials, w.operator_secrets
    )
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
             (docs/operations.md: Rotating the KEK)",
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
