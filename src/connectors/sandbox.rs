//! The built-in `sandbox` processor: deterministic by test card number, so
//! merchants can exercise every path without a real processor. It moves no
//! money and has no state outside this process except what it keeps for
//! `sync`. Test mode only: a live payment routed here is refused.
//!
//! | Card number        | Outcome                                      |
//! |--------------------|----------------------------------------------|
//! | 4000000000000002   | declined: `generic_decline`                  |
//! | 4000000000009995   | declined: `insufficient_funds`               |
//! | 4000000000000069   | declined: `expired_card`                     |
//! | 4000000000000119   | declined: `processing_error`                 |
//! | 4000002760003184   | 3-D Secure challenge, then approved          |
//! | 4000000000000101   | the processor times out (never authorized)   |
//! | 4000000000000341   | authorized; capture fails                    |
//! | 4000000000005126   | authorized and captured; refunds fail        |
//! | any other valid card (e.g. 4242424242424242) | approved           |

use std::collections::HashMap;
use std::sync::Mutex;

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::{
    AuthorizeOutcome, AuthorizeRequest, CaptureOutcome, Connector, ConnectorError, DeclineCode, InboundEvent,
    RefundOutcome, RemoteStatus,
};
use crate::domain::api_key::Mode;
use crate::domain::ids::{PaymentId, RefundId};
use crate::domain::money::Money;

/// How a sandbox card behaves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    Approve,
    Decline(DeclineCode),
    Challenge,
    Timeout,
    CaptureFails,
    RefundFails,
}

/// The sandbox's table of test cards.
pub const TEST_CARDS: [(&str, Behaviour); 8] = [
    ("4000000000000002", Behaviour::Decline(DeclineCode::GenericDecline)),
    ("4000000000009995", Behaviour::Decline(DeclineCode::InsufficientFunds)),
    ("4000000000000069", Behaviour::Decline(DeclineCode::ExpiredCard)),
    ("4000000000000119", Behaviour::Decline(DeclineCode::ProcessingError)),
    ("4000002760003184", Behaviour::Challenge),
    ("4000000000000101", Behaviour::Timeout),
    ("4000000000000341", Behaviour::CaptureFails),
    ("4000000000005126", Behaviour::RefundFails),
];

/// How a card number behaves in the sandbox.
pub fn behaviour(digits: &str) -> Behaviour {
    TEST_CARDS
        .iter()
        .find(|(number, _)| *number == digits)
        .map_or(Behaviour::Approve, |&(_, b)| b)
}

/// Most authorizations remembered for `sync`; the oldest are forgotten first.
const MEMORY: usize = 100_000;

/// What the sandbox "processor" remembers of the payments it authorized, in
/// two generations of at most `MEMORY / 2` each: when the current one is
/// full it becomes the previous one and the old previous one is forgotten.
/// (A map with a removal per insertion fills with tombstones and rehashes
/// all of its entries every so often, on some unlucky payment's request.)
#[derive(Default)]
struct Ledger {
    current: HashMap<String, RemoteStatus>,
    previous: HashMap<String, RemoteStatus>,
}

impl Ledger {
    const GENERATION: usize = MEMORY / 2;

    fn record(&mut self, payment: &str, status: RemoteStatus) {
        if let Some(known) = self.previous.get_mut(payment) {
            *known = status;
            return;
        }
        if self.current.capacity() == 0 {
            self.current.reserve(Self::GENERATION);
        }
        if self.current.len() >= Self::GENERATION && !self.current.contains_key(payment) {
            self.previous = std::mem::replace(&mut self.current, HashMap::with_capacity(Self::GENERATION));
        }
        self.current.insert(payment.to_owned(), status);
    }

    fn get(&self, payment: &str) -> Option<&RemoteStatus> {
        self.current.get(payment).or_else(|| self.previous.get(payment))
    }
}

/// The sandbox connector.
#[derive(Default)]
pub struct Sandbox {
    ledger: Mutex<Ledger>,
}

impl Sandbox {
    pub fn new() -> Self {
        Self::default()
    }

    fn record(&self, payment: &str, status: RemoteStatus) {
        if let Ok(mut ledger) = self.ledger.lock() {
            ledger.record(payment, status);
        }
    }

    fn authorize_now(&self, request: &AuthorizeRequest<'_>) -> Result<AuthorizeOutcome, ConnectorError> {
        if request.mode == Mode::Live {
            return Err(ConnectorError::ModeNotSupported("live"));
        }
        let payment = request.payment.as_str();
        let reference = |kind: &str| format!("sbx_{kind}_{}", payment.trim_start_matches(PaymentId::PREFIX));
        let outcome = match behaviour(request.card.number.expose_digits()) {
            Behaviour::Decline(code) => AuthorizeOutcome::Declined {
                code,
                reference: Some(reference("dec")),
            },
            Behaviour::Timeout => return Err(ConnectorError::Timeout),
            Behaviour::Challenge if request.authentication.is_none() => AuthorizeOutcome::ChallengeRequired {
                reference: reference("3ds"),
            },
            Behaviour::CaptureFails => AuthorizeOutcome::Approved {
                reference: reference("capfail"),
            },
            Behaviour::RefundFails => AuthorizeOutcome::Approved {
                reference: reference("refail"),
            },
            Behaviour::Approve | Behaviour::Challenge => AuthorizeOutcome::Approved {
                reference: reference("auth"),
            },
        };
        if let AuthorizeOutcome::Approved { reference } = &outcome {
            self.record(
                payment,
                RemoteStatus::Authorized {
                    reference: reference.clone(),
                },
            );
        }
        Ok(outcome)
    }

    /// The payment a sandbox reference belongs to.
    fn payment_of(reference: &str) -> Option<String> {
        let rest = reference.strip_prefix("sbx_")?;
        let (_, id) = rest.split_once('_')?;
        Some(format!("{}{id}", PaymentId::PREFIX))
    }
}

impl Connector for Sandbox {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn has_external_effects(&self) -> bool {
        false
    }

    fn authorize<'a>(
        &'a self,
        request: AuthorizeRequest<'a>,
    ) -> BoxFuture<'a, Result<AuthorizeOutcome, ConnectorError>> {
        let outcome = self.authorize_now(&request);
        async move { outcome }.boxed()
    }

    fn capture<'a>(
        &'a self,
        reference: &'a str,
        amount: Money,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ConnectorError>> {
        let outcome = if reference.starts_with("sbx_capfail_") {
            CaptureOutcome::Failed {
                code: DeclineCode::CaptureFailed,
            }
        } else {
            if let Some(payment) = Self::payment_of(reference) {
                self.record(
                    &payment,
                    RemoteStatus::Captured {
                        reference: reference.to_owned(),
                        amount: amount.amount.get(),
                    },
                );
            }
            CaptureOutcome::Captured
        };
        async move { Ok(outcome) }.boxed()
    }

    fn void<'a>(&'a self, reference: &'a str) -> BoxFuture<'a, Result<(), ConnectorError>> {
        if let Some(payment) = Self::payment_of(reference) {
            self.record(&payment, RemoteStatus::Voided);
        }
        async move { Ok(()) }.boxed()
    }

    fn refund<'a>(
        &'a self,
        reference: &'a str,
        refund: &'a RefundId,
        _amount: Money,
    ) -> BoxFuture<'a, Result<RefundOutcome, ConnectorError>> {
        let outcome = if reference.starts_with("sbx_refail_") {
            RefundOutcome::Failed {
                code: DeclineCode::RefundFailed,
            }
        } else {
            RefundOutcome::Succeeded {
                reference: format!("sbx_re_{}", refund.as_str().trim_start_matches(RefundId::PREFIX)),
            }
        };
        async move { Ok(outcome) }.boxed()
    }

    fn sync<'a>(&'a self, payment: &'a PaymentId) -> BoxFuture<'a, Result<RemoteStatus, ConnectorError>> {
        let status = self
            .ledger
            .lock()
            .ok()
            .and_then(|l| l.get(payment.as_str()).cloned())
            .unwrap_or(RemoteStatus::NotFound);
        async move { Ok(status) }.boxed()
    }

    /// The sandbox's refunds settle in their request, so none is ever left
    /// pending to look up: an error keeps any such refund pending rather
    /// than settle it on a guess.
    fn sync_refund<'a>(
        &'a self,
        _reference: &'a str,
        _refund: &'a RefundId,
    ) -> BoxFuture<'a, Result<Option<super::FoundRefund>, ConnectorError>> {
        async {
            Err(ConnectorError::Unavailable(
                "the sandbox keeps no refunds to look up".into(),
            ))
        }
        .boxed()
    }

    /// The sandbox sends no webhooks: its answers are immediate.
    fn parse_webhook(&self, _headers: &super::InboundHeaders, _body: &[u8]) -> Result<InboundEvent, ConnectorError> {
        Err(ConnectorError::InvalidSignature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::CardDetails;
    use crate::domain::card::{CardNumber, ExpiryDate};
    use crate::domain::money::{Currency, MinorUnits};

    #[test]
    fn the_ledger_remembers_the_last_generation_and_forgets_older_payments() {
        let mut ledger = Ledger::default();
        let gen = Ledger::GENERATION;
        ledger.record("pay_first", RemoteStatus::Voided);
        for i in 1..gen {
            ledger.record(&format!("pay_{i}"), RemoteStatus::NotFound);
        }
        // The next payment starts a new generation; the first is still known
        // and can still change.
        ledger.record("pay_next", RemoteStatus::Voided);
        assert_eq!(ledger.get("pay_first"), Some(&RemoteStatus::Voided));
        ledger.record("pay_first", RemoteStatus::Authorized { reference: "r".into() });
        assert!(matches!(ledger.get("pay_first"), Some(RemoteStatus::Authorized { .. })));
        assert_eq!(ledger.current.len(), 1, "an update of a known payment adds nothing");
        for i in 0..gen {
            ledger.record(&format!("pay_later_{i}"), RemoteStatus::NotFound);
        }
        // Two generations on, the first payments are forgotten; memory stays bounded.
        assert_eq!(ledger.get("pay_first"), None);
        assert_eq!(ledger.get("pay_1"), None);
        assert!(ledger.get("pay_next").is_some());
        assert!(ledger.current.len() + ledger.previous.len() <= MEMORY);
    }

    fn card(number: &str) -> CardDetails {
        CardDetails {
            number: CardNumber::parse(number).unwrap(),
            expiry: ExpiryDate::from_stored(12, 2099).unwrap(),
            cvc: None,
            name: None,
        }
    }

    fn money() -> Money {
        Money {
            amount: MinorUnits::parse(1000, i64::MAX).unwrap(),
            currency: Currency::parse("usd").unwrap(),
        }
    }

    async fn authorize(sandbox: &Sandbox, number: &str, mode: Mode) -> Result<AuthorizeOutcome, ConnectorError> {
        let payment = PaymentId::generate().unwrap();
        let card = card(number);
        sandbox
            .authorize(AuthorizeRequest {
                payment: &payment,
                mode,
                money: money(),
                card: &card,
                authentication: None,
                customer_ip: None,
                capture_at_once: false,
            })
            .await
    }

    #[tokio::test]
    async fn every_test_card_behaves_as_documented() {
        let sandbox = Sandbox::new();
        assert!(matches!(
            authorize(&sandbox, "4242424242424242", Mode::Test).await,
            Ok(AuthorizeOutcome::Approved { .. })
        ));
        for (number, behaviour) in TEST_CARDS {
            let outcome = authorize(&sandbox, number, Mode::Test).await;
            match behaviour {
                Behaviour::Decline(code) => {
                    assert!(matches!(outcome, Ok(AuthorizeOutcome::Declined { code: c, .. }) if c == code))
                }
                Behaviour::Challenge => assert!(matches!(outcome, Ok(AuthorizeOutcome::ChallengeRequired { .. }))),
                Behaviour::Timeout => assert_eq!(outcome, Err(ConnectorError::Timeout)),
                Behaviour::CaptureFails | Behaviour::RefundFails | Behaviour::Approve => {
                    assert!(matches!(outcome, Ok(AuthorizeOutcome::Approved { .. })))
                }
            }
        }
        assert_eq!(
            authorize(&sandbox, "4242424242424242", Mode::Live).await,
            Err(ConnectorError::ModeNotSupported("live"))
        );
    }

    #[tokio::test]
    async fn sync_reports_what_the_sandbox_did() {
        let sandbox = Sandbox::new();
        let payment = PaymentId::generate().unwrap();
        assert_eq!(sandbox.sync(&payment).await, Ok(RemoteStatus::NotFound));
        let card = card("4242424242424242");
        let outcome = sandbox
            .authorize(AuthorizeRequest {
                payment: &payment,
                mode: Mode::Test,
                money: money(),
                card: &card,
                authentication: None,
                customer_ip: None,
                capture_at_once: false,
            })
            .await
            .unwrap();
        let AuthorizeOutcome::Approved { reference } = outcome else {
            panic!("approved")
        };
        assert_eq!(
            sandbox.sync(&payment).await,
            Ok(RemoteStatus::Authorized {
                reference: reference.clone()
            })
        );
        sandbox.capture(&reference, money()).await.unwrap();
        assert!(matches!(
            sandbox.sync(&payment).await,
            Ok(RemoteStatus::Captured { amount: 1000, .. })
        ));
    }
}
