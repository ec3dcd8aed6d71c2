//! The OAuth 2.0 client-credentials access token of one PayPal REST app:
//! fetched with `POST /v1/oauth2/token` (HTTP Basic with the client id and
//! secret, form body `grant_type=client_credentials`), cached until shortly
//! before its `expires_in` runs out, and dropped when PayPal answers a call
//! with 401 so that the next call fetches a fresh one.
//!
//! Invariants: the client secret and the token live only in secret types
//! (their `Debug` prints nothing) and are never logged; one fetch at a time
//! per connector (the lock is held across the fetch, so concurrent calls
//! wait for one token instead of each asking for their own); a token call
//! has no effect on any payment, so its failures are never "unknown".

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use subtle::ConstantTimeEq;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::wire::{identifier, Token};
use crate::connectors::http::HttpClient;
use crate::connectors::ConnectorError;

/// A token is refreshed this long before it expires (PayPal's last 9 hours).
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);

struct Cached {
    token: SecretString,
    fresh_until: Instant,
}

/// One REST app's credentials and its cached token.
pub struct Tokens {
    client_id: String,
    client_secret: SecretString,
    cached: Mutex<Option<Cached>>,
}

/// An OAuth error answer (`{"error": "invalid_client", ...}`): not the REST
/// error shape.
#[derive(serde::Deserialize)]
struct OauthError {
    #[serde(default)]
    error: Option<String>,
}

impl Tokens {
    pub fn new(client_id: String, client_secret: SecretString) -> Self {
        Self {
            client_id,
            client_secret,
            cached: Mutex::new(None),
        }
    }

    /// A valid token: the cached one, or a fresh one from PayPal.
    pub async fn get(&self, http: &HttpClient, base: &str) -> Result<SecretString, ConnectorError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.fresh_until) {
            return Ok(c.token.clone());
        }
        let fetched = self.fetch(http, base).await?;
        let token = fetched.token.clone();
        *cached = Some(fetched);
        Ok(token)
    }

    /// Forgets `token` (PayPal refused it), unless another call has already
    /// replaced it.
    pub async fn invalidate(&self, token: &SecretString) {
        let mut cached = self.cached.lock().await;
        let same = |c: &Cached| {
            bool::from(
                c.token
                    .expose_secret()
                    .as_bytes()
                    .ct_eq(token.expose_secret().as_bytes()),
            )
        };
        if cached.as_ref().is_some_and(same) {
            *cached = None;
        }
    }

    async fn fetch(&self, http: &HttpClient, base: &str) -> Result<Cached, ConnectorError> {
        let request = http
            .request(reqwest::Method::POST, &format!("{base}/v1/oauth2/token"))
            .basic_auth(&self.client_id, Some(self.client_secret.expose_secret()))
            .header(reqwest::header::ACCEPT, "application/json")
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials");
        let asked = Instant::now();
        // Nothing about a payment happened yet: every failure is an outage.
        let response = http
            .send(request)
            .await
            .map_err(|e| ConnectorError::Unavailable(format!("PayPal's token call failed: {e}")))?;
        match response.status {
            200 => {
                let token: Token = serde_json::from_slice(&response.body)
                    .map_err(|_| ConnectorError::Unavailable("PayPal's token answer could not be read".into()))?;
                let lifetime = Duration::from_secs(token.expires_in);
                let margin = REFRESH_MARGIN.min(lifetime / 2);
                Ok(Cached {
                    token: SecretString::from(token.access_token),
                    fresh_until: asked + lifetime.saturating_sub(margin),
                })
            }
            400 | 401 | 403 => {
                let error = serde_json::from_slice::<OauthError>(&response.body)
                    .ok()
                    .and_then(|e| e.error);
                let error = error.map(|e| e.to_ascii_uppercase());
                Err(ConnectorError::Configuration(format!(
                    "PayPal refused the connection's client id and secret (HTTP {}, {}): set the REST app's \
                     credentials of this mode (sandbox for test, live for live)",
                    response.status,
                    identifier(error.as_deref()).to_ascii_lowercase()
                )))
            }
            status => Err(ConnectorError::Unavailable(format!(
                "PayPal's token call answered HTTP {status}"
            ))),
        }
    }
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Tokens(***)")
    }
}
