//! API key lifecycle: issue, rotate (with a grace period), revoke, list.
//!
//! Invariants: the plaintext is returned exactly once, from `issue`/`rotate`,
//! and stored only as its keyed hash; every change commits together with its
//! audit entry; live keys always carry an expiry no later than the policy's
//! maximum lifetime; a lookup scoped to a merchant never finds another
//! merchant's key (it is reported as not found).

use std::time::Duration;

use crate::domain::api_key::{ApiKey, MAX_DESCRIPTION_CHARS};
use crate::domain::api_key::{ApiKeySecret, KeyKind, Mode};
use crate::domain::audit::Outcome;
use crate::domain::ids::{ApiKeyId, MerchantId};
use crate::domain::permission::Permission;
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::ports::{ApiKeyStore, Commit, MerchantStore};
use crate::store::unit_of_work::UnitOfWork;
use crate::store::StoreError;

use super::actor::Actor;
use super::key_hasher::KeyHasher;
use super::ServiceError;

/// Limits on what may be issued.
#[derive(Debug, Clone)]
pub struct KeyPolicy {
    /// Longest lifetime of a live key; also its default.
    pub max_live_lifetime: Duration,
}

impl Default for KeyPolicy {
    fn default() -> Self {
        Self {
            max_live_lifetime: Duration::from_secs(365 * 86_400),
        }
    }
}

/// What the caller asks for when issuing a key.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub merchant: MerchantId,
    pub kind: KeyKind,
    pub mode: Mode,
    pub permissions: Vec<Permission>,
    pub restrictions: KeyRestrictions,
    pub expires_in: Option<Duration>,
    pub description: Option<String>,
}

/// A freshly issued key: its record and the plaintext, to be shown once.
#[derive(Debug)]
pub struct IssuedKey {
    pub key: ApiKey,
    pub secret: ApiKeySecret,
}

pub async fn issue<S: ApiKeyStore + MerchantStore + Commit>(
    store: &S,
    hasher: &KeyHasher,
    policy: &KeyPolicy,
    actor: &Actor,
    new: NewKey,
) -> Result<IssuedKey, ServiceError> {
    check_shape(&new)?;
    let now = Timestamp::now();
    let expires_at = expiry(policy, new.mode, new.expires_in, now)?;
    if store.get_merchant(&new.merchant).await?.is_none() {
        return Err(ServiceError::NotFound {
            resource: "merchant",
            param: "merchant",
        });
    }
    let (key, secret) = build(new, now, expires_at)?;
    let mut event = actor.event("api_key.created", Outcome::Success);
    event.merchant_id = Some(key.merchant_id.to_string());
    event.mode = Some(key.mode);
    event.resource = Some(key.id.to_string());
    event.reason = Some(format!("{} {} key", key.mode.as_str(), key.kind.as_str()));
    let mut work = UnitOfWork::new();
    store.insert_key(&mut work, &key, &hasher.hash(&secret));
    work.audit(event);
    store.commit(work).await?;
    Ok(IssuedKey { key, secret })
}

/// Issues a successor with the same kind, mode, permissions and restrictions;
/// the old key keeps working for `grace`, then is refused.
pub async fn rotate<S: ApiKeyStore + Commit>(
    store: &S,
    hasher: &KeyHasher,
    actor: &Actor,
    scope: KeyScope<'_>,
    id: &ApiKeyId,
    grace: Duration,
) -> Result<IssuedKey, ServiceError> {
    let now = Timestamp::now();
    let old = find(store, scope, id).await?;
    if old.revoked_at.is_some() || old.usable_at(now).is_err() {
        return Err(ServiceError::Conflict {
            code: "api_key_not_active",
            message: "a revoked or expired key cannot be rotated".into(),
        });
    }
    if old.rotated_to.is_some() {
        return Err(ServiceError::Conflict {
            code: "api_key_already_rotated",
            message: "this key was already rotated".into(),
        });
    }
    // The successor keeps the original lifetime length (live keys must expire).
    let expires_at = old
        .expires_at
        .map(|at| Timestamp::from_millis(now.as_millis() + (at.as_millis() - old.created_at.as_millis())));
    let grace_end = now.saturating_add(grace);
    let old_ends = old.expires_at.map_or(grace_end, |at| at.min(grace_end));
    let new = NewKey {
        merchant: old.merchant_id.clone(),
        kind: old.kind,
        mode: old.mode,
        permissions: old.permissions.clone(),
        restrictions: old.restrictions.clone(),
        expires_in: None,
        description: old.description.clone(),
    };
    let (mut key, secret) = build(new, now, expires_at)?;
    // The successor continues its predecessor's lineage (and idempotency records).
    key.lineage = old.lineage.clone();
    let mut event = actor.event("api_key.rotated", Outcome::Success);
    event.merchant_id = Some(old.merchant_id.to_string());
    event.mode = Some(old.mode);
    event.resource = Some(old.id.to_string());
    event.reason = Some(format!(
        "replaced by {}; old key refused after {}",
        key.id,
        old_ends.to_rfc3339()
    ));
    let mut work = UnitOfWork::new();
    store.insert_key(&mut work, &key, &hasher.hash(&secret));
    store.mark_key_rotated(&mut work, &old.id, &key.id, old_ends);
    work.audit(event);
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict {
            code: "api_key_already_rotated",
            message: "this key was already rotated".into(),
        },
        other => other.into(),
    })?;
    // The old key's new end applies from the next request on, everywhere.
    store.auth_state_changed().await;
    Ok(IssuedKey { key, secret })
}

/// Revokes a key: it is refused from the next request on, on every replica
/// (this returns only once no gateway can still hold the key as it was:
/// `store::auth_state`, which the authentication cache follows).
pub async fn revoke<S: ApiKeyStore + Commit>(
    store: &S,
    actor: &Actor,
    scope: KeyScope<'_>,
    id: &ApiKeyId,
) -> Result<ApiKey, ServiceError> {
    let key = find(store, scope, id).await?;
    let now = Timestamp::now();
    let mut event = actor.event("api_key.revoked", Outcome::Success);
    event.merchant_id = Some(key.merchant_id.to_string());
    event.mode = Some(key.mode);
    event.resource = Some(key.id.to_string());
    let mut work = UnitOfWork::new();
    store.revoke_key(&mut work, &key.id, now);
    work.audit(event);
    store.commit(work).await.map_err(|e| match e {
        StoreError::Conflict => ServiceError::Conflict {
            code: "api_key_already_revoked",
            message: "this key is already revoked".into(),
        },
        other => other.into(),
    })?;
    store.auth_state_changed().await;
    Ok(ApiKey {
        revoked_at: Some(now),
        ..key
    })
}

/// Revokes every key of `merchant` that is not revoked yet, in one
/// transaction with an audit entry per key; like [`revoke`], returns once no
/// gateway can still accept any of them. Returns the keys revoked now.
pub async fn revoke_all<S: ApiKeyStore + MerchantStore + Commit>(
    store: &S,
    actor: &Actor,
    merchant: &MerchantId,
) -> Result<Vec<ApiKey>, ServiceError> {
    if store.get_merchant(merchant).await?.is_none() {
        return Err(ServiceError::NotFound {
            resource: "merchant",
            param: "merchant",
        });
    }
    // Each revocation is conditional on the key still being unrevoked at
    // commit time; a key revoked by someone else in between fails the unit,
    // which is read and built again (the keys it holds are then skipped).
    let mut attempts = 0;
    loop {
        attempts += 1;
        let now = Timestamp::now();
        let mut work = UnitOfWork::new();
        let mut revoked = Vec::new();
        for key in unrevoked_keys(store, merchant).await? {
            store.revoke_key(&mut work, &key.id, now);
            let mut event = actor.event("api_key.revoked", Outcome::Success);
            event.merchant_id = Some(merchant.to_string());
            event.mode = Some(key.mode);
            event.resource = Some(key.id.to_string());
            event.reason = Some("revoke-all of the merchant's keys".into());
            work.audit(event);
            revoked.push(ApiKey {
                revoked_at: Some(now),
                ..key
            });
        }
        match store.commit(work).await {
            Ok(()) => {
                store.auth_state_changed().await;
                return Ok(revoked);
            }
            Err(StoreError::Conflict) if attempts < 5 => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Every key of `merchant` not revoked yet, read page by page.
async fn unrevoked_keys<S: ApiKeyStore>(store: &S, merchant: &MerchantId) -> Result<Vec<ApiKey>, ServiceError> {
    let mut keys = Vec::new();
    let mut after: Option<ApiKeyId> = None;
    loop {
        let page = store.list_keys_for_merchant(merchant, after.as_ref(), 500).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        keys.extend(page.into_iter().filter(|key| key.revoked_at.is_none()));
    }
    Ok(keys)
}

/// Whose keys a caller may see and change.
#[derive(Debug, Clone, Copy)]
pub enum KeyScope<'a> {
    /// An operator at the CLI: any key of any merchant, either mode.
    Operator,
    /// An API caller: its own merchant's keys of its own mode only.
    Tenant(&'a Tenant),
}

/// The keys a caller sees: an API caller its tenant's; the operator every
/// key of `merchant`.
pub async fn list<S: ApiKeyStore>(
    store: &S,
    scope: ListScope<'_>,
    after: Option<&ApiKeyId>,
    limit: i64,
) -> Result<Vec<ApiKey>, ServiceError> {
    Ok(match scope {
        ListScope::Merchant(merchant) => store.list_keys_for_merchant(merchant, after, limit).await?,
        ListScope::Tenant(tenant) => store.list_keys_for_tenant(tenant, after, limit).await?,
    })
}

/// What [`list`] lists.
#[derive(Debug, Clone, Copy)]
pub enum ListScope<'a> {
    /// Every key of the merchant, both modes (operator use).
    Merchant(&'a MerchantId),
    /// The keys of one merchant's mode (API callers).
    Tenant(&'a Tenant),
}

pub async fn get<S: ApiKeyStore>(store: &S, scope: KeyScope<'_>, id: &ApiKeyId) -> Result<ApiKey, ServiceError> {
    find(store, scope, id).await
}

async fn find<S: ApiKeyStore>(store: &S, scope: KeyScope<'_>, id: &ApiKeyId) -> Result<ApiKey, ServiceError> {
    let found = match scope {
        KeyScope::Tenant(tenant) => store.get_key_for_tenant(tenant, id).await?,
        KeyScope::Operator => store.get_key(id).await?,
    };
    found.ok_or(ServiceError::NotFound {
        resource: "api_key",
        param: "id",
    })
}

fn check_shape(new: &NewKey) -> Result<(), ServiceError> {
    match new.kind {
        KeyKind::Restricted if new.permissions.is_empty() => Err(ServiceError::invalid(
            "permissions",
            "permissions_required",
            "a restricted key needs at least one permission",
        )),
        KeyKind::Secret | KeyKind::Publishable if !new.permissions.is_empty() => Err(ServiceError::invalid(
            "permissions",
            "permissions_not_allowed",
            "only restricted keys carry a permission list",
        )),
        _ => match &new.description {
            Some(d) if d.chars().count() > MAX_DESCRIPTION_CHARS || d.chars().any(char::is_control) => {
                Err(ServiceError::invalid(
                    "description",
                    "invalid_description",
                    "description is too long or has control characters",
                ))
            }
            _ => Ok(()),
        },
    }
}

fn expiry(
    policy: &KeyPolicy,
    mode: Mode,
    expires_in: Option<Duration>,
    now: Timestamp,
) -> Result<Option<Timestamp>, ServiceError> {
    match (mode, expires_in) {
        (_, Some(d)) if d.is_zero() => Err(ServiceError::invalid(
            "expires_in",
            "invalid_expiry",
            "expiry must be in the future",
        )),
        (Mode::Live, Some(d)) if d > policy.max_live_lifetime => Err(ServiceError::invalid(
            "expires_in",
            "expiry_too_far",
            format!(
                "live keys may live at most {}",
                humantime::format_duration(policy.max_live_lifetime)
            ),
        )),
        (Mode::Live, None) => Ok(Some(now.saturating_add(policy.max_live_lifetime))),
        (_, d) => Ok(d.map(|d| now.saturating_add(d))),
    }
}

fn build(new: NewKey, now: Timestamp, expires_at: Option<Timestamp>) -> Result<(ApiKey, ApiKeySecret), ServiceError> {
    let secret = ApiKeySecret::generate(new.kind, new.mode)?;
    let mut permissions = new.permissions;
    permissions.sort_unstable();
    permissions.dedup();
    let id = ApiKeyId::generate()?;
    let key = ApiKey {
        lineage: id.clone(),
        id,
        merchant_id: new.merchant,
        kind: new.kind,
        mode: new.mode,
        prefix: secret.display_prefix(),
        last4: secret.last4(),
        permissions,
        restrictions: new.restrictions,
        description: new.description,
        created_at: now,
        expires_at,
        revoked_at: None,
        last_used_at: None,
        rotated_to: None,
        frozen: None,
    };
    Ok((key, secret))
}

#[cfg(test)]
impl NewKey {
    /// A secret key of `merchant` in `mode`, with no permissions,
    /// restrictions or lifetime of its own (tests' fixtures).
    pub(crate) fn for_tests(merchant: &MerchantId, mode: Mode) -> Self {
        Self {
            merchant: merchant.clone(),
            kind: KeyKind::Secret,
            mode,
            permissions: Vec::new(),
            restrictions: KeyRestrictions::default(),
            expires_in: None,
            description: Some("service test".into()),
        }
    }
}

/// The use cases against the in-memory double of the storage ports.
#[cfg(test)]
mod tests {
    use secrecy::SecretBox;

    use super::*;
    use crate::domain::merchant::MerchantName;
    use crate::store::memory::MemoryStore;
    use crate::store::ports::AuditStore;

    fn operator() -> Actor {
        Actor::Operator {
            command: "keys test".into(),
        }
    }

    fn hasher() -> KeyHasher {
        KeyHasher::new(SecretBox::new(Box::new([7u8; 32])))
    }

    fn new_key(merchant: &MerchantId, mode: Mode) -> NewKey {
        NewKey::for_tests(merchant, mode)
    }

    async fn merchant(store: &MemoryStore) -> MerchantId {
        let name = MerchantName::parse("Keys Inc").unwrap();
        crate::services::merchants::create(store, &operator(), name)
            .await
            .unwrap()
            .id
    }

    #[tokio::test]
    async fn an_issued_key_is_stored_by_its_hash_with_a_live_expiry() {
        let (store, hasher) = (MemoryStore::new(), hasher());
        let merchant = merchant(&store).await;
        let policy = KeyPolicy::default();
        let issued = issue(&store, &hasher, &policy, &operator(), new_key(&merchant, Mode::Live))
            .await
            .unwrap();
        let expires = issued.key.expires_at.expect("live keys expire");
        let lifetime = expires.as_millis() - issued.key.created_at.as_millis();
        assert_eq!(u128::try_from(lifetime).unwrap(), policy.max_live_lifetime.as_millis());
        let read = get(&store, KeyScope::Operator, &issued.key.id).await.unwrap();
        assert_eq!(read.last4, issued.secret.last4());
        assert!(crate::services::merchants::has_live_keys(&store, &merchant)
            .await
            .unwrap());
        let page = store.audit_page(0, 10).await.unwrap();
        assert_eq!(page.last().unwrap().event.action, "api_key.created");
        assert_eq!(page.last().unwrap().event.reason.as_deref(), Some("live secret key"));

        let nobody = issue(
            &store,
            &hasher,
            &policy,
            &operator(),
            new_key(&MerchantId::generate().unwrap(), Mode::Test),
        )
        .await;
        assert!(
            matches!(
                nobody,
                Err(ServiceError::NotFound {
                    resource: "merchant",
                    ..
                })
            ),
            "{nobody:?}"
        );
    }

    #[tokio::test]
    async fn a_key_is_seen_and_revoked_only_within_its_tenant() {
        let (store, hasher) = (MemoryStore::new(), hasher());
        let merchant = merchant(&store).await;
        let issued = issue(
            &store,
            &hasher,
            &KeyPolicy::default(),
            &operator(),
            new_key(&merchant, Mode::Test),
        )
        .await
        .unwrap();
        let live = Tenant::new(merchant.clone(), Mode::Live);
        let test = Tenant::new(merchant.clone(), Mode::Test);
        let across = revoke(&store, &operator(), KeyScope::Tenant(&live), &issued.key.id).await;
        assert!(
            matches!(
                across,
                Err(ServiceError::NotFound {
                    resource: "api_key",
                    ..
                })
            ),
            "{across:?}"
        );
        assert!(list(&store, ListScope::Tenant(&live), None, 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(list(&store, ListScope::Tenant(&test), None, 10).await.unwrap().len(), 1);

        let revoked = revoke(&store, &operator(), KeyScope::Tenant(&test), &issued.key.id)
            .await
            .unwrap();
        assert!(revoked.revoked_at.is_some());
        assert!(get(&store, KeyScope::Operator, &issued.key.id)
            .await
            .unwrap()
            .revoked_at
            .is_some());
        let again = revoke(&store, &operator(), KeyScope::Operator, &issued.key.id).await;
        assert!(
            matches!(
                again,
                Err(ServiceError::Conflict {
                    code: "api_key_already_revoked",
                    ..
                })
            ),
            "{again:?}"
        );
    }

    #[tokio::test]
    async fn a_rotation_issues_a_successor_in_the_same_lineage_once() {
        let (store, hasher) = (MemoryStore::new(), hasher());
        let merchant = merchant(&store).await;
        let old = issue(
            &store,
            &hasher,
            &KeyPolicy::default(),
            &operator(),
            new_key(&merchant, Mode::Test),
        )
        .await
        .unwrap();
        let grace = Duration::from_secs(3_600);
        let new = rotate(&store, &hasher, &operator(), KeyScope::Operator, &old.key.id, grace)
            .await
            .unwrap();
        assert_ne!(new.key.id, old.key.id);
        assert_eq!(new.key.lineage, old.key.id);
        assert_ne!(hasher.hash(&new.secret), hasher.hash(&old.secret));
        let read = get(&store, KeyScope::Operator, &old.key.id).await.unwrap();
        assert_eq!(read.rotated_to.as_ref(), Some(&new.key.id));
        let ends = read.expires_at.expect("the old key now ends");
        assert!(ends.as_millis() - Timestamp::now().as_millis() <= 3_600_000);
        let again = rotate(&store, &hasher, &operator(), KeyScope::Operator, &old.key.id, grace).await;
        assert!(
            matches!(
                again,
                Err(ServiceError::Conflict {
                    code: "api_key_already_rotated",
                    ..
                })
            ),
            "{again:?}"
        );
        let keys = list(&store, ListScope::Merchant(&merchant), None, 10).await.unwrap();
        assert_eq!(keys.len(), 2);
    }

    #[tokio::test]
    async fn revoke_all_revokes_every_unrevoked_key_of_both_modes() {
        let (store, hasher) = (MemoryStore::new(), hasher());
        let merchant = merchant(&store).await;
        let policy = KeyPolicy::default();
        for mode in [Mode::Test, Mode::Live, Mode::Test] {
            issue(&store, &hasher, &policy, &operator(), new_key(&merchant, mode))
                .await
                .unwrap();
        }
        let first = list(&store, ListScope::Merchant(&merchant), None, 1).await.unwrap();
        revoke(&store, &operator(), KeyScope::Operator, &first[0].id)
            .await
            .unwrap();
        let revoked = revoke_all(&store, &operator(), &merchant).await.unwrap();
        assert_eq!(revoked.len(), 2, "the key revoked before is skipped");
        let keys = list(&store, ListScope::Merchant(&merchant), None, 10).await.unwrap();
        assert!(keys.iter().all(|k| k.revoked_at.is_some()));
        let missing = revoke_all(&store, &operator(), &MerchantId::generate().unwrap()).await;
        assert!(matches!(missing, Err(ServiceError::NotFound { .. })), "{missing:?}");
    }
}
