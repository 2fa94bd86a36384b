//! SIGINT/SIGTERM: remove this run's temporary files and leave every target as it was.
//!
//! By default a signal ends the run at once (after any critical section in progress, such as
//! a rename, has finished), removing registered temporary files, with exit 1. A tool with its
//! own rollback (snap-clone) calls [`set_cooperative`] and polls [`interrupted`] instead.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard, OnceLock};

static INTERRUPTED: AtomicBool = AtomicBool::new(false);
static COOPERATIVE: AtomicBool = AtomicBool::new(false);
static TEMPS: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
static CRITICAL: Mutex<()> = Mutex::new(());
static INSTALLED: OnceLock<()> = OnceLock::new();

/// Starts the signal-watching thread (once per process).
pub fn install(tool: &'static str) {
    INSTALLED.get_or_init(|| {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM]) else {
            return;
        };
        std::thread::spawn(move || {
            for sig in signals.forever() {
                INTERRUPTED.store(true, Ordering::SeqCst);
                if COOPERATIVE.load(Ordering::SeqCst) {
                    continue;
                }
                let _wait_for_critical = lock_ignoring_poison(&CRITICAL);
                remove_temps();
                let name = if sig == SIGINT { "SIGINT" } else { "SIGTERM" };
                eprintln!(
                    "{tool}: interrupted by {name}: temporary files removed, nothing changed"
                );
                std::process::exit(1);
            }
        });
    });
}

fn lock_ignoring_poison<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn remove_temps() {
    for p in lock_ignoring_poison(&TEMPS).drain(..) {
        let _ = std::fs::remove_file(&p);
    }
}

/// The tool handles interruption itself, polling [`interrupted`].
pub fn set_cooperative(on: bool) {
    COOPERATIVE.store(on, Ordering::SeqCst);
}

/// Whether SIGINT or SIGTERM arrived.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// While held, a signal waits: used around renames so a target is never half-replaced.
pub fn critical_section() -> MutexGuard<'static, ()> {
    lock_ignoring_poison(&CRITICAL)
}

/// A temporary file removed on drop and on SIGINT/SIGTERM, unless [`TempFile::keep`] is called.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    armed: bool,
}

impl TempFile {
    pub fn register(path: &Path) -> TempFile {
        lock_ignoring_poison(&TEMPS).push(path.to_path_buf());
        TempFile {
            path: path.to_path_buf(),
            armed: true,
        }
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// The file was renamed into place: forget it.
    pub fn keep(mut self) {
        self.armed = false;
        unregister(&self.path);
    }
}

fn unregister(path: &Path) {
    lock_ignoring_poison(&TEMPS).retain(|p| p != path);
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
            unregister(&self.path);
        }
    }
}
