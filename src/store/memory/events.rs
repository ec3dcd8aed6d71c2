//! The events port on the double ([`EventStore`]'s semantics), with the
//! outbox's fan-out into deliveries.

use super::{limit, stage, MemoryStore};
use crate::domain::ids::EventId;
use crate::domain::tenant::Tenant;
use crate::store::events::EventRow;
use crate::store::ports::EventStore;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::webhook_deliveries::DeliveryRow;
use crate::store::StoreError;

fn tenants(row: &EventRow, tenant: &Tenant) -> bool {
    row.merchant_id == tenant.merchant_str() && row.mode == tenant.mode_str()
}

/// Whether an endpoint's subscriptions (a JSON array of types) take `event_type`.
fn subscribed(events: &str, event_type: &str) -> bool {
    events.contains(&format!("\"{event_type}\"")) || events.contains("\"*\"")
}

impl EventStore for MemoryStore {
    fn insert_events(&self, work: &mut UnitOfWork, rows: &[EventRow]) {
        let Some(first) = rows.first() else { return };
        // As in the database, the fan-out is of the first event's merchant,
        // mode and time.
        let (merchant, mode, created_at) = (first.merchant_id.clone(), first.mode.clone(), first.created_at);
        let rows = rows.to_vec();
        stage(work, move |t| {
            t.merchant_exists(&merchant)?;
            for row in rows {
                let key = (row.merchant_id.clone(), row.id.clone());
                if t.events.contains_key(&key) {
                    return Err(StoreError::Duplicate);
                }
                let endpoints: Vec<String> = t
                    .endpoints
                    .values()
                    .filter(|w| {
                        w.merchant_id == merchant
                            && w.mode == mode
                            && w.status == "enabled"
                            && subscribed(&w.events, &row.event_type)
                    })
                    .map(|w| w.id.clone())
                    .collect();
                for endpoint_id in endpoints {
                    t.add_delivery(DeliveryRow {
                        endpoint_id,
                        event_id: row.id.clone(),
                        merchant_id: merchant.clone(),
                        status: "pending".to_owned(),
                        attempts: 0,
                        next_attempt_at: created_at,
                        last_status_code: None,
                        last_error: None,
                        created_at,
                        updated_at: created_at,
                    });
                }
                t.events.insert(key, row);
            }
            Ok(())
        });
    }

    async fn get_event(&self, tenant: &Tenant, id: &EventId) -> Result<Option<EventRow>, StoreError> {
        let key = (tenant.merchant_str().to_owned(), id.to_string());
        Ok(self.read(|t| t.events.get(&key).filter(|row| tenants(row, tenant)).cloned()))
    }

    async fn list_events(
        &self,
        tenant: &Tenant,
        event_type: Option<&str>,
        before: Option<&EventId>,
        page: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut rows: Vec<EventRow> = self.read(|t| {
            t.events
                .values()
                .filter(|row| {
                    tenants(row, tenant)
                        && event_type.is_none_or(|ty| row.event_type == ty)
                        && before.is_none_or(|b| row.id.as_str() < b.as_str())
                })
                .cloned()
                .collect()
        });
        rows.sort_by(|a, b| b.id.cmp(&a.id));
        rows.truncate(limit(page));
        Ok(rows)
    }

    async fn deliveries_of_event(&self, event_id: &str) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(self.read(|t| {
            t.deliveries
                .values()
                .filter(|d| d.event_id == event_id)
                .cloned()
                .collect()
        }))
    }

    async fn get_events_by_keys(&self, keys: &[(&str, &str)]) -> Result<Vec<EventRow>, StoreError> {
        Ok(self.read(|t| {
            let mut keys: Vec<(String, String)> =
                keys.iter().map(|(m, id)| ((*m).to_owned(), (*id).to_owned())).collect();
            keys.sort_unstable();
            keys.dedup();
            keys.iter().filter_map(|key| t.events.get(key).cloned()).collect()
        }))
    }
}
