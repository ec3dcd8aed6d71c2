//! Freezing a single API key (incident containment narrower than a merchant
//! freeze): a frozen key is refused with 403 `key_frozen` from the next
//! request on, on every replica, until an operator unfreezes it.
//!
//! Who may freeze: an operator (`paywarden keys freeze`) or an anomaly
//! policy (`freeze_key`, staged in the same unit of work as the anomaly it
//! answers). Who may unfreeze: only an operator; no API route reaches this.
//!
//! Invariants: every freeze and unfreeze commits with its audit entry, and
//! returns only after `auth_state_changed` (no gateway still holds the key
//! as verified in its authentication cache: see `services::auth::cache`). A
//! request already past authentication runs to its end, so a freeze never
//! leaves a payment half-done; the key's next request is refused.

use crate::domain::api_key::ApiKey;
use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::ids::ApiKeyId;
use crate::domain::merchant::{Freeze, FreezeReason};
use crate::domain::time::Timestamp;
use crate::store::ports::{ApiKeyStore, Commit};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

use super::actor::Actor;
use super::ServiceError;

/// The audit action of a freeze.
pub const FROZEN: &str = "api_key.frozen";
/// The audit action of an unfreeze.
pub const UNFROZEN: &str = "api_key.unfrozen";

fn missing() -> ServiceError {
    ServiceError::NotFound {
        resource: "api_key",
        param: "id",
    }
}

fn already() -> ServiceError {
    ServiceError::Conflict {
        code: "api_key_already_frozen",
        message: "this key is already frozen".into(),
    }
}

/// The audit entry of a freeze or unfreeze of `key`.
pub fn event(actor: &Actor, action: &str, key: &ApiKey, reason: &FreezeReason) -> AuditEvent {
    let mut event = actor.event(action, Outcome::Success);
    event.merchant_id = Some(key.merchant_id.to_string());
    event.mode = Some(key.mode);
    event.key_id = Some(key.id.to_string());
    event.resource = Some(key.id.to_string());
    event.reason = Some(reason.as_str().to_owned());
    event
}

/// Stages freezing `key` with its audit entry in `work` (for callers that
/// commit it together with their own change, as an anomaly policy does).
/// The caller must call `auth_state_changed` after the commit.
pub fn stage<S: ApiKeyStore>(store: &S, work: &mut UnitOfWork, actor: &Actor, key: &ApiKey, freeze: &Freeze) {
    store.freeze_key(work, &key.id, freeze);
    work.audit(event(actor, FROZEN, key, &freeze.reason));
}

/// Freezes the key `id` (operator use): refused from the next request on,
/// on every replica, when this returns.
pub async fn freeze<S: ApiKeyStore + Commit>(
    store: &S,
    actor: &Actor,
    id: &ApiKeyId,
    reason: FreezeReason,
) -> Result<ApiKey, ServiceError> {
    let key = store.get_key(id).await?.ok_or_else(missing)?;
    if key.frozen.is_some() {
        return Err(already());
    }
    let freeze = Freeze {
        at: Timestamp::now(),
        reason,
    };
    let mut work = UnitOfWork::new();
    stage(store, &mut work, actor, &key, &freeze);
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => already(),
        other => other.into(),
    })?;
    store.auth_state_changed().await;
    Ok(ApiKey {
        frozen: Some(freeze),
        ..key
    })
}

/// Lifts the freeze of the key `id` (operator use only): the key works
/// again if it is otherwise usable.
pub async fn unfreeze<S: ApiKeyStore + Commit>(
    store: &S,
    actor: &Actor,
    id: &ApiKeyId,
    reason: FreezeReason,
) -> Result<ApiKey, ServiceError> {
    let key = store.get_key(id).await?.ok_or_else(missing)?;
    let mut work = UnitOfWork::new();
    store.unfreeze_key(&mut work, &key.id);
    work.audit(event(actor, UNFROZEN, &key, &reason));
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict {
            code: "api_key_not_frozen",
            message: "this key is not frozen".into(),
        },
        other => other.into(),
    })?;
    store.auth_state_changed().await;
    Ok(ApiKey { frozen: None, ..key })
}

/// The use cases against the in-memory double of the storage ports.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::api_key::{KeyKind, Mode};
    use crate::domain::merchant::MerchantName;
    use crate::services::api_keys::{issue, KeyPolicy, NewKey};
    use crate::services::key_hasher::KeyHasher;
    use crate::store::memory::MemoryStore;
    use crate::store::ports::AuditStore;

    fn operator() -> Actor {
        Actor::Operator {
            command: "keys freeze test".into(),
        }
    }

    #[tokio::test]
    async fn freeze_and_unfreeze_each_apply_once_and_are_audited() {
        let store = MemoryStore::new();
        let merchant = crate::services::merchants::create(&store, &operator(), MerchantName::parse("K").unwrap())
            .await
            .unwrap();
        let hasher = KeyHasher::new(secrecy::SecretBox::new(Box::new([7u8; 32])));
        let issued = issue(
            &store,
            &hasher,
            &KeyPolicy::default(),
            &operator(),
            NewKey {
                merchant: merchant.id.clone(),
                kind: KeyKind::Secret,
                mode: Mode::Test,
                permissions: Vec::new(),
                restrictions: Default::default(),
                expires_in: None,
                description: None,
            },
        )
        .await
        .unwrap();
        let id = issued.key.id.clone();
        let reason = || FreezeReason::parse("suspicious traffic").unwrap();
        let frozen = freeze(&store, &operator(), &id, reason()).await.unwrap();
        assert_eq!(frozen.frozen.map(|f| f.reason), Some(reason()));
        assert!(store.get_key(&id).await.unwrap().unwrap().frozen.is_some());
        assert!(matches!(
            freeze(&store, &operator(), &id, reason()).await,
            Err(ServiceError::Conflict {
                code: "api_key_already_frozen",
                ..
            })
        ));
        unfreeze(&store, &operator(), &id, reason()).await.unwrap();
        assert!(store.get_key(&id).await.unwrap().unwrap().frozen.is_none());
        assert!(matches!(
            unfreeze(&store, &operator(), &id, reason()).await,
            Err(ServiceError::Conflict {
                code: "api_key_not_frozen",
                ..
            })
        ));
        assert!(matches!(
            freeze(&store, &operator(), &ApiKeyId::generate().unwrap(), reason()).await,
            Err(ServiceError::NotFound { .. })
        ));
        let actions: Vec<String> = store
            .audit_page(0, 100)
            .await
            .unwrap()
            .into_iter()
            .map(|r| r.event.action)
            .collect();
        assert_eq!(actions.iter().filter(|a| *a == FROZEN).count(), 1);
        assert_eq!(actions.iter().filter(|a| *a == UNFROZEN).count(), 1);
    }
}
