//! PayPal's wire format, as far as this connector reads and writes it: JSON
//! bodies of Orders v2, Payments v2 and the OAuth 2.0 token call (checked
//! against the subsets in `shared/vendor-specs/paypal`), and amounts as
//! PayPal writes them (`{"currency_code": "EUR", "value": "10.50"}`, a
//! decimal string with as many decimals as the currency has). Unknown fields
//! are ignored, as PayPal adds fields without a new version.
//!
//! Invariants: a body that may hold a card number or CVC is serialised
//! straight into a zeroizing buffer and handed to the HTTP client without a
//! copy; no type here that holds PayPal's free-text `message` implements
//! `Debug`; amounts are integers of minor units converted by the currency's
//! exponent, never floats.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use crate::domain::money::{Currency, Money};

/// A JSON request body in a zeroizing buffer.
#[derive(Clone)]
pub struct JsonBody(Zeroizing<Vec<u8>>);

/// Enough for every body this connector sends (so serialising never
/// reallocates, which would leave an unzeroized copy of a card behind).
const BODY_CAPACITY: usize = 4096;

impl JsonBody {
    pub fn of<T: Serialize>(value: &T) -> Result<Self, serde_json::Error> {
        let mut buffer = Zeroizing::new(Vec::with_capacity(BODY_CAPACITY));
        serde_json::to_writer(&mut *buffer, value)?;
        Ok(Self(buffer))
    }

    /// The body for the HTTP client: the buffer itself, zeroized when the
    /// client drops it.
    pub fn into_body(mut self) -> reqwest::Body {
        let bytes = std::mem::take(&mut *self.0);
        reqwest::Body::from(bytes::Bytes::from_owner(SecretBytes(Zeroizing::new(bytes))))
    }

    #[cfg(test)]
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Bytes zeroized on drop, as the owner of a `Bytes`.
struct SecretBytes(Zeroizing<Vec<u8>>);

impl AsRef<[u8]> for SecretBytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// PayPal's `money`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Amount {
    pub currency_code: String,
    pub value: String,
}

impl Amount {
    /// `money` as PayPal writes it: 1050 EUR cents are `"10.50"`, 1050 JPY
    /// `"1050"`, 1050 KWD fils `"1.050"`.
    pub fn of(money: Money) -> Self {
        let exponent = u32::from(money.currency.exponent());
        let minor = money.amount.get();
        let value = if exponent == 0 {
            minor.to_string()
        } else {
            let scale = 10i64.pow(exponent);
            format!(
                "{}.{:0width$}",
                minor / scale,
                minor % scale,
                width = usize::try_from(exponent).unwrap_or(2)
            )
        };
        Self {
            currency_code: money.currency.code().to_owned(),
            value,
        }
    }

    /// The amount in minor units of `currency`, if it is in that currency
    /// and written with at most its decimals.
    pub fn minor_units(&self, currency: Option<Currency>) -> Option<i64> {
        let currency = match currency {
            Some(c) => c,
            None => Currency::parse(&self.currency_code).ok()?,
        };
        if currency.code() != self.currency_code {
            return None;
        }
        parse_decimal(&self.value, currency.exponent())
    }
}

/// `"10.5"` with exponent 2 is 1050; more decimals than the exponent, signs,
/// exponents or anything but digits and one point are refused.
pub fn parse_decimal(value: &str, exponent: u8) -> Option<i64> {
    let (whole, fraction) = value.split_once('.').unwrap_or((value, ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > usize::from(exponent) {
        return None;
    }
    if value.contains('.') && fraction.is_empty() {
        return None;
    }
    let mut padded = String::with_capacity(fraction.len() + usize::from(exponent));
    padded.push_str(fraction);
    while padded.len() < usize::from(exponent) {
        padded.push('0');
    }
    let scale = 10i64.checked_pow(u32::from(exponent))?;
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if padded.is_empty() { 0 } else { padded.parse().ok()? };
    whole.checked_mul(scale)?.checked_add(fraction)
}

/// `POST /v1/oauth2/token`'s answer.
#[derive(Deserialize)]
pub struct Token {
    pub access_token: String,
    pub expires_in: u64,
}

/// An order (`order` in the spec), as far as it is read.
#[derive(Deserialize)]
pub struct Order {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub purchase_units: Vec<PurchaseUnit>,
}

#[derive(Deserialize)]
pub struct PurchaseUnit {
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub payments: Option<PaymentCollection>,
}

#[derive(Deserialize, Default)]
pub struct PaymentCollection {
    #[serde(default)]
    pub authorizations: Vec<Transaction>,
    #[serde(default)]
    pub captures: Vec<Transaction>,
    #[serde(default)]
    pub refunds: Vec<Transaction>,
}

/// An authorization, capture or refund: the fields the three share.
#[derive(Debug, Deserialize)]
pub struct Transaction {
    pub id: String,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub amount: Option<Amount>,
    #[serde(default)]
    pub custom_id: Option<String>,
    #[serde(default)]
    pub processor_response: Option<ProcessorResponse>,
}

impl Transaction {
    pub fn status(&self) -> &str {
        self.status.as_deref().unwrap_or("")
    }
}

/// `processor_response`: the card network's answer.
#[derive(Debug, Deserialize)]
pub struct ProcessorResponse {
    #[serde(default)]
    pub response_code: Option<String>,
}

impl Order {
    /// The payments of the order's (only) purchase unit.
    pub fn payments(&self) -> Option<&PaymentCollection> {
        self.purchase_units.first().and_then(|u| u.payments.as_ref())
    }
}

/// The error body of every non-2xx REST answer (`error` / `error_422` in
/// the specs). `message` and `details[].description` are PayPal's free text:
/// never read, logged or passed on.
#[derive(Deserialize, Default)]
pub struct ApiError {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub details: Vec<ErrorDetail>,
}

#[derive(Deserialize)]
pub struct ErrorDetail {
    #[serde(default)]
    pub issue: Option<String>,
}

impl ApiError {
    /// The first `details[].issue`, the precise reason.
    pub fn issue(&self) -> Option<&str> {
        self.details.iter().find_map(|d| d.issue.as_deref())
    }
}

/// The card of `payment_source.card` (`card_request`): borrowed from the
/// vault's types, serialised only into a [`JsonBody`].
#[derive(Serialize)]
pub struct CardSource<'a> {
    pub number: &'a str,
    /// `YYYY-MM`.
    pub expiry: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<&'a str>,
}

#[derive(Serialize)]
pub struct PaymentSource<'a> {
    pub card: CardSource<'a>,
}

/// The body of `POST /v2/checkout/orders/{id}/authorize` and `/capture`.
#[derive(Serialize)]
pub struct WithPaymentSource<'a> {
    pub payment_source: PaymentSource<'a>,
}

/// Only short identifiers (`INSTRUMENT_DECLINED`, `UNPROCESSABLE_ENTITY`)
/// are repeated in operator messages; anything else is dropped, a string of
/// digits (which could be a card number) too.
pub fn identifier(value: Option<&str>) -> &str {
    match value {
        Some(v)
            if v.len() <= 64
                && v.bytes().next().is_some_and(|b| b.is_ascii_uppercase())
                && v.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') =>
        {
            v
        }
        Some(_) => "unrecognised",
        None => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::money::MinorUnits;

    fn money(amount: i64, currency: &str) -> Money {
        Money {
            amount: MinorUnits::parse(amount, i64::MAX).unwrap(),
            currency: Currency::parse(currency).unwrap(),
        }
    }

    #[test]
    fn amounts_are_written_with_the_currencys_decimals() {
        let cases = [
            (1050, "eur", "EUR", "10.50"),
            (5, "usd", "USD", "0.05"),
            (1050, "jpy", "JPY", "1050"),
            (1050, "kwd", "KWD", "1.050"),
            (100, "eur", "EUR", "1.00"),
        ];
        for (minor, currency, code, value) in cases {
            let amount = Amount::of(money(minor, currency));
            assert_eq!((amount.currency_code.as_str(), amount.value.as_str()), (code, value));
            let currency = Currency::parse(currency).ok();
            assert_eq!(amount.minor_units(currency), Some(minor), "{value}");
        }
    }

    #[test]
    fn decimals_are_parsed_strictly() {
        assert_eq!(parse_decimal("10.5", 2), Some(1050));
        assert_eq!(parse_decimal("10", 2), Some(1000));
        assert_eq!(parse_decimal("1050", 0), Some(1050));
        for bad in ["10.505", "-1.00", "1e3", "", ".5", "1.", "1,00", " 1.00", "10.5"] {
            let exponent = if bad == "10.5" { 0 } else { 2 };
            assert_eq!(parse_decimal(bad, exponent), None, "{bad}");
        }
        let eur = Currency::parse("eur").ok();
        let wrong = Amount {
            currency_code: "USD".into(),
            value: "1.00".into(),
        };
        assert_eq!(wrong.minor_units(eur), None, "another currency is not our amount");
    }

    #[test]
    fn a_card_body_holds_the_spec_fields() {
        let body = JsonBody::of(&WithPaymentSource {
            payment_source: PaymentSource {
                card: CardSource {
                    number: "4111111111111111",
                    expiry: "2030-12".into(),
                    security_code: Some("123"),
                    name: None,
                },
            },
        })
        .unwrap();
        let value: serde_json::Value = serde_json::from_slice(body.as_bytes()).unwrap();
        assert_eq!(
            value,
            serde_json::json!({"payment_source": {"card": {"number": "4111111111111111", "expiry": "2030-12", "security_code": "123"}}})
        );
    }

    #[test]
    fn only_identifiers_are_repeated() {
        assert_eq!(identifier(Some("INSTRUMENT_DECLINED")), "INSTRUMENT_DECLINED");
        assert_eq!(identifier(Some("4111 1111")), "unrecognised");
        assert_eq!(identifier(Some("4111111111111111")), "unrecognised");
        assert_eq!(identifier(Some("The card was declined")), "unrecognised");
        assert_eq!(identifier(None), "none");
    }
}
