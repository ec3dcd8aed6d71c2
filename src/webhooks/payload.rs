//! The event as merchants see it, in `GET /v1/events` and in every webhook
//! body: `{"id","object":"event","type","created","livemode","data":{"object"}}`.
//! One type for both, so the two cannot drift apart.

use serde::Serialize;

use crate::store::events::EventRow;
use crate::store::StoreError;

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

impl EventView {
    pub fn from_row(row: &EventRow) -> Result<Self, StoreError> {
        let object = serde_json::from_str(&row.data)
            .map_err(|_| StoreError::Corrupt("column data of events holds invalid JSON".into()))?;
        Ok(Self {
            id: row.id.clone(),
            object: "event",
            event_type: row.event_type.clone(),
            created: row.created_at.div_euclid(1000),
            livemode: row.mode == "live",
            data: EventData { object },
        })
    }

    /// The exact bytes that are signed and sent.
    pub fn to_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}
