//! The process's limit of open files (`RLIMIT_NOFILE`). Every connection is
//! a file; the usual soft limit (1,024) would let about a thousand idle
//! connections stop the gateway from accepting, opening its database or
//! reaching a webhook. `serve` raises the soft limit to the hard one at start
//! and keeps the connection cap below it, with room for everything else.

/// Files kept free for what is not a client connection: the database pool,
/// SQLite's files, outbound webhook connections, logs, the listener itself.
pub const RESERVED_FILES: u64 = 256;

/// The soft limit before and after [`raise`], and the hard limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileLimit {
    pub before: u64,
    pub after: u64,
    pub hard: u64,
}

/// Raises the soft open-files limit to the hard limit (or as far as the
/// system allows). On platforms without `RLIMIT_NOFILE`, `Ok(None)`.
pub fn raise() -> std::io::Result<Option<FileLimit>> {
    #[cfg(unix)]
    {
        use rlimit::Resource;
        if !Resource::NOFILE.is_supported() {
            return Ok(None);
        }
        let (before, hard) = Resource::NOFILE.get()?;
        let after = rlimit::increase_nofile_limit(u64::MAX)?;
        Ok(Some(FileLimit { before, after, hard }))
    }
    #[cfg(not(unix))]
    {
        Ok(None)
    }
}

/// The connection cap that fits under `open_files` with [`RESERVED_FILES`]
/// to spare (at least 1).
pub fn connection_cap(configured: usize, open_files: u64) -> usize {
    let room = open_files.saturating_sub(RESERVED_FILES).max(1);
    configured.min(usize::try_from(room).unwrap_or(usize::MAX)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_leaves_room_for_the_reserved_files() {
        assert_eq!(connection_cap(4096, 1024), 768);
        assert_eq!(connection_cap(4096, 1_048_576), 4096);
        assert_eq!(connection_cap(4096, 100), 1);
        assert_eq!(connection_cap(0, 1_048_576), 1);
    }

    #[cfg(unix)]
    #[test]
    fn raising_leaves_the_soft_limit_at_the_hard_one() {
        let limit = raise().unwrap().unwrap();
        let (soft, hard) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(limit.after, soft);
        assert_eq!(limit.hard, hard);
        assert!(limit.after >= limit.before);
        // Linux lets the soft limit reach the hard one; macOS caps it lower.
        #[cfg(target_os = "linux")]
        assert_eq!(soft, hard);
    }
}
