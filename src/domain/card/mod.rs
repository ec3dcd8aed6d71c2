//! Card data as it arrives from a client: the number (PAN), expiry date, CVC and
//! cardholder name, each parsed once at the edge. This module owns
//! [`CardError`], the one error of all the card parsers, and re-exports the
//! types, so that callers name them as `domain::card::X`.
//!
//! Invariants: a [`CardNumber`] has 12–19 digits, a known brand whose IIN range
//! and length it matches, and a valid Luhn check digit. The number and the CVC
//! live only in zeroizing secrets; no `Debug` output and no error ever contains
//! more of a card than its brand and last four digits. Only [`CardNumber::bin`]
//! (first six) and [`CardNumber::last4`] may be shown, never more.
//!
//! # Layout
//! - `brand`: [`CardBrand`] and the table of IIN ranges and lengths per brand.
//! - `number`: [`CardNumber`]: parsing, Luhn, BIN and last four, constant-time
//!   equality, masked `Debug`.
//! - `expiry`: [`ExpiryDate`]: a client's month and year, or a stored one.
//! - `cvc`: [`Cvc`], whose length depends on the brand.
//! - `cardholder`: [`CardholderName`].

mod brand;
mod cardholder;
mod cvc;
mod expiry;
mod number;
#[cfg(test)]
mod test_cards;

pub use brand::CardBrand;
pub use cardholder::CardholderName;
pub use cvc::Cvc;
pub use expiry::ExpiryDate;
pub use number::CardNumber;

/// Why card input was rejected. Variants carry no card data; [`CardError::code`]
/// is the stable API error code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum CardError {
    #[error("the card number may contain only digits, spaces and dashes")]
    NumberCharacters,
    #[error("the card number has the wrong number of digits")]
    NumberLength,
    #[error("the card number does not belong to a supported card brand")]
    UnknownBrand,
    #[error("the card number is incorrect")]
    NumberChecksum,
    #[error("the card's expiration month is invalid")]
    ExpiryMonth,
    #[error("the card's expiration year is invalid")]
    ExpiryYear,
    #[error("the card's security code is invalid")]
    Cvc,
    #[error("the cardholder name must be 1 to 200 characters, without control characters")]
    Name,
}

impl CardError {
    /// Stable API error code (Stripe's vocabulary where one exists).
    pub fn code(self) -> &'static str {
        match self {
            CardError::NumberCharacters
            | CardError::NumberLength
            | CardError::UnknownBrand
            | CardError::NumberChecksum => "incorrect_number",
            CardError::ExpiryMonth => "invalid_expiry_month",
            CardError::ExpiryYear => "invalid_expiry_year",
            CardError::Cvc => "invalid_cvc",
            CardError::Name => "invalid_cardholder_name",
        }
    }

    /// The request parameter at fault.
    pub fn param(self) -> &'static str {
        match self {
            CardError::NumberCharacters
            | CardError::NumberLength
            | CardError::UnknownBrand
            | CardError::NumberChecksum => "number",
            CardError::ExpiryMonth => "exp_month",
            CardError::ExpiryYear => "exp_year",
            CardError::Cvc => "cvc",
            CardError::Name => "name",
        }
    }
}
