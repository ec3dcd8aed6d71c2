//! Test cards for the card parsers' unit and property tests: valid numbers of
//! every brand, built from sample prefixes with their own Luhn check digit.
//!
//! The prefixes and lengths below restate the brand table on purpose: a test
//! that read `brand::RULES` would agree with any mistake in it.

use proptest::prelude::*;

use super::number::MAX_DIGITS;
use super::CardBrand;

/// Example prefixes (chosen so that random continuations stay in the
/// brand's range) and allowed lengths.
const SAMPLES: &[(CardBrand, &[&str], &[usize])] = &[
    (CardBrand::Visa, &["4"], &[13, 16, 19]),
    (CardBrand::Mastercard, &["51", "55", "2221", "2500", "2720"], &[16]),
    (CardBrand::Amex, &["34", "37"], &[15]),
    (
        CardBrand::Discover,
        &["6011", "644", "649", "65", "622126", "622925"],
        &[16, 17, 18, 19],
    ),
    (CardBrand::Jcb, &["3528", "3550", "3589"], &[16, 17, 18, 19]),
    (
        CardBrand::Diners,
        &["300", "305", "36", "38", "39"],
        &[14, 15, 16, 17, 18, 19],
    ),
    (
        CardBrand::Unionpay,
        &["620", "621", "6220", "623", "628"],
        &[16, 17, 18, 19],
    ),
    (
        CardBrand::Maestro,
        &["50", "56", "58", "6304", "6759", "676770", "676774"],
        &[12, 13, 14, 15, 16, 17, 18, 19],
    ),
];

/// `prefix` + `fill` digits up to `len - 1`, plus the Luhn check digit
/// (computed here with a lookup table, independently of `number::luhn_valid`).
pub(super) fn luhn_complete(prefix: &str, len: usize, fill: &[u8]) -> String {
    let mut s: String = prefix.to_owned();
    for d in fill.iter().take(len - 1 - prefix.len()) {
        s.push(char::from(b'0' + d % 10));
    }
    let mut sum = 0;
    for (i, c) in s.bytes().rev().enumerate() {
        let v = u32::from(c - b'0');
        sum += if i % 2 == 0 {
            [0, 2, 4, 6, 8, 1, 3, 5, 7, 9][v as usize]
        } else {
            v
        };
    }
    s.push(char::from(b'0' + ((10 - sum % 10) % 10) as u8));
    s
}

/// A valid number of a random brand, prefix and length, with that brand.
pub(super) fn generated_card() -> impl Strategy<Value = (CardBrand, String)> {
    (
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        any::<prop::sample::Index>(),
        prop::collection::vec(0u8..10, MAX_DIGITS),
    )
        .prop_map(|(b, p, l, fill)| {
            let (brand, prefixes, lengths) = SAMPLES[b.index(SAMPLES.len())];
            let number = luhn_complete(
                prefixes[p.index(prefixes.len())],
                lengths[l.index(lengths.len())],
                &fill,
            );
            (brand, number)
        })
}
