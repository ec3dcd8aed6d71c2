//! Countries: the ISO 3166-1 alpha-2 code, and the country an IP address is
//! allocated to, looked up offline in the regional Internet registries'
//! delegation statistics that the `iptocc` crate embeds (no network lookup,
//! no database file to deploy). A registry allocation names where an address
//! block was assigned, not where its user sits: a signal for fraud rules and
//! anomaly detectors, never proof.

use std::fmt;
use std::net::IpAddr;

/// An ISO 3166-1 alpha-2 code, upper case (`DE`, `US`).
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("country must be a two-letter ISO 3166-1 alpha-2 code")]
pub struct InvalidCountryCode;

impl CountryCode {
    /// Two ASCII letters, either case; stored upper case.
    pub fn parse(input: &str) -> Result<Self, InvalidCountryCode> {
        match input.as_bytes() {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Ok(Self([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => Err(InvalidCountryCode),
        }
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII letters by construction.
        std::str::from_utf8(&self.0).unwrap_or("ZZ")
    }

    /// The country the registries allocated `address` to. `None` for
    /// private, loopback, reserved and unallocated addresses.
    pub fn of_address(address: IpAddr) -> Option<Self> {
        iptocc::country_code(address).and_then(|code| Self::parse(code).ok())
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CountryCode({})", self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_two_letters_in_either_case() {
        assert_eq!(CountryCode::parse("de").unwrap().as_str(), "DE");
        assert_eq!(CountryCode::parse("US").unwrap().to_string(), "US");
        for bad in ["", "D", "DEU", "D1", "é", "  "] {
            assert!(CountryCode::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn public_addresses_resolve_and_private_ones_do_not() {
        // Google's 8.8.8.8 (ARIN, United States) and Deutsche Telekom's
        // 2003::/19 (RIPE NCC, Germany).
        let us = CountryCode::of_address("8.8.8.8".parse().unwrap()).unwrap();
        assert_eq!(us.as_str(), "US");
        let de = CountryCode::of_address("2003::1".parse().unwrap()).unwrap();
        assert_eq!(de.as_str(), "DE");
        for private in ["127.0.0.1", "10.1.2.3", "192.168.0.1", "::1"] {
            assert_eq!(CountryCode::of_address(private.parse().unwrap()), None, "{private}");
        }
    }
}
