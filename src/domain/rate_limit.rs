//! Token buckets as arithmetic: a [`Quota`] (`burst` at once, then
//! `per_minute`) and the GCRA decision ([`Gcra::decide`]) that every bucket
//! store applies, the in-process one in Rust and the Redis one in the Lua
//! script of `store::redis_buckets`, which mirrors [`Gcra::decide`] line by
//! line. A bucket's whole state is one number: its theoretical arrival time
//! (TAT), in microseconds on the store's own clock.

use std::time::Duration;

/// A bucket's size and refill rate: `burst` requests at once, then
/// `per_minute` a minute. A zero in either turns the bucket off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Quota {
    pub burst: u32,
    pub per_minute: u32,
}

impl Quota {
    /// The GCRA parameters, or `None` for a quota that limits nothing.
    pub fn gcra(self) -> Option<Gcra> {
        if self.burst == 0 || self.per_minute == 0 {
            return None;
        }
        let interval_us = (60_000_000 / u64::from(self.per_minute)).max(1);
        Some(Gcra {
            interval_us,
            burst: self.burst,
        })
    }
}

/// The generic cell rate algorithm of one quota: one token every
/// `interval_us`, at most `burst` held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gcra {
    pub interval_us: u64,
    pub burst: u32,
}

/// What taking one token from a bucket said.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// The bucket's size (`RateLimit-Limit`).
    pub limit: u32,
    /// Tokens left after this request (`RateLimit-Remaining`).
    pub remaining: u32,
    /// Until the bucket is full again (`RateLimit-Reset`).
    pub reset: Duration,
    /// Refused: until one token is there (`Retry-After`); zero when allowed.
    pub retry_after: Duration,
}

impl Gcra {
    /// The tolerance: how far ahead of now the TAT may run.
    fn tau(self) -> u64 {
        self.interval_us.saturating_mul(u64::from(self.burst))
    }

    /// Takes one token at `now` from a bucket whose TAT is `tat` (`None`: a
    /// full bucket). Returns the decision and, when allowed, the new TAT to
    /// store (a refusal changes nothing).
    pub fn decide(self, tat: Option<u64>, now: u64) -> (Decision, Option<u64>) {
        let tau = self.tau();
        let tat = tat.unwrap_or(now).max(now);
        let new_tat = tat.saturating_add(self.interval_us);
        let allow_at = new_tat.saturating_sub(tau);
        if allow_at > now {
            let decision = Decision {
                allowed: false,
                limit: self.burst,
                remaining: 0,
                reset: Duration::from_micros(tat - now),
                retry_after: Duration::from_micros(allow_at - now),
            };
            return (decision, None);
        }
        let left = (now.saturating_add(tau) - new_tat) / self.interval_us;
        let decision = Decision {
            allowed: true,
            limit: self.burst,
            remaining: u32::try_from(left).unwrap_or(self.burst),
            reset: Duration::from_micros(new_tat - now),
            retry_after: Duration::ZERO,
        };
        (decision, Some(new_tat))
    }

    /// How long a bucket's state must be kept: after its TAT it is full
    /// again and may be forgotten.
    pub fn expires_in(new_tat: u64, now: u64) -> Duration {
        Duration::from_micros(new_tat.saturating_sub(now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_gives_its_burst_then_one_token_per_interval() {
        let g = Quota {
            burst: 3,
            per_minute: 60,
        }
        .gcra()
        .unwrap();
        assert_eq!(g.interval_us, 1_000_000);
        let mut tat = None;
        let now = 5_000_000;
        for left in [2, 1, 0] {
            let (d, next) = g.decide(tat, now);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
            tat = next;
        }
        let (refused, unchanged) = g.decide(tat, now);
        assert!(!refused.allowed);
        assert_eq!(unchanged, None);
        assert_eq!(refused.retry_after, Duration::from_secs(1));
        assert_eq!(refused.reset, Duration::from_secs(3));
        // One interval later exactly one token is back.
        let (d, next) = g.decide(tat, now + 1_000_000);
        assert!(d.allowed && d.remaining == 0, "{d:?}");
        assert!(!g.decide(next, now + 1_000_000).0.allowed);
        // Idle long enough, the bucket is full again.
        assert_eq!(g.decide(next, now + 100_000_000).0.remaining, 2);
    }

    #[test]
    fn a_zero_quota_limits_nothing() {
        assert!(Quota {
            burst: 0,
            per_minute: 10
        }
        .gcra()
        .is_none());
        assert!(Quota {
            burst: 10,
            per_minute: 0
        }
        .gcra()
        .is_none());
    }
}
