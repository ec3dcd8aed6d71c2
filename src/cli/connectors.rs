//! `paywarden connectors list --merchant mer_…`: a merchant's processor
//! connections in both modes, for operators (kind, status, default, the key's
//! last four; never a credential).

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::api::views::ConnectorView;
use crate::domain::ids::MerchantId;
use crate::services::connections;

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    /// List a merchant's processor connections (test and live).
    List {
        #[arg(long)]
        merchant: String,
    },
}

pub async fn run(ctx: CliContext, cmd: ConnectorCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        ConnectorCommand::List { merchant } => {
            let merchant = MerchantId::parse(&merchant)?;
            let list = connections::list_for_merchant(&store, &merchant).await?;
            let views: Vec<ConnectorView> = list.into_iter().map(ConnectorView::from).collect();
            output::print(ctx.json, &json!({ "data": views }), || {
                views
                    .iter()
                    .map(|v| {
                        format!(
                            "{}  {}  {}  {}  key …{}{}",
                            v.id,
                            if v.livemode { "live" } else { "test" },
                            v.kind,
                            v.status,
                            v.secret_key_last4,
                            if v.default { "  default" } else { "" }
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}
