//! The gateway's own fraud signals: what the merchant (in this mode) saw
//! earlier of a payment's card, customer IP address and e-mail address
//! (the `velocity.*` facts, `card.first_use`) and how its amount compares
//! with the merchant's usual amounts (`amount_vs_usual_pct`).
//!
//! How they are kept: every screened confirm is recorded as one
//! observation ([`Observation`]), inserted in the payment's own unit of work
//! (so the group commit carries it with the payment, and a confirm that
//! failed to commit counts nothing), never updated; the velocity facts of a
//! confirm are one query over the observations of its keys
//! ([`Fraud::signals`]); observations older than [`RETENTION`] are deleted
//! by the gateway's periodic housekeeping ([`Fraud::prune_signals`]). The
//! database is shared by every replica, so every replica sees the same
//! counts. Only tenants with an active rule set are observed: a merchant
//! without rules pays nothing, and its counts start when its first rule set
//! is activated.
//!
//! What must hold: no customer IP or e-mail address is stored in clear: the
//! keys are keyed hashes of the tenant ([`SignalKeys`]), the card its
//! fingerprint (keyed likewise); the counts of one merchant and mode are
//! never those of another. An IPv6 address counts by its /64 network, the
//! block one subscriber is usually given (rotating within it is free).
//! Each count reads at most [`MAX_COUNTED`] observations: counts saturate
//! there.
//!
//! The per-IP counts are also what other detectors may read: call
//! [`Fraud::signals`] (or [`SignalKeys::of`] and the `SignalStore` port) rather
//! than the table.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{PoisonError, RwLock};
use std::time::{Duration, Instant};

use crate::domain::fraud_rules::{IpVelocity, Velocity, Window};
use crate::domain::money::Money;
use crate::domain::payment::{Payment, PaymentStatus};
use crate::domain::payment_fields::CustomerEmail;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::services::ServiceError;
pub use crate::store::fraud_signals::MAX_COUNTED;
use crate::store::fraud_signals::{
    KeyCounts, ObservationKeys, ObservationRow, OUTCOME_ALLOWED, OUTCOME_BLOCKED, OUTCOME_DECLINED,
};
use crate::store::ports::SignalStore;
use crate::vault::fingerprint::Fingerprinter;

use super::Fraud;

/// How long observations are kept: `card.first_use` looks back this far.
pub const RETENTION: Duration = Duration::from_secs(30 * 24 * 3600);
const HOUR: Duration = Duration::from_secs(3600);
const DAY: Duration = Duration::from_secs(24 * 3600);
/// The fewest observations in a currency from which the merchant has a
/// usual amount (`amount_vs_usual_pct` is absent below).
pub const MIN_USUAL: i64 = 20;
/// How long a merchant's usual amount is reused before it is read again.
pub const USUAL_TTL: Duration = Duration::from_secs(300);
/// The most (tenant, currency) usual amounts cached.
const MAX_USUAL_ENTRIES: usize = 10_000;

/// The keys a payment's observations are counted by: the card's
/// fingerprint and keyed hashes of its customer IP and e-mail address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignalKeys {
    pub card: String,
    pub ip: Option<String>,
    pub email: Option<String>,
}

impl SignalKeys {
    /// The keys of `payment` paid with the card of fingerprint `card`.
    pub fn of(fingerprinter: &Fingerprinter, payment: &Payment, card: &str) -> Self {
        let tenant = &payment.tenant;
        Self {
            card: card.to_owned(),
            ip: payment.customer_ip.map(|ip| ip_key(fingerprinter, tenant, ip)),
            email: payment.customer_email.as_ref().map(|email| {
                let lower = CustomerEmail::as_str(email).to_lowercase();
                fingerprinter.signal_key(tenant, "email", lower.as_bytes())
            }),
        }
    }

    fn as_keys(&self) -> ObservationKeys<'_> {
        ObservationKeys {
            card_key: &self.card,
            ip_key: self.ip.as_deref(),
            email_key: self.email.as_deref(),
        }
    }
}

/// The keyed hash of an IP address: IPv4 whole, IPv6 by its /64.
fn ip_key(fingerprinter: &Fingerprinter, tenant: &Tenant, ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => fingerprinter.signal_key(tenant, "ip", &v4.octets()),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => fingerprinter.signal_key(tenant, "ip", &v4.octets()),
            None => {
                let octets = v6.octets();
                fingerprinter.signal_key(tenant, "ip6", octets.get(..8).unwrap_or_default())
            }
        },
    }
}

/// The signals of one confirm.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Signals {
    /// `None` when not read (the rules test no velocity fact).
    pub velocity: Option<Velocity>,
    pub card_first_use: Option<bool>,
    pub amount_vs_usual_pct: Option<i64>,
}

/// A screened confirm, recorded when its payment commits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Observation {
    pub keys: SignalKeys,
    pub at: Timestamp,
}

impl Observation {
    /// The row recording `payment` as it commits: blocked by the rules,
    /// declined (failed at the processor), or allowed.
    pub fn row(&self, payment: &Payment) -> ObservationRow {
        let blocked = payment
            .risk
            .as_ref()
            .is_some_and(|r| r.decision == crate::domain::fraud_rules::Decision::Block);
        let outcome = if blocked {
            OUTCOME_BLOCKED
        } else if payment.status() == PaymentStatus::Failed {
            OUTCOME_DECLINED
        } else {
            OUTCOME_ALLOWED
        };
        let money = payment.money();
        ObservationRow {
            payment_id: payment.id.to_string(),
            at: self.at.as_millis(),
            card_key: self.keys.card.clone(),
            ip_key: self.keys.ip.clone(),
            email_key: self.keys.email.clone(),
            currency: money.currency.api_code(),
            amount: money.amount.get(),
            outcome,
        }
    }
}

fn window(counts: &KeyCounts, declines: bool) -> Window {
    if declines {
        Window {
            last_1h: counts.declines_1h,
            last_24h: counts.declines_24h,
        }
    } else {
        Window {
            last_1h: counts.payments_1h,
            last_24h: counts.payments_24h,
        }
    }
}

/// A cached usual amount: when it was read, the count and the sum.
type Usual = (Instant, i64, i64);

/// The cache of merchants' usual amounts: (count, sum) of their newest
/// observations per currency.
#[derive(Debug, Default)]
pub struct UsualAmounts {
    entries: RwLock<HashMap<(Tenant, String), Usual>>,
}

impl UsualAmounts {
    fn get(&self, tenant: &Tenant, currency: &str) -> Option<(i64, i64)> {
        let entries = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let (at, n, sum) = entries.get(&(tenant.clone(), currency.to_owned()))?;
        (at.elapsed() < USUAL_TTL).then_some((*n, *sum))
    }

    fn put(&self, tenant: &Tenant, currency: &str, at: Instant, n: i64, sum: i64) {
        let mut entries = self.entries.write().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_USUAL_ENTRIES {
            entries.clear();
        }
        entries.insert((tenant.clone(), currency.to_owned()), (at, n, sum));
    }
}

/// `amount` as a percentage of the mean of `n` amounts summing to `sum`;
/// `None` below [`MIN_USUAL`] amounts or for a mean of zero.
pub fn percent_of_usual(amount: i64, n: i64, sum: i64) -> Option<i64> {
    if n < MIN_USUAL || sum <= 0 {
        return None;
    }
    let pct = i128::from(amount) * 100 * i128::from(n) / i128::from(sum);
    Some(i64::try_from(pct).unwrap_or(i64::MAX))
}

impl<S: SignalStore + Send + Sync> Fraud<S> {
    /// The signals of a confirm of `money` with `keys` at `now`: the
    /// velocity counts and first use (one query) when `velocity`, the
    /// amount against the usual one (cached per merchant and currency) when
    /// `usual`.
    pub async fn signals(
        &self,
        tenant: &Tenant,
        keys: &SignalKeys,
        money: Money,
        now: Timestamp,
        velocity: bool,
        usual: bool,
    ) -> Result<Signals, ServiceError> {
        let mut signals = Signals::default();
        if velocity {
            let since_1h = now.saturating_sub(HOUR).as_millis();
            let since_24h = now.saturating_sub(DAY).as_millis();
            let found = self
                .store
                .observed_counts(tenant, keys.as_keys(), since_1h, since_24h)
                .await?;
            signals.card_first_use = Some(!found.card_seen);
            signals.velocity = Some(Velocity {
                card_payments: window(&found.card, false),
                card_declines: window(&found.card, true),
                ip: keys.ip.as_ref().map(|_| IpVelocity {
                    payments: window(&found.ip, false),
                    declines: window(&found.ip, true),
                    distinct_cards: Window {
                        last_1h: found.ip.cards_1h,
                        last_24h: found.ip.cards_24h,
                    },
                }),
                email_payments: keys.email.as_ref().map(|_| window(&found.email, false)),
            });
        }
        if usual {
            let currency = money.currency.api_code();
            let (n, sum) = match self.usual.get(tenant, &currency) {
                Some(found) => found,
                None => {
                    let started = Instant::now();
                    let (n, sum) = self.store.observed_amounts(tenant, &currency).await?;
                    self.usual.put(tenant, &currency, started, n, sum);
                    (n, sum)
                }
            };
            signals.amount_vs_usual_pct = percent_of_usual(money.amount.get(), n, sum);
        }
        Ok(signals)
    }

    /// Deletes observations older than [`RETENTION`] (called periodically).
    pub async fn prune_signals(&self) -> Result<u64, ServiceError> {
        let before = Timestamp::now().saturating_sub(RETENTION).as_millis();
        Ok(self.store.prune_observations(before).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_usual_amount_needs_enough_payments_and_rounds_down() {
        assert_eq!(percent_of_usual(5_000, MIN_USUAL - 1, 100_000), None);
        assert_eq!(percent_of_usual(5_000, 20, 100_000), Some(100));
        assert_eq!(percent_of_usual(50_000, 20, 100_000), Some(1000));
        assert_eq!(percent_of_usual(2_499, 20, 100_000), Some(49));
        assert_eq!(percent_of_usual(5_000, 20, 0), None);
        assert_eq!(percent_of_usual(i64::MAX, 1000, 1), Some(i64::MAX));
    }
}
