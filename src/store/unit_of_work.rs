//! A unit of work: the writes of one operation and the audit entries that
//! describe them, collected as data and committed together, or not at all,
//! through the group commit ([`Store::commit`](super::Store::commit)).
//!
//! This is the only way services and operator commands change the database:
//! no transaction handle leaves `store`. Each storage port (`store::ports`)
//! stages its writes with methods that take `&mut UnitOfWork`, each backend
//! its own payload: the SQL backend a statement ([`WriteOp`], a constant
//! with parameters), the in-memory double of the tests a typed change it
//! applies itself (`store::memory`). A unit committed to the backend that
//! did not stage it fails whole with `StoreError::Corrupt`. A write that
//! must change exactly one row (a compare-and-set, an update of a row that
//! must exist) fails the whole unit with `StoreError::Conflict`, an insert
//! that collides with `StoreError::Duplicate`. Nothing is written until
//! [`Store::commit`](super::Store::commit) returns `Ok`, and then everything is durable and its
//! audit entries are chained.
//!
//! Reads happen before the unit is committed, from the readers; a decision
//! that must still hold at commit time is written as a condition of the
//! statement (`… WHERE frozen_at IS NULL`), never assumed from the read.

use super::batch::WriteJob;
use super::write_op::WriteOp;
use super::StoreError;
use crate::domain::audit::AuditEvent;

/// Writes and audit entries waiting to be committed together.
#[derive(Debug, Default)]
#[must_use = "a unit of work writes nothing until it is committed"]
pub struct UnitOfWork {
    job: WriteJob,
    /// Changes staged for the in-memory double (tests only).
    #[cfg(test)]
    staged: Vec<super::memory::Change>,
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
        #[cfg(test)]
        if !self.staged.is_empty() {
            return false;
        }
        self.job.ops.is_empty() && self.job.audit.is_empty()
    }

    /// The statements and audit entries for the SQL backend; staged changes
    /// of the double make it refuse the whole unit.
    pub(crate) fn into_job(self) -> Result<WriteJob, StoreError> {
        #[cfg(test)]
        if !self.staged.is_empty() {
            return Err(StoreError::Corrupt(
                "a change staged for the in-memory store was committed to the database".into(),
            ));
        }
        Ok(self.job)
    }

    /// Adds a change for the in-memory double; changes apply in the order
    /// they were added.
    #[cfg(test)]
    pub(crate) fn stage(&mut self, change: super::memory::Change) {
        self.staged.push(change);
    }

    /// The double's changes and the unit's statements and audit entries.
    #[cfg(test)]
    pub(crate) fn into_staged(self) -> (Vec<super::memory::Change>, WriteJob) {
        (self.staged, self.job)
    }
}
