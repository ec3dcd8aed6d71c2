//! Events as the API lists them: the caller's own merchant and mode only,
//! newest first.

use crate::domain::ids::EventId;
use crate::domain::tenant::Tenant;
use crate::store::ports::EventStore;
use crate::webhooks::payload::EventView;

use super::ServiceError;

pub async fn list<S: EventStore>(
    store: &S,
    tenant: &Tenant,
    event_type: Option<&str>,
    before: Option<&EventId>,
    limit: i64,
) -> Result<Vec<EventView>, ServiceError> {
    store
        .list_events(tenant, event_type, before, limit)
        .await?
        .iter()
        .map(|row| EventView::from_row(row).map_err(ServiceError::from))
        .collect()
}

pub async fn get<S: EventStore>(store: &S, tenant: &Tenant, id: &EventId) -> Result<EventView, ServiceError> {
    let row = store.get_event(tenant, id).await?.ok_or(ServiceError::NotFound {
        resource: "event",
        param: "id",
    })?;
    Ok(EventView::from_row(&row)?)
}
