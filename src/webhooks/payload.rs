//! The event as the outbox holds it, read for `GET /v1/events` and for every
//! delivery ([`Event`]), and the JSON that deliveries carry ([`Payloads`]):
//! written by the API's views (`api::views`), which the wiring hands to the
//! delivery worker, so that an event's body and its API response are one
//! serializer and webhooks/ names no view.

use crate::domain::time::Timestamp;
use crate::store::events::EventRow;
use crate::store::StoreError;

use super::endpoint::WebhookEndpoint;

/// An event as stored: `evt_…`, its type, when and in which mode it
/// happened, and the changed object as it was right after the change.
#[derive(Debug, Clone)]
pub struct Event {
    pub id: String,
    /// e.g. `payment.succeeded`.
    pub event_type: String,
    pub created: Timestamp,
    pub livemode: bool,
    pub object: serde_json::Value,
}

impl Event {
    pub fn from_row(row: &EventRow) -> Result<Self, StoreError> {
        let object = serde_json::from_str(&row.data)
            .map_err(|_| StoreError::Corrupt("column data of events holds invalid JSON".into()))?;
        Ok(Self {
            id: row.id.clone(),
            event_type: row.event_type.clone(),
            created: Timestamp::from_millis(row.created_at),
            livemode: row.mode == "live",
            object,
        })
    }
}

/// How deliveries write what merchants also read through the API: the
/// API's views, given by the wiring (`server::Gateway`) in the webhook
/// settings.
#[derive(Debug, Clone, Copy)]
pub struct Payloads {
    /// The exact bytes that are signed and sent for an event: the event as
    /// `GET /v1/events/{id}` shows it.
    pub event: fn(Event) -> Result<Vec<u8>, serde_json::Error>,
    /// The `data.object` of a `webhook_endpoint.*` event: the endpoint as
    /// `GET /v1/webhook_endpoints/{id}` shows it.
    pub endpoint: fn(&WebhookEndpoint) -> Result<String, serde_json::Error>,
}

impl Payloads {
    /// Until the wiring gives the views: every payload fails (an attempt is
    /// not sent, a disabling not recorded), rather than a shape of its own.
    pub const NOT_GIVEN: Payloads = Payloads {
        event: |_| Err(not_given()),
        endpoint: |_| Err(not_given()),
    };
}

fn not_given() -> serde_json::Error {
    serde::ser::Error::custom("the webhook payloads (the API's views) were not given to the webhook settings")
}
