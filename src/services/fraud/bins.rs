//! The BIN table shipped with the gateway: the issuing country and the
//! funding type (`card.country`, `card.funding`) of a card's first six
//! digits.
//!
//! Source and coverage, honestly: the BINs of the public test card numbers
//! Stripe documents (<https://docs.stripe.com/testing>, "Cards by brand"),
//! with the country and funding Stripe states for each. That is a few dozen
//! BINs, enough to write and test rules, not a production BIN database;
//! test BINs shared by cards of different countries (Stripe's `400000…`
//! cards by country differ only after the sixth digit) are left out rather
//! than guessed. For any other BIN `card.country` is absent and
//! `card.funding` is `unknown`. A production deployment wanting real
//! coverage would load a licensed BIN file here; the table is a sorted
//! constant so that replacing it changes no other code.

/// `(bin, country, funding)`, sorted by BIN; country lower-case ISO 3166
/// alpha-2, funding one of `domain::fraud_rules::FUNDING_TYPES`.
const BINS: [(&str, &str, &str); 16] = [
    ("222300", "us", "credit"),  // Mastercard 2-series 2223 0031 2200 3222
    ("305693", "us", "credit"),  // Diners Club 3056 9300 0902 0004
    ("356600", "jp", "credit"),  // JCB 3566 0020 2036 0505
    ("362272", "us", "credit"),  // Diners Club (14 digits) 3622 7206 2716 67
    ("371449", "us", "credit"),  // American Express 3714 496353 98431
    ("378282", "us", "credit"),  // American Express 3782 822463 10005
    ("400005", "us", "debit"),   // Visa (debit) 4000 0566 5566 5556
    ("424242", "us", "credit"),  // Visa 4242 4242 4242 4242
    ("510510", "us", "prepaid"), // Mastercard (prepaid) 5105 1051 0510 5100
    ("520082", "us", "debit"),   // Mastercard (debit) 5200 8282 8282 8210
    ("555555", "us", "credit"),  // Mastercard 5555 5555 5555 4444
    ("601100", "us", "credit"),  // Discover 6011 0009 9013 9424
    ("601111", "us", "credit"),  // Discover 6011 1111 1111 1117
    ("601198", "us", "debit"),   // Discover (debit) 6011 9811 1111 1113
    ("620000", "cn", "unknown"), // UnionPay 6200 0000 0000 0005 (credit and debit share it)
    ("620550", "cn", "unknown"), // UnionPay (19 digits) 6205 5000 0000 0000 004
];

/// What the table says about a BIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BinInfo {
    /// `None`: the BIN is not in the table.
    pub country: Option<&'static str>,
    pub funding: &'static str,
}

/// The country and funding of `bin` (the first six digits of a card).
pub fn lookup(bin: &str) -> BinInfo {
    match BINS.binary_search_by(|(b, _, _)| (*b).cmp(bin)) {
        Ok(i) => match BINS.get(i) {
            Some((_, country, funding)) => BinInfo {
                country: Some(country),
                funding,
            },
            None => UNKNOWN,
        },
        Err(_) => UNKNOWN,
    }
}

const UNKNOWN: BinInfo = BinInfo {
    country: None,
    funding: "unknown",
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::fraud_rules::FUNDING_TYPES;

    #[test]
    fn the_table_is_sorted_unique_and_in_the_forms_rules_read() {
        assert!(BINS.windows(2).all(|w| w[0].0 < w[1].0), "sorted, no duplicate BIN");
        for (bin, country, funding) in BINS {
            assert!(bin.len() == 6 && bin.bytes().all(|b| b.is_ascii_digit()), "{bin}");
            assert!(
                country.len() == 2 && country.bytes().all(|b| b.is_ascii_lowercase()),
                "{country}"
            );
            assert!(FUNDING_TYPES.contains(&funding), "{funding}");
        }
    }

    #[test]
    fn known_bins_give_country_and_funding_others_unknown() {
        assert_eq!(
            lookup("424242"),
            BinInfo {
                country: Some("us"),
                funding: "credit"
            }
        );
        assert_eq!(
            lookup("400005"),
            BinInfo {
                country: Some("us"),
                funding: "debit"
            }
        );
        assert_eq!(lookup("510510").funding, "prepaid");
        assert_eq!(lookup("356600").country, Some("jp"));
        assert_eq!(
            lookup("400000"),
            BinInfo {
                country: None,
                funding: "unknown"
            }
        );
        assert_eq!(
            lookup(""),
            BinInfo {
                country: None,
                funding: "unknown"
            }
        );
    }
}
