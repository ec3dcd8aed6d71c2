//! The delivery worker's lanes: how many deliveries each endpoint has
//! claimed by this gateway and not yet sent, and whether it is failing or
//! quick.
//!
//! Invariants: an endpoint never has more deliveries in flight here (from
//! claim to the end of its request) than its cap, and a failing one (its last
//! [`FAILING_AFTER`] attempts here failed) only one: it is probed one attempt
//! at a time, on its deliveries' own retry schedule, until one succeeds. A
//! quick one (its last attempt here was a 2xx within [`QUICK`]) may have
//! [`AHEAD`] times its cap claimed, so that its next deliveries are claimed
//! while the last ones are sent and recorded; the requests it is sent at once
//! stay within its cap (the worker's per-endpoint permits). The gateway never
//! has more than its total cap in flight. Every slot taken is given back
//! once, whatever the attempt came to. Pure bookkeeping: no I/O, no clock of
//! its own.

use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Failed attempts in a row after which an endpoint gets one at a time.
pub const FAILING_AFTER: u32 = 3;

/// How many times its cap a quick endpoint may have claimed.
pub const AHEAD: usize = 4;

/// An attempt answered with a 2xx within this long makes its endpoint quick.
pub const QUICK: Duration = Duration::from_millis(500);

/// How long a failing endpoint with nothing in flight is remembered (it may
/// have been disabled or deleted meanwhile).
pub const FORGET_AFTER: Duration = Duration::from_secs(24 * 3600);

/// What became of an attempt whose slot is given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx came back.
    Delivered,
    /// A 2xx came back within [`QUICK`].
    DeliveredQuickly,
    /// Sent (or tried), and it failed.
    Failed,
    /// Never attempted: the claim was lost, or the endpoint or event is gone.
    NotSent,
}

#[derive(Debug)]
struct Lane {
    in_flight: usize,
    failures_in_a_row: u32,
    /// The last attempt was delivered within [`QUICK`].
    quick: bool,
    last_outcome_at: Instant,
}

/// Every endpoint's lane; endpoints with nothing in flight that are not
/// failing have none.
#[derive(Debug)]
pub struct Lanes {
    per_endpoint: usize,
    total_cap: usize,
    in_flight: usize,
    lanes: HashMap<String, Lane>,
}

impl Lanes {
    /// Caps of at least one.
    pub fn new(per_endpoint: usize, total: usize) -> Self {
        Self {
            per_endpoint: per_endpoint.max(1),
            total_cap: total.max(1),
            in_flight: 0,
            lanes: HashMap::new(),
        }
    }

    /// How many more attempts this gateway may start now.
    pub fn free(&self) -> usize {
        self.total_cap.saturating_sub(self.in_flight)
    }

    /// Takes a slot for an attempt to `endpoint`, if it and the gateway have
    /// one free.
    pub fn try_take(&mut self, endpoint: &str, now: Instant) -> bool {
        if self.in_flight >= self.total_cap {
            return false;
        }
        let per_endpoint = self.per_endpoint;
        let lane = self.lanes.entry(endpoint.to_owned()).or_insert(Lane {
            in_flight: 0,
            failures_in_a_row: 0,
            quick: false,
            last_outcome_at: now,
        });
        let cap = if lane.failures_in_a_row >= FAILING_AFTER {
            1
        } else if lane.quick {
            per_endpoint.saturating_mul(AHEAD)
        } else {
            per_endpoint
        };
        if lane.in_flight >= cap {
            return false;
        }
        lane.in_flight += 1;
        self.in_flight += 1;
        true
    }

    /// Gives back a slot taken with [`Lanes::try_take`].
    pub fn give_back(&mut self, endpoint: &str, outcome: Outcome, now: Instant) {
        let Some(lane) = self.lanes.get_mut(endpoint) else {
            return;
        };
        if lane.in_flight == 0 {
            return;
        }
        lane.in_flight -= 1;
        self.in_flight = self.in_flight.saturating_sub(1);
        match outcome {
            Outcome::Delivered | Outcome::DeliveredQuickly => lane.failures_in_a_row = 0,
            Outcome::Failed => lane.failures_in_a_row = lane.failures_in_a_row.saturating_add(1),
            Outcome::NotSent => {}
        }
        if outcome != Outcome::NotSent {
            lane.quick = outcome == Outcome::DeliveredQuickly;
        }
        if outcome != Outcome::NotSent {
            lane.last_outcome_at = now;
        }
        if lane.in_flight == 0 && lane.failures_in_a_row == 0 {
            self.lanes.remove(endpoint);
        }
    }

    /// Whether `endpoint` is failing (probed one attempt at a time).
    pub fn failing(&self, endpoint: &str) -> bool {
        self.lanes
            .get(endpoint)
            .is_some_and(|l| l.failures_in_a_row >= FAILING_AFTER)
    }

    /// Whether `endpoint` is quick (may have [`AHEAD`] times its cap claimed).
    pub fn quick(&self, endpoint: &str) -> bool {
        self.lanes.get(endpoint).is_some_and(|l| l.quick)
    }

    /// Attempts in flight to `endpoint`.
    pub fn in_flight(&self, endpoint: &str) -> usize {
        self.lanes.get(endpoint).map_or(0, |l| l.in_flight)
    }

    /// Forgets failing endpoints with nothing in flight whose last attempt
    /// ended more than [`FORGET_AFTER`] before `now`.
    pub fn forget_idle(&mut self, now: Instant) {
        self.lanes
            .retain(|_, l| l.in_flight > 0 || now.saturating_duration_since(l.last_outcome_at) < FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_gets_at_most_its_cap_and_others_are_not_affected() {
        let now = Instant::now();
        let mut lanes = Lanes::new(3, 100);
        assert!((0..3).all(|_| lanes.try_take("slow", now)));
        assert!(!lanes.try_take("slow", now), "the fourth attempt waits");
        assert!(lanes.try_take("healthy", now), "another endpoint is not delayed");
        assert_eq!(lanes.in_flight("slow"), 3);
        lanes.give_back("slow", Outcome::Delivered, now);
        assert!(lanes.try_take("slow", now), "a slot came back");
        assert_eq!(lanes.free(), 100 - 4);
    }

    #[test]
    fn the_gateway_total_is_a_hard_bound() {
        let now = Instant::now();
        let mut lanes = Lanes::new(8, 5);
        assert!((0..5).all(|i| lanes.try_take(&format!("e{i}"), now)));
        assert_eq!(lanes.free(), 0);
        assert!(!lanes.try_take("e9", now));
        lanes.give_back("e0", Outcome::NotSent, now);
        assert!(lanes.try_take("e9", now));
    }

    #[test]
    fn a_failing_endpoint_is_probed_one_attempt_at_a_time_until_it_succeeds() {
        let now = Instant::now();
        let mut lanes = Lanes::new(8, 100);
        for _ in 0..FAILING_AFTER {
            assert!(lanes.try_take("down", now));
            lanes.give_back("down", Outcome::Failed, now);
        }
        assert!(lanes.failing("down"));
        assert!(lanes.try_take("down", now));
        assert!(!lanes.try_take("down", now), "one probe at a time");
        lanes.give_back("down", Outcome::Failed, now);
        assert!(lanes.try_take("down", now));
        lanes.give_back("down", Outcome::Delivered, now);
        assert!(!lanes.failing("down"));
        assert!((0..8).all(|_| lanes.try_take("down", now)), "back to its full cap");
    }

    #[test]
    fn lost_claims_neither_count_as_failures_nor_leak_slots() {
        let now = Instant::now();
        let mut lanes = Lanes::new(2, 2);
        for _ in 0..10 {
            assert!(lanes.try_take("e", now));
            lanes.give_back("e", Outcome::NotSent, now);
        }
        assert!(!lanes.failing("e"));
        assert_eq!(lanes.free(), 2);
        // A slot is given back once: extra give-backs change nothing.
        lanes.give_back("e", Outcome::Failed, now);
        assert_eq!(lanes.free(), 2);
        assert!(lanes.lanes.is_empty(), "idle healthy endpoints hold no lane");
    }

    #[test]
    fn a_quick_endpoint_may_have_more_claimed_until_an_attempt_is_slow_or_fails() {
        let now = Instant::now();
        let mut lanes = Lanes::new(2, 100);
        assert!((0..2).all(|_| lanes.try_take("e", now)));
        assert!(!lanes.try_take("e", now), "unknown: its cap");
        lanes.give_back("e", Outcome::DeliveredQuickly, now);
        assert!(lanes.quick("e"));
        assert!((0..7).all(|_| lanes.try_take("e", now)), "quick: AHEAD times its cap");
        assert_eq!(lanes.in_flight("e"), 2 * AHEAD);
        assert!(!lanes.try_take("e", now));
        lanes.give_back("e", Outcome::NotSent, now);
        assert!(lanes.quick("e"), "an attempt not sent says nothing of the endpoint");
        lanes.give_back("e", Outcome::Delivered, now);
        assert!(!lanes.quick("e"), "a slow 2xx ends it");
        assert!(
            !lanes.try_take("e", now),
            "back to its cap: {} in flight",
            lanes.in_flight("e")
        );
        for _ in 0..FAILING_AFTER {
            lanes.give_back("e", Outcome::DeliveredQuickly, now);
        }
        assert!(lanes.quick("e"));
        for _ in 0..FAILING_AFTER {
            lanes.give_back("e", Outcome::Failed, now);
        }
        assert!(!lanes.quick("e") && lanes.failing("e"));
    }

    #[test]
    fn failing_endpoints_are_forgotten_after_a_day_idle() {
        let now = Instant::now();
        let mut lanes = Lanes::new(2, 10);
        for _ in 0..FAILING_AFTER {
            assert!(lanes.try_take("gone", now));
            lanes.give_back("gone", Outcome::Failed, now);
        }
        lanes.forget_idle(now + Duration::from_secs(3600));
        assert!(lanes.failing("gone"));
        lanes.forget_idle(now + FORGET_AFTER);
        assert!(!lanes.failing("gone"));
        assert!(lanes.lanes.is_empty());
    }
}
