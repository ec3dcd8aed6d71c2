//! Counting windows with a baseline of their own history, per subject, in
//! this process: the cheap part of every detector on the request path (one
//! lock of one shard, a hash lookup, an add).
//!
//! Time is cut into windows of `length`; a subject's count in the current
//! window is compared with its baseline, an exponentially weighted mean of
//! its closed windows (an idle window counts as zero). A finding is made when
//! the count reaches the threshold `max(min, factor × baseline)` once the
//! subject has `history` closed windows (none: a first window is judged by
//! `min` alone), and again, as `Critical`, at `critical_factor` times the
//! threshold; at most once each per window.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hash, RandomState};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use crate::domain::anomaly::Severity;
use crate::domain::time::Timestamp;

/// Weight of the newest closed window in the baseline.
const ALPHA: f64 = 0.3;
/// Shards of the subject map (fewer collisions on the lock).
const SHARDS: usize = 16;
/// Subjects kept per shard; when full, idle ones go, then all.
const PER_SHARD: usize = 4096;

/// How a window decides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub length: Duration,
    /// The fewest events in a window that can be a finding.
    pub min: u64,
    /// How many times its baseline a window must reach.
    pub factor: f64,
    /// A finding is `Critical` at this many times the threshold.
    pub critical_factor: f64,
    /// Closed windows a subject needs before its baseline counts.
    pub history: u32,
}

impl Threshold {
    fn length_ms(&self) -> i64 {
        i64::try_from(self.length.as_millis()).unwrap_or(i64::MAX).max(1)
    }

    /// The start of the window holding `at`.
    pub fn window_start(&self, at: Timestamp) -> Timestamp {
        let ms = self.length_ms();
        Timestamp::from_millis(at.as_millis().div_euclid(ms) * ms)
    }
}

/// A window that crossed its threshold.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Finding {
    pub severity: Severity,
    pub observed: i64,
    pub baseline: i64,
    pub window_start: Timestamp,
}

#[derive(Debug, Clone, Copy)]
struct State {
    index: i64,
    count: u64,
    baseline: f64,
    closed: u32,
    raised: Option<Severity>,
}

impl State {
    fn new(index: i64) -> Self {
        Self {
            index,
            count: 0,
            baseline: 0.0,
            closed: 0,
            raised: None,
        }
    }

    /// Closes the windows before `index` into the baseline.
    fn roll(&mut self, index: i64) {
        if index <= self.index {
            return;
        }
        let passed = index.saturating_sub(self.index);
        self.baseline = ALPHA * self.count as f64 + (1.0 - ALPHA) * self.baseline;
        // Idle windows decay the baseline (past a few dozen it is ~0 anyway).
        for _ in 1..passed.min(64) {
            self.baseline *= 1.0 - ALPHA;
        }
        self.closed = self.closed.saturating_add(u32::try_from(passed).unwrap_or(u32::MAX));
        self.count = 0;
        self.raised = None;
        self.index = index;
    }

    fn judge(&mut self, t: &Threshold, window_start: Timestamp) -> Option<Finding> {
        if self.closed < t.history {
            return None;
        }
        let baseline = self.baseline;
        let threshold = (t.min as f64).max(t.factor * baseline).max(1.0);
        let count = self.count as f64;
        let severity = if count >= threshold * t.critical_factor {
            Severity::Critical
        } else if count >= threshold {
            Severity::Warning
        } else {
            return None;
        };
        let new = matches!(
            (self.raised, severity),
            (None, _) | (Some(Severity::Warning), Severity::Critical)
        );
        if !new {
            return None;
        }
        self.raised = Some(severity);
        Some(Finding {
            severity,
            observed: i64::try_from(self.count).unwrap_or(i64::MAX),
            baseline: baseline.round() as i64,
            window_start,
        })
    }
}

/// Windows per subject `K`.
pub struct Windows<K> {
    threshold: Threshold,
    hasher: RandomState,
    shards: Vec<Mutex<HashMap<K, State>>>,
}

impl<K: Hash + Eq + Clone> Windows<K> {
    pub fn new(threshold: Threshold) -> Self {
        Self {
            threshold,
            hasher: RandomState::new(),
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
        }
    }

    pub fn threshold(&self) -> &Threshold {
        &self.threshold
    }

    /// Adds `n` events of `subject` at `now`; a finding if its window just
    /// crossed a threshold.
    pub fn add(&self, subject: &K, now: Timestamp, n: u64) -> Option<Finding> {
        self.update(subject, now, |count| count.saturating_add(n))
    }

    /// Sets the count of `subject`'s window to at least `total` (a count
    /// kept elsewhere, e.g. shared by every replica in the database).
    pub fn observe_total(&self, subject: &K, now: Timestamp, total: u64) -> Option<Finding> {
        self.update(subject, now, |count| count.max(total))
    }

    fn update(&self, subject: &K, now: Timestamp, f: impl FnOnce(u64) -> u64) -> Option<Finding> {
        let t = self.threshold;
        let index = now.as_millis().div_euclid(t.length_ms());
        let shard = self.shards.get(self.hasher.hash_one(subject) as usize % SHARDS)?;
        let mut map = shard.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= PER_SHARD && !map.contains_key(subject) {
            map.retain(|_, s| index.saturating_sub(s.index) < 64);
            if map.len() >= PER_SHARD {
                map.clear();
            }
        }
        let state = match map.get_mut(subject) {
            Some(state) => state,
            None => map.entry(subject.clone()).or_insert_with(|| State::new(index)),
        };
        state.roll(index);
        state.count = f(state.count);
        state.judge(&t, Timestamp::from_millis(index.saturating_mul(t.length_ms())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn threshold(history: u32) -> Threshold {
        Threshold {
            length: Duration::from_secs(10),
            min: 5,
            factor: 3.0,
            critical_factor: 4.0,
            history,
        }
    }

    fn at(secs: i64) -> Timestamp {
        Timestamp::from_millis(1_800_000_000_000 + secs * 1000)
    }

    #[test]
    fn a_burst_over_the_minimum_is_found_once_then_escalates_once() {
        let w = Windows::new(threshold(0));
        let found: Vec<_> = (0..25).filter_map(|_| w.add(&"ip", at(1), 1)).collect();
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!((found[0].severity, found[0].observed), (Severity::Warning, 5));
        assert_eq!((found[1].severity, found[1].observed), (Severity::Critical, 20));
        assert_eq!(found[0].window_start, w.threshold().window_start(at(1)));
        assert!(w.add(&"other", at(1), 4).is_none(), "per subject");
    }

    #[test]
    fn the_threshold_follows_the_subjects_own_history() {
        let w = Windows::new(threshold(3));
        // Steady 10 per window: the first windows are history only.
        for window in 0..6 {
            assert!(w.add(&"key", at(window * 10), 10).is_none(), "window {window}");
        }
        // Twice the usual is not a spike (threshold 3x the baseline ~10).
        assert!(w.add(&"key", at(60), 20).is_none());
        let spike = w.add(&"key", at(70), 40).expect("four times the usual is");
        assert_eq!(spike.observed, 40);
        assert!((8..=12).contains(&spike.baseline), "{spike:?}");
        // A new subject has no history yet: nothing is judged.
        assert!(w.add(&"new", at(70), 1000).is_none());
    }

    #[test]
    fn a_shared_total_is_judged_like_a_local_count() {
        let w = Windows::new(threshold(0));
        assert!(w.observe_total(&"ip", at(0), 4).is_none());
        assert_eq!(w.observe_total(&"ip", at(0), 6).map(|f| f.observed), Some(6));
        assert!(w.observe_total(&"ip", at(0), 3).is_none(), "never counts down");
    }
}
