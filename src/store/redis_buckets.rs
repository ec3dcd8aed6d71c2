//! Token buckets in Redis, shared by every replica: one Lua script per take
//! (one round trip, atomic on the server, on the server's clock, so replicas'
//! clocks need not agree). The script is [`Gcra::decide`] in Lua; the
//! bucket's TAT is one string key that expires when the bucket is full.
//!
//! Keys are built by the caller (namespaced, subjects hashed); nothing here
//! logs a key or the URL (which may hold a password).

use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::FutureExt as _;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::rate_limit::{Decision, Gcra};

use super::fault::{Fault, FaultKind};
use super::ports::RateBuckets;
use super::StoreError;

/// [`Gcra::decide`], line by line. Numbers are microseconds (doubles hold
/// them exactly below 2^53, about 285 years); `%.0f` writes the TAT back
/// without the 14-digit rounding of Lua's own number formatting.
const TAKE: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tau = interval * burst
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - tau
if allow_at > now then
  return {0, 0, tat - now, allow_at - now}
end
local ttl = math.ceil((new_tat - now) / 1000)
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX', ttl)
return {1, math.floor((now + tau - new_tat) / interval), new_tat - now, 0}
";

/// Buckets in one Redis (or a Redis-compatible server).
pub struct RedisBuckets {
    connection: ConnectionManager,
    script: redis::Script,
}

impl std::fmt::Debug for RedisBuckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisBuckets")
    }
}

fn fault(kind: FaultKind, e: &redis::RedisError) -> StoreError {
    StoreError::Unavailable(Fault::new(kind, format!("redis: {e}")))
}

impl RedisBuckets {
    /// A client of `url` (`redis://host:port/db` or `redis+unix:///path`)
    /// that connects on first use and reconnects by itself; each command
    /// and each connection attempt gives up after `timeout`.
    pub fn new(url: &SecretString, timeout: Duration) -> Result<Self, StoreError> {
        let client = redis::Client::open(url.expose_secret()).map_err(|e| {
            StoreError::Unavailable(Fault::new(FaultKind::Unavailable, format!("redis url: {:?}", e.kind())))
        })?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(timeout))
            .set_connection_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        let connection =
            ConnectionManager::new_lazy_with_config(client, config).map_err(|e| fault(FaultKind::Unavailable, &e))?;
        Ok(Self {
            connection,
            script: redis::Script::new(TAKE),
        })
    }
}

fn micros(n: i64) -> Duration {
    Duration::from_micros(u64::try_from(n).unwrap_or(0))
}

impl RateBuckets for RedisBuckets {
    fn take<'a>(&'a self, key: &'a str, gcra: Gcra) -> BoxFuture<'a, Result<Decision, StoreError>> {
        async move {
            let mut connection = self.connection.clone();
            let answer: Vec<i64> = self
                .script
                .key(key)
                .arg(gcra.interval_us)
                .arg(gcra.burst)
                .invoke_async(&mut connection)
                .await
                .map_err(|e| fault(FaultKind::Unavailable, &e))?;
            let [allowed, remaining, reset, retry_after] = answer.as_slice() else {
                return Err(StoreError::Corrupt(format!(
                    "redis: the bucket script answered {} values, not 4",
                    answer.len()
                )));
            };
            Ok(Decision {
                allowed: *allowed == 1,
                limit: gcra.burst,
                remaining: u32::try_from(*remaining).unwrap_or(0),
                reset: micros(*reset),
                retry_after: micros(*retry_after),
            })
        }
        .boxed()
    }

    fn ping(&self) -> BoxFuture<'_, Result<(), StoreError>> {
        async move {
            let mut connection = self.connection.clone();
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
                .map(drop)
                .map_err(|e| fault(FaultKind::Unavailable, &e))
        }
        .boxed()
    }
}
