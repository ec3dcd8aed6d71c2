//! `paywarden key create|list|rotate|revoke|revoke-all|freeze|unfreeze`
//! (creating a key holding `tokens:reveal`, and unfreezing, need a step-up).

use std::process::ExitCode;

use clap::{Subcommand, ValueEnum};
use ipnet::IpNet;
use serde_json::json;

use crate::api::views::ApiKeyView;
use crate::domain::api_key::{KeyKind, Mode};
use crate::domain::ids::{ApiKeyId, MerchantId};
use crate::domain::money::Currency;
use crate::domain::permission::Permission;
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::time::parse_duration;
use crate::server::key_policy;
use crate::services::api_keys::{self, IssuedKey, NewKey};

use super::context::CliContext;
use super::output;

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KindArg {
    Secret,
    Publishable,
    Restricted,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ModeArg {
    Test,
    Live,
}

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Issue a key; its plaintext is printed once.
    Create {
        #[arg(long, value_name = "MERCHANT_ID")]
        merchant: String,
        #[arg(long, value_enum)]
        kind: KindArg,
        #[arg(long, value_enum, default_value = "test")]
        mode: ModeArg,
        /// A permission of a restricted key, e.g. payments:read (repeatable).
        #[arg(long = "permission", value_name = "P")]
        permissions: Vec<String>,
        /// Largest payment amount in minor units.
        #[arg(long)]
        max_amount: Option<i64>,
        /// An allowed currency (repeatable).
        #[arg(long = "currency", value_name = "C")]
        currencies: Vec<String>,
        /// An allowed client IP range in CIDR notation (repeatable).
        #[arg(long = "allow-ip", value_name = "CIDR")]
        allow_ips: Vec<String>,
        /// Lifetime, e.g. 90d, 24h (live keys: required ≤ the configured maximum; default the maximum).
        #[arg(long, value_name = "DURATION")]
        expires_in: Option<String>,
        #[arg(long)]
        description: Option<String>,
    },
    /// List a merchant's keys (prefix and last four only).
    List {
        #[arg(long, value_name = "MERCHANT_ID")]
        merchant: String,
    },
    /// Replace a key; the old one keeps working for the grace period.
    Rotate {
        id: String,
        #[arg(long, value_name = "DURATION", default_value = "24h")]
        grace: String,
    },
    /// Revoke a key: refused from the next request on.
    Revoke { id: String },
    /// Revoke every key of a merchant at once (incident response).
    RevokeAll {
        #[arg(long, value_name = "MERCHANT_ID")]
        merchant: String,
    },
    /// Freeze one key: refused (403 key_frozen) from the next request on,
    /// on every replica, until unfrozen. Requests already running finish.
    Freeze {
        #[arg(value_name = "KEY_ID")]
        id: String,
        /// Why (kept with the freeze and in the audit trail).
        #[arg(long, default_value = "frozen by the operator")]
        reason: String,
    },
    /// Lift a key's freeze (operator only: no API route can).
    Unfreeze {
        #[arg(value_name = "KEY_ID")]
        id: String,
        /// Why (kept in the audit trail).
        #[arg(long, default_value = "unfrozen by the operator")]
        reason: String,
    },
}

pub async fn run(ctx: CliContext, cmd: KeyCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    match cmd {
        KeyCommand::Create {
            merchant,
            kind,
            mode,
            permissions,
            max_amount,
            currencies,
            allow_ips,
            expires_in,
            description,
        } => {
            let new = NewKey {
                merchant: MerchantId::parse(&merchant)?,
                kind: match kind {
                    KindArg::Secret => KeyKind::Secret,
                    KindArg::Publishable => KeyKind::Publishable,
                    KindArg::Restricted => KeyKind::Restricted,
                },
                mode: match mode {
                    ModeArg::Test => Mode::Test,
                    ModeArg::Live => Mode::Live,
                },
                permissions: permissions
                    .iter()
                    .map(|p| {
                        p.parse::<Permission>()
                            .map_err(|e| anyhow::anyhow!("--permission {p}: {e}"))
                    })
                    .collect::<Result<_, _>>()?,
                restrictions: KeyRestrictions {
                    max_amount: match max_amount {
                        Some(n) if n <= 0 => {
                            anyhow::bail!("--max-amount must be a positive integer in minor units")
                        }
                        other => other,
                    },
                    currencies: currencies
                        .iter()
                        .map(|c| Currency::parse(c).map_err(|e| anyhow::anyhow!("--currency {c}: {e}")))
                        .collect::<Result<_, _>>()?,
                    allowed_ips: allow_ips.iter().map(|c| parse_cidr(c)).collect::<Result<_, _>>()?,
                },
                expires_in: expires_in
                    .as_deref()
                    .map(parse_duration)
                    .transpose()
                    .map_err(|e| anyhow::anyhow!("--expires-in: {e}"))?,
                description,
            };
            let (hasher, policy) = (ctx.hasher()?, key_policy(&ctx.config)?);
            // A key that may reveal card numbers exposes data: step-up.
            let actor = if new.permissions.contains(&Permission::TokensReveal) {
                super::step_up::actor(&ctx, &store, "key create").await?
            } else {
                ctx.actor("key create")
            };
            let issued = api_keys::issue(&store, &hasher, &policy, &actor, new).await?;
            print_issued(&ctx, &issued, "created");
        }
        KeyCommand::List { merchant } => {
            let merchant = MerchantId::parse(&merchant)?;
            let list = api_keys::list(&store, api_keys::ListScope::Merchant(&merchant), None, 1000).await?;
            let views: Vec<ApiKeyView> = list.iter().map(ApiKeyView::from).collect();
            output::print(ctx.json, &json!({ "data": views }), || {
                views
                    .iter()
                    .map(|v| {
                        let state = if v.revoked_at.is_some() {
                            "revoked"
                        } else if v.rotated_to.is_some() {
                            "rotated"
                        } else {
                            "active"
                        };
                        format!("{}  {}  {:?}  {}", v.id, v.redacted, v.kind, state)
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeyCommand::Rotate { id, grace } => {
            let grace = parse_duration(&grace).map_err(|e| anyhow::anyhow!("--grace: {e}"))?;
            let issued = api_keys::rotate(
                &store,
                &ctx.hasher()?,
                &ctx.actor("key rotate"),
                api_keys::KeyScope::Operator,
                &ApiKeyId::parse(&id)?,
                grace,
            )
            .await?;
            print_issued(&ctx, &issued, "rotated; new key");
        }
        KeyCommand::Revoke { id } => {
            let key = api_keys::revoke(
                &store,
                &ctx.actor("key revoke"),
                api_keys::KeyScope::Operator,
                &ApiKeyId::parse(&id)?,
            )
            .await?;
            output::print(ctx.json, &json!(ApiKeyView::from(&key)), || {
                format!("revoked {}", key.id)
            });
        }
        KeyCommand::RevokeAll { merchant } => {
            let merchant = MerchantId::parse(&merchant)?;
            let revoked = api_keys::revoke_all(&store, &ctx.actor("key revoke-all"), &merchant).await?;
            let views: Vec<ApiKeyView> = revoked.iter().map(ApiKeyView::from).collect();
            output::print(ctx.json, &json!({ "revoked": views }), || {
                format!("revoked {} key(s) of merchant {merchant}", views.len())
            });
        }
        KeyCommand::Freeze { id, reason } => super::key_freeze::freeze(&ctx, &store, &id, &reason).await?,
        KeyCommand::Unfreeze { id, reason } => super::key_freeze::unfreeze(&ctx, &store, &id, &reason).await?,
    }
    store.close().await;
    Ok(ExitCode::SUCCESS)
}

fn parse_cidr(raw: &str) -> anyhow::Result<IpNet> {
    raw.parse::<IpNet>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(IpNet::from))
        .map_err(|_| anyhow::anyhow!("--allow-ip {raw}: expected CIDR notation such as 203.0.113.0/24"))
}

fn print_issued(ctx: &CliContext, issued: &IssuedKey, verb: &str) {
    let mut value = json!(ApiKeyView::from(&issued.key));
    if let Some(obj) = value.as_object_mut() {
        obj.insert("secret".into(), issued.secret.expose().into());
        obj.insert("merchant".into(), issued.key.merchant_id.as_str().into());
    }
    output::print(ctx.json, &value, || {
        format!(
            "{verb} {} for merchant {}\n{}\nStore it now: it will not be shown again.",
            issued.key.id,
            issued.key.merchant_id,
            issued.secret.expose()
        )
    });
}
