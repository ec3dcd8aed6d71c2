//! Merchant use cases: create, update, freeze and unfreeze (each audited in
//! its unit of work), get, list.

use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::ids::MerchantId;
use crate::domain::merchant::{ElementOrigin, Freeze, FreezeReason, Merchant, MerchantName};
use crate::domain::time::Timestamp;
use crate::store::unit_of_work::UnitOfWork;
use crate::store::{self, Store, StoreError};

use super::actor::Actor;
use super::ServiceError;

/// Where a new merchant's payments go until configured otherwise.
pub const DEFAULT_CONNECTOR: &str = "sandbox";

fn missing() -> ServiceError {
    ServiceError::NotFound {
        resource: "merchant",
        param: "merchant",
    }
}

pub async fn create(store: &Store, actor: &Actor, name: MerchantName) -> Result<Merchant, ServiceError> {
    let merchant = Merchant {
        id: MerchantId::generate()?,
        name,
        created_at: Timestamp::now(),
        element_origins: Vec::new(),
        connector: DEFAULT_CONNECTOR.to_owned(),
        frozen: None,
    };
    let mut event = actor.event("merchant.created", Outcome::Success);
    event.merchant_id = Some(merchant.id.to_string());
    event.resource = Some(merchant.id.to_string());
    let mut work = UnitOfWork::new();
    store::merchants::insert(&mut work, &merchant);
    work.audit(event);
    store.commit(work).await?;
    Ok(merchant)
}

pub async fn get(store: &Store, id: &MerchantId) -> Result<Merchant, ServiceError> {
    store::merchants::get(store.reader(), id).await?.ok_or_else(missing)
}

/// Whether the merchant was ever issued a live key: from then on its
/// merchant-wide settings belong to its live secret keys.
pub async fn has_live_keys(store: &Store, id: &MerchantId) -> Result<bool, ServiceError> {
    Ok(store::api_keys::merchant_has_live_keys(store.reader(), id).await?)
}

pub async fn list(store: &Store, after: Option<&MerchantId>, limit: i64) -> Result<Vec<Merchant>, ServiceError> {
    Ok(store::merchants::list(store.reader(), after.map(MerchantId::as_str), limit).await?)
}

/// What a merchant may change about itself; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct MerchantChanges {
    pub name: Option<MerchantName>,
    pub element_origins: Option<Vec<ElementOrigin>>,
}

/// Applies `changes`; the change and its audit entry commit together.
pub async fn update(
    store: &Store,
    actor: &Actor,
    id: &MerchantId,
    changes: MerchantChanges,
) -> Result<Merchant, ServiceError> {
    let mut changed = Vec::new();
    let mut work = UnitOfWork::new();
    if let Some(name) = &changes.name {
        store::merchants::update_name(&mut work, id, name);
        changed.push("name".to_owned());
    }
    if let Some(origins) = &changes.element_origins {
        store::merchants::update_element_origins(&mut work, id, origins);
        let list: Vec<&str> = origins.iter().map(ElementOrigin::as_str).collect();
        changed.push(format!("element_origins = [{}]", list.join(", ")));
    }
    let mut event = actor.event("merchant.updated", Outcome::Success);
    event.merchant_id = Some(id.to_string());
    event.resource = Some(id.to_string());
    event.reason = Some(format!("changed: {}", changed.join("; ")));
    work.audit(event);
    if changed.is_empty() {
        // Nothing to change: still an existing merchant, or not found.
        get(store, id).await?;
    }
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => missing(),
        other => other.into(),
    })?;
    let merchant = get(store, id).await?;
    // Requests read the merchant along with their key: the change applies
    // from the next request on, on every replica.
    store.auth_state_changed().await;
    Ok(merchant)
}

/// Freezes a merchant: every one of its keys is refused from the next request
/// on, on every replica (this returns only once no gateway can still hold a
/// key of it as verified). Reversible with [`unfreeze`]; nothing else changes.
pub async fn freeze(
    store: &Store,
    actor: &Actor,
    id: &MerchantId,
    reason: FreezeReason,
) -> Result<Merchant, ServiceError> {
    let freeze = Freeze {
        at: Timestamp::now(),
        reason,
    };
    let event = freeze_event(actor, "merchant.frozen", id, &freeze.reason);
    let current = get(store, id).await?;
    let already = || ServiceError::Conflict {
        code: "merchant_already_frozen",
        message: "this merchant is already frozen".into(),
    };
    if current.frozen.is_some() {
        return Err(already());
    }
    let mut work = UnitOfWork::new();
    store::merchants::freeze(&mut work, id, &freeze);
    work.audit(event);
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => already(),
        other => other.into(),
    })?;
    store.auth_state_changed().await;
    Ok(Merchant {
        frozen: Some(freeze),
        ..current
    })
}

/// Lifts a freeze: the merchant's keys that are otherwise usable work again.
pub async fn unfreeze(
    store: &Store,
    actor: &Actor,
    id: &MerchantId,
    reason: FreezeReason,
) -> Result<Merchant, ServiceError> {
    let event = freeze_event(actor, "merchant.unfrozen", id, &reason);
    let current = get(store, id).await?;
    let mut work = UnitOfWork::new();
    store::merchants::unfreeze(&mut work, id);
    work.audit(event);
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict {
            code: "merchant_not_frozen",
            message: "this merchant is not frozen".into(),
        },
        other => other.into(),
    })?;
    store.auth_state_changed().await;
    Ok(Merchant {
        frozen: None,
        ..current
    })
}

/// The audit entry of a freeze or unfreeze, with the operator's reason.
fn freeze_event(actor: &Actor, action: &str, id: &MerchantId, reason: &FreezeReason) -> AuditEvent {
    let mut event = actor.event(action, Outcome::Success);
    event.merchant_id = Some(id.to_string());
    event.resource = Some(id.to_string());
    event.reason = Some(reason.as_str().to_owned());
    event
}
