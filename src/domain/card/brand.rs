//! [`CardBrand`]: the card networks we accept, and the table that tells a
//! number's brand from its leading digits (the IIN range) together with the
//! lengths that brand issues.
//!
//! Invariant: the rules are tried in order and the first matching range decides,
//! so a range that overlaps a wider one of another brand comes before it.

use std::fmt;

/// A card network, detected from the number's IIN range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CardBrand {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Jcb,
    Diners,
    Unionpay,
    Maestro,
}

impl CardBrand {
    pub const ALL: [CardBrand; 8] = [
        CardBrand::Visa,
        CardBrand::Mastercard,
        CardBrand::Amex,
        CardBrand::Discover,
        CardBrand::Jcb,
        CardBrand::Diners,
        CardBrand::Unionpay,
        CardBrand::Maestro,
    ];

    /// The API code, e.g. `amex`; also how the brand is stored.
    pub fn as_str(self) -> &'static str {
        match self {
            CardBrand::Visa => "visa",
            CardBrand::Mastercard => "mastercard",
            CardBrand::Amex => "amex",
            CardBrand::Discover => "discover",
            CardBrand::Jcb => "jcb",
            CardBrand::Diners => "diners",
            CardBrand::Unionpay => "unionpay",
            CardBrand::Maestro => "maestro",
        }
    }

    /// Reads back a code produced by [`CardBrand::as_str`].
    pub fn parse(code: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|b| b.as_str() == code)
    }

    /// Digits in this brand's security code.
    pub fn cvc_len(self) -> usize {
        if self == CardBrand::Amex {
            4
        } else {
            3
        }
    }
}

impl fmt::Display for CardBrand {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Numbers whose first `digits` digits lie in `first..=last`.
struct Iin {
    first: u32,
    last: u32,
    digits: usize,
}

const fn iin(first: u32, last: u32, digits: usize) -> Iin {
    Iin { first, last, digits }
}

/// A brand's IIN ranges and the lengths of the numbers it issues.
pub(super) struct BrandRule {
    brand: CardBrand,
    ranges: &'static [Iin],
    lengths: &'static [usize],
}

const fn rule(brand: CardBrand, ranges: &'static [Iin], lengths: &'static [usize]) -> BrandRule {
    BrandRule { brand, ranges, lengths }
}

impl BrandRule {
    pub(super) fn brand(&self) -> CardBrand {
        self.brand
    }

    /// True when this brand issues numbers of `len` digits.
    pub(super) fn allows_length(&self, len: usize) -> bool {
        self.lengths.contains(&len)
    }

    /// True when the number's leading digits lie in one of this brand's ranges.
    fn matches(&self, digits: &[u8]) -> bool {
        self.ranges
            .iter()
            .any(|r| prefix_value(digits, r.digits).is_some_and(|v| (r.first..=r.last).contains(&v)))
    }
}

/// The lengths that most brands issue.
const SIXTEEN_TO_NINETEEN: &[usize] = &[16, 17, 18, 19];

/// Brand rules, tried in order; the first matching range decides the brand.
/// Order matters where ranges overlap: Discover's co-branded 622126–622925 comes
/// before UnionPay's 62, and Maestro's catch-all 6 comes last.
const RULES: &[BrandRule] = &[
    rule(CardBrand::Visa, &[iin(4, 4, 1)], &[13, 16, 19]),
    rule(CardBrand::Mastercard, &[iin(51, 55, 2), iin(2221, 2720, 4)], &[16]),
    rule(CardBrand::Amex, &[iin(34, 34, 2), iin(37, 37, 2)], &[15]),
    rule(CardBrand::Jcb, &[iin(3528, 3589, 4)], SIXTEEN_TO_NINETEEN),
    rule(
        CardBrand::Diners,
        &[iin(300, 305, 3), iin(36, 36, 2), iin(38, 39, 2)],
        &[14, 15, 16, 17, 18, 19],
    ),
    rule(
        CardBrand::Discover,
        &[
            iin(6011, 6011, 4),
            iin(644, 649, 3),
            iin(65, 65, 2),
            iin(622_126, 622_925, 6),
        ],
        SIXTEEN_TO_NINETEEN,
    ),
    rule(CardBrand::Unionpay, &[iin(62, 62, 2)], SIXTEEN_TO_NINETEEN),
    rule(
        CardBrand::Maestro,
        &[iin(50, 50, 2), iin(56, 58, 2), iin(6, 6, 1)],
        &[12, 13, 14, 15, 16, 17, 18, 19],
    ),
];

/// The value of the first `n` digits of `digits` (ASCII digits only).
fn prefix_value(digits: &[u8], n: usize) -> Option<u32> {
    let head = digits.get(..n)?;
    Some(head.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

/// The rule of the brand whose range the number (ASCII digits) falls in.
pub(super) fn detect(digits: &[u8]) -> Option<&'static BrandRule> {
    RULES.iter().find(|rule| rule.matches(digits))
}

#[cfg(test)]
mod tests {
    use super::super::test_cards::luhn_complete;
    use super::super::{CardError, CardNumber};
    use super::*;

    #[test]
    fn overlapping_ranges_resolve_by_precedence() {
        let brand = |prefix: &str| CardNumber::parse(&luhn_complete(prefix, 16, &[3; 19])).unwrap().brand();
        assert_eq!(brand("622126"), CardBrand::Discover);
        assert_eq!(brand("622925"), CardBrand::Discover);
        assert_eq!(brand("622125"), CardBrand::Unionpay);
        assert_eq!(brand("622926"), CardBrand::Unionpay);
        assert_eq!(brand("6304"), CardBrand::Maestro);
        assert_eq!(brand("2221"), CardBrand::Mastercard);
        assert_eq!(brand("3528"), CardBrand::Jcb);
        assert_eq!(
            CardNumber::parse(&luhn_complete("3527", 16, &[3; 19])),
            Err(CardError::UnknownBrand)
        );
        assert_eq!(
            CardNumber::parse(&luhn_complete("59", 16, &[3; 19])),
            Err(CardError::UnknownBrand)
        );
    }

    #[test]
    fn brand_codes_round_trip() {
        for brand in CardBrand::ALL {
            assert_eq!(CardBrand::parse(brand.as_str()), Some(brand));
        }
        assert_eq!(CardBrand::parse("Visa"), None);
        assert_eq!(serde_json::to_string(&CardBrand::Unionpay).unwrap(), "\"unionpay\"");
        assert_eq!(serde_json::to_string(&CardBrand::Amex).unwrap(), "\"amex\"");
    }
}
