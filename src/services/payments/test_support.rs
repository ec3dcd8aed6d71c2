//! A payments service over the in-memory double of the storage ports, with
//! the sandbox connector: the fixture of the payments' and refunds' unit
//! tests (tests only).

use std::sync::Arc;
use std::time::Duration;

use secrecy::SecretBox;

use super::{Caller, NewPayment, PaymentPolicy, Payments, Snapshots};
use crate::connectors::Connectors;
use crate::domain::api_key::Mode;
use crate::domain::card::{CardNumber, CardholderName, Cvc, ExpiryDate};
use crate::domain::ids::{MerchantId, TokenId};
use crate::domain::merchant::MerchantName;
use crate::domain::money::{Currency, MinorUnits, Money};
use crate::domain::payment::{CaptureMethod, Payment, Refund};
use crate::domain::payment_fields::Metadata;
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::services::actor::Actor;
use crate::services::tokens::{self, CardInput};
use crate::store::memory::MemoryStore;
use crate::vault::{CvcStore, Fingerprinter, Kek, KekVersion, StaticKeyring, Vault};

/// What events carry in these tests: the object's id and status.
fn payment_snapshot(payment: &Payment) -> Result<String, serde_json::Error> {
    serde_json::to_string(&serde_json::json!({"id": payment.id.to_string(), "status": payment.status().to_string()}))
}

fn refund_snapshot(refund: &Refund) -> Result<String, serde_json::Error> {
    serde_json::to_string(&serde_json::json!({"id": refund.id.to_string(), "status": refund.status().as_str()}))
}

pub(crate) const SNAPSHOTS: Snapshots = Snapshots {
    payment: payment_snapshot,
    refund: refund_snapshot,
};

/// The approved card of the sandbox.
pub(crate) const APPROVED: &str = "4242424242424242";

pub(crate) struct Fixture {
    pub store: MemoryStore,
    pub vault: Arc<Vault>,
    pub payments: Payments<MemoryStore>,
    pub actor: Actor,
    /// A merchant's test mode.
    pub tenant: Tenant,
    pub limits: KeyRestrictions,
}

impl Fixture {
    pub async fn new() -> Self {
        let store = MemoryStore::new();
        let actor = Actor::Operator {
            command: "payments test".into(),
        };
        let merchant = crate::services::merchants::create(&store, &actor, MerchantName::parse("Shop").unwrap())
            .await
            .unwrap();
        let vault = Arc::new(Vault::new(
            Arc::new(StaticKeyring::single(KekVersion::new(1), Kek::generate().unwrap())),
            Fingerprinter::new(SecretBox::new(Box::new([7u8; 32]))),
            CvcStore::new(Duration::from_secs(60), 100).unwrap(),
        ));
        let connectors = Connectors::builtin();
        let payments = Payments::new(
            store.clone(),
            vault.clone(),
            connectors,
            PaymentPolicy::default(),
            SNAPSHOTS,
        );
        Self {
            store,
            vault,
            payments,
            actor,
            tenant: Tenant::new(merchant.id, Mode::Test),
            limits: KeyRestrictions::default(),
        }
    }

    /// The same merchant's other mode, and another merchant's test mode
    /// (stored, so that only scoping can hide the fixture's objects).
    pub async fn other_tenants(&self) -> [Tenant; 2] {
        let other = crate::services::merchants::create(&self.store, &self.actor, MerchantName::parse("Other").unwrap())
            .await
            .unwrap();
        [
            Tenant::new(self.tenant.merchant().clone(), Mode::Live),
            Tenant::new(other.id, Mode::Test),
        ]
    }

    /// A merchant that does not exist, in test mode.
    pub fn unknown_tenant() -> Tenant {
        Tenant::new(MerchantId::generate().unwrap(), Mode::Test)
    }

    pub fn caller<'a>(&'a self, tenant: &'a Tenant) -> Caller<'a> {
        Caller {
            tenant,
            connector: "sandbox",
            limits: &self.limits,
        }
    }

    /// A token of `number` (with a CVC) for `tenant`.
    pub async fn card(&self, tenant: &Tenant, number: &str) -> TokenId {
        let number = CardNumber::parse(number).unwrap();
        let card = CardInput {
            cvc: Some(Cvc::parse("123", number.brand()).unwrap()),
            number,
            expiry: ExpiryDate::parse(12, 2031, Timestamp::now()).unwrap(),
            name: Some(CardholderName::parse("Ada Lovelace").unwrap()),
        };
        tokens::tokenize(&self.store, &self.vault, &self.actor, tenant, card)
            .await
            .unwrap()
            .id
    }

    pub fn new_payment(amount: i64, capture: CaptureMethod, card: Option<TokenId>, confirm: bool) -> NewPayment {
        NewPayment {
            money: money(amount),
            capture_method: capture,
            payment_method: card,
            confirm,
            description: None,
            metadata: Metadata::default(),
            customer_ip: None,
            customer_email: None,
            return_url: None,
            idempotency_key: None,
            sca: Default::default(),
        }
    }

    /// A payment of `amount` on `number`, created and confirmed at once with
    /// automatic capture.
    pub async fn paid(&self, amount: i64, number: &str) -> Payment {
        let card = self.card(&self.tenant, number).await;
        self.payments
            .create(
                &self.actor,
                self.caller(&self.tenant),
                Self::new_payment(amount, CaptureMethod::Automatic, Some(card), true),
            )
            .await
            .unwrap()
            .payment
    }
}

pub(crate) fn money(amount: i64) -> Money {
    Money {
        amount: MinorUnits::parse(amount, i64::MAX).unwrap(),
        currency: Currency::parse("usd").unwrap(),
    }
}
