//! Card data as it arrives from a client: the number (PAN), expiry date, CVC and
//! cardholder name, each parsed once at the edge.
//!
//! Invariants: a [`CardNumber`] has 12–19 digits, a known brand whose IIN range
//! and length it matches, and a valid Luhn check digit. The number and the CVC
//! live only in zeroizing secrets; no `Debug` output and no error ever contains
//! more of a card than its brand and last four digits. Only [`CardNumber::bin`]
//! (first six) and [`CardNumber::last4`] may be shown, never more.

use std::fmt;

use secrecy::{ExposeSecret, ExposeSecretMut, SecretBox};
use subtle::ConstantTimeEq;

use super::time::Timestamp;

/// Shortest and longest card numbers any supported brand issues.
const MIN_DIGITS: usize = 12;
const MAX_DIGITS: usize = 19;
/// Longest raw input accepted before stripping separators; bounds the work done
/// on hostile input.
const MAX_INPUT_LEN: usize = 64;
/// Digits of the issuer identification number shown as the BIN.
const BIN_LEN: usize = 6;
/// Latest accepted expiry year, relative to the current year.
const MAX_YEARS_AHEAD: i64 = 20;
/// Longest accepted cardholder name, in characters.
const MAX_NAME_CHARS: usize = 200;
/// A name with this many digits could be a card number typed in the wrong field.
const MAX_NAME_DIGITS: usize = 11;

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

/// A card network, detected from the number's IIN range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, utoipa::ToSchema)]
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
    const ALL: [CardBrand; 8] = [
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

struct BrandRule {
    brand: CardBrand,
    ranges: &'static [Iin],
    lengths: &'static [usize],
}

/// Brand rules, tried in order; the first matching range decides the brand.
/// Order matters where ranges overlap: Discover's co-branded 622126–622925 comes
/// before UnionPay's 62, and Maestro's catch-all 6 comes last.
const RULES: &[BrandRule] = &[
    BrandRule {
        brand: CardBrand::Visa,
        ranges: &[iin(4, 4, 1)],
        lengths: &[13, 16, 19],
    },
    BrandRule {
        brand: CardBrand::Mastercard,
        ranges: &[iin(51, 55, 2), iin(2221, 2720, 4)],
        lengths: &[16],
    },
    BrandRule {
        brand: CardBrand::Amex,
        ranges: &[iin(34, 34, 2), iin(37, 37, 2)],
        lengths: &[15],
    },
    BrandRule {
        brand: CardBrand::Jcb,
        ranges: &[iin(3528, 3589, 4)],
        lengths: &[16, 17, 18, 19],
    },
    BrandRule {
        brand: CardBrand::Diners,
        ranges: &[iin(300, 305, 3), iin(36, 36, 2), iin(38, 39, 2)],
        lengths: &[14, 15, 16, 17, 18, 19],
    },
    BrandRule {
        brand: CardBrand::Discover,
        ranges: &[
            iin(6011, 6011, 4),
            iin(644, 649, 3),
            iin(65, 65, 2),
            iin(622_126, 622_925, 6),
        ],
        lengths: &[16, 17, 18, 19],
    },
    BrandRule {
        brand: CardBrand::Unionpay,
        ranges: &[iin(62, 62, 2)],
        lengths: &[16, 17, 18, 19],
    },
    BrandRule {
        brand: CardBrand::Maestro,
        ranges: &[iin(50, 50, 2), iin(56, 58, 2), iin(6, 6, 1)],
        lengths: &[12, 13, 14, 15, 16, 17, 18, 19],
    },
];

/// The value of the first `n` digits of `digits` (ASCII digits only).
fn prefix_value(digits: &[u8], n: usize) -> Option<u32> {
    let head = digits.get(..n)?;
    Some(head.iter().fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0')))
}

fn detect(digits: &[u8]) -> Option<&'static BrandRule> {
    RULES.iter().find(|rule| {
        rule.ranges
            .iter()
            .any(|r| prefix_value(digits, r.digits).is_some_and(|v| (r.first..=r.last).contains(&v)))
    })
}

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
        let rule = detect(bytes).ok_or(CardError::UnknownBrand)?;
        if !rule.lengths.contains(&bytes.len()) {
            return Err(CardError::NumberLength);
        }
        if !luhn_valid(bytes) {
            return Err(CardError::NumberChecksum);
        }
        Ok(Self {
            brand: rule.brand,
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

/// A card's expiry month and four-digit year. The card is valid through the
/// last day of that month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ExpiryDate {
    // Field order gives chronological `Ord`.
    year: u16,
    month: u8,
}

impl ExpiryDate {
    /// Parses a client's expiry: month 1–12; year as 4 digits or as 2 digits
    /// (the next matching year not in the past). Must be this month or later,
    /// and at most 20 years ahead, judged in UTC at `now`.
    pub fn parse(month: i64, year: i64, now: Timestamp) -> Result<Self, CardError> {
        let month = u8::try_from(month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or(CardError::ExpiryMonth)?;
        let (now_year, now_month) = year_month(now).ok_or(CardError::ExpiryYear)?;
        let full_year = match year {
            0..=99 => {
                let century = now_year - now_year.rem_euclid(100);
                let candidate = century + year;
                if candidate < now_year {
                    candidate + 100
                } else {
                    candidate
                }
            }
            _ => year,
        };
        if full_year < now_year || full_year > now_year + MAX_YEARS_AHEAD {
            return Err(CardError::ExpiryYear);
        }
        // The year is plausible; a month already past in this year is the error.
        if full_year == now_year && i64::from(month) < now_month {
            return Err(CardError::ExpiryMonth);
        }
        let year = u16::try_from(full_year).map_err(|_| CardError::ExpiryYear)?;
        Ok(Self { year, month })
    }

    /// Rebuilds an expiry read back from our own storage; only the shape is
    /// checked, since a stored card may have expired since.
    pub fn from_stored(month: i64, year: i64) -> Result<Self, CardError> {
        let month = u8::try_from(month)
            .ok()
            .filter(|m| (1..=12).contains(m))
            .ok_or(CardError::ExpiryMonth)?;
        let year = u16::try_from(year)
            .ok()
            .filter(|y| (1000..=9999).contains(y))
            .ok_or(CardError::ExpiryYear)?;
        Ok(Self { year, month })
    }

    pub fn month(self) -> u8 {
        self.month
    }

    /// Four-digit year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// True once the expiry month has ended (UTC).
    pub fn is_expired(self, now: Timestamp) -> bool {
        year_month(now).is_none_or(|(y, m)| (i64::from(self.year), i64::from(self.month)) < (y, m))
    }
}

/// The UTC calendar year and month (1–12) at `now`.
fn year_month(now: Timestamp) -> Option<(i64, i64)> {
    let t = ::time::OffsetDateTime::from_unix_timestamp(now.as_secs()).ok()?;
    Some((i64::from(t.year()), i64::from(u8::from(t.month()))))
}

/// A card security code (CVC/CVV/CID). Zeroized on drop; `Debug` prints `***`.
/// Must never be stored at rest (PCI DSS 3.2.2); see `vault::cvc`.
pub struct Cvc {
    digits: SecretBox<String>,
}

impl Cvc {
    /// Parses a CVC for a card of `brand`: four digits for Amex, three otherwise.
    pub fn parse(input: &str, brand: CardBrand) -> Result<Self, CardError> {
        if input.len() != brand.cvc_len() || !input.bytes().all(|b| b.is_ascii_digit()) {
            return Err(CardError::Cvc);
        }
        Ok(Self {
            digits: SecretBox::new(Box::new(input.to_owned())),
        })
    }

    /// Rebuilds a CVC that was parsed before (held encrypted in memory): three
    /// or four digits, brand no longer known.
    pub(crate) fn from_parsed(input: &str) -> Option<Self> {
        let ok = (3..=4).contains(&input.len()) && input.bytes().all(|b| b.is_ascii_digit());
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

    /// 2025-06-15T00:00:00Z.
    const NOW: Timestamp = Timestamp::from_millis(1_749_945_600_000);

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

    /// `prefix` + `fill` digits up to `len - 1`, plus the Luhn check digit.
    fn luhn_complete(prefix: &str, len: usize, fill: &[u8]) -> String {
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

    fn generated_card() -> impl Strategy<Value = (CardBrand, String)> {
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
    fn equality_and_debug() {
        let a = CardNumber::parse("4242424242424242").unwrap();
        let b = CardNumber::parse("4242 4242 4242 4242").unwrap();
        let c = CardNumber::parse("4000056655665556").unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_eq!(format!("{a:?}"), "CardNumber(visa ****4242)");
        let cvc = Cvc::parse("123", CardBrand::Visa).unwrap();
        assert_eq!(format!("{cvc:?}"), "Cvc(***)");
        let name = CardholderName::parse("Jenny Rosen").unwrap();
        assert!(!format!("{name:?}").contains("Jenny"));
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

    #[test]
    fn expiry_dates() {
        let ok = ExpiryDate::parse(6, 2025, NOW).unwrap();
        assert_eq!((ok.month(), ok.year()), (6, 2025));
        assert_eq!(ExpiryDate::parse(7, 27, NOW).unwrap().year(), 2027);
        assert_eq!(ExpiryDate::parse(12, 2045, NOW).unwrap().year(), 2045);
        assert_eq!(ExpiryDate::parse(1, 2046, NOW), Err(CardError::ExpiryYear));
        assert_eq!(ExpiryDate::parse(12, 2024, NOW), Err(CardError::ExpiryYear));
        assert_eq!(ExpiryDate::parse(12, 24, NOW), Err(CardError::ExpiryYear)); // 2124
        assert_eq!(ExpiryDate::parse(5, 2025, NOW), Err(CardError::ExpiryMonth));
        assert_eq!(ExpiryDate::parse(0, 2026, NOW), Err(CardError::ExpiryMonth));
        assert_eq!(ExpiryDate::parse(13, 2026, NOW), Err(CardError::ExpiryMonth));
        assert_eq!(ExpiryDate::parse(-1, 2026, NOW), Err(CardError::ExpiryMonth));
        assert_eq!(ExpiryDate::parse(1, 202, NOW), Err(CardError::ExpiryYear));
        assert_eq!(ExpiryDate::parse(1, i64::MAX, NOW), Err(CardError::ExpiryYear));
        assert_eq!(CardError::ExpiryYear.code(), "invalid_expiry_year");
        assert_eq!(CardError::ExpiryMonth.code(), "invalid_expiry_month");
    }

    #[test]
    fn two_digit_years_roll_into_the_next_century_near_its_end() {
        let late = Timestamp::from_millis(4_102_444_800_000 - 86_400_000 * 200); // mid-2099
        assert_eq!(ExpiryDate::parse(12, 99, late).unwrap().year(), 2099);
        assert_eq!(ExpiryDate::parse(12, 5, late).unwrap().year(), 2105);
    }

    #[test]
    fn stored_expiry_may_be_in_the_past() {
        let old = ExpiryDate::from_stored(1, 2020).unwrap();
        assert!(old.is_expired(NOW));
        assert!(!ExpiryDate::parse(6, 2025, NOW).unwrap().is_expired(NOW));
        assert!(ExpiryDate::from_stored(13, 2020).is_err());
        assert!(ExpiryDate::from_stored(1, 20).is_err());
    }

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
        fn parsers_never_panic(s in "\\PC{0,80}", digits in "[0-9 -]{0,40}", m in any::<i64>(), y in any::<i64>()) {
            let _ = CardNumber::parse(&s);
            let _ = CardNumber::parse(&digits);
            let _ = CardholderName::parse(&s);
            let _ = Cvc::parse(&s, CardBrand::Amex);
            let _ = ExpiryDate::parse(m, y, NOW);
            let _ = ExpiryDate::from_stored(m, y);
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
