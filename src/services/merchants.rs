//! Merchant use cases: create, update, freeze and unfreeze (each audited in
//! its unit of work), get, list.

use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::ids::MerchantId;
use crate::domain::merchant::{ElementOrigin, Freeze, FreezeReason, Merchant, MerchantName};
use crate::domain::time::Timestamp;
use crate::store::ports::{ApiKeyStore, Commit, MerchantStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

use super::actor::Actor;
use super::ServiceError;

/// Where a new merchant's payments go until configured otherwise.
pub const DEFAULT_CONNECTOR: &str = crate::domain::merchant::DEFAULT_TEST_CONNECTOR;

fn missing() -> ServiceError {
    ServiceError::NotFound {
        resource: "merchant",
        param: "merchant",
    }
}

pub async fn create<S: MerchantStore + Commit>(
    store: &S,
    actor: &Actor,
    name: MerchantName,
) -> Result<Merchant, ServiceError> {
    let merchant = Merchant {
        id: MerchantId::generate()?,
        name,
        created_at: Timestamp::now(),
        element_origins: Vec::new(),
        connector: DEFAULT_CONNECTOR.to_owned(),
        live_connector: None,
        frozen: None,
    };
    let mut event = actor.event("merchant.created", Outcome::Success);
    event.merchant_id = Some(merchant.id.to_string());
    event.resource = Some(merchant.id.to_string());
    let mut work = UnitOfWork::new();
    store.insert_merchant(&mut work, &merchant);
    work.audit(event);
    store.commit(work).await?;
    Ok(merchant)
}

pub async fn get<S: MerchantStore>(store: &S, id: &MerchantId) -> Result<Merchant, ServiceError> {
    store.get_merchant(id).await?.ok_or_else(missing)
}

/// Whether the merchant was ever issued a live key: from then on its
/// merchant-wide settings belong to its live secret keys.
pub async fn has_live_keys<S: ApiKeyStore>(store: &S, id: &MerchantId) -> Result<bool, ServiceError> {
    Ok(store.merchant_has_live_keys(id).await?)
}

pub async fn list<S: MerchantStore>(
    store: &S,
    after: Option<&MerchantId>,
    limit: i64,
) -> Result<Vec<Merchant>, ServiceError> {
    Ok(store.list_merchants(after, limit).await?)
}

/// What a merchant may change about itself; `None` leaves a field as it is.
#[derive(Debug, Default)]
pub struct MerchantChanges {
    pub name: Option<MerchantName>,
    pub element_origins: Option<Vec<ElementOrigin>>,
}

/// Applies `changes`; the change and its audit entry commit together.
pub async fn update<S: MerchantStore + Commit>(
    store: &S,
    actor: &Actor,
    id: &MerchantId,
    changes: MerchantChanges,
) -> Result<Merchant, ServiceError> {
    let mut changed = Vec::new();
    let mut work = UnitOfWork::new();
    if let Some(name) = &changes.name {
        store.rename_merchant(&mut work, id, name);
        changed.push("name".to_owned());
    }
    if let Some(origins) = &changes.element_origins {
        store.set_element_origins(&mut work, id, origins);
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
pub async fn freeze<S: MerchantStore + Commit>(
    store: &S,
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
    store.freeze_merchant(&mut work, id, &freeze);
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
pub async fn unfreeze<S: MerchantStore + Commit>(
    store: &S,
    actor: &Actor,
    id: &MerchantId,
    reason: FreezeReason,
) -> Result<Merchant, ServiceError> {
    let event = freeze_event(actor, "merchant.unfrozen", id, &reason);
    let current = get(store, id).await?;
    let mut work = UnitOfWork::new();
    store.unfreeze_merchant(&mut work, id);
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

/// The use cases against the in-memory double of the storage ports.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::memory::MemoryStore;
    use crate::store::ports::AuditStore;

    fn operator() -> Actor {
        Actor::Operator {
            command: "merchants test".into(),
        }
    }

    async fn actions(store: &MemoryStore) -> Vec<String> {
        let page = store.audit_page(0, 100).await.unwrap();
        page.into_iter().map(|r| r.event.action).collect()
    }

    #[tokio::test]
    async fn a_created_merchant_is_audited_and_read_back() {
        let store = MemoryStore::new();
        let merchant = create(&store, &operator(), MerchantName::parse("Acme").unwrap())
            .await
            .unwrap();
        assert_eq!(merchant.connector, DEFAULT_CONNECTOR);
        let read = get(&store, &merchant.id).await.unwrap();
        assert_eq!(read.name.as_str(), "Acme");
        assert_eq!(list(&store, None, 10).await.unwrap().len(), 1);
        let page = store.audit_page(0, 10).await.unwrap();
        assert_eq!(page.len(), 1);
        assert_eq!(page[0].event.action, "merchant.created");
        assert_eq!(page[0].event.resource.as_deref(), Some(merchant.id.as_str()));
        assert!(!has_live_keys(&store, &merchant.id).await.unwrap());
    }

    #[tokio::test]
    async fn an_update_changes_the_merchant_with_its_audit_entry() {
        let store = MemoryStore::new();
        let merchant = create(&store, &operator(), MerchantName::parse("Old").unwrap())
            .await
            .unwrap();
        let changes = MerchantChanges {
            name: Some(MerchantName::parse("New").unwrap()),
            element_origins: Some(vec![ElementOrigin::parse("https://shop.example").unwrap()]),
        };
        let updated = update(&store, &operator(), &merchant.id, changes).await.unwrap();
        assert_eq!(updated.name.as_str(), "New");
        assert_eq!(updated.element_origins.len(), 1);
        let page = store.audit_page(0, 10).await.unwrap();
        let entry = &page[1];
        assert_eq!(entry.event.action, "merchant.updated");
        assert_eq!(
            entry.event.reason.as_deref(),
            Some("changed: name; element_origins = [https://shop.example]")
        );
    }

    #[tokio::test]
    async fn updating_a_missing_merchant_is_not_found_and_writes_nothing() {
        let store = MemoryStore::new();
        let missing = MerchantId::generate().unwrap();
        for changes in [
            MerchantChanges::default(),
            MerchantChanges {
                name: Some(MerchantName::parse("Nobody").unwrap()),
                element_origins: None,
            },
        ] {
            let result = update(&store, &operator(), &missing, changes).await;
            assert!(
                matches!(
                    result,
                    Err(ServiceError::NotFound {
                        resource: "merchant",
                        ..
                    })
                ),
                "{result:?}"
            );
        }
        assert!(
            actions(&store).await.is_empty(),
            "no audit entry of a change that did not happen"
        );
    }

    #[tokio::test]
    async fn freeze_and_unfreeze_each_apply_once() {
        let store = MemoryStore::new();
        let merchant = create(&store, &operator(), MerchantName::parse("Icy").unwrap())
            .await
            .unwrap();
        let reason = || FreezeReason::parse("fraud review").unwrap();
        let frozen = freeze(&store, &operator(), &merchant.id, reason()).await.unwrap();
        assert_eq!(frozen.frozen.as_ref().map(|f| f.reason.as_str()), Some("fraud review"));
        assert!(get(&store, &merchant.id).await.unwrap().frozen.is_some());
        let again = freeze(&store, &operator(), &merchant.id, reason()).await;
        assert!(
            matches!(
                again,
                Err(ServiceError::Conflict {
                    code: "merchant_already_frozen",
                    ..
                })
            ),
            "{again:?}"
        );
        let thawed = unfreeze(&store, &operator(), &merchant.id, reason()).await.unwrap();
        assert!(thawed.frozen.is_none());
        assert!(get(&store, &merchant.id).await.unwrap().frozen.is_none());
        let again = unfreeze(&store, &operator(), &merchant.id, reason()).await;
        assert!(
            matches!(
                again,
                Err(ServiceError::Conflict {
                    code: "merchant_not_frozen",
                    ..
                })
            ),
            "{again:?}"
        );
        let missing = freeze(&store, &operator(), &MerchantId::generate().unwrap(), reason()).await;
        assert!(matches!(missing, Err(ServiceError::NotFound { .. })), "{missing:?}");
        assert_eq!(
            actions(&store).await,
            ["merchant.created", "merchant.frozen", "merchant.unfrozen"]
        );
        let report = crate::services::audit::verify(&store).await.unwrap();
        assert!(report.intact(), "{report:?}");
        assert_eq!(report.entries_checked, 3);
    }
}
