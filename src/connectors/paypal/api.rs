//! One call to PayPal's REST API: the bearer token (refreshed once on a 401,
//! then the call retried once), the `PayPal-Request-Id` of every POST,
//! `Prefer: return=representation`, `Retry-After` on 429, and the answer
//! sorted into a parsed object, a PayPal error, or a [`ConnectorError`].
//!
//! Invariants: every POST carries a `PayPal-Request-Id` derived by the
//! caller from our ids (a retry is the same call, which PayPal answers with
//! its first result); a call is retried only when it carries one (or is a
//! GET): after a 401 (PayPal did nothing with a refused token) and after a
//! 429 whose `Retry-After` is short; no response body is logged.

use std::time::Duration;

use secrecy::ExposeSecret;
use serde::de::DeserializeOwned;

use super::token::Tokens;
use super::wire::{ApiError, JsonBody};
use crate::connectors::http::{HttpClient, HttpResponse, TransportError};
use crate::connectors::ConnectorError;

/// A request to PayPal.
pub struct Request {
    post: bool,
    path: String,
    body: Option<JsonBody>,
    request_id: Option<String>,
}

impl Request {
    /// A POST: always with its `PayPal-Request-Id`.
    pub fn post(path: String, body: JsonBody, request_id: String) -> Self {
        Self {
            post: true,
            path,
            body: Some(body),
            request_id: Some(request_id),
        }
    }

    pub fn get(path: String) -> Self {
        Self {
            post: false,
            path,
            body: None,
            request_id: None,
        }
    }
}

/// PayPal's answer: the object, or a PayPal error (not a 5xx, not a 429,
/// not a 401, which the call has already made a [`ConnectorError`] of).
pub enum Answer<T> {
    Ok(T),
    Failed { status: u16, error: Option<ApiError> },
}

/// The REST app's endpoint and token.
pub struct Api {
    pub http: HttpClient,
    /// Without a trailing slash, e.g. `https://api-m.sandbox.paypal.com`.
    pub base: String,
    pub tokens: Tokens,
    /// The longest `Retry-After` waited for; a longer one fails the call.
    pub max_retry_after: Duration,
    /// Retries of a rate-limited call at most.
    pub max_retries: u32,
}

impl Api {
    pub async fn call<T: DeserializeOwned>(&self, request: &Request) -> Result<Answer<T>, ConnectorError> {
        let mut rate_limited = 0;
        let mut refreshed = false;
        loop {
            let token = self.tokens.get(&self.http, &self.base).await?;
            let response = self
                .send(request, token.expose_secret())
                .await
                .map_err(|e| e.into_connector_error(request.post))?;
            match response.status {
                200..=299 => {
                    // A 204 (a void) has no body: read as an empty object.
                    let body: &[u8] = if response.body.is_empty() {
                        b"{}"
                    } else {
                        &response.body
                    };
                    return match serde_json::from_slice(body) {
                        Ok(object) => Ok(Answer::Ok(object)),
                        // The call went through and did something we cannot
                        // read: after a POST its effect is unknown.
                        Err(_) if request.post => Err(ConnectorError::Timeout),
                        Err(_) => Err(ConnectorError::Unavailable("PayPal's answer could not be read".into())),
                    };
                }
                // The token expired or was revoked early: one fresh token,
                // one more try (PayPal did nothing with the refused call).
                401 if !refreshed => {
                    refreshed = true;
                    self.tokens.invalidate(&token).await;
                }
                429 if rate_limited < self.max_retries => match response.retry_after {
                    Some(delay) if delay <= self.max_retry_after => {
                        rate_limited += 1;
                        tokio::time::sleep(delay).await;
                    }
                    _ => return Err(super::mapping::error_answer(429, None, request.post)),
                },
                status @ (401 | 429 | 500..=599) => {
                    return Err(super::mapping::error_answer(status, None, request.post))
                }
                status => {
                    let error = serde_json::from_slice::<ApiError>(&response.body).ok();
                    return Ok(Answer::Failed { status, error });
                }
            }
        }
    }

    async fn send(&self, request: &Request, token: &str) -> Result<HttpResponse, TransportError> {
        let url = format!("{}{}", self.base, request.path);
        let method = if request.post {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let mut builder = self
            .http
            .request(method, &url)
            .bearer_auth(token)
            .header(reqwest::header::ACCEPT, "application/json");
        if let Some(id) = &request.request_id {
            builder = builder.header("PayPal-Request-Id", id);
        }
        if let Some(body) = &request.body {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header("Prefer", "return=representation")
                .body(body.clone().into_body());
        }
        self.http.send(builder).await
    }
}

/// `id` as one path segment, if it looks like a PayPal id (letters, digits
/// and `-`): a stored reference can never reach another path.
pub fn segment(id: &str) -> Result<&str, ConnectorError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        Ok(id)
    } else {
        Err(ConnectorError::Rejected(
            "the processor reference is not a PayPal id".into(),
        ))
    }
}

/// The `PayPal-Request-Id` of one step of one operation on `id`.
pub fn request_id(id: &str, step: &str) -> String {
    format!("paywarden-{id}-{step}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paypal_ids_become_path_segments() {
        assert_eq!(segment("5O190127TN364715T"), Ok("5O190127TN364715T"));
        for bad in [
            "",
            "5O19/../../v1/oauth2/token",
            "5O19?x=1",
            "5O19 1",
            "5O19%2F",
            "pay_1",
        ] {
            assert!(segment(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn request_ids_are_derived_from_the_id_and_the_step() {
        assert_eq!(request_id("pay_1", "order"), "paywarden-pay_1-order");
        assert_ne!(request_id("pay_1", "order"), request_id("pay_1", "authorize"));
        assert_ne!(request_id("pay_1", "order"), request_id("pay_2", "order"));
    }
}
