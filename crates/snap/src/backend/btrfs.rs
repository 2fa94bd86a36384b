//! btrfs: a read-only snapshot of the subvolume holding PGDATA. Snapshots are not recursive
//! (a nested subvolume shows up empty), so pg_wal and tablespaces must be in the same
//! subvolume.

use super::probe::{dev_of, Filesystem};
use super::rel_to;
use super::run::{have, run};
use crate::datadir::Layout;
use crate::meta::{SnapshotMeta, Tablespace};
use pgdr_core::{Context, Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Views of snapshots (an image is read from one) are `STORE/.view-PID-NAME`.
pub(crate) const VIEW_PREFIX: &str = ".view-";

/// The subvolume holding a data directory.
#[derive(Debug, Clone)]
pub struct Btrfs {
    pub pgdata: PathBuf,
    /// The subvolume's root directory.
    pub subvolume: PathBuf,
    pub pgdata_rel: String,
    /// Where snapshots, their sidecars and the clone registry live.
    pub store: PathBuf,
}

/// The root of the subvolume holding `path`: the highest ancestor on the same device (each
/// subvolume has its own), which btrfs gives inode 256.
fn subvolume_root(path: &Path) -> Option<PathBuf> {
    let dev = dev_of(path)?;
    let mut root = path.to_path_buf();
    while let Some(parent) = root.parent() {
        if dev_of(parent) != Some(dev) {
            break;
        }
        root = parent.to_path_buf();
    }
    (std::fs::metadata(&root).ok()?.ino() == 256).then_some(root)
}

impl Btrfs {
    /// The subvolume holding `pgdata`, or None when it is not on btrfs (or not inside a
    /// subvolume).
    ///
    /// # Errors
    /// The btrfs command is missing, or PGDATA is on the root subvolume of `/`.
    pub fn detect(pgdata: &Path, store: Option<&Path>) -> Result<Option<Btrfs>> {
        if Filesystem::of(pgdata) != Filesystem::Btrfs {
            return Ok(None);
        }
        if !have("btrfs") {
            return Err(Error::failed("cannot use the btrfs backend")
                .because("the btrfs command is not installed")
                .hint("install btrfs-progs"));
        }
        let Some(subvolume) = subvolume_root(pgdata) else {
            return Ok(None);
        };
        if subvolume.parent().is_none() {
            return Err(Error::failed("cannot use the btrfs backend").because(
                "PGDATA is on the root subvolume of /; snapshots need a place beside it",
            ));
        }
        let store = match store {
            Some(s) => s.to_path_buf(),
            None => super::default_store(&subvolume)?,
        };
        Ok(Some(Btrfs {
            pgdata_rel: rel_to(pgdata, &subvolume).unwrap_or_default(),
            pgdata: pgdata.to_path_buf(),
            subvolume,
            store,
        }))
    }

    pub fn check_layout(&self, layout: &Layout) -> Result<Vec<Tablespace>> {
        let dev = dev_of(&self.subvolume);
        let check = |what: &str, p: &Path| -> Result<String> {
            if dev_of(p) != dev || !p.starts_with(&self.subvolume) {
                return Err(Error::failed(format!(
                    "cannot take one atomic snapshot of {}",
                    self.pgdata.display()
                ))
                .because(format!(
                    "{what} is at {}, outside the subvolume {} (btrfs snapshots are not recursive)",
                    p.display(),
                    self.subvolume.display()
                ))
                .hint("keep pg_wal and tablespaces inside the PGDATA subvolume"));
            }
            Ok(rel_to(p, &self.subvolume).unwrap_or_default())
        };
        layout.check_each(check)
    }

    pub fn snap_path(&self, name: &str) -> PathBuf {
        self.store.join(name)
    }

    /// Where the snapshot is made, until [`Btrfs::publish`] renames it into place.
    pub fn partial_path(&self, name: &str) -> PathBuf {
        super::partial_path(&self.store, name)
    }

    /// A read-only snapshot of the subvolume as `STORE/.NAME.partial`: a run killed before
    /// its sidecar is written leaves a name only an unfinished snapshot has. Returns where
    /// [`Btrfs::publish`] will put it.
    ///
    /// # Errors
    /// btrfs refused.
    pub fn create(&self, name: &str) -> Result<String> {
        let partial = self.partial_path(name);
        run(
            "btrfs",
            &[
                "subvolume",
                "snapshot",
                "-r",
                &self.subvolume.to_string_lossy(),
                &partial.to_string_lossy(),
            ],
        )
        .map_err(|e| {
            Error::failed(format!("cannot snapshot {}", self.subvolume.display()))
                .because(e.why.unwrap_or_default())
        })?;
        Ok(self.snap_path(name).to_string_lossy().into_owned())
    }

    /// Renames `.NAME.partial` to NAME once its sidecar is written (a read-only subvolume can
    /// be renamed: its entry is in the store's directory), so the name never appears
    /// without its metadata. Returns its path.
    ///
    /// # Errors
    /// The name is taken, or the rename failed.
    pub fn publish(&self, name: &str) -> Result<String> {
        let dst = self.snap_path(name);
        let ok = pgdr_core::fsx::rename_noreplace(&self.partial_path(name), &dst)
            .context(|| format!("cannot rename the snapshot to {}", dst.display()))?;
        if !ok {
            return Err(Error::failed(format!("snapshot {name} exists already")));
        }
        let _ = pgdr_core::fsx::fsync_dir(&self.store);
        Ok(dst.to_string_lossy().into_owned())
    }

    /// Deletes a subvolume (a snapshot, a view, a clone) if it is there.
    ///
    /// # Errors
    /// btrfs refused.
    pub fn delete(p: &Path) -> Result<()> {
        if std::fs::symlink_metadata(p).is_err() {
            return Ok(());
        }
        run("btrfs", &["subvolume", "delete", &p.to_string_lossy()]).map(drop)
    }

    /// A read-only snapshot of the snapshot, `STORE/.view-PID-NAME`: its files for as long
    /// as it exists, whatever snap-prune does to the snapshot meanwhile. Returns its path.
    ///
    /// # Errors
    /// btrfs refused.
    pub fn open_view(&self, name: &str) -> Result<PathBuf> {
        let view = self
            .store
            .join(format!("{VIEW_PREFIX}{}-{name}", std::process::id()));
        run(
            "btrfs",
            &[
                "subvolume",
                "snapshot",
                "-r",
                &self.snap_path(name).to_string_lossy(),
                &view.to_string_lossy(),
            ],
        )?;
        Ok(view)
    }

    /// Deletes a view made by [`Btrfs::open_view`].
    ///
    /// # Errors
    /// btrfs refused.
    pub fn close_view(view: &Path) -> Result<()> {
        run("btrfs", &["subvolume", "delete", &view.to_string_lossy()]).map(drop)
    }

    /// A writable snapshot of the snapshot at `root`. Returns (location, root).
    ///
    /// # Errors
    /// btrfs refused.
    pub fn clone_to(&self, meta: &SnapshotMeta, root: &Path) -> Result<(String, PathBuf)> {
        run(
            "btrfs",
            &[
                "subvolume",
                "snapshot",
                &self.snap_path(&meta.snapshot).to_string_lossy(),
                &root.to_string_lossy(),
            ],
        )?;
        Ok((root.to_string_lossy().into_owned(), root.to_path_buf()))
    }
}
