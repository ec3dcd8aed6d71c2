//! Conversion of an amount to euro cents at a configured rate table, for the
//! PSD2 thresholds (which the RTS gives in EUR).
//!
//! Invariants: no float ever holds money or a rate. A rate is a decimal with
//! at most [`RATE_DECIMALS`] digits after the point, held as an integer of
//! billionths of a euro per one major unit of the currency; conversion is
//! `minor × rate / 10^(exponent + 9 − 2)` in `u128`, **rounded up** to the
//! next euro cent, so a converted amount is never below its true value and
//! a threshold test on it never grants an exemption the exact value would
//! not. EUR always converts at exactly 1, whatever the table says.

use std::collections::BTreeMap;
use std::fmt;

use crate::domain::money::{Currency, Money};

/// Digits a rate may carry after the decimal point.
pub const RATE_DECIMALS: u32 = 9;
const RATE_SCALE: u128 = 1_000_000_000;

/// An amount in euro cents, as the thresholds compare it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct EurCents(u64);

impl EurCents {
    pub const fn new(cents: u64) -> Self {
        Self(cents)
    }

    /// Whole euros, for thresholds: `EurCents::euros(30)` is EUR 30.00.
    pub const fn euros(euros: u64) -> Self {
        Self(euros.saturating_mul(100))
    }

    pub fn cents(self) -> u64 {
        self.0
    }

    pub fn saturating_add(self, other: Self) -> Self {
        Self(self.0.saturating_add(other.0))
    }
}

impl fmt::Display for EurCents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EUR {}.{:02}", self.0 / 100, self.0 % 100)
    }
}

/// Euros per one major unit of a currency, as a fixed-point decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EurRate {
    /// Billionths of a euro per major unit; never zero.
    nanos: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a rate is a positive decimal such as 0.92 or 161.5, at most 9 digits after the point")]
pub struct InvalidRate;

impl EurRate {
    /// Parses `digits[.digits]`: positive, at most [`RATE_DECIMALS`] digits
    /// after the point, no sign, exponent or spaces.
    pub fn parse(text: &str) -> Result<Self, InvalidRate> {
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        let fraction_len = u32::try_from(fraction.len()).map_err(|_| InvalidRate)?;
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction_len > RATE_DECIMALS {
            return Err(InvalidRate);
        }
        if text.contains('.') && fraction.is_empty() {
            return Err(InvalidRate);
        }
        let whole: u64 = whole.parse().map_err(|_| InvalidRate)?;
        let fraction_value: u64 = if fraction.is_empty() {
            0
        } else {
            fraction.parse().map_err(|_| InvalidRate)?
        };
        let nanos = whole
            .checked_mul(1_000_000_000)
            .and_then(|w| w.checked_add(fraction_value.checked_mul(10u64.pow(RATE_DECIMALS - fraction_len))?))
            .ok_or(InvalidRate)?;
        Self::from_nanos(nanos)
    }

    /// A rate of `nanos` billionths of a euro per major unit.
    pub fn from_nanos(nanos: u64) -> Result<Self, InvalidRate> {
        if nanos == 0 {
            Err(InvalidRate)
        } else {
            Ok(Self { nanos })
        }
    }

    pub fn nanos(self) -> u64 {
        self.nanos
    }
}

/// No rate for a currency: its amounts cannot be compared to a threshold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("no EUR rate is configured for {0}")]
pub struct NoRate(pub Currency);

/// The configured rates to EUR, one per currency.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RateTable {
    rates: BTreeMap<Currency, EurRate>,
}

impl RateTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets (or replaces) the rate of `currency`. A rate for EUR is kept but
    /// never used: EUR converts at exactly 1.
    pub fn with(mut self, currency: Currency, rate: EurRate) -> Self {
        self.rates.insert(currency, rate);
        self
    }

    pub fn rate(&self, currency: Currency) -> Option<EurRate> {
        self.rates.get(&currency).copied()
    }

    /// `money` in euro cents, rounded up (see the module documentation).
    pub fn to_eur(&self, money: Money) -> Result<EurCents, NoRate> {
        let minor = u128::from(money.amount.get().unsigned_abs());
        if money.currency.code() == "EUR" {
            return Ok(EurCents(u64::try_from(minor).unwrap_or(u64::MAX)));
        }
        let rate = self.rate(money.currency).ok_or(NoRate(money.currency))?;
        // cents = minor / 10^exp × nanos / 10^9 × 100
        let numerator = minor.saturating_mul(u128::from(rate.nanos)).saturating_mul(100);
        let denominator = 10u128
            .pow(u32::from(money.currency.exponent()))
            .saturating_mul(RATE_SCALE);
        let cents = numerator.div_ceil(denominator);
        Ok(EurCents(u64::try_from(cents).unwrap_or(u64::MAX)))
    }
}
