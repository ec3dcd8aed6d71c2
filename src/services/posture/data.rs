//! The posture of what the database holds: live keys that never expire or
//! outlive the rotation policy, keys near expiry, keys that may reveal card
//! numbers, webhook endpoints not on HTTPS, payments stuck in `processing`,
//! and the audit chain (intact, and extending a head recorded outside the
//! database). Reads only; walks every merchant page by page.

use std::time::Duration;

use crate::domain::api_key::{ApiKey, Mode};
use crate::domain::ids::{ApiKeyId, MerchantId, WebhookEndpointId};
use crate::domain::payment::{ListFilter, PaymentStatus};
use crate::domain::permission::Permission;
use crate::domain::tenant::Tenant;
use crate::domain::time::Timestamp;
use crate::store::ports::{ApiKeyStore, AuditStore, MerchantStore, PaymentStore, WebhookEndpointStore};

use super::super::{audit, ServiceError};
use super::{listed, Finding};

const PAGE: i64 = 200;
/// How many ids a finding names before "and N more".
const SHOWN: usize = 5;
/// Keys expiring sooner than this are worth a warning.
pub const NEAR_EXPIRY: Duration = Duration::from_secs(14 * 86_400);

/// What the data checks are measured against.
#[derive(Debug, Clone)]
pub struct DataPolicy {
    /// The rotation policy: no live key may be older (`keys.max_live_lifetime`).
    pub max_live_key_age: Duration,
    /// A payment `processing` for longer than this is stuck.
    pub stale_after: Duration,
    /// The audit head recorded outside the database (`seq`, `hash`), if any.
    pub audit_anchor: Option<(i64, String)>,
    pub now: Timestamp,
}

/// The findings on the database, and whether live mode is in use (any live
/// key was ever issued), which makes development settings a failure.
#[derive(Debug, Clone)]
pub struct DataReport {
    pub findings: Vec<Finding>,
    pub live_in_use: bool,
}

/// Runs every data check.
pub async fn check<S>(store: &S, policy: &DataPolicy) -> Result<DataReport, ServiceError>
where
    S: MerchantStore + ApiKeyStore + WebhookEndpointStore + PaymentStore + AuditStore,
{
    let merchants = all_merchants(store).await?;
    let mut keys = Vec::new();
    let mut live_in_use = false;
    for merchant in &merchants {
        keys.extend(merchant_keys(store, merchant).await?);
        live_in_use |= store.merchant_has_live_keys(merchant).await?;
    }
    let mut findings = key_findings(&keys, policy);
    findings.push(webhook_finding(store, &merchants).await?);
    findings.push(stale_payments_finding(store, &merchants, policy).await?);
    findings.extend(audit_findings(store, policy).await?);
    Ok(DataReport { findings, live_in_use })
}

async fn all_merchants<S: MerchantStore>(store: &S) -> Result<Vec<MerchantId>, ServiceError> {
    let mut out = Vec::new();
    let mut after: Option<MerchantId> = None;
    loop {
        let page = store.list_merchants(after.as_ref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        out.extend(page.into_iter().map(|m| m.id));
    }
    Ok(out)
}

async fn merchant_keys<S: ApiKeyStore>(store: &S, merchant: &MerchantId) -> Result<Vec<ApiKey>, ServiceError> {
    let mut out = Vec::new();
    let mut after: Option<ApiKeyId> = None;
    loop {
        let page = store.list_keys_for_merchant(merchant, after.as_ref(), PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.id.clone());
        out.extend(page);
    }
    Ok(out)
}

/// The keys that can still authenticate: live ones without an expiry or
/// older than the rotation policy fail; any near expiry or holding
/// `tokens:reveal` warns.
fn key_findings(keys: &[ApiKey], policy: &DataPolicy) -> Vec<Finding> {
    let usable: Vec<&ApiKey> = keys.iter().filter(|k| k.usable_at(policy.now).is_ok()).collect();
    let ids = |pred: &dyn Fn(&ApiKey) -> bool| -> Vec<String> {
        usable.iter().filter(|k| pred(k)).map(|k| k.id.to_string()).collect()
    };
    let live = |k: &ApiKey| k.mode == Mode::Live;
    let oldest_allowed = policy.now.saturating_sub(policy.max_live_key_age);
    let soon = policy.now.saturating_add(NEAR_EXPIRY);
    let policy_age = humantime::format_duration(policy.max_live_key_age);

    let never_expiring = ids(&|k| live(k) && k.expires_at.is_none());
    let too_old = ids(&|k| live(k) && k.created_at < oldest_allowed);
    let near_expiry = ids(&|k| k.expires_at.is_some_and(|at| at <= soon));
    let reveal = ids(&|k| k.permissions.contains(&Permission::TokensReveal));

    vec![
        if never_expiring.is_empty() {
            Finding::pass("keys.live_expiry", "every usable live key expires")
        } else {
            Finding::fail(
                "keys.live_expiry",
                format!(
                    "live keys without an expiry: {}; rotate them (`paywarden key rotate`) so the successor expires",
                    listed(&never_expiring, SHOWN)
                ),
            )
        },
        if too_old.is_empty() {
            Finding::pass(
                "keys.rotation",
                format!("no usable live key is older than {policy_age}"),
            )
        } else {
            Finding::fail(
                "keys.rotation",
                format!(
                    "live keys older than the rotation policy ({policy_age}): {}; rotate them",
                    listed(&too_old, SHOWN)
                ),
            )
        },
        if near_expiry.is_empty() {
            Finding::pass("keys.near_expiry", "no usable key expires within 14 days")
        } else {
            Finding::warn(
                "keys.near_expiry",
                format!(
                    "keys expiring within 14 days: {}; rotate them before they stop working",
                    listed(&near_expiry, SHOWN)
                ),
            )
        },
        if reveal.is_empty() {
            Finding::pass("keys.reveal", "no usable key holds tokens:reveal")
        } else {
            Finding::warn(
                "keys.reveal",
                format!(
                    "keys that may reveal card numbers (tokens:reveal): {}; revoke any that no longer need it",
                    listed(&reveal, SHOWN)
                ),
            )
        },
    ]
}

fn tenants(merchants: &[MerchantId]) -> impl Iterator<Item = Tenant> + '_ {
    merchants
        .iter()
        .flat_map(|m| [Mode::Test, Mode::Live].map(|mode| Tenant::new(m.clone(), mode)))
}

/// Enabled endpoints whose URL is not `https://`: a failure in live mode
/// (events carry payment data), a warning in test mode.
async fn webhook_finding<S: WebhookEndpointStore>(
    store: &S,
    merchants: &[MerchantId],
) -> Result<Finding, ServiceError> {
    let (mut live, mut test) = (Vec::new(), Vec::new());
    for tenant in tenants(merchants) {
        let mut after: Option<WebhookEndpointId> = None;
        loop {
            let page = store.list_endpoints(&tenant, after.as_ref(), PAGE).await?;
            let Some(last) = page.last() else { break };
            after = WebhookEndpointId::parse(&last.id).ok();
            for row in page
                .iter()
                .filter(|r| r.status == "enabled" && !r.url.starts_with("https://"))
            {
                match tenant.mode() {
                    Mode::Live => live.push(row.id.clone()),
                    Mode::Test => test.push(row.id.clone()),
                }
            }
            if after.is_none() {
                break;
            }
        }
    }
    Ok(if !live.is_empty() {
        Finding::fail(
            "webhooks.https",
            format!("live webhook endpoints not on https: {}", listed(&live, SHOWN)),
        )
    } else if !test.is_empty() {
        Finding::warn(
            "webhooks.https",
            format!("test webhook endpoints not on https: {}", listed(&test, SHOWN)),
        )
    } else {
        Finding::pass("webhooks.https", "every enabled webhook endpoint is on https")
    })
}

/// Payments `processing` for longer than the policy allows: their outcome
/// at the processor is unknown and money may be held.
async fn stale_payments_finding<S: PaymentStore>(
    store: &S,
    merchants: &[MerchantId],
    policy: &DataPolicy,
) -> Result<Finding, ServiceError> {
    let filter = ListFilter {
        status: Some(PaymentStatus::Processing),
        created_lte: Some(policy.now.saturating_sub(policy.stale_after)),
        ..ListFilter::default()
    };
    let mut stale = Vec::new();
    for tenant in tenants(merchants) {
        let page = store.list_payments(&tenant, &filter, PAGE).await?;
        stale.extend(page.into_iter().map(|p| p.id.to_string()));
    }
    let horizon = humantime::format_duration(policy.stale_after);
    Ok(if stale.is_empty() {
        Finding::pass(
            "payments.stale",
            format!("no payment has been processing for over {horizon}"),
        )
    } else {
        Finding::fail(
            "payments.stale",
            format!(
                "payments processing for over {horizon}: {}; resolve them with the processor",
                listed(&stale, SHOWN)
            ),
        )
    })
}

/// The chain must verify; a head recorded outside the database must still
/// be in it with the same hash (else history before it was rewritten).
async fn audit_findings<S: AuditStore>(store: &S, policy: &DataPolicy) -> Result<Vec<Finding>, ServiceError> {
    let report = audit::verify(store).await?;
    let chain = match &report.first_break {
        None => Finding::pass(
            "audit.chain",
            format!(
                "{} entries verified; head {} {}",
                report.entries_checked, report.head_seq, report.head_hash
            ),
        ),
        Some(b) => Finding::fail("audit.chain", format!("broken at entry {}: {}", b.seq, b.problem)),
    };
    let anchor = match &policy.audit_anchor {
        None => Finding::warn(
            "audit.anchor",
            format!(
                "no recorded head given: record `{}:{}` outside this database and pass it as --audit-anchor",
                report.head_seq, report.head_hash
            ),
        ),
        Some((seq, hash)) => {
            let entry = store.audit_page(seq.saturating_sub(1), 1).await?;
            match entry.first() {
                Some(r) if r.seq == *seq && r.hash == *hash => Finding::pass(
                    "audit.anchor",
                    format!("the chain still holds the recorded head at entry {seq}"),
                ),
                Some(r) if r.seq == *seq => Finding::fail(
                    "audit.anchor",
                    format!("entry {seq} no longer has the recorded hash: the trail was rewritten"),
                ),
                _ => Finding::fail(
                    "audit.anchor",
                    format!("entry {seq}, the recorded head, is missing: the trail was truncated"),
                ),
            }
        }
    };
    Ok(vec![chain, anchor])
}
