//! [`CardNumber`]: the card number (PAN), parsed from what a client typed.
//!
//! Invariants: a `CardNumber` holds 12–19 ASCII digits in a range of a known
//! brand, of a length that brand issues, with a valid Luhn check digit. The
//! digits live only in a zeroizing secret and are compared in constant time;
//! `Debug` shows the brand and last four, and no error carries a digit.

use std::fmt;

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use subtle::ConstantTimeEq;

use super::brand::{self, CardBrand};
use super::CardError;

/// Shortest and longest card numbers any supported brand issues.
const MIN_DIGITS: usize = 12;
pub(super) const MAX_DIGITS: usize = 19;
/// Longest raw input accepted before stripping separators; bounds the work done
/// on hostile input.
const MAX_INPUT_LEN: usize = 64;
/// Digits of the issuer identification number shown as the BIN.
const BIN_LEN: usize = 6;

/// True when the Luhn (mod 10) checksum of the ASCII digits is valid.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let v = u32::from(d - b'0');
            if i % 2 == 1 {
                let doubled = v * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                v
            }
        })
        .sum();
    sum % 10 == 0
}

/// A card number (PAN). Zeroized on drop; compared in constant time; `Debug`
/// shows only the brand and last four digits.
pub struct CardNumber {
    /// ASCII digits only. A `String` (not `Box<str>`) so that building it never
    /// reallocates and leaves a copy behind; its `Zeroize` clears the capacity.
    digits: SecretBox<String>,
    brand: CardBrand,
}

impl CardNumber {
    /// Parses a number as typed: spaces and dashes are ignored, anything else
    /// but digits is refused, then brand, length and Luhn are checked.
    pub fn parse(input: &str) -> Result<Self, CardError> {
        if input.len() > MAX_INPUT_LEN {
            return Err(CardError::NumberLength);
        }
        let mut count = 0usize;
        for b in input.bytes() {
            match b {
                b'0'..=b'9' => count += 1,
                b' ' | b'-' => {}
                _ => return Err(CardError::NumberCharacters),
            }
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&count) {
            return Err(CardError::NumberLength);
        }
        // Exact capacity: pushing never reallocates, so no stray copy remains.
        let mut digits = SecretBox::new(Box::new(String::with_capacity(count)));
        digits
            .expose_secret_mut()
            .extend(input.chars().filter(char::is_ascii_digit));
        let bytes = digits.expose_secret().as_bytes();
        let rule = brand::detect(bytes).ok_or(CardError::UnknownBrand)?;
        if !rule.allows_length(bytes.len()) {
            return Err(CardError::NumberLength);
        }
        if !luhn_valid(bytes) {
            return Err(CardError::NumberChecksum);
        }
        Ok(Self {
            brand: rule.brand(),
            digits,
        })
    }

    pub fn brand(&self) -> CardBrand {
        self.brand
    }

    /// The first six digits (the BIN), safe to show and store.
    pub fn bin(&self) -> &str {
        self.expose_digits().get(..BIN_LEN).unwrap_or_default()
    }

    /// The last four digits, safe to show and store.
    pub fn last4(&self) -> &str {
        let d = self.expose_digits();
        d.get(d.len().saturating_sub(4)..).unwrap_or_default()
    }

    /// The full number. Only for encrypting it into the vault, fingerprinting it
    /// or sending it to a processor; keep call sites few enough to review.
    pub fn expose_digits(&self) -> &str {
        self.digits.expose_secret()
    }
}

impl TryFrom<&str> for CardNumber {
    type Error = CardError;
    fn try_from(input: &str) -> Result<Self, Self::Error> {
        Self::parse(input)
    }
}

impl PartialEq for CardNumber {
    fn eq(&self, other: &Self) -> bool {
        bool::from(self.expose_digits().as_bytes().ct_eq(other.expose_digits().as_bytes()))
    }
}

impl Eq for CardNumber {}

impl fmt::Debug for CardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CardNumber({} ****{})", self.brand, self.last4())
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_cards::{generated_card, luhn_complete};
    use super::*;
    use proptest::prelude::*;

    /// Public test numbers from processors' documentation.
    const TEST_NUMBERS: &[(&str, CardBrand)] = &[
        ("4242424242424242", CardBrand::Visa),
        ("4000056655665556", CardBrand::Visa),
        ("5555555555554444", CardBrand::Mastercard),
        ("2223003122003222", CardBrand::Mastercard),
        ("5200828282828210", CardBrand::Mastercard),
        ("378282246310005", CardBrand::Amex),
        ("371449635398431", CardBrand::Amex),
        ("6011111111111117", CardBrand::Discover),
        ("6011000990139424", CardBrand::Discover),
        ("3056930009020004", CardBrand::Diners),
        ("36227206271667", CardBrand::Diners),
        ("3566002020360505", CardBrand::Jcb),
        ("6200000000000005", CardBrand::Unionpay),
        ("6759649826438453", CardBrand::Maestro),
    ];

    #[test]
    fn public_test_numbers_parse_with_their_brand() {
        for &(number, brand) in TEST_NUMBERS {
            let card = CardNumber::parse(number).unwrap_or_else(|e| panic!("{number}: {e}"));
            assert_eq!(card.brand(), brand, "{number}");
            assert_eq!(card.expose_digits(), number);
            assert_eq!(card.bin(), &number[..6]);
            assert_eq!(card.last4(), &number[number.len() - 4..]);
        }
    }

    #[test]
    fn separators_are_ignored_and_other_characters_refused() {
        let card = CardNumber::parse("4242 4242-4242 4242").unwrap();
        assert_eq!(card.expose_digits(), "4242424242424242");
        assert_eq!(
            CardNumber::parse("4242.4242.4242.4242"),
            Err(CardError::NumberCharacters)
        );
        assert_eq!(
            CardNumber::parse("４２４２424242424242"),
            Err(CardError::NumberCharacters)
        );
        assert_eq!(CardNumber::parse("42424242424242424242"), Err(CardError::NumberLength));
        assert_eq!(CardNumber::parse(""), Err(CardError::NumberLength));
        assert_eq!(CardNumber::parse(&"4".repeat(100)), Err(CardError::NumberLength));
    }

    #[test]
    fn brand_length_and_luhn_are_enforced() {
        assert_eq!(CardNumber::parse("4242424242424241"), Err(CardError::NumberChecksum));
        assert_eq!(CardNumber::parse("9242424242424242"), Err(CardError::UnknownBrand));
        assert_eq!(CardNumber::parse("1234567812345670"), Err(CardError::UnknownBrand));
        // A 15-digit Visa and a 16-digit Amex do not exist, even with a valid Luhn digit.
        assert_eq!(
            CardNumber::parse(&luhn_complete("4", 15, &[0; 19])),
            Err(CardError::NumberLength)
        );
        assert_eq!(
            CardNumber::parse(&luhn_complete("37", 16, &[0; 19])),
            Err(CardError::NumberLength)
        );
        assert_eq!(
            CardNumber::parse(&luhn_complete("2721", 16, &[0; 19])),
            Err(CardError::UnknownBrand)
        );
        for e in [
            CardError::NumberChecksum,
            CardError::UnknownBrand,
            CardError::NumberLength,
        ] {
            assert_eq!(e.code(), "incorrect_number");
            assert_eq!(e.param(), "number");
        }
    }

    #[test]
    fn equality_and_debug() {
        let a = CardNumber::parse("4242424242424242").unwrap();
        let b = CardNumber::parse("4242 4242 4242 4242").unwrap();
        let c = CardNumber::parse("4000056655665556").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(format!("{a:?}"), "CardNumber(visa ****4242)");
    }

    proptest! {
        #[test]
        fn generated_numbers_parse_with_the_right_brand((brand, number) in generated_card()) {
            let card = CardNumber::parse(&number).unwrap();
            prop_assert_eq!(card.brand(), brand);
            prop_assert_eq!(card.expose_digits(), number.as_str());
        }

        #[test]
        fn any_single_digit_change_is_rejected(
            (_, number) in generated_card(),
            pos in any::<prop::sample::Index>(),
            delta in 1u8..10,
        ) {
            let mut bytes = number.into_bytes();
            let i = pos.index(bytes.len());
            bytes[i] = b'0' + (bytes[i] - b'0' + delta) % 10;
            prop_assert!(CardNumber::parse(std::str::from_utf8(&bytes).unwrap()).is_err());
        }

        #[test]
        fn debug_never_shows_more_than_the_last_four((_, number) in generated_card()) {
            let card = CardNumber::parse(&number).unwrap();
            let shown = format!("{card:?}");
            prop_assert!(!shown.contains(&number));
            prop_assert_eq!(shown.bytes().filter(u8::is_ascii_digit).count(), 4);
        }

        #[test]
        fn parser_never_panics(s in "\\PC{0,80}", digits in "[0-9 -]{0,40}") {
            let _ = CardNumber::parse(&s);
            let _ = CardNumber::parse(&digits);
        }

        #[test]
        fn errors_never_contain_the_input(digits in "[0-9]{12,19}") {
            if let Err(e) = CardNumber::parse(&digits) {
                let shown = format!("{e} {e:?}");
                prop_assert!(!shown.contains(&digits));
            }
        }
    }
}
