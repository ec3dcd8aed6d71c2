//! Which connector a payment's processor call goes to: a built-in by name
//! (`sandbox`, `unconfigured`, or a test's processor double), or a merchant's
//! processor connection by id (`conn_…`), built from its opened credentials.
//!
//! A built connector is cached per connection id, so the common case reads
//! nothing from the database: a connection's credentials never change (a new
//! key is a new connection), so a cached connector cannot go stale, and a
//! disabled connection still serves the payments made with it. The cache is
//! bounded ([`CAPACITY`]; when full it is emptied) and this replica's entry
//! is dropped when the connection is disabled here. A cached connector is
//! used only for its own merchant and mode: a payment's recorded connector
//! of another tenant resolves to nothing, like a missing one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::connectors::{Connector, Connectors};
use crate::domain::ids::ConnectionId;
use crate::domain::tenant::Tenant;
use crate::store::ports::ConnectionStore;
use crate::store::StoreError;
use crate::vault::KekProvider;

use super::super::ServiceError;

/// Connectors of connections kept at most.
pub const CAPACITY: usize = 1024;

struct Cached {
    tenant: Tenant,
    connector: Arc<dyn Connector>,
}

/// The built-in connectors and the cache of connections' connectors; cheap
/// to clone (clones share the cache).
#[derive(Clone)]
pub struct Routing {
    connectors: Connectors,
    keyring: Arc<dyn KekProvider>,
    /// A std mutex: held only to look up or insert, never across an await.
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl std::fmt::Debug for Routing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Routing")
            .field("connectors", &self.connectors)
            .field("cached", &self.cached())
            .finish()
    }
}

impl Routing {
    pub fn new(connectors: Connectors, keyring: Arc<dyn KekProvider>) -> Self {
        Self {
            connectors,
            keyring,
            cache: Arc::default(),
        }
    }

    pub fn connectors(&self) -> &Connectors {
        &self.connectors
    }

    /// How many connections' connectors are cached.
    pub fn cached(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Drops the cached connector of connection `id` (disabled here).
    pub fn forget(&self, id: &ConnectionId) {
        self.lock().remove(id.as_str());
    }

    /// The connector named `name` (a built-in, or a connection id) for a
    /// payment of `tenant`. A name that is neither, or a connection that is
    /// not the tenant's, is a corrupt record (the name was written by the
    /// payment's creation from the merchant's route).
    pub async fn resolve<S: ConnectionStore>(
        &self,
        store: &S,
        tenant: &Tenant,
        name: &str,
    ) -> Result<Arc<dyn Connector>, ServiceError> {
        let unknown = || ServiceError::Store(StoreError::Corrupt(format!("unknown connector {name}")));
        if !name.starts_with(ConnectionId::PREFIX) {
            return self.connectors.get(name).ok_or_else(unknown);
        }
        if let Some(cached) = self.lock().get(name).filter(|c| &c.tenant == tenant) {
            return Ok(Arc::clone(&cached.connector));
        }
        let id = ConnectionId::parse(name).map_err(|_| unknown())?;
        let row = store.get_connection(tenant, &id).await?.ok_or_else(unknown)?;
        let credentials = super::open_credentials(self.keyring.as_ref(), &row)?;
        let connector = match self.connectors.for_connection(&credentials) {
            Ok(connector) => connector,
            Err(e) => {
                // The operator's Stripe settings (base URL, CA) are wrong:
                // the payment fails as a configuration error, with the fix
                // in the log.
                tracing::error!(connection = %id, error = %e, "cannot build the connector of a processor connection");
                return Ok(Arc::new(Misconfigured(e)));
            }
        };
        let mut cache = self.lock();
        if cache.len() >= CAPACITY {
            cache.clear();
        }
        cache.insert(
            name.to_owned(),
            Cached {
                tenant: tenant.clone(),
                connector: Arc::clone(&connector),
            },
        );
        Ok(connector)
    }
}

/// A connection whose connector could not be built: every call fails with
/// the reason (a configuration error), and nothing is cached.
struct Misconfigured(crate::connectors::ConnectorError);

mod misconfigured {
    use futures_util::future::BoxFuture;
    use futures_util::FutureExt;

    use super::Misconfigured;
    use crate::connectors::{
        AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, FoundRefund, InboundEvent,
        InboundHeaders, RefundOutcome, RemoteStatus,
    };
    use crate::domain::ids::{PaymentId, RefundId};
    use crate::domain::money::Money;

    impl Connector for Misconfigured {
        fn name(&self) -> &'static str {
            "misconfigured"
        }

        fn has_external_effects(&self) -> bool {
            false
        }

        fn authorize<'a>(&'a self, _: AuthorizeRequest<'a>) -> BoxFuture<'a, Result<AuthorizeOutcome, ConnectorError>> {
            async { Err(self.0.clone()) }.boxed()
        }

        fn capture<'a>(&'a self, _: &'a str, _: Money) -> BoxFuture<'a, Result<CaptureOutcome, ConnectorError>> {
            async { Err(self.0.clone()) }.boxed()
        }

        fn void<'a>(&'a self, _: &'a str) -> BoxFuture<'a, Result<(), ConnectorError>> {
            async { Err(self.0.clone()) }.boxed()
        }

        fn refund<'a>(
            &'a self,
            _: &'a str,
            _: &'a RefundId,
            _: Money,
        ) -> BoxFuture<'a, Result<RefundOutcome, ConnectorError>> {
            async { Err(self.0.clone()) }.boxed()
        }

        fn sync<'a>(&'a self, _: &'a PaymentId) -> BoxFuture<'a, Result<RemoteStatus, ConnectorError>> {
            async { Err(self.0.clone()) }.boxed()
        }

        fn sync_refund<'a>(
            &'a self,
            _: &'a str,
            _: &'a RefundId,
        ) -> BoxFuture<'a, Result<Option<FoundRefund>, ConnectorError>> {
            async { Err(self.0.clone()) }.boxed()
        }

        fn parse_webhook(&self, _: &InboundHeaders, _: &[u8]) -> Result<InboundEvent, ConnectorError> {
            Err(self.0.clone())
        }
    }
}
