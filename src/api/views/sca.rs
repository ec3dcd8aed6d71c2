//! A payment's SCA record as merchants see it: the decision made when it
//! was confirmed (`sca`) and the 3-D Secure result (`three_d_secure`), with
//! whether a cryptogram came (never the cryptogram).

use serde::Serialize;

use crate::domain::sca::{ScaRecord, ThreeDsRecord};

/// The SCA decision of a confirmed payment.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScaView {
    /// `frictionless` (3-D Secure without asking for a challenge or an
    /// exemption), `challenge`, `exempt` or `out_of_scope`.
    pub decision: &'static str,
    /// For `exempt`: `low_value` or `transaction_risk_analysis`; for
    /// `out_of_scope`: `merchant_initiated`, `one_leg_out` or `outside_eea`.
    pub exemption: Option<&'static str>,
    /// Why, in a sentence.
    pub reason: String,
    /// The amount in euro cents the thresholds were compared with (other
    /// currencies converted at the configured rate, rounded up).
    pub amount_eur: Option<u64>,
}

/// A 3-D Secure result as EMV 3DS2 carries it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ThreeDSecureView {
    /// `messageVersion`: `2.1.0`, `2.2.0`, `2.3.0` or `2.3.1`.
    pub version: &'static str,
    /// `transStatus` from the last of the ARes or RReq: `Y`, `N`, `U`, `A`,
    /// `C`, `D`, `R` or `I`.
    pub trans_status: &'static str,
    /// `frictionless` or `challenge`.
    pub authentication_flow: &'static str,
    /// The Electronic Commerce Indicator, two digits, per card network.
    pub electronic_commerce_indicator: Option<String>,
    /// Whether the issuer gave an authentication value (cryptogram); the
    /// value itself is never shown.
    pub authentication_value_present: bool,
    /// The Directory Server's transaction id (`dsTransID`).
    pub transaction_id: Option<String>,
    /// Whether fraud liability moved to the issuer.
    pub liability_shift: bool,
    /// Wrong one-time codes entered in the challenge.
    pub challenge_failures: u8,
}

impl ScaView {
    pub fn from_record(record: &ScaRecord) -> Self {
        Self {
            decision: record.decision_code(),
            exemption: record.exemption_code(),
            reason: record.reason.clone(),
            amount_eur: record.amount_eur.map(|e| e.cents()),
        }
    }
}

impl ThreeDSecureView {
    pub fn from_record(record: &ScaRecord) -> Option<Self> {
        let t: &ThreeDsRecord = record.three_d_secure.as_ref()?;
        Some(Self {
            version: t.version.as_str(),
            trans_status: t.trans_status.letter(),
            authentication_flow: t.flow.as_str(),
            electronic_commerce_indicator: t.eci.clone(),
            authentication_value_present: t.authentication_value_present,
            transaction_id: t.ds_trans_id.as_ref().map(|d| d.as_str().to_owned()),
            liability_shift: t.liability_shift,
            challenge_failures: record.challenge_failures,
        })
    }
}
