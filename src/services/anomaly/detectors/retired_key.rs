//! Use of a revoked or rotated-out key: the key matched (it is genuine) but
//! was retired, so whoever holds it was not told, or it leaked. Per key; its
//! baseline is its own uses since it was retired (normally none).

use crate::domain::api_key::ApiKey;
use crate::domain::ids::ApiKeyId;
use crate::domain::time::Timestamp;

use super::super::window::{Finding, Threshold, Windows};

pub struct RetiredKeyUse {
    windows: Windows<ApiKeyId>,
}

impl RetiredKeyUse {
    pub fn new(threshold: Threshold) -> Self {
        Self {
            windows: Windows::new(threshold),
        }
    }

    pub fn threshold(&self) -> &Threshold {
        self.windows.threshold()
    }

    /// Whether `key` is retired: revoked, or replaced by a rotation (a key
    /// that merely expired, or is used outside its ranges, is not).
    pub fn is_retired(key: &ApiKey) -> bool {
        key.revoked_at.is_some() || key.rotated_to.is_some()
    }

    /// A refused request presented `key`.
    pub fn observe(&self, key: &ApiKey, now: Timestamp) -> Option<Finding> {
        if !Self::is_retired(key) {
            return None;
        }
        self.windows.add(&key.id, now, 1)
    }
}
