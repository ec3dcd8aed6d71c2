//! `paywarden operator enroll|list|remove`: operators who step up for
//! privileged commands with a TOTP code (`cli::step_up`). Enrolment prints
//! the new secret once, as a QR code drawn in the terminal, as base32 text
//! and as an otpauth:// URI (`--json`: the text and the URI); it is stored
//! only sealed. Once an operator exists, enrolling another or removing one
//! needs a step-up by an enrolled operator, so step-up cannot be switched
//! off, or an operator added, without a second factor.

use std::process::ExitCode;

use clap::Subcommand;
use qrcode::render::unicode;
use qrcode::QrCode;
use serde_json::json;

use crate::domain::operator::{Operator, OperatorName};
use crate::services::operators;

use super::context::CliContext;
use super::output;
use super::step_up;

#[derive(Debug, Subcommand)]
pub enum OperatorCommand {
    /// Enroll an operator: prints a fresh TOTP secret once, for an
    /// authenticator app (needs a step-up once any operator is enrolled).
    Enroll {
        /// Lowercase letters, digits, '.', '_' and '-', starting with a letter.
        name: String,
    },
    /// List enrolled operators (never their secrets).
    List,
    /// Remove an operator and its secret (needs a step-up).
    Remove { name: String },
}

fn view(o: &Operator) -> serde_json::Value {
    json!({
        "id": o.id.as_str(),
        "name": o.name.as_str(),
        "created": o.created_at.as_secs(),
        "locked_until": o.locked_until.map(|t| t.as_secs()),
    })
}

fn parse_name(raw: &str) -> anyhow::Result<OperatorName> {
    OperatorName::parse(raw).map_err(|e| anyhow::anyhow!("NAME: {e}"))
}

pub async fn run(ctx: CliContext, cmd: OperatorCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        OperatorCommand::Enroll { name } => {
            let name = parse_name(&name)?;
            let keyring = ctx.keyring()?;
            let actor = step_up::actor(&ctx, &store, "operator enroll").await?;
            let enrolled = operators::enroll(&store, &keyring, &actor, name).await?;
            let (b32, uri) = (enrolled.secret.base32(), enrolled.secret.uri());
            let mut value = view(&enrolled.operator);
            if let Some(obj) = value.as_object_mut() {
                obj.insert("secret".into(), b32.as_str().into());
                obj.insert("otpauth_uri".into(), uri.as_str().into());
            }
            output::print(ctx.json, &value, || {
                format!(
                    "enrolled operator {} ({})\n\nScan this with an authenticator app (TOTP, 6 digits, 30 s):\n\n{}\n\
                     or type in the secret: {}\nURI: {}\n\nIt will not be shown again. Privileged commands now \
                     need --operator {} and its current code.",
                    enrolled.operator.name,
                    enrolled.operator.id,
                    qr(uri.as_str()),
                    b32.as_str(),
                    uri.as_str(),
                    enrolled.operator.name,
                )
            });
        }
        OperatorCommand::List => {
            let list = operators::list(&store).await?;
            let value = json!({ "data": list.iter().map(view).collect::<Vec<_>>() });
            output::print(ctx.json, &value, || {
                if list.is_empty() {
                    return "no operator enrolled: privileged commands need no step-up".to_owned();
                }
                list.iter()
                    .map(|o| {
                        let state = o
                            .locked_until
                            .filter(|t| *t > crate::domain::time::Timestamp::now())
                            .map_or_else(
                                || "active".to_owned(),
                                |t| format!("LOCKED OUT until {}", t.to_rfc3339()),
                            );
                        format!("{}  {}  enrolled {}  {state}", o.id, o.name, o.created_at.to_rfc3339())
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        OperatorCommand::Remove { name } => {
            let name = parse_name(&name)?;
            let actor = step_up::actor(&ctx, &store, "operator remove").await?;
            let removed = operators::remove(&store, &actor, &name).await?;
            output::print(ctx.json, &view(&removed), || {
                format!("removed operator {} ({})", removed.name, removed.id)
            });
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

/// The QR code of `uri` in Unicode half blocks, light on a dark terminal.
fn qr(uri: &str) -> String {
    match QrCode::new(uri.as_bytes()) {
        Ok(code) => code
            .render::<unicode::Dense1x2>()
            .dark_color(unicode::Dense1x2::Light)
            .light_color(unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
        Err(_) => "(no QR code: use the secret or URI below)".to_owned(),
    }
}
