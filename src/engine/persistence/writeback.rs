//! Incremental writeback of a file being written in one long stream (snapshots): start the
//! kernel writing each finished chunk out at once and wait for the chunk before it, so the
//! page cache never holds more than two chunks of it dirty. Does I/O: `sync_file_range(2)`.
//!
//! Why: a snapshot of a 1M-key dataset is ~100 MB. Written through the page cache and fsynced
//! at the end, all of it is written back in one burst, by a kernel flusher thread at normal
//! priority and by the final fsync, competing with the threads that serve clients. Redis hit
//! the same with its fork-based saves and answers it with `rdb-save-incremental-fsync` (write
//! back every few MB as the file grows). Here `sync_file_range` submits the writeback from the
//! calling thread, the snapshot thread at its lowered priority, so the CPU the block layer and
//! the filesystem's allocation take is charged to it too. It makes nothing durable by itself
//! (no metadata, no disk cache flush): the snapshot's final `fsync` still does that, it just
//! has little left to do.

#![allow(unsafe_code)]

use std::fs::File;

/// Start writeback of `[offset, offset + len)` of `file` without waiting for it.
pub fn start(file: &File, offset: u64, len: u64) {
    sync_range(file, offset, len, false);
}

/// Write back `[offset, offset + len)` of `file` and wait until it has reached the device.
pub fn wait(file: &File, offset: u64, len: u64) {
    sync_range(file, offset, len, true);
}

#[cfg(target_os = "linux")]
fn sync_range(file: &File, offset: u64, len: u64, wait: bool) {
    use std::os::fd::AsRawFd;
    if len == 0 {
        return;
    }
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    let flags = if wait {
        libc::SYNC_FILE_RANGE_WAIT_BEFORE
            | libc::SYNC_FILE_RANGE_WRITE
            | libc::SYNC_FILE_RANGE_WAIT_AFTER
    } else {
        libc::SYNC_FILE_RANGE_WRITE
    };
    // SAFETY: a plain system call on a descriptor `file` keeps open for the call's duration;
    // it reads no memory of ours.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), offset, len, flags) };
    if rc != 0 {
        // Only an optimisation: the final fsync reports any real I/O error.
        tracing::debug!(error = %std::io::Error::last_os_error(), "sync_file_range failed");
    }
}

#[cfg(not(target_os = "linux"))]
fn sync_range(_file: &File, _offset: u64, _len: u64, _wait: bool) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn ranges_of_a_written_file_are_accepted_and_the_data_is_intact() {
        let dir = crate::engine::persistence::scratch_dir("writeback");
        let path = dir.join("f");
        let mut f = File::create(&path).unwrap();
        let chunk = vec![7u8; 64 << 10];
        f.write_all(&chunk).unwrap();
        start(&f, 0, chunk.len() as u64);
        f.write_all(&chunk).unwrap();
        start(&f, chunk.len() as u64, chunk.len() as u64);
        wait(&f, 0, chunk.len() as u64);
        // Out-of-range and empty ranges are no-ops, never errors that stop a snapshot.
        wait(&f, u64::MAX, 1);
        start(&f, 0, 0);
        drop(f);
        assert_eq!(std::fs::read(&path).unwrap().len(), 2 * chunk.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
