//! The event as merchants see it, in `GET /v1/events` and in every webhook
//! body: `{"id","object":"event","type","created","livemode","data":{"object"}}`.
//! One type for both (deliveries write it through [`event_body`]), so the two
//! cannot drift apart.

use serde::Serialize;

use crate::webhooks::payload::Event;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// `evt_…`, time-ordered; the same on every redelivery (deduplicate on it).
    pub id: String,
    /// Always `event`.
    pub object: &'static str,
    /// e.g. `payment.succeeded`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Unix time, seconds.
    pub created: i64,
    pub livemode: bool,
    pub data: EventData,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EventData {
    /// The object as it was right after the change.
    #[schema(value_type = Object)]
    pub object: serde_json::Value,
}

impl From<Event> for EventView {
    fn from(event: Event) -> Self {
        Self {
            id: event.id,
            object: "event",
            event_type: event.event_type,
            created: event.created.as_secs(),
            livemode: event.livemode,
            data: EventData { object: event.object },
        }
    }
}

/// The exact bytes that are signed and sent for `event`.
pub fn event_body(event: Event) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&EventView::from(event))
}
