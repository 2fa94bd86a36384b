//! What a snap-take killed part-way (SIGKILL, OOM, a cron timeout) leaves, found by the
//! names and properties only pgdr gives, and removed by the next snap-take or snap-prune:
//!
//! - btrfs and copy: `STORE/.NAME.partial`, the snapshot (a read-only subvolume, or the
//!   copy) made before its sidecar was written and it was renamed to NAME, with the sidecar
//!   `NAME.json` when the kill came between the two.
//! - btrfs: `STORE/.view-PID-NAME`, the read-only snapshot of snapshot NAME that a
//!   snap-take --to read it through ([`super::view`]) while nothing holds an flock on it.
//! - zfs: `DATASET@NAME` (and its set) carrying pgdr:tool=snap-take and the pgdr:taker of a
//!   run that is gone, but no pgdr:meta; and the clones `POOL/pgdr-read-*` (zfs-fuse) and
//!   `POOL/pgdr-view-*` (--to) such a run read a snapshot through, which would keep
//!   snap-prune from destroying it.
//!
//! Why it is safe: snapshots and partial copies are made only by snap-take, and only while it
//! holds the store's lock (an flock on `STORE/.lock` the kernel drops when the holder dies),
//! which every caller of [`remove`] holds too, except a dry run, which removes nothing. A
//! view outlives that lock, so its maker also flocks it (before letting the store's lock go)
//! for as long as it exists: the kernel drops that flock when the process dies, in whatever
//! PID namespace it ran (the PID in the name proves nothing: another namespace's, or
//! reused). A view whose flock this run gets is a dead run's. A
//! btrfs or copy leftover lies in the store itself, so no run of another store makes it; a
//! zfs snapshot belongs to the dataset, which runs with another --snapshot-dir share, so
//! there the pgdr:taker of a run that is still alive also keeps it.

use super::run::run;
use super::zfs::{Zfs, PROP_META, PROP_TAKER, PROP_TOOL, READ_PREFIX, VIEW_PREFIX};
use super::{btrfs::Btrfs, copy, probe::Filesystem, Backend};
use pgdr_core::holder::Holder;
use pgdr_core::{Context, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// One thing a killed run left.
enum Leftover {
    /// `STORE/.NAME.partial`: a copy, or (btrfs) a read-only subvolume, and its sidecar if
    /// the run had written it.
    Partial {
        path: PathBuf,
        subvolume: bool,
        sidecar: Option<PathBuf>,
    },
    /// A btrfs view of a snapshot, with the flock on it this run got (its maker is gone).
    View {
        path: PathBuf,
        _unused: std::fs::File,
    },
    /// A zfs clone snap-take read a snapshot through, and its mountpoint.
    ReadClone {
        dataset: String,
        mountpoint: PathBuf,
    },
    /// A zfs snapshot without metadata: its set, root last.
    Snapshot { root: String, set: Vec<String> },
}

impl Leftover {
    /// How it is reported (a path, or a zfs dataset or snapshot name).
    fn shown(&self) -> PathBuf {
        match self {
            Leftover::Partial { path, .. } | Leftover::View { path, .. } => path.clone(),
            Leftover::ReadClone { dataset, .. } => PathBuf::from(dataset),
            Leftover::Snapshot { root, .. } => PathBuf::from(root),
        }
    }

    fn what(&self) -> &'static str {
        match self {
            Leftover::Partial {
                subvolume: false, ..
            } => "a partial copy left by a run that was killed",
            Leftover::Partial { .. } | Leftover::Snapshot { .. } => {
                "a snapshot without metadata left by a run that was killed"
            }
            Leftover::ReadClone { .. } => {
                "a clone for reading a snapshot left by a run that was killed"
            }
            Leftover::View { .. } => "a view for reading a snapshot left by a run that was killed",
        }
    }

    fn remove(&self) -> Result<()> {
        match self {
            Leftover::Partial {
                path,
                subvolume,
                sidecar,
            } => {
                // The sidecar first: killed in between, the partial snapshot is found again.
                if let Some(s) = sidecar {
                    match std::fs::remove_file(s) {
                        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                            return Err(e).context(|| format!("cannot remove {}", s.display()))
                        }
                        _ => {}
                    }
                }
                if *subvolume {
                    Btrfs::delete(path)
                } else {
                    copy::remove_tree(path)
                }
            }
            Leftover::View { path, .. } => Btrfs::close_view(path),
            Leftover::ReadClone {
                dataset,
                mountpoint,
            } => {
                Zfs::destroy_leftover(dataset)?;
                if is_read_mountpoint(mountpoint) {
                    let _ = std::fs::remove_dir(mountpoint);
                }
                Ok(())
            }
            Leftover::Snapshot { set, .. } => set.iter().try_for_each(|s| Zfs::destroy_leftover(s)),
        }
    }
}

/// The entries directly in `store`; none when it does not exist (yet).
fn entries(store: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let rd = match std::fs::read_dir(store) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(|| format!("cannot list {}", store.display())),
    };
    rd.map(|e| e.context(|| format!("cannot list {}", store.display())))
        .collect()
}

/// The `.NAME.partial` directories (NAME a snapshot name) directly in `store`, not
/// symlinks, sorted by path; a btrfs subvolume among them is deleted as one.
fn partials(store: &Path) -> Result<Vec<Leftover>> {
    let mut out = Vec::new();
    for e in entries(store)? {
        let fname = e.file_name();
        let Some(name) = fname
            .to_str()
            .and_then(|n| n.strip_prefix('.'))
            .and_then(|n| n.strip_suffix(".partial"))
        else {
            continue;
        };
        // file_type() is the entry's own type (lstat): a symlink is never taken for one.
        let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
        if !is_dir || crate::meta::parse_name(name).is_none() {
            continue;
        }
        let path = e.path();
        // btrfs gives a subvolume's root inode 256; a copy is a plain directory.
        let subvolume = Filesystem::of(&path) == Filesystem::Btrfs
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == 256);
        // The sidecar written before the rename; never the sidecar of a published NAME.
        let sidecar = super::sidecar_path(store, name);
        let sidecar = (std::fs::symlink_metadata(store.join(name)).is_err()
            && std::fs::symlink_metadata(&sidecar).is_ok_and(|m| m.is_file()))
        .then_some(sidecar);
        out.push(Leftover::Partial {
            path,
            subvolume,
            sidecar,
        });
    }
    out.sort_by_key(Leftover::shown);
    Ok(out)
}

/// The btrfs views `.view-PID-NAME` (NAME a snapshot name) directly in `store`, not
/// symlinks, that no process holds an flock on, sorted by path; each comes with the flock.
fn dead_views(store: &Path) -> Result<Vec<Leftover>> {
    let mut out = Vec::new();
    for e in entries(store)? {
        let fname = e.file_name();
        let ours = fname
            .to_str()
            .and_then(|n| n.strip_prefix(super::btrfs::VIEW_PREFIX))
            .and_then(|n| n.split_once('-'))
            .is_some_and(|(pid, name)| {
                pid.parse::<u32>().is_ok() && crate::meta::parse_name(name).is_some()
            });
        if !ours || !e.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        let path = e.path();
        // Only a subvolume (root inode 256 on btrfs): that is all a view is.
        let subvolume = Filesystem::of(&path) == Filesystem::Btrfs
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.ino() == 256);
        if !subvolume {
            continue;
        }
        // Held: its run is alive. Gone meanwhile (its run deletes it before letting go):
        // nothing to do, also when it went between the open and the lock.
        let Ok(f) = std::fs::File::open(&path) else {
            continue;
        };
        let same = |f: &std::fs::File| {
            let (Ok(a), Ok(b)) = (f.metadata(), std::fs::symlink_metadata(&path)) else {
                return false;
            };
            (a.dev(), a.ino()) == (b.dev(), b.ino())
        };
        if f.try_lock().is_ok() && same(&f) {
            out.push(Leftover::View { path, _unused: f });
        }
    }
    out.sort_by_key(Leftover::shown);
    Ok(out)
}

/// The snapshots of this dataset that a killed snap-take left without metadata, each with
/// its set (the same-named snapshots of the descendants it made with it, root last):
/// `DATASET@NAME` (NAME a snapshot name) carrying pgdr:tool=snap-take and a
/// pgdr:taker whose run is provably gone, and no pgdr:meta. A user's own snapshot has no
/// pgdr:tool; one a live run is finishing has a live pgdr:taker (also a run under
/// another --snapshot-dir, whose lock is another file); one made by a pgdr before
/// pgdr:taker has none and is left alone.
///
/// # Errors
/// zfs cannot list the snapshots.
fn zfs_unfinished(z: &Zfs) -> Result<Vec<(String, Vec<String>)>> {
    let out = run(
        "zfs",
        &[
            "list",
            "-H",
            "-o",
            &format!("name,{PROP_TOOL},{PROP_TAKER},{PROP_META}"),
            "-t",
            "snapshot",
            "-r",
            &z.dataset,
        ],
    )?;
    let rows: Vec<[&str; 4]> = out
        .lines()
        .filter_map(|l| {
            let mut f = l.splitn(4, '\t');
            Some([f.next()?, f.next()?, f.next()?, f.next()?])
        })
        .filter(|[_, tool, _, _]| *tool == "snap-take")
        .collect();
    let me = Holder::me();
    let below = format!("{}/", z.dataset);
    let mut found = Vec::new();
    for [name, _, taker, meta] in &rows {
        let Some(snap) = name.strip_prefix(&format!("{}@", z.dataset)) else {
            continue;
        };
        if *meta != "-" || crate::meta::parse_name(snap).is_none() || !gone(taker, &me) {
            continue;
        }
        let mut set: Vec<String> = rows
            .iter()
            .filter(|[n, _, t, _]| {
                t == taker
                    && n.split_once('@')
                        .is_some_and(|(ds, s)| s == snap && ds.starts_with(&below))
            })
            .map(|[n, ..]| n.to_string())
            .collect();
        set.push(name.to_string());
        found.push((name.to_string(), set));
    }
    found.sort();
    Ok(found)
}

/// The clones (dataset, mountpoint) snap-take read a snapshot of this dataset through
/// and a killed run left: `POOL/pgdr-read-*` (and the views of --to, `POOL/pgdr-view-*`)
/// carrying pgdr:tool=snap-take and a
/// pgdr:taker whose run is provably gone, cloned from a snapshot of this dataset or a
/// descendant. Such a clone keeps its snapshot from being destroyed.
///
/// # Errors
/// zfs cannot list the datasets.
fn zfs_read_clones(z: &Zfs) -> Result<Vec<(String, PathBuf)>> {
    let out = run(
        "zfs",
        &[
            "list",
            "-H",
            "-o",
            &format!("name,origin,mountpoint,{PROP_TOOL},{PROP_TAKER}"),
            "-t",
            "filesystem",
        ],
    )?;
    // The read clones, and the views snap-take --to reads a whole snapshot through.
    let prefixes = [READ_PREFIX, VIEW_PREFIX].map(|p| format!("{}/{p}", z.pool()));
    let me = Holder::me();
    let ours = |origin: &str| {
        origin
            .split_once('@')
            .is_some_and(|(ds, _)| ds == z.dataset || ds.starts_with(&format!("{}/", z.dataset)))
    };
    Ok(out
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.splitn(5, '\t').collect();
            let [name, origin, mp, tool, taker] = f[..] else {
                return None;
            };
            let rest = prefixes
                .iter()
                .find_map(|p| name.strip_prefix(p.as_str()))?;
            (!rest.contains('/') && tool == "snap-take" && ours(origin) && gone(taker, &me))
                .then(|| (name.to_string(), PathBuf::from(mp)))
        })
        .collect())
}

/// Whether a pgdr:taker value names a run that is provably gone: one of this boot and PID
/// namespace whose process is gone, or one of this host before it rebooted (a power loss).
/// Not one of another host (a pool imported elsewhere) or PID namespace, nor an unreadable
/// value.
fn gone(taker: &str, me: &Holder) -> bool {
    serde_json::from_str::<Holder>(taker).is_ok_and(|h| {
        let rebooted = h.host == me.host
            && h.boot_id.is_some()
            && me.boot_id.is_some()
            && h.boot_id != me.boot_id;
        rebooted || h.gone(me)
    })
}

/// Whether `dir` is named as [`Zfs::read_via_clone`] names its mountpoints
/// (`$TMPDIR/pgdr-read-*`; the run that made it may have had another TMPDIR), or as a view's
/// (`STORE/.view-*`). Only an empty one is removed.
fn is_read_mountpoint(dir: &Path) -> bool {
    dir.file_name().is_some_and(|n| {
        let n = n.to_string_lossy();
        n.starts_with(READ_PREFIX) || n.starts_with(".view-")
    })
}

/// Everything of `backend` that killed runs left, in the order it can be removed (a read
/// clone before its snapshot).
fn find(backend: &Backend) -> Result<Vec<Leftover>> {
    let mut out = partials(backend.store())?;
    if let Backend::Btrfs(_) = backend {
        out.extend(dead_views(backend.store())?);
    }
    if let Backend::Zfs(z) = backend {
        for (dataset, mountpoint) in zfs_read_clones(z)? {
            out.push(Leftover::ReadClone {
                dataset,
                mountpoint,
            });
        }
        for (root, set) in zfs_unfinished(z)? {
            out.push(Leftover::Snapshot { root, set });
        }
    }
    Ok(out)
}

/// Removes what killed runs left for `backend` (the caller holds the store's lock), or with
/// `dry_run` only finds it, with one stderr note each; returns what it found (paths; zfs
/// dataset and snapshot names).
///
/// # Errors
/// The store or the storage cannot be listed, or one cannot be removed (those removed before
/// it are gone).
pub fn remove(backend: &Backend, dry_run: bool) -> Result<Vec<PathBuf>> {
    let found = find(backend)?;
    let did = if dry_run { "would remove" } else { "removed" };
    for l in &found {
        if !dry_run {
            l.remove()?;
        }
        pgdr_core::runner::note(format!("{did} {}: {}", l.shown().display(), l.what()));
    }
    if !dry_run && found.iter().any(|l| matches!(l, Leftover::Partial { .. })) {
        let _ = pgdr_core::fsx::fsync_dir(backend.store());
    }
    Ok(found.iter().map(Leftover::shown).collect())
}
