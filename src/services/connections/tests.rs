//! The connection use cases against the in-memory double.

use std::sync::Arc;

use super::*;
use crate::connectors::Connectors;
use crate::domain::connection::{StripeSecretKey, StripeWebhookSecret};
use crate::domain::merchant::MerchantName;
use crate::store::memory::MemoryStore;
use crate::store::ports::AuditStore;
use crate::vault::{Kek, StaticKeyring};

fn kek(byte: u8) -> Kek {
    Kek::new(secrecy::SecretBox::new(Box::new([byte; 32])))
}

const KEY: &str = "sk_test_51HconnectionsUnitTestKey9876";

struct Fixture {
    store: MemoryStore,
    keyring: Arc<StaticKeyring>,
    actor: Actor,
    tenant: Tenant,
}

impl Fixture {
    async fn new(mode: Mode) -> Self {
        let store = MemoryStore::new();
        let actor = Actor::Operator {
            command: "connections test".into(),
        };
        let merchant = crate::services::merchants::create(&store, &actor, MerchantName::parse("Shop").unwrap())
            .await
            .unwrap();
        Self {
            store,
            keyring: Arc::new(StaticKeyring::single(KekVersion::new(1), kek(1))),
            actor,
            tenant: Tenant::new(merchant.id, mode),
        }
    }

    fn cx<'a>(&'a self, tenant: &'a Tenant) -> Context<'a, MemoryStore> {
        Context {
            store: &self.store,
            keyring: self.keyring.as_ref(),
            actor: &self.actor,
            tenant,
        }
    }

    async fn connect(&self, key: &str, make_default: bool) -> Connection {
        let credentials = Credentials::Stripe {
            secret_key: StripeSecretKey::parse(key, self.tenant.mode()).unwrap(),
            webhook_secret: Some(StripeWebhookSecret::parse("whsec_unittestsecret1234").unwrap()),
        };
        create(
            &self.cx(&self.tenant),
            NewConnection {
                credentials,
                make_default,
            },
        )
        .await
        .unwrap()
    }

    async fn route(&self) -> String {
        let merchant = self.store.get_merchant(self.tenant.merchant()).await.unwrap().unwrap();
        merchant.route(self.tenant.mode()).to_owned()
    }

    fn routing(&self) -> Routing {
        Routing::new(Connectors::builtin(), self.keyring.clone())
    }
}

#[tokio::test]
async fn a_connection_is_sealed_shown_by_its_hint_and_audited_without_its_key() {
    let f = Fixture::new(Mode::Test).await;
    let shown = f.connect(KEY, false).await;
    assert_eq!(shown.secret_key_last4, "9876");
    assert!(shown.has_webhook_secret && !shown.is_default);
    let row = f.store.get_connection(&f.tenant, &shown.id).await.unwrap().unwrap();
    let stored = format!("{row:?}");
    assert!(
        !stored.contains("connectionsUnitTestKey") && !stored.contains("unittestsecret"),
        "{stored}"
    );
    let Credentials::Stripe {
        secret_key,
        webhook_secret,
    } = open_credentials(f.keyring.as_ref(), &row).unwrap()
    else {
        panic!("Stripe credentials")
    };
    assert_eq!(secret_key.expose_secret(), KEY);
    assert_eq!(webhook_secret.unwrap().expose_secret(), "whsec_unittestsecret1234");
    let trail = f.store.audit_page(0, 100).await.unwrap();
    let entry = trail.iter().find(|e| e.event.action == "connector.created").unwrap();
    let text = format!("{entry:?}");
    assert!(text.contains("9876") && text.contains(shown.id.as_str()), "{text}");
    assert!(
        !text.contains("connectionsUnitTestKey") && !text.contains("unittestsecret"),
        "{text}"
    );
    assert_eq!(f.route().await, "sandbox", "not the default unless asked");
}

#[tokio::test]
async fn the_credentials_are_bound_to_merchant_mode_and_connection() {
    let f = Fixture::new(Mode::Test).await;
    let shown = f.connect(KEY, false).await;
    let row = f.store.get_connection(&f.tenant, &shown.id).await.unwrap().unwrap();
    for moved in [
        ConnectionRow {
            mode: "live".into(),
            ..row.clone()
        },
        ConnectionRow {
            merchant_id: MerchantId::generate().unwrap().to_string(),
            ..row.clone()
        },
        ConnectionRow {
            id: ConnectionId::generate().unwrap().to_string(),
            ..row.clone()
        },
    ] {
        assert!(open_credentials(f.keyring.as_ref(), &moved).is_err());
    }
}

#[tokio::test]
async fn the_default_routes_new_payments_and_disabling_it_falls_back_per_mode() {
    let test = Fixture::new(Mode::Test).await;
    let conn = test.connect(KEY, true).await;
    assert!(conn.is_default);
    assert_eq!(test.route().await, conn.id.as_str());
    assert!(get(&test.store, &test.tenant, &conn.id).await.unwrap().is_default);
    let disabled = disable(&test.cx(&test.tenant), &test.routing(), &conn.id)
        .await
        .unwrap();
    assert_eq!(disabled.status, ConnectionStatus::Disabled);
    assert!(!disabled.is_default);
    assert_eq!(test.route().await, "sandbox");
    // Disabling again changes nothing and writes nothing.
    let entries = test.store.audit_page(0, 100).await.unwrap().len();
    disable(&test.cx(&test.tenant), &test.routing(), &conn.id)
        .await
        .unwrap();
    assert_eq!(test.store.audit_page(0, 100).await.unwrap().len(), entries);

    let live = Fixture::new(Mode::Live).await;
    assert_eq!(live.route().await, "unconfigured");
    let conn = live.connect("rk_live_51HconnectionsUnitTestKey1111", true).await;
    assert_eq!(live.route().await, conn.id.as_str());
    disable(&live.cx(&live.tenant), &live.routing(), &conn.id)
        .await
        .unwrap();
    assert_eq!(live.route().await, "unconfigured", "never the sandbox in live mode");
}

#[tokio::test]
async fn another_mode_or_merchant_sees_nothing() {
    let f = Fixture::new(Mode::Test).await;
    let conn = f.connect(KEY, true).await;
    let live = Tenant::new(f.tenant.merchant().clone(), Mode::Live);
    let other = crate::services::merchants::create(&f.store, &f.actor, MerchantName::parse("Other").unwrap())
        .await
        .unwrap();
    let stranger = Tenant::new(other.id, Mode::Test);
    for tenant in [&live, &stranger] {
        assert!(matches!(
            get(&f.store, tenant, &conn.id).await,
            Err(ServiceError::NotFound { .. })
        ));
        assert!(list(&f.store, tenant, None, 10).await.unwrap().is_empty());
        let refused = disable(&f.cx(tenant), &f.routing(), &conn.id).await;
        assert!(matches!(refused, Err(ServiceError::NotFound { .. })), "{refused:?}");
        assert!(f.routing().resolve(&f.store, tenant, conn.id.as_str()).await.is_err());
    }
    assert_eq!(f.route().await, conn.id.as_str(), "untouched");
}

#[tokio::test]
async fn routing_builds_a_connector_once_and_forgets_it_on_disable() {
    let f = Fixture::new(Mode::Test).await;
    let conn = f.connect(KEY, true).await;
    let routing = f.routing();
    let first = routing.resolve(&f.store, &f.tenant, conn.id.as_str()).await.unwrap();
    assert_eq!(first.name(), "stripe");
    let again = routing.resolve(&f.store, &f.tenant, conn.id.as_str()).await.unwrap();
    assert!(Arc::ptr_eq(&first, &again), "cached");
    assert_eq!(routing.cached(), 1);
    disable(&f.cx(&f.tenant), &routing, &conn.id).await.unwrap();
    assert_eq!(routing.cached(), 0);
    // A disabled connection still serves the payments made with it.
    let after = routing.resolve(&f.store, &f.tenant, conn.id.as_str()).await.unwrap();
    assert_eq!(after.name(), "stripe");
    assert_eq!(
        routing.resolve(&f.store, &f.tenant, "sandbox").await.unwrap().name(),
        "sandbox"
    );
    assert!(routing.resolve(&f.store, &f.tenant, "nope").await.is_err());
}

#[tokio::test]
async fn kek_rotation_rewraps_credentials_which_still_open() {
    let f = Fixture::new(Mode::Test).await;
    let conn = f.connect(KEY, false).await;
    let before = f.store.get_connection(&f.tenant, &conn.id).await.unwrap().unwrap();
    let both = StaticKeyring::new(
        KekVersion::new(2),
        [(KekVersion::new(1), kek(1)), (KekVersion::new(2), kek(2))],
    )
    .unwrap();
    assert_eq!(credentials_by_kek_version(&f.store).await.unwrap(), vec![(1, 1)]);
    let (rewrapped, skipped) = rewrap_credentials(&f.store, &both, KekVersion::new(2), None)
        .await
        .unwrap();
    assert_eq!((rewrapped, skipped), (1, 0));
    assert_eq!(credentials_by_kek_version(&f.store).await.unwrap(), vec![(2, 1)]);
    let after = f.store.get_connection(&f.tenant, &conn.id).await.unwrap().unwrap();
    assert_eq!(after.ciphertext, before.ciphertext, "only the data key is re-wrapped");
    assert_ne!(after.wrapped_dek, before.wrapped_dek);
    let Credentials::Stripe { secret_key, .. } = open_credentials(&both, &after).unwrap() else {
        panic!("Stripe credentials")
    };
    assert_eq!(secret_key.expose_secret(), KEY);
}
