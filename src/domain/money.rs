//! Money: ISO 4217 currencies with their minor-unit exponents, and amounts in
//! integer minor units.
//!
//! Invariant: money is never a float. An `Amount` is strictly positive and fits
//! in an `i64` so that it can be stored on both backends without loss.

use std::fmt;
use std::str::FromStr;

/// Active ISO 4217 codes and the number of digits after the decimal point.
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2),
    ("AFN", 2),
    ("ALL", 2),
    ("AMD", 2),
    ("ANG", 2),
    ("AOA", 2),
    ("ARS", 2),
    ("AUD", 2),
    ("AWG", 2),
    ("AZN", 2),
    ("BAM", 2),
    ("BBD", 2),
    ("BDT", 2),
    ("BGN", 2),
    ("BHD", 3),
    ("BIF", 0),
    ("BMD", 2),
    ("BND", 2),
    ("BOB", 2),
    ("BRL", 2),
    ("BSD", 2),
    ("BTN", 2),
    ("BWP", 2),
    ("BYN", 2),
    ("BZD", 2),
    ("CAD", 2),
    ("CDF", 2),
    ("CHF", 2),
    ("CLP", 0),
    ("CNY", 2),
    ("COP", 2),
    ("CRC", 2),
    ("CUP", 2),
    ("CVE", 2),
    ("CZK", 2),
    ("DJF", 0),
    ("DKK", 2),
    ("DOP", 2),
    ("DZD", 2),
    ("EGP", 2),
    ("ERN", 2),
    ("ETB", 2),
    ("EUR", 2),
    ("FJD", 2),
    ("FKP", 2),
    ("GBP", 2),
    ("GEL", 2),
    ("GHS", 2),
    ("GIP", 2),
    ("GMD", 2),
    ("GNF", 0),
    ("GTQ", 2),
    ("GYD", 2),
    ("HKD", 2),
    ("HNL", 2),
    ("HTG", 2),
    ("HUF", 2),
    ("IDR", 2),
    ("ILS", 2),
    ("INR", 2),
    ("IQD", 3),
    ("IRR", 2),
    ("ISK", 0),
    ("JMD", 2),
    ("JOD", 3),
    ("JPY", 0),
    ("KES", 2),
    ("KGS", 2),
    ("KHR", 2),
    ("KMF", 0),
    ("KPW", 2),
    ("KRW", 0),
    ("KWD", 3),
    ("KYD", 2),
    ("KZT", 2),
    ("LAK", 2),
    ("LBP", 2),
    ("LKR", 2),
    ("LRD", 2),
    ("LSL", 2),
    ("LYD", 3),
    ("MAD", 2),
    ("MDL", 2),
    ("MGA", 2),
    ("MKD", 2),
    ("MMK", 2),
    ("MNT", 2),
    ("MOP", 2),
    ("MRU", 2),
    ("MUR", 2),
    ("MVR", 2),
    ("MWK", 2),
    ("MXN", 2),
    ("MYR", 2),
    ("MZN", 2),
    ("NAD", 2),
    ("NGN", 2),
    ("NIO", 2),
    ("NOK", 2),
    ("NPR", 2),
    ("NZD", 2),
    ("OMR", 3),
    ("PAB", 2),
    ("PEN", 2),
    ("PGK", 2),
    ("PHP", 2),
    ("PKR", 2),
    ("PLN", 2),
    ("PYG", 0),
    ("QAR", 2),
    ("RON", 2),
    ("RSD", 2),
    ("RUB", 2),
    ("RWF", 0),
    ("SAR", 2),
    ("SBD", 2),
    ("SCR", 2),
    ("SDG", 2),
    ("SEK", 2),
    ("SGD", 2),
    ("SHP", 2),
    ("SLE", 2),
    ("SOS", 2),
    ("SRD", 2),
    ("SSP", 2),
    ("STN", 2),
    ("SVC", 2),
    ("SYP", 2),
    ("SZL", 2),
    ("THB", 2),
    ("TJS", 2),
    ("TMT", 2),
    ("TND", 3),
    ("TOP", 2),
    ("TRY", 2),
    ("TTD", 2),
    ("TWD", 2),
    ("TZS", 2),
    ("UAH", 2),
    ("UGX", 0),
    ("USD", 2),
    ("UYU", 2),
    ("UZS", 2),
    ("VES", 2),
    ("VND", 0),
    ("VUV", 0),
    ("WST", 2),
    ("XAF", 0),
    ("XCD", 2),
    ("XOF", 0),
    ("XPF", 0),
    ("YER", 2),
    ("ZAR", 2),
    ("ZMW", 2),
    ("ZWG", 2),
];

/// An ISO 4217 currency known to the gateway.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: &'static str,
    exponent: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown currency; expected an ISO 4217 code such as usd, eur or jpy")]
pub struct UnknownCurrency;

impl Currency {
    /// Parses a three-letter ISO 4217 code spelled all lower-case (`usd`, as
    /// the API shows it) or all upper-case (`USD`), and nothing else: the
    /// OpenAPI document lists exactly these spellings ([`Currency::codes`]),
    /// and a mixed-case `Usd` is refused like an unknown code.
    pub fn parse(input: &str) -> Result<Self, UnknownCurrency> {
        let lower = input.bytes().all(|b| b.is_ascii_lowercase());
        let upper = input.bytes().all(|b| b.is_ascii_uppercase());
        if input.len() != 3 || !(lower || upper) {
            return Err(UnknownCurrency);
        }
        let wanted = input.to_ascii_uppercase();
        CURRENCIES
            .iter()
            .find(|(code, _)| *code == wanted)
            .map(|&(code, exponent)| Currency { code, exponent })
            .ok_or(UnknownCurrency)
    }

    /// Every currency the gateway knows, by upper-case code.
    pub fn codes() -> impl Iterator<Item = &'static str> {
        CURRENCIES.iter().map(|&(code, _)| code)
    }

    /// The upper-case ISO code, e.g. `USD`.
    pub fn code(self) -> &'static str {
        self.code
    }

    /// The lower-case code, as the API shows it (`usd`).
    pub fn api_code(self) -> String {
        self.code.to_ascii_lowercase()
    }

    /// Digits after the decimal point: 0 for JPY, 2 for EUR, 3 for KWD.
    pub fn exponent(self) -> u8 {
        self.exponent
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.api_code())
    }
}

impl FromStr for Currency {
    type Err = UnknownCurrency;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl serde::Serialize for Currency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.api_code())
    }
}

impl<'de> serde::Deserialize<'de> for Currency {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Currency::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// A strictly positive amount in minor units (cents, yen, fils).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct MinorUnits(i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidAmount {
    #[error("amount must be a positive integer in the currency's minor unit")]
    NotPositive,
    #[error("amount exceeds the maximum of {max}")]
    TooLarge { max: i64 },
}

impl MinorUnits {
    /// Parses a positive integer amount no larger than `max`.
    pub fn parse(value: i64, max: i64) -> Result<Self, InvalidAmount> {
        if value <= 0 {
            Err(InvalidAmount::NotPositive)
        } else if value > max {
            Err(InvalidAmount::TooLarge { max })
        } else {
            Ok(Self(value))
        }
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// An amount together with its currency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money {
    pub amount: MinorUnits,
    pub currency: Currency,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn currencies_carry_their_exponent() {
        assert_eq!(Currency::parse("jpy").unwrap().exponent(), 0);
        assert_eq!(Currency::parse("EUR").unwrap().exponent(), 2);
        assert_eq!(Currency::parse("kwd").unwrap().exponent(), 3);
        assert!(Currency::parse("xyz").is_err());
        assert!(Currency::parse("usdx").is_err());
    }

    #[test]
    fn currencies_are_spelled_all_lower_or_all_upper_case() {
        for code in Currency::codes() {
            assert_eq!(Currency::parse(code).unwrap().code(), code);
            assert_eq!(Currency::parse(&code.to_ascii_lowercase()).unwrap().code(), code);
        }
        for mixed in ["Usd", "uSD", "usD", "EuR"] {
            assert!(Currency::parse(mixed).is_err(), "{mixed}");
        }
        assert!(Currency::parse("").is_err());
        assert!(Currency::parse("ｕｓｄ").is_err());
    }

    #[test]
    fn currency_table_has_no_duplicates() {
        let mut codes: Vec<_> = CURRENCIES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        let before = codes.len();
        codes.dedup();
        assert_eq!(before, codes.len());
    }

    proptest! {
        #[test]
        fn amounts_are_positive_and_bounded(v in any::<i64>(), max in 1i64..i64::MAX) {
            match MinorUnits::parse(v, max) {
                Ok(a) => prop_assert!(a.get() > 0 && a.get() <= max),
                Err(InvalidAmount::NotPositive) => prop_assert!(v <= 0),
                Err(InvalidAmount::TooLarge { .. }) => prop_assert!(v > max),
            }
        }

        #[test]
        fn currency_parser_never_panics(s in ".{0,8}") {
            let _ = Currency::parse(&s);
        }
    }

    /// The table's entry for `code` (any case), the reference the parser is
    /// checked against.
    fn table_entry(code: &str) -> Option<(&'static str, u8)> {
        CURRENCIES.iter().copied().find(|(c, _)| c.eq_ignore_ascii_case(code))
    }

    /// A code of the table spelled with each letter's case drawn: all upper,
    /// all lower and every mix of them.
    fn any_casing_of_a_known_code() -> impl Strategy<Value = String> {
        (proptest::sample::select(CURRENCIES), [any::<bool>(); 3]).prop_map(|((code, _), lower)| {
            code.chars()
                .zip(lower)
                .map(|(c, lower)| if lower { c.to_ascii_lowercase() } else { c })
                .collect()
        })
    }

    /// A code of the table, all upper or all lower case.
    fn one_case_known_code() -> impl Strategy<Value = String> {
        (proptest::sample::select(CURRENCIES), any::<bool>()).prop_map(|((code, _), lower)| {
            if lower {
                code.to_ascii_lowercase()
            } else {
                code.to_owned()
            }
        })
    }

    /// Three ASCII letters: mostly not a code, sometimes one in some casing.
    fn three_letters() -> impl Strategy<Value = String> {
        prop_oneof!["[A-Za-z]{3}", "[A-Z]{3}", "[a-z]{3}", any_casing_of_a_known_code()]
    }

    /// Not three ASCII letters: other lengths, and three characters of which
    /// at least one is something else (digits, non-ASCII letters that fold
    /// to ASCII ones, whitespace, controls, lookalikes).
    fn not_three_ascii_letters() -> impl Strategy<Value = String> {
        let lookalikes = vec![
            '\u{212A}', '\u{17F}', '\u{131}', '\u{FF21}', '\u{FF55}', '\u{435}', '\u{0}', '0', ' ', '-',
        ];
        let other = prop_oneof![
            any::<char>().prop_filter("not an ASCII letter", |c| !c.is_ascii_alphabetic()),
            proptest::sample::select(lookalikes),
        ];
        let known = one_case_known_code;
        prop_oneof![
            "\\PC{0,2}",
            "\\PC{4,12}",
            "[A-Za-z]{0,2}",
            "[A-Za-z]{4,8}",
            (known(), 0..3usize, other).prop_map(|(code, at, c)| {
                code.chars()
                    .enumerate()
                    .map(|(i, k)| if i == at { c } else { k })
                    .collect()
            }),
            (known(), "[ \t\n\\x00\u{00A0}\u{200B}\u{FEFF}]{1,2}").prop_map(|(code, pad)| format!("{pad}{code}")),
            (known(), "[ \t\n\\x00\u{00A0}\u{200B}\u{FEFF}]{1,2}").prop_map(|(code, pad)| format!("{code}{pad}")),
            (known(), "[A-Za-z]").prop_map(|(code, extra)| format!("{code}{extra}")),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(1024))]

        /// Every accepted spelling parses to the table's currency, prints back
        /// as the same code (upper-case `code`, lower-case for the API) and
        /// parses again equal from either, with its exponent unchanged.
        #[test]
        fn accepted_codes_round_trip(input in prop_oneof![3 => one_case_known_code(), 1 => three_letters()]) {
            let Ok(currency) = Currency::parse(&input) else { return Ok(()) };
            let (code, exponent) = table_entry(&input).expect("accepted codes are in the table");
            prop_assert_eq!(currency.code(), code);
            prop_assert_eq!(currency.code(), input.to_ascii_uppercase());
            prop_assert_eq!(currency.exponent(), exponent);
            prop_assert_eq!(currency.api_code(), code.to_ascii_lowercase());
            prop_assert_eq!(currency.to_string(), currency.api_code());
            prop_assert_eq!(format!("{currency:?}"), code);
            for printed in [currency.code().to_owned(), currency.api_code(), currency.to_string()] {
                let again = Currency::parse(&printed);
                prop_assert_eq!(&again, &Ok(currency));
                prop_assert_eq!(again.map(Currency::exponent), Ok(exponent));
                prop_assert_eq!(printed.parse::<Currency>(), Ok(currency));
            }
            let json = serde_json::to_string(&currency).unwrap();
            prop_assert_eq!(&json, &format!("\"{}\"", code.to_ascii_lowercase()));
            prop_assert_eq!(serde_json::from_str::<Currency>(&json).ok(), Some(currency));
        }

        /// Three ASCII letters are accepted exactly when they spell a code of
        /// the table all in upper case or all in lower case.
        #[test]
        fn three_letters_are_accepted_iff_a_code_of_the_table_in_one_case(input in three_letters()) {
            let one_case = input.bytes().all(|b| b.is_ascii_uppercase()) || input.bytes().all(|b| b.is_ascii_lowercase());
            let expected = table_entry(&input).filter(|_| one_case).map(|(code, _)| code);
            prop_assert_eq!(Currency::parse(&input).ok().map(Currency::code), expected, "{:?}", input);
            prop_assert_eq!(serde_json::from_value::<Currency>(serde_json::Value::from(input.as_str())).ok().map(Currency::code), expected);
        }

        /// Anything but three ASCII letters is refused.
        #[test]
        fn anything_but_three_ascii_letters_is_refused(input in not_three_ascii_letters()) {
            prop_assume!(!(input.len() == 3 && input.bytes().all(|b| b.is_ascii_alphabetic())));
            prop_assert_eq!(Currency::parse(&input), Err(UnknownCurrency), "{:?}", input);
        }
    }

    #[test]
    fn every_upper_case_three_letter_string_is_accepted_iff_in_the_table() {
        let letters = b'A'..=b'Z';
        let mut accepted = 0;
        for a in letters.clone() {
            for b in letters.clone() {
                for c in letters.clone() {
                    let upper = String::from_utf8(vec![a, b, c]).unwrap();
                    let lower = upper.to_ascii_lowercase();
                    let in_table = CURRENCIES.iter().any(|(code, _)| *code == upper);
                    assert_eq!(Currency::parse(&upper).is_ok(), in_table, "{upper}");
                    assert_eq!(Currency::parse(&lower).is_ok(), in_table, "{lower}");
                    accepted += usize::from(in_table);
                }
            }
        }
        assert_eq!(
            accepted,
            CURRENCIES.len(),
            "every table entry is three upper-case letters"
        );
        assert!(Currency::codes().eq(CURRENCIES.iter().map(|(code, _)| *code)));
    }

    /// Characters that Unicode case mapping or a reader's eye takes for an
    /// ASCII letter: long s and dotless i (upper-case to S and I), the Kelvin
    /// and Angstrom signs (lower-case to k and å), Cyrillic homoglyphs, and
    /// the full-width form of the letter itself.
    #[test]
    fn a_code_with_a_lookalike_letter_is_refused() {
        let lookalikes = [
            '\u{17F}', '\u{131}', '\u{130}', '\u{212A}', '\u{212B}', '\u{430}', '\u{435}', '\u{441}', '\u{410}',
            '\u{415}',
        ];
        for (code, _) in CURRENCIES {
            for spelled in [code.to_string(), code.to_ascii_lowercase()] {
                for at in 0..3 {
                    let letter = spelled.chars().nth(at).unwrap();
                    let full_width = char::from_u32(u32::from(letter) - u32::from('!') + 0xFF01).unwrap();
                    for lookalike in lookalikes.iter().copied().chain([full_width]) {
                        let mut chars: Vec<char> = spelled.chars().collect();
                        chars[at] = lookalike;
                        let input: String = chars.into_iter().collect();
                        assert_eq!(Currency::parse(&input), Err(UnknownCurrency), "{input:?}");
                    }
                }
            }
        }
    }
}
