//! `paywarden lockout clear IP`: lift a client address's lockout (audited).
//! Clearing also forgets the address's recorded failures, in the same
//! transaction: otherwise the failures that caused the lockout would still be
//! within the window, and the next single mistake would lock it out again.

use std::net::IpAddr;
use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::domain::audit::Outcome;
use crate::domain::restrictions::canonical;
use crate::store;

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
            let mut event = ctx
                .actor("lockout clear")
                .event("auth.lockout_cleared", Outcome::Success);
            event.resource = Some(ip.clone());
            let mut tx = store.begin().await?;
            let existed = store::lockouts::unlock(&mut *tx, &ip).await?;
            let forgotten = store::lockouts::forget_failures(&mut *tx, &ip).await?;
            event.reason = Some(format!("{forgotten} recorded failures forgotten"));
            store::audit::append(&mut tx, &[event]).await?;
            tx.commit().await?;
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
