//! Who a held CVC belongs to ([`CvcOwner`]) and how much of the holder each
//! owner may fill ([`CvcLimits`]).
//!
//! Invariant: `1 ≤ per_publishable_key ≤ per_merchant ≤ capacity` for limits
//! built by [`CvcLimits::new`]; [`CvcLimits::with_capacity`] may give 0s only
//! for a capacity of 0 (a holder that holds nothing).

use std::fmt;

use crate::domain::ids::ApiKeyId;
use crate::domain::tenant::Tenant;

/// Default maximum number of CVCs held at once, all merchants together.
pub const DEFAULT_CAPACITY: usize = 100_000;
/// A merchant's default share: a tenth of the capacity.
const MERCHANT_DIVISOR: usize = 10;
/// A publishable key's default share: a twentieth of the capacity.
const PUBLISHABLE_KEY_DIVISOR: usize = 20;

/// The owner of a held CVC: the merchant and mode that tokenized it and, when
/// it came through a publishable key, that key.
///
/// A publishable key is public (it is embedded in the merchant's pages), so
/// anyone can tokenize through it: it gets a share of its own, inside its
/// merchant's, and a flood through it evicts only its own CVCs. Secret and
/// restricted keys (and operators) are the merchant's own servers: their CVCs
/// count against the merchant's share directly.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CvcOwner {
    tenant: Tenant,
    publishable_key: Option<ApiKeyId>,
}

impl CvcOwner {
    /// `publishable_key`: the key that tokenized, if it is a publishable key.
    pub fn new(tenant: Tenant, publishable_key: Option<ApiKeyId>) -> Self {
        Self {
            tenant,
            publishable_key,
        }
    }

    pub fn tenant(&self) -> &Tenant {
        &self.tenant
    }

    pub fn publishable_key(&self) -> Option<&ApiKeyId> {
        self.publishable_key.as_ref()
    }
}

/// How many CVCs the holder keeps: in all, per merchant (and mode), and per
/// publishable key. Shares are ceilings, not reservations: together they may
/// add up to more than the capacity, which stays a hard bound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CvcLimits {
    capacity: usize,
    per_merchant: usize,
    per_publishable_key: usize,
}

/// Why configured limits were refused. Names the setting.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CvcLimitsError {
    #[error("{0} must be at least 1")]
    Zero(&'static str),
    #[error("cvc_per_merchant ({per_merchant}) may not exceed cvc_capacity ({capacity})")]
    MerchantAboveCapacity { per_merchant: usize, capacity: usize },
    #[error("cvc_per_publishable_key ({per_key}) may not exceed cvc_per_merchant ({per_merchant})")]
    KeyAboveMerchant { per_key: usize, per_merchant: usize },
}

impl CvcLimits {
    /// Limits from configuration: a share left out is derived from the
    /// capacity as in [`CvcLimits::with_capacity`] (and a derived key share
    /// never exceeds the merchant's share).
    pub fn new(
        capacity: usize,
        per_merchant: Option<usize>,
        per_publishable_key: Option<usize>,
    ) -> Result<Self, CvcLimitsError> {
        if capacity == 0 {
            return Err(CvcLimitsError::Zero("cvc_capacity"));
        }
        let derived = Self::with_capacity(capacity);
        let per_merchant = per_merchant.unwrap_or(derived.per_merchant);
        let per_key = per_publishable_key.unwrap_or(derived.per_publishable_key.min(per_merchant));
        if per_merchant == 0 {
            return Err(CvcLimitsError::Zero("cvc_per_merchant"));
        }
        if per_key == 0 {
            return Err(CvcLimitsError::Zero("cvc_per_publishable_key"));
        }
        if per_merchant > capacity {
            return Err(CvcLimitsError::MerchantAboveCapacity { per_merchant, capacity });
        }
        if per_key > per_merchant {
            return Err(CvcLimitsError::KeyAboveMerchant { per_key, per_merchant });
        }
        Ok(Self {
            capacity,
            per_merchant,
            per_publishable_key: per_key,
        })
    }

    /// `capacity` in all, a tenth of it per merchant and a twentieth per
    /// publishable key (at least 1 each, when the capacity is not 0).
    pub fn with_capacity(capacity: usize) -> Self {
        let share = |divisor: usize| (capacity / divisor).max(1).min(capacity);
        Self {
            capacity,
            per_merchant: share(MERCHANT_DIVISOR),
            per_publishable_key: share(PUBLISHABLE_KEY_DIVISOR),
        }
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }

    pub fn per_merchant(&self) -> usize {
        self.per_merchant
    }

    pub fn per_publishable_key(&self) -> usize {
        self.per_publishable_key
    }
}

impl Default for CvcLimits {
    fn default() -> Self {
        Self::with_capacity(DEFAULT_CAPACITY)
    }
}

impl fmt::Display for CvcLimits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} CVCs, {} per merchant, {} per publishable key",
            self.capacity, self.per_merchant, self.per_publishable_key
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_default_to_a_tenth_and_a_twentieth_of_the_capacity() {
        let d = CvcLimits::default();
        assert_eq!(
            (d.capacity(), d.per_merchant(), d.per_publishable_key()),
            (100_000, 10_000, 5_000)
        );
        assert_eq!(CvcLimits::new(100_000, None, None), Ok(d));
        let tiny = CvcLimits::with_capacity(3);
        assert_eq!((tiny.per_merchant(), tiny.per_publishable_key()), (1, 1));
        let none = CvcLimits::with_capacity(0);
        assert_eq!((none.per_merchant(), none.per_publishable_key()), (0, 0));
    }

    #[test]
    fn one_large_merchant_may_take_most_but_never_more_than_the_capacity() {
        let big = CvcLimits::new(100_000, Some(80_000), None).unwrap();
        assert_eq!((big.per_merchant(), big.per_publishable_key()), (80_000, 5_000));
        // A merchant share below the derived key share lowers the key share.
        let small = CvcLimits::new(100_000, Some(2_000), None).unwrap();
        assert_eq!(small.per_publishable_key(), 2_000);
        assert_eq!(
            CvcLimits::new(100_000, Some(100_001), None),
            Err(CvcLimitsError::MerchantAboveCapacity {
                per_merchant: 100_001,
                capacity: 100_000
            })
        );
        assert_eq!(
            CvcLimits::new(100_000, None, Some(10_001)),
            Err(CvcLimitsError::KeyAboveMerchant {
                per_key: 10_001,
                per_merchant: 10_000
            })
        );
        for (capacity, merchant, key) in [(0, None, None), (10, Some(0), None), (10, None, Some(0))] {
            assert!(matches!(
                CvcLimits::new(capacity, merchant, key),
                Err(CvcLimitsError::Zero(_))
            ));
        }
    }
}
