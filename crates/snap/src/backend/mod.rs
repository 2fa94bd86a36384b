//! Snapshot backends behind one interface: zfs (the dataset holding PGDATA), btrfs (its
//! subvolume) and copy (a directory copy with reflinks where the filesystem has them).
//!
//! Every snapshot carries a [`SnapshotMeta`]; only snapshots that carry one (made by
//! snap-take) are listed, so nothing else is ever pruned. Clones made through
//! [`Backend::clone_snapshot`] are tracked (a `pgdr:clone` property on zfs, a registry file
//! for btrfs and copy) so [`Backend::has_clones`] protects their snapshot and
//! [`Backend::destroy_clone`] refuses anything it did not create.

pub mod btrfs;
pub mod copy;
pub mod discover;
pub mod zfs;

use crate::meta::{SnapshotMeta, Tablespace};
use crate::sys::{self, Layout};
use pgdr_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Which kind of storage.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Zfs,
    Btrfs,
    Copy,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Zfs => "zfs",
            BackendKind::Btrfs => "btrfs",
            BackendKind::Copy => "copy",
        }
    }
    pub fn parse(s: &str) -> Option<BackendKind> {
        match s {
            "zfs" => Some(BackendKind::Zfs),
            "btrfs" => Some(BackendKind::Btrfs),
            "copy" => Some(BackendKind::Copy),
            _ => None,
        }
    }
}

/// A clone made from a snapshot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CloneInfo {
    pub clone: String,
    pub snapshot: String,
    /// zfs: the clone's dataset; btrfs and copy: its root directory.
    pub location: String,
    /// The clone's root directory (the snapshot root's counterpart).
    pub root: PathBuf,
    /// The data directory inside the clone.
    pub pgdata: PathBuf,
}

/// The storage of one data directory.
#[derive(Debug, Clone)]
pub enum Backend {
    Zfs(zfs::Zfs),
    Btrfs(btrfs::Btrfs),
    Copy(copy::CopyStore),
}

impl Backend {
    /// Finds the storage of `pgdata` (canonical). With `kind`, insists on that backend; without,
    /// zfs when PGDATA is on a ZFS dataset, btrfs on a btrfs subvolume, else copy. `store`
    /// is where btrfs and copy keep snapshots (default: `.pgdr-snapshots/<name>` beside the
    /// subvolume or data directory).
    pub fn detect(
        pgdata: &Path,
        kind: Option<BackendKind>,
        store: Option<&Path>,
    ) -> Result<Backend> {
        match kind {
            Some(BackendKind::Zfs) => {
                zfs::Zfs::detect(pgdata)?.map(Backend::Zfs).ok_or_else(|| {
                    Error::failed(format!("{} is not on a ZFS dataset", pgdata.display()))
                        .because("no mounted ZFS dataset has a mountpoint above it")
                        .hint("use --backend btrfs or copy, or move PGDATA onto a dataset")
                })
            }
            Some(BackendKind::Btrfs) => btrfs::Btrfs::detect(pgdata, store)?
                .map(Backend::Btrfs)
                .ok_or_else(|| {
                    Error::failed(format!("{} is not on btrfs", pgdata.display()))
                        .hint("use --backend zfs or copy")
                }),
            Some(BackendKind::Copy) => Ok(Backend::Copy(copy::CopyStore::new(pgdata, store)?)),
            None => {
                if sys::fs_type(pgdata) == Some(sys::BTRFS_MAGIC) {
                    if let Some(b) = btrfs::Btrfs::detect(pgdata, store)? {
                        return Ok(Backend::Btrfs(b));
                    }
                }
                if sys::have("zfs") {
                    if let Some(z) = zfs::Zfs::detect(pgdata)? {
                        return Ok(Backend::Zfs(z));
                    }
                }
                Ok(Backend::Copy(copy::CopyStore::new(pgdata, store)?))
            }
        }
    }

    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Zfs(_) => BackendKind::Zfs,
            Backend::Btrfs(_) => BackendKind::Btrfs,
            Backend::Copy(_) => BackendKind::Copy,
        }
    }

    pub fn pgdata(&self) -> &Path {
        match self {
            Backend::Zfs(z) => &z.pgdata,
            Backend::Btrfs(b) => &b.pgdata,
            Backend::Copy(c) => &c.pgdata,
        }
    }

    /// Where PGDATA sits inside a snapshot's root.
    pub fn pgdata_rel(&self) -> String {
        match self {
            Backend::Zfs(z) => z.pgdata_rel.clone(),
            Backend::Btrfs(b) => b.pgdata_rel.clone(),
            Backend::Copy(_) => String::new(),
        }
    }

    /// The lock every snap-* tool takes for this data directory.
    pub fn lock_path(&self) -> PathBuf {
        lock_path(self.pgdata())
    }

    /// Checks that one snapshot can cover pg_wal and every tablespace; returns the
    /// tablespaces as they will be found in the snapshot.
    pub fn check_layout(&self, layout: &Layout) -> Result<Vec<Tablespace>> {
        match self {
            Backend::Zfs(z) => z.check_layout(layout),
            Backend::Btrfs(b) => b.check_layout(layout),
            Backend::Copy(c) => c.check_layout(layout),
        }
    }

    /// Whether a snapshot of this name exists (made by snap-take or not).
    pub fn exists(&self, name: &str) -> Result<bool> {
        match self {
            Backend::Zfs(z) => z.exists(name),
            Backend::Btrfs(b) => Ok(b.snap_path(name).exists()),
            Backend::Copy(c) => Ok(c.snap_path(name).exists()),
        }
    }

    /// Takes the snapshot (for copy: the whole copy). Returns its location.
    pub fn create(&self, name: &str) -> Result<String> {
        match self {
            Backend::Zfs(z) => z.create(name),
            Backend::Btrfs(b) => b.create(name),
            Backend::Copy(c) => c.create(name, false),
        }
    }

    /// Reads a file inside the snapshot (relative to PGDATA), or None where the backend
    /// cannot see into a snapshot without cloning it (zfs-fuse has no `.zfs` directory).
    pub fn read_in_snapshot(&self, name: &str, rel: &str) -> Result<Option<Vec<u8>>> {
        let root = match self {
            Backend::Zfs(z) => match z.snapshot_dir(name) {
                Some(d) => d,
                None => return Ok(None),
            },
            Backend::Btrfs(b) => b.snap_path(name),
            Backend::Copy(c) => c.snap_path(name),
        };
        let p = sys::join_rel(&root, &self.pgdata_rel()).join(rel);
        pgdr_core::fsx::read_bytes(&p).map(Some)
    }

    /// Reads a file inside the snapshot through a temporary clone (zfs without `.zfs`).
    pub fn read_via_clone(&self, name: &str, rel: &str) -> Result<Vec<u8>> {
        match self {
            Backend::Zfs(z) => z.read_via_clone(name, rel),
            _ => self
                .read_in_snapshot(name, rel)?
                .ok_or_else(|| Error::failed("cannot read the snapshot")),
        }
    }

    /// Stores the metadata with the snapshot (this is what makes it snap-take's).
    pub fn set_meta(&self, meta: &SnapshotMeta) -> Result<()> {
        match self {
            Backend::Zfs(z) => z.set_meta(meta),
            Backend::Btrfs(b) => write_sidecar(&b.store, meta),
            Backend::Copy(c) => write_sidecar(&c.store, meta),
        }
    }

    /// Every snapshot of this data directory made by snap-take, oldest first.
    pub fn list(&self) -> Result<Vec<SnapshotMeta>> {
        let mut v = match self {
            Backend::Zfs(z) => z.list()?,
            Backend::Btrfs(b) => read_sidecars(&b.store, &self.pgdata_rel(), |n| b.snap_path(n))?,
            Backend::Copy(c) => read_sidecars(&c.store, "", |n| c.snap_path(n))?,
        };
        v.retain(|m| m.pgdata == self.pgdata());
        v.sort_by(|a, b| {
            a.created
                .cmp(&b.created)
                .then_with(|| a.snapshot.cmp(&b.snapshot))
        });
        Ok(v)
    }

    /// One snapshot made by snap-take, by name.
    pub fn get(&self, name: &str) -> Result<SnapshotMeta> {
        self.list()?
            .into_iter()
            .find(|m| m.snapshot == name)
            .ok_or_else(|| {
                Error::failed(format!("no snapshot {name} of {}", self.pgdata().display()))
                    .because("it does not exist or was not made by snap-take")
            })
    }

    /// Destroys a snapshot (refused when a clone depends on it).
    pub fn destroy(&self, meta: &SnapshotMeta) -> Result<()> {
        if self.has_clones(&meta.snapshot)? {
            return Err(Error::failed(format!("cannot destroy {}", meta.snapshot))
                .because("a clone depends on it"));
        }
        match self {
            Backend::Zfs(z) => z.destroy(meta),
            Backend::Btrfs(b) => {
                sys::run(
                    "btrfs",
                    &[
                        "subvolume",
                        "delete",
                        &b.snap_path(&meta.snapshot).to_string_lossy(),
                    ],
                )?;
                remove_sidecar(&b.store, &meta.snapshot)
            }
            Backend::Copy(c) => {
                c.remove_tree(&c.snap_path(&meta.snapshot))?;
                remove_sidecar(&c.store, &meta.snapshot)
            }
        }
    }

    /// Clones a snapshot into a writable copy named `clone`, at `target` (a directory that
    /// must not exist) or the backend's default place. Returns where its data directory is.
    pub fn clone_snapshot(
        &self,
        meta: &SnapshotMeta,
        clone: &str,
        target: Option<&Path>,
    ) -> Result<CloneInfo> {
        crate::meta::check_label(clone)
            .map_err(|e| Error::usage(format!("invalid clone name {clone:?}")).because(e))?;
        if self.clones()?.iter().any(|c| c.clone == clone) {
            return Err(
                Error::failed(format!("a clone named {clone} exists already"))
                    .hint("pick another --name, or destroy it first"),
            );
        }
        if let Some(t) = target {
            if t.exists() {
                return Err(Error::failed(format!("cannot clone into {}", t.display()))
                    .because("it exists already"));
            }
        }
        match self {
            Backend::Zfs(z) => z.clone_snapshot(meta, clone, target),
            Backend::Btrfs(b) => b.clone_snapshot(meta, clone, target),
            Backend::Copy(c) => c.clone_snapshot(meta, clone, target),
        }
    }

    /// Destroys a clone made by [`Backend::clone_snapshot`]; refuses anything else.
    pub fn destroy_clone(&self, clone: &str) -> Result<()> {
        let info = self
            .clones()?
            .into_iter()
            .find(|c| c.clone == clone)
            .ok_or_else(|| {
                Error::failed(format!("no clone named {clone}"))
                    .because("it does not exist or was not made by snap-clone")
            })?;
        match self {
            Backend::Zfs(z) => z.destroy_clone(&info),
            Backend::Btrfs(b) => b.destroy_clone(&info),
            Backend::Copy(c) => c.destroy_clone(&info),
        }
    }

    /// Every clone made from this data directory's snapshots.
    pub fn clones(&self) -> Result<Vec<CloneInfo>> {
        match self {
            Backend::Zfs(z) => z.clones(),
            Backend::Btrfs(b) => read_registry(&b.store),
            Backend::Copy(c) => read_registry(&c.store),
        }
    }

    /// Whether a clone depends on the snapshot.
    pub fn has_clones(&self, name: &str) -> Result<bool> {
        if let Backend::Zfs(z) = self {
            return z.has_any_clone(name);
        }
        Ok(self.clones()?.iter().any(|c| c.snapshot == name))
    }
}

/// The lock file for a data directory: one per target, shared by snap-take, snap-prune and
/// snap-clone.
pub fn lock_path(pgdata: &Path) -> PathBuf {
    let dir = ["/run/lock", "/var/lock"]
        .iter()
        .map(Path::new)
        .find(|d| d.is_dir() && pgdr_core::owner::is_root())
        .map(Path::to_path_buf)
        .unwrap_or_else(std::env::temp_dir);
    dir.join(format!("pgdr-snap-{}.lock", sys::flat_name(pgdata)))
}

fn sidecar_path(store: &Path, name: &str) -> PathBuf {
    store.join(format!("{name}.json"))
}

fn write_sidecar(store: &Path, meta: &SnapshotMeta) -> Result<()> {
    let mut text = serde_json::to_string_pretty(meta).expect("metadata serializes");
    text.push('\n');
    pgdr_core::fsx::write_atomic(
        &sidecar_path(store, &meta.snapshot),
        text.as_bytes(),
        &pgdr_core::fsx::WriteOptions {
            backup: false,
            new_mode: Some(0o600),
        },
    )?;
    Ok(())
}

fn remove_sidecar(store: &Path, name: &str) -> Result<()> {
    let p = sidecar_path(store, name);
    match std::fs::remove_file(&p) {
        Ok(()) => {
            let _ = pgdr_core::fsx::fsync_dir(store);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::failed(format!("cannot remove {}", p.display()))
            .because(pgdr_core::error::clean_io_message(&e.to_string()))),
    }
}

/// Sidecars whose snapshot directory exists. An unreadable sidecar is an error: silently
/// skipping it would let the newest-snapshot rule pick the wrong one.
fn read_sidecars(
    store: &Path,
    _rel: &str,
    snap_path: impl Fn(&str) -> PathBuf,
) -> Result<Vec<SnapshotMeta>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(store) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => {
            return Err(Error::failed(format!("cannot list {}", store.display()))
                .because(pgdr_core::error::clean_io_message(&e.to_string())))
        }
    };
    for e in rd.flatten() {
        let fname = e.file_name().to_string_lossy().into_owned();
        let Some(name) = fname.strip_suffix(".json") else {
            continue;
        };
        if crate::meta::parse_name(name).is_none() || !snap_path(name).is_dir() {
            continue;
        }
        let text = pgdr_core::fsx::read_text(&e.path())?;
        let meta: SnapshotMeta = serde_json::from_str(&text).map_err(|err| {
            Error::failed(format!(
                "cannot read snapshot metadata {}",
                e.path().display()
            ))
            .because(err)
        })?;
        out.push(meta);
    }
    Ok(out)
}

fn registry_dir(store: &Path) -> PathBuf {
    store.join("clones")
}

pub(crate) fn write_registry(store: &Path, info: &CloneInfo) -> Result<()> {
    let dir = registry_dir(store);
    std::fs::create_dir_all(&dir).map_err(|e| {
        Error::failed(format!("cannot create {}", dir.display()))
            .because(pgdr_core::error::clean_io_message(&e.to_string()))
    })?;
    let text = serde_json::to_string_pretty(info).expect("clone info serializes");
    pgdr_core::fsx::write_atomic(
        &dir.join(format!("{}.json", info.clone)),
        text.as_bytes(),
        &pgdr_core::fsx::WriteOptions {
            backup: false,
            new_mode: Some(0o600),
        },
    )?;
    Ok(())
}

pub(crate) fn remove_registry(store: &Path, clone: &str) -> Result<()> {
    let p = registry_dir(store).join(format!("{clone}.json"));
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(Error::failed(format!("cannot remove {}", p.display()))
                .because(pgdr_core::error::clean_io_message(&e.to_string())))
        }
        _ => Ok(()),
    }
}

fn read_registry(store: &Path) -> Result<Vec<CloneInfo>> {
    let mut out = Vec::new();
    let Ok(rd) = std::fs::read_dir(registry_dir(store)) else {
        return Ok(out);
    };
    for e in rd.flatten() {
        if !e.file_name().to_string_lossy().ends_with(".json") {
            continue;
        }
        let text = pgdr_core::fsx::read_text(&e.path())?;
        let info: CloneInfo = serde_json::from_str(&text).map_err(|err| {
            Error::failed(format!("cannot read clone record {}", e.path().display())).because(err)
        })?;
        out.push(info);
    }
    out.sort_by(|a, b| a.clone.cmp(&b.clone));
    Ok(out)
}

/// Creates a store directory (and parents): 0711, so the data directory's owner can reach
/// the snapshots and clones inside (each 0700 itself) without listing the store.
/// Where a clone goes: the given target, else `STORE/clones/NAME` (the store's private dir).
fn clone_root(store: &Path, clone: &str, target: Option<&Path>) -> Result<PathBuf> {
    match target {
        Some(t) => Ok(t.to_path_buf()),
        None => {
            let d = store.join("clones");
            ensure_private_dir(&d)?;
            Ok(d.join(clone))
        }
    }
}

pub(crate) fn ensure_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o711)
        .create(dir)
        .map_err(|e| {
            Error::failed(format!("cannot create {}", dir.display()))
                .because(pgdr_core::error::clean_io_message(&e.to_string()))
        })
}
