//! Failover routing: a connection may name a fallback connection of the
//! same merchant and mode ([`set_fallback`]); an authorization that could
//! not reach the connection's processor goes there instead ([`Failover`]).
//!
//! Invariants: failover happens only on `ConnectorError::Unavailable` from
//! an authorization, which a connector returns only when nothing reached
//! the processor (connection refused, a 429, its circuit breaker open), so
//! the first processor cannot have authorized; a decline or an unknown
//! outcome (a timeout) never fails over. One hop: the fallback's own
//! fallback is not followed. The payment's record names the fallback
//! (committed, with an audit entry, before the fallback is called), so a
//! crash in between leaves a payment whose later steps and reconciliation
//! go to the processor that may hold it.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use crate::connectors::Connector;
use crate::domain::audit::Outcome;
use crate::domain::connection::{Connection, ConnectionStatus};
use crate::domain::ids::{ConnectionId, PaymentId};
use crate::domain::tenant::Tenant;
use crate::store::ports::{Commit, ConnectionStore, MerchantStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

use super::super::actor::Actor;
use super::super::ServiceError;
use super::{get, Context, Routing};

/// Sets (or clears) the fallback of the tenant's connection `id`. The
/// fallback must be another active connection of the same merchant and
/// mode (another tenant's is reported like a missing one).
pub async fn set_fallback<S: ConnectionStore + MerchantStore + Commit>(
    cx: &Context<'_, S>,
    id: &ConnectionId,
    fallback: Option<&ConnectionId>,
) -> Result<Connection, ServiceError> {
    let tenant = cx.tenant;
    cx.store
        .get_connection(tenant, id)
        .await?
        .ok_or(ServiceError::NotFound {
            resource: "connector",
            param: "id",
        })?;
    if let Some(fallback) = fallback {
        if fallback == id {
            return Err(ServiceError::invalid(
                "fallback",
                "parameter_invalid",
                "fallback must be another connection than this one",
            ));
        }
        let target = cx
            .store
            .get_connection(tenant, fallback)
            .await?
            .ok_or(ServiceError::ReferenceNotFound {
                resource: "connector",
                param: "fallback",
            })?;
        if target.status != ConnectionStatus::Active.as_str() {
            return Err(ServiceError::invalid(
                "fallback",
                "connector_disabled",
                "fallback must be an active connection",
            ));
        }
    }
    let detail = match fallback {
        Some(f) => format!("fallback set to {f}"),
        None => "fallback cleared".to_owned(),
    };
    let mut work = UnitOfWork::new();
    cx.store.set_connection_fallback(&mut work, tenant, id, fallback);
    work.audit(cx.event("connector.updated", id, detail));
    cx.store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict {
            code: "connector_changed",
            message: "the connector changed during the request; read it again".into(),
        },
        other => other.into(),
    })?;
    get(cx.store, tenant, id).await
}

/// Where a payment's authorization fails over to (the payments' flow sees
/// only this).
pub trait FailoverRoute: Sync {
    /// See [`Failover::route`].
    fn route<'a>(
        &'a self,
        tenant: &'a Tenant,
        payment: &'a PaymentId,
        from: &'a str,
    ) -> BoxFuture<'a, Option<(String, Arc<dyn Connector>)>>;
}

impl<S: ConnectionStore + Commit> FailoverRoute for Failover<'_, S> {
    fn route<'a>(
        &'a self,
        tenant: &'a Tenant,
        payment: &'a PaymentId,
        from: &'a str,
    ) -> BoxFuture<'a, Option<(String, Arc<dyn Connector>)>> {
        Failover::route(self, tenant, payment, from).boxed()
    }
}

/// Where a payment's authorization fails over to, when its connector's
/// processor cannot be reached.
pub struct Failover<'a, S> {
    pub routing: &'a Routing,
    pub store: &'a S,
    pub actor: &'a Actor,
}

impl<S: ConnectionStore + Commit> Failover<'_, S> {
    /// The fallback of the connection `from` (the payment's connector) with
    /// its connector, once the payment's record names it; `None` when
    /// `from` is no connection, has no fallback, or the fallback is gone or
    /// disabled (the payment then fails as the first processor failed).
    pub async fn route(
        &self,
        tenant: &Tenant,
        payment: &PaymentId,
        from: &str,
    ) -> Option<(String, Arc<dyn Connector>)> {
        let primary = ConnectionId::parse(from).ok()?;
        let row = self.store.get_connection(tenant, &primary).await.ok()??;
        let fallback = ConnectionId::parse(row.fallback.as_deref()?).ok()?;
        let target = self.store.get_connection(tenant, &fallback).await.ok()??;
        if target.status != ConnectionStatus::Active.as_str() {
            return None;
        }
        let connector = self.routing.resolve(self.store, tenant, fallback.as_str()).await.ok()?;
        let mut event = self.actor.event("payment.failover", Outcome::Success);
        event.merchant_id = Some(tenant.merchant_str().to_owned());
        event.mode = Some(tenant.mode());
        event.resource = Some(payment.to_string());
        event.reason = Some(format!("{primary} unreachable; authorization sent to {fallback}"));
        let mut work = UnitOfWork::new();
        self.store
            .reroute_payment(&mut work, tenant, payment, fallback.as_str());
        work.audit(event);
        if let Err(e) = self.store.commit(work).await {
            tracing::warn!(payment = %payment, error = %e, "could not record the failover; not failing over");
            return None;
        }
        Some((fallback.to_string(), connector))
    }
}
