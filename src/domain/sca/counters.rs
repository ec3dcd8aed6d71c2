//! The low-value counters of one card (by fingerprint) since its last SCA:
//! how many payer-initiated payments went through without SCA, and their
//! total in euro cents (PSD2 RTS Art. 16).
//!
//! Invariants: the counters only move through [`LowValueCounters::apply`]
//! (a payment without SCA) and [`LowValueCounters::reset_on_sca`] (a payment
//! with SCA); both saturate, never wrap. [`LowValueCounters::admits`] holds
//! a payment to **both** limits, counting the payment itself: the issuer
//! applies one of the two counters and the gateway cannot know which, so an
//! exemption requested here is one that either issuer counter allows.

use super::exchange::EurCents;

/// The most payments a low-value exemption may cover since the last SCA,
/// this one included: the 5th is exempt, the 6th needs SCA.
pub const LOW_VALUE_MAX_CONSECUTIVE: u32 = 5;
/// The most a low-value run may total since the last SCA, this payment
/// included.
pub const LOW_VALUE_MAX_CUMULATIVE: EurCents = EurCents::euros(100);
/// The largest single low-value payment.
pub const LOW_VALUE_MAX_AMOUNT: EurCents = EurCents::euros(30);

/// Payments of a card without SCA since its last SCA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LowValueCounters {
    consecutive: u32,
    cumulative: EurCents,
}

impl LowValueCounters {
    /// Counters as stored: `consecutive` payments totalling `cumulative`.
    pub fn new(consecutive: u32, cumulative: EurCents) -> Self {
        Self {
            consecutive,
            cumulative,
        }
    }

    pub fn consecutive(self) -> u32 {
        self.consecutive
    }

    pub fn cumulative(self) -> EurCents {
        self.cumulative
    }

    /// Whether a payment of `amount` may be exempted as low value: at most
    /// EUR 30, and with it at most 5 payments and EUR 100 since the last SCA.
    pub fn admits(self, amount: EurCents) -> bool {
        amount <= LOW_VALUE_MAX_AMOUNT
            && self.consecutive.saturating_add(1) <= LOW_VALUE_MAX_CONSECUTIVE
            && self.cumulative.saturating_add(amount) <= LOW_VALUE_MAX_CUMULATIVE
    }

    /// The counters after a payer-initiated payment of `amount` that went
    /// through without SCA (whichever exemption applied: the issuer's
    /// counter counts every one of them).
    #[must_use]
    pub fn apply(self, amount: EurCents) -> Self {
        Self {
            consecutive: self.consecutive.saturating_add(1),
            cumulative: self.cumulative.saturating_add(amount),
        }
    }

    /// The counters after a payment authenticated with SCA: zero.
    #[must_use]
    pub fn reset_on_sca(self) -> Self {
        Self::default()
    }
}
