//! Payments: create, confirm, read and list here; capture and cancel (with
//! their claims at processors with external effects) in `settle`; the
//! customer's 3-D Secure challenge and the expiry of unanswered ones in
//! `challenge`.
//!
//! Every change is a transition of the domain [`Payment`] (which returns the
//! events it causes), written by [`change::Change::commit`]: the payment with
//! its history, events (the webhook outbox) and audit entry in one
//! transaction. Processor calls happen outside any transaction; a connector
//! with effects outside the gateway gets a `processing` record written first,
//! so a crash in between leaves something to reconcile. The card number
//! leaves the vault only for the connector call and is zeroized afterwards.
//!
//! The service is generic over the storage ports it uses ([`PaymentPorts`]),
//! defaulting to the SQL [`Store`]: the API wiring names `Payments` as
//! before, calls are statically dispatched (nothing boxed on the hot path),
//! and the unit tests run it against the in-memory double.

mod challenge;
mod change;
mod flow;
mod remote;
mod review;
pub mod sca;
pub mod sca_sandbox;
mod screen;
mod settle;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use crate::connectors::{Connector, Connectors};
use crate::domain::ids::{PaymentId, TokenId};
use crate::domain::money::Money;
use crate::domain::payment::{CaptureMethod, ListFilter, Payment, PaymentDraft, PaymentError};
use crate::domain::payment_fields::{CustomerEmail, Description, Metadata, ReturnUrl};
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::services::connections::failover::Failover;
use crate::services::connections::Routing;
use crate::store::ports::{
    Commit, ConnectionStore, EventStore, FraudStore, MerchantStore, PaymentStore, ScaStore, SignalStore, TokenStore,
};
use crate::store::{Store, StoreError};

use super::actor::Actor;
use super::fraud::Fraud;
use super::tokens::{self, Token};
use super::ServiceError;
use crate::vault::Vault;

pub use challenge::{ChallengeAnswer, ChallengePage, ChallengeResult};
use change::Change;
pub use remote::{Applied, RemoteReport};
pub use sca::{ScaPolicy, ScaRequest};

/// How far back an idempotency key finds the payment it created (the
/// Idempotency-Key layer replays answers; this catches a retry that took over
/// the key of a request that died after writing its payment).
pub const RECOVERY_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// The largest amount of one payment unless `payments.max_amount` says
/// otherwise (the OpenAPI document states this one).
pub const DEFAULT_MAX_AMOUNT: i64 = 99_999_999;

/// Limits and addresses of the payments service.
#[derive(Debug, Clone)]
pub struct PaymentPolicy {
    /// Largest amount of one payment, in minor units.
    pub max_amount: i64,
    /// How long a customer has to answer a 3-D Secure challenge.
    pub challenge_ttl: Duration,
    /// The gateway's public base URL (`https://pay.example.com`), for the
    /// challenge page links given to customers.
    pub public_url: String,
    /// How often unanswered challenges are looked for.
    pub sweep_interval: Duration,
    /// Strong Customer Authentication: rates, countries, fraud rates.
    pub sca: ScaPolicy,
}

impl Default for PaymentPolicy {
    fn default() -> Self {
        Self {
            max_amount: DEFAULT_MAX_AMOUNT,
            challenge_ttl: Duration::from_secs(600),
            public_url: "https://127.0.0.1:8443".into(),
            sweep_interval: Duration::from_secs(5),
            sca: ScaPolicy::default(),
        }
    }
}

/// How a payment and a refund look to merchants, as their events carry them:
/// the edge's views (`api::views`), given to the service when it is built so
/// that data flows one way (the service names no view or schema).
#[derive(Debug, Clone, Copy)]
pub struct Snapshots {
    pub payment: fn(&Payment) -> Result<String, serde_json::Error>,
    pub refund: fn(&crate::domain::payment::Refund) -> Result<String, serde_json::Error>,
}

/// The storage ports the payments service works with: payments, the events
/// of their changes, the card tokens they charge, their merchants, and the
/// merchants' fraud rules that screen them (a clone of the store serves the
/// fraud service the payments service holds), and the processor connections
/// they are routed to.
pub trait PaymentPorts:
    PaymentStore
    + EventStore
    + TokenStore
    + MerchantStore
    + FraudStore
    + SignalStore
    + ConnectionStore
    + ScaStore
    + Commit
    + Clone
{
}

impl<
        S: PaymentStore
            + EventStore
            + TokenStore
            + MerchantStore
            + FraudStore
            + SignalStore
            + ConnectionStore
            + ScaStore
            + Commit
            + Clone,
    > PaymentPorts for S
{
}

/// The payments service, shared by every request.
#[derive(Clone)]
pub struct Payments<S = Store> {
    store: S,
    vault: Arc<Vault>,
    routing: Routing,
    policy: Arc<PaymentPolicy>,
    snapshots: Snapshots,
    /// The fraud rules every confirm is screened with (`screen`).
    fraud: Fraud<S>,
}

impl<S> std::fmt::Debug for Payments<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("routing", &self.routing)
            .finish_non_exhaustive()
    }
}

/// Who asks for a payment operation: the key's tenant (every payment it
/// reaches is of that merchant and mode), the merchant's configured
/// connector, and the key's limits, which every operation that moves money
/// passes through with its own amount ([`Caller::check_limits`]).
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub tenant: &'a Tenant,
    /// The connector new payments of the key's mode are routed to: the
    /// merchant's route for that mode (`sandbox`, a connection id, or
    /// `unconfigured`).
    pub connector: &'a str,
    /// The calling key's maximum amount and allowed currencies.
    pub limits: &'a KeyRestrictions,
}

impl Caller<'_> {
    /// The one check of a key's money limits: create (also without confirm),
    /// confirm, capture and refund each pass `money` they would move, in the
    /// payment's currency. `amount_param` names the request field of the
    /// amount for the refusal.
    pub fn check_limits(&self, money: Money, amount_param: &'static str) -> Result<(), ServiceError> {
        self.limits
            .check_money(money)
            .map_err(|violation| ServiceError::KeyLimit {
                violation,
                amount_param,
            })
    }
}

/// How long a claim on a payment (a capture or cancel sent to a processor
/// with external effects) keeps other requests from starting the same
/// operation. Connector calls time out well before; a claim older than this
/// was left by a gateway that died mid-call, and may be taken over (the
/// processor deduplicates the repeated call by its idempotency key).
pub const CLAIM_TIMEOUT: Duration = Duration::from_secs(120);

/// A parsed `POST /v1/payments`.
#[derive(Debug)]
pub struct NewPayment {
    pub money: Money,
    pub capture_method: CaptureMethod,
    pub payment_method: Option<TokenId>,
    pub confirm: bool,
    pub description: Option<Description>,
    pub metadata: Metadata,
    pub customer_ip: Option<IpAddr>,
    pub customer_email: Option<CustomerEmail>,
    pub return_url: Option<ReturnUrl>,
    pub idempotency_key: Option<String>,
    /// The merchant's SCA request for the confirm.
    pub sca: ScaRequest,
}

/// A parsed `POST /v1/payments/{id}/confirm`.
#[derive(Debug, Default)]
pub struct Confirmation {
    pub payment_method: Option<TokenId>,
    pub return_url: Option<ReturnUrl>,
    /// The merchant's SCA request.
    pub sca: ScaRequest,
}

/// A payment as single-payment responses show it (with its history).
#[derive(Debug, Clone)]
pub struct PaymentRecord {
    pub payment: Payment,
    /// The payment's JSON without its history, exactly as the events of the
    /// change that wrote it carry it; present when this request wrote it, so
    /// that the response reuses it instead of serializing the payment again.
    pub snapshot: Option<String>,
}

impl From<Payment> for PaymentRecord {
    fn from(payment: Payment) -> Self {
        Self {
            payment,
            snapshot: None,
        }
    }
}

impl<S: PaymentPorts> Payments<S> {
    pub fn new(
        store: S,
        vault: Arc<Vault>,
        connectors: Connectors,
        policy: PaymentPolicy,
        snapshots: Snapshots,
    ) -> Self {
        let routing = Routing::new(connectors, vault.keyring_arc());
        Self {
            fraud: Fraud::new(store.clone()),
            store,
            vault,
            routing,
            policy: Arc::new(policy),
            snapshots,
        }
    }

    /// The fraud service screening this service's payments: changing rules
    /// through it takes effect on the next confirm.
    pub fn fraud(&self) -> &Fraud<S> {
        &self.fraud
    }

    /// The views events carry.
    pub fn snapshots(&self) -> Snapshots {
        self.snapshots
    }

    pub fn policy(&self) -> &PaymentPolicy {
        &self.policy
    }

    pub fn connectors(&self) -> &Connectors {
        self.routing.connectors()
    }

    /// Where processor calls go, and the cache of connections' connectors.
    pub fn routing(&self) -> &Routing {
        &self.routing
    }

    /// The connector `name` (a payment's recorded one, or the caller's
    /// route) for a payment of `tenant`.
    async fn connector(&self, tenant: &Tenant, name: &str) -> Result<Arc<dyn Connector>, ServiceError> {
        self.routing.resolve(&self.store, tenant, name).await
    }

    /// Where this service's authorizations fail over to.
    fn failover<'a>(&'a self, actor: &'a Actor) -> Failover<'a, S> {
        Failover {
            routing: &self.routing,
            store: &self.store,
            actor,
        }
    }

    /// Creates a payment, and confirms it at once when asked to.
    pub async fn create(
        &self,
        actor: &Actor,
        caller: Caller<'_>,
        new: NewPayment,
    ) -> Result<PaymentRecord, ServiceError> {
        caller.check_limits(new.money, "amount")?;
        if let Some(key) = &new.idempotency_key {
            // A recovery point: a retry after a crash finds the payment its
            // first attempt created instead of creating a second one.
            let since = Timestamp::now().saturating_sub(RECOVERY_WINDOW).as_millis();
            let found = self
                .store
                .get_payment_by_idempotency_key(caller.tenant, key, since)
                .await?;
            if let Some(payment) = found {
                return Ok(payment.into());
            }
        }
        if new.confirm && new.payment_method.is_none() {
            return Err(ServiceError::invalid(
                "payment_method",
                "parameter_missing",
                "A payment created with confirm: true needs a payment_method",
            ));
        }
        let connector = self.connector(caller.tenant, caller.connector).await?;
        let card = match &new.payment_method {
            Some(token) => Some(self.open_card(caller.tenant, token, new.confirm).await?),
            None => None,
        };
        let now = Timestamp::now();
        let draft = PaymentDraft {
            id: PaymentId::generate_time_ordered(now)?,
            tenant: caller.tenant.clone(),
            money: new.money,
            capture_method: new.capture_method,
            payment_method: new.payment_method,
            description: new.description,
            metadata: new.metadata,
            customer_ip: new.customer_ip,
            customer_email: new.customer_email,
            return_url: new.return_url,
            // The route, not the connector's kind: a connection id serves
            // this payment's later steps even after the default changed.
            connector: caller.connector.to_owned(),
            idempotency_key: new.idempotency_key,
        };
        let (payment, events) = Payment::create(draft, now);
        let mut change = Change::create(payment, events, now);
        if let (true, Some((token, card))) = (new.confirm, card) {
            change.action = "payment.confirmed";
            change.apply(Payment::confirm).map_err(illegal)?;
            return self
                .screen_authenticate_authorize(change, &token, &card, connector.as_ref(), new.sca, actor)
                .await;
        }
        change.commit(&self.store, self.snapshots, actor).await
    }

    /// Confirms a payment waiting for confirmation (attaching a card first if
    /// one is given).
    pub async fn confirm(
        &self,
        actor: &Actor,
        caller: Caller<'_>,
        id: &PaymentId,
        confirmation: Confirmation,
    ) -> Result<PaymentRecord, ServiceError> {
        let payment = self.load(caller.tenant, id).await?;
        caller.check_limits(payment.money(), "amount")?;
        let mut change = Change::of(payment, "payment.confirmed");
        if let Some(token) = confirmation.payment_method {
            change
                .apply(|p, at| p.attach_payment_method(token, at))
                .map_err(illegal)?;
        }
        if let Some(url) = confirmation.return_url {
            change.payment.return_url = Some(url);
        }
        let token = change
            .payment
            .payment_method
            .clone()
            .ok_or_else(|| ServiceError::Conflict {
                // The payment's state, not the request's shape: the same
                // body confirms a payment that has a card.
                code: "payment_unexpected_state",
                message: "This payment has no payment_method; pass one to confirm".to_owned(),
            })?;
        // Refuse before the card is opened (and its CVC consumed).
        change
            .payment
            .check(crate::domain::payment::Step::Confirm)
            .map_err(illegal)?;
        let (token, card) = self.open_card(caller.tenant, &token, true).await?;
        let connector = self.connector(caller.tenant, &change.payment.connector).await?;
        change.apply(Payment::confirm).map_err(illegal)?;
        self.screen_authenticate_authorize(change, &token, &card, connector.as_ref(), confirmation.sca, actor)
            .await
    }

    pub async fn get(&self, tenant: &Tenant, id: &PaymentId) -> Result<PaymentRecord, ServiceError> {
        Ok(self.load(tenant, id).await?.into())
    }

    pub async fn list(&self, tenant: &Tenant, filter: &ListFilter, limit: i64) -> Result<Vec<Payment>, ServiceError> {
        Ok(self.store.list_payments(tenant, filter, limit).await?)
    }

    /// Writes the `processing` record before an external processor is called.
    async fn write_ahead(&self, change: Change, actor: &Actor) -> Result<Change, ServiceError> {
        let action = change.action;
        let mut change = change;
        // Recorded with the confirm's outcome, by the commit that ends it.
        let observation = change.observation.take();
        let payment = change.commit(&self.store, self.snapshots, actor).await?.payment;
        let mut next = Change::of(payment, action);
        next.observation = observation;
        Ok(next)
    }

    async fn load(&self, tenant: &Tenant, id: &PaymentId) -> Result<Payment, ServiceError> {
        // On the SQL store, the inline hot read (`store::payments::get`).
        self.store.get_payment(tenant, id).await?.ok_or(ServiceError::NotFound {
            resource: "payment",
            param: "id",
        })
    }

    /// Opens the token for an authorization; with `first_use`, the one that
    /// takes (and so destroys) the CVC held for it; without, the CVC stays
    /// held (a payment created without `confirm` leaves it for its confirm).
    /// A token of another merchant, a shredded one, or one of the other mode
    /// is `payment_method` not found, exactly like a token that never existed.
    async fn open_card(
        &self,
        tenant: &Tenant,
        token: &TokenId,
        first_use: bool,
    ) -> Result<(Token, crate::connectors::CardDetails), ServiceError> {
        let missing = || ServiceError::ReferenceNotFound {
            resource: "payment_method",
            param: "payment_method",
        };
        tokens::open_for_payment(&self.store, &self.vault, tenant, token, first_use)
            .await?
            .ok_or_else(missing)
    }
}

fn corrupt(column: &str) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt(format!("payments.{column}")))
}

/// A refused transition: 409 naming the status and the action.
fn illegal(e: PaymentError) -> ServiceError {
    ServiceError::Conflict {
        code: "payment_unexpected_state",
        message: format!("{}", e),
    }
}
