//! `paywarden check`: audits this deployment against the practices the
//! gateway stands for and prints a pass / warn / fail table (or `--json`).
//! Exits 1 on any failure, so it can gate a deployment. The run itself is
//! recorded in the audit trail with its counts.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Args;
use serde_json::json;

use crate::domain::audit::Outcome;
use crate::domain::time::{parse_duration, Timestamp};
use crate::server::posture::{self as deployment, Deployment};
use crate::services::audit;
use crate::services::posture::data::{self, DataPolicy};
use crate::services::posture::{Finding, Status, Summary};

use super::context::CliContext;
use super::output;

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A payment `processing` for longer than this is reported as stuck.
    #[arg(long, value_name = "DURATION", default_value = "15m")]
    stale_after: String,
    /// The audit head recorded outside the database, as `SEQ:HASH` (printed
    /// by `paywarden audit verify`); the chain must still hold it.
    #[arg(long, value_name = "SEQ:HASH")]
    audit_anchor: Option<String>,
}

pub async fn run(ctx: CliContext, args: CheckArgs, config_file: Option<&Path>) -> anyhow::Result<ExitCode> {
    let stale_after = parse_duration(&args.stale_after).map_err(|e| anyhow::anyhow!("--stale-after: {e}"))?;
    let audit_anchor = args.audit_anchor.as_deref().map(parse_anchor).transpose()?;
    let max_live_key_age = parse_duration(&ctx.config.keys.max_live_lifetime)
        .map_err(|e| anyhow::anyhow!("keys.max_live_lifetime: {e}"))?;
    let now = Timestamp::now();
    let store = ctx.store().await?;
    let policy = DataPolicy {
        max_live_key_age,
        stale_after,
        audit_anchor,
        now,
    };
    let report = data::check(&store, &policy).await?;
    let log_filter = std::env::var("PAYWARDEN_LOG").ok();
    let mut findings = deployment::check(&Deployment {
        config: &ctx.config,
        config_file,
        log_filter: log_filter.as_deref(),
        live_in_use: report.live_in_use,
        now,
    });
    findings.extend(report.findings);
    findings.push(crate::services::posture::operators::finding(&store, now).await?);
    let summary = Summary::of(&findings);

    let mut event = ctx.actor("check").event(
        "posture.checked",
        if summary.fail == 0 {
            Outcome::Success
        } else {
            Outcome::Failure
        },
    );
    event.reason = Some(format!(
        "{} pass, {} warn, {} fail",
        summary.pass, summary.warn, summary.fail
    ));
    audit::record(&store, event)
        .await
        .context("cannot record the check in the audit trail")?;
    store.close().await;

    output::print(
        ctx.json,
        &json!({ "checks": findings, "summary": summary, "live_in_use": report.live_in_use }),
        || table(&findings, &summary),
    );
    Ok(if summary.fail == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn parse_anchor(text: &str) -> anyhow::Result<(i64, String)> {
    let (seq, hash) = text.split_once(':').context("--audit-anchor: expected SEQ:HASH")?;
    let seq = seq
        .parse::<i64>()
        .context("--audit-anchor: SEQ must be an entry number")?;
    let valid_hash = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit());
    anyhow::ensure!(valid_hash, "--audit-anchor: HASH must be 64 hexadecimal digits");
    Ok((seq, hash.to_ascii_lowercase()))
}

fn table(findings: &[Finding], summary: &Summary) -> String {
    let width = findings.iter().map(|f| f.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for f in findings {
        let mark = match f.status {
            Status::Pass => "PASS",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!("{mark}  {:width$}  {}\n", f.check, f.detail));
    }
    out.push_str(&format!(
        "\n{} pass, {} warn, {} fail",
        summary.pass, summary.warn, summary.fail
    ));
    out
}
