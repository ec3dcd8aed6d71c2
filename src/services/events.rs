//! Events as the API lists them: the caller's own merchant and mode only,
//! newest first.

use crate::domain::ids::EventId;
use crate::domain::tenant::Tenant;
use crate::store::ports::EventStore;
use crate::webhooks::payload::Event;

use super::ServiceError;

pub async fn list<S: EventStore>(
    store: &S,
    tenant: &Tenant,
    event_type: Option<&str>,
    before: Option<&EventId>,
    limit: i64,
) -> Result<Vec<Event>, ServiceError> {
    store
        .list_events(tenant, event_type, before, limit)
        .await?
        .iter()
        .map(|row| Event::from_row(row).map_err(ServiceError::from))
        .collect()
}

pub async fn get<S: EventStore>(store: &S, tenant: &Tenant, id: &EventId) -> Result<Event, ServiceError> {
    let row = store.get_event(tenant, id).await?.ok_or(ServiceError::NotFound {
        resource: "event",
        param: "id",
    })?;
    Ok(Event::from_row(&row)?)
}

/// The use cases against the in-memory double of the storage ports.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::Mode;
    use crate::domain::merchant::MerchantName;
    use crate::domain::time::Timestamp;
    use crate::services::actor::Actor;
    use crate::store::events::EventRow;
    use crate::store::memory::MemoryStore;
    use crate::store::ports::Commit;
    use crate::store::unit_of_work::UnitOfWork;

    #[tokio::test]
    async fn events_are_the_callers_own_newest_first() {
        let store = MemoryStore::new();
        let actor = Actor::Operator {
            command: "events test".into(),
        };
        let merchant = crate::services::merchants::create(&store, &actor, MerchantName::parse("Events").unwrap())
            .await
            .unwrap();
        let tenant = Tenant::new(merchant.id.clone(), Mode::Live);
        let rows: Vec<EventRow> = (0..3)
            .map(|n| EventRow {
                id: EventId::generate_time_ordered(Timestamp::from_millis(1_700_000_000_000 + n * 1000))
                    .unwrap()
                    .to_string(),
                merchant_id: merchant.id.to_string(),
                mode: "live".into(),
                event_type: if n == 1 {
                    "refund.succeeded"
                } else {
                    "payment.succeeded"
                }
                .into(),
                object_id: format!("pay_{n}"),
                data: format!(r#"{{"id":"pay_{n}"}}"#),
                created_at: 1_700_000_000_000 + n * 1000,
            })
            .collect();
        let mut work = UnitOfWork::new();
        store.insert_events(&mut work, &rows);
        store.commit(work).await.unwrap();

        let listed = list(&store, &tenant, None, None, 10).await.unwrap();
        let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, [rows[2].id.as_str(), rows[1].id.as_str(), rows[0].id.as_str()]);
        assert!(listed.iter().all(|e| e.livemode));
        assert_eq!(listed[0].created.as_secs(), 1_700_000_002);
        let refunds = list(&store, &tenant, Some("refund.succeeded"), None, 10).await.unwrap();
        assert_eq!(refunds.len(), 1);
        let one = get(&store, &tenant, &EventId::from_trusted(rows[0].id.clone()))
            .await
            .unwrap();
        assert_eq!(one.object["id"], "pay_0");

        let test = Tenant::new(merchant.id.clone(), Mode::Test);
        assert!(list(&store, &test, None, None, 10).await.unwrap().is_empty());
        let across = get(&store, &test, &EventId::from_trusted(rows[0].id.clone())).await;
        assert!(
            matches!(across, Err(ServiceError::NotFound { resource: "event", .. })),
            "{across:?}"
        );
    }
}
