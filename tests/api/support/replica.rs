//! One running gateway of a test (a "replica"), and its client.

use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// One running gateway (a "replica") with an HTTPS client that trusts its
/// certificate (verification on, never disabled).
pub struct Replica {
    pub base: String,
    /// The operator listener's base URL (`/metrics`, `/readyz`).
    pub operator: String,
    pub client: reqwest::Client,
    pub(super) shutdown: Option<oneshot::Sender<()>>,
    pub(super) server: Option<JoinHandle<()>>,
}

impl Replica {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn get(&self, path: &str, key: &str) -> reqwest::Response {
        self.client.get(self.url(path)).bearer_auth(key).send().await.unwrap()
    }

    pub async fn post(&self, path: &str, key: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(path))
            .bearer_auth(key)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    pub async fn stop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }
}
