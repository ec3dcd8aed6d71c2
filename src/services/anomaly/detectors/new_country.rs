//! First use of a key from a country it was never used from (offline IP to
//! country data: `CountryCode::of_address`, no network lookup). The key's
//! countries are kept in the database (`key_countries`), shared by replicas;
//! this process remembers the pairs it has seen so the request path reads
//! nothing for a known one. A key's first country is its baseline, not an
//! anomaly. Addresses without a country (private, loopback) are skipped.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use crate::domain::country::CountryCode;
use crate::domain::ids::ApiKeyId;

/// Pairs remembered; when full, forgotten (the database still knows them).
const CAPACITY: usize = 100_000;

#[derive(Default)]
pub struct NewCountry {
    seen: Mutex<HashSet<(ApiKeyId, CountryCode)>>,
}

impl NewCountry {
    /// The country of `ip`, unless this process already saw `key` used from
    /// it (then nothing is left to do).
    pub fn unseen(&self, key: &ApiKeyId, ip: IpAddr) -> Option<CountryCode> {
        let country = CountryCode::of_address(ip)?;
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        (!seen.contains(&(key.clone(), country))).then_some(country)
    }

    /// Remembers that `key` was used from `country` (recorded in the
    /// database).
    pub fn remember(&self, key: &ApiKeyId, country: CountryCode) {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= CAPACITY {
            seen.clear();
        }
        seen.insert((key.clone(), country));
    }
}
