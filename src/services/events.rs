//! Events as the API lists them: the merchant's own only, newest first.

use crate::domain::ids::{EventId, MerchantId};
use crate::store::{self, Store};
use crate::webhooks::payload::EventView;

use super::ServiceError;

pub async fn list(
    store: &Store,
    merchant: &MerchantId,
    event_type: Option<&str>,
    before: Option<&EventId>,
    limit: i64,
) -> Result<Vec<EventView>, ServiceError> {
    store::events::list(store.reader(), merchant, event_type, before, limit)
        .await?
        .iter()
        .map(|row| EventView::from_row(row).map_err(ServiceError::from))
        .collect()
}

pub async fn get(store: &Store, merchant: &MerchantId, id: &EventId) -> Result<EventView, ServiceError> {
    let row = store::events::get(store.reader(), merchant, id)
        .await?
        .ok_or(ServiceError::NotFound {
            resource: "event",
            param: "id",
        })?;
    Ok(EventView::from_row(&row)?)
}
