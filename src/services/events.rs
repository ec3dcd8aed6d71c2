//! Events as the API lists them: the caller's own merchant and mode only,
//! newest first.

use crate::domain::ids::EventId;
use crate::domain::tenant::Tenant;
use crate::store::{self, Store};
use crate::webhooks::payload::Event;

use super::ServiceError;

pub async fn list(
    store: &Store,
    tenant: &Tenant,
    event_type: Option<&str>,
    before: Option<&EventId>,
    limit: i64,
) -> Result<Vec<Event>, ServiceError> {
    store::events::list(store.reader(), tenant, event_type, before, limit)
        .await?
        .iter()
        .map(|row| Event::from_row(row).map_err(ServiceError::from))
        .collect()
}

pub async fn get(store: &Store, tenant: &Tenant, id: &EventId) -> Result<Event, ServiceError> {
    let row = store::events::get(store.reader(), tenant, id)
        .await?
        .ok_or(ServiceError::NotFound {
            resource: "event",
            param: "id",
        })?;
    Ok(Event::from_row(&row)?)
}
