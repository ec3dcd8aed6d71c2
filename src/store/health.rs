//! What the store knows about its own health, for readiness (`/readyz`) and
//! for refusing writes early: whether the last write batch committed,
//! whether the database answered the last probe, and, on SQLite, the free
//! space of the database's file system against its floor.
//!
//! Writers record their outcome here (one atomic load on the fast path);
//! [`crate::store::Store::watch`] probes and measures once a second. Nothing
//! here writes per probe: while writes fail, the watcher sends one empty
//! batch through the group commit (a transaction without changes), whose
//! success clears the failure.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use super::fault::{Fault, FaultKind};
use super::StoreError;

/// One check's state: `None` is healthy, `Some` says what is wrong.
type Failure = Mutex<Option<String>>;

#[derive(Debug)]
pub struct Health {
    /// The last write batch failed as a whole (not one job's own conflict).
    writes_failing: AtomicBool,
    write_failure: Failure,
    /// When the failing write was a full database or disk.
    full_since: Mutex<Option<std::time::Instant>>,
    /// The last probe of the database failed.
    probe_failure: Failure,
    /// SQLite: the file system holding the database and the floor of its
    /// free space (0: no floor).
    data_dir: Option<PathBuf>,
    floor_bytes: u64,
    free_bytes: AtomicU64,
    below_floor: AtomicBool,
    /// PostgreSQL: a connection was given up on since the pool was renewed.
    connection_discarded: AtomicBool,
}

/// A readiness check for `/readyz`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub ok: bool,
    pub detail: Option<String>,
}

/// The free-space check (SQLite only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskCheck {
    pub ok: bool,
    pub free_bytes: u64,
    pub floor_bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub database: Check,
    pub writes: Check,
    pub disk: Option<DiskCheck>,
}

impl Readiness {
    pub fn ready(&self) -> bool {
        self.database.ok && self.writes.ok && self.disk.as_ref().is_none_or(|d| d.ok)
    }
}

/// What readiness may say about an error (it is unauthenticated): the
/// fault's kind, never its detail, which goes to the log.
fn reason(e: &StoreError) -> String {
    e.fault().map_or("error", |f| f.kind.as_str()).to_owned()
}

/// How long a full database keeps readiness failing without a write that
/// proves otherwise (the `Retry-After` of a full disk).
pub const FULL_HOLD: std::time::Duration = std::time::Duration::from_secs(30);

fn full_lock(m: &Mutex<Option<std::time::Instant>>) -> std::sync::MutexGuard<'_, Option<std::time::Instant>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

fn lock(m: &Failure) -> std::sync::MutexGuard<'_, Option<String>> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Health {
    pub fn new(data_dir: Option<PathBuf>, floor_bytes: u64) -> Self {
        Self {
            writes_failing: AtomicBool::new(false),
            write_failure: Mutex::new(None),
            full_since: Mutex::new(None),
            probe_failure: Mutex::new(None),
            data_dir,
            floor_bytes,
            free_bytes: AtomicU64::new(u64::MAX),
            below_floor: AtomicBool::new(false),
            connection_discarded: AtomicBool::new(false),
        }
    }

    /// A write batch committed. After a full database or disk, readiness
    /// stays failing for [`FULL_HOLD`] all the same: writes that fit in
    /// free pages still commit while those that need room fail, and the
    /// watcher's empty probe commits on a full database too.
    pub fn write_committed(&self) {
        if !self.writes_failing.load(Ordering::Relaxed) {
            return;
        }
        let mut full_since = full_lock(&self.full_since);
        if full_since.is_some_and(|at| at.elapsed() < FULL_HOLD) {
            return;
        }
        *full_since = None;
        self.writes_failing.store(false, Ordering::Relaxed);
        *lock(&self.write_failure) = None;
    }

    /// A write batch failed as a whole.
    pub fn write_failed(&self, error: &StoreError) {
        let full = error.fault().is_some_and(|f| f.kind == FaultKind::Full);
        *full_lock(&self.full_since) = full.then(std::time::Instant::now);
        *lock(&self.write_failure) = Some(reason(error));
        self.writes_failing.store(true, Ordering::Relaxed);
    }

    pub fn writes_failing(&self) -> bool {
        self.writes_failing.load(Ordering::Relaxed)
    }

    pub fn probed(&self, result: Result<(), &StoreError>) {
        if let Err(e) = result {
            tracing::warn!(error = %e, "the database did not answer its probe");
        }
        *lock(&self.probe_failure) = result.err().map(reason);
    }

    /// `Err(Full)` when the free space is below the floor: writes are refused
    /// before SQLite would fail in the middle of a commit.
    pub fn check_floor(&self) -> Result<(), StoreError> {
        if self.below_floor.load(Ordering::Relaxed) {
            return Err(StoreError::Unavailable(Fault::new(
                FaultKind::Full,
                format!(
                    "free space {} bytes is below database.min_free_space ({} bytes)",
                    self.free_bytes.load(Ordering::Relaxed),
                    self.floor_bytes
                ),
            )));
        }
        Ok(())
    }

    /// Measures the free space of the database's file system (SQLite with a floor).
    pub fn measure_free_space(&self) {
        let (Some(dir), true) = (&self.data_dir, self.floor_bytes > 0) else {
            return;
        };
        match rustix::fs::statvfs(dir) {
            Ok(st) => {
                let free = st.f_bavail.saturating_mul(st.f_frsize);
                self.free_bytes.store(free, Ordering::Relaxed);
                let below = free < self.floor_bytes;
                if below != self.below_floor.swap(below, Ordering::Relaxed) {
                    if below {
                        tracing::error!(free_bytes = free, floor_bytes = self.floor_bytes, dir = %dir.display(), "storage full: free space is below database.min_free_space; refusing writes");
                    } else {
                        tracing::info!(
                            free_bytes = free,
                            floor_bytes = self.floor_bytes,
                            "free space is above database.min_free_space again; accepting writes"
                        );
                    }
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot measure the free space of the database's file system")
            }
        }
    }

    pub fn connection_discarded(&self) {
        self.connection_discarded.store(true, Ordering::Relaxed);
    }

    /// True once per run of discarded connections (then the pool is renewed).
    pub fn take_connection_discarded(&self) -> bool {
        self.connection_discarded.swap(false, Ordering::Relaxed)
    }

    pub fn readiness(&self) -> Readiness {
        let probe = lock(&self.probe_failure).clone();
        let write = if self.writes_failing() {
            lock(&self.write_failure).clone()
        } else {
            None
        };
        let disk = (self.data_dir.is_some() && self.floor_bytes > 0).then(|| DiskCheck {
            ok: !self.below_floor.load(Ordering::Relaxed),
            free_bytes: self.free_bytes.load(Ordering::Relaxed),
            floor_bytes: self.floor_bytes,
        });
        Readiness {
            database: Check {
                ok: probe.is_none(),
                detail: probe,
            },
            writes: Check {
                ok: !self.writes_failing(),
                detail: write,
            },
            disk,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_batch_fails_readiness_until_one_commits() {
        let h = Health::new(None, 0);
        assert!(h.readiness().ready());
        h.write_failed(&StoreError::Unavailable(Fault::new(FaultKind::Full, "disk full")));
        let r = h.readiness();
        assert!(!r.ready());
        assert_eq!(r.writes.detail.as_deref(), Some("full"), "the kind, never the detail");
        h.write_committed();
        assert!(!h.readiness().ready(), "a full database is held failing for a while");
        h.write_failed(&StoreError::Unavailable(Fault::new(FaultKind::Timeout, "silent")));
        h.write_committed();
        assert!(h.readiness().ready(), "a committed batch clears any other failure");
    }

    #[test]
    fn below_the_floor_writes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let h = Health::new(Some(dir.path().to_path_buf()), u64::MAX);
        assert!(h.check_floor().is_ok(), "not measured yet");
        h.measure_free_space();
        assert!(matches!(h.check_floor(), Err(StoreError::Unavailable(f)) if f.kind == FaultKind::Full));
        assert_eq!(h.readiness().disk.map(|d| d.ok), Some(false));
        let roomy = Health::new(Some(dir.path().to_path_buf()), 1);
        roomy.measure_free_space();
        assert!(roomy.check_floor().is_ok());
        assert!(roomy.readiness().ready());
    }
}
