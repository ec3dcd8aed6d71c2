//! The SCA decision for one payment: [`decide`], a pure function of the
//! payment's amount, scope, the merchant's request and fraud rate, and the
//! card's low-value counters, giving [`ScaDecision`] with its reason.
//!
//! The order of the checks, each stopping at the first that applies:
//! 1. `request_three_d_secure = challenge`: [`ScaOutcome::Challenge`],
//!    whatever the scope: the merchant asked for the cardholder to be
//!    authenticated in front of it.
//! 2. Out of scope: a merchant-initiated payment following an authenticated
//!    first one; then both legs outside the EEA; then one leg outside. Under
//!    `any` the last two run 3-D Secure anyway ([`ScaOutcome::Frictionless`]);
//!    a merchant-initiated payment has no cardholder present, so it stays
//!    out of scope under `any` too.
//! 3. `any`: [`ScaOutcome::Frictionless`]: 3-D Secure runs and no exemption
//!    is requested, so the issuer decides whether to challenge.
//! 4. `automatic`: the amount in EUR (no rate: no exemption), then low value
//!    if the counters admit it, then transaction risk analysis if the
//!    merchant's fraud rate sets a threshold the amount is within and the
//!    real-time risk analysis found nothing abnormal; else frictionless.
//!    Low value is tried first because it depends on no fraud rate; both
//!    count on the card's counters alike (the issuer counts every payment
//!    without SCA).
//!
//! A merchant-initiated payment *without* an authenticated first one is not
//! out of scope (the RTS leaves out only series whose mandate was
//! authenticated) and is decided like a customer-initiated one.

use crate::domain::money::Money;

use super::counters::{LowValueCounters, LOW_VALUE_MAX_AMOUNT};
use super::exchange::{EurCents, RateTable};

/// The merchant's per-payment request
/// (`payment_method_options.card.request_three_d_secure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum RequestThreeDSecure {
    /// Apply exemptions and scope as the rules allow.
    #[default]
    Automatic,
    /// Run 3-D Secure whenever a cardholder is there to run it with: no
    /// exemption is requested, and one-leg-out and outside-EEA payments are
    /// authenticated too; the issuer may still answer frictionless.
    Any,
    /// Always ask the issuer for a challenge (indicator 04, mandate).
    Challenge,
}

/// Who initiated the payment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Initiation {
    Customer,
    Merchant {
        /// Whether the first, customer-initiated payment of the series
        /// (the mandate) was authenticated with SCA.
        after_authenticated_first: bool,
    },
}

/// Where the two payment service providers are.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Geography {
    pub issuer_in_eea: bool,
    pub acquirer_in_eea: bool,
}

/// The merchant's fraud rate for remote card payments, in parts per million
/// (0.13 % is 1,300).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FraudRate(u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a fraud rate is 0 to 1,000,000 parts per million")]
pub struct InvalidFraudRate;

impl FraudRate {
    pub fn from_ppm(ppm: u32) -> Result<Self, InvalidFraudRate> {
        if ppm <= 1_000_000 {
            Ok(Self(ppm))
        } else {
            Err(InvalidFraudRate)
        }
    }

    pub fn ppm(self) -> u32 {
        self.0
    }

    /// The highest amount transaction risk analysis may exempt at this rate
    /// (RTS Annex): ≤ 0.01 % → EUR 500, ≤ 0.06 % → EUR 250, ≤ 0.13 % →
    /// EUR 100; above 0.13 %, none.
    pub fn tra_threshold(self) -> Option<EurCents> {
        match self.0 {
            0..=100 => Some(EurCents::euros(500)),
            101..=600 => Some(EurCents::euros(250)),
            601..=1_300 => Some(EurCents::euros(100)),
            _ => None,
        }
    }
}

/// What [`decide`] needs to know about one payment.
#[derive(Debug, Clone, Copy)]
pub struct ScaInput<'a> {
    pub amount: Money,
    pub rates: &'a RateTable,
    pub initiation: Initiation,
    pub geography: Geography,
    pub request: RequestThreeDSecure,
    /// `None` when the merchant has configured no rate: no TRA.
    pub fraud_rate: Option<FraudRate>,
    /// Whether the real-time risk analysis (RTS Art. 18(2): the fraud
    /// engine) found anything abnormal; if so, no TRA.
    pub risk_abnormal: bool,
    /// The card's counters since its last SCA.
    pub counters: LowValueCounters,
}

/// An RTS exemption the gateway requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Exemption {
    /// Art. 16.
    LowValue,
    /// Art. 18, with the threshold the fraud rate allowed.
    TransactionRiskAnalysis { threshold: EurCents },
}

impl Exemption {
    pub fn code(self) -> &'static str {
        match self {
            Exemption::LowValue => "low_value",
            Exemption::TransactionRiskAnalysis { .. } => "transaction_risk_analysis",
        }
    }
}

/// Why a payment is outside SCA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OutOfScope {
    MerchantInitiated,
    OneLegOut,
    OutsideEea,
}

impl OutOfScope {
    pub fn code(self) -> &'static str {
        match self {
            OutOfScope::MerchantInitiated => "merchant_initiated",
            OutOfScope::OneLegOut => "one_leg_out",
            OutOfScope::OutsideEea => "outside_eea",
        }
    }
}

/// The decision itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ScaOutcome {
    /// Run 3-D Secure without asking for a challenge or an exemption.
    Frictionless,
    /// Run 3-D Secure asking for a challenge.
    Challenge,
    /// Request this exemption.
    Exempt(Exemption),
    /// SCA does not apply.
    OutOfScope(OutOfScope),
}

impl ScaOutcome {
    /// How the payment records it: `frictionless`, `challenge`, `exempt`,
    /// `out_of_scope`.
    pub fn code(self) -> &'static str {
        match self {
            ScaOutcome::Frictionless => "frictionless",
            ScaOutcome::Challenge => "challenge",
            ScaOutcome::Exempt(_) => "exempt",
            ScaOutcome::OutOfScope(_) => "out_of_scope",
        }
    }
}

/// A decision with its reason, for the payment and the audit trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScaDecision {
    pub outcome: ScaOutcome,
    /// A sentence a merchant or a risk analyst can read.
    pub reason: String,
    /// The amount in EUR, when it was converted.
    pub amount_eur: Option<EurCents>,
}

impl ScaDecision {
    fn new(outcome: ScaOutcome, reason: impl Into<String>, amount_eur: Option<EurCents>) -> Self {
        Self {
            outcome,
            reason: reason.into(),
            amount_eur,
        }
    }

    /// The card's counters once this payment goes through without SCA: an
    /// exempted payment counts; others leave them as they are (a payment
    /// that is authenticated resets them with
    /// [`LowValueCounters::reset_on_sca`] when its result is known).
    pub fn counters_after(&self, counters: LowValueCounters) -> LowValueCounters {
        match (self.outcome, self.amount_eur) {
            (ScaOutcome::Exempt(_), Some(eur)) => counters.apply(eur),
            _ => counters,
        }
    }
}

/// Decides SCA for one payment; see the module documentation for the order.
pub fn decide(input: &ScaInput<'_>) -> ScaDecision {
    use ScaOutcome::{Challenge, Exempt, Frictionless, OutOfScope as Out};
    if input.request == RequestThreeDSecure::Challenge {
        return ScaDecision::new(Challenge, "the merchant requested a challenge", None);
    }
    if input.initiation
        == (Initiation::Merchant {
            after_authenticated_first: true,
        })
    {
        return ScaDecision::new(
            Out(OutOfScope::MerchantInitiated),
            "merchant-initiated after an authenticated first payment: SCA does not apply",
            None,
        );
    }
    let legs_out = [input.geography.issuer_in_eea, input.geography.acquirer_in_eea]
        .iter()
        .filter(|in_eea| !**in_eea)
        .count();
    let any = input.request == RequestThreeDSecure::Any;
    let scope = match legs_out {
        0 => None,
        1 => Some((OutOfScope::OneLegOut, "the issuer or the acquirer is outside the EEA")),
        _ => Some((
            OutOfScope::OutsideEea,
            "the issuer and the acquirer are outside the EEA",
        )),
    };
    if let Some((why, text)) = scope {
        return if any {
            ScaDecision::new(
                Frictionless,
                format!("{text}, but the merchant requested 3-D Secure whenever possible"),
                None,
            )
        } else {
            ScaDecision::new(Out(why), format!("{text}: SCA does not apply"), None)
        };
    }
    if any {
        return ScaDecision::new(
            Frictionless,
            "the merchant requested 3-D Secure whenever possible: no exemption requested",
            None,
        );
    }
    let eur = match input.rates.to_eur(input.amount) {
        Ok(eur) => eur,
        Err(no_rate) => {
            return ScaDecision::new(Frictionless, format!("{no_rate}: no exemption can be requested"), None);
        }
    };
    if input.counters.admits(eur) {
        return ScaDecision::new(
            Exempt(Exemption::LowValue),
            format!(
                "low value: {eur} is at most EUR 30, and payment {} since the card's last SCA, {} in total",
                input.counters.consecutive().saturating_add(1),
                input.counters.cumulative().saturating_add(eur)
            ),
            Some(eur),
        );
    }
    let tra = input
        .fraud_rate
        .and_then(|rate| rate.tra_threshold().map(|t| (rate, t)));
    match tra {
        Some((rate, threshold)) if eur <= threshold && !input.risk_abnormal => ScaDecision::new(
            Exempt(Exemption::TransactionRiskAnalysis { threshold }),
            format!(
                "transaction risk analysis: {eur} is within the {threshold} threshold of a {} ppm fraud rate",
                rate.ppm()
            ),
            Some(eur),
        ),
        _ => ScaDecision::new(
            Frictionless,
            format!(
                "{eur}: no exemption applies{}{}",
                why_not_low_value(eur),
                why_not_tra(input, eur)
            ),
            Some(eur),
        ),
    }
}

/// Why low value did not apply, when the amount alone would have allowed it.
fn why_not_low_value(eur: EurCents) -> &'static str {
    if eur <= LOW_VALUE_MAX_AMOUNT {
        " (the card's low-value counters since its last SCA are used up)"
    } else {
        ""
    }
}

/// Why transaction risk analysis did not apply, for the reason text.
fn why_not_tra(input: &ScaInput<'_>, eur: EurCents) -> String {
    match input.fraud_rate {
        None => " (no fraud rate configured for transaction risk analysis)".to_owned(),
        Some(rate) => match rate.tra_threshold() {
            None => format!(" (a {} ppm fraud rate allows no transaction risk analysis)", rate.ppm()),
            Some(threshold) if eur > threshold => format!(" (above the {threshold} risk analysis threshold)"),
            Some(_) => " (the risk analysis found the payment abnormal)".to_owned(),
        },
    }
}

impl FraudRate {
    /// Parses a percentage as configured, `0.13%` (at most four digits
    /// after the point, the `%` required): 0.13 % is 1,300 ppm.
    pub fn parse_percent(text: &str) -> Result<Self, InvalidFraudRate> {
        let number = text.trim().strip_suffix('%').ok_or(InvalidFraudRate)?;
        let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (number.contains('.') && !digits(fraction)) || fraction.len() > 4 {
            return Err(InvalidFraudRate);
        }
        let whole: u32 = whole.parse().map_err(|_| InvalidFraudRate)?;
        let padded = format!("{fraction:0<4}");
        let fraction: u32 = padded.parse().map_err(|_| InvalidFraudRate)?;
        let ppm = whole
            .checked_mul(10_000)
            .and_then(|w| w.checked_add(fraction))
            .ok_or(InvalidFraudRate)?;
        Self::from_ppm(ppm)
    }
}

#[cfg(test)]
mod percent_tests {
    use super::FraudRate;

    #[test]
    fn percentages_parse_to_parts_per_million() {
        assert_eq!(FraudRate::parse_percent("0.13%").unwrap().ppm(), 1_300);
        assert_eq!(FraudRate::parse_percent("0.01%").unwrap().ppm(), 100);
        assert_eq!(FraudRate::parse_percent("1%").unwrap().ppm(), 10_000);
        assert_eq!(FraudRate::parse_percent("0.0001%").unwrap().ppm(), 1);
        assert_eq!(FraudRate::parse_percent("100%").unwrap().ppm(), 1_000_000);
        for bad in ["0.13", "%", ".1%", "1.%", "0.00001%", "-1%", "101%", "1e2%"] {
            assert!(FraudRate::parse_percent(bad).is_err(), "{bad}");
        }
    }
}
