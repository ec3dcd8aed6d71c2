//! `paywarden merchant create|list|show|freeze|unfreeze` (unfreeze needs a
//! step-up).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::domain::ids::MerchantId;
use crate::domain::merchant::{FreezeReason, Merchant, MerchantName};
use crate::services::merchants;

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum MerchantCommand {
    /// Create a merchant.
    Create {
        #[arg(long)]
        name: String,
    },
    /// List merchants.
    List {
        #[arg(long, default_value_t = 100)]
        limit: i64,
        #[arg(long, value_name = "MERCHANT_ID")]
        starting_after: Option<String>,
    },
    /// Show one merchant, including whether it is frozen.
    Show {
        #[arg(value_name = "MERCHANT_ID")]
        id: String,
    },
    /// Freeze a merchant: every key of it is refused (403 merchant_frozen)
    /// from the next request on, on every replica. Reversible.
    Freeze {
        #[arg(value_name = "MERCHANT_ID")]
        id: String,
        /// Why (kept with the freeze and in the audit trail).
        #[arg(long)]
        reason: String,
    },
    /// Lift a merchant's freeze.
    Unfreeze {
        #[arg(value_name = "MERCHANT_ID")]
        id: String,
        /// Why (kept in the audit trail).
        #[arg(long)]
        reason: String,
    },
}

fn view(m: &Merchant) -> serde_json::Value {
    let frozen = m
        .frozen
        .as_ref()
        .map(|f| json!({ "at": f.at.as_secs(), "reason": f.reason.as_str() }));
    json!({
        "id": m.id.as_str(),
        "name": m.name.as_str(),
        "created": m.created_at.as_secs(),
        "connector": m.connector,
        "live_connector": m.live_connector,
        "frozen": frozen,
    })
}

fn state(m: &Merchant) -> String {
    match &m.frozen {
        None => "active".to_owned(),
        Some(f) => format!("FROZEN since {} ({})", f.at.to_rfc3339(), f.reason.as_str()),
    }
}

pub async fn run(ctx: CliContext, cmd: MerchantCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        MerchantCommand::Create { name } => {
            let name = MerchantName::parse(&name)?;
            let m = merchants::create(&store, &ctx.actor("merchant create"), name).await?;
            output::print(ctx.json, &view(&m), || {
                format!("created merchant {} ({})", m.id, m.name.as_str())
            });
        }
        MerchantCommand::List { limit, starting_after } => {
            let after = starting_after.as_deref().map(MerchantId::parse).transpose()?;
            let list = merchants::list(&store, after.as_ref(), limit.clamp(1, 1000)).await?;
            let value = json!({ "data": list.iter().map(view).collect::<Vec<_>>() });
            output::print(ctx.json, &value, || {
                list.iter()
                    .map(|m| format!("{}  {}  {}", m.id, m.name.as_str(), state(m)))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        MerchantCommand::Show { id } => {
            let m = merchants::get(&store, &MerchantId::parse(&id)?).await?;
            output::print(ctx.json, &view(&m), || {
                format!(
                    "{}  {}\ncreated {}\nconnector {} (test), {} (live)\n{}",
                    m.id,
                    m.name.as_str(),
                    m.created_at.to_rfc3339(),
                    m.connector,
                    m.live_connector.as_deref().unwrap_or("none"),
                    state(&m)
                )
            });
        }
        MerchantCommand::Freeze { id, reason } => {
            let reason = FreezeReason::parse(&reason).map_err(|e| anyhow::anyhow!("--reason: {e}"))?;
            let m = merchants::freeze(&store, &ctx.actor("merchant freeze"), &MerchantId::parse(&id)?, reason).await?;
            output::print(ctx.json, &view(&m), || {
                format!("froze merchant {}: its keys are refused from now on", m.id)
            });
        }
        MerchantCommand::Unfreeze { id, reason } => {
            let reason = FreezeReason::parse(&reason).map_err(|e| anyhow::anyhow!("--reason: {e}"))?;
            let id = MerchantId::parse(&id)?;
            // Unfreezing widens access again: step-up.
            let actor = super::step_up::actor(&ctx, &store, "merchant unfreeze").await?;
            let m = merchants::unfreeze(&store, &actor, &id, reason).await?;
            output::print(ctx.json, &view(&m), || format!("unfroze merchant {}", m.id));
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
