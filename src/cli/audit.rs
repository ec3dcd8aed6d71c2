//! `paywarden audit verify|export` (export needs a step-up).

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;
use serde_json::json;

use crate::domain::audit::Outcome;
use crate::services::audit;

use super::context::CliContext;
use super::output;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk the hash chain; exit non-zero at the first modified, deleted,
    /// inserted or reordered entry.
    Verify,
    /// Write every entry as JSON lines (for a SIEM; needs a step-up).
    Export {
        /// Output file (default: standard output).
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
}

pub async fn run(ctx: CliContext, cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    let store = ctx.store().await?;
    let code = match cmd {
        AuditCommand::Verify => {
            let report = audit::verify(&store).await?;
            let intact = report.intact();
            // The verification itself is an operator action worth recording.
            let mut event = ctx.actor("audit verify").event(
                "audit.verified",
                if intact { Outcome::Success } else { Outcome::Failure },
            );
            event.reason = report
                .first_break
                .as_ref()
                .map(|b| format!("first break at entry {}: {}", b.seq, b.problem));
            // Best effort: a tampered log may refuse the append; the verdict matters more.
            if let Err(e) = audit::record(&store, event).await {
                eprintln!("warning: could not record this verification in the audit trail: {e:#}");
            }
            output::print(ctx.json, &json!({ "intact": intact, "report": report }), || {
                match &report.first_break {
                    None => format!(
                        "audit chain intact: {} entries verified\nhead: entry {}, hash {}\nRecord the head {}:{} outside this database: a later chain must extend it (`paywarden check --audit-anchor {}:{}`).",
                        report.entries_checked, report.head_seq, report.head_hash, report.head_seq, report.head_hash, report.head_seq, report.head_hash
                    ),
                    Some(b) => format!(
                        "AUDIT CHAIN BROKEN at entry {}: {} ({} entries verified before it)",
                        b.seq, b.problem, report.entries_checked
                    ),
                }
            });
            if intact {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(2)
            }
        }
        AuditCommand::Export { output: path } => {
            // The whole trail leaves the database: step-up.
            let actor = super::step_up::actor(&ctx, &store, "audit export").await?;
            let count = match &path {
                Some(p) => {
                    let mut w =
                        BufWriter::new(File::create(p).with_context(|| format!("cannot create {}", p.display()))?);
                    let n = audit::export(&store, &mut w).await?;
                    w.flush()?;
                    n
                }
                None => {
                    let stdout = std::io::stdout();
                    let mut w = BufWriter::new(stdout.lock());
                    let n = audit::export(&store, &mut w).await?;
                    w.flush()?;
                    n
                }
            };
            let mut event = actor.event("audit.exported", Outcome::Success);
            event.reason = Some(format!("{count} entries"));
            audit::record(&store, event).await?;
            if path.is_some() {
                output::print(ctx.json, &json!({ "exported": count }), || {
                    format!("exported {count} entries")
                });
            }
            ExitCode::SUCCESS
        }
    };
    store.close().await;
    Ok(code)
}
