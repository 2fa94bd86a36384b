//! btrfs: a read-only snapshot of the subvolume holding PGDATA. Snapshots are not recursive
//! (a nested subvolume shows up empty), so pg_wal and tablespaces must be in the same
//! subvolume.

use super::CloneInfo;
use crate::meta::{SnapshotMeta, Tablespace};
use crate::sys::{self, Layout};
use pgdr_core::{Error, Result};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

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
    let dev = sys::dev_of(path)?;
    let mut root = path.to_path_buf();
    while let Some(parent) = root.parent() {
        if sys::dev_of(parent) != Some(dev) {
            break;
        }
        root = parent.to_path_buf();
    }
    (std::fs::metadata(&root).ok()?.ino() == 256).then_some(root)
}

impl Btrfs {
    pub fn detect(pgdata: &Path, store: Option<&Path>) -> Result<Option<Btrfs>> {
        if sys::fs_type(pgdata) != Some(sys::BTRFS_MAGIC) {
            return Ok(None);
        }
        if !sys::have("btrfs") {
            return Err(Error::failed("cannot use the btrfs backend")
                .because("the btrfs command is not installed")
                .hint("install btrfs-progs"));
        }
        let Some(subvolume) = subvolume_root(pgdata) else {
            return Ok(None);
        };
        let Some(parent) = subvolume.parent() else {
            return Err(Error::failed("cannot use the btrfs backend").because(
                "PGDATA is on the root subvolume of /; snapshots need a place beside it",
            ));
        };
        let store = match store {
            Some(s) => s.to_path_buf(),
            None => parent
                .join(".pgdr-snapshots")
                .join(sys::flat_name(Path::new(
                    subvolume.file_name().unwrap_or_default(),
                ))),
        };
        Ok(Some(Btrfs {
            pgdata_rel: sys::rel_to(pgdata, &subvolume).unwrap_or_default(),
            pgdata: pgdata.to_path_buf(),
            subvolume,
            store,
        }))
    }

    pub fn check_layout(&self, layout: &Layout) -> Result<Vec<Tablespace>> {
        let dev = sys::dev_of(&self.subvolume);
        let check = |what: &str, p: &Path| -> Result<String> {
            if sys::dev_of(p) != dev || !p.starts_with(&self.subvolume) {
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
            Ok(sys::rel_to(p, &self.subvolume).unwrap_or_default())
        };
        layout.check_each(check)
    }

    pub fn snap_path(&self, name: &str) -> PathBuf {
        self.store.join(name)
    }

    pub fn create(&self, name: &str) -> Result<String> {
        super::ensure_private_dir(&self.store)?;
        let dst = self.snap_path(name);
        sys::run(
            "btrfs",
            &[
                "subvolume",
                "snapshot",
                "-r",
                &self.subvolume.to_string_lossy(),
                &dst.to_string_lossy(),
            ],
        )
        .map_err(|e| {
            Error::failed(format!("cannot snapshot {}", self.subvolume.display()))
                .because(e.why.unwrap_or_default())
        })?;
        Ok(dst.to_string_lossy().into_owned())
    }

    pub fn clone_snapshot(
        &self,
        meta: &SnapshotMeta,
        clone: &str,
        target: Option<&Path>,
    ) -> Result<CloneInfo> {
        let root = super::clone_root(&self.store, clone, target)?;
        sys::run(
            "btrfs",
            &[
                "subvolume",
                "snapshot",
                &self.snap_path(&meta.snapshot).to_string_lossy(),
                &root.to_string_lossy(),
            ],
        )?;
        let info = CloneInfo {
            clone: clone.to_string(),
            snapshot: meta.snapshot.clone(),
            location: root.to_string_lossy().into_owned(),
            pgdata: sys::join_rel(&root, &meta.pgdata_rel),
            root: root.clone(),
        };
        if let Err(e) = super::write_registry(&self.store, &info) {
            let _ = sys::run("btrfs", &["subvolume", "delete", &root.to_string_lossy()]);
            return Err(e);
        }
        Ok(info)
    }

    pub fn destroy_clone(&self, info: &CloneInfo) -> Result<()> {
        if info.root.exists() {
            sys::run(
                "btrfs",
                &["subvolume", "delete", &info.root.to_string_lossy()],
            )?;
        }
        super::remove_registry(&self.store, &info.clone)
    }
}
