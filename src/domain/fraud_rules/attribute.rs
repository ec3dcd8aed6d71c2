//! [`Attribute`]: the fixed set of facts about a payment a rule can test,
//! each with its [`ValueType`] and the form its values take.
//!
//! Invariant: a string literal is accepted for an attribute only in the form
//! the [`super::RiskContext`] supplies that attribute's values (lower-case
//! codes, digits, canonical IP text), so no rule compares against a value
//! that can never occur, which would make it silently never match.

use std::net::IpAddr;

use crate::domain::card::CardBrand;
use crate::domain::money::Currency;
use crate::domain::payment::CaptureMethod;

/// The values of `card.funding`.
pub const FUNDING_TYPES: [&str; 4] = ["credit", "debit", "prepaid", "unknown"];

/// A fact about a payment that a rule can test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attribute {
    /// Integer: the amount in minor units of the currency.
    Amount,
    /// String: the lower-case ISO 4217 code, e.g. `usd`.
    Currency,
    /// String: `automatic` or `manual`.
    CaptureMethod,
    /// String: the brand's API code, e.g. `visa`.
    CardBrand,
    /// String: the first six digits of the card number.
    CardBin,
    /// String: the last four digits of the card number.
    CardLast4,
    /// String: one of [`FUNDING_TYPES`].
    CardFunding,
    /// String: the lower-case ISO 3166 alpha-2 country of the card's issuer.
    CardCountry,
    /// Boolean: no payment of this merchant and mode used this card before.
    CardFirstUse,
    /// String: the lower-case ISO 3166 alpha-2 country of the customer's IP.
    CustomerIpCountry,
    /// String: the lower-case domain of the customer's e-mail address.
    CustomerEmailDomain,
    /// String: the customer's e-mail address, in lower case.
    CustomerEmail,
    /// String: the customer's IP address as `IpAddr`'s `Display` writes it.
    CustomerIp,
    /// Boolean: whether the payment is live (not test mode).
    IsLivemode,
    /// Integer: the amount as a percentage of the merchant's usual amount
    /// in this currency.
    AmountVsUsualPct,
    /// Integer: payments with this card in the last hour.
    VelocityCardPayments1h,
    /// Integer: payments with this card in the last 24 hours.
    VelocityCardPayments24h,
    /// Integer: declines of this card in the last hour.
    VelocityCardDeclines1h,
    /// Integer: declines of this card in the last 24 hours.
    VelocityCardDeclines24h,
    /// Integer: payments from this IP address in the last hour.
    VelocityIpPayments1h,
    /// Integer: payments from this IP address in the last 24 hours.
    VelocityIpPayments24h,
    /// Integer: declines of payments from this IP address in the last hour.
    VelocityIpDeclines1h,
    /// Integer: declines of payments from this IP address in the last 24 hours.
    VelocityIpDeclines24h,
    /// Integer: distinct cards used from this IP address in the last hour.
    VelocityIpDistinctCards1h,
    /// Integer: distinct cards used from this IP address in the last 24 hours.
    VelocityIpDistinctCards24h,
    /// Integer: payments with this e-mail address in the last hour.
    VelocityEmailPayments1h,
    /// Integer: payments with this e-mail address in the last 24 hours.
    VelocityEmailPayments24h,
}

/// The type of an attribute's values and of the literals it is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    Integer,
    String,
    Boolean,
}

impl ValueType {
    /// The type as a message names it: "an integer".
    pub fn describe(self) -> &'static str {
        match self {
            ValueType::Integer => "an integer",
            ValueType::String => "a string",
            ValueType::Boolean => "a boolean",
        }
    }
}

/// The form of a string attribute's values.
#[derive(Clone, Copy)]
enum Form {
    Currency,
    Brand,
    Funding,
    Capture,
    Bin,
    Last4,
    Country,
    Domain,
    Email,
    Ip,
}

impl Attribute {
    /// Every attribute, in the order the documentation lists them.
    pub const ALL: [Attribute; 27] = [
        Attribute::Amount,
        Attribute::Currency,
        Attribute::CaptureMethod,
        Attribute::CardBrand,
        Attribute::CardBin,
        Attribute::CardLast4,
        Attribute::CardFunding,
        Attribute::CardCountry,
        Attribute::CardFirstUse,
        Attribute::CustomerIpCountry,
        Attribute::CustomerEmailDomain,
        Attribute::CustomerEmail,
        Attribute::CustomerIp,
        Attribute::IsLivemode,
        Attribute::AmountVsUsualPct,
        Attribute::VelocityCardPayments1h,
        Attribute::VelocityCardPayments24h,
        Attribute::VelocityCardDeclines1h,
        Attribute::VelocityCardDeclines24h,
        Attribute::VelocityIpPayments1h,
        Attribute::VelocityIpPayments24h,
        Attribute::VelocityIpDeclines1h,
        Attribute::VelocityIpDeclines24h,
        Attribute::VelocityIpDistinctCards1h,
        Attribute::VelocityIpDistinctCards24h,
        Attribute::VelocityEmailPayments1h,
        Attribute::VelocityEmailPayments24h,
    ];

    /// The name a rule uses, e.g. `card.bin`.
    pub fn name(self) -> &'static str {
        match self {
            Attribute::Amount => "amount",
            Attribute::Currency => "currency",
            Attribute::CaptureMethod => "capture_method",
            Attribute::CardBrand => "card.brand",
            Attribute::CardBin => "card.bin",
            Attribute::CardLast4 => "card.last4",
            Attribute::CardFunding => "card.funding",
            Attribute::CardCountry => "card.country",
            Attribute::CardFirstUse => "card.first_use",
            Attribute::CustomerIpCountry => "customer.ip_country",
            Attribute::CustomerEmailDomain => "customer.email_domain",
            Attribute::CustomerEmail => "customer.email",
            Attribute::CustomerIp => "customer.ip",
            Attribute::IsLivemode => "is_livemode",
            Attribute::AmountVsUsualPct => "amount_vs_usual_pct",
            Attribute::VelocityCardPayments1h => "velocity.card_payments_1h",
            Attribute::VelocityCardPayments24h => "velocity.card_payments_24h",
            Attribute::VelocityCardDeclines1h => "velocity.card_declines_1h",
            Attribute::VelocityCardDeclines24h => "velocity.card_declines_24h",
            Attribute::VelocityIpPayments1h => "velocity.ip_payments_1h",
            Attribute::VelocityIpPayments24h => "velocity.ip_payments_24h",
            Attribute::VelocityIpDeclines1h => "velocity.ip_declines_1h",
            Attribute::VelocityIpDeclines24h => "velocity.ip_declines_24h",
            Attribute::VelocityIpDistinctCards1h => "velocity.ip_distinct_cards_1h",
            Attribute::VelocityIpDistinctCards24h => "velocity.ip_distinct_cards_24h",
            Attribute::VelocityEmailPayments1h => "velocity.email_payments_1h",
            Attribute::VelocityEmailPayments24h => "velocity.email_payments_24h",
        }
    }

    /// The attribute a rule names `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    pub fn value_type(self) -> ValueType {
        match self {
            Attribute::Amount
            | Attribute::AmountVsUsualPct
            | Attribute::VelocityCardPayments1h
            | Attribute::VelocityCardPayments24h
            | Attribute::VelocityCardDeclines1h
            | Attribute::VelocityCardDeclines24h
            | Attribute::VelocityIpPayments1h
            | Attribute::VelocityIpPayments24h
            | Attribute::VelocityIpDeclines1h
            | Attribute::VelocityIpDeclines24h
            | Attribute::VelocityIpDistinctCards1h
            | Attribute::VelocityIpDistinctCards24h
            | Attribute::VelocityEmailPayments1h
            | Attribute::VelocityEmailPayments24h => ValueType::Integer,
            Attribute::IsLivemode | Attribute::CardFirstUse => ValueType::Boolean,
            Attribute::Currency
            | Attribute::CaptureMethod
            | Attribute::CardBrand
            | Attribute::CardBin
            | Attribute::CardLast4
            | Attribute::CardFunding
            | Attribute::CardCountry
            | Attribute::CustomerIpCountry
            | Attribute::CustomerEmailDomain
            | Attribute::CustomerEmail
            | Attribute::CustomerIp => ValueType::String,
        }
    }

    fn form(self) -> Option<Form> {
        Some(match self {
            Attribute::Currency => Form::Currency,
            Attribute::CaptureMethod => Form::Capture,
            Attribute::CardBrand => Form::Brand,
            Attribute::CardBin => Form::Bin,
            Attribute::CardLast4 => Form::Last4,
            Attribute::CardFunding => Form::Funding,
            Attribute::CardCountry | Attribute::CustomerIpCountry => Form::Country,
            Attribute::CustomerEmailDomain => Form::Domain,
            Attribute::CustomerEmail => Form::Email,
            Attribute::CustomerIp => Form::Ip,
            _ => return None,
        })
    }

    /// Checks that `value` is one this string attribute can take; if not,
    /// says what it must be ("a lower-case ISO 4217 code such as \"usd\"").
    pub(super) fn check_value(self, value: &str) -> Result<(), &'static str> {
        let Some(form) = self.form() else {
            return Err("no string: it is not a string attribute");
        };
        let (ok, wanted) = match form {
            Form::Currency => (
                lower(value) && Currency::parse(value).is_ok(),
                "a lower-case ISO 4217 code such as \"usd\"",
            ),
            Form::Brand => (
                CardBrand::parse(value).is_some(),
                "visa, mastercard, amex, discover, jcb, diners, unionpay or maestro",
            ),
            Form::Funding => (FUNDING_TYPES.contains(&value), "credit, debit, prepaid or unknown"),
            Form::Capture => (CaptureMethod::parse(value).is_some(), "automatic or manual"),
            Form::Bin => (digits(value, 6, 6), "6 digits"),
            Form::Last4 => (digits(value, 4, 4), "4 digits"),
            Form::Country => (
                value.len() == 2 && lower(value),
                "a lower-case ISO 3166 country code such as \"us\"",
            ),
            Form::Domain => (domain(value), "a lower-case domain such as \"example.com\""),
            Form::Email => (
                email(value),
                "a lower-case e-mail address such as \"jenny@example.com\"",
            ),
            Form::Ip => (
                value.parse::<IpAddr>().is_ok_and(|ip| ip.to_string() == value),
                "an IP address in canonical form such as \"192.0.2.1\" or \"2001:db8::1\"",
            ),
        };
        if ok {
            Ok(())
        } else {
            Err(wanted)
        }
    }

    /// Checks a `starts_with` prefix: non-empty (an empty one matches
    /// everything) and a beginning of some value the attribute can take.
    pub(super) fn check_prefix(self, prefix: &str) -> Result<(), &'static str> {
        let Some(form) = self.form() else {
            return Err("no string: it is not a string attribute");
        };
        let (ok, wanted) = match form {
            Form::Currency => (prefix.len() <= 3 && lower(prefix), "1 to 3 lower-case letters"),
            Form::Brand | Form::Funding | Form::Capture => (lower(prefix), "lower-case letters"),
            Form::Bin => (digits(prefix, 1, 6), "1 to 6 digits"),
            Form::Last4 => (digits(prefix, 1, 4), "1 to 4 digits"),
            Form::Country => (prefix.len() <= 2 && lower(prefix), "1 or 2 lower-case letters"),
            Form::Domain => (
                prefix
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.'),
                "lower-case letters, digits, '-' and '.'",
            ),
            Form::Email => (
                prefix.bytes().all(|b| email_byte(b) || b == b'@')
                    && prefix.bytes().filter(|b| *b == b'@').count() <= 1,
                "lower-case letters, digits, one '@' and . _ % + -",
            ),
            Form::Ip => (
                prefix
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || b == b'.' || b == b':'),
                "digits, a to f, '.' and ':'",
            ),
        };
        if ok && !prefix.is_empty() {
            Ok(())
        } else {
            Err(wanted)
        }
    }
}

/// Non-empty and ASCII lower-case letters only.
fn lower(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase())
}

fn digits(s: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit())
}

/// Dot-separated non-empty labels of lower-case letters, digits and `-`.
fn domain(s: &str) -> bool {
    s.split('.').all(|label| {
        !label.is_empty()
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    })
}

/// `local@domain`: a local part of lower-case letters, digits and `. _ % + -`,
/// and a [`domain`].
fn email(s: &str) -> bool {
    match s.split_once('@') {
        Some((local, host)) => !local.is_empty() && local.bytes().all(email_byte) && domain(host),
        None => false,
    }
}

fn email_byte(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}
