//! Payments: create, confirm, capture, cancel, read; the customer's 3-D
//! Secure challenge; expiry of unanswered challenges.
//!
//! Every change goes through the domain state machine ([`PaymentState`]) and
//! is written by [`change::Change::commit`]: payment row, history entries,
//! events (the webhook outbox) and audit entry in one transaction. Processor
//! calls happen outside any transaction; a connector with effects outside the
//! gateway gets a `processing` record written first, so a crash in between
//! leaves something to reconcile. The card number leaves the vault only for
//! the connector call and is zeroized afterwards.

mod change;
mod flow;
pub mod view;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use subtle::ConstantTimeEq;

use crate::connectors::{Authentication, Connector, ConnectorError, Connectors, RemoteStatus};
use crate::domain::api_key::Mode;
use crate::domain::event::EventType;
use crate::domain::ids::{MerchantId, PaymentId, TokenId};
use crate::domain::money::{Currency, MinorUnits, Money};
use crate::domain::payment::{CaptureMethod, PaymentError, PaymentState, PaymentStatus, Step};
use crate::domain::payment_fields::{CustomerEmail, Description, Metadata, ReturnUrl};
use crate::domain::restrictions::KeyRestrictions;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::payments::{HistoryEntry, ListFilter, PaymentRow};
use crate::store::{self, Store, StoreError};

use super::actor::Actor;
use super::tokens;
use super::ServiceError;
use crate::vault::Vault;

use change::Change;
use view::NextActionView;

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
}

impl Default for PaymentPolicy {
    fn default() -> Self {
        Self {
            max_amount: DEFAULT_MAX_AMOUNT,
            challenge_ttl: Duration::from_secs(600),
            public_url: "https://127.0.0.1:8443".into(),
            sweep_interval: Duration::from_secs(5),
        }
    }
}

/// The payments service, shared by every request.
#[derive(Clone)]
pub struct Payments {
    store: Store,
    vault: Arc<Vault>,
    connectors: Connectors,
    policy: Arc<PaymentPolicy>,
}

impl std::fmt::Debug for Payments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Payments")
            .field("connectors", &self.connectors)
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
    /// The merchant's configured connector (for new payments).
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
}

/// A parsed `POST /v1/payments/{id}/confirm`.
#[derive(Debug, Default)]
pub struct Confirmation {
    pub payment_method: Option<TokenId>,
    pub return_url: Option<ReturnUrl>,
}

/// Why a merchant cancels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CancellationReason {
    Duplicate,
    Fraudulent,
    RequestedByCustomer,
    Abandoned,
}

impl CancellationReason {
    pub fn as_str(self) -> &'static str {
        match self {
            CancellationReason::Duplicate => "duplicate",
            CancellationReason::Fraudulent => "fraudulent",
            CancellationReason::RequestedByCustomer => "requested_by_customer",
            CancellationReason::Abandoned => "abandoned",
        }
    }
}

/// A payment with its history, as single-payment responses show it.
#[derive(Debug, Clone)]
pub struct PaymentRecord {
    pub row: PaymentRow,
    pub history: Vec<HistoryEntry>,
    /// The payment's JSON without its history, exactly as the events of the
    /// change that wrote it carry it; present when this request wrote it, so
    /// that the response reuses it instead of serializing the payment again.
    pub snapshot: Option<String>,
}

/// A stored payment with its history taken from its row.
fn record_of(row: PaymentRow) -> Result<PaymentRecord, ServiceError> {
    let history = store::payments::parse_history(&row.history)?;
    Ok(PaymentRecord {
        row,
        history,
        snapshot: None,
    })
}

/// Where the customer's browser goes after answering a challenge.
#[derive(Debug, Clone)]
pub struct ChallengeResult {
    pub payment: PaymentRow,
    pub return_url: Option<String>,
}

impl Payments {
    pub fn new(store: Store, vault: Arc<Vault>, connectors: Connectors, policy: PaymentPolicy) -> Self {
        Self {
            store,
            vault,
            connectors,
            policy: Arc::new(policy),
        }
    }

    pub fn policy(&self) -> &PaymentPolicy {
        &self.policy
    }

    pub fn connectors(&self) -> &Connectors {
        &self.connectors
    }

    fn connector(&self, name: &str) -> Result<Arc<dyn Connector>, ServiceError> {
        self.connectors
            .get(name)
            .ok_or_else(|| ServiceError::Store(StoreError::Corrupt(format!("unknown connector {name}"))))
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
            let found = store::payments::get_by_idempotency_key(self.store.reader(), caller.tenant, key, since).await?;
            if let Some(row) = found {
                return record_of(row);
            }
        }
        if new.confirm && new.payment_method.is_none() {
            return Err(ServiceError::invalid(
                "payment_method",
                "parameter_missing",
                "A payment created with confirm: true needs a payment_method",
            ));
        }
        let connector = self.connector(caller.connector)?;
        let card = match &new.payment_method {
            Some(token) => Some(self.open_card(caller.tenant, token, new.confirm).await?),
            None => None,
        };
        let now = Timestamp::now();
        let id = PaymentId::generate_time_ordered(now)?;
        let state = PaymentState::new(new.money, new.capture_method, new.payment_method.is_some());
        let row = PaymentRow {
            id: id.to_string(),
            merchant_id: caller.tenant.merchant().to_string(),
            mode: caller.tenant.mode_str().to_owned(),
            status: state.status.as_str().to_owned(),
            amount: new.money.amount.get(),
            currency: new.money.currency.code().to_owned(),
            capture_method: new.capture_method.as_str().to_owned(),
            payment_method: new.payment_method.as_ref().map(|t| t.to_string()),
            amount_capturable: 0,
            amount_received: 0,
            amount_refunded: 0,
            description: new.description.as_ref().map(|d| d.as_str().to_owned()),
            metadata: serde_json::to_string(&new.metadata).unwrap_or_else(|_| "{}".into()),
            customer_ip: new.customer_ip.map(|ip| ip.to_string()),
            customer_email: new.customer_email.as_ref().map(|e| e.as_str().to_owned()),
            return_url: new.return_url.as_ref().map(|u| u.as_str().to_owned()),
            connector: connector.name().to_owned(),
            processor_reference: None,
            decline_code: None,
            failure_code: None,
            failure_message: None,
            next_action: None,
            action_expires_at: None,
            cancellation_reason: None,
            idempotency_key: new.idempotency_key.clone(),
            claim: None,
            version: 1,
            created_at: now.as_millis(),
            updated_at: now.as_millis(),
            history: "[]".to_owned(),
        };
        let mut change = Change {
            row,
            state,
            is_new: true,
            history: Vec::new(),
            events: vec![EventType::PaymentCreated],
            action: "payment.created",
            now,
        };
        change.created();
        if let (true, Some(card)) = (new.confirm, card) {
            change.action = "payment.confirmed";
            change.step(Step::Confirm, "succeeded", None).map_err(illegal)?;
            if connector.has_external_effects() {
                change = self.write_ahead(change, actor).await?;
                flow::authorize(&self.policy, connector.as_ref(), &mut change, &card, None).await;
                return change.commit(&self.store, actor).await;
            }
            flow::authorize(&self.policy, connector.as_ref(), &mut change, &card, None).await;
        }
        change.commit(&self.store, actor).await
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
        let row = self.load(caller.tenant, id).await?;
        let state = state_of(&row)?;
        caller.check_limits(state.money, "amount")?;
        let mut change = Change::of(row.clone(), state, "payment.confirmed");
        if let Some(token) = &confirmation.payment_method {
            change
                .step(Step::AttachPaymentMethod, "succeeded", None)
                .map_err(illegal)?;
            change.row.payment_method = Some(token.to_string());
        }
        if let Some(url) = &confirmation.return_url {
            change.row.return_url = Some(url.as_str().to_owned());
        }
        let token = change
            .row
            .payment_method
            .as_deref()
            .map(|t| TokenId::from_trusted(t.to_owned()))
            .ok_or_else(|| ServiceError::Conflict {
                // The payment's state, not the request's shape: the same
                // body confirms a payment that has a card.
                code: "payment_unexpected_state",
                message: "This payment has no payment_method; pass one to confirm".to_owned(),
            })?;
        // Refuse before the card is opened (and its CVC consumed).
        change.state.clone().apply(Step::Confirm).map_err(illegal)?;
        let card = self.open_card(caller.tenant, &token, true).await?;
        let connector = self.connector(&change.row.connector)?;
        change.step(Step::Confirm, "succeeded", None).map_err(illegal)?;
        if connector.has_external_effects() {
            change = self.write_ahead(change, actor).await?;
        }
        flow::authorize(&self.policy, connector.as_ref(), &mut change, &card, None).await;
        change.commit(&self.store, actor).await
    }

    /// Captures an authorized payment, fully or partly (`amount` ≤ authorized;
    /// the rest is released).
    pub async fn capture(
        &self,
        actor: &Actor,
        caller: Caller<'_>,
        id: &PaymentId,
        amount: Option<MinorUnits>,
    ) -> Result<PaymentRecord, ServiceError> {
        let row = self.load(caller.tenant, id).await?;
        refuse_if_claimed(&row)?;
        let state = state_of(&row)?;
        let amount = amount.map_or(state.amount_capturable, MinorUnits::get);
        // The state machine decides before the processor is asked.
        state.clone().apply(Step::Capture { amount }).map_err(|e| match e {
            PaymentError::AmountOutOfRange { max } => ServiceError::ExceedsBalance {
                param: "amount_to_capture",
                code: "amount_exceeds_capturable",
                message: format!("amount_to_capture must be between 1 and the authorized amount ({max})"),
            },
            other => illegal(other),
        })?;
        let connector = self.connector(&row.connector)?;
        let reference = row.processor_reference.clone().unwrap_or_default();
        let money = Money {
            amount: MinorUnits::parse(amount, i64::MAX).map_err(|_| corrupt("amount"))?,
            currency: currency_of(&row)?,
        };
        caller.check_limits(money, "amount_to_capture")?;
        // A processor with effects outside the gateway is called only by the
        // request whose claim won the compare-and-set: two concurrent
        // captures never both reach it.
        let claimed = connector.has_external_effects();
        // A claim left by a gateway that died mid-call (it is past
        // CLAIM_TIMEOUT, or `refuse_if_claimed` would have refused): the
        // processor may already have captured.
        let taken_over = row.claim.is_some();
        let row = if claimed {
            self.claim(actor, row, &state, "capture").await?
        } else {
            row
        };
        let mut change = Change::of(row, state, "payment.captured");
        change.row.claim = None;
        let already = if taken_over {
            self.remote_status(connector.as_ref(), id).await
        } else {
            None
        };
        let call = async {
            match already {
                Some(RemoteStatus::Captured { .. }) => Ok(crate::connectors::CaptureOutcome::Captured),
                _ => connector.capture(&reference, money).await,
            }
        };
        let outcome = match call.await {
            // The capture may have happened: ask the processor before the
            // claim is given up, so a retry never captures twice.
            Err(ConnectorError::Timeout) if claimed => match self.remote_status(connector.as_ref(), id).await {
                Some(RemoteStatus::Captured { .. }) => Ok(crate::connectors::CaptureOutcome::Captured),
                Some(RemoteStatus::Authorized { .. }) => Err(ConnectorError::Unavailable("capture timed out".into())),
                _ => return Err(outcome_unknown("capture")),
            },
            other => other,
        };
        match outcome {
            Ok(crate::connectors::CaptureOutcome::Captured) => {
                change
                    .step(Step::Capture { amount }, "succeeded", None)
                    .map_err(illegal)?;
                change.emit(EventType::PaymentCaptured);
                change.emit(EventType::PaymentSucceeded);
                change.commit(&self.store, actor).await
            }
            Ok(crate::connectors::CaptureOutcome::Failed { code }) => {
                change.action = "payment.capture_failed";
                change.attempt("capture", "declined", Some(code.as_str().to_owned()));
                change.commit(&self.store, actor).await?;
                Err(ServiceError::Declined {
                    code: code.as_str(),
                    message: code.message().to_owned(),
                })
            }
            Err(e) => {
                if claimed {
                    self.release_claim(change, actor, "capture").await?;
                }
                Err(ServiceError::ProcessorUnavailable { detail: e.to_string() })
            }
        }
    }

    /// Cancels a payment that is not yet captured, releasing any authorization.
    pub async fn cancel(
        &self,
        actor: &Actor,
        tenant: &Tenant,
        id: &PaymentId,
        reason: Option<CancellationReason>,
    ) -> Result<PaymentRecord, ServiceError> {
        let row = self.load(tenant, id).await?;
        refuse_if_claimed(&row)?;
        let state = state_of(&row)?;
        state.clone().apply(Step::Cancel).map_err(illegal)?;
        let mut row = row;
        if state.status == PaymentStatus::RequiresCapture {
            let connector = self.connector(&row.connector)?;
            if connector.has_external_effects() {
                row = self.claim(actor, row, &state, "cancel").await?;
            }
            let reference = row.processor_reference.clone().unwrap_or_default();
            let claimed = row.claim.is_some();
            let voided = match connector.void(&reference).await {
                // The void may have happened: ask before giving the claim up.
                Err(ConnectorError::Timeout) if claimed => match self.remote_status(connector.as_ref(), id).await {
                    Some(RemoteStatus::Voided) => Ok(()),
                    Some(RemoteStatus::Authorized { .. }) => Err(ConnectorError::Unavailable("void timed out".into())),
                    _ => return Err(outcome_unknown("cancel")),
                },
                other => other,
            };
            if let Err(e) = voided {
                if claimed {
                    self.release_claim(Change::of(row, state, "payment.canceled"), actor, "cancel")
                        .await?;
                }
                return Err(ServiceError::ProcessorUnavailable { detail: e.to_string() });
            }
        }
        let mut change = Change::of(row, state, "payment.canceled");
        change.row.claim = None;
        change
            .step(Step::Cancel, "succeeded", reason.map(|r| r.as_str().to_owned()))
            .map_err(illegal)?;
        change.row.cancellation_reason = reason.map(|r| r.as_str().to_owned());
        change.row.next_action = None;
        change.row.action_expires_at = None;
        change.emit(EventType::PaymentCanceled);
        change.commit(&self.store, actor).await
    }

    pub async fn get(&self, tenant: &Tenant, id: &PaymentId) -> Result<PaymentRecord, ServiceError> {
        let row = self.load(tenant, id).await?;
        record_of(row)
    }

    pub async fn list(
        &self,
        tenant: &Tenant,
        filter: ListFilter<'_>,
        limit: i64,
    ) -> Result<Vec<PaymentRow>, ServiceError> {
        Ok(store::payments::list(self.store.reader(), tenant, filter, limit).await?)
    }

    /// Claims `row` for `operation` (`capture`, `cancel`) before a processor
    /// with external effects is called: one compare-and-set, so of two
    /// concurrent requests only one goes on to the processor; the other gets
    /// a 409. Returns the row as claimed.
    async fn claim(
        &self,
        actor: &Actor,
        row: PaymentRow,
        state: &PaymentState,
        operation: &'static str,
    ) -> Result<PaymentRow, ServiceError> {
        let mut claim = Change::of(row, state.clone(), claim_action(operation));
        claim.row.claim = Some(operation.to_owned());
        claim.attempt(operation, "started", None);
        match claim.commit(&self.store, actor).await {
            Ok(record) => Ok(record.row),
            Err(ServiceError::Conflict { .. }) => Err(operation_in_progress()),
            Err(e) => Err(e),
        }
    }

    /// Where the processor says a payment stands, when it can say.
    async fn remote_status(&self, connector: &dyn Connector, id: &PaymentId) -> Option<RemoteStatus> {
        connector.sync(id).await.ok()
    }

    /// Gives a claim back once the processor surely did not act (it refused
    /// the call, or says the payment is still only authorized), so that the
    /// operation may be retried at once. A call with an unknown outcome keeps
    /// its claim until [`CLAIM_TIMEOUT`].
    async fn release_claim(&self, change: Change, actor: &Actor, operation: &str) -> Result<(), ServiceError> {
        let mut change = change;
        change.action = "payment.claim_released";
        change.row.claim = None;
        change.attempt(operation, "processor_unavailable", None);
        change.commit(&self.store, actor).await.map(drop)
    }

    /// The customer answered the challenge page: resume authorization, or
    /// fail the payment. `challenge` is the secret from the page's URL.
    pub async fn complete_challenge(
        &self,
        actor: &Actor,
        id: &PaymentId,
        challenge: &str,
        approved: bool,
    ) -> Result<ChallengeResult, ServiceError> {
        let unknown = || ServiceError::NotFound {
            resource: "challenge",
            param: "challenge",
        };
        let row = store::payments::get_unscoped(self.store.reader(), id)
            .await?
            .ok_or_else(unknown)?;
        let action: NextActionView = row
            .next_action
            .as_deref()
            .and_then(|a| serde_json::from_str(a).ok())
            .ok_or_else(unknown)?;
        if !challenge_matches(&action.url, challenge) {
            return Err(unknown());
        }
        let now = Timestamp::now();
        if row.status != PaymentStatus::RequiresAction.as_str()
            || row.action_expires_at.is_none_or(|t| t < now.as_millis())
        {
            return Err(ServiceError::Conflict {
                code: "challenge_expired",
                message: "This authentication has expired or was already answered".into(),
            });
        }
        let merchant = MerchantId::from_trusted(row.merchant_id.clone());
        let mode = Mode::parse(&row.mode).ok_or_else(|| corrupt("mode"))?;
        let tenant = Tenant::new(merchant.clone(), mode);
        let return_url = row.return_url.clone();
        let mut change = Change::of(row.clone(), state_of(&row)?, "payment.authenticated");
        change.row.next_action = None;
        change.row.action_expires_at = None;
        if !approved {
            change.action = "payment.authentication_failed";
            change
                .step(Step::Fail, "failed", Some("the customer failed authentication".into()))
                .map_err(illegal)?;
            flow::declined(&mut change, crate::connectors::DeclineCode::AuthenticationFailed);
            let payment = change.commit(&self.store, actor).await?.row;
            return Ok(ChallengeResult { payment, return_url });
        }
        // A frozen merchant authorizes nothing, also not a challenge answered
        // after the freeze: the payment waits, and expires if still frozen.
        let frozen = store::merchants::get(self.store.reader(), &merchant)
            .await?
            .is_none_or(|m| m.frozen.is_some());
        if frozen {
            return Err(ServiceError::Conflict {
                code: "merchant_frozen",
                message: "This merchant's account is frozen; the payment cannot be authorized now".into(),
            });
        }
        change.step(Step::Authenticated, "succeeded", None).map_err(illegal)?;
        let token = row
            .payment_method
            .as_deref()
            .map(|t| TokenId::from_trusted(t.to_owned()))
            .ok_or_else(|| corrupt("payment_method"))?;
        let card = self.open_card(&tenant, &token, false).await?;
        let connector = self.connector(&row.connector)?;
        // The `processing` record (challenge cleared) is written first, as on
        // confirm: of two answers sent at once (a double click, a replayed
        // form) only the one whose compare-and-set wins asks the processor;
        // the other finds no challenge, and the expiry sweep finds nothing
        // to cancel while the authorization is under way.
        if connector.has_external_effects() {
            change = self.write_ahead(change, actor).await?;
        }
        let authentication = Authentication {
            reference: row.processor_reference.clone().unwrap_or_default(),
        };
        flow::authorize(
            &self.policy,
            connector.as_ref(),
            &mut change,
            &card,
            Some(&authentication),
        )
        .await;
        let payment = change.commit(&self.store, actor).await?.row;
        Ok(ChallengeResult { payment, return_url })
    }

    /// Cancels payments whose challenge went unanswered past its expiry
    /// (`cancellation_reason: abandoned`). Returns how many.
    pub async fn expire_challenges(&self) -> Result<usize, ServiceError> {
        let actor = Actor::System {
            task: "challenge-expiry",
        };
        let now = Timestamp::now();
        let rows = store::payments::expired_actions(self.store.reader(), now.as_millis(), 100).await?;
        let mut expired = 0;
        for row in rows {
            let mut change = Change::of(row.clone(), state_of(&row)?, "payment.challenge_expired");
            if change
                .step(
                    Step::Cancel,
                    "expired",
                    Some("the customer did not answer the challenge in time".into()),
                )
                .is_err()
            {
                continue;
            }
            change.row.cancellation_reason = Some(CancellationReason::Abandoned.as_str().to_owned());
            change.row.next_action = None;
            change.row.action_expires_at = None;
            change.emit(EventType::PaymentCanceled);
            match change.commit(&self.store, &actor).await {
                Ok(_) => expired += 1,
                // Answered in the meantime: nothing to expire.
                Err(ServiceError::Conflict { .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(expired)
    }

    /// Writes the `processing` record before an external processor is called.
    async fn write_ahead(&self, change: Change, actor: &Actor) -> Result<Change, ServiceError> {
        let state = change.state.clone();
        let action = change.action;
        let row = change.commit(&self.store, actor).await?.row;
        Ok(Change::of(row, state, action))
    }

    async fn load(&self, tenant: &Tenant, id: &PaymentId) -> Result<PaymentRow, ServiceError> {
        store::payments::get(self.store.reader(), tenant, id)
            .await?
            .ok_or(ServiceError::NotFound {
                resource: "payment",
                param: "id",
            })
    }

    /// Opens the token for an authorization. A token of another merchant, a
    /// shredded one, or one of the other mode is `payment_method` not found,
    /// exactly like a token that never existed.
    async fn open_card(
        &self,
        tenant: &Tenant,
        token: &TokenId,
        first_use: bool,
    ) -> Result<crate::connectors::CardDetails, ServiceError> {
        let missing = || ServiceError::ReferenceNotFound {
            resource: "payment_method",
            param: "payment_method",
        };
        let (_, mut card) = tokens::open_for_payment(&self.store, &self.vault, tenant, token)
            .await?
            .ok_or_else(missing)?;
        if !first_use {
            card.cvc = None;
        }
        Ok(card)
    }
}

/// The state machine's view of a stored payment.
fn state_of(row: &PaymentRow) -> Result<PaymentState, ServiceError> {
    let money = Money {
        amount: MinorUnits::parse(row.amount, i64::MAX).map_err(|_| corrupt("amount"))?,
        currency: currency_of(row)?,
    };
    Ok(PaymentState {
        status: PaymentStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
        money,
        capture_method: CaptureMethod::parse(&row.capture_method).ok_or_else(|| corrupt("capture_method"))?,
        amount_capturable: row.amount_capturable,
        amount_received: row.amount_received,
        amount_refunded: row.amount_refunded,
    })
}

fn currency_of(row: &PaymentRow) -> Result<Currency, ServiceError> {
    Currency::parse(&row.currency).map_err(|_| corrupt("currency"))
}

fn corrupt(column: &str) -> ServiceError {
    ServiceError::Store(StoreError::Corrupt(format!("payments.{column}")))
}

/// The audit action of a claim.
fn claim_action(operation: &str) -> &'static str {
    match operation {
        "cancel" => "payment.cancel_started",
        _ => "payment.capture_started",
    }
}

/// 503 for a capture or cancel whose outcome at the processor is unknown (it
/// timed out and the processor could not say): the payment stays claimed
/// until [`CLAIM_TIMEOUT`], so nothing can act on it twice meanwhile.
fn outcome_unknown(operation: &'static str) -> ServiceError {
    ServiceError::OutcomeUnknown {
        operation,
        retry_after: CLAIM_TIMEOUT,
    }
}

/// 409 while another request's capture or cancel is at the processor.
fn operation_in_progress() -> ServiceError {
    ServiceError::Conflict {
        code: "payment_operation_in_progress",
        message: "Another request is capturing or canceling this payment at the processor; fetch it and retry".into(),
    }
}

/// Refuses to start an operation on a payment another request has claimed
/// (unless that claim is older than [`CLAIM_TIMEOUT`]).
fn refuse_if_claimed(row: &PaymentRow) -> Result<(), ServiceError> {
    let timeout = i64::try_from(CLAIM_TIMEOUT.as_millis()).unwrap_or(i64::MAX);
    let live = row.claim.is_some() && Timestamp::now().as_millis().saturating_sub(row.updated_at) < timeout;
    if live {
        Err(operation_in_progress())
    } else {
        Ok(())
    }
}

/// A refused transition: 409 naming the status and the action.
fn illegal(e: PaymentError) -> ServiceError {
    ServiceError::Conflict {
        code: "payment_unexpected_state",
        message: format!("{}", e),
    }
}

/// Whether `presented` is the challenge secret in the page URL we issued
/// (compared in constant time).
pub fn challenge_matches(url: &str, presented: &str) -> bool {
    let Ok(parsed) = url::Url::parse(url) else { return false };
    let Some((_, expected)) = parsed.query_pairs().find(|(k, _)| k == "challenge") else {
        return false;
    };
    !presented.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}
