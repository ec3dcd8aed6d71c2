//! Bursts of failed authentication per client address (bad keys): the count
//! is the database's (`LockoutStore::auth_failures_since`, recorded by every
//! replica), so a burst spread over two replicas is one burst; the baseline
//! is this address's own history of failures per window.

use std::net::IpAddr;

use crate::domain::time::Timestamp;

use super::super::window::{Finding, Threshold, Windows};

pub struct AuthFailureBurst {
    windows: Windows<IpAddr>,
}

impl AuthFailureBurst {
    pub fn new(threshold: Threshold) -> Self {
        Self {
            windows: Windows::new(threshold),
        }
    }

    /// Where the shared count starts for a failure at `now`.
    pub fn window_start(&self, now: Timestamp) -> Timestamp {
        self.windows.threshold().window_start(now)
    }

    pub fn threshold(&self) -> &Threshold {
        self.windows.threshold()
    }

    /// `failures`: every replica's failures from `ip` in the current window.
    pub fn observe(&self, ip: IpAddr, failures: u64, now: Timestamp) -> Option<Finding> {
        self.windows.observe_total(&ip, now, failures)
    }
}
