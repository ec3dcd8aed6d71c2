//! Strong Customer Authentication on every confirm: after the fraud rules
//! screened the payment, the PSD2 decision (`domain::sca::decide`) from the
//! merchant's request, who initiated the payment, the issuer's and
//! acquirer's countries, the merchant's fraud rate, the fraud rules'
//! assessment and the card's low-value counters; then what the decision
//! asks: an exemption or out of scope goes to the processor as it is; for
//! the `sandbox` processor the gateway runs 3-D Secure itself
//! (`sca_sandbox`), whose status authorizes (`Y`, `A`, `I`, `U` by policy),
//! challenges (`C`, `D`) or stops the payment before authorization (`N`,
//! `R`, `U` by policy: `authentication_failed`). Other processors run their
//! own 3-D Secure (a `ChallengeRequired` answer leads to the same challenge).
//!
//! The decision, its reason and the 3-D Secure result are recorded on the
//! payment (`sca`), in its history and, summarised, in its audit entry.
//!
//! The card's counters move in the payment's own unit of work (`Change`
//! stages a [`CounterWrite`]): a low-value exemption adds one payment and
//! its amount in place, only while the card stays within the limits; a
//! transaction-risk-analysis exemption adds unconditionally; a `Y` resets
//! them. Two payments of one card confirmed at once both read the same
//! counters; if only one of them fits, the other's unit fails and it is
//! decided again on the counters as they are then (a bounded retry, before
//! any processor with external effects is called).

use std::collections::HashMap;

use crate::connectors::{Authentication, CardDetails, Connector, DeclineCode};
use crate::domain::country::CountryCode;
use crate::domain::fraud_rules::Decision;
use crate::domain::payment::PaymentStatus;
use crate::domain::sca::geography::in_sca_area_or_unknown;
use crate::domain::sca::{
    decide, AuthenticationFlow, AuthenticationOutcome, EurCents, Exemption, FraudRate, Geography, Initiation,
    LowValueCounters, OnUnavailable, RateTable, RequestThreeDSecure, ScaDecision, ScaInput, ScaOutcome, ScaRecord,
    ThreeDsRecord, TransStatus,
};
use crate::domain::tenant::Tenant;
use crate::services::actor::Actor;
use crate::services::connections::failover::FailoverRoute;
use crate::services::tokens::Token;
use crate::store::ports::ScaStore;
use crate::store::unit_of_work::UnitOfWork;

use super::super::ServiceError;
use super::change::Change;
use super::{flow, sca_sandbox, screen, PaymentPorts, PaymentRecord, Payments};

/// A fraud-rules score from which the real-time risk analysis (RTS Art.
/// 18(2)) counts a payment as abnormal, so no TRA exemption is requested.
pub const ABNORMAL_SCORE: u8 = 50;

/// How often a payment is decided again when its low-value count lost a
/// race with another payment of the same card.
const COUNTER_RETRIES: u32 = 3;

/// The operator's SCA settings (`[sca]`).
#[derive(Debug, Clone, Default)]
pub struct ScaPolicy {
    /// EUR rates of other currencies, for the thresholds.
    pub rates: RateTable,
    /// Where the acquirer is; unknown: inside the EEA (SCA applies).
    pub acquirer_country: Option<CountryCode>,
    /// The fraud rate of every merchant without one of its own; none: no
    /// transaction risk analysis.
    pub fraud_rate: Option<FraudRate>,
    /// Merchants' own fraud rates, by merchant id.
    pub merchant_fraud_rates: HashMap<String, FraudRate>,
    /// What an authentication that could not be performed (`U`) does.
    pub on_unavailable: OnUnavailable,
}

impl ScaPolicy {
    /// The fraud rate that sets the merchant's TRA thresholds.
    pub fn fraud_rate_of(&self, merchant: &str) -> Option<FraudRate> {
        self.merchant_fraud_rates.get(merchant).copied().or(self.fraud_rate)
    }
}

/// The merchant's SCA request on one confirm, parsed at the edge.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScaRequest {
    /// `payment_method_options.card.request_three_d_secure`.
    pub request_three_d_secure: RequestThreeDSecure,
    /// `off_session`: the merchant initiates the payment without the
    /// cardholder.
    pub off_session: bool,
    /// An anomaly policy's `step_up` holds for the caller's key, merchant
    /// or address: the cardholder must pass a challenge, whatever was asked.
    pub step_up: bool,
}

/// A change of the card's counters, staged with the payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum CounterWrite {
    LowValue { fingerprint: String, cents: u64 },
    Exempt { fingerprint: String, cents: u64 },
    Reset { fingerprint: String },
}

impl CounterWrite {
    pub(super) fn stage<S: ScaStore>(&self, store: &S, work: &mut UnitOfWork, tenant: &Tenant, at: i64) {
        match self {
            CounterWrite::LowValue { fingerprint, cents } => {
                store.count_low_value(work, tenant, fingerprint, *cents, at);
            }
            CounterWrite::Exempt { fingerprint, cents } => store.count_exempt(work, tenant, fingerprint, *cents, at),
            CounterWrite::Reset { fingerprint } => store.reset_sca_counters(work, tenant, fingerprint, at),
        }
    }
}

/// What is left to do after authentication.
enum Next {
    /// The payment failed or waits for a challenge: commit it as it is.
    Stopped,
    /// Authorize, with the authentication when there was one.
    Authorize(Option<Authentication>),
}

/// Whether the gateway runs 3-D Secure itself: for the sandbox processor,
/// in test mode (the sandbox takes no live payment).
fn gateway_runs_three_ds(connector: &dyn Connector, tenant: &Tenant) -> bool {
    connector.name() == "sandbox" && tenant.mode() == crate::domain::api_key::Mode::Test
}

impl<S: PaymentPorts> Payments<S> {
    /// A payment just confirmed (in `processing`): screened by the fraud
    /// rules, decided and authenticated for SCA, authorized, and committed
    /// with its counters, history and audit entry.
    pub(super) async fn screen_authenticate_authorize(
        &self,
        change: Change,
        token: &Token,
        card: &CardDetails,
        connector: &dyn Connector,
        request: ScaRequest,
        actor: &Actor,
    ) -> Result<PaymentRecord, ServiceError> {
        let mut change = change;
        if self.screen(&mut change, token).await? == screen::Screening::Stopped {
            if change.payment.status() == PaymentStatus::RequiresAction {
                self.record_forced_challenge(&mut change, token, connector)?;
            }
            return change.commit(&self.store, self.snapshots, actor).await;
        }
        let mut retries = 0;
        loop {
            let mut attempt = change.fork();
            let next = self.authenticate(&mut attempt, token, card, connector, request).await?;
            let low_value = matches!(attempt.sca_counters, Some(CounterWrite::LowValue { .. }));
            let result = match next {
                Next::Stopped => attempt.commit(&self.store, self.snapshots, actor).await,
                Next::Authorize(authentication) if connector.has_external_effects() => {
                    match self.write_ahead(attempt, actor).await {
                        Ok(mut written) => {
                            // A payment the customer authenticated with this processor never
                            // fails over to another one.
                            let failover = self.failover(actor);
                            let route = authentication.is_none().then_some(&failover as &dyn FailoverRoute);
                            flow::authorize(
                                &self.policy,
                                connector,
                                &mut written,
                                card,
                                authentication.as_ref(),
                                route,
                            )
                            .await;
                            return written.commit(&self.store, self.snapshots, actor).await;
                        }
                        Err(e) => Err(e),
                    }
                }
                Next::Authorize(authentication) => {
                    let failover = self.failover(actor);
                    let route = authentication.is_none().then_some(&failover as &dyn FailoverRoute);
                    flow::authorize(
                        &self.policy,
                        connector,
                        &mut attempt,
                        card,
                        authentication.as_ref(),
                        route,
                    )
                    .await;
                    attempt.commit(&self.store, self.snapshots, actor).await
                }
            };
            match result {
                Err(ServiceError::Conflict {
                    code: "payment_conflict",
                    ..
                }) if low_value && retries < COUNTER_RETRIES => retries += 1,
                other => return other,
            }
        }
    }

    /// The fraud rules sent the payment to a challenge: SCA `challenge`.
    fn record_forced_challenge(
        &self,
        change: &mut Change,
        token: &Token,
        connector: &dyn Connector,
    ) -> Result<(), ServiceError> {
        let reason = "the fraud rules decided to challenge the cardholder";
        change.attempt("sca", ScaOutcome::Challenge.code(), Some(reason.to_owned()));
        let mut record = ScaRecord::decided(ScaDecision {
            outcome: ScaOutcome::Challenge,
            reason: reason.to_owned(),
            amount_eur: self.policy.sca.rates.to_eur(change.payment.money()).ok(),
        });
        if gateway_runs_three_ds(connector, &change.payment.tenant) {
            let result = sca_sandbox::result(token.brand, TransStatus::ChallengeRequired)?;
            record.three_d_secure = Some(ThreeDsRecord::of(&result, AuthenticationFlow::Challenge));
        }
        change.payment.sca = Some(record);
        Ok(())
    }

    /// Decides SCA for the payment and runs what the decision asks, up to
    /// the authorization.
    async fn authenticate(
        &self,
        change: &mut Change,
        token: &Token,
        card: &CardDetails,
        connector: &dyn Connector,
        request: ScaRequest,
    ) -> Result<Next, ServiceError> {
        let policy = &self.policy.sca;
        let tenant = change.payment.tenant.clone();
        let stored = self.store.get_sca_counters(&tenant, &token.fingerprint).await?;
        let counters = stored.map_or_else(LowValueCounters::default, |row| {
            LowValueCounters::new(
                u32::try_from(row.consecutive).unwrap_or(u32::MAX),
                EurCents::new(u64::try_from(row.cumulative_cents).unwrap_or(u64::MAX)),
            )
        });
        let digits = card.number.expose_digits();
        let geography = Geography {
            issuer_in_eea: in_sca_area_or_unknown(sca_sandbox::issuer_country(digits)),
            acquirer_in_eea: in_sca_area_or_unknown(policy.acquirer_country),
        };
        let initiation = if request.off_session {
            Initiation::Merchant {
                after_authenticated_first: stored.is_some_and(|row| row.authenticated_at.is_some()),
            }
        } else {
            Initiation::Customer
        };
        let risk_abnormal = change
            .payment
            .risk
            .as_ref()
            .is_some_and(|r| r.decision == Decision::Review || r.score >= ABNORMAL_SCORE);
        let decision = if request.step_up {
            ScaDecision {
                outcome: ScaOutcome::Challenge,
                reason: "an anomaly policy requires step-up authentication for this key, merchant or address".into(),
                amount_eur: policy.rates.to_eur(change.payment.money()).ok(),
            }
        } else {
            decide(&ScaInput {
                amount: change.payment.money(),
                rates: &policy.rates,
                initiation,
                geography,
                request: request.request_three_d_secure,
                fraud_rate: policy.fraud_rate_of(tenant.merchant_str()),
                risk_abnormal,
                counters,
            })
        };
        change.attempt("sca", decision.outcome.code(), Some(decision.reason.clone()));
        let outcome = decision.outcome;
        let cents = decision.amount_eur.map_or(0, EurCents::cents);
        change.payment.sca = Some(ScaRecord::decided(decision));
        let fingerprint = token.fingerprint.clone();
        match outcome {
            ScaOutcome::Exempt(Exemption::LowValue) => {
                change.sca_counters = Some(CounterWrite::LowValue { fingerprint, cents });
                return Ok(Next::Authorize(None));
            }
            ScaOutcome::Exempt(Exemption::TransactionRiskAnalysis { .. }) => {
                change.sca_counters = Some(CounterWrite::Exempt { fingerprint, cents });
                return Ok(Next::Authorize(None));
            }
            ScaOutcome::OutOfScope(_) => return Ok(Next::Authorize(None)),
            ScaOutcome::Frictionless | ScaOutcome::Challenge => {}
        }
        if !gateway_runs_three_ds(connector, &tenant) {
            return Ok(Next::Authorize(None));
        }
        let status = if outcome == ScaOutcome::Challenge {
            TransStatus::ChallengeRequired
        } else {
            sca_sandbox::ares_status(digits)
        };
        self.apply_three_ds(change, token, status, AuthenticationFlow::Frictionless)
    }

    /// Records the 3-D Secure result with `status` and does what it means.
    fn apply_three_ds(
        &self,
        change: &mut Change,
        token: &Token,
        status: TransStatus,
        flow_kind: AuthenticationFlow,
    ) -> Result<Next, ServiceError> {
        let result = sca_sandbox::result(token.brand, status)?;
        let record = ThreeDsRecord::of(&result, flow_kind);
        change.attempt(
            "authenticate",
            status.letter(),
            Some(format!(
                "3-D Secure {} {} trans_status {}, liability shift {}",
                result.version.as_str(),
                flow_kind.as_str(),
                status.letter(),
                if record.liability_shift { "yes" } else { "no" }
            )),
        );
        let sca = change.payment.sca.get_or_insert_with(|| {
            ScaRecord::decided(ScaDecision {
                outcome: ScaOutcome::Challenge,
                reason: "the issuer asked for a challenge".into(),
                amount_eur: None,
            })
        });
        sca.three_d_secure = Some(record);
        let authentication = || Authentication {
            reference: result
                .ds_trans_id
                .as_ref()
                .map(|d| d.as_str().to_owned())
                .unwrap_or_default(),
        };
        Ok(match result.outcome(self.policy.sca.on_unavailable) {
            AuthenticationOutcome::Authenticated => {
                change.sca_counters = Some(CounterWrite::Reset {
                    fingerprint: token.fingerprint.clone(),
                });
                Next::Authorize(Some(authentication()))
            }
            AuthenticationOutcome::AuthorizeAttempted => Next::Authorize(Some(authentication())),
            AuthenticationOutcome::AuthorizeUnauthenticated => Next::Authorize(None),
            AuthenticationOutcome::Challenge { .. } => {
                flow::challenge(&self.policy, change, None);
                Next::Stopped
            }
            AuthenticationOutcome::Fail => {
                flow::fail(change, "authenticate", DeclineCode::AuthenticationFailed);
                Next::Stopped
            }
        })
    }

    /// The challenge was answered: records the final status (`Y` after a
    /// correct code, `N` after a failure) and does what it means; `Y` resets
    /// the card's counters with the payment.
    pub(super) fn finish_challenge(
        &self,
        change: &mut Change,
        token: &Token,
        status: TransStatus,
    ) -> Result<Option<Authentication>, ServiceError> {
        Ok(
            match self.apply_three_ds(change, token, status, AuthenticationFlow::Challenge)? {
                Next::Authorize(authentication) => authentication,
                Next::Stopped => None,
            },
        )
    }
}
