//! The PayPal connector: Orders v2 with `payment_source.card` and Payments
//! v2, authenticated by an OAuth 2.0 client-credentials token, over the
//! connectors' shared HTTP client ([`crate::connectors::http`]).
//!
//! # Layout
//!
//! - [`wire`]: the JSON bodies and objects, and amounts as decimal strings.
//! - [`token`]: the access token, cached and refreshed.
//! - [`api`]: one call (token, `PayPal-Request-Id`, 401 refresh, 429).
//! - [`mapping`]: PayPal's errors and processor responses in our terms.
//! - [`payments`]: authorize, capture, void, refund and sync.
//! - [`refund_lookup`]: a refund of ours found after the fact.
//! - [`certs`], [`webhook`], [`events`]: inbound webhooks: PayPal's signing
//!   certificates, the signature, and the events mapped.
//!
//! # Choices
//!
//! - Authorization is two POSTs, each with a `PayPal-Request-Id` derived
//!   from the payment id and the step (`paywarden-{payment}-{step}`): create
//!   the order (`intent` `AUTHORIZE`, or `CAPTURE` when the core captures at
//!   once; our payment id as the purchase unit's `custom_id`), then
//!   `POST /v2/checkout/orders/{id}/authorize` (or `/capture`) with the
//!   vault's card as `payment_source.card`, which the spec allows instead of
//!   a buyer's approval. Creating first means the order's id is known before
//!   anything can be authorized, so an authorization whose answer is lost is
//!   found again by `sync`; a retried step is the same call, which PayPal
//!   answers with its first result (it keeps request ids for 6 hours).
//! - The payment's reference is the order id; capture
//!   (`/v2/payments/authorizations/{id}/capture`, the amount given,
//!   `final_capture: true`), void and refund (`/v2/payments/captures/{id}/refund`)
//!   read the order to find the authorization or capture.
//! - PayPal cannot find an order by our payment id, so `sync` knows the
//!   orders this process created (bounded, as Stripe's references); after a
//!   restart a payment left `processing` stays unknown and the
//!   reconciliation job raises its overdue alert for an operator.
//! - Test and live are kept apart by host: a test-mode connection reaches
//!   [`SANDBOX_BASE_URL`], a live one [`LIVE_BASE_URL`], unless the operator
//!   names another (a staging double); the connector refuses payments of the
//!   other mode.
//! - Inbound webhooks are verified offline ([`webhook`]) with the signing
//!   certificate fetched before parsing ([`Connector::prepare_webhook`]);
//!   without the connection's webhook id nothing verifies.

pub mod api;
pub mod certs;
pub mod events;
pub mod mapping;
pub mod payments;
pub mod refund_lookup;
pub mod token;
pub mod webhook;
pub mod wire;

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use secrecy::SecretString;

use self::api::Api;
use self::token::Tokens;
use super::http::{HttpClient, HttpSettings};
use super::stripe::references::References;
use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, FoundRefund, InboundEvent,
    InboundHeaders, RefundOutcome, RemoteStatus,
};
use crate::domain::api_key::Mode;
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::money::Money;

/// PayPal's sandbox REST host (test mode).
pub const SANDBOX_BASE_URL: &str = "https://api-m.sandbox.paypal.com";
/// PayPal's live REST host.
pub const LIVE_BASE_URL: &str = "https://api-m.paypal.com";

/// PayPal's host for `mode`.
pub fn default_base_url(mode: Mode) -> &'static str {
    match mode {
        Mode::Test => SANDBOX_BASE_URL,
        Mode::Live => LIVE_BASE_URL,
    }
}

/// One PayPal REST app, as an operator and a merchant configure it.
pub struct PaypalConfig {
    pub client_id: String,
    pub client_secret: SecretString,
    /// The mode of the connection: which host, and which payments it takes.
    pub mode: Mode,
    /// [`default_base_url`] of the mode unless a double stands in.
    pub base_url: String,
    pub http: HttpSettings,
    /// A 429 is retried after its `Retry-After` when it is at most this long.
    pub max_retry_after: Duration,
    /// The webhook subscription whose deliveries verify; without it none do.
    pub webhook_id: Option<String>,
}

impl PaypalConfig {
    pub fn new(client_id: String, client_secret: SecretString, mode: Mode) -> Self {
        Self {
            client_id,
            client_secret,
            mode,
            base_url: default_base_url(mode).to_owned(),
            http: HttpSettings::default(),
            max_retry_after: Duration::from_secs(2),
            webhook_id: None,
        }
    }
}

impl std::fmt::Debug for PaypalConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PaypalConfig")
            .field("mode", &self.mode)
            .field("base_url", &self.base_url)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// The PayPal connector for one REST app.
pub struct Paypal {
    api: Api,
    mode: Mode,
    references: References,
    certs: certs::Certs,
    webhook_id: Option<String>,
}

impl std::fmt::Debug for Paypal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paypal")
            .field("base", &self.api.base)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Paypal {
    /// A connector for `config`: an `https://` base URL (in live mode a
    /// public host, and names resolved to public addresses only).
    pub fn new(mut config: PaypalConfig) -> Result<Self, ConnectorError> {
        let mode = config.mode;
        let base = crate::webhooks::ssrf::check_url(&config.base_url, mode, false).map_err(|e| {
            ConnectorError::Configuration(format!(
                "the PayPal base URL {e}; it is normally {}",
                default_base_url(mode)
            ))
        })?;
        if mode == Mode::Live {
            config.http.public_addresses_only = true;
        }
        let http = HttpClient::new(&config.http).map_err(|e| ConnectorError::Configuration(e.to_string()))?;
        let certs = certs::Certs::new(
            http.clone(),
            mode,
            base.as_str(),
            config.http.extra_root_ca_pem.as_deref(),
        );
        Ok(Self {
            api: Api {
                http,
                base: base.as_str().trim_end_matches('/').to_owned(),
                tokens: Tokens::new(config.client_id, config.client_secret),
                max_retry_after: config.max_retry_after,
                max_retries: 2,
            },
            mode,
            references: References::default(),
            certs,
            webhook_id: config.webhook_id,
        })
    }

    /// The mode this connection acts in.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    fn check_mode(&self, mode: Mode) -> Result<(), ConnectorError> {
        if mode == self.mode {
            Ok(())
        } else {
            Err(ConnectorError::ModeNotSupported(mode.as_str()))
        }
    }
}

impl Connector for Paypal {
    fn name(&self) -> &'static str {
        "paypal"
    }

    fn has_external_effects(&self) -> bool {
        true
    }

    fn authorize<'a>(
        &'a self,
        request: AuthorizeRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthorizeOutcome, ConnectorError>> {
        self.authorize_order(request).boxed()
    }

    fn capture<'a>(
        &'a self,
        reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ConnectorError>> {
        self.capture_order(reference, amount).boxed()
    }

    fn void<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), ConnectorError>> {
        self.void_order(reference).boxed()
    }

    fn refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
        amount: Money,
    ) -> BoxFuture<'a, Result<RefundOutcome, ConnectorError>> {
        self.refund_order(reference, refund, amount).boxed()
    }

    fn sync<'a>(&'a self, payment: &'a PaymentId) -> BoxFuture<'a, Result<RemoteStatus, ConnectorError>> {
        self.sync_payment(payment).boxed()
    }

    fn sync_refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
    ) -> BoxFuture<'a, Result<Option<FoundRefund>, ConnectorError>> {
        async move {
            let found = self.find_refund(reference, refund).await?;
            Ok(found.map(|(processor_refund, state)| FoundRefund {
                processor_refund,
                state,
            }))
        }
        .boxed()
    }

    fn parse_webhook(&self, headers: &InboundHeaders, body: &[u8]) -> Result<InboundEvent, ConnectorError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        webhook::verify(&self.certs, self.webhook_id.as_deref(), headers, body, now)?;
        events::parse(body)
    }

    fn prepare_webhook<'a>(&'a self, headers: &'a InboundHeaders) -> BoxFuture<'a, ()> {
        async move {
            if let Some(url) = webhook::cert_url(headers) {
                self.certs.fetch(url).await;
            }
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: Mode, base: &str) -> PaypalConfig {
        PaypalConfig {
            base_url: base.to_owned(),
            ..PaypalConfig::new("client".into(), SecretString::from("secret-value"), mode)
        }
    }

    #[test]
    fn each_mode_has_its_host_and_base_urls_must_be_https_and_public_in_live_mode() {
        let test = PaypalConfig::new("c".into(), SecretString::from("s"), Mode::Test);
        assert_eq!(test.base_url, "https://api-m.sandbox.paypal.com");
        let live = PaypalConfig::new("c".into(), SecretString::from("s"), Mode::Live);
        assert_eq!(live.base_url, "https://api-m.paypal.com");
        assert!(!format!("{live:?}").contains("secret"));
        assert!(Paypal::new(config(Mode::Test, "https://127.0.0.1:8443")).is_ok());
        assert_eq!(Paypal::new(live).unwrap().mode(), Mode::Live);
        for base in ["http://api-m.paypal.com", "https://user:pw@api-m.paypal.com"] {
            assert!(matches!(
                Paypal::new(config(Mode::Test, base)),
                Err(ConnectorError::Configuration(_))
            ));
        }
        for base in ["https://127.0.0.1:8443", "https://10.0.0.1"] {
            assert!(matches!(
                Paypal::new(config(Mode::Live, base)),
                Err(ConnectorError::Configuration(_))
            ));
        }
    }
}
