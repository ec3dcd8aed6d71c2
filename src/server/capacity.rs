//! The connection cap: at most `max_connections` connections are open at
//! once (from accept to close, TLS handshake included). Past it a new
//! connection is accepted and closed at once, with a reset, and a warning
//! naming the number in use is logged at most every [`WARN_EVERY`].
//!
//! Why accept-and-close rather than leaving connections in the kernel's
//! backlog until a slot frees: a client in the backlog waits, without a
//! word, for as long as the attacker holding the slots likes (or, once the
//! backlog is full, its SYNs go unanswered and it backs off for seconds at
//! a time); a reset tells it at once, so it (or the load balancer) can retry
//! another replica, and connections that do get a slot are fresh ones, not
//! ones whose client gave up long ago. The price is one accept per refused
//! connection, which is far cheaper than a TLS handshake.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

/// At most one warning per this time while the cap is hit.
pub const WARN_EVERY: Duration = Duration::from_secs(10);

/// The slots, and the refusals since the last warning.
#[derive(Debug)]
pub struct Capacity {
    slots: Arc<Semaphore>,
    max: usize,
    refused: u64,
    last_warning: Option<Instant>,
}

impl Capacity {
    pub fn new(max_connections: usize) -> Self {
        let max = max_connections.clamp(1, Semaphore::MAX_PERMITS);
        Self {
            slots: Arc::new(Semaphore::new(max)),
            max,
            refused: 0,
            last_warning: None,
        }
    }

    /// A slot for a new connection, held until the connection is dropped;
    /// `None` at the cap, after closing `stream` with a reset.
    pub fn admit(&mut self, stream: &TcpStream) -> Option<OwnedSemaphorePermit> {
        match Arc::clone(&self.slots).try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(_) => {
                // A reset (not a FIN): the client learns at once and our side
                // keeps no TIME_WAIT. Dropping the stream sends it.
                let _ = stream.set_zero_linger();
                if let Some(refused) = self.refused(Instant::now()) {
                    tracing::warn!(
                        in_use = self.in_use(),
                        max_connections = self.max,
                        refused,
                        "connection limit reached: new connections are closed at once (limits.max_connections)"
                    );
                }
                None
            }
        }
    }

    /// Counts a refusal; returns the refusals to report when a warning is due.
    fn refused(&mut self, now: Instant) -> Option<u64> {
        self.refused = self.refused.saturating_add(1);
        let due = self.last_warning.is_none_or(|t| now.duration_since(t) >= WARN_EVERY);
        if due {
            self.last_warning = Some(now);
            Some(std::mem::take(&mut self.refused))
        } else {
            None
        }
    }

    /// Connections open now.
    pub fn in_use(&self) -> usize {
        self.max.saturating_sub(self.slots.available_permits())
    }

    /// Completes once every connection has ended (every slot is back).
    pub async fn all_closed(&self) {
        let max = u32::try_from(self.max).unwrap_or(u32::MAX);
        let _ = self.slots.acquire_many(max).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings_are_at_most_one_per_period_and_count_every_refusal() {
        let mut cap = Capacity::new(1);
        let t0 = Instant::now();
        assert_eq!(cap.refused(t0), Some(1), "the first refusal warns");
        for i in 1..100 {
            assert_eq!(cap.refused(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(
            cap.refused(t0 + WARN_EVERY),
            Some(100),
            "the next warning counts them all"
        );
        assert_eq!(cap.refused(t0 + WARN_EVERY + Duration::from_secs(1)), None);
    }

    #[tokio::test]
    async fn a_connection_past_the_cap_is_reset_and_a_freed_slot_admits_again() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut cap = Capacity::new(1);
        let _first_client = TcpStream::connect(addr).await.unwrap();
        let (first, _) = listener.accept().await.unwrap();
        let slot = cap.admit(&first).unwrap();
        assert_eq!(cap.in_use(), 1);

        let mut second_client = TcpStream::connect(addr).await.unwrap();
        let (second, _) = listener.accept().await.unwrap();
        assert!(cap.admit(&second).is_none());
        drop(second);
        let mut buf = [0u8; 1];
        let read = tokio::io::AsyncReadExt::read(&mut second_client, &mut buf).await;
        assert!(read.is_err(), "reset, not a clean close: {read:?}");

        drop(slot);
        assert_eq!(cap.in_use(), 0);
        let _third_client = TcpStream::connect(addr).await.unwrap();
        let (third, _) = listener.accept().await.unwrap();
        assert!(cap.admit(&third).is_some());
    }
}
