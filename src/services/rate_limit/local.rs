//! Token buckets in this process: the GCRA's one number per bucket (its
//! TAT) in sharded maps, on a monotonic clock. Each replica has its own.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;

use super::{Bucket, Decision, Gcra, RateLimiter};

/// Shards: requests of different subjects rarely wait for one another.
const SHARDS: usize = 16;

pub struct LocalBuckets {
    shards: Vec<Mutex<HashMap<Bucket, u64>>>,
    /// The clock's zero: TATs are microseconds since.
    origin: Instant,
}

impl std::fmt::Debug for LocalBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalBuckets").finish_non_exhaustive()
    }
}

impl Default for LocalBuckets {
    fn default() -> Self {
        Self::new()
    }
}

impl LocalBuckets {
    pub fn new() -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            origin: Instant::now(),
        }
    }

    fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn shard(&self, bucket: &Bucket) -> Option<&Mutex<HashMap<Bucket, u64>>> {
        let mut h = DefaultHasher::new();
        bucket.hash(&mut h);
        let i = usize::try_from(h.finish() % SHARDS as u64).unwrap_or(0);
        self.shards.get(i)
    }

    /// Takes one token now (synchronously: no I/O).
    pub fn take_now(&self, bucket: &Bucket, gcra: Gcra) -> Decision {
        let now = self.now();
        let Some(shard) = self.shard(bucket) else {
            return gcra.decide(None, now).0;
        };
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        let tat = map.get(bucket).copied();
        let (decision, new_tat) = gcra.decide(tat, now);
        if let Some(t) = new_tat {
            match map.get_mut(bucket) {
                Some(slot) => *slot = t,
                None => {
                    map.insert(bucket.clone(), t);
                }
            }
        }
        decision
    }
}

impl RateLimiter for LocalBuckets {
    fn take<'a>(&'a self, bucket: &'a Bucket, gcra: Gcra) -> BoxFuture<'a, Decision> {
        let decision = self.take_now(bucket, gcra);
        async move { decision }.boxed()
    }

    fn forget_idle(&self) {
        let now = self.now();
        for shard in &self.shards {
            shard
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .retain(|_, tat| *tat > now);
        }
    }
}
