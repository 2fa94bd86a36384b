//! A read-only view of one snapshot's files for as long as an image is read from it, that
//! snap-prune cannot take away meanwhile: on ZFS a read-only clone of the snapshot set (which
//! also makes prune skip the snapshot: it has a clone), on btrfs a read-only snapshot of the
//! snapshot; a copy snapshot is read in place under the lock of its data directory's
//! snapshots, held until the view is dropped. A btrfs view is flocked by its maker for as
//! long as it exists, so one left by a run that died (kill -9) is told from a live run's and
//! removed as a leftover ([`super::leftovers`]) by the next snap-take or snap-prune; a ZFS
//! view of a run whose process is gone is removed by the next view of the same pool.

use super::btrfs::Btrfs;
use super::zfs::Zfs;
use super::{join_rel, Backend};
use crate::meta::SnapshotMeta;
use pgdr_core::lock::LockGuard;
use pgdr_core::{Context, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// What a view is made of, to remove when it is dropped.
#[derive(Debug)]
enum Made {
    Nothing,
    Btrfs(PathBuf),
    Zfs {
        dataset: String,
        mountpoint: PathBuf,
    },
}

/// The files of one snapshot, read-only.
#[derive(Debug)]
pub struct View {
    /// The snapshot's root (PGDATA is `pgdata_rel` below it).
    pub root: PathBuf,
    made: Made,
    _lock: Option<LockGuard>,
    /// The flock on a btrfs view that tells it is in use: released (after the view is
    /// deleted, fields drop after `drop`) or by the kernel when the process dies.
    _in_use: Option<std::fs::File>,
    /// What killed runs left, removed while the view was made (see [`super::leftovers`]).
    pub removed_leftovers: Vec<PathBuf>,
}

impl View {
    /// The data directory as the snapshot has it.
    pub fn pgdata(&self, meta: &SnapshotMeta) -> PathBuf {
        join_rel(&self.root, &meta.pgdata_rel)
    }
}

impl Drop for View {
    fn drop(&mut self) {
        match &self.made {
            Made::Nothing => {}
            Made::Btrfs(p) => {
                let _ = Btrfs::close_view(p);
            }
            Made::Zfs {
                dataset,
                mountpoint,
            } => {
                if Zfs::close_view(dataset).is_ok() {
                    let _ = std::fs::remove_dir(mountpoint);
                }
            }
        }
    }
}

/// Whether a process with this pid exists (a view's maker).
pub fn alive(pid: i32) -> bool {
    match rustix::process::Pid::from_raw(pid) {
        Some(p) => matches!(
            rustix::process::test_kill_process(p),
            Ok(()) | Err(rustix::io::Errno::PERM)
        ),
        None => false,
    }
}

fn make_dir(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(p)
        .context(|| format!("cannot create {}", p.display()))
}

/// A view of the snapshot `name` of `backend`, with the snapshot's stored metadata. The lock
/// of the data directory's snapshots is taken (waiting up to `wait`) while the snapshot is
/// found and the view made; for a copy snapshot it is held as long as the view.
///
/// # Errors
/// The lock is held (exit 75), the snapshot does not exist (or was not made by snap-take), or
/// the storage refused the view.
pub fn open(backend: &Backend, name: &str, wait: Option<Duration>) -> Result<(View, SnapshotMeta)> {
    let lock = backend.lock(wait)?;
    // Under the lock, as snap-take and snap-prune do: this is a snap-take too.
    let removed_leftovers = super::leftovers::remove(backend, false)?;
    let meta = backend.get(name)?;
    let view = match backend {
        Backend::Copy(c) => View {
            root: c.snap_path(name),
            made: Made::Nothing,
            _lock: Some(lock),
            _in_use: None,
            removed_leftovers,
        },
        Backend::Btrfs(b) => {
            let p = b.open_view(name)?;
            // Locked before the store's lock is let go, so a run that finds it unlocked
            // under that lock knows its maker is gone (whatever its PID namespace). Waits:
            // only a dry run's look (no store lock) can hold it, and only for a moment.
            let in_use = std::fs::File::open(&p).and_then(|f| {
                f.lock()?;
                Ok(f)
            });
            let in_use = match in_use {
                Ok(f) => f,
                Err(e) => {
                    let _ = Btrfs::close_view(&p);
                    return Err(e).context(|| format!("cannot lock {}", p.display()));
                }
            };
            View {
                root: p.clone(),
                made: Made::Btrfs(p),
                _lock: None,
                _in_use: Some(in_use),
                removed_leftovers,
            }
        }
        Backend::Zfs(z) => {
            for (ds, mp) in z.stale_views()? {
                if Zfs::close_view(&ds).is_ok() {
                    let _ = std::fs::remove_dir(mp);
                }
            }
            let mp = z.store.join(format!(".view-{}-{name}", std::process::id()));
            make_dir(&mp)?;
            match z.open_view(&meta, &mp) {
                Ok(dataset) => View {
                    root: mp.clone(),
                    made: Made::Zfs {
                        dataset,
                        mountpoint: mp,
                    },
                    _lock: None,
                    _in_use: None,
                    removed_leftovers,
                },
                Err(e) => {
                    let _ = std::fs::remove_dir(&mp);
                    return Err(e);
                }
            }
        }
    };
    Ok((view, meta))
}
