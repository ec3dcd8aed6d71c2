//! Copies committed pages from the SQLite WAL into the database file on a
//! thread and connection of its own, so that the commit thread rarely has to.
//!
//! SQLite's automatic checkpoint runs inside the commit that crosses its
//! threshold (1000 WAL pages) and stalls every caller of that batch: measured,
//! 10–18 ms per checkpoint once the database holds a gigabyte, the largest
//! part of the latency tail under load. Here a passive checkpoint runs every
//! few milliseconds instead, copying what has been committed so far while the
//! commit thread goes on. The automatic checkpoint stays on as the backstop
//! that keeps the WAL bounded (checkpoints from another connection alone let
//! it grow without bound under constant load: measured, 3.5 GB in half a
//! minute): when it runs it finds the pages already copied, or this thread
//! busy and then skips without waiting; the writer restarts the WAL from its
//! start once everything in it is copied. Its threshold is
//! [`AUTOMATIC_CHECKPOINT_PAGES`], not SQLite's 1000.
//!
//! Durability is unchanged: commits are synced by their own connection
//! (`synchronous=FULL`) before they are answered; a checkpoint syncs the WAL
//! before it copies and the database file after.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use super::StoreError;

/// How often committed pages are copied into the database file. Each commit
/// rewrites the right-most pages of the tables it appends to; one checkpoint
/// per interval copies each such page once, however many commits changed it
/// (at 5 ms this thread took 8% of a core under payment load, at 25 ms 3%,
/// with the same latency tail). Under constant load the WAL gathers a few
/// hundred pages per interval, below the automatic checkpoint's threshold.
const INTERVAL: Duration = Duration::from_millis(25);

/// WAL pages after which the commit thread's own (automatic) checkpoint runs:
/// 16 MiB of WAL at 4 KiB pages. Each time it runs, it syncs the WAL and the
/// database file inside a commit. Measured under payment load with
/// interleaved servers (5 rounds each): 4000 gave 3.5% more payments per
/// second than SQLite's default of 1000; 16000 no more than 4000; 0 (never)
/// let the WAL grow without bound and was 15% slower.
pub const AUTOMATIC_CHECKPOINT_PAGES: u32 = 4000;

/// Starts the checkpointer on its own connection to the database at `path`.
/// It stops when `stop`'s sender is dropped (with the commit thread).
pub fn start(conn: rusqlite::Connection, stop: Receiver<()>) -> Result<(), StoreError> {
    std::thread::Builder::new()
        .name("paywarden-checkpoint".into())
        .spawn(move || run(&conn, &stop))
        .map(drop)
        .map_err(|e| StoreError::Corrupt(format!("cannot start the checkpoint thread: {e}")))
}

fn run(conn: &rusqlite::Connection, stop: &Receiver<()>) {
    while let Err(RecvTimeoutError::Timeout) = stop.recv_timeout(INTERVAL) {
        // PASSIVE: copies what no reader still needs, never waits for readers
        // or the writer. A busy or failed checkpoint is retried next time; the
        // writer's own automatic checkpoint is the backstop.
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            tracing::debug!(error = %e, "background checkpoint did not run");
        }
    }
}

/// True if the connection's database is in WAL mode (the only mode that checkpoints).
pub fn is_wal(conn: &rusqlite::Connection) -> bool {
    conn.query_row("PRAGMA journal_mode", [], |r| r.get::<_, String>(0))
        .is_ok_and(|mode| mode.eq_ignore_ascii_case("wal"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_pages_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.db");
        let writer = rusqlite::Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA wal_autocheckpoint = 0; \
                 CREATE TABLE t (v TEXT);",
            )
            .unwrap();
        assert!(is_wal(&writer));
        let (stop_tx, stop) = std::sync::mpsc::channel();
        start(rusqlite::Connection::open(&path).unwrap(), stop).unwrap();
        for i in 0..200 {
            writer
                .execute(
                    "INSERT INTO t (v) VALUES (?1)",
                    [format!("row {i} {}", "x".repeat(500))],
                )
                .unwrap();
        }
        // With the writer's automatic checkpoint off, only the checkpointer
        // can have copied the pages: the database file grows past its empty size.
        let empty = 2 * 4096;
        let mut copied = false;
        for _ in 0..200 {
            if std::fs::metadata(&path).unwrap().len() > empty {
                copied = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(
            copied,
            "the background checkpoint copied committed pages into the database file"
        );
        drop(stop_tx);
    }
}
