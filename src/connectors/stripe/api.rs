//! One call to the Stripe API: authentication, the pinned `Stripe-Version`,
//! the `Idempotency-Key` of every POST, `Retry-After` on 429, and the answer
//! sorted into a parsed object, a Stripe error, or a [`ConnectorError`].
//!
//! Invariants: every POST carries an idempotency key (a retry is the same
//! call, which Stripe answers by replaying its first response); a 429 is
//! retried only for a call that is idempotent and only after the delay the
//! processor asked for, when that is short; no response body is logged.

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::wire::{ApiError, ErrorEnvelope, Form};
use super::STRIPE_VERSION;
use crate::connectors::http::{HttpClient, TransportError};
use crate::connectors::ConnectorError;

/// A request to Stripe.
pub struct Request {
    post: bool,
    path: String,
    query: Vec<(&'static str, String)>,
    form: Option<Form>,
    idempotency_key: Option<String>,
}

impl Request {
    /// A POST: always with an idempotency key.
    pub fn post(path: String, form: Form, idempotency_key: String) -> Self {
        Self {
            post: true,
            path,
            query: Vec::new(),
            form: Some(form),
            idempotency_key: Some(idempotency_key),
        }
    }

    pub fn get(path: String) -> Self {
        Self {
            post: false,
            path,
            query: Vec::new(),
            form: None,
            idempotency_key: None,
        }
    }

    pub fn query(mut self, key: &'static str, value: String) -> Self {
        self.query.push((key, value));
        self
    }

    /// GETs are safe to repeat; a POST is when it carries its key.
    fn idempotent(&self) -> bool {
        !self.post || self.idempotency_key.is_some()
    }
}

/// Stripe's answer: the object, or a Stripe error (not a 5xx, not a 429,
/// which the call has already made a [`ConnectorError`] of).
pub enum Answer<T> {
    Ok(T),
    Failed { status: u16, error: Option<ApiError> },
}

/// The account's API endpoint and key.
pub struct Api {
    pub http: HttpClient,
    /// Without a trailing slash, e.g. `https://api.stripe.com`.
    pub base: String,
    pub key: SecretString,
    /// The longest `Retry-After` waited for; a longer one fails the call.
    pub max_retry_after: Duration,
    /// Retries of a rate-limited call at most.
    pub max_retries: u32,
}

impl Api {
    pub async fn call<T: DeserializeOwned>(&self, request: Request) -> Result<Answer<T>, ConnectorError> {
        let mut attempt = 0;
        loop {
            let response = self
                .send(&request)
                .await
                .map_err(|e| e.into_connector_error(request.post))?;
            match response.status {
                200..=299 => {
                    return match serde_json::from_slice(&response.body) {
                        Ok(object) => Ok(Answer::Ok(object)),
                        // The call went through and did something we cannot
                        // read: after a POST its effect is unknown.
                        Err(_) if request.post => Err(ConnectorError::Timeout),
                        Err(_) => Err(ConnectorError::Unavailable("Stripe's answer could not be read".into())),
                    };
                }
                429 if request.idempotent() && attempt < self.max_retries => match response.retry_after {
                    Some(delay) if delay <= self.max_retry_after => {
                        attempt += 1;
                        tokio::time::sleep(delay).await;
                    }
                    _ => return Err(super::mapping::error_answer(429, None, request.post)),
                },
                status @ (429 | 500..=599) => return Err(super::mapping::error_answer(status, None, request.post)),
                status => {
                    let error = serde_json::from_slice::<ErrorEnvelope>(&response.body)
                        .ok()
                        .map(|e| e.error);
                    return Ok(Answer::Failed { status, error });
                }
            }
        }
    }

    async fn send(&self, request: &Request) -> Result<crate::connectors::http::HttpResponse, TransportError> {
        let url = format!("{}{}", self.base, request.path);
        let method = if request.post {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let mut builder = self
            .http
            .request(method, &url)
            .bearer_auth(self.key.expose_secret())
            .header("Stripe-Version", STRIPE_VERSION)
            .header(reqwest::header::ACCEPT, "application/json");
        if !request.query.is_empty() {
            builder = builder.query(&request.query);
        }
        if let Some(key) = &request.idempotency_key {
            builder = builder.header("Idempotency-Key", key);
        }
        if let Some(form) = &request.form {
            builder = builder
                .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.clone().into_body());
        }
        self.http.send(builder).await
    }
}

/// `id` as one path segment, if it looks like a Stripe id (letters, digits
/// and `_`): a stored reference can never reach another path.
pub fn segment(id: &str) -> Result<&str, ConnectorError> {
    if !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        Ok(id)
    } else {
        Err(ConnectorError::Rejected(
            "the processor reference is not a Stripe id".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stripe_ids_become_path_segments() {
        assert_eq!(segment("pi_3Nx9Ab"), Ok("pi_3Nx9Ab"));
        for bad in ["", "pi_1/../../v1/refunds", "pi_1?x=1", "pi 1", "pi_1%2F"] {
            assert!(segment(bad).is_err(), "{bad}");
        }
    }
}
