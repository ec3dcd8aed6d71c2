//! The merchant-supplied descriptive fields of payments and refunds:
//! description, metadata, customer e-mail and IP address, return URL, refund
//! reason. Each is bounded and free of control and invisible direction
//! characters, so nothing stored can break a log line, a dashboard or a
//! terminal.
//!
//! Each grammar is written once, in `patterns`, as the pattern the OpenAPI
//! document publishes (`api::field_schemas`), and each parser accepts exactly
//! the strings its pattern and length bound accept: a value the document
//! calls valid is never refused, and the reverse. `tests` checks every pair.

use std::collections::BTreeMap;
use std::net::IpAddr;

use super::merchant::is_bidi_control;

mod patterns;
#[cfg(test)]
mod tests;

use patterns::{full_match, EMAIL, IP, RETURN_URL};
pub use patterns::{EMAIL_PATTERN, IP_PATTERN, METADATA_KEY_PATTERN, PLAIN_TEXT_PATTERN, RETURN_URL_PATTERN};

pub const MAX_DESCRIPTION_CHARS: usize = 1000;
pub const MAX_METADATA_KEYS: usize = 20;
pub const MAX_METADATA_KEY_CHARS: usize = 40;
pub const MAX_METADATA_VALUE_CHARS: usize = 500;
pub const MAX_EMAIL_CHARS: usize = 254;
pub const MAX_URL_CHARS: usize = 2048;

/// A field that failed to parse: the parameter it names and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FieldError {
    pub param: String,
    pub message: String,
}

impl FieldError {
    fn new(param: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            message: message.into(),
        }
    }
}

fn plain_text(s: &str, max_chars: usize) -> bool {
    s.chars().count() <= max_chars && !s.chars().any(|c| c.is_control() || is_bidi_control(c))
}

/// A free-text description shown to the merchant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        if plain_text(input, MAX_DESCRIPTION_CHARS) {
            Ok(Self(input.to_owned()))
        } else {
            Err(FieldError::new(
                "description",
                format!("description must be at most {MAX_DESCRIPTION_CHARS} characters without control characters"),
            ))
        }
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Up to 20 string key/value pairs the merchant attaches for its own use.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Metadata(BTreeMap<String, String>);

impl Metadata {
    pub fn parse(input: BTreeMap<String, String>) -> Result<Self, FieldError> {
        if input.len() > MAX_METADATA_KEYS {
            return Err(FieldError::new(
                "metadata",
                format!("metadata may have at most {MAX_METADATA_KEYS} keys"),
            ));
        }
        for (key, value) in &input {
            let key_ok = !key.is_empty()
                && key.chars().count() <= MAX_METADATA_KEY_CHARS
                && key
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
            if !key_ok {
                return Err(FieldError::new(
                    "metadata",
                    format!(
                        "metadata keys are 1 to {MAX_METADATA_KEY_CHARS} characters of letters, digits, '_', '-' or '.'"
                    ),
                ));
            }
            if !plain_text(value, MAX_METADATA_VALUE_CHARS) {
                return Err(FieldError::new(
                    format!("metadata[{key}]"),
                    format!(
                        "metadata values are at most {MAX_METADATA_VALUE_CHARS} characters without control characters"
                    ),
                ));
            }
        }
        Ok(Self(input))
    }

    pub fn as_map(&self) -> &BTreeMap<String, String> {
        &self.0
    }
}

/// A customer's e-mail address ([`EMAIL_PATTERN`], at most 254 characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerEmail(String);

impl CustomerEmail {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        if input.chars().count() > MAX_EMAIL_CHARS || !full_match(&EMAIL, input) {
            return Err(FieldError::new(
                "customer_email",
                "customer_email is not a valid e-mail address",
            ));
        }
        Ok(Self(input.to_owned()))
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The customer's IP address ([`IP_PATTERN`]).
pub fn parse_customer_ip(input: &str) -> Result<IpAddr, FieldError> {
    let invalid = || FieldError::new("customer_ip", "customer_ip is not an IP address");
    if !full_match(&IP, input) {
        return Err(invalid());
    }
    input.parse().map_err(|_| invalid())
}

/// Where the customer's browser goes after authentication: an absolute
/// `https` URL (`http` only for loopback hosts, for local development),
/// without credentials ([`RETURN_URL_PATTERN`], at most 2048 characters).
/// Kept as `url` serialises it (host lower-cased, default port dropped).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnUrl(String);

impl ReturnUrl {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let invalid = || {
            FieldError::new(
                "return_url",
                "return_url must be an absolute https URL (http only for localhost)",
            )
        };
        if input.chars().count() > MAX_URL_CHARS || !full_match(&RETURN_URL, input) {
            return Err(invalid());
        }
        // The pattern already excludes everything below; the checks stay as
        // a second line of defence.
        let url = url::Url::parse(input).map_err(|_| invalid())?;
        let loopback = matches!(
            url.host(),
            Some(url::Host::Domain("localhost"))
                | Some(url::Host::Ipv4(std::net::Ipv4Addr::LOCALHOST))
                | Some(url::Host::Ipv6(std::net::Ipv6Addr::LOCALHOST))
        );
        let scheme_ok = url.scheme() == "https" || (url.scheme() == "http" && loopback);
        if !scheme_ok || url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
            return Err(invalid());
        }
        Ok(Self(url.into()))
    }

    pub fn from_trusted(stored: String) -> Self {
        Self(stored)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a merchant refunds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
}

impl RefundReason {
    pub const ALL: [RefundReason; 3] = [
        RefundReason::Duplicate,
        RefundReason::Fraudulent,
        RefundReason::RequestedByCustomer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefundReason::Duplicate => "duplicate",
            RefundReason::Fraudulent => "fraudulent",
            RefundReason::RequestedByCustomer => "requested_by_customer",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        match input {
            "duplicate" => Some(RefundReason::Duplicate),
            "fraudulent" => Some(RefundReason::Fraudulent),
            "requested_by_customer" => Some(RefundReason::RequestedByCustomer),
            _ => None,
        }
    }
}
