//! A tenant: one merchant's test world or live world.
//!
//! Test and live are separate worlds: every object (token, payment, refund,
//! event, webhook endpoint, idempotency record, API key) belongs to exactly
//! one merchant *and* one mode, and is only ever found by a caller of that
//! merchant and mode. The store's scoped reads and writes take a `Tenant`
//! rather than a bare merchant id, so a query without a mode cannot be
//! written; an object of the other mode answers exactly like one that does not
//! exist.

use std::fmt;

use super::api_key::Mode;
use super::ids::MerchantId;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tenant {
    merchant: MerchantId,
    mode: Mode,
}

impl Tenant {
    pub fn new(merchant: MerchantId, mode: Mode) -> Self {
        Self { merchant, mode }
    }

    pub fn merchant(&self) -> &MerchantId {
        &self.merchant
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// The merchant id as stored.
    pub fn merchant_str(&self) -> &str {
        self.merchant.as_str()
    }

    /// The mode as stored (`test` / `live`).
    pub fn mode_str(&self) -> &'static str {
        self.mode.as_str()
    }
}

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.merchant, self.mode.as_str())
    }
}
