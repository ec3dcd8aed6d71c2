//! A webhook endpoint as read (never its secret), and its subscriptions:
//! event types or `*`, checked and normalised.

use crate::domain::event::EventType;
use crate::domain::time::Timestamp;
use crate::store::webhook_endpoints::EndpointRow;
use crate::store::{json_column, StoreError};

/// Subscribes to every event type, present and future.
pub const ALL_EVENTS: &str = "*";
/// Most event types one endpoint may list.
pub const MAX_EVENTS: usize = 32;

/// Why a subscription list is not acceptable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EventsError {
    #[error("must list at least one event type, or \"*\"")]
    Empty,
    #[error("must list at most 32 event types")]
    TooMany,
    #[error("contains an unknown event type")]
    Unknown,
}

/// Checks and normalises (sorted, deduplicated; `*` alone if present) a list
/// of event types.
pub fn parse_events(raw: &[String]) -> Result<Vec<String>, EventsError> {
    if raw.is_empty() {
        return Err(EventsError::Empty);
    }
    if raw.len() > MAX_EVENTS {
        return Err(EventsError::TooMany);
    }
    if raw.iter().any(|e| e == ALL_EVENTS) {
        return Ok(vec![ALL_EVENTS.to_owned()]);
    }
    let mut parsed = raw
        .iter()
        .map(|e| {
            EventType::parse(e)
                .map(|t| t.as_str().to_owned())
                .ok_or(EventsError::Unknown)
        })
        .collect::<Result<Vec<_>, _>>()?;
    parsed.sort();
    parsed.dedup();
    Ok(parsed)
}

/// A webhook endpoint as read, without its secret: what the API shows of it
/// and `webhook_endpoint.*` events carry (`api::views::WebhookEndpointView`).
#[derive(Debug, Clone)]
pub struct WebhookEndpoint {
    /// `we_…`.
    pub id: String,
    pub url: String,
    /// Subscribed event types, or `["*"]` for all.
    pub events: Vec<String>,
    /// `enabled` or `disabled`.
    pub status: String,
    pub livemode: bool,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub disabled_at: Option<Timestamp>,
    /// While a rotated-out secret still signs deliveries: until when.
    pub previous_secret_expires_at: Option<Timestamp>,
}

impl WebhookEndpoint {
    /// The endpoint of a stored row at time `now_ms`.
    pub fn from_row(row: &EndpointRow, now_ms: i64) -> Result<Self, StoreError> {
        Ok(Self {
            id: row.id.clone(),
            url: row.url.clone(),
            events: json_column("events", &row.events)?,
            status: row.status.clone(),
            livemode: row.mode == "live",
            created: Timestamp::from_millis(row.created_at),
            updated: Timestamp::from_millis(row.updated_at),
            disabled_at: row.disabled_at.map(Timestamp::from_millis),
            previous_secret_expires_at: row
                .previous_expires_at
                .filter(|t| *t > now_ms)
                .map(Timestamp::from_millis),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subscriptions_are_checked_and_normalised() {
        let s = |v: &[&str]| parse_events(&v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>());
        assert_eq!(s(&[]), Err(EventsError::Empty));
        assert_eq!(s(&["payment.exploded"]), Err(EventsError::Unknown));
        assert_eq!(s(&["payment.*"]), Err(EventsError::Unknown));
        assert_eq!(
            s(&["refund.failed", "payment.succeeded", "refund.failed"]).unwrap(),
            ["payment.succeeded", "refund.failed"]
        );
        assert_eq!(s(&["payment.succeeded", "*"]).unwrap(), ["*"]);
        assert_eq!(s(&["payment.succeeded"; 33]), Err(EventsError::TooMany));
    }
}
