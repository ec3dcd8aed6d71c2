//! The posture check's findings: one line per practice the gateway stands
//! for, each `pass`, `warn` or `fail` with what was seen and what to do.
//! [`data`] audits what the database holds (keys, webhook endpoints,
//! payments, the audit chain) and [`operators`] whether step-up is in
//! force; the deployment's files and settings are `server::posture`'s.
//! `paywarden check` runs them all and fails on any `fail`.

pub mod data;
pub mod operators;

use serde::Serialize;

/// How a practice is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One checked practice. `check` is a stable identifier (`tls.certificate`,
/// `keys.live_expiry`, …); `detail` says what was seen and, unless the
/// practice is kept, what to change. Details name ids and paths, never a
/// secret's value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    pub status: Status,
    pub detail: String,
}

impl Finding {
    pub fn pass(check: &'static str, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Pass, detail)
    }

    pub fn warn(check: &'static str, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Warn, detail)
    }

    pub fn fail(check: &'static str, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Fail, detail)
    }

    pub fn new(check: &'static str, status: Status, detail: impl Into<String>) -> Self {
        Self {
            check,
            status,
            detail: detail.into(),
        }
    }
}

/// Counts per status.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    pub pass: usize,
    pub warn: usize,
    pub fail: usize,
}

impl Summary {
    pub fn of(findings: &[Finding]) -> Self {
        findings.iter().fold(Self::default(), |mut s, f| {
            match f.status {
                Status::Pass => s.pass += 1,
                Status::Warn => s.warn += 1,
                Status::Fail => s.fail += 1,
            }
            s
        })
    }
}

/// Joins up to `shown` items and says how many more there are.
pub(crate) fn listed(items: &[String], shown: usize) -> String {
    let head: Vec<&str> = items.iter().take(shown).map(String::as_str).collect();
    match items.len().saturating_sub(shown) {
        0 => head.join(", "),
        more => format!("{} and {more} more", head.join(", ")),
    }
}
