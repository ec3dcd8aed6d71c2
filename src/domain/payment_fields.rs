//! The merchant-supplied descriptive fields of payments and refunds:
//! description, metadata, customer e-mail, return URL, refund reason. Each is
//! bounded and free of control and invisible direction characters, so nothing
//! stored can break a log line, a dashboard or a terminal.

use std::collections::BTreeMap;

use super::merchant::is_bidi_control;

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

/// A customer's e-mail address: one `@`, a dotted domain, no spaces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerEmail(String);

impl CustomerEmail {
    pub fn parse(input: &str) -> Result<Self, FieldError> {
        let invalid = || FieldError::new("customer_email", "customer_email is not a valid e-mail address");
        if input.len() > MAX_EMAIL_CHARS || !plain_text(input, MAX_EMAIL_CHARS) || input.contains(char::is_whitespace) {
            return Err(invalid());
        }
        let (local, domain) = input.split_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && domain.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '-'));
        if local.is_empty() || local.len() > 64 || !domain_ok || local.contains(['<', '>', '"', '\\']) {
            return Err(invalid());
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

/// Where the customer's browser goes after authentication: an absolute
/// `https` URL (`http` only for loopback hosts, for local development),
/// without credentials.
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
        if input.len() > MAX_URL_CHARS {
            return Err(invalid());
        }
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RefundReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
}

impl RefundReason {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_is_bounded() {
        let ok: BTreeMap<_, _> = (0..20).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert!(Metadata::parse(ok).is_ok());
        let too_many: BTreeMap<_, _> = (0..21).map(|i| (format!("k{i}"), "v".to_owned())).collect();
        assert_eq!(Metadata::parse(too_many).unwrap_err().param, "metadata");
        let long_value = BTreeMap::from([("order".to_owned(), "x".repeat(501))]);
        assert_eq!(Metadata::parse(long_value).unwrap_err().param, "metadata[order]");
        let bad_key = BTreeMap::from([("a b".to_owned(), "x".to_owned())]);
        assert!(Metadata::parse(bad_key).is_err());
        let bidi = BTreeMap::from([("k".to_owned(), "abc\u{202E}def".to_owned())]);
        assert!(Metadata::parse(bidi).is_err());
    }

    #[test]
    fn emails_need_a_local_part_and_a_dotted_domain() {
        assert!(CustomerEmail::parse("jane@example.com").is_ok());
        for bad in [
            "jane",
            "@example.com",
            "jane@example",
            "jane doe@example.com",
            "a@b.c\n",
            "<a>@b.com",
        ] {
            assert!(CustomerEmail::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn return_urls_are_https_except_on_loopback() {
        assert!(ReturnUrl::parse("https://shop.example/done?order=1").is_ok());
        assert!(ReturnUrl::parse("http://localhost:3000/done").is_ok());
        assert!(ReturnUrl::parse("http://127.0.0.1/done").is_ok());
        for bad in [
            "http://shop.example/done",
            "javascript:alert(1)",
            "https://user:pw@shop.example/",
            "/relative",
            "data:text/html,hi",
        ] {
            assert!(ReturnUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn descriptions_reject_control_characters() {
        assert!(Description::parse("Order 42").is_ok());
        assert!(Description::parse("line\nbreak").is_err());
        assert!(Description::parse(&"x".repeat(1001)).is_err());
    }
}
