//! Request-rate spikes per key: the key's requests in a window against its
//! own usual rate (a key needs some history before it can spike: a new
//! integration's first traffic is not an anomaly). Per replica: a spike sent
//! through several replicas is judged by each on its share.

use crate::domain::ids::ApiKeyId;
use crate::domain::time::Timestamp;

use super::super::window::{Finding, Threshold, Windows};

pub struct RequestRateSpike {
    windows: Windows<ApiKeyId>,
}

impl RequestRateSpike {
    pub fn new(threshold: Threshold) -> Self {
        Self {
            windows: Windows::new(threshold),
        }
    }

    pub fn threshold(&self) -> &Threshold {
        self.windows.threshold()
    }

    /// One authenticated request with `key`.
    pub fn observe(&self, key: &ApiKeyId, now: Timestamp) -> Option<Finding> {
        self.windows.add(key, now, 1)
    }
}
