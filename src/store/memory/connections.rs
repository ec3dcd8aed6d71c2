//! The processor connections port on the double ([`ConnectionStore`]'s
//! semantics).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::{limit, matched, stage, MemoryStore};
use crate::domain::api_key::Mode;
use crate::domain::ids::{ConnectionId, MerchantId, PaymentId};
use crate::domain::merchant::DEFAULT_TEST_CONNECTOR;
use crate::domain::tenant::Tenant;
use crate::store::ports::ConnectionStore;
use crate::store::processor_connections::ConnectionRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

fn visible(row: &ConnectionRow, tenant: &Tenant) -> bool {
    row.merchant_id == tenant.merchant_str() && row.mode == tenant.mode_str()
}

impl ConnectionStore for MemoryStore {
    async fn get_connection(&self, tenant: &Tenant, id: &ConnectionId) -> Result<Option<ConnectionRow>, StoreError> {
        Ok(self.read(|t| t.connections.get(id.as_str()).filter(|r| visible(r, tenant)).cloned()))
    }

    async fn list_connections(
        &self,
        tenant: &Tenant,
        after: Option<&ConnectionId>,
        page: i64,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        let after = after.map_or("", ConnectionId::as_str);
        Ok(self.read(|t| {
            t.connections
                .values()
                .filter(|r| r.id.as_str() > after && visible(r, tenant))
                .take(limit(page))
                .cloned()
                .collect()
        }))
    }

    async fn list_merchant_connections(
        &self,
        merchant: &MerchantId,
        after: &str,
        page: i64,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        Ok(self.read(|t| {
            t.connections
                .values()
                .filter(|r| r.id.as_str() > after && r.merchant_id == merchant.as_str())
                .take(limit(page))
                .cloned()
                .collect()
        }))
    }

    fn insert_connection(&self, work: &mut UnitOfWork, row: &ConnectionRow) {
        let row = row.clone();
        stage(work, move |t| {
            if t.connections.contains_key(&row.id) {
                return Err(StoreError::Duplicate);
            }
            t.merchant_exists(&row.merchant_id)?;
            t.connections.insert(row.id.clone(), row);
            Ok(())
        });
    }

    fn disable_connection(&self, work: &mut UnitOfWork, tenant: &Tenant, id: &ConnectionId, now: i64) {
        let (tenant, id) = (tenant.clone(), id.clone());
        stage(work, move |t| {
            let row = matched(
                t.connections
                    .get_mut(id.as_str())
                    .filter(|r| visible(r, &tenant) && r.status == "active"),
            )?;
            row.status = "disabled".to_owned();
            row.disabled_at = Some(now);
            Ok(())
        });
    }

    fn set_merchant_route(&self, work: &mut UnitOfWork, tenant: &Tenant, connector: Option<&str>) {
        let tenant = tenant.clone();
        let connector = connector.map(str::to_owned);
        stage(work, move |t| {
            let merchant = matched(t.merchants.get_mut(tenant.merchant_str()))?;
            match tenant.mode() {
                Mode::Test => merchant.connector = connector.unwrap_or_else(|| DEFAULT_TEST_CONNECTOR.to_owned()),
                Mode::Live => merchant.live_connector = connector,
            }
            Ok(())
        });
    }

    fn set_connection_fallback(
        &self,
        work: &mut UnitOfWork,
        tenant: &Tenant,
        id: &ConnectionId,
        fallback: Option<&ConnectionId>,
    ) {
        let (tenant, id) = (tenant.clone(), id.clone());
        let fallback = fallback.map(ToString::to_string);
        stage(work, move |t| {
            let row = matched(t.connections.get_mut(id.as_str()).filter(|r| visible(r, &tenant)))?;
            row.fallback = fallback;
            Ok(())
        });
    }

    fn reroute_payment(&self, work: &mut UnitOfWork, tenant: &Tenant, payment: &PaymentId, connector: &str) {
        let (tenant, payment, connector) = (tenant.clone(), payment.clone(), connector.to_owned());
        stage(work, move |t| {
            if let Some(p) = super::payments::payment_mut(t, &tenant, &payment) {
                p.connector = connector;
            }
            Ok(())
        });
    }

    fn unroute_merchant(&self, work: &mut UnitOfWork, tenant: &Tenant, connection: &ConnectionId) {
        let (tenant, connection) = (tenant.clone(), connection.to_string());
        stage(work, move |t| {
            if let Some(merchant) = t.merchants.get_mut(tenant.merchant_str()) {
                match tenant.mode() {
                    Mode::Test if merchant.connector == connection => {
                        merchant.connector = DEFAULT_TEST_CONNECTOR.to_owned();
                    }
                    Mode::Live if merchant.live_connector.as_deref() == Some(connection.as_str()) => {
                        merchant.live_connector = None;
                    }
                    _ => {}
                }
            }
            Ok(())
        });
    }

    async fn connections_not_at_kek_version(
        &self,
        version: i64,
        after: &str,
        page: i64,
    ) -> Result<Vec<ConnectionRow>, StoreError> {
        Ok(self.read(|t| {
            t.connections
                .values()
                .filter(|r| r.id.as_str() > after && r.kek_version != version)
                .take(limit(page))
                .cloned()
                .collect()
        }))
    }

    fn rewrap_connection(
        &self,
        work: &mut UnitOfWork,
        id: &str,
        expected_wrapped: &str,
        to: i64,
        wrapped_dek: &str,
        changed: Arc<AtomicBool>,
    ) {
        let (id, expected, wrapped) = (id.to_owned(), expected_wrapped.to_owned(), wrapped_dek.to_owned());
        stage(work, move |t| {
            let row = t.connections.get_mut(&id).filter(|r| r.wrapped_dek == expected);
            changed.store(row.is_some(), Ordering::Relaxed);
            if let Some(row) = row {
                row.kek_version = to;
                row.wrapped_dek = wrapped;
            }
            Ok(())
        });
    }

    async fn connection_credentials_by_kek_version(&self) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(self.read(|t| {
            let mut counts = BTreeMap::new();
            for row in t.connections.values() {
                *counts.entry(row.kek_version).or_insert(0) += 1;
            }
            counts.into_iter().collect()
        }))
    }
}
