//! A unit of work: the writes of one operation and the audit entries that
//! describe them, collected as data and committed together, or not at all,
//! through the group commit ([`Store::commit`]).
//!
//! This is the only way services and operator commands change the database:
//! no transaction handle leaves `store`. Each table module adds its
//! statements with functions that take `&mut UnitOfWork`; a statement that
//! must change exactly one row (a compare-and-set, an update of a row that
//! must exist) fails the whole unit with `StoreError::Conflict`, an insert
//! that collides with `StoreError::Duplicate`. Nothing is written until
//! [`Store::commit`] returns `Ok`, and then everything is durable and its
//! audit entries are chained.
//!
//! Reads happen before the unit is committed, from the readers; a decision
//! that must still hold at commit time is written as a condition of the
//! statement (`… WHERE frozen_at IS NULL`), never assumed from the read.

use super::group_commit::WriteJob;
use super::write_op::WriteOp;
use super::{Store, StoreError};
use crate::domain::audit::AuditEvent;

/// Writes and audit entries waiting to be committed together.
#[derive(Debug, Default)]
#[must_use = "a unit of work writes nothing until it is committed"]
pub struct UnitOfWork {
    job: WriteJob,
}

impl UnitOfWork {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a statement; statements run in the order they were added.
    pub(crate) fn push(&mut self, op: WriteOp) {
        self.job.ops.push(op);
    }

    /// Adds an audit entry, written only if every statement succeeds.
    pub fn audit(&mut self, event: AuditEvent) {
        self.job.audit.push(event);
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.job.ops.is_empty() && self.job.audit.is_empty()
    }

    pub(crate) fn into_job(self) -> WriteJob {
        self.job
    }
}

impl Store {
    /// Commits `work` in one transaction shared with other callers' work
    /// (group commit); returns once it is durable, or with the reason it was
    /// not written at all. An outcome that cannot be known (the database
    /// stopped answering after the commit was sent) is
    /// `StoreError::Unavailable` with `FaultKind::OutcomeUnknown`.
    pub async fn commit(&self, work: UnitOfWork) -> Result<(), StoreError> {
        self.group_commit().run(work.into_job()).await
    }
}
