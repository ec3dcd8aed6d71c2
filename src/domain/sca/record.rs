//! What a payment records of SCA: the decision made when it was confirmed
//! (with its reason), and the 3-D Secure result as EMV 3DS2 carries it once
//! authentication ran, plus the state of a running challenge (how many wrong
//! codes were entered).
//!
//! Invariant: a record holds nothing secret. Of the authentication value
//! (the cryptogram) it keeps only whether one came; the value itself goes
//! from the 3-D Secure exchange into the authorization and nowhere else.

use super::decision::{Exemption, OutOfScope, ScaDecision, ScaOutcome};
use super::exchange::EurCents;
use super::three_ds::{DsTransId, MessageVersion, ThreeDsResult, TransStatus};

/// How 3-D Secure ran: without the cardholder (the ARes was final) or with a
/// challenge (the final status came after it, in the RReq).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthenticationFlow {
    Frictionless,
    Challenge,
}

impl AuthenticationFlow {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Frictionless => "frictionless",
            Self::Challenge => "challenge",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [Self::Frictionless, Self::Challenge]
            .into_iter()
            .find(|f| f.as_str() == text)
    }
}

/// A 3-D Secure result as the payment shows and stores it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreeDsRecord {
    pub version: MessageVersion,
    pub trans_status: TransStatus,
    /// The two digits, read for the card's network when the result came.
    pub eci: Option<String>,
    /// Whether a cryptogram came with the result; never the value.
    pub authentication_value_present: bool,
    pub ds_trans_id: Option<DsTransId>,
    pub liability_shift: bool,
    pub flow: AuthenticationFlow,
}

impl ThreeDsRecord {
    /// What is kept of `result`.
    pub fn of(result: &ThreeDsResult, flow: AuthenticationFlow) -> Self {
        Self {
            version: result.version,
            trans_status: result.status,
            eci: result.eci.map(|e| e.code()),
            authentication_value_present: result.authentication_value_present(),
            ds_trans_id: result.ds_trans_id.clone(),
            liability_shift: result.liability_shift(),
            flow,
        }
    }
}

/// The SCA record of a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaRecord {
    pub outcome: ScaOutcome,
    pub reason: String,
    /// The amount in EUR the thresholds were compared with, when converted.
    pub amount_eur: Option<EurCents>,
    /// The 3-D Secure result, once authentication ran (or is running: a
    /// `C` while the challenge waits).
    pub three_d_secure: Option<ThreeDsRecord>,
    /// Wrong one-time codes entered in the running challenge.
    pub challenge_failures: u8,
}

impl ScaRecord {
    /// The record of a fresh decision.
    pub fn decided(decision: ScaDecision) -> Self {
        Self {
            outcome: decision.outcome,
            reason: decision.reason,
            amount_eur: decision.amount_eur,
            three_d_secure: None,
            challenge_failures: 0,
        }
    }

    /// `frictionless`, `challenge`, `exempt` or `out_of_scope`.
    pub fn decision_code(&self) -> &'static str {
        self.outcome.code()
    }

    /// Which exemption was requested (`low_value`,
    /// `transaction_risk_analysis`) or why SCA is out of scope
    /// (`merchant_initiated`, `one_leg_out`, `outside_eea`).
    pub fn exemption_code(&self) -> Option<&'static str> {
        match self.outcome {
            ScaOutcome::Exempt(e) => Some(e.code()),
            ScaOutcome::OutOfScope(o) => Some(o.code()),
            ScaOutcome::Frictionless | ScaOutcome::Challenge => None,
        }
    }

    /// What the audit trail keeps: codes and the 3-D Secure status letter
    /// and liability shift (nothing of the card or the customer).
    pub fn summary(&self) -> String {
        let mut text = format!("sca {}", self.decision_code());
        if let Some(code) = self.exemption_code() {
            text.push(' ');
            text.push_str(code);
        }
        if let Some(tds) = &self.three_d_secure {
            text.push_str(&format!(
                " 3ds {} {} eci {} liability_shift {}",
                tds.version.as_str(),
                tds.trans_status.letter(),
                tds.eci.as_deref().unwrap_or("-"),
                tds.liability_shift
            ));
        }
        text
    }
}

/// An outcome from its stored codes: the decision, the exemption or scope
/// code, and the TRA threshold in euro cents.
pub fn outcome_from_codes(decision: &str, exemption: Option<&str>, threshold: Option<u64>) -> Option<ScaOutcome> {
    match (decision, exemption) {
        ("frictionless", None) => Some(ScaOutcome::Frictionless),
        ("challenge", None) => Some(ScaOutcome::Challenge),
        ("exempt", Some("low_value")) => Some(ScaOutcome::Exempt(Exemption::LowValue)),
        ("exempt", Some("transaction_risk_analysis")) => Some(ScaOutcome::Exempt(Exemption::TransactionRiskAnalysis {
            threshold: EurCents::new(threshold?),
        })),
        ("out_of_scope", Some(code)) => [
            OutOfScope::MerchantInitiated,
            OutOfScope::OneLegOut,
            OutOfScope::OutsideEea,
        ]
        .into_iter()
        .find(|o| o.code() == code)
        .map(ScaOutcome::OutOfScope),
        _ => None,
    }
}

/// The TRA threshold of an outcome, in euro cents.
pub fn tra_threshold(outcome: ScaOutcome) -> Option<u64> {
    match outcome {
        ScaOutcome::Exempt(Exemption::TransactionRiskAnalysis { threshold }) => Some(threshold.cents()),
        _ => None,
    }
}
