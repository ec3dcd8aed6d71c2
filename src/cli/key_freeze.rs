//! `paywarden keys freeze|unfreeze KEY_ID`: the operator's freeze of a single
//! API key (`services::key_freeze`), audited; `--json` prints the key with
//! its freeze. Unfreezing needs a step-up.

use serde_json::json;

use crate::api::views::ApiKeyView;
use crate::domain::api_key::ApiKey;
use crate::domain::ids::ApiKeyId;
use crate::domain::merchant::FreezeReason;
use crate::services::key_freeze;
use crate::services::Store;

use super::context::CliContext;
use super::output;

/// The key as `keys list` shows it, with its merchant and its freeze.
fn view(key: &ApiKey) -> serde_json::Value {
    let mut value = json!(ApiKeyView::from(key));
    if let Some(obj) = value.as_object_mut() {
        obj.insert("merchant".into(), key.merchant_id.as_str().into());
        let frozen = key
            .frozen
            .as_ref()
            .map(|f| json!({ "at": f.at.as_secs(), "reason": f.reason.as_str() }));
        obj.insert("frozen".into(), frozen.unwrap_or(serde_json::Value::Null));
    }
    value
}

fn reason(raw: &str) -> anyhow::Result<FreezeReason> {
    FreezeReason::parse(raw).map_err(|e| anyhow::anyhow!("--reason: {e}"))
}

pub async fn freeze(ctx: &CliContext, store: &Store, id: &str, why: &str) -> anyhow::Result<()> {
    let key = key_freeze::freeze(store, &ctx.actor("key freeze"), &ApiKeyId::parse(id)?, reason(why)?).await?;
    output::print(ctx.json, &view(&key), || {
        format!("froze key {}: refused from now on, on every replica", key.id)
    });
    Ok(())
}

/// Unfreezing widens access again: it needs a step-up (`cli::step_up`).
pub async fn unfreeze(ctx: &CliContext, store: &Store, id: &str, why: &str) -> anyhow::Result<()> {
    let (id, why) = (ApiKeyId::parse(id)?, reason(why)?);
    let actor = super::step_up::actor(ctx, store, "key unfreeze").await?;
    let key = key_freeze::unfreeze(store, &actor, &id, why).await?;
    output::print(ctx.json, &view(&key), || format!("unfroze key {}", key.id));
    Ok(())
}
