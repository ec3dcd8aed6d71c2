//! The audit port: reading the hash-chained trail. Entries are appended only
//! by committing a unit of work ([`UnitOfWork::audit`]), chained to the head
//! in the same commit as the writes they describe.
//!
//! [`UnitOfWork::audit`]: crate::store::unit_of_work::UnitOfWork::audit

use std::future::Future;

use crate::domain::audit::AuditRecord;
use crate::store::StoreError;

pub trait AuditStore: Send + Sync {
    /// The head: the last sequence number and its hash (`0` and the genesis
    /// hash for an empty trail).
    fn audit_head(&self) -> impl Future<Output = Result<(i64, String), StoreError>> + Send;

    /// Up to `limit` entries with `seq > after`, by `seq`.
    fn audit_page(&self, after: i64, limit: i64) -> impl Future<Output = Result<Vec<AuditRecord>, StoreError>> + Send;
}
