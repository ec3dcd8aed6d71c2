//! `paywarden anomalies list`: every detector's alerts, newest first, for
//! operators (all merchants, and address subjects that belong to none).
//! `--merchant` narrows to one merchant's alerts; `--json` prints the same
//! objects as `GET /v1/anomalies`.

use std::process::ExitCode;

use clap::Subcommand;
use serde_json::json;

use crate::api::views::AnomalyView;
use crate::domain::ids::{AnomalyId, MerchantId};
use crate::services::anomaly;

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum AnomalyCommand {
    /// List alerts, newest first.
    List {
        /// Only this merchant's alerts (both modes).
        #[arg(long, value_name = "MERCHANT_ID")]
        merchant: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
        /// Only alerts older than this one (`anom_…`).
        #[arg(long, value_name = "ANOMALY_ID")]
        before: Option<String>,
    },
}

pub async fn run(ctx: CliContext, cmd: AnomalyCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        AnomalyCommand::List {
            merchant,
            limit,
            before,
        } => {
            if !(1..=1000).contains(&limit) {
                anyhow::bail!("--limit must be 1 to 1000");
            }
            let merchant = merchant.as_deref().map(MerchantId::parse).transpose()?;
            let before = before.as_deref().map(AnomalyId::parse).transpose()?;
            let found = anomaly::list_all(&store, before.as_ref(), limit).await?;
            let views: Vec<serde_json::Value> = found
                .iter()
                .filter(|a| {
                    merchant
                        .as_ref()
                        .is_none_or(|m| a.merchant.as_ref().is_some_and(|(owner, _)| owner == m))
                })
                .map(|a| {
                    let mut v = json!(AnomalyView::from(a));
                    if let Some(obj) = v.as_object_mut() {
                        let owner = a.merchant.as_ref().map(|(m, _)| m.as_str().to_owned());
                        obj.insert("merchant".into(), owner.into());
                    }
                    v
                })
                .collect();
            output::print(ctx.json, &json!({ "data": views }), || {
                if found.is_empty() {
                    return "no anomalies".to_owned();
                }
                found
                    .iter()
                    .map(|a| {
                        format!(
                            "{}  {}  {:<8}  {} {}  observed {} (baseline {})  {}",
                            a.id,
                            a.detector.as_str(),
                            a.severity.as_str(),
                            a.subject_kind.as_str(),
                            a.subject,
                            a.observed,
                            a.baseline,
                            a.response.as_str()
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
