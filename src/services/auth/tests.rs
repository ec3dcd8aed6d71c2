//! The authenticator and the operator's lockout clear against the
//! in-memory double of the storage ports: what is counted, when an address
//! is locked out, and that a change of key or merchant state is seen by the
//! next request although a verified key is cached.

use std::net::IpAddr;

use secrecy::SecretBox;
use tokio::sync::mpsc;

use super::*;
use crate::domain::api_key::{KeyKind, Mode};
use crate::domain::audit::AuditEvent;
use crate::domain::ids::RequestId;
use crate::domain::merchant::{FreezeReason, MerchantName};
use crate::services::api_keys::{self, KeyPolicy, KeyScope, NewKey};
use crate::store::memory::MemoryStore;
use crate::store::ports::AuditStore;

fn operator() -> Actor {
    Actor::Operator {
        command: "auth test".into(),
    }
}

struct Fixture {
    store: MemoryStore,
    auth: Authenticator<MemoryStore>,
    audited: mpsc::Receiver<AuditEvent>,
    merchant: Merchant,
    /// A usable test-mode secret key of the merchant, and its plaintext.
    key: ApiKey,
    secret: String,
}

impl Fixture {
    async fn new() -> Self {
        let store = MemoryStore::new();
        let hasher = Arc::new(KeyHasher::new(SecretBox::new(Box::new([9u8; 32]))));
        let merchant = crate::services::merchants::create(&store, &operator(), MerchantName::parse("Authed").unwrap())
            .await
            .unwrap();
        let issued = api_keys::issue(
            &store,
            &hasher,
            &KeyPolicy::default(),
            &operator(),
            NewKey::for_tests(&merchant.id, Mode::Test),
        )
        .await
        .unwrap();
        let (sink, audited) = AuditSink::for_tests();
        let policy = LockoutPolicy {
            threshold: 3,
            ..LockoutPolicy::default()
        };
        Self {
            auth: Authenticator::new(store.clone(), hasher, policy, sink),
            store,
            audited,
            merchant,
            key: issued.key,
            secret: issued.secret.expose().to_owned(),
        }
    }

    async fn from(&self, ip: &str, credential: Credential<'_>) -> Result<Caller, AuthRejection> {
        let meta = RequestMeta {
            request_id: RequestId::generate().unwrap(),
            client_ip: ip.parse::<IpAddr>().unwrap(),
            user_agent: None,
            route: "GET /v1/merchant".into(),
        };
        self.auth.authenticate(credential, &meta).await
    }

    async fn with_key(&self, ip: &str) -> Result<Caller, AuthRejection> {
        self.from(ip, Credential::Header(Some(&self.secret))).await
    }

    /// The failures recorded for `ip` (in the window).
    async fn failures(&self, ip: &str) -> i64 {
        self.store.lockout_recorded(ip).await.unwrap().1
    }

    /// The actions audited through the sink so far.
    fn audited(&mut self) -> Vec<String> {
        let mut actions = Vec::new();
        while let Ok(event) = self.audited.try_recv() {
            actions.push(event.action);
        }
        actions
    }
}

const IP: &str = "192.0.2.44";

#[tokio::test]
async fn a_usable_key_authenticates_as_its_merchant_and_is_not_counted() {
    let mut f = Fixture::new().await;
    for _ in 0..2 {
        let caller = f.with_key(IP).await.unwrap();
        assert_eq!(
            (caller.key.id, caller.merchant.id),
            (f.key.id.clone(), f.merchant.id.clone())
        );
    }
    assert_eq!(f.failures(IP).await, 0);
    assert!(f.audited().is_empty(), "a success is audited by the request, not here");
}

#[tokio::test]
async fn failures_are_counted_until_the_address_is_locked_out() {
    let mut f = Fixture::new().await;
    let unknown = ApiKeySecret::generate(KeyKind::Secret, Mode::Test).unwrap();
    for n in 1..3 {
        let refused = f.from(IP, Credential::Header(Some(unknown.expose()))).await;
        assert!(matches!(refused, Err(AuthRejection::Unauthenticated)), "{refused:?}");
        assert_eq!(f.failures(IP).await, n);
    }
    // A header that is not a bearer token counts too; the third locks out.
    let refused = f.from(IP, Credential::Header(None)).await;
    assert!(matches!(refused, Err(AuthRejection::LockedOut { .. })), "{refused:?}");
    let audit = f.store.audit_page(0, 100).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|r| r.event.action.as_str()).collect();
    assert_eq!(
        actions.iter().filter(|a| **a == "auth.failed").count(),
        3,
        "{actions:?}"
    );
    assert_eq!(actions.last(), Some(&"auth.lockout"));

    // Locked out: even the right key is refused, from that address only.
    let refused = f.with_key(IP).await;
    assert!(matches!(refused, Err(AuthRejection::LockedOut { .. })), "{refused:?}");
    assert_eq!(f.audited(), ["auth.locked_out_request"]);
    f.with_key("192.0.2.45").await.unwrap();

    // The operator lifts it, with the failures, in one audited unit.
    let cleared = crate::services::lockouts::clear(&f.store, &operator(), IP)
        .await
        .unwrap();
    assert_eq!((cleared.was_locked, cleared.failures_forgotten), (true, 3));
    f.with_key(IP).await.unwrap();
    assert_eq!(f.failures(IP).await, 0);
    let last = f.store.audit_page(0, 100).await.unwrap();
    assert_eq!(
        last.last().map(|r| r.event.action.as_str()),
        Some("auth.lockout_cleared")
    );
    let again = crate::services::lockouts::clear(&f.store, &operator(), IP)
        .await
        .unwrap();
    assert_eq!((again.was_locked, again.failures_forgotten), (false, 0));
}

#[tokio::test]
async fn no_credential_at_all_is_refused_but_not_counted() {
    let mut f = Fixture::new().await;
    for _ in 0..5 {
        let refused = f.from(IP, Credential::Missing).await;
        assert!(matches!(refused, Err(AuthRejection::Unauthenticated)), "{refused:?}");
    }
    assert_eq!(f.failures(IP).await, 0);
    assert_eq!(f.audited(), ["auth.failed"; 5]);
    f.with_key(IP).await.unwrap();
}

#[tokio::test]
async fn a_revocation_holds_from_the_next_request_although_the_key_was_cached() {
    let f = Fixture::new().await;
    f.with_key(IP).await.unwrap();
    f.with_key(IP).await.unwrap();
    api_keys::revoke(&f.store, &operator(), KeyScope::Operator, &f.key.id)
        .await
        .unwrap();
    let refused = f.with_key(IP).await;
    assert!(matches!(refused, Err(AuthRejection::Unauthenticated)), "{refused:?}");
    assert_eq!(f.failures(IP).await, 1, "a revoked key counts");
    let audit = f.store.audit_page(0, 100).await.unwrap();
    let failed = audit.last().unwrap();
    assert_eq!(failed.event.action, "auth.failed");
    assert_eq!(failed.event.key_id.as_deref(), Some(f.key.id.as_str()));
}

#[tokio::test]
async fn a_frozen_merchants_key_is_refused_without_counting() {
    let mut f = Fixture::new().await;
    f.with_key(IP).await.unwrap();
    crate::services::merchants::freeze(
        &f.store,
        &operator(),
        &f.merchant.id,
        FreezeReason::parse("chargebacks").unwrap(),
    )
    .await
    .unwrap();
    for _ in 0..4 {
        let refused = f.with_key(IP).await;
        assert!(matches!(refused, Err(AuthRejection::MerchantFrozen)), "{refused:?}");
    }
    assert_eq!(f.failures(IP).await, 0);
    assert_eq!(f.audited(), ["auth.merchant_frozen"; 4]);
}

#[tokio::test]
async fn pruning_forgets_only_failures_older_than_the_window() {
    let f = Fixture::new().await;
    let old = Timestamp::now().saturating_sub(Duration::from_secs(16 * 60));
    let mut work = UnitOfWork::new();
    f.store.record_auth_failure(&mut work, IP, old);
    f.store.record_auth_failure(&mut work, IP, Timestamp::now());
    f.store.commit(work).await.unwrap();
    assert_eq!(f.auth.prune().await.unwrap(), 1);
    assert_eq!(f.failures(IP).await, 1);
}
