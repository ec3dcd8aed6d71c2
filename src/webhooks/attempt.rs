//! One HTTP attempt of a delivery: the URL policy checked again, the event
//! signed with the endpoint's current (and overlapping previous) secret,
//! POSTed through the client of the endpoint's mode, cut at the attempt
//! deadline, and classified.
//!
//! Invariants: secrets are opened for the signature only and never logged;
//! an attempt never outlasts [`WebhookSettings::attempt_deadline`]; a failure
//! is reported as a short stable class, never as error text (which could
//! carry internal addresses).

use std::time::Instant;

use crate::domain::api_key::Mode;
use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::webhook_endpoints::{EndpointRow, SealedColumns};
use crate::vault::{KekProvider, VaultError};

use super::payload::Event;
use super::settings::WebhookSettings;
use super::{secret, signature, ssrf};

/// What one HTTP attempt came to.
#[derive(Debug, Clone)]
pub struct Sent {
    pub status_code: Option<i64>,
    pub error: Option<&'static str>,
    pub duration_ms: i64,
}

impl Sent {
    /// An attempt that never reached the network.
    pub fn not_sent(error: &'static str) -> Self {
        Self {
            status_code: None,
            error: Some(error),
            duration_ms: 0,
        }
    }

    pub fn delivered(&self) -> bool {
        self.status_code.is_some_and(|c| (200..300).contains(&c))
    }
}

/// The secrets that sign now: the current one, and the previous one while
/// its overlap lasts.
pub fn secrets(keyring: &dyn KekProvider, e: &EndpointRow) -> Result<Vec<secret::WebhookSecret>, VaultError> {
    let malformed = || VaultError::Malformed("webhook secret columns");
    let current = SealedColumns {
        kek_version: e.kek_version.ok_or_else(malformed)?,
        wrapped_dek: e.secret_wrapped_dek.clone().ok_or_else(malformed)?,
        ciphertext: e.secret_ciphertext.clone().ok_or_else(malformed)?,
    };
    let mut secrets = vec![secret::open(keyring, &e.id, &e.merchant_id, &current)?];
    let now = Timestamp::now().as_millis();
    if let (Some(v), Some(w), Some(c), Some(until)) = (
        e.previous_kek_version,
        &e.previous_wrapped_dek,
        &e.previous_ciphertext,
        e.previous_expires_at,
    ) {
        if until > now {
            let previous = SealedColumns {
                kek_version: v,
                wrapped_dek: w.clone(),
                ciphertext: c.clone(),
            };
            secrets.push(secret::open(keyring, &e.id, &e.merchant_id, &previous)?);
        }
    }
    Ok(secrets)
}

/// POSTs `event` to `endpoint`, signed with `secrets`.
pub async fn send(
    settings: &WebhookSettings,
    endpoint: &EndpointRow,
    event: &EventRow,
    secrets: &[secret::WebhookSecret],
) -> Sent {
    let started = Instant::now();
    let elapsed = |started: Instant| i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let failed = |error: &'static str| Sent {
        status_code: None,
        error: Some(error),
        duration_ms: elapsed(started),
    };
    let mode = Mode::parse(&endpoint.mode).unwrap_or(Mode::Live);
    // The URL policy again: it may have changed since the endpoint was
    // created (e.g. dev mode off). Names are checked by the live client's
    // resolver, at connect time.
    let url = match ssrf::check_url(&endpoint.url, mode, settings.dev) {
        Ok(u) => u,
        Err(ssrf::UrlError::NonPublicAddress) => return failed("blocked_address"),
        Err(_) => return failed("invalid_url"),
    };
    let body = Event::from_row(event)
        .ok()
        .and_then(|event| (settings.payloads.event)(event).ok());
    let Some(body) = body else {
        return failed("invalid_event");
    };
    let timestamp = Timestamp::now().as_secs();
    let header = signature::header_value(
        secrets.iter().map(secret::WebhookSecret::expose_secret),
        timestamp,
        &body,
    );
    let client = match mode {
        Mode::Live => &settings.live_client,
        Mode::Test => &settings.test_client,
    };
    let result = client
        .post(url.url().clone())
        .timeout(settings.attempt_deadline())
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(signature::HEADER, header)
        .body(body)
        .send()
        .await;
    match result {
        Ok(response) => Sent {
            status_code: Some(i64::from(response.status().as_u16())),
            error: None,
            duration_ms: elapsed(started),
        },
        Err(e) => failed(classify(&e)),
    }
}

/// A short, stable class for a failed request (shown through the API; never
/// the error text, which could carry internal addresses).
fn classify(e: &reqwest::Error) -> &'static str {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(s) = source {
        if s.downcast_ref::<ssrf::BlockedAddress>().is_some() {
            return "blocked_address";
        }
        if s.downcast_ref::<rustls::Error>().is_some() {
            return "tls_error";
        }
        source = s.source();
    }
    if e.is_timeout() {
        "timeout"
    } else if e.is_connect() {
        "connection_failed"
    } else {
        "request_failed"
    }
}
