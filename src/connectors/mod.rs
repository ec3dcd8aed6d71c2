//! Processor connectors. The payment core talks to a processor only through
//! [`Connector`]: authorize, capture, void, refund, sync status, and verify and
//! parse the processor's inbound webhooks. [`Connectors`] routes a merchant's
//! payment to the connector it is configured for.
//!
//! Invariant: a connector's errors carry a short internal description for the
//! operator's log and the payment history; raw processor payloads never reach
//! the merchant: the API shows only a [`DeclineCode`] or a generic failure.

pub mod breaker;
pub mod http;
pub mod paypal;
pub mod sandbox;
pub mod stripe;
pub mod unconfigured;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use futures_util::future::BoxFuture;
use secrecy::SecretString;

use crate::domain::api_key::Mode;
use crate::domain::card::{CardNumber, Cvc, ExpiryDate};
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::money::Money;

/// Why an issuer or processor refused, as merchants see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineCode {
    GenericDecline,
    InsufficientFunds,
    ExpiredCard,
    IncorrectCvc,
    ProcessingError,
    AuthenticationFailed,
    CaptureFailed,
    ProcessorTimeout,
    RefundFailed,
    /// The processor refused the request itself (not the card).
    ConnectorError,
    /// The connector is not set up to take this payment (credentials,
    /// account capabilities, mode): the merchant's configuration, not the card.
    ConnectorConfiguration,
    /// The processor could not be reached or answered with an outage.
    ProcessorUnavailable,
    /// The merchant's fraud rules blocked the payment before any processor
    /// saw it.
    Fraudulent,
}

impl DeclineCode {
    pub fn as_str(self) -> &'static str {
        match self {
            DeclineCode::GenericDecline => "generic_decline",
            DeclineCode::InsufficientFunds => "insufficient_funds",
            DeclineCode::ExpiredCard => "expired_card",
            DeclineCode::IncorrectCvc => "incorrect_cvc",
            DeclineCode::ProcessingError => "processing_error",
            DeclineCode::AuthenticationFailed => "authentication_failed",
            DeclineCode::CaptureFailed => "capture_failed",
            DeclineCode::ProcessorTimeout => "processor_timeout",
            DeclineCode::RefundFailed => "refund_failed",
            DeclineCode::ConnectorError => "connector_error",
            DeclineCode::ConnectorConfiguration => "connector_configuration",
            DeclineCode::ProcessorUnavailable => "processor_unavailable",
            DeclineCode::Fraudulent => "fraudulent",
        }
    }

    /// The merchant-facing sentence for this code.
    pub fn message(self) -> &'static str {
        match self {
            DeclineCode::GenericDecline => "The card was declined.",
            DeclineCode::InsufficientFunds => "The card has insufficient funds.",
            DeclineCode::ExpiredCard => "The card has expired.",
            DeclineCode::IncorrectCvc => "The card's security code is incorrect.",
            DeclineCode::ProcessingError => "An error occurred while processing the card. Try again later.",
            DeclineCode::AuthenticationFailed => "The customer did not complete authentication.",
            DeclineCode::CaptureFailed => "The processor could not capture the authorized amount.",
            DeclineCode::ProcessorTimeout => "The processor did not answer in time; the payment was not authorized.",
            DeclineCode::RefundFailed => "The processor could not refund the payment.",
            DeclineCode::ConnectorError => "The processor refused the request. Nothing was charged.",
            DeclineCode::ConnectorConfiguration => {
                "The payment processor is not configured to take this payment; the merchant must fix the connector's settings."
            }
            DeclineCode::ProcessorUnavailable => "The processor could not be reached. Nothing was charged; try again later.",
            DeclineCode::Fraudulent => "The payment was blocked by the merchant's fraud rules. Nothing was charged.",
        }
    }

    pub fn parse(input: &str) -> Option<Self> {
        [
            DeclineCode::GenericDecline,
            DeclineCode::InsufficientFunds,
            DeclineCode::ExpiredCard,
            DeclineCode::IncorrectCvc,
            DeclineCode::ProcessingError,
            DeclineCode::AuthenticationFailed,
            DeclineCode::CaptureFailed,
            DeclineCode::ProcessorTimeout,
            DeclineCode::RefundFailed,
            DeclineCode::ConnectorError,
            DeclineCode::ConnectorConfiguration,
            DeclineCode::ProcessorUnavailable,
            DeclineCode::Fraudulent,
        ]
        .into_iter()
        .find(|c| c.as_str() == input)
    }
}

/// The card as the vault opened it for one authorization. The number and CVC
/// stay in zeroizing types; Debug prints nothing of them.
pub struct CardDetails {
    pub number: CardNumber,
    pub expiry: ExpiryDate,
    /// Present only on the first authorization after tokenization.
    pub cvc: Option<Cvc>,
    pub name: Option<SecretString>,
}

impl fmt::Debug for CardDetails {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardDetails(***)")
    }
}

/// How the customer authenticated (3-D Secure), when they did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authentication {
    /// The processor's reference of the completed challenge.
    pub reference: String,
}

pub struct AuthorizeRequest<'a> {
    pub payment: &'a PaymentId,
    pub mode: Mode,
    pub money: Money,
    pub card: &'a CardDetails,
    pub authentication: Option<&'a Authentication>,
    pub customer_ip: Option<&'a str>,
    /// The core captures right after an approval (automatic capture, not
    /// held for review). A processor that can authorize and capture in one
    /// call may do so; its `capture` of the reference then answers
    /// `Captured` without capturing again.
    pub capture_at_once: bool,
}

/// A processor's answer to an authorization.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    Approved {
        reference: String,
    },
    Declined {
        code: DeclineCode,
        reference: Option<String>,
    },
    /// The issuer wants the customer to authenticate first.
    ChallengeRequired {
        reference: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureOutcome {
    Captured,
    Failed { code: DeclineCode },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefundOutcome {
    Succeeded { reference: String },
    Failed { code: DeclineCode },
}

/// What the processor says of an authorization, when asked after the fact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteStatus {
    Authorized {
        reference: String,
    },
    Captured {
        reference: String,
        amount: i64,
    },
    Voided,
    /// Refunds at the processor add up to `amount` (minor units): reported by
    /// processors' webhooks, also for refunds made in their dashboards.
    Refunded {
        reference: String,
        amount: i64,
    },
    /// The processor has no authorization for this payment.
    NotFound,
}

/// A processor-sent notification, verified and parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundEvent {
    /// The processor's event id (`evt_…`): deliveries repeat, and the
    /// caller applies each id once per connection.
    pub processor_event_id: String,
    /// The processor's event type (`charge.refunded`), for the record: an
    /// identifier of lower-case letters, digits, `_` and `.` only.
    pub kind: String,
    pub change: InboundChange,
}

/// What a processor's event says happened, in the core's terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundChange {
    /// Where an authorization stands now. `payment` is our payment id when
    /// the processor's object carries it (set when the payment was created
    /// there); `reference` is the processor's id of it.
    Payment {
        payment: Option<String>,
        reference: String,
        status: RemoteStatus,
    },
    /// The authorization failed with `code`.
    PaymentFailed {
        payment: Option<String>,
        reference: String,
        code: DeclineCode,
    },
    /// Refunds of the payment `reference` now add up to `total` (minor
    /// units), including any made in the processor's dashboard.
    RefundedTotal { reference: String, total: i64 },
    /// One refund's state at the processor; `refund` is our refund id when
    /// the gateway made it.
    Refund {
        refund: Option<String>,
        processor_refund: String,
        state: RemoteRefund,
    },
    /// A cardholder disputed the payment `reference`.
    Dispute {
        reference: String,
        amount: i64,
        /// The processor's reason code (an identifier).
        reason: String,
    },
    /// An event the gateway does not act on: acknowledged and ignored.
    Ignored,
}

/// One of the gateway's refunds as the processor has it, found when asked
/// after the fact ([`Connector::sync_refund`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundRefund {
    /// The processor's id of the refund.
    pub processor_refund: String,
    pub state: RemoteRefund,
}

/// A refund's state at the processor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteRefund {
    Pending,
    Succeeded,
    Failed,
}

/// A connector failure. The text is for operators, never for merchants.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConnectorError {
    #[error("the processor did not answer in time")]
    Timeout,
    #[error("the processor is unavailable: {0}")]
    Unavailable(String),
    #[error("the processor refused the request: {0}")]
    Rejected(String),
    #[error("this connector does not support {0} mode")]
    ModeNotSupported(&'static str),
    #[error("the webhook signature is invalid")]
    InvalidSignature,
    /// The connector is set up wrongly (credentials, account settings): the
    /// text names the fix, for the operator; retrying will not help.
    #[error("the connector is misconfigured: {0}")]
    Configuration(String),
}

impl ConnectorError {
    /// A short, stable name of the kind of failure (a metrics label: never
    /// the processor's text).
    pub fn kind(&self) -> &'static str {
        match self {
            ConnectorError::Timeout => "timeout",
            ConnectorError::Unavailable(_) => "unavailable",
            ConnectorError::Rejected(_) => "rejected",
            ConnectorError::ModeNotSupported(_) => "mode_not_supported",
            ConnectorError::InvalidSignature => "invalid_signature",
            ConnectorError::Configuration(_) => "configuration",
        }
    }

    /// The code a payment or refund that failed with this error carries:
    /// merchants learn which kind of failure it was, never the processor's
    /// own text.
    pub fn decline_code(&self) -> DeclineCode {
        match self {
            ConnectorError::Timeout => DeclineCode::ProcessorTimeout,
            ConnectorError::Unavailable(_) => DeclineCode::ProcessorUnavailable,
            ConnectorError::Configuration(_) | ConnectorError::ModeNotSupported(_) => {
                DeclineCode::ConnectorConfiguration
            }
            ConnectorError::Rejected(_) | ConnectorError::InvalidSignature => DeclineCode::ConnectorError,
        }
    }
}

/// One processor. Implementations must be cancellation-safe and must never
/// disable TLS certificate verification.
pub trait Connector: Send + Sync {
    /// The name merchants configure (`sandbox`, `stripe`, …).
    fn name(&self) -> &'static str;

    /// Whether calls have effects outside this gateway. Payments through such
    /// a connector are recorded as `processing` before the processor is
    /// called, so a crash in between leaves a record to reconcile.
    fn has_external_effects(&self) -> bool;

    fn authorize<'a>(
        &'a self,
        request: AuthorizeRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthorizeOutcome, ConnectorError>>;

    fn capture<'a>(
        &'a self,
        reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ConnectorError>>;

    /// Releases an authorization that will not be captured.
    fn void<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), ConnectorError>>;

    fn refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
        amount: Money,
    ) -> BoxFuture<'a, Result<RefundOutcome, ConnectorError>>;

    /// Asks the processor where an authorization stands (after a timeout, or
    /// to reconcile a payment left `processing`).
    fn sync<'a>(&'a self, payment: &'a PaymentId) -> BoxFuture<'a, Result<RemoteStatus, ConnectorError>>;

    /// Asks the processor about the gateway's refund `refund` of the
    /// authorization `reference` (to reconcile a refund left `pending`):
    /// `None` when the processor has no such refund. A connector that cannot
    /// ask answers an error, so the refund stays pending (and is announced
    /// overdue), never settled on a guess.
    fn sync_refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
    ) -> BoxFuture<'a, Result<Option<FoundRefund>, ConnectorError>>;

    /// Verifies the signature of an inbound webhook and parses it.
    fn parse_webhook(&self, headers: &InboundHeaders, body: &[u8]) -> Result<InboundEvent, ConnectorError>;

    /// Fetches what verifying a delivery with these headers needs and is
    /// not known yet (PayPal's signing certificate, by the URL a delivery
    /// names), before [`Connector::parse_webhook`]. Nothing by default.
    fn prepare_webhook<'a>(&'a self, headers: &'a InboundHeaders) -> BoxFuture<'a, ()> {
        let _ = headers;
        Box::pin(async {})
    }
}

/// The headers of an inbound processor webhook, as the edge received them
/// (names compared without regard to case), in the connectors' own terms:
/// no HTTP framework's types cross into a connector.
#[derive(Debug, Default, Clone)]
pub struct InboundHeaders {
    /// Lower-case name and raw value, in the order received.
    entries: Vec<(String, Vec<u8>)>,
}

impl InboundHeaders {
    pub fn new<N: AsRef<str>, V: AsRef<[u8]>>(headers: impl IntoIterator<Item = (N, V)>) -> Self {
        Self {
            entries: headers
                .into_iter()
                .map(|(name, value)| (name.as_ref().to_ascii_lowercase(), value.as_ref().to_vec()))
                .collect(),
        }
    }

    /// The first value of header `name`, if present.
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }

    /// Every value of header `name`, in the order received.
    pub fn get_all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a [u8]> + 'a {
        self.entries
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

#[cfg(test)]
mod inbound_headers_tests {
    use super::InboundHeaders;

    #[test]
    fn names_match_without_case_and_every_value_is_kept() {
        let headers = InboundHeaders::new([
            ("Stripe-Signature", "t=1,v1=a"),
            ("X-Other", "x"),
            ("stripe-signature", "t=2"),
        ]);
        assert_eq!(headers.get("stripe-signature"), Some(&b"t=1,v1=a"[..]));
        assert_eq!(headers.get("STRIPE-SIGNATURE"), Some(&b"t=1,v1=a"[..]));
        assert_eq!(headers.get_all("Stripe-Signature").count(), 2);
        assert_eq!(headers.get("missing"), None);
    }
}

/// How the gateway reaches Stripe for merchants' connections: the
/// operator's, never a merchant's, choice (a merchant's key must not be able
/// to send card numbers elsewhere).
#[derive(Clone, Debug)]
pub struct StripeSettings {
    /// [`stripe::DEFAULT_BASE_URL`] unless a sandbox or test double stands in.
    pub base_url: String,
    pub http: http::HttpSettings,
}

impl Default for StripeSettings {
    fn default() -> Self {
        Self {
            base_url: stripe::DEFAULT_BASE_URL.to_owned(),
            http: http::HttpSettings::default(),
        }
    }
}

/// How the gateway reaches PayPal for merchants' connections: the
/// operator's choice, as [`StripeSettings`].
#[derive(Clone, Debug, Default)]
pub struct PaypalSettings {
    /// `None`: PayPal's own host of the connection's mode
    /// ([`paypal::default_base_url`]); a staging double otherwise.
    pub base_url: Option<String>,
    pub http: http::HttpSettings,
}

/// The connectors this gateway can route to: the built-ins by name, and how
/// to build one for a merchant's processor connection.
#[derive(Clone)]
pub struct Connectors {
    by_name: HashMap<&'static str, Arc<dyn Connector>>,
    stripe: Arc<StripeSettings>,
    paypal: Arc<PaypalSettings>,
    /// The breaker each connection's connector is built behind.
    breaker: breaker::BreakerSettings,
}

impl fmt::Debug for Connectors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.by_name.keys()).finish()
    }
}

impl Connectors {
    /// The built-in set: the sandbox (test mode only), and the connector
    /// that refuses live payments of a merchant without a live connection.
    pub fn builtin() -> Self {
        let mut by_name: HashMap<&'static str, Arc<dyn Connector>> = HashMap::new();
        let sandbox: Arc<dyn Connector> = Arc::new(sandbox::Sandbox::new());
        by_name.insert(sandbox.name(), sandbox);
        let unconfigured: Arc<dyn Connector> = Arc::new(unconfigured::Unconfigured);
        by_name.insert(unconfigured.name(), unconfigured);
        Self {
            by_name,
            stripe: Arc::new(StripeSettings::default()),
            paypal: Arc::new(PaypalSettings::default()),
            breaker: breaker::BreakerSettings::default(),
        }
    }

    /// The same set, with connections' circuit breakers set to `settings`.
    pub fn with_breaker(mut self, settings: breaker::BreakerSettings) -> Self {
        self.breaker = settings;
        self
    }

    /// The breaker settings of connections' connectors.
    pub fn breaker(&self) -> breaker::BreakerSettings {
        self.breaker
    }

    /// The same set, building Stripe connections with `settings`.
    pub fn with_stripe(mut self, settings: StripeSettings) -> Self {
        self.stripe = Arc::new(settings);
        self
    }

    /// The same set, building PayPal connections with `settings`.
    pub fn with_paypal(mut self, settings: PaypalSettings) -> Self {
        self.paypal = Arc::new(settings);
        self
    }

    /// A connector for a merchant's processor connection, from its opened
    /// credentials, behind its own circuit breaker (the caller caches it:
    /// building one builds an HTTP client).
    pub fn for_connection(
        &self,
        credentials: &crate::domain::connection::Credentials,
    ) -> Result<Arc<dyn Connector>, ConnectorError> {
        use secrecy::SecretString;
        match credentials {
            crate::domain::connection::Credentials::Stripe {
                secret_key,
                webhook_secret,
            } => {
                let config = stripe::StripeConfig {
                    base_url: self.stripe.base_url.clone(),
                    http: self.stripe.http.clone(),
                    webhook_secret: webhook_secret
                        .as_ref()
                        .map(|s| SecretString::from(s.expose_secret().to_owned())),
                    ..stripe::StripeConfig::new(SecretString::from(secret_key.expose_secret().to_owned()))
                };
                let stripe: Arc<dyn Connector> = Arc::new(stripe::Stripe::new(config)?);
                Ok(Arc::new(breaker::Guarded::new(stripe, self.breaker)))
            }
            crate::domain::connection::Credentials::Paypal {
                client_id,
                client_secret,
                webhook_id,
                mode,
            } => {
                let mut config = paypal::PaypalConfig::new(
                    client_id.as_str().to_owned(),
                    SecretString::from(client_secret.expose_secret().to_owned()),
                    *mode,
                );
                config.webhook_id = webhook_id.as_ref().map(|id| id.as_str().to_owned());
                if let Some(base) = &self.paypal.base_url {
                    config.base_url.clone_from(base);
                }
                config.http = self.paypal.http.clone();
                let paypal: Arc<dyn Connector> = Arc::new(paypal::Paypal::new(config)?);
                Ok(Arc::new(breaker::Guarded::new(paypal, self.breaker)))
            }
        }
    }

    /// Adds (or replaces) a connector.
    pub fn with(mut self, connector: Arc<dyn Connector>) -> Self {
        self.by_name.insert(connector.name(), connector);
        self
    }

    pub fn get(&self, name: &str) -> Option<Arc<dyn Connector>> {
        self.by_name.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decline_codes_round_trip() {
        for code in [
            DeclineCode::GenericDecline,
            DeclineCode::ProcessorTimeout,
            DeclineCode::RefundFailed,
            DeclineCode::ConnectorError,
            DeclineCode::ConnectorConfiguration,
            DeclineCode::ProcessorUnavailable,
        ] {
            assert_eq!(DeclineCode::parse(code.as_str()), Some(code));
        }
        assert!(Connectors::builtin().get("sandbox").is_some());
        assert!(Connectors::builtin().get("nope").is_none());
    }

    #[test]
    fn each_connector_failure_names_its_kind_and_none_blames_the_card() {
        let cases = [
            (ConnectorError::Timeout, "processor_timeout"),
            (ConnectorError::Unavailable("reset".into()), "processor_unavailable"),
            (
                ConnectorError::Configuration("enable raw card data".into()),
                "connector_configuration",
            ),
            (ConnectorError::ModeNotSupported("live"), "connector_configuration"),
            (ConnectorError::Rejected("bad parameter".into()), "connector_error"),
        ];
        for (error, code) in cases {
            let declined = error.decline_code();
            assert_eq!(declined.as_str(), code, "{error}");
            // The operator's text never becomes the merchant's message.
            assert!(!declined.message().contains("raw card") && !declined.message().contains("bad parameter"));
        }
    }
}
