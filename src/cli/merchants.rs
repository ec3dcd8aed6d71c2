//! `paywarden merchant create|list`.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::domain::ids::MerchantId;
use crate::domain::merchant::{Merchant, MerchantName};
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
}

fn view(m: &Merchant) -> serde_json::Value {
    json!({ "id": m.id.as_str(), "name": m.name.as_str(), "created": m.created_at.as_secs() })
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
                    .map(|m| format!("{}  {}", m.id, m.name.as_str()))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
