//! Development bootstrap: on the first `serve --dev` against an empty database,
//! create a demo merchant with a test secret key and a test publishable key and
//! print them once to standard output (never to the log).

use crate::domain::api_key::{KeyKind, Mode};
use crate::domain::merchant::MerchantName;
use crate::domain::restrictions::KeyRestrictions;
use crate::services::actor::Actor;
use crate::services::api_keys::{self, IssuedKey, KeyPolicy, NewKey};
use crate::services::key_hasher::KeyHasher;
use crate::services::{merchants, ServiceError};
use crate::store::Store;

/// What the bootstrap created.
pub struct DemoMerchant {
    pub merchant_id: String,
    pub secret: IssuedKey,
    pub publishable: IssuedKey,
}

/// Creates the demo merchant and keys unless any merchant exists.
pub async fn bootstrap(
    store: &Store,
    hasher: &KeyHasher,
    policy: &KeyPolicy,
) -> Result<Option<DemoMerchant>, ServiceError> {
    if !merchants::list(store, None, 1).await?.is_empty() {
        return Ok(None);
    }
    let actor = Actor::Operator {
        command: "serve --dev (demo bootstrap)".into(),
    };
    let name = MerchantName::parse("Demo Merchant")
        .map_err(|e| ServiceError::invalid("name", "invalid_name", e.to_string()))?;
    let merchant = merchants::create(store, &actor, name).await?;
    let issue = |kind| NewKey {
        merchant: merchant.id.clone(),
        kind,
        mode: Mode::Test,
        permissions: Vec::new(),
        restrictions: KeyRestrictions::default(),
        expires_in: None,
        description: Some("created by serve --dev".into()),
    };
    let secret = api_keys::issue(store, hasher, policy, &actor, issue(KeyKind::Secret)).await?;
    let publishable = api_keys::issue(store, hasher, policy, &actor, issue(KeyKind::Publishable)).await?;
    Ok(Some(DemoMerchant {
        merchant_id: merchant.id.to_string(),
        secret,
        publishable,
    }))
}

/// The one-time banner with the demo keys.
pub fn banner(demo: &DemoMerchant) -> String {
    format!(
        "\n  Demo merchant created: {}\n  Test secret key:       {}\n  Test publishable key:  {}\n  These keys are shown once. They are test-mode keys for local development only.\n",
        demo.merchant_id,
        demo.secret.secret.expose(),
        demo.publishable.secret.expose()
    )
}
