//! Processor connections: a merchant connects its own processor account
//! (Stripe) per mode, makes it the default for new payments of that mode,
//! lists, shows and disables its connections; KEK rotation re-wraps their
//! credentials ([`rewrap_credentials`]). Which connector a payment's call
//! goes to, and the cache of built connectors, is [`routing`]'s.
//!
//! Invariants: credentials are sealed by the vault (bound to merchant, mode
//! and connection id) before anything is written, and exist in clear only in
//! zeroizing types; no answer, error, log line or audit entry carries them,
//! only the key's last four; each change commits with its audit entry and
//! the merchant's route in one unit of work; a connection of another merchant
//! or of the other mode is reported exactly like a missing one. A change of
//! the default is acknowledged only once every replica routes by it
//! (`Commit::auth_state_changed`: the route travels with the authenticated
//! merchant).

pub mod failover;
pub mod inbound;
pub mod routing;

use crate::domain::api_key::Mode;
use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::connection::{Connection, ConnectionKind, ConnectionStatus, Credentials};
use crate::domain::ids::{ConnectionId, MerchantId};
use crate::domain::merchant::Merchant;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::ports::{Commit, ConnectionStore, MerchantStore};
use crate::store::processor_connections::ConnectionRow;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{Store, StoreError};
use crate::vault::{self, ConnectionAad, KekProvider, KekVersion, Sealed, VaultError};

use super::actor::Actor;
use super::ServiceError;

pub use routing::Routing;

/// What the connection services need besides their arguments.
/// `S` is the gateway's [`Store`] but in the store contract tests.
pub struct Context<'a, S = Store> {
    pub store: &'a S,
    pub keyring: &'a dyn KekProvider,
    pub actor: &'a Actor,
    /// The caller's merchant and mode: the only connections it reaches.
    pub tenant: &'a Tenant,
}

impl<S> Context<'_, S> {
    /// An audit event of this caller about connection `id`: its kind and
    /// key hint, never the key.
    fn event(&self, action: &str, id: &ConnectionId, detail: String) -> AuditEvent {
        let mut event = self.actor.event(action, Outcome::Success);
        event.merchant_id = Some(self.tenant.merchant().to_string());
        event.mode = Some(self.tenant.mode());
        event.resource = Some(id.to_string());
        event.reason = Some(detail);
        event
    }
}

/// A parsed `POST /v1/connectors`.
#[derive(Debug)]
pub struct NewConnection {
    /// Parsed for the caller's mode (a key of the other mode never gets here).
    pub credentials: Credentials,
    /// Route the mode's new payments to it.
    pub make_default: bool,
}

fn not_found() -> ServiceError {
    ServiceError::NotFound {
        resource: "connector",
        param: "id",
    }
}

fn aad<'a>(merchant_id: &'a str, mode: Mode, connection_id: &'a str) -> ConnectionAad<'a> {
    ConnectionAad {
        merchant_id,
        mode,
        connection_id,
    }
}

fn corrupt(what: &str) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt(format!("processor_connections.{what}")))
}

/// A row as merchants see it; `merchant` gives the default.
fn connection(row: &ConnectionRow, merchant: Option<&Merchant>) -> Result<Connection, ServiceError> {
    let mode = Mode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?;
    let is_default = merchant.is_some_and(|m| m.route(mode) == row.id);
    Ok(Connection {
        id: ConnectionId::from_trusted(row.id.clone()),
        tenant: Tenant::new(MerchantId::from_trusted(row.merchant_id.clone()), mode),
        kind: ConnectionKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?,
        status: ConnectionStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
        secret_key_last4: row.secret_key_last4.clone(),
        has_webhook_secret: row.has_webhook_secret != 0,
        created_at: Timestamp::from_millis(row.created_at),
        disabled_at: row.disabled_at.map(Timestamp::from_millis),
        is_default,
        fallback: row.fallback.clone().map(ConnectionId::from_trusted),
    })
}

/// Connects a processor account: seals the credentials, stores the
/// connection and, when asked, routes the mode's new payments to it, with
/// its audit entry, in one unit.
pub async fn create<S: ConnectionStore + MerchantStore + Commit>(
    cx: &Context<'_, S>,
    new: NewConnection,
) -> Result<Connection, ServiceError> {
    let id = ConnectionId::generate()?;
    let tenant = cx.tenant;
    let plain = new.credentials.encode();
    let sealed = vault::seal(
        cx.keyring,
        aad(tenant.merchant_str(), tenant.mode(), id.as_str()),
        &plain,
    )?;
    drop(plain);
    let kind = new.credentials.kind();
    let row = ConnectionRow {
        id: id.to_string(),
        merchant_id: tenant.merchant_str().to_owned(),
        mode: tenant.mode_str().to_owned(),
        kind: kind.as_str().to_owned(),
        status: ConnectionStatus::Active.as_str().to_owned(),
        secret_key_last4: new.credentials.hint(),
        has_webhook_secret: i64::from(new.credentials.has_webhook_secret()),
        kek_version: i64::from(sealed.kek_version().get()),
        wrapped_dek: sealed.wrapped_dek_base64(),
        ciphertext: sealed.ciphertext_base64(),
        created_at: Timestamp::now().as_millis(),
        disabled_at: None,
        fallback: None,
    };
    let detail = format!(
        "type {}, secret key ending {}{}{}",
        kind.as_str(),
        row.secret_key_last4,
        if row.has_webhook_secret != 0 {
            ", webhook secret set"
        } else {
            ""
        },
        if new.make_default { ", made the default" } else { "" }
    );
    let mut work = UnitOfWork::new();
    cx.store.insert_connection(&mut work, &row);
    if new.make_default {
        cx.store.set_merchant_route(&mut work, tenant, Some(&row.id));
    }
    work.audit(cx.event("connector.created", &id, detail));
    cx.store.commit(work).await?;
    if new.make_default {
        cx.store.auth_state_changed().await;
    }
    let mut shown = connection(&row, None)?;
    shown.is_default = new.make_default;
    Ok(shown)
}

pub async fn get<S: ConnectionStore + MerchantStore>(
    store: &S,
    tenant: &Tenant,
    id: &ConnectionId,
) -> Result<Connection, ServiceError> {
    let row = store.get_connection(tenant, id).await?.ok_or_else(not_found)?;
    let merchant = store.get_merchant(tenant.merchant()).await?;
    connection(&row, merchant.as_ref())
}

pub async fn list<S: ConnectionStore + MerchantStore>(
    store: &S,
    tenant: &Tenant,
    after: Option<&ConnectionId>,
    limit: i64,
) -> Result<Vec<Connection>, ServiceError> {
    let rows = store.list_connections(tenant, after, limit).await?;
    let merchant = store.get_merchant(tenant.merchant()).await?;
    rows.iter().map(|row| connection(row, merchant.as_ref())).collect()
}

/// Disables the connection: no new payment goes to it (if it was the
/// default, the mode falls back to the sandbox in test mode and to no
/// connector in live mode), but payments made with it keep being captured,
/// canceled and refunded through it. Disabling a disabled connection
/// changes nothing.
pub async fn disable<S: ConnectionStore + MerchantStore + Commit>(
    cx: &Context<'_, S>,
    routing: &Routing,
    id: &ConnectionId,
) -> Result<Connection, ServiceError> {
    let tenant = cx.tenant;
    let row = cx.store.get_connection(tenant, id).await?.ok_or_else(not_found)?;
    if row.status == ConnectionStatus::Disabled.as_str() {
        let merchant = cx.store.get_merchant(tenant.merchant()).await?;
        return connection(&row, merchant.as_ref());
    }
    let was_default = cx
        .store
        .get_merchant(tenant.merchant())
        .await?
        .is_some_and(|m| m.route(tenant.mode()) == row.id);
    let now = Timestamp::now().as_millis();
    let detail = format!(
        "type {}, secret key ending {}{}",
        row.kind,
        row.secret_key_last4,
        if was_default { ", was the default" } else { "" }
    );
    let mut work = UnitOfWork::new();
    cx.store.disable_connection(&mut work, tenant, id, now);
    cx.store.unroute_merchant(&mut work, tenant, id);
    work.audit(cx.event("connector.disabled", id, detail));
    cx.store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict {
            code: "connector_changed",
            message: "the connector changed during the request; read it again".into(),
        },
        other => other.into(),
    })?;
    // This replica builds it again, from the database, if a payment made
    // with it needs it; its credentials leave memory now.
    routing.forget(id);
    if was_default {
        cx.store.auth_state_changed().await;
    }
    let disabled = ConnectionRow {
        status: ConnectionStatus::Disabled.as_str().to_owned(),
        disabled_at: Some(now),
        ..row
    };
    connection(&disabled, None)
}

fn sealed_of(row: &ConnectionRow) -> Result<Sealed, VaultError> {
    let version = u32::try_from(row.kek_version).map_err(|_| VaultError::Malformed("kek version"))?;
    Sealed::from_base64(KekVersion::new(version), &row.wrapped_dek, &row.ciphertext)
}

/// Opens a connection's credentials (for the connector that uses them).
pub fn open_credentials<P: KekProvider + ?Sized>(
    keyring: &P,
    row: &ConnectionRow,
) -> Result<Credentials, ServiceError> {
    let mode = Mode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?;
    let kind = ConnectionKind::parse(&row.kind).ok_or_else(|| corrupt("kind"))?;
    let plain = vault::open(keyring, aad(&row.merchant_id, mode, &row.id), &sealed_of(row)?)?;
    Credentials::decode(kind, mode, &plain).ok_or_else(|| corrupt("credentials"))
}

/// KEK rotation of connections' credentials: re-wraps every data key not
/// under `to`, each conditionally on being unchanged, until `budget`
/// records (all, if `None`) have been handled. Returns (re-wrapped,
/// skipped).
pub async fn rewrap_credentials<S: ConnectionStore + Commit>(
    store: &S,
    keyring: &dyn KekProvider,
    to: KekVersion,
    budget: Option<u64>,
) -> Result<(u64, u64), ServiceError> {
    let target = i64::from(to.get());
    let page = |after: String| async move { store.connections_not_at_kek_version(target, &after, 200).await };
    super::kek_rotation::walk_records(
        store,
        budget,
        page,
        |row: &ConnectionRow| &row.id,
        |row, work, changed| {
            let mode = Mode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?;
            let new = vault::rewrap(keyring, aad(&row.merchant_id, mode, &row.id), &sealed_of(row)?, to)?;
            store.rewrap_connection(
                work,
                &row.id,
                &row.wrapped_dek,
                target,
                &new.wrapped_dek_base64(),
                changed,
            );
            Ok(Some(1))
        },
    )
    .await
}

/// Sealed connection credentials per KEK version.
pub async fn credentials_by_kek_version<S: ConnectionStore>(store: &S) -> Result<Vec<(i64, i64)>, ServiceError> {
    Ok(store.connection_credentials_by_kek_version().await?)
}

/// A merchant's connections in both modes (operators).
pub async fn list_for_merchant<S: ConnectionStore + MerchantStore>(
    store: &S,
    merchant: &MerchantId,
) -> Result<Vec<Connection>, ServiceError> {
    let owner = store.get_merchant(merchant).await?.ok_or(ServiceError::NotFound {
        resource: "merchant",
        param: "merchant",
    })?;
    let mut out = Vec::new();
    let mut after = String::new();
    loop {
        let page = store.list_merchant_connections(merchant, &after, 200).await?;
        let Some(last) = page.last() else { break };
        after.clone_from(&last.id);
        for row in &page {
            out.push(connection(row, Some(&owner))?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
