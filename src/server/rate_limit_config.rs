//! `[rate_limits]` and `[redis]`: the quotas of each route class, and the
//! Redis that shares the buckets between replicas (see
//! `services::rate_limit`; operators: docs/operations.md).

use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::domain::time::parse_duration;
use crate::services::rate_limit::{ClassQuotas, Quota, RateLimitPolicy};

use super::StartupError;

/// Token buckets (`burst` at once, then `per_minute`); a zero turns one off.
/// The `tokenize_*` keys are the tokenization class; `read`, `write` and
/// `unauthenticated` the other classes, each with the same four quotas.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitsConfig {
    /// Card tokenizations per publishable key.
    pub tokenize_per_publishable_key: Quota,
    /// Card tokenizations with a publishable key per client address (IPv6:
    /// per /64).
    pub tokenize_per_client_ip: Quota,
    /// Card tokenizations per secret or restricted key; unset: unlimited.
    pub tokenize_per_private_key: Option<Quota>,
    /// Card tokenizations per merchant (and mode), every key; unset: unlimited.
    pub tokenize_per_merchant: Option<Quota>,
    /// `GET` requests under `/v1`.
    pub read: ClassConfig,
    /// Every other `/v1` request but tokenization.
    pub write: ClassConfig,
    /// The card fields page and its assets, the 3-D Secure page, the OpenAPI
    /// document (per client address only).
    pub unauthenticated: ClassConfig,
}

/// One class's quotas. An unset quota keeps its default (see
/// `RateLimitPolicy::default`); a zero burst or rate turns it off.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClassConfig {
    pub per_publishable_key: Option<Quota>,
    pub per_private_key: Option<Quota>,
    pub per_merchant: Option<Quota>,
    pub per_client_ip: Option<Quota>,
}

impl ClassConfig {
    fn quotas(&self, default: ClassQuotas) -> ClassQuotas {
        ClassQuotas {
            per_publishable_key: self.per_publishable_key.or(default.per_publishable_key),
            per_private_key: self.per_private_key.or(default.per_private_key),
            per_merchant: self.per_merchant.or(default.per_merchant),
            per_client_ip: self.per_client_ip.or(default.per_client_ip),
        }
    }
}

impl Default for RateLimitsConfig {
    fn default() -> Self {
        let policy = RateLimitPolicy::default();
        let off = Quota {
            burst: 0,
            per_minute: 0,
        };
        Self {
            tokenize_per_publishable_key: policy.tokenize.per_publishable_key.unwrap_or(off),
            tokenize_per_client_ip: policy.tokenize.per_client_ip.unwrap_or(off),
            tokenize_per_private_key: policy.tokenize.per_private_key,
            tokenize_per_merchant: policy.tokenize.per_merchant,
            read: ClassConfig::default(),
            write: ClassConfig::default(),
            unauthenticated: ClassConfig::default(),
        }
    }
}

impl RateLimitsConfig {
    pub fn policy(&self) -> RateLimitPolicy {
        let defaults = RateLimitPolicy::default();
        RateLimitPolicy {
            tokenize: ClassQuotas {
                per_publishable_key: Some(self.tokenize_per_publishable_key),
                per_private_key: self.tokenize_per_private_key,
                per_merchant: self.tokenize_per_merchant,
                per_client_ip: Some(self.tokenize_per_client_ip),
            },
            read: self.read.quotas(defaults.read),
            write: self.write.quotas(defaults.write),
            unauthenticated: self.unauthenticated.quotas(defaults.unauthenticated),
        }
    }
}

/// `[redis]`: with `url` set, every replica takes its tokens from the same
/// buckets in this Redis.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port/db` or `redis+unix:///path/to.sock`
    /// (a secret: it may hold a password). Without `--dev`, a TCP address
    /// must be a loopback one: this build speaks to Redis without TLS.
    pub url: Option<SecretString>,
    /// Prefix of every key (several gateways may share one Redis).
    pub key_prefix: String,
    /// How long a request waits for Redis before it falls back to this
    /// replica's own buckets, e.g. `50ms`.
    pub timeout: String,
}

impl Default for RedisConfig {
    fn default() -> Self {
        Self {
            url: None,
            key_prefix: "paywarden:rl".into(),
            timeout: "50ms".into(),
        }
    }
}

/// The shared rate-limit store, resolved and checked.
#[derive(Debug)]
pub struct RedisSettings {
    pub url: SecretString,
    pub key_prefix: String,
    pub timeout: Duration,
}

impl RedisConfig {
    /// `None` without a URL. The timeout must lie in 1 ms ..= 5 s; outside
    /// `dev`, a TCP URL must name a loopback host.
    pub fn settings(&self, dev: bool) -> Result<Option<RedisSettings>, StartupError> {
        let Some(url) = &self.url else { return Ok(None) };
        let timeout =
            parse_duration(&self.timeout).map_err(|e| StartupError::Invalid(format!("redis.timeout: {e}")))?;
        if timeout < Duration::from_millis(1) || timeout > Duration::from_secs(5) {
            return Err(StartupError::Invalid(
                "redis.timeout must lie between 1ms and 5s".into(),
            ));
        }
        if self.key_prefix.is_empty() || self.key_prefix.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(StartupError::Invalid(
                "redis.key_prefix must be non-empty, without spaces or control characters".into(),
            ));
        }
        check_transport(url.expose_secret(), dev)?;
        Ok(Some(RedisSettings {
            url: url.clone(),
            key_prefix: self.key_prefix.clone(),
            timeout,
        }))
    }
}

/// Redis without TLS only on this host: a password and the buckets never
/// cross a network in clear. The error names no part of the URL.
fn check_transport(url: &str, dev: bool) -> Result<(), StartupError> {
    let parsed = url::Url::parse(url).map_err(|_| StartupError::Invalid("redis.url is not a valid URL".into()))?;
    match parsed.scheme() {
        "redis+unix" | "unix" => Ok(()),
        "redis" => {
            let loopback = match parsed.host() {
                Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
                Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
                // `redis:` is not a special scheme: an IP address comes
                // back as an opaque host name.
                Some(url::Host::Domain(d)) => {
                    d.eq_ignore_ascii_case("localhost")
                        || d.trim_start_matches('[')
                            .trim_end_matches(']')
                            .parse::<std::net::IpAddr>()
                            .is_ok_and(|ip| ip.is_loopback())
                }
                None => false,
            };
            if loopback || dev {
                Ok(())
            } else {
                Err(StartupError::Invalid(
                    "redis.url must name a loopback address or a unix socket (this build has no TLS to Redis; \
                     run Redis, or a TLS tunnel to it, on this host)"
                        .into(),
                ))
            }
        }
        _ => Err(StartupError::Invalid(
            "redis.url must start with redis:// or redis+unix://".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redis(url: &str) -> RedisConfig {
        RedisConfig {
            url: Some(SecretString::from(url.to_owned())),
            ..RedisConfig::default()
        }
    }

    #[test]
    fn redis_is_off_by_default_and_only_local_without_tls() {
        assert!(RedisConfig::default().settings(false).unwrap().is_none());
        let s = redis("redis://127.0.0.1:6379/0").settings(false).unwrap().unwrap();
        assert_eq!(s.timeout, Duration::from_millis(50));
        assert!(redis("redis+unix:///run/redis.sock").settings(false).unwrap().is_some());
        for local in [
            "redis://localhost:6379",
            "redis://[::1]:6379",
            "redis://:pw@127.0.0.2/1",
        ] {
            assert!(redis(local).settings(false).is_ok(), "{local}");
        }
        for remote in [
            "redis://10.0.0.5:6379",
            "redis://[2001:db8::1]:6379",
            "redis://127.0.0.1.evil.example",
        ] {
            assert!(redis(remote).settings(false).is_err(), "{remote}");
            assert!(redis(remote).settings(true).is_ok(), "--dev allows {remote}");
        }
        let remote = redis("redis://:hunter2@cache.internal:6379")
            .settings(false)
            .unwrap_err()
            .to_string();
        assert!(
            remote.contains("loopback") && !remote.contains("hunter2") && !remote.contains("cache.internal"),
            "{remote}"
        );
        assert!(redis("http://127.0.0.1").settings(false).is_err());
        let mut slow = redis("redis://127.0.0.1");
        slow.timeout = "10s".into();
        assert!(slow.settings(false).is_err());
    }

    #[test]
    fn the_default_config_is_the_default_policy() {
        assert_eq!(RateLimitsConfig::default().policy(), RateLimitPolicy::default());
    }

    #[test]
    fn a_class_quota_set_keeps_the_others_at_their_defaults_and_zero_turns_one_off() {
        let config: RateLimitsConfig = toml_config(
            "[read]\nper_private_key = { burst = 5, per_minute = 60 }\n[unauthenticated]\nper_client_ip = { burst = 0, per_minute = 0 }\n",
        );
        let policy = config.policy();
        let defaults = RateLimitPolicy::default();
        assert_eq!(
            policy.read.per_private_key,
            Some(Quota {
                burst: 5,
                per_minute: 60
            })
        );
        assert_eq!(policy.read.per_publishable_key, defaults.read.per_publishable_key);
        assert_eq!(policy.read.per_client_ip, defaults.read.per_client_ip);
        assert!(policy.unauthenticated.per_client_ip.and_then(Quota::gcra).is_none());
        assert_eq!(policy.write, defaults.write);
    }

    fn toml_config(text: &str) -> RateLimitsConfig {
        use figment::providers::{Format, Toml};
        figment::Figment::from(Toml::string(text)).extract().unwrap()
    }
}
