//! A webhook endpoint as merchants see it (in API responses and, as the same
//! JSON, in `webhook_endpoint.*` events: [`endpoint_json`]): never its
//! secret, except in the one view of creation and rotation
//! ([`WebhookEndpointWithSecret`]); and the delivery attempts to it.

use serde::Serialize;
use utoipa::openapi::schema::Object;

use crate::api::schema;
use crate::domain::ids::WebhookAttemptId;
use crate::services::webhook_endpoints::WebhookAttempt;
use crate::webhooks::endpoint::WebhookEndpoint;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = WebhookEndpoint)]
pub struct WebhookEndpointView {
    /// `we_…`.
    pub id: String,
    /// Always `webhook_endpoint`.
    pub object: &'static str,
    pub url: String,
    /// Subscribed event types, or `["*"]` for all.
    pub events: Vec<String>,
    /// `enabled` or `disabled` (after deliveries failed for the whole retry
    /// window, or by request).
    pub status: String,
    pub livemode: bool,
    /// Unix time, seconds.
    pub created: i64,
    pub updated: i64,
    pub disabled_at: Option<i64>,
    /// While a rotated-out secret still signs deliveries: until when.
    pub previous_secret_expires_at: Option<i64>,
}

impl From<WebhookEndpoint> for WebhookEndpointView {
    fn from(e: WebhookEndpoint) -> Self {
        Self {
            id: e.id,
            object: "webhook_endpoint",
            url: e.url,
            events: e.events,
            status: e.status,
            livemode: e.livemode,
            created: e.created.as_secs(),
            updated: e.updated.as_secs(),
            disabled_at: e.disabled_at.map(|t| t.as_secs()),
            previous_secret_expires_at: e.previous_secret_expires_at.map(|t| t.as_secs()),
        }
    }
}

/// The `data.object` of a `webhook_endpoint.*` event.
pub fn endpoint_json(endpoint: &WebhookEndpoint) -> Result<String, serde_json::Error> {
    serde_json::to_string(&WebhookEndpointView::from(endpoint.clone()))
}

/// An endpoint with its signing secret: only in the responses of creation
/// and rotation.
#[derive(Serialize, utoipa::ToSchema)]
pub struct WebhookEndpointWithSecret {
    #[serde(flatten)]
    pub endpoint: WebhookEndpointView,
    /// `whsec_…`: shown once. Verify deliveries with it.
    pub secret: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeletedWebhookEndpoint {
    pub id: String,
    #[schema(schema_with = endpoint_object)]
    pub object: &'static str,
    pub deleted: bool,
}

impl DeletedWebhookEndpoint {
    pub fn new(id: String) -> Self {
        Self {
            id,
            object: "webhook_endpoint",
            deleted: true,
        }
    }
}

/// One HTTP attempt to deliver an event.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookAttemptView {
    #[schema(schema_with = attempt_id)]
    pub id: String,
    #[schema(schema_with = attempt_object)]
    pub object: &'static str,
    pub webhook_endpoint: String,
    pub event: String,
    /// 1 for the first attempt of this event to this endpoint.
    pub attempt: i64,
    /// Unix time, seconds.
    pub created: i64,
    /// The response status, when a response came.
    pub status_code: Option<i64>,
    /// Why it failed: `unexpected_status`, `timeout`, `connection_failed`,
    /// `tls_error`, `blocked_address`, …
    pub error: Option<String>,
    pub duration_ms: i64,
    pub succeeded: bool,
}

fn endpoint_object() -> Object {
    schema::literal("webhook_endpoint")
}

fn attempt_object() -> Object {
    schema::literal("webhook_attempt")
}

fn attempt_id() -> Object {
    schema::id_schema(WebhookAttemptId::PREFIX).build()
}

impl From<WebhookAttempt> for WebhookAttemptView {
    fn from(a: WebhookAttempt) -> Self {
        Self {
            id: a.id,
            object: "webhook_attempt",
            webhook_endpoint: a.endpoint_id,
            event: a.event_id,
            attempt: a.attempt,
            created: a.attempted_at.as_millis().div_euclid(1000),
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
            succeeded: a.succeeded,
        }
    }
}
