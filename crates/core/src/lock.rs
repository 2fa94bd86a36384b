//! One exclusive lock per target: an flock(2) on a file that lives beside what it protects
//! (inside the repository, the snapshot store, the clone registry), so root's cron and the
//! data directory owner's cron exclude each other.
//!
//! - The file is created readable by everyone (0644, whatever the umask) and locked through a
//!   read-only descriptor when it cannot be opened for writing (flock needs no write access),
//!   so a lock file another user left behind is as usable as one of our own.
//! - Its holder writes one line naming itself into it ([`Holder`]: pid, host, boot, start), so
//!   a run that finds it held says who holds it, as an S3 repository's lock object does. The
//!   file is emptied, then the line written in one write; a reader uses only a whole line
//!   (ending in a newline) whose process is still alive, so it never names a half line nor
//!   a run that died (whose line a holder without write access could not replace).
//! - A run removes the lock file when it lets go (while still holding the lock), so nothing
//!   is left behind for nothing. A waiter that then gets the lock on the removed file sees
//!   that the path no longer names the file it holds and starts over: two runs can never
//!   hold two different files of the same name.

use crate::error::{clean_io_message, Error, Result};
use crate::holder::Holder;
use rustix::fs::{Mode, OFlags};
use std::fs::{File, TryLockError};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The live holder a lock file's text names ([`Holder::of_text`]): None for a line still
/// being written, or one whose process is not provably running on this host.
fn live_holder(text: &str) -> Option<Holder> {
    Holder::of_text(text).filter(|h| h.alive(&Holder::me()))
}

/// Writes this process's line into the lock file it holds: emptied first, then the line in
/// one write, so a reader sees nothing, a line without its newline (ignored), or the whole
/// line. A file opened read-only (another user's) keeps what it has; readers check that the
/// process it names is alive.
fn write_holder(file: &File) {
    use std::os::unix::fs::FileExt;
    if file.set_len(0).is_ok() {
        let _ = file.write_at(Holder::me().to_line().as_bytes(), 0);
    }
}

/// The live holder named in the lock file open as `file`.
fn read_holder(file: &File) -> Option<Holder> {
    use std::os::unix::fs::FileExt;
    let mut buf = [0u8; 1024];
    let n = file.read_at(&mut buf, 0).ok()?;
    live_holder(std::str::from_utf8(&buf[..n]).ok()?)
}

/// Held until dropped; dropping removes the lock file, then releases the lock.
#[derive(Debug)]
pub struct LockGuard {
    file: File,
    pub path: PathBuf,
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        // Only while the path still names our file: a file someone else made there is theirs.
        if names_file(&self.path, &self.file) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Whether `path` names the open `file` (same device and inode).
fn names_file(path: &Path, file: &File) -> bool {
    match (std::fs::metadata(path), file.metadata()) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// `--wait-lock SECONDS` as a duration: a finite number, 0 or more (a usage error otherwise).
///
/// # Errors
/// A usage error (exit 2) for a negative, infinite or NaN value.
pub fn wait_duration(flag: &str, secs: Option<f64>) -> Result<Option<Duration>> {
    match secs {
        None => Ok(None),
        Some(s) if (0.0..1e9).contains(&s) => Ok(Some(Duration::from_secs_f64(s))),
        Some(s) => Err(Error::usage(format!("invalid {flag} {s}"))
            .because("it must be a number of seconds, 0 or more")),
    }
}

/// Opens the lock file at `path`, creating it (0644) when it does not exist: for writing
/// when it may be written, else read-only (another user's file).
fn open(path: &Path) -> Result<File> {
    let cannot = |e: rustix::io::Errno| {
        let why = clean_io_message(&std::io::Error::from(e).to_string());
        let owner = std::fs::metadata(path)
            .ok()
            .map(|m| crate::owner::user_by_uid(m.uid()).map_or(m.uid().to_string(), |u| u.name));
        let err = Error::failed(format!("cannot open lock file {}", path.display()));
        match owner {
            Some(o) => err
                .because(format!("{why} (it belongs to {o})"))
                .hint("remove it when no pgdr run is active"),
            None => err.because(why),
        }
    };
    let flags = OFlags::CLOEXEC | OFlags::NOFOLLOW;
    loop {
        match rustix::fs::open(
            path,
            flags | OFlags::RDWR | OFlags::CREATE | OFlags::EXCL,
            Mode::from(0o644),
        ) {
            Ok(fd) => {
                // The umask (077 under many crons) must not make it unusable for others.
                rustix::fs::fchmod(&fd, Mode::from(0o644)).map_err(cannot)?;
                return Ok(File::from(fd));
            }
            Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(cannot(e)),
        }
        let existing = match rustix::fs::open(path, flags | OFlags::RDWR, Mode::empty()) {
            Err(rustix::io::Errno::ACCESS | rustix::io::Errno::ROFS) => {
                rustix::fs::open(path, flags | OFlags::RDONLY, Mode::empty())
            }
            r => r,
        };
        match existing {
            Ok(fd) => return Ok(File::from(fd)),
            // Removed by its holder in between: create it again.
            Err(rustix::io::Errno::NOENT) => continue,
            Err(e) => return Err(cannot(e)),
        }
    }
}

/// What to do about a lock that is held: wait for it, or (having waited) wait longer.
pub fn wait_hint(waited: Option<Duration>) -> &'static str {
    match waited {
        Some(_) => "try again later, or pass a longer --wait-lock",
        None => "try again later, or pass --wait-lock SECONDS",
    }
}

/// Takes the lock at `path` for `what` (used in the message). Without `wait` a held lock fails
/// at once with exit 75; with it, retries until the time runs out.
///
/// # Errors
/// Exit 75 when another run holds the lock; exit 1 when the file cannot be opened or locked.
pub fn acquire(path: &Path, what: &str, wait: Option<Duration>) -> Result<LockGuard> {
    let deadline = wait.map(|w| Instant::now() + w);
    let mut file = open(path)?;
    loop {
        match file.try_lock() {
            Ok(()) if names_file(path, &file) => {
                write_holder(&file);
                return Ok(LockGuard {
                    file,
                    path: path.to_path_buf(),
                });
            }
            // Its holder removed it when done: the lock that counts is on the file at the path.
            Ok(()) => file = open(path)?,
            Err(TryLockError::WouldBlock) => {
                if deadline.is_some_and(|d| Instant::now() < d) {
                    std::thread::sleep(Duration::from_millis(50));
                    continue;
                }
                let waited = match wait {
                    Some(w) => format!(" after waiting {}s", w.as_secs_f64()),
                    None => String::new(),
                };
                let by = read_holder(&file).map_or(String::new(), |h| h.shown());
                return Err(Error::locked(format!("{what} is locked"))
                    .because(format!("another run holds {}{by}{waited}", path.display()))
                    .hint(wait_hint(wait)));
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
        assert!(e.to_string().contains("pass --wait-lock SECONDS"), "{e}");
        // The message names the holder from the line it wrote into the file.
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let by = format!(" (pid {} on {}, since ", std::process::id(), host.trim());
        assert!(e.to_string().contains(&by), "{e}");
        let line = std::fs::read_to_string(&p).unwrap();
        assert!(
            line.ends_with('\n') && line.lines().count() == 1,
            "{line:?}"
        );
        // A half line (no newline yet) and the line of a process that is gone name nobody.
        let mut h: Holder = serde_json::from_str(line.trim()).unwrap();
        assert_eq!(live_holder(&line), Some(h.clone()));
        assert_eq!(live_holder(line.trim_end()), None);
        h.start = h.start.map(|s| s + 1);
        let dead = format!("{}\n", serde_json::to_string(&h).unwrap());
        assert_eq!(live_holder(&dead), None);
        let e = acquire(&p, "target", Some(Duration::from_millis(120))).unwrap_err();
        assert!(e.to_string().contains("after waiting"), "{e}");
        assert!(e.to_string().contains("a longer --wait-lock"), "{e}");
        drop(g);
        acquire(&p, "target", None).unwrap();
    }

    #[test]
    fn a_run_leaves_no_lock_file_and_a_waiter_starts_over_on_a_fresh_one() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x.lock");
        let g = acquire(&p, "target", None).unwrap();
        assert!(p.exists());
        let mode = std::fs::metadata(&p).unwrap().mode() & 0o777;
        assert_eq!(mode, 0o644, "usable by other users whatever the umask");
        drop(g);
        assert!(!p.exists(), "the lock file outlived its run");
        // A waiter that opened the file before its holder removed it ends up holding the file
        // at the path, never the removed one.
        let g = acquire(&p, "target", None).unwrap();
        let p2 = p.clone();
        let waiter = std::thread::spawn(move || {
            let w = acquire(&p2, "target", Some(Duration::from_secs(10))).unwrap();
            let on_disk = std::fs::metadata(&p2).unwrap();
            let held = w.file.metadata().unwrap();
            assert_eq!((on_disk.dev(), on_disk.ino()), (held.dev(), held.ino()));
            w
        });
        std::thread::sleep(Duration::from_millis(300));
        drop(g);
        let w = waiter.join().unwrap();
        // While the waiter holds it, nobody else gets it.
        assert_eq!(acquire(&p, "target", None).unwrap_err().exit_code(), 75);
        drop(w);
        assert!(!p.exists());
    }

    /// Root's runs and the postgres user's exclude each other on one file, and a file left
    /// by root (a run that was killed) is usable by the postgres user. flock(1) stands in for
    /// the other user's run: it opens the file read-only and flocks it, as [`acquire`] does.
    #[test]
    fn root_and_the_postgres_user_share_one_lock_file() {
        if !crate::owner::is_root() {
            panic!("this test runs as root (tests run as root here; see CONVENTIONS)");
        }
        let Some(pg) = user_named("postgres") else {
            panic!("no postgres OS user: install the PostgreSQL server package (make deps)");
        };
        let d = tempfile::tempdir().unwrap();
        std::os::unix::fs::chown(d.path(), Some(pg.uid), Some(pg.gid)).unwrap();
        let p = d.path().join("x.lock");
        let as_pg = |args: &[&str]| {
            std::process::Command::new("runuser")
                .args(["-u", "postgres", "--", "flock"])
                .args(args)
                .arg(&p)
                .arg("true")
                .status()
                .unwrap()
                .code()
        };
        let g = acquire(&p, "target", None).unwrap();
        assert_eq!(as_pg(&["-n"]), Some(1), "the postgres user got root's lock");
        drop(g);
        // Left behind by a root run that was killed: root-owned, and still usable.
        let left = open(&p).unwrap();
        drop(left);
        assert_eq!(std::fs::metadata(&p).unwrap().uid(), 0);
        assert_eq!(
            as_pg(&["-n"]),
            Some(0),
            "a lock file left by root blocks postgres"
        );
        // And the other way round: held by the postgres user, root waits.
        let mut holder = std::process::Command::new("runuser")
            .args(["-u", "postgres", "--", "flock", "-n"])
            .arg(&p)
            .args(["sleep", "2"])
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        assert_eq!(acquire(&p, "target", None).unwrap_err().exit_code(), 75);
        let g = acquire(&p, "target", Some(Duration::from_secs(20))).unwrap();
        assert!(holder.wait().unwrap().success());
        drop(g);
        assert!(
            !p.exists(),
            "root could not remove the lock file in the postgres user's dir"
        );
    }

    fn user_named(name: &str) -> Option<crate::owner::User> {
        let text = std::fs::read_to_string("/etc/passwd").ok()?;
        let uid = text
            .lines()
            .map(|l| l.split(':').collect::<Vec<_>>())
            .find(|f| f.first() == Some(&name))?
            .get(2)?
            .parse()
            .ok()?;
        crate::owner::user_by_uid(uid)
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
