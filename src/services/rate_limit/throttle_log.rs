//! The audit of throttled requests ([`ThrottleLog`]): one entry per subject
//! (key or anonymous client, and client address) and window, not one per
//! refused request.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::domain::audit::{AuditEvent, Outcome};
use crate::domain::ids::ApiKeyId;

use super::super::actor::Actor;
use super::super::audit_writer::AuditSink;
use super::Throttled;

/// How long one audit entry speaks for a subject's throttled requests.
pub const THROTTLE_AUDIT_WINDOW: Duration = Duration::from_secs(60);

/// One subject's refusals in the current window.
struct Window {
    started: Instant,
    /// Refusals after the first, which was audited on its own.
    more: u64,
    /// The first refusal's entry, the template of the window's summary.
    first: AuditEvent,
}

/// Audits throttled requests: the first refusal of a subject (key, or no key,
/// and client address) in a window is written at once; the rest of the window is one
/// summary entry with their count, written when the window closes. A flood
/// of refusals is then a handful of entries, not a flood of its own.
pub struct ThrottleLog {
    sink: AuditSink,
    window: Duration,
    open: Mutex<HashMap<(Option<ApiKeyId>, IpAddr), Window>>,
}

impl std::fmt::Debug for ThrottleLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ThrottleLog")
    }
}

/// The action of a throttled request's entry and of a window's summary.
pub const THROTTLED: &str = "rate_limit.throttled";
pub const THROTTLED_SUMMARY: &str = "rate_limit.throttled_summary";

impl ThrottleLog {
    pub fn new(sink: AuditSink, window: Duration) -> Self {
        Self {
            sink,
            window,
            open: Mutex::new(HashMap::new()),
        }
    }

    /// Records one throttled request of `actor` (an API key, or anonymous)
    /// from `client` to `route`.
    pub async fn note(&self, actor: &Actor, client: IpAddr, route: &str, throttled: &Throttled) {
        let now = Instant::now();
        let key = match actor {
            Actor::Api { key, .. } => Some(key.clone()),
            _ => None,
        };
        let subject = (key, client);
        let (first, closed) = {
            let Ok(mut open) = self.open.lock() else { return };
            match open.get_mut(&subject) {
                Some(w) if now.duration_since(w.started) < self.window => {
                    w.more += 1;
                    (None, None)
                }
                _ => {
                    let mut event = actor.event(THROTTLED, Outcome::Denied);
                    event.resource = Some(route.to_owned());
                    event.reason = Some(format!(
                        "rate_limited by the {} {} bucket; further refusals within {} s are counted in one entry",
                        throttled.class.as_str(),
                        throttled.bucket,
                        self.window.as_secs()
                    ));
                    let previous = open.insert(
                        subject,
                        Window {
                            started: now,
                            more: 0,
                            first: event.clone(),
                        },
                    );
                    (Some(event), previous.and_then(|w| summary(&w)))
                }
            }
        };
        for event in closed.into_iter().chain(first) {
            self.sink.record(event).await;
        }
    }

    /// Writes the summaries of windows that have closed (call periodically).
    pub async fn flush(&self) {
        self.flush_older_than(self.window).await;
    }

    /// Writes the summaries of every window, open or not (at shutdown).
    pub async fn flush_all(&self) {
        self.flush_older_than(Duration::ZERO).await;
    }

    async fn flush_older_than(&self, age: Duration) {
        let now = Instant::now();
        let closed: Vec<AuditEvent> = {
            let Ok(mut open) = self.open.lock() else { return };
            let mut closed = Vec::new();
            open.retain(|_, w| {
                let done = now.duration_since(w.started) >= age;
                if done {
                    closed.extend(summary(w));
                }
                !done
            });
            closed
        };
        for event in closed {
            self.sink.record(event).await;
        }
    }
}

/// The summary entry of a closed window, if it refused more than its first.
fn summary(w: &Window) -> Option<AuditEvent> {
    (w.more > 0).then(|| {
        let mut event = w.first.clone();
        event.action = THROTTLED_SUMMARY.to_owned();
        event.at = crate::domain::time::Timestamp::now();
        event.reason = Some(format!(
            "{} more requests refused (rate_limited) in the window after the first",
            w.more
        ));
        event
    })
}
