//! `paywarden lockout clear IP`: lift a client address's lockout (audited;
//! needs a step-up).
//! Clearing also forgets the address's recorded failures, in the same
//! unit of work: otherwise the failures that caused the lockout would still be
//! within the window, and the next single mistake would lock it out again.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::domain::restrictions::canonical;
use crate::services::lockouts;

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum LockoutCommand {
    /// Lift the lockout of one client address.
    Clear { ip: IpAddr },
}

pub async fn run(ctx: CliContext, cmd: LockoutCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        LockoutCommand::Clear { ip } => {
            let ip = canonical(ip).to_string();
            // Lifting a brute-force lockout widens access: step-up.
            let actor = super::step_up::actor(&ctx, &store, "lockout clear").await?;
            let cleared = lockouts::clear(&store, &actor, &ip).await?;
            let (existed, forgotten) = (cleared.was_locked, cleared.failures_forgotten);
            output::print(
                ctx.json,
                &json!({ "ip": ip, "was_locked": existed, "failures_forgotten": forgotten }),
                || {
                    if existed {
                        format!("lockout of {ip} lifted; {forgotten} recorded failures forgotten")
                    } else {
                        format!("{ip} was not locked out; {forgotten} recorded failures forgotten")
                    }
                },
            );
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
