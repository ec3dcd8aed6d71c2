//! Stripe's wire format, as far as this connector reads and writes it: the
//! form-encoded request body and the JSON objects of API version
//! [`super::STRIPE_VERSION`] (checked against the 2023-08-16 OpenAPI subset in
//! `shared/vendor-specs/stripe`; the fields read here are unchanged in later
//! versions). Unknown fields are ignored, as Stripe adds fields without
//! changing the version.
//!
//! Invariants: a request body that may hold a card number or CVC lives in a
//! zeroizing buffer until the HTTP client drops it; no type here that holds
//! Stripe's free-text `message` implements `Debug`, so it cannot reach a log.

use serde::Deserialize;
use zeroize::Zeroizing;

/// An `application/x-www-form-urlencoded` body with Stripe's nested keys
/// (`card[number]`, `metadata[paywarden_payment]`).
#[derive(Clone)]
pub struct Form {
    /// Reserved up front so appending never reallocates (which would leave an
    /// unzeroized copy of a card number behind).
    body: Zeroizing<String>,
}

/// Enough for every form this connector sends.
const FORM_CAPACITY: usize = 4096;

impl Default for Form {
    fn default() -> Self {
        Self::new()
    }
}

impl Form {
    pub fn new() -> Self {
        Self {
            body: Zeroizing::new(String::with_capacity(FORM_CAPACITY)),
        }
    }

    /// Appends `key=value`, both percent-encoded.
    pub fn field(mut self, key: &str, value: &str) -> Self {
        let needed = key.len() * 3 + value.len() * 3 + 2;
        if self.body.len() + needed > self.body.capacity() {
            // Never reached with our forms; growing in a fresh zeroizing
            // buffer keeps the no-stray-copy property if it ever is.
            let mut bigger = Zeroizing::new(String::with_capacity((self.body.len() + needed) * 2));
            bigger.push_str(&self.body);
            self.body = bigger;
        }
        if !self.body.is_empty() {
            self.body.push('&');
        }
        self.body.extend(form_urlencoded::byte_serialize(key.as_bytes()));
        self.body.push('=');
        self.body.extend(form_urlencoded::byte_serialize(value.as_bytes()));
        self
    }

    /// Appends `key=value` when there is a value.
    pub fn optional(self, key: &str, value: Option<&str>) -> Self {
        match value {
            Some(value) => self.field(key, value),
            None => self,
        }
    }

    /// The body for the HTTP client: the buffer itself (no copy), zeroized
    /// when the client drops it.
    pub fn into_body(mut self) -> reqwest::Body {
        let bytes = std::mem::take(&mut *self.body).into_bytes();
        reqwest::Body::from(bytes::Bytes::from_owner(SecretBytes(Zeroizing::new(bytes))))
    }

    #[cfg(test)]
    pub fn as_str(&self) -> &str {
        &self.body
    }
}

/// Bytes zeroized on drop, as the owner of a `Bytes`.
struct SecretBytes(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The id of an object Stripe may return expanded or as a bare id
/// (localstripe expands `latest_charge`; Stripe does not by default).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum Expandable {
    Id(String),
    Object { id: String },
}

impl Expandable {
    pub fn id(&self) -> &str {
        match self {
            Expandable::Id(id) | Expandable::Object { id } => id,
        }
    }
}

/// `payment_intent.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IntentStatus {
    RequiresPaymentMethod,
    RequiresConfirmation,
    RequiresAction,
    Processing,
    RequiresCapture,
    Canceled,
    Succeeded,
    #[serde(other)]
    Unknown,
}

/// A PaymentIntent (`object: "payment_intent"`).
#[derive(Deserialize)]
pub struct PaymentIntent {
    pub id: String,
    pub status: IntentStatus,
    pub amount: i64,
    /// Absent on localstripe; Stripe always sends it.
    #[serde(default)]
    pub amount_received: Option<i64>,
    #[serde(default)]
    pub next_action: Option<NextAction>,
    #[serde(default)]
    pub last_payment_error: Option<ApiError>,
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
    #[serde(default)]
    pub livemode: Option<bool>,
}

/// `payment_intent.next_action`: what the customer must do.
#[derive(Debug, Deserialize)]
pub struct NextAction {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub redirect_to_url: Option<RedirectToUrl>,
}

#[derive(Debug, Deserialize)]
pub struct RedirectToUrl {
    #[serde(default)]
    pub url: Option<String>,
}

/// A PaymentMethod; only its id is used.
#[derive(Debug, Deserialize)]
pub struct PaymentMethod {
    pub id: String,
}

/// `refund.status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefundStatus {
    Pending,
    RequiresAction,
    Succeeded,
    Failed,
    Canceled,
    #[serde(other)]
    Unknown,
}

#[derive(Debug, Deserialize)]
pub struct Refund {
    pub id: String,
    /// Optional in the 2023-08-16 schema (nullable).
    #[serde(default)]
    pub status: Option<RefundStatus>,
    /// `paywarden_refund` when the gateway made it.
    #[serde(default)]
    pub metadata: std::collections::HashMap<String, String>,
}

/// A Dispute, as `charge.dispute.*` carries it.
#[derive(Debug, Deserialize)]
pub struct Dispute {
    pub id: String,
    pub amount: i64,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// A page of `GET /v1/payment_intents/search`.
#[derive(Deserialize)]
pub struct SearchResult {
    pub data: Vec<PaymentIntent>,
}

/// A page of `GET /v1/refunds`, newest first.
#[derive(Debug, Deserialize)]
pub struct RefundList {
    pub data: Vec<Refund>,
    pub has_more: bool,
}

/// The error envelope of every non-2xx answer: `{"error": {...}}`.
#[derive(Deserialize)]
pub struct ErrorEnvelope {
    pub error: ApiError,
}

/// `api_errors` in the spec. `message` is Stripe's free text: read only to
/// recognise the raw-card-data refusal, never logged or passed on.
#[derive(Deserialize)]
pub struct ApiError {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub code: Option<String>,
    #[serde(default)]
    pub decline_code: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
}

/// A webhook event (`object: "event"`).
#[derive(Deserialize)]
pub struct Event {
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    pub livemode: bool,
    pub data: EventData,
}

#[derive(Deserialize)]
pub struct EventData {
    pub object: serde_json::Value,
}

/// A Charge, as `charge.refunded` carries it.
#[derive(Deserialize)]
pub struct Charge {
    pub id: String,
    #[serde(default)]
    pub payment_intent: Option<Expandable>,
    pub amount_refunded: i64,
}

/// Only short identifiers (`card_declined`, `invalid_request_error`) are
/// repeated in operator messages; anything else is dropped.
pub fn identifier(value: Option<&str>) -> &str {
    match value {
        Some(v) if !v.is_empty() && v.len() <= 64 && v.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') => v,
        Some(_) => "unrecognised",
        None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nested_keys_and_values_are_percent_encoded() {
        let form = Form::new()
            .field("card[number]", "4242424242424242")
            .field("metadata[paywarden_payment]", "pay_1&x=y")
            .optional("card[cvc]", None);
        assert_eq!(
            form.as_str(),
            "card%5Bnumber%5D=4242424242424242&metadata%5Bpaywarden_payment%5D=pay_1%26x%3Dy"
        );
        let decoded: Vec<(String, String)> = form_urlencoded::parse(form.as_str().as_bytes()).into_owned().collect();
        assert_eq!(decoded[1], ("metadata[paywarden_payment]".into(), "pay_1&x=y".into()));
    }

    #[test]
    fn a_large_form_still_encodes_every_field() {
        let mut form = Form::new();
        for i in 0..500 {
            form = form.field(&format!("metadata[k{i}]"), "v");
        }
        assert_eq!(form_urlencoded::parse(form.as_str().as_bytes()).count(), 500);
    }

    #[test]
    fn ids_come_from_either_shape() {
        let bare: Expandable = serde_json::from_str(r#""ch_1""#).unwrap();
        let object: Expandable = serde_json::from_str(r#"{"id":"ch_2","object":"charge"}"#).unwrap();
        assert_eq!((bare.id(), object.id()), ("ch_1", "ch_2"));
    }

    #[test]
    fn unknown_statuses_and_fields_do_not_fail_parsing() {
        let pi: PaymentIntent =
            serde_json::from_str(r#"{"id":"pi_1","status":"something_new","amount":5,"hooks":{}}"#).unwrap();
        assert_eq!(pi.status, IntentStatus::Unknown);
    }

    #[test]
    fn only_identifiers_are_repeated() {
        assert_eq!(identifier(Some("card_declined")), "card_declined");
        assert_eq!(identifier(Some("4242424242424242")), "unrecognised");
        assert_eq!(identifier(Some("Your card number is 4242")), "unrecognised");
        assert_eq!(identifier(None), "none");
    }
}
