//! The facts the rules language reads about one payment
//! ([`RiskFacts`]), built from the payment, its card (as its token records
//! it: brand, BIN, last four; never the number), the mode, and the
//! gateway's own signals: the card's country and funding from the shipped
//! BIN table (`bins`), the country of the customer's IP address from the
//! offline registry data (`CountryCode::of_address`), and the velocity
//! counts, first use and usual amount (`velocity`). Shared by the screening
//! of a confirm and by the dry run, so both see the same facts.
//!
//! A fact the gateway does not know is absent (a test of it is false):
//! `card.country` for a BIN not in the table, `customer.ip_country` without
//! a customer IP or for a private or unallocated one, the velocity facts
//! when they were not read.

use crate::domain::api_key::Mode;
use crate::domain::country::CountryCode;
use crate::domain::fraud_rules::RiskFacts;
use crate::domain::payment::Payment;
use crate::domain::payment_fields::CustomerEmail;

use super::bins;
use super::velocity::Signals;

/// What the rules may read of the payment's card.
#[derive(Debug, Clone, Copy)]
pub struct CardFacts<'a> {
    pub brand: &'a str,
    pub bin: &'a str,
    pub last4: &'a str,
}

/// The strings a payment's facts borrow, made once per assessment.
#[derive(Debug)]
pub struct PaymentFacts {
    currency: String,
    email: Option<String>,
    ip: Option<String>,
    ip_country: Option<String>,
}

impl PaymentFacts {
    pub fn of(payment: &Payment) -> Self {
        Self {
            currency: payment.money().currency.api_code(),
            email: payment
                .customer_email
                .as_ref()
                .map(|e| CustomerEmail::as_str(e).to_lowercase()),
            ip: payment.customer_ip.map(|ip| ip.to_string()),
            ip_country: payment
                .customer_ip
                .and_then(CountryCode::of_address)
                .map(|c| c.as_str().to_ascii_lowercase()),
        }
    }

    /// The facts of `payment` (the one this was made of) paid with `card`,
    /// with the gateway's `signals` about it.
    pub fn facts<'a>(&'a self, payment: &'a Payment, card: Option<CardFacts<'a>>, signals: &Signals) -> RiskFacts<'a> {
        let bin = card.map(|c| bins::lookup(c.bin));
        RiskFacts {
            amount: Some(payment.money().amount.get()),
            currency: Some(&self.currency),
            capture_method: Some(payment.capture_method().as_str()),
            card_brand: card.map(|c| c.brand),
            card_bin: card.map(|c| c.bin),
            card_last4: card.map(|c| c.last4),
            card_funding: bin.map(|b| b.funding),
            card_country: bin.and_then(|b| b.country),
            card_first_use: signals.card_first_use,
            customer_ip_country: self.ip_country.as_deref(),
            customer_email_domain: self.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d),
            customer_email: self.email.as_deref(),
            customer_ip: self.ip.as_deref(),
            is_livemode: Some(payment.tenant.mode() == Mode::Live),
            amount_vs_usual_pct: signals.amount_vs_usual_pct,
            velocity: signals.velocity,
        }
    }
}
