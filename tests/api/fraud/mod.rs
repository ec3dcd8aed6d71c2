//! The fraud engine through the API, on both backends: rule sets (validation
//! with line and column, versions, activation), lists, who may read and
//! change them (permissions, key kinds, modes, merchants), and the screening
//! of every confirm before the processor (`screening`), proven with the
//! processor double that counts the calls reaching it.

mod dry_run;
mod reviews;
mod rules;
mod screening;
mod signals;
mod thresholds;

use paywarden::domain::api_key::{KeyKind, Mode};
use paywarden::domain::ids::MerchantId;
use serde_json::{json, Value};

use crate::support::{new_key, TestApp};

/// A secret key of `merchant` in `mode`.
async fn secret_key(app: &TestApp, merchant: &MerchantId, mode: Mode) -> String {
    let mut new = new_key(merchant, KeyKind::Secret, &[]);
    new.mode = mode;
    app.issue(new).await.secret.expose().to_owned()
}

/// Saves `rules` with `key`, expecting it accepted; returns the answer.
async fn save_rules(app: &TestApp, key: &str, rules: &str) -> Value {
    let r = app.post("/v1/fraud/rules", key, &json!({ "rules": rules })).await;
    let status = r.status();
    let body: Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    body
}
