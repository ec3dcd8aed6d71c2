//! The Stripe connector: PaymentIntents with manual capture, form-encoded,
//! over the connectors' shared HTTP client ([`crate::connectors::http`]).
//!
//! # Layout
//!
//! - [`wire`]: the form encoder and the JSON objects read.
//! - [`api`]: one call (key, `Stripe-Version`, `Idempotency-Key`, 429).
//! - [`mapping`]: Stripe's declines, errors and states in our terms.
//! - [`payments`]: authorize, capture, void, refund and sync.
//! - [`references`]: payment → PaymentIntent, for `sync` after a lost answer.
//! - [`webhook`]: `Stripe-Signature` and the events mapped.
//!
//! # Choices
//!
//! - `Stripe-Version` is pinned to [`STRIPE_VERSION`], 2023-08-16: the
//!   version of the OpenAPI subset the wire types were checked against. A
//!   request's version header overrides the account's default, so an upgrade
//!   in a merchant's dashboard cannot change the shapes this code parses; the
//!   fields read here are unchanged in every later version (see
//!   `field-drift-2023-08-16_vs_2026-10-28.json`). Move it deliberately,
//!   with the fakes' fixtures.
//! - Authorization is three POSTs, each with an idempotency key derived from
//!   the payment id and the step (`paywarden-{payment}-{step}`): create a
//!   PaymentMethod from the vault's card, create the PaymentIntent
//!   (`capture_method=manual`, `payment_method_types[]=card`,
//!   `metadata[paywarden_payment]`), then confirm it. Creating before
//!   confirming means the intent's id is known before anything can be
//!   authorized, so a confirm whose answer is lost is found again by `sync`;
//!   a retry of any step is the same call, which Stripe answers by replaying.
//! - Test and live are kept apart by the key: an `sk_test_`/`rk_test_` key
//!   serves test-mode payments only, an `sk_live_`/`rk_live_` key live ones.

pub mod api;
pub mod mapping;
pub mod payments;
pub mod references;
mod refund_lookup;
pub mod webhook;
pub mod wire;

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use secrecy::{ExposeSecret, SecretString};

use self::api::Api;
use self::references::References;
use super::http::{HttpClient, HttpSettings};
use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, FoundRefund, InboundEvent,
    InboundHeaders, RefundOutcome, RemoteStatus,
};
use crate::domain::api_key::Mode;
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::money::Money;

/// The API version sent on every call (see the module's choices).
pub const STRIPE_VERSION: &str = "2023-08-16";
/// Stripe's API host.
pub const DEFAULT_BASE_URL: &str = "https://api.stripe.com";

/// One Stripe account, as an operator configures it.
pub struct StripeConfig {
    /// `sk_test_…`/`sk_live_…` (or a restricted `rk_…` key).
    pub secret_key: SecretString,
    /// [`DEFAULT_BASE_URL`] unless a sandbox or test double stands in.
    pub base_url: String,
    /// The endpoint's `whsec_…` signing secret; without it no webhook verifies.
    pub webhook_secret: Option<SecretString>,
    pub webhook_tolerance: Duration,
    /// Where Stripe sends the customer back after a 3-D Secure redirect; with
    /// it, Stripe answers `next_action.redirect_to_url`, without it
    /// `use_stripe_sdk` (for Stripe.js).
    pub return_url: Option<String>,
    pub http: HttpSettings,
    /// A 429 is retried after its `Retry-After` when it is at most this long.
    pub max_retry_after: Duration,
}

impl StripeConfig {
    pub fn new(secret_key: SecretString) -> Self {
        Self {
            secret_key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            webhook_secret: None,
            webhook_tolerance: webhook::DEFAULT_TOLERANCE,
            return_url: None,
            http: HttpSettings::default(),
            max_retry_after: Duration::from_secs(2),
        }
    }
}

impl std::fmt::Debug for StripeConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeConfig")
            .field("base_url", &self.base_url)
            .field("webhook_tolerance", &self.webhook_tolerance)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

/// The Stripe connector for one account.
pub struct Stripe {
    api: Api,
    mode: Mode,
    webhook_secret: Option<SecretString>,
    webhook_tolerance: Duration,
    return_url: Option<String>,
    references: References,
}

impl std::fmt::Debug for Stripe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stripe")
            .field("base", &self.api.base)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

impl Stripe {
    /// A connector for `config`: an `https://` base URL (in live mode a
    /// public host, and names resolved to public addresses only).
    pub fn new(mut config: StripeConfig) -> Result<Self, ConnectorError> {
        let mode = key_mode(&config.secret_key)?;
        let base = crate::webhooks::ssrf::check_url(&config.base_url, mode, false).map_err(|e| {
            ConnectorError::Configuration(format!("the Stripe base URL {e}; it is normally {DEFAULT_BASE_URL}"))
        })?;
        if mode == Mode::Live {
            config.http.public_addresses_only = true;
        }
        let http = HttpClient::new(&config.http).map_err(|e| ConnectorError::Configuration(e.to_string()))?;
        Ok(Self::with_client(config, mode, base.as_str(), http))
    }

    /// A connector for localstripe (a Stripe double that serves only plain
    /// HTTP), for tests. Refused unless the base URL is `http://` to a
    /// loopback IP literal and the key is a test-mode key: a live payment can
    /// never travel in clear, and no configuration reaches this constructor
    /// (the gateway only ever calls [`Stripe::new`]).
    #[doc(hidden)]
    pub fn plain_loopback_for_tests(config: StripeConfig) -> Result<Self, ConnectorError> {
        let mode = key_mode(&config.secret_key)?;
        let url = url::Url::parse(&config.base_url)
            .map_err(|_| ConnectorError::Configuration("the base URL is malformed".into()))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            _ => false,
        };
        if mode != Mode::Test || url.scheme() != "http" || !loopback {
            return Err(ConnectorError::Configuration(
                "plain HTTP is only for a test-mode key and an http:// loopback IP address".into(),
            ));
        }
        let http =
            HttpClient::plain_loopback(&config.http).map_err(|e| ConnectorError::Configuration(e.to_string()))?;
        let base = url.as_str().to_owned();
        Ok(Self::with_client(config, mode, &base, http))
    }

    fn with_client(config: StripeConfig, mode: Mode, base: &str, http: HttpClient) -> Self {
        Self {
            api: Api {
                http,
                base: base.trim_end_matches('/').to_owned(),
                key: config.secret_key,
                max_retry_after: config.max_retry_after,
                max_retries: 2,
            },
            mode,
            webhook_secret: config.webhook_secret,
            webhook_tolerance: config.webhook_tolerance,
            return_url: config.return_url,
            references: References::default(),
        }
    }

    /// The mode this account's key acts in.
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

/// The mode a Stripe key acts in, from its prefix.
fn key_mode(key: &SecretString) -> Result<Mode, ConnectorError> {
    let key = key.expose_secret();
    if key.starts_with("sk_test_") || key.starts_with("rk_test_") {
        Ok(Mode::Test)
    } else if key.starts_with("sk_live_") || key.starts_with("rk_live_") {
        Ok(Mode::Live)
    } else {
        Err(ConnectorError::Configuration(
            "the Stripe key must be a secret or restricted key (sk_test_, sk_live_, rk_test_ or rk_live_)".into(),
        ))
    }
}

impl Connector for Stripe {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn has_external_effects(&self) -> bool {
        true
    }

    fn authorize<'a>(
        &'a self,
        request: AuthorizeRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthorizeOutcome, ConnectorError>> {
        async move { self.authorize_with_action(request).await.map(|a| a.outcome) }.boxed()
    }

    fn capture<'a>(
        &'a self,
        reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ConnectorError>> {
        self.capture_intent(reference, amount).boxed()
    }

    fn void<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), ConnectorError>> {
        self.cancel_intent(reference).boxed()
    }

    fn refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
        amount: Money,
    ) -> BoxFuture<'a, Result<RefundOutcome, ConnectorError>> {
        self.refund_intent(reference, refund, amount).boxed()
    }

    fn sync<'a>(&'a self, payment: &'a PaymentId) -> BoxFuture<'a, Result<RemoteStatus, ConnectorError>> {
        self.sync_payment(payment).boxed()
    }

    fn sync_refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
    ) -> BoxFuture<'a, Result<Option<FoundRefund>, ConnectorError>> {
        self.find_refund(reference, refund).boxed()
    }

    fn parse_webhook(&self, headers: &InboundHeaders, body: &[u8]) -> Result<InboundEvent, ConnectorError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        webhook::parse(
            &webhook::WebhookCheck {
                secret: self.webhook_secret.as_ref(),
                tolerance: self.webhook_tolerance,
                mode: self.mode,
                now,
            },
            headers,
            body,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(key: &str, base: &str) -> StripeConfig {
        StripeConfig {
            base_url: base.to_owned(),
            ..StripeConfig::new(SecretString::from(key))
        }
    }

    #[test]
    fn the_key_decides_the_mode_and_must_be_a_secret_key() {
        let test = Stripe::new(config("sk_test_abc", DEFAULT_BASE_URL)).unwrap();
        assert_eq!(test.mode(), Mode::Test);
        let live = Stripe::new(config("rk_live_abc", DEFAULT_BASE_URL)).unwrap();
        assert_eq!(live.mode(), Mode::Live);
        for key in ["pk_test_abc", "whsec_abc", ""] {
            assert!(matches!(
                Stripe::new(config(key, DEFAULT_BASE_URL)),
                Err(ConnectorError::Configuration(_))
            ));
        }
        assert!(!format!("{test:?}").contains("sk_test_abc"));
        assert!(!format!("{:?}", config("sk_test_abc", DEFAULT_BASE_URL)).contains("sk_test_abc"));
    }

    #[test]
    fn base_urls_must_be_https_and_public_in_live_mode() {
        assert!(Stripe::new(config("sk_test_abc", "https://127.0.0.1:8443")).is_ok());
        for base in [
            "http://api.stripe.com",
            "https://user:pw@api.stripe.com",
            "http://127.0.0.1:8420",
        ] {
            assert!(matches!(
                Stripe::new(config("sk_test_abc", base)),
                Err(ConnectorError::Configuration(_))
            ));
        }
        for base in ["https://127.0.0.1:8443", "https://10.0.0.1", "https://stripe.internal"] {
            assert!(matches!(
                Stripe::new(config("sk_live_abc", base)),
                Err(ConnectorError::Configuration(_))
            ));
        }
    }

    #[test]
    fn plain_http_only_to_loopback_with_a_test_key() {
        assert!(Stripe::plain_loopback_for_tests(config("sk_test_abc", "http://127.0.0.1:8420")).is_ok());
        assert!(Stripe::plain_loopback_for_tests(config("sk_test_abc", "http://[::1]:8420")).is_ok());
        for (key, base) in [
            ("sk_live_abc", "http://127.0.0.1:8420"),
            ("sk_test_abc", "http://localhost:8420"),
            ("sk_test_abc", "http://10.1.2.3:8420"),
            ("sk_test_abc", "https://127.0.0.1:8420"),
        ] {
            assert!(
                Stripe::plain_loopback_for_tests(config(key, base)).is_err(),
                "{key} {base}"
            );
        }
    }
}
