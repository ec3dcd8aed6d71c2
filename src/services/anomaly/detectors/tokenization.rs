//! Tokenization bursts per client address and per key: tokenizing is the
//! cheapest oracle for testing card numbers (the rate limiter bounds it; this
//! notices someone leaning on it). Each subject against its own history.

use std::net::IpAddr;

use crate::domain::ids::ApiKeyId;
use crate::domain::time::Timestamp;

use super::super::window::{Finding, Threshold, Windows};

pub struct TokenizationBurst {
    per_key: Windows<ApiKeyId>,
    per_ip: Windows<IpAddr>,
}

impl TokenizationBurst {
    pub fn new(threshold: Threshold) -> Self {
        Self {
            per_key: Windows::new(threshold),
            per_ip: Windows::new(threshold),
        }
    }

    pub fn threshold(&self) -> &Threshold {
        self.per_key.threshold()
    }

    /// One tokenization request: findings for the key, then the address.
    pub fn observe(&self, key: &ApiKeyId, ip: IpAddr, now: Timestamp) -> (Option<Finding>, Option<Finding>) {
        (self.per_key.add(key, now, 1), self.per_ip.add(&ip, now, 1))
    }
}
