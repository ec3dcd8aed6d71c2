//! [`Cvc`]: the card security code (CVC/CVV/CID).
//!
//! Invariants: a `Cvc` holds three or four ASCII digits (four for American
//! Express, three for every other brand when parsed from a client), lives only
//! in a zeroizing secret, and `Debug` prints none of it. It must never be
//! stored at rest (PCI DSS 3.2.2); see `vault::cvc`.

use std::fmt;
use std::ops::RangeInclusive;

use secrecy::{ExposeSecret, SecretBox};

use super::{CardBrand, CardError};

/// Lengths of a security code of any brand.
const ANY_BRAND_LEN: RangeInclusive<usize> = 3..=4;

/// A card security code (CVC/CVV/CID). Zeroized on drop; `Debug` prints `***`.
/// Must never be stored at rest (PCI DSS 3.2.2); see `vault::cvc`.
pub struct Cvc {
    digits: SecretBox<String>,
}

impl Cvc {
    /// Parses a CVC for a card of `brand`: four digits for Amex, three otherwise.
    pub fn parse(input: &str, brand: CardBrand) -> Result<Self, CardError> {
        let len = brand.cvc_len();
        Self::digits(input, len..=len).ok_or(CardError::Cvc)
    }

    /// Rebuilds a CVC that was parsed before (held encrypted in memory): three
    /// or four digits, brand no longer known.
    pub(crate) fn from_parsed(input: &str) -> Option<Self> {
        Self::digits(input, ANY_BRAND_LEN)
    }

    /// `input` when it is ASCII digits only, of a length in `lengths`.
    fn digits(input: &str, lengths: RangeInclusive<usize>) -> Option<Self> {
        let ok = lengths.contains(&input.len()) && input.bytes().all(|b| b.is_ascii_digit());
        ok.then(|| Self {
            digits: SecretBox::new(Box::new(input.to_owned())),
        })
    }

    /// The digits, for forwarding to a processor or sealing in memory.
    pub fn expose(&self) -> &str {
        self.digits.expose_secret()
    }
}

impl fmt::Debug for Cvc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Cvc(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cvc_length_depends_on_brand() {
        assert!(Cvc::parse("123", CardBrand::Visa).is_ok());
        assert!(Cvc::parse("1234", CardBrand::Amex).is_ok());
        assert_eq!(Cvc::parse("1234", CardBrand::Visa).err(), Some(CardError::Cvc));
        assert_eq!(Cvc::parse("123", CardBrand::Amex).err(), Some(CardError::Cvc));
        assert_eq!(Cvc::parse("12a", CardBrand::Visa).err(), Some(CardError::Cvc));
        assert_eq!(Cvc::parse(" 123", CardBrand::Visa).err(), Some(CardError::Cvc));
        assert_eq!(CardError::Cvc.code(), "invalid_cvc");
    }

    #[test]
    fn debug_prints_nothing_of_the_code() {
        let cvc = Cvc::parse("123", CardBrand::Visa).unwrap();
        assert_eq!(format!("{cvc:?}"), "Cvc(***)");
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = Cvc::parse(&s, CardBrand::Amex);
        }
    }
}
