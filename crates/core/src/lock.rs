//! One exclusive lock per target, with the standard library's file locks.

use crate::error::{clean_io_message, Error, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held until dropped. The lock file itself is never removed: removing it would let two runs
/// lock two different files of the same name.
#[derive(Debug)]
pub struct LockGuard {
    _file: File,
    pub path: PathBuf,
}

/// `--wait-lock SECONDS` as a duration: a finite number, 0 or more (a usage error otherwise).
pub fn wait_duration(flag: &str, secs: Option<f64>) -> Result<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if (0.0..1e9).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(Error::usage(format!("invalid {flag} {s}"))
            .because("it must be a number of seconds, 0 or more")),
    }
}

/// Takes the lock at `path` for `what` (used in the message). Without `wait` a held lock fails
/// at once with exit 75; with it, retries until the time runs out.
pub fn acquire(path: &Path, what: &str, wait: Option<Duration>) -> Result<LockGuard> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            Error::failed(format!("cannot open lock file {}", path.display()))
                .because(clean_io_message(&e.to_string()))
        })?;
    let deadline = wait.map(|w| Instant::now() + w);
    loop {
        match file.try_lock() {
            Ok(()) => {
                return Ok(LockGuard {
                    _file: file,
                    path: path.to_path_buf(),
                })
            }
            Err(TryLockError::WouldBlock) => {
                if deadline.is_some_and(|d| Instant::now() < d) {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                let waited = match wait {
                    Some(w) => format!(" after waiting {}s", w.as_secs_f64()),
                    None => String::new(),
                };
                return Err(Error::locked(format!("{what} is locked"))
                    .because(format!("another run holds {}{waited}", path.display()))
                    .hint("try again later, or pass --wait-lock SECONDS"));
            }
            Err(TryLockError::Error(e)) => {
                return Err(Error::failed(format!("cannot lock {}", path.display()))
                    .because(clean_io_message(&e.to_string())))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_holder_gets_exit_75() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let g = acquire(&p, "target", None).unwrap();
        let e = acquire(&p, "target", None).unwrap_err();
        assert_eq!(e.exit_code(), 75);
        let e = acquire(&p, "target", Some(Duration::from_millis(120))).unwrap_err();
        assert!(e.to_string().contains("after waiting"), "{e}");
        drop(g);
        acquire(&p, "target", None).unwrap();
    }

    #[test]
    fn wait_durations() {
        assert_eq!(wait_duration("--wait-lock", None).unwrap(), None);
        assert_eq!(
            wait_duration("--wait-lock", Some(1.5)).unwrap(),
            Some(Duration::from_millis(1500))
        );
        for bad in [-1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                wait_duration("--wait-lock", Some(bad))
                    .unwrap_err()
                    .exit_code(),
                2
            );
        }
    }

    #[test]
    fn waiting_succeeds_when_released() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let g = acquire(&p, "target", None).unwrap();
        let released = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = released.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
            drop(g);
        });
        let start = std::time::Instant::now();
        acquire(&p, "target", Some(Duration::from_secs(5))).unwrap();
        // It got the lock only after the holder let go, so it must have waited for it.
        assert!(released.load(std::sync::atomic::Ordering::SeqCst));
        assert!(
            start.elapsed() >= Duration::from_millis(250),
            "{:?}",
            start.elapsed()
        );
        t.join().unwrap();
    }
}
