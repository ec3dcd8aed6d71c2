//! Tests of the SCA rules, by concern: `three_ds` (every status, ECI per
//! network, the secret cryptogram, liability shift), `exchange` (rates and
//! rounding), `exemptions` (every boundary of every exemption and the
//! counters), `scope` (request options and out-of-scope cases), `props`
//! (generated amounts, currencies and counters).

mod exchange;
mod exemptions;
mod props;
mod scope;
mod three_ds;

use super::*;
use crate::domain::money::{Currency, MinorUnits, Money};

fn money(minor: i64, currency: &str) -> Money {
    Money {
        amount: MinorUnits::parse(minor, i64::MAX).unwrap(),
        currency: Currency::parse(currency).unwrap(),
    }
}

fn eur(minor: i64) -> Money {
    money(minor, "eur")
}

/// USD at 0.92, GBP at 1.17, JPY at 0.0062 euros per unit.
fn rates() -> RateTable {
    RateTable::new()
        .with(Currency::parse("usd").unwrap(), EurRate::parse("0.92").unwrap())
        .with(Currency::parse("gbp").unwrap(), EurRate::parse("1.17").unwrap())
        .with(Currency::parse("jpy").unwrap(), EurRate::parse("0.0062").unwrap())
}

/// A customer-initiated payment inside the EEA, `automatic`, no fraud rate,
/// fresh counters.
fn input(amount: Money, rates: &RateTable) -> ScaInput<'_> {
    ScaInput {
        amount,
        rates,
        initiation: Initiation::Customer,
        geography: Geography {
            issuer_in_eea: true,
            acquirer_in_eea: true,
        },
        request: RequestThreeDSecure::Automatic,
        fraud_rate: None,
        risk_abnormal: false,
        counters: LowValueCounters::default(),
    }
}

fn outcome(input: &ScaInput<'_>) -> ScaOutcome {
    decide(input).outcome
}

fn tra(euros: u64) -> ScaOutcome {
    ScaOutcome::Exempt(Exemption::TransactionRiskAnalysis {
        threshold: EurCents::euros(euros),
    })
}

const LOW_VALUE: ScaOutcome = ScaOutcome::Exempt(Exemption::LowValue);
