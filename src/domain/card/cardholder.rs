//! [`CardholderName`]: the name printed on the card.
//!
//! Invariants: 1–200 characters after trimming, no control, line-separator or
//! bidirectional-override characters, and too few digits to be a card number
//! typed into the wrong field. Personal data: `Debug` prints none of it.

use std::fmt;

use super::CardError;

/// Longest accepted cardholder name, in characters.
const MAX_NAME_CHARS: usize = 200;
/// A name with this many digits could be a card number typed in the wrong field.
const MAX_NAME_DIGITS: usize = 11;

/// The name printed on the card: 1–200 characters after trimming, without
/// control or bidirectional-override characters, and without enough digits to
/// be a card number typed into the wrong field. Personal data, so `Debug`
/// prints nothing of it.
#[derive(Clone, PartialEq, Eq)]
pub struct CardholderName(String);

impl CardholderName {
    pub fn parse(input: &str) -> Result<Self, CardError> {
        let name = input.trim();
        let chars = name.chars().count();
        let digits = name.chars().filter(char::is_ascii_digit).count();
        if chars == 0 || chars > MAX_NAME_CHARS || digits > MAX_NAME_DIGITS || name.chars().any(is_forbidden_in_name) {
            return Err(CardError::Name);
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<&str> for CardholderName {
    type Error = CardError;
    fn try_from(input: &str) -> Result<Self, Self::Error> {
        Self::parse(input)
    }
}

impl fmt::Debug for CardholderName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CardholderName(***)")
    }
}

/// Control characters, line/paragraph separators and bidi overrides, which could
/// break or disguise the name where it is displayed.
fn is_forbidden_in_name(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cardholder_names() {
        assert_eq!(
            CardholderName::parse("  Zoë O'Brien-Łukasz ").unwrap().as_str(),
            "Zoë O'Brien-Łukasz"
        );
        assert!(CardholderName::parse(&"é".repeat(200)).is_ok());
        assert!(CardholderName::parse(&"é".repeat(201)).is_err());
        assert!(CardholderName::parse("   ").is_err());
        assert!(CardholderName::parse("a\u{0}b").is_err());
        assert!(CardholderName::parse("a\nb").is_err());
        assert!(CardholderName::parse("evil\u{202E}eman").is_err());
        assert!(CardholderName::parse("4242 4242 4242 4242").is_err());
    }

    #[test]
    fn debug_prints_nothing_of_the_name() {
        let name = CardholderName::parse("Jenny Rosen").unwrap();
        assert!(!format!("{name:?}").contains("Jenny"));
    }

    proptest! {
        #[test]
        fn parser_never_panics(s in "\\PC{0,80}") {
            let _ = CardholderName::parse(&s);
        }
    }
}
