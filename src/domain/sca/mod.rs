//! Strong Customer Authentication: the EMV 3-D Secure 2 results a payment
//! carries, and the PSD2 decision of whether and how to authenticate it.
//! Pure rules, no I/O: the confirm path supplies the facts and records the
//! decision and its reason on the payment.
//!
//! # The rules and their sources
//! Commission Delegated Regulation (EU) 2018/389, the PSD2 "RTS" (EUR-Lex
//! CELEX 32018R0389), as summarised in `vendor-specs/3ds-sca.md`:
//! - **Scope.** SCA applies to electronic payments initiated by the payer
//!   where both payment service providers are in the EEA. A
//!   merchant-initiated payment whose first (mandate) payment was
//!   authenticated is out of scope, as are one-leg-out payments (the issuer
//!   or the acquirer outside the EEA) and payments with both outside.
//! - **Low value (Art. 16).** A remote payment of at most EUR 30, while the
//!   card's payments without SCA since its last SCA stay within 5
//!   consecutive or EUR 100 cumulative. The issuer applies one of the two
//!   counters; we hold a payment to both, counting the payment itself, so
//!   the 5th such payment is exempt and the 6th is not ([`counters`]).
//! - **Transaction risk analysis (Art. 18 and Annex).** Real-time risk
//!   analysis finds nothing abnormal, and the PSP's fraud rate for remote
//!   card payments (Art. 19) sets the threshold: ≤ 0.13 % up to EUR 100,
//!   ≤ 0.06 % up to EUR 250, ≤ 0.01 % up to EUR 500 (EBA Q&A 2018_4043).
//! - Amounts in other currencies convert to EUR at a configured rate table,
//!   in integers, rounded up ([`exchange`]).
//!
//! The merchant may override per payment (`request_three_d_secure`):
//! `automatic` applies the above, `any` runs 3-D Secure whenever a
//! cardholder is present (no exemption requested, out-of-EEA legs
//! authenticated anyway), `challenge` always asks for a challenge. The exact
//! order is in [`decision`].
//!
//! # 3-D Secure results
//! [`three_ds`]: `transStatus` Y authorizes as authenticated, A authorizes
//! with the attempts result, C/D run the challenge, N/R stop the payment
//! before authorization (`authentication_failed`), U follows the merchant's
//! [`OnUnavailable`] policy, I authorizes without liability shift. The ECI is
//! read per network (Visa-like 05/06/07, Mastercard 02/01/00, plus 06
//! exemption and 07 authenticated MIT); liability shifts only when status,
//! ECI and a present cryptogram agree. The cryptogram is a secret: only
//! whether it is present is ever shown.
//!
//! # Layout
//! - `three_ds`: message version, status, ECI, cryptogram, DS transaction
//!   id, outcome and liability shift.
//! - `exchange`: [`RateTable`] and conversion to [`EurCents`].
//! - `counters`: [`LowValueCounters`] of a card since its last SCA.
//! - `decision`: [`decide`] and its inputs and outcome.
//! - `geography`: the countries where SCA applies (EEA and UK).
//! - `record`: what a payment records: [`ScaRecord`] (decision, reason,
//!   3-D Secure result as [`ThreeDsRecord`], challenge attempts).

pub mod counters;
pub mod decision;
pub mod exchange;
pub mod geography;
pub mod record;
#[cfg(test)]
mod tests;
pub mod three_ds;

pub use counters::{LowValueCounters, LOW_VALUE_MAX_AMOUNT, LOW_VALUE_MAX_CONSECUTIVE, LOW_VALUE_MAX_CUMULATIVE};
pub use decision::{
    decide, Exemption, FraudRate, Geography, Initiation, InvalidFraudRate, OutOfScope, RequestThreeDSecure,
    ScaDecision, ScaInput, ScaOutcome,
};
pub use exchange::{EurCents, EurRate, InvalidRate, NoRate, RateTable, RATE_DECIMALS};
pub use record::{AuthenticationFlow, ScaRecord, ThreeDsRecord};
pub use three_ds::{
    AuthenticationOutcome, AuthenticationValue, DsTransId, Eci, EciMeaning, InvalidThreeDs, MessageVersion,
    OnUnavailable, ThreeDsResult, TransStatus,
};
