//! Reading the audit trail: chain verification and JSON-lines export.
//! (Entries are appended by committing a unit of work: chained in the same
//! commit as the writes they describe, or batched by `audit_writer`.)

use std::io::Write;

use crate::domain::audit::{AuditEvent, ChainBreak, ChainVerifier};
use crate::store::ports::{AuditStore, Commit};
use crate::store::unit_of_work::UnitOfWork;

use super::ServiceError;

/// Entries read per page while walking the chain.
const PAGE: i64 = 2_000;

/// The result of walking the whole chain.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VerifyReport {
    pub entries_checked: u64,
    pub head_seq: i64,
    /// The hash of the head entry (all zeros for an empty trail). Recorded
    /// outside the database, it pins the chain up to that entry.
    pub head_hash: String,
    /// The first break, if the chain is not intact.
    pub first_break: Option<ChainBreak>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.first_break.is_none()
    }
}

/// Writes one audit entry on its own (an operator action that changes
/// nothing else, such as a verification).
pub async fn record<S: Commit>(store: &S, event: AuditEvent) -> Result<(), ServiceError> {
    let mut work = UnitOfWork::new();
    work.audit(event);
    Ok(store.commit(work).await?)
}

/// Walks the chain from the first entry and reports the first break.
pub async fn verify<S: AuditStore>(store: &S) -> Result<VerifyReport, ServiceError> {
    // Read the head first: entries appended while we walk are past it and ignored.
    let (head_seq, head_hash) = store.audit_head().await?;
    let mut verifier = ChainVerifier::default();
    let mut after = 0;
    let mut checked = 0u64;
    loop {
        let page = store.audit_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in page.iter().filter(|r| r.seq <= head_seq) {
            if let Err(first_break) = verifier.check(record) {
                return Ok(VerifyReport {
                    entries_checked: checked,
                    head_seq,
                    head_hash,
                    first_break: Some(first_break),
                });
            }
            checked += 1;
        }
        if after >= head_seq {
            break;
        }
    }
    let first_break = verifier.finish(head_seq, &head_hash).err();
    Ok(VerifyReport {
        entries_checked: checked,
        head_seq,
        head_hash,
        first_break,
    })
}

/// Writes every entry as one JSON object per line (for a SIEM). Returns the count.
pub async fn export<S: AuditStore>(store: &S, out: &mut impl Write) -> Result<u64, ServiceError> {
    let mut after = 0;
    let mut written = 0u64;
    loop {
        let page = store.audit_page(after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for record in &page {
            let mut line = serde_json::to_value(record).unwrap_or_default();
            if let Some(obj) = line.as_object_mut() {
                obj.insert("time".into(), record.event.at.to_rfc3339().into());
            }
            writeln!(out, "{line}").map_err(|e| ServiceError::invalid("output", "write_failed", e.to_string()))?;
            written += 1;
        }
    }
    Ok(written)
}
