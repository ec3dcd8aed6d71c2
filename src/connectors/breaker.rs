//! A circuit breaker around one processor connection's connector: after
//! [`BreakerSettings::failure_threshold`] outages in a row (the processor
//! unreachable, a timeout) the breaker opens and every call fails at once
//! as [`ConnectorError::Unavailable`] without reaching the processor; after
//! [`BreakerSettings::open_for`] one call at a time goes through as a probe
//! (half-open): its success closes the breaker, another outage opens it
//! again.
//!
//! Invariants: a refused call never reached the processor, so routing may
//! send an authorization refused here to a fallback connection; only
//! outages count (a decline, a refusal of the request or a configuration
//! error is the processor answering); the breaker's state is visible as a
//! metric by connector kind, never by connection id. A probe whose caller
//! went away leaves the breaker half-open until `open_for` passes again,
//! when another probe may go.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, FoundRefund, InboundEvent,
    InboundHeaders, RefundOutcome, RemoteStatus,
};
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::money::Money;

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerSettings {
    /// Outages in a row that open the breaker.
    pub failure_threshold: u32,
    /// How long it stays open before a probe may go.
    pub open_for: Duration,
}

impl Default for BreakerSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            open_for: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed { failures: u32 },
    Open { since: Instant },
    HalfOpen { probe_since: Instant },
}

/// What the breaker says of a call about to be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Go,
    /// The one call that tests whether the processor is back.
    Probe,
    Refuse,
}

/// How a call ended, for the breaker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The processor answered (whatever it said).
    Answered,
    /// It could not be reached or did not answer in time.
    Outage,
}

impl Verdict {
    pub fn of<T>(result: &Result<T, ConnectorError>) -> Self {
        match result {
            Err(ConnectorError::Timeout | ConnectorError::Unavailable(_)) => Verdict::Outage,
            _ => Verdict::Answered,
        }
    }
}

/// One connection's breaker.
#[derive(Debug)]
pub struct Breaker {
    /// The connector kind (`stripe`): the metric's label.
    kind: &'static str,
    settings: BreakerSettings,
    /// A std mutex: held only to read or move the state, never across an
    /// await.
    state: Mutex<State>,
}

impl Breaker {
    pub fn new(kind: &'static str, settings: BreakerSettings) -> Self {
        Self {
            kind,
            settings,
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether the breaker is open (or half-open) now.
    pub fn is_open(&self) -> bool {
        !matches!(*self.lock(), State::Closed { .. })
    }

    pub fn admit(&self) -> Admission {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Admission {
        let mut state = self.lock();
        match *state {
            State::Closed { .. } => Admission::Go,
            State::Open { since } | State::HalfOpen { probe_since: since }
                if now.saturating_duration_since(since) >= self.settings.open_for =>
            {
                *state = State::HalfOpen { probe_since: now };
                Admission::Probe
            }
            State::Open { .. } | State::HalfOpen { .. } => Admission::Refuse,
        }
    }

    pub fn record(&self, verdict: Verdict) {
        self.record_at(verdict, Instant::now());
    }

    fn record_at(&self, verdict: Verdict, now: Instant) {
        let mut state = self.lock();
        let was_open = !matches!(*state, State::Closed { .. });
        let next = match (verdict, *state) {
            (Verdict::Answered, _) => State::Closed { failures: 0 },
            (Verdict::Outage, State::Closed { failures }) => {
                let failures = failures.saturating_add(1);
                if failures >= self.settings.failure_threshold {
                    State::Open { since: now }
                } else {
                    State::Closed { failures }
                }
            }
            // A failed probe, or a call admitted before the breaker opened.
            (Verdict::Outage, State::HalfOpen { .. } | State::Open { .. }) => State::Open { since: now },
        };
        *state = next;
        let is_open = !matches!(next, State::Closed { .. });
        drop(state);
        match (was_open, is_open) {
            (false, true) => {
                tracing::warn!(
                    connector = self.kind,
                    "circuit breaker opened: the processor is unreachable"
                );
                crate::metrics::process().breaker_opened(self.kind);
            }
            (true, false) => {
                tracing::info!(
                    connector = self.kind,
                    "circuit breaker closed: the processor answers again"
                );
                crate::metrics::process().breaker_closed(self.kind);
            }
            _ => {}
        }
    }
}

impl Drop for Breaker {
    fn drop(&mut self) {
        if self.is_open() {
            crate::metrics::process().breaker_closed(self.kind);
        }
    }
}

/// A connector behind a breaker.
pub struct Guarded {
    inner: Arc<dyn Connector>,
    breaker: Breaker,
}

impl Guarded {
    pub fn new(inner: Arc<dyn Connector>, settings: BreakerSettings) -> Self {
        let breaker = Breaker::new(inner.name(), settings);
        Self { inner, breaker }
    }

    pub fn breaker(&self) -> &Breaker {
        &self.breaker
    }

    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, ConnectorError>>,
    ) -> Result<T, ConnectorError> {
        if self.breaker.admit() == Admission::Refuse {
            return Err(ConnectorError::Unavailable(
                "the circuit breaker is open: the processor was unreachable; nothing was sent".into(),
            ));
        }
        let result = call.await;
        self.breaker.record(Verdict::of(&result));
        result
    }
}

impl Connector for Guarded {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    fn has_external_effects(&self) -> bool {
        self.inner.has_external_effects()
    }

    fn authorize<'a>(
        &'a self,
        request: AuthorizeRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthorizeOutcome, ConnectorError>> {
        self.call(self.inner.authorize(request)).boxed()
    }

    fn capture<'a>(
        &'a self,
        reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ConnectorError>> {
        self.call(self.inner.capture(reference, amount)).boxed()
    }

    fn void<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), ConnectorError>> {
        self.call(self.inner.void(reference)).boxed()
    }

    fn refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
        amount: Money,
    ) -> BoxFuture<'a, Result<RefundOutcome, ConnectorError>> {
        self.call(self.inner.refund(reference, refund, amount)).boxed()
    }

    fn sync<'a>(&'a self, payment: &'a PaymentId) -> BoxFuture<'a, Result<RemoteStatus, ConnectorError>> {
        self.call(self.inner.sync(payment)).boxed()
    }

    fn sync_refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
    ) -> BoxFuture<'a, Result<Option<FoundRefund>, ConnectorError>> {
        self.call(self.inner.sync_refund(reference, refund)).boxed()
    }

    fn parse_webhook(&self, headers: &InboundHeaders, body: &[u8]) -> Result<InboundEvent, ConnectorError> {
        self.inner.parse_webhook(headers, body)
    }

    fn prepare_webhook<'a>(&'a self, headers: &'a InboundHeaders) -> BoxFuture<'a, ()> {
        self.inner.prepare_webhook(headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: BreakerSettings = BreakerSettings {
        failure_threshold: 3,
        open_for: Duration::from_secs(30),
    };

    #[test]
    fn outages_in_a_row_open_it_and_an_answer_resets_the_count() {
        let breaker = Breaker::new("test", SETTINGS);
        let t0 = Instant::now();
        breaker.record_at(Verdict::Outage, t0);
        breaker.record_at(Verdict::Outage, t0);
        breaker.record_at(Verdict::Answered, t0);
        breaker.record_at(Verdict::Outage, t0);
        breaker.record_at(Verdict::Outage, t0);
        assert_eq!(breaker.admit_at(t0), Admission::Go, "two in a row since the answer");
        breaker.record_at(Verdict::Outage, t0);
        assert!(breaker.is_open());
        assert_eq!(breaker.admit_at(t0 + Duration::from_secs(29)), Admission::Refuse);
    }

    #[test]
    fn after_open_for_one_probe_goes_and_decides() {
        let breaker = Breaker::new("test", SETTINGS);
        let t0 = Instant::now();
        for _ in 0..3 {
            breaker.record_at(Verdict::Outage, t0);
        }
        let later = t0 + Duration::from_secs(30);
        assert_eq!(breaker.admit_at(later), Admission::Probe);
        assert_eq!(breaker.admit_at(later), Admission::Refuse, "one probe at a time");
        // The probe fails: open again, for another `open_for`.
        breaker.record_at(Verdict::Outage, later);
        assert_eq!(breaker.admit_at(later + Duration::from_secs(10)), Admission::Refuse);
        let again = later + Duration::from_secs(30);
        assert_eq!(breaker.admit_at(again), Admission::Probe);
        breaker.record_at(Verdict::Answered, again);
        assert!(!breaker.is_open());
        assert_eq!(breaker.admit_at(again), Admission::Go);
    }

    #[test]
    fn a_probe_whose_caller_went_away_does_not_keep_it_open_for_ever() {
        let breaker = Breaker::new("test", SETTINGS);
        let t0 = Instant::now();
        for _ in 0..3 {
            breaker.record_at(Verdict::Outage, t0);
        }
        let probe = t0 + Duration::from_secs(30);
        assert_eq!(breaker.admit_at(probe), Admission::Probe);
        // Never recorded; after another `open_for`, a new probe goes.
        assert_eq!(breaker.admit_at(probe + Duration::from_secs(30)), Admission::Probe);
    }

    #[test]
    fn only_outages_count() {
        assert_eq!(Verdict::of::<()>(&Err(ConnectorError::Timeout)), Verdict::Outage);
        assert_eq!(
            Verdict::of::<()>(&Err(ConnectorError::Unavailable("reset".into()))),
            Verdict::Outage
        );
        for answered in [
            ConnectorError::Rejected("bad".into()),
            ConnectorError::Configuration("key".into()),
            ConnectorError::InvalidSignature,
        ] {
            assert_eq!(Verdict::of::<()>(&Err(answered)), Verdict::Answered);
        }
        assert_eq!(Verdict::of(&Ok(())), Verdict::Answered);
    }
}
