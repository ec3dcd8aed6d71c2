//! The JSON of a processor connection: its kind, status, whether it is the
//! default, and the hint of its key. Never a credential: the view has no
//! field that could hold one.

use serde::Serialize;

use crate::domain::api_key::Mode;
use crate::domain::connection::Connection;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = Connector)]
pub struct ConnectorView {
    /// `conn_…`.
    #[schema(pattern = r"^conn_[0-9A-Za-z]{24}$")]
    pub id: String,
    /// Always `connector`.
    pub object: &'static str,
    /// The processor: `stripe` or `paypal`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// `active`, or `disabled` (takes no new payments, still serves the
    /// captures, cancels and refunds of payments made with it).
    pub status: &'static str,
    /// New payments of this mode go to it.
    pub default: bool,
    pub livemode: bool,
    /// The last four characters of the secret key (Stripe) or client secret
    /// (PayPal); the secret itself is never returned.
    pub secret_key_last4: String,
    /// A webhook signing secret (Stripe) or webhook id (PayPal) is stored
    /// (it is never returned).
    pub webhook_secret_configured: bool,
    /// Unix time, seconds.
    pub created: i64,
    pub disabled_at: Option<i64>,
    /// The connection (`conn_…`) an authorization goes to when this one's
    /// processor cannot be reached (nothing was sent to it), or `null`.
    #[schema(pattern = r"^conn_[0-9A-Za-z]{24}$")]
    pub fallback: Option<String>,
}

impl From<Connection> for ConnectorView {
    fn from(c: Connection) -> Self {
        Self {
            id: c.id.to_string(),
            object: "connector",
            kind: c.kind.as_str(),
            status: c.status.as_str(),
            default: c.is_default,
            livemode: c.tenant.mode() == Mode::Live,
            secret_key_last4: c.secret_key_last4,
            webhook_secret_configured: c.has_webhook_secret,
            created: c.created_at.as_secs(),
            disabled_at: c.disabled_at.map(|t| t.as_secs()),
            fallback: c.fallback.map(|f| f.to_string()),
        }
    }
}
