//! What the attempts of one round of claimed deliveries need, read at once:
//! each endpoint once (and its signing secrets opened once), and every
//! event in a few multi-row reads, instead of two reads and a secret
//! opening per attempt.
//!
//! Invariants: an endpoint that is no longer enabled, or an event not of the
//! delivery's merchant and of the endpoint's mode, yields nothing to send
//! (an endpoint is only ever sent events of its own world); opened secrets
//! live only as long as the round's attempts (zeroized when dropped) and are
//! never logged.

use std::collections::HashMap;
use std::sync::Arc;

use crate::domain::api_key::Mode;
use crate::store::events::EventRow;
use crate::store::webhook_deliveries::DeliveryRow;
use crate::store::webhook_endpoints::EndpointRow;
use crate::store::{EventStore, StoreError, WebhookEndpointStore};
use crate::vault::KekProvider;

use super::attempt;
use super::secret::WebhookSecret;

/// The secrets that sign an endpoint's deliveries now, or `None` if they
/// cannot be opened.
pub type Secrets = Option<Arc<Vec<WebhookSecret>>>;

/// One delivery's share of a round.
pub struct Target {
    pub endpoint: Arc<EndpointRow>,
    pub event: Arc<EventRow>,
    pub secrets: Secrets,
}

/// The endpoints, events and secrets of a round.
#[derive(Default)]
pub struct Round {
    endpoints: HashMap<String, (Arc<EndpointRow>, Secrets)>,
    /// By (merchant, id).
    events: HashMap<(String, String), Arc<EventRow>>,
}

impl Round {
    /// Reads what `deliveries` need.
    pub async fn load<S: WebhookEndpointStore + EventStore>(
        store: &S,
        keyring: &dyn KekProvider,
        deliveries: &[&DeliveryRow],
    ) -> Result<Self, StoreError> {
        let mut round = Round::default();
        for d in deliveries {
            if round.endpoints.contains_key(&d.endpoint_id) {
                continue;
            }
            let Some(endpoint) = store.get_endpoint_any(&d.endpoint_id).await? else {
                continue;
            };
            if endpoint.status != "enabled" {
                // Disabled or deleted meanwhile: that change gave up its deliveries.
                continue;
            }
            if Mode::parse(&endpoint.mode).is_none() {
                return Err(StoreError::Corrupt("webhook_endpoints.mode".into()));
            }
            let secrets = match attempt::secrets(keyring, &endpoint) {
                Ok(secrets) => Some(Arc::new(secrets)),
                Err(e) => {
                    tracing::error!(endpoint = %endpoint.id, error = %e, "webhook secret cannot be opened");
                    None
                }
            };
            round
                .endpoints
                .insert(d.endpoint_id.clone(), (Arc::new(endpoint), secrets));
        }
        // Each event in the delivery's merchant (its key).
        let mut keys: Vec<(&str, &str)> = deliveries
            .iter()
            .filter(|d| round.endpoints.contains_key(&d.endpoint_id))
            .map(|d| (d.merchant_id.as_str(), d.event_id.as_str()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for event in store.get_events_by_keys(&keys).await? {
            round
                .events
                .insert((event.merchant_id.clone(), event.id.clone()), Arc::new(event));
        }
        Ok(round)
    }

    /// What `d` is sent with, if anything: the endpoint enabled, the event
    /// of the delivery's merchant and of the endpoint's mode.
    pub fn target(&self, d: &DeliveryRow) -> Option<Target> {
        let (endpoint, secrets) = self.endpoints.get(&d.endpoint_id)?;
        let event = self
            .events
            .get(&(d.merchant_id.clone(), d.event_id.clone()))
            .filter(|e| e.merchant_id == d.merchant_id && e.mode == endpoint.mode)?;
        Some(Target {
            endpoint: Arc::clone(endpoint),
            event: Arc::clone(event),
            secrets: secrets.clone(),
        })
    }
}
