//! `JsonInteger`: an integer of a JSON body as JSON Schema counts one. The
//! OpenAPI document says `type: integer`, under which `100`, `100.0` and
//! `1e2` are the same valid value; serde's `i64` takes only the first, so a
//! client (or a schema fuzzer) sending a whole number in another spelling
//! would be refused a value the document allows.
//!
//! Invariant: the value is exactly the number the client wrote. It is read
//! from the number's text, never through a float: `0.99999999999999999999`
//! is a fraction (refused), not the `1.0` a float would round it to, and
//! `9007199254740993.0` is that integer, not its float neighbour.

use std::fmt;

use serde::de::{Deserialize, Deserializer, Error, Unexpected};
use serde_json::value::RawValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonInteger(pub i64);

impl JsonInteger {
    pub fn get(self) -> i64 {
        self.0
    }
}

/// Why a JSON value is not an `i64`. The messages describe, never quote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotAnInteger {
    NotANumber,
    Fraction,
    OutOfRange,
}

struct Expected;

impl serde::de::Expected for Expected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an integer")
    }
}

impl<'de> Deserialize<'de> for JsonInteger {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = Box::<RawValue>::deserialize(d)?;
        exact_integer(raw.get()).map(JsonInteger).map_err(|e| match e {
            NotAnInteger::NotANumber => {
                D::Error::invalid_type(Unexpected::Other("a value that is not a number"), &Expected)
            }
            NotAnInteger::Fraction => D::Error::invalid_value(Unexpected::Other("a number with a fraction"), &Expected),
            NotAnInteger::OutOfRange => {
                D::Error::invalid_value(Unexpected::Other("a number beyond 64-bit integers"), &Expected)
            }
        })
    }
}

/// The integer a JSON number's text denotes exactly (`-12`, `12.0`,
/// `1.2e1`, `120e-1`), if it is one and fits in an `i64`. `text` is a valid
/// JSON value (serde_json checked it while capturing it).
fn exact_integer(text: &str) -> Result<i64, NotAnInteger> {
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if !unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return Err(NotAnInteger::NotANumber);
    }
    let (mantissa, exponent) = unsigned.split_once(['e', 'E']).unwrap_or((unsigned, "0"));
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = format!("{whole}{fraction}");
    let significant = digits.trim_start_matches('0');
    if significant.is_empty() {
        return Ok(0);
    }
    // The value is `significant × 10^shift`. An exponent too long for an
    // i64 is as good as ±10^(10^12): out of range, or a fraction.
    let exponent = match exponent.trim_start_matches('+').parse::<i64>() {
        Ok(e) => e.clamp(-1_000_000_000_000, 1_000_000_000_000),
        Err(_) if exponent.starts_with('-') => -1_000_000_000_000,
        Err(_) => 1_000_000_000_000,
    };
    let fraction_len = i64::try_from(fraction.len()).map_err(|_| NotAnInteger::OutOfRange)?;
    let shift = exponent - fraction_len;
    let integer_digits = if shift >= 0 {
        let zeros = usize::try_from(shift).map_err(|_| NotAnInteger::OutOfRange)?;
        // i64::MAX has 19 digits.
        if significant.len().saturating_add(zeros) > 19 {
            return Err(NotAnInteger::OutOfRange);
        }
        format!("{significant}{}", "0".repeat(zeros))
    } else {
        let cut = usize::try_from(shift.unsigned_abs()).map_err(|_| NotAnInteger::Fraction)?;
        let kept = significant.len().checked_sub(cut).ok_or(NotAnInteger::Fraction)?;
        let (integer, dropped) = significant.split_at_checked(kept).ok_or(NotAnInteger::Fraction)?;
        if dropped.bytes().any(|b| b != b'0') {
            return Err(NotAnInteger::Fraction);
        }
        if integer.len() > 19 {
            return Err(NotAnInteger::OutOfRange);
        }
        integer.to_owned()
    };
    let magnitude: i128 = integer_digits.parse().map_err(|_| NotAnInteger::OutOfRange)?;
    let value = if negative { -magnitude } else { magnitude };
    i64::try_from(value).map_err(|_| NotAnInteger::OutOfRange)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::{exact_integer, JsonInteger, NotAnInteger};

    fn parse(json: &str) -> Result<i64, String> {
        serde_json::from_str::<JsonInteger>(json)
            .map(JsonInteger::get)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn whole_numbers_in_any_spelling_are_integers() {
        for (text, value) in [
            ("100", 100),
            ("-7", -7),
            ("100.0", 100),
            ("100.000", 100),
            ("1e2", 100),
            ("1E+2", 100),
            ("1.5e1", 15),
            ("1500e-1", 150),
            ("0", 0),
            ("-0", 0),
            ("-0.0", 0),
            ("0e999999999999999999999", 0),
            ("9007199254740993.0", 9_007_199_254_740_993),
            ("9223372036854775807", i64::MAX),
            ("9.223372036854775807e18", i64::MAX),
            ("-9223372036854775808", i64::MIN),
        ] {
            assert_eq!(parse(text), Ok(value), "{text}");
        }
    }

    #[test]
    fn fractions_out_of_range_numbers_and_other_types_are_refused() {
        for (text, why) in [
            ("1.5", NotAnInteger::Fraction),
            ("0.1", NotAnInteger::Fraction),
            ("0.99999999999999999999", NotAnInteger::Fraction),
            ("1e-1", NotAnInteger::Fraction),
            ("1e-99999999999999999999", NotAnInteger::Fraction),
            ("1e400", NotAnInteger::OutOfRange),
            ("1e99999999999999999999", NotAnInteger::OutOfRange),
            ("9223372036854775808", NotAnInteger::OutOfRange),
            ("-9223372036854775809", NotAnInteger::OutOfRange),
            ("18446744073709551616", NotAnInteger::OutOfRange),
            ("\"100\"", NotAnInteger::NotANumber),
            ("true", NotAnInteger::NotANumber),
            ("null", NotAnInteger::NotANumber),
            ("[1]", NotAnInteger::NotANumber),
            ("{}", NotAnInteger::NotANumber),
        ] {
            assert_eq!(exact_integer(text), Err(why), "{text}");
            let message = parse(text).unwrap_err();
            assert!(
                message.starts_with("invalid type") || message.starts_with("invalid value"),
                "{text}: {message}"
            );
            assert!(
                !message.contains(text),
                "the message does not echo the value: {message}"
            );
        }
        for not_json in ["NaN", "Infinity", "0x10", "+1", "01", "1.", ".5", "1e"] {
            assert!(parse(not_json).is_err(), "{not_json}");
        }
    }

    /// Through the API's own body parser (unknown fields refused, paths
    /// tracked): the field is named, the value is not echoed.
    #[test]
    fn works_inside_bodies_with_the_api_parser() {
        #[derive(Debug, serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        struct Body {
            amount: JsonInteger,
            limit: Option<JsonInteger>,
        }
        let ok: Body = super::super::extract::parse_json(br#"{"amount": 2.5e2, "limit": null}"#).unwrap();
        assert_eq!((ok.amount, ok.limit), (JsonInteger(250), None));
        let ok: Body = super::super::extract::parse_json(br#"{"limit": 1.0, "amount": 7}"#).unwrap();
        assert_eq!((ok.amount, ok.limit), (JsonInteger(7), Some(JsonInteger(1))));
        let e = super::super::extract::parse_json::<Body>(br#"{"amount": 12.34}"#).unwrap_err();
        let text = format!("{e:?}");
        assert!(text.contains("amount") && !text.contains("12.34"), "{text}");
        assert!(super::super::extract::parse_json::<Body>(br#"{"amount": 1, "x": 1}"#).is_err());
    }

    proptest! {
        #[test]
        fn every_i64_in_every_spelling_reads_back(v in any::<i64>(), zeros in 0usize..4, e in 0i32..3) {
            prop_assert_eq!(parse(&v.to_string()), Ok(v));
            let decimals = format!("{v}.{}", "0".repeat(zeros.max(1)));
            prop_assert_eq!(parse(&decimals), Ok(v));
            // v × 10^e written with the exponent.
            if let Some(scaled) = 10i64.checked_pow(e.unsigned_abs()).and_then(|p| v.checked_mul(p)) {
                prop_assert_eq!(parse(&format!("{v}e{e}")), Ok(scaled));
            }
        }

        #[test]
        fn floats_agree_with_exact_reading(v in -1e12f64..1e12) {
            let text = serde_json::to_string(&v).unwrap();
            let whole = v.fract() == 0.0;
            prop_assert_eq!(parse(&text).is_ok(), whole, "{}", text);
        }
    }
}
