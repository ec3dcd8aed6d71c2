//! Restrictions a key carries beyond its permissions: a maximum amount per
//! payment, allowed currencies and allowed client IP ranges. Expiry lives on the
//! key record itself.
//!
//! Invariant: an empty list means "no restriction"; a non-empty list is an
//! allow-list and anything outside it is refused.

use std::net::IpAddr;

use ipnet::IpNet;

use super::money::{Currency, Money};

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyRestrictions {
    /// Largest payment amount (minor units) this key may create.
    pub max_amount: Option<i64>,
    /// Currencies this key may charge in; empty = any.
    pub currencies: Vec<Currency>,
    /// Client IP ranges this key may be used from; empty = any.
    pub allowed_ips: Vec<IpNet>,
}

/// Which restriction refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestrictionViolation {
    #[error("amount exceeds this key's maximum of {max}")]
    AmountAboveKeyMaximum { max: i64 },
    #[error("currency {currency} is not allowed for this key")]
    CurrencyNotAllowed { currency: String },
    #[error("client IP address is not allowed for this key")]
    IpNotAllowed,
}

impl KeyRestrictions {
    /// Checks the client's address against the allow-list.
    pub fn check_ip(&self, client: IpAddr) -> Result<(), RestrictionViolation> {
        let client = canonical(client);
        if self.allowed_ips.is_empty() || self.allowed_ips.iter().any(|net| net.contains(&client)) {
            Ok(())
        } else {
            Err(RestrictionViolation::IpNotAllowed)
        }
    }

    /// Checks a payment amount and currency against the key's limits.
    pub fn check_money(&self, money: Money) -> Result<(), RestrictionViolation> {
        if let Some(max) = self.max_amount {
            if money.amount.get() > max {
                return Err(RestrictionViolation::AmountAboveKeyMaximum { max });
            }
        }
        if !self.currencies.is_empty() && !self.currencies.contains(&money.currency) {
            return Err(RestrictionViolation::CurrencyNotAllowed {
                currency: money.currency.api_code(),
            });
        }
        Ok(())
    }
}

/// IPv4-mapped IPv6 addresses (`::ffff:1.2.3.4`) are compared as IPv4.
pub fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::MinorUnits;

    fn usd(amount: i64) -> Money {
        Money {
            amount: MinorUnits::parse(amount, i64::MAX).unwrap(),
            currency: Currency::parse("usd").unwrap(),
        }
    }

    #[test]
    fn ip_allow_list_is_enforced_including_mapped_addresses() {
        let r = KeyRestrictions {
            allowed_ips: vec!["10.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        assert!(r.check_ip("10.1.2.3".parse().unwrap()).is_ok());
        assert!(r.check_ip("::ffff:10.1.2.3".parse().unwrap()).is_ok());
        assert_eq!(
            r.check_ip("11.0.0.1".parse().unwrap()),
            Err(RestrictionViolation::IpNotAllowed)
        );
        assert!(KeyRestrictions::default().check_ip("11.0.0.1".parse().unwrap()).is_ok());
    }

    #[test]
    fn amount_and_currency_limits_are_enforced() {
        let r = KeyRestrictions {
            max_amount: Some(1000),
            currencies: vec![Currency::parse("usd").unwrap()],
            ..Default::default()
        };
        assert!(r.check_money(usd(1000)).is_ok());
        assert_eq!(
            r.check_money(usd(1001)),
            Err(RestrictionViolation::AmountAboveKeyMaximum { max: 1000 })
        );
        let eur = Money {
            amount: MinorUnits::parse(5, 10).unwrap(),
            currency: Currency::parse("eur").unwrap(),
        };
        assert!(matches!(
            r.check_money(eur),
            Err(RestrictionViolation::CurrencyNotAllowed { .. })
        ));
    }
}
