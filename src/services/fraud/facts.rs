//! The facts the rules language reads about one payment
//! ([`RiskFacts`]), built from the payment, its card (as its token records
//! it: brand, BIN, last four; never the number) and the mode. Shared by the
//! screening of a confirm and by the dry run, so both see the same facts.
//!
//! Facts the gateway does not know yet are absent (a test of them is
//! false): `card.funding`, `customer.ip_country` and the `velocity.*`
//! counters.

use crate::domain::api_key::Mode;
use crate::domain::fraud_rules::RiskFacts;
use crate::domain::payment::Payment;
use crate::domain::payment_fields::CustomerEmail;

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
        }
    }

    /// The facts of `payment` (the one this was made of) paid with `card`.
    pub fn facts<'a>(&'a self, payment: &'a Payment, card: Option<CardFacts<'a>>) -> RiskFacts<'a> {
        RiskFacts {
            amount: Some(payment.money().amount.get()),
            currency: Some(&self.currency),
            capture_method: Some(payment.capture_method().as_str()),
            card_brand: card.map(|c| c.brand),
            card_bin: card.map(|c| c.bin),
            card_last4: card.map(|c| c.last4),
            card_funding: None,
            customer_ip_country: None,
            customer_email_domain: self.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d),
            customer_email: self.email.as_deref(),
            customer_ip: self.ip.as_deref(),
            is_livemode: Some(payment.tenant.mode() == Mode::Live),
            velocity_card_payments_1h: None,
            velocity_ip_payments_1h: None,
            velocity_card_declines_24h: None,
        }
    }
}
