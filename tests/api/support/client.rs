//! What a test does through its app: requests to the main gateway,
//! merchants and keys made by the operator, the audit trail.

use std::time::Duration;

use paywarden::domain::api_key::KeyKind;
use paywarden::domain::audit::AuditRecord;
use paywarden::domain::ids::MerchantId;
use paywarden::domain::merchant::MerchantName;
use paywarden::domain::permission::Permission;
use paywarden::services::api_keys::{self, IssuedKey, KeyPolicy, NewKey};
use paywarden::services::merchants;
use paywarden::store;
use serde_json::Value;

use super::app::TestApp;
use super::fixtures::{new_key, operator};

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.main.base, path)
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.main.client
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.client().get(self.url(path)).bearer_auth(key).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.client()
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn merchant(&self, name: &str) -> MerchantId {
        merchants::create(&self.store, &operator(), MerchantName::parse(name).unwrap())
            .await
            .unwrap()
            .id
    }

    pub async fn issue(&self, new: NewKey) -> IssuedKey {
        api_keys::issue(&self.store, &self.hasher, &KeyPolicy::default(), &operator(), new)
            .await
            .unwrap()
    }

    pub async fn key(&self, merchant: &MerchantId, kind: KeyKind, permissions: &[Permission]) -> IssuedKey {
        self.issue(new_key(merchant, kind, permissions)).await
    }

    /// A merchant with a test secret key: `(merchant, "sk_test_…")`.
    pub async fn merchant_with_secret(&self, name: &str) -> (MerchantId, String) {
        let m = self.merchant(name).await;
        let k = self.key(&m, KeyKind::Secret, &[]).await;
        (m, k.secret.expose().to_owned())
    }

    pub async fn audit(&self) -> Vec<AuditRecord> {
        store::audit::page(self.store.reader(), 0, 1_000_000).await.unwrap()
    }

    /// Waits (up to 10 s) until the audit trail satisfies `pred`.
    pub async fn wait_for_audit(&self, pred: impl Fn(&[AuditRecord]) -> bool) -> Vec<AuditRecord> {
        for _ in 0..200 {
            let records = self.audit().await;
            if pred(&records) {
                return records;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let records = self.audit().await;
        panic!(
            "audit trail never satisfied the condition; it holds {} entries: {:#?}",
            records.len(),
            records
                .iter()
                .map(|r| (&r.event.action, &r.event.resource, &r.event.reason))
                .collect::<Vec<_>>()
        );
    }
}

pub fn client_trusting(cert_pem: &[u8]) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(cert_pem).unwrap())
        .user_agent("paywarden-tests")
        .build()
        .unwrap()
}
