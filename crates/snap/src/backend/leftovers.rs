//! What a snap-take killed part-way (SIGKILL, OOM, a cron timeout) leaves, found by the
//! names and properties only pgdr gives, and removed by the next snap-take or snap-prune:
//!
//! - btrfs and copy: `STORE/.NAME.partial`, the snapshot (a read-only subvolume, or the
//!   copy) made before its sidecar was written and it was renamed to NAME, with the sidecar
//!   `NAME.json` when the kill came between the two.
//! - zfs: `DATASET@NAME` (and its set) carrying pgdr:tool=snap-take and the pgdr:taker of a
//!   run that is gone, but no pgdr:meta; and the clone `POOL/pgdr-read-*` such a run read
//!   the snapshot through (zfs-fuse), which would keep snap-prune from destroying it.
//!
//! Why it is safe: snapshots and partial copies are made only by snap-take, and only while it
//! holds the store's lock (an flock on `STORE/.lock` the kernel drops when the holder dies),
//! which every caller of [`remove`] holds too, except a dry run, which removes nothing. A
//! btrfs or copy leftover lies in the store itself, so no run of another store makes it; a
//! zfs snapshot belongs to the dataset, which runs with another --snapshot-dir share, so
//! there the pgdr:taker of a run that is still alive also keeps it.

use super::{btrfs::Btrfs, copy, probe::Filesystem, zfs::Zfs, Backend};
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
            Leftover::Partial { path, .. } => path.clone(),
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
            Leftover::ReadClone {
                dataset,
                mountpoint,
            } => {
                Zfs::destroy_leftover(dataset)?;
                if super::zfs::is_read_mountpoint(mountpoint) {
                    let _ = std::fs::remove_dir(mountpoint);
                }
                Ok(())
            }
            Leftover::Snapshot { set, .. } => set.iter().try_for_each(|s| Zfs::destroy_leftover(s)),
        }
    }
}

/// The `.NAME.partial` directories (NAME a snapshot name) directly in `store`, not
/// symlinks, sorted by path; a btrfs subvolume among them is deleted as one.
fn partials(store: &Path) -> Result<Vec<Leftover>> {
    let rd = match std::fs::read_dir(store) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).context(|| format!("cannot list {}", store.display())),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e.context(|| format!("cannot list {}", store.display()))?;
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

/// Everything of `backend` that killed runs left, in the order it can be removed (a read
/// clone before its snapshot).
fn find(backend: &Backend) -> Result<Vec<Leftover>> {
    let mut out = partials(backend.store())?;
    if let Backend::Zfs(z) = backend {
        for (dataset, mountpoint) in z.stale_read_clones()? {
            out.push(Leftover::ReadClone {
                dataset,
                mountpoint,
            });
        }
        for (root, set) in z.unfinished()? {
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
