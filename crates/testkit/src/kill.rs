//! SIGKILL at chosen moments of a run, for tests that a killed tool leaves every file whole
//! and nothing named behind.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// Runs `c` (no input, output discarded) and kills it with SIGKILL `delay` after `ready(pid)`
/// first holds (polled every 100 µs from the start); a run that ends before is only waited
/// for. Stepping `delay` over a loop hits every phase after the moment `ready` marks.
pub fn kill_9_when(c: &mut Command, ready: impl Fn(u32) -> bool, delay: Duration) {
    let mut child = c
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    while !ready(child.id()) {
        if child.try_wait().unwrap().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    std::thread::sleep(delay);
    let _ = child.kill();
    let _ = child.wait();
}

/// Whether process `pid` has a file open in `dir` other than `except` (named or unnamed: an
/// `O_TMPFILE` shows as `DIR/#INODE (deleted)` in /proc/PID/fd): it is writing the new file.
pub fn opened_in(pid: u32, dir: &Path, except: &Path) -> bool {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return false;
    };
    fds.flatten().any(|e| {
        std::fs::read_link(e.path()).is_ok_and(|t| t.parent() == Some(dir) && t.as_path() != except)
    })
}
