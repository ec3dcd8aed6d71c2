//! A double of a third-party card processor (the only kind of fake these
//! tests use): a [`Connector`] with effects outside the gateway, as a real
//! processor has, that answers as one does (approves, captures, voids,
//! refunds; a 3-D Secure challenge for the sandbox's challenge card) in test
//! and in live mode, and counts every call that reaches it.
//!
//! A test can hold every call at the processor until it lets go
//! ([`ProcessorDouble::hold`] / [`ProcessorDouble::release`]), so that
//! concurrent requests overlap for certain rather than by timing, and make
//! the next call of one kind fail ([`ProcessorDouble::fail_next`]). A gateway routes a merchant to it
//! once the merchant's route of both modes is [`NAME`] ([`ProcessorDouble::route`]).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use paywarden::connectors::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, FoundRefund, InboundEvent,
    RefundOutcome, RemoteStatus,
};
use paywarden::domain::api_key::Mode;
use paywarden::domain::ids::{MerchantId, PaymentId, RefundId};
use paywarden::domain::money::Money;
use tokio::sync::watch;

use crate::support::TestApp;

/// The connector name merchants are routed to the double by.
pub const NAME: &str = "processor_double";

/// The card the double asks a 3-D Secure challenge for (as the sandbox does).
pub const CHALLENGE_CARD: &str = "4000002760003184";

/// The kinds of call a processor receives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Call {
    Authorize,
    Capture,
    Void,
    Refund,
}

/// How many calls of each kind reached the double.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Calls {
    pub authorize: usize,
    pub capture: usize,
    pub void: usize,
    pub refund: usize,
}

impl Calls {
    pub fn total(self) -> usize {
        self.authorize + self.capture + self.void + self.refund
    }
}

#[derive(Default)]
struct State {
    calls: Calls,
    /// The amount of every capture and refund, in the order they arrived.
    captured: Vec<i64>,
    refunded: Vec<i64>,
    /// The mode of every authorization.
    modes: Vec<Mode>,
    /// The CVC every authorization carried, if any.
    cvcs: Vec<Option<String>>,
    failures: HashMap<Call, VecDeque<ConnectorError>>,
    /// Calls that take effect at the processor but whose answer is lost.
    lost_answers: HashMap<Call, VecDeque<ConnectorError>>,
    /// `sync` fails this many more times.
    sync_failures: usize,
    /// What the processor knows of each payment, for `sync`.
    ledger: HashMap<String, RemoteStatus>,
}

pub struct ProcessorDouble {
    state: Mutex<State>,
    /// `true` while calls are held at the processor.
    held: watch::Sender<bool>,
}

impl Default for ProcessorDouble {
    fn default() -> Self {
        Self {
            state: Mutex::new(State::default()),
            held: watch::Sender::new(false),
        }
    }
}

impl ProcessorDouble {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Routes `merchant`'s payments to the double (as an operator configures
    /// a merchant's processor). Do it before the merchant's first request, so
    /// no gateway holds its record from before.
    pub async fn route(app: &TestApp, merchant: &MerchantId) {
        sqlx::query("UPDATE merchants SET connector = $1, live_connector = $1 WHERE id = $2")
            .bind(NAME)
            .bind(merchant.as_str())
            .execute(app.store.reader())
            .await
            .unwrap();
    }

    pub fn calls(&self) -> Calls {
        self.state.lock().unwrap().calls
    }

    /// The amounts captured at the processor, in order.
    pub fn captured(&self) -> Vec<i64> {
        self.state.lock().unwrap().captured.clone()
    }

    /// The amounts refunded at the processor, in order.
    pub fn refunded(&self) -> Vec<i64> {
        self.state.lock().unwrap().refunded.clone()
    }

    /// The mode of every authorization, in order.
    pub fn modes(&self) -> Vec<Mode> {
        self.state.lock().unwrap().modes.clone()
    }

    /// The CVC each authorization carried, in order.
    pub fn cvcs(&self) -> Vec<Option<String>> {
        self.state.lock().unwrap().cvcs.clone()
    }

    /// Holds every later call at the processor (counted on arrival) until
    /// [`release`](Self::release).
    pub fn hold(&self) {
        self.held.send_replace(true);
    }

    pub fn release(&self) {
        self.held.send_replace(false);
    }

    /// The next call of kind `call` fails with `error` (after it was counted).
    pub fn fail_next(&self, call: Call, error: ConnectorError) {
        self.state
            .lock()
            .unwrap()
            .failures
            .entry(call)
            .or_default()
            .push_back(error);
    }

    /// The next call of kind `call` takes effect at the processor, but its
    /// answer is lost: the gateway gets `error` (e.g. a timeout).
    pub fn lose_next_answer(&self, call: Call, error: ConnectorError) {
        self.state
            .lock()
            .unwrap()
            .lost_answers
            .entry(call)
            .or_default()
            .push_back(error);
    }

    /// The next `times` status queries (`sync`) fail.
    pub fn fail_sync(&self, times: usize) {
        self.state.lock().unwrap().sync_failures = times;
    }

    fn lost_answer(&self, call: Call) -> Result<(), ConnectorError> {
        let lost = self
            .state
            .lock()
            .unwrap()
            .lost_answers
            .get_mut(&call)
            .and_then(VecDeque::pop_front);
        lost.map_or(Ok(()), Err)
    }

    /// Waits (up to 10 s) until `pred` holds of the calls; whether it did.
    pub async fn wait_for(&self, pred: impl Fn(Calls) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while tokio::time::Instant::now() < deadline {
            if pred(self.calls()) {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        pred(self.calls())
    }

    /// A call arrives: it is counted, waits while calls are held, then fails
    /// if told to.
    async fn arrive(&self, call: Call, note: impl FnOnce(&mut State)) -> Result<(), ConnectorError> {
        let failure = {
            let mut state = self.state.lock().unwrap();
            match call {
                Call::Authorize => state.calls.authorize += 1,
                Call::Capture => state.calls.capture += 1,
                Call::Void => state.calls.void += 1,
                Call::Refund => state.calls.refund += 1,
            }
            let failure = state.failures.get_mut(&call).and_then(VecDeque::pop_front);
            if failure.is_none() {
                note(&mut state);
            }
            failure
        };
        let mut held = self.held.subscribe();
        let _ = held.wait_for(|held| !*held).await;
        failure.map_or(Ok(()), Err)
    }

    fn record(&self, reference: &str, status: RemoteStatus) {
        if let Some(payment) = payment_of(reference) {
            self.state.lock().unwrap().ledger.insert(payment, status);
        }
    }
}

/// References are `dbl_<kind>_<payment id without its prefix>`.
fn reference(kind: &str, payment: &PaymentId) -> String {
    format!("dbl_{kind}_{}", payment.as_str().trim_start_matches(PaymentId::PREFIX))
}

fn payment_of(reference: &str) -> Option<String> {
    let rest = reference.strip_prefix("dbl_")?;
    let (_, id) = rest.split_once('_')?;
    Some(format!("{}{id}", PaymentId::PREFIX))
}

impl Connector for ProcessorDouble {
    fn name(&self) -> &'static str {
        NAME
    }

    fn has_external_effects(&self) -> bool {
        true
    }

    fn authorize<'a>(
        &'a self,
        request: AuthorizeRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthorizeOutcome, ConnectorError>> {
        async move {
            let mode = request.mode;
            let cvc = request.card.cvc.as_ref().map(|c| c.expose().to_owned());
            self.arrive(Call::Authorize, |s| {
                s.modes.push(mode);
                s.cvcs.push(cvc);
            })
            .await?;
            if request.card.number.expose_digits() == CHALLENGE_CARD && request.authentication.is_none() {
                return Ok(AuthorizeOutcome::ChallengeRequired {
                    reference: reference("3ds", request.payment),
                });
            }
            let reference = reference("auth", request.payment);
            self.record(
                &reference,
                RemoteStatus::Authorized {
                    reference: reference.clone(),
                },
            );
            Ok(AuthorizeOutcome::Approved { reference })
        }
        .boxed()
    }

    fn capture<'a>(
        &'a self,
        reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ConnectorError>> {
        async move {
            let amount = amount.amount.get();
            self.arrive(Call::Capture, |s| s.captured.push(amount)).await?;
            self.record(
                reference,
                RemoteStatus::Captured {
                    reference: reference.to_owned(),
                    amount,
                },
            );
            self.lost_answer(Call::Capture)?;
            Ok(CaptureOutcome::Captured)
        }
        .boxed()
    }

    fn void<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), ConnectorError>> {
        async move {
            self.arrive(Call::Void, |_| {}).await?;
            self.record(reference, RemoteStatus::Voided);
            self.lost_answer(Call::Void)?;
            Ok(())
        }
        .boxed()
    }

    fn refund<'a>(
        &'a self,
        _reference: &'a str,
        refund: &'a RefundId,
        amount: Money,
    ) -> BoxFuture<'a, Result<RefundOutcome, ConnectorError>> {
        async move {
            let amount = amount.amount.get();
            self.arrive(Call::Refund, |s| s.refunded.push(amount)).await?;
            Ok(RefundOutcome::Succeeded {
                reference: format!("dbl_re_{}", refund.as_str().trim_start_matches(RefundId::PREFIX)),
            })
        }
        .boxed()
    }

    /// The double keeps no refunds apart from their amounts: it cannot say.
    fn sync_refund<'a>(
        &'a self,
        _reference: &'a str,
        _refund: &'a RefundId,
    ) -> BoxFuture<'a, Result<Option<FoundRefund>, ConnectorError>> {
        async {
            Err(ConnectorError::Unavailable(
                "the double keeps no refunds to look up".into(),
            ))
        }
        .boxed()
    }

    fn sync<'a>(&'a self, payment: &'a PaymentId) -> BoxFuture<'a, Result<RemoteStatus, ConnectorError>> {
        let status = {
            let mut state = self.state.lock().unwrap();
            if state.sync_failures > 0 {
                state.sync_failures -= 1;
                Err(ConnectorError::Timeout)
            } else {
                Ok(state
                    .ledger
                    .get(payment.as_str())
                    .cloned()
                    .unwrap_or(RemoteStatus::NotFound))
            }
        };
        async move { status }.boxed()
    }

    /// The double sends no webhooks.
    fn parse_webhook(
        &self,
        _headers: &paywarden::connectors::InboundHeaders,
        _body: &[u8],
    ) -> Result<InboundEvent, ConnectorError> {
        Err(ConnectorError::InvalidSignature)
    }
}
