//! Snapshot backends behind one interface: zfs (the dataset holding PGDATA), btrfs (its
//! subvolume) and copy (a directory copy with reflinks where the filesystem has them).
//!
//! Every backend has a snapshot store, `.pgdr-snapshots/NAME` beside the data directory
//! (copy), its subvolume (btrfs) or its dataset's mountpoint (zfs), or `--snapshot-dir`:
//! btrfs and copy keep their snapshots and metadata sidecars there, and every backend keeps
//! its lock there, so the lock lives beside what it protects and never inside a snapshot.
//! Created by root, the store belongs to the data directory's owner, like everything else of
//! PostgreSQL's. (Past 600 lines: the one interface and the sidecar and store handling every
//! backend shares; each backend's own commands are in its module.)
//!
//! Every snapshot carries a [`SnapshotMeta`]; only snapshots that carry one (made by
//! snap-take) are listed, so nothing else is ever pruned. Clones made through
//! [`Backend::clone_snapshot`] are recorded in the host's clone [`Registry`], which protects
//! their snapshot from [`Backend::destroy`] and lets [`Backend::destroy_clone`] refuse
//! anything it did not make.

pub mod btrfs;
pub mod copy;
pub mod discover;
pub mod leftovers;
pub mod probe;
pub mod run;
pub mod view;
pub mod zfs;

use crate::datadir::Layout;
use crate::meta::{SnapshotMeta, Tablespace};
use crate::registry::{self, CloneRecord, Registry};
use pgdr_core::{Context, Error, Result};
use probe::Filesystem;
use serde::{Deserialize, Serialize};
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

/// Which kind of storage.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    Zfs,
    Btrfs,
    Copy,
}

impl BackendKind {
    /// "zfs", "btrfs" or "copy".
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Zfs => "zfs",
            BackendKind::Btrfs => "btrfs",
            BackendKind::Copy => "copy",
        }
    }
    /// The kind named `s` ("zfs", "btrfs", "copy").
    pub fn parse(s: &str) -> Option<BackendKind> {
        match s {
            "zfs" => Some(BackendKind::Zfs),
            "btrfs" => Some(BackendKind::Btrfs),
            "copy" => Some(BackendKind::Copy),
            _ => None,
        }
    }
}

/// The storage of one data directory.
#[derive(Debug, Clone)]
pub enum Backend {
    Zfs(zfs::Zfs),
    Btrfs(btrfs::Btrfs),
    Copy(copy::CopyStore),
}

impl Backend {
    /// Finds the storage of `pgdata` (canonical). With `kind`, insists on that backend;
    /// without, asks the kernel which filesystem PGDATA is on (statfs, see [`probe`]): zfs
    /// on a ZFS dataset, btrfs on a btrfs subvolume, else copy. A zfs or btrfs command is run
    /// only when PGDATA is on that filesystem, and then its failure says so. `store` is the
    /// snapshot store (default: `.pgdr-snapshots/NAME` beside the subvolume or data
    /// directory).
    ///
    /// # Errors
    /// The asked-for backend does not hold PGDATA, or PGDATA's filesystem cannot be used.
    pub fn detect(
        pgdata: &Path,
        kind: Option<BackendKind>,
        store: Option<&Path>,
    ) -> Result<Backend> {
        let on = |what: &'static str| {
            move |e: Error| {
                Error::failed(format!(
                    "{} is on {what}, but its snapshots cannot be used",
                    pgdata.display()
                ))
                .because(e.to_string())
                .hint(format!(
                    "make the {what} tools work here, or pass --backend copy"
                ))
            }
        };
        match kind {
            Some(BackendKind::Zfs) => zfs::Zfs::detect(pgdata, store)?
                .map(Backend::Zfs)
                .ok_or_else(|| {
                    Error::failed(format!("{} is not on a ZFS dataset", pgdata.display()))
                        .because("no mounted ZFS dataset has a mountpoint above it")
                        .hint("use --backend btrfs or copy, or move PGDATA onto a dataset")
                }),
            Some(BackendKind::Btrfs) => btrfs::Btrfs::detect(pgdata, store)?
                .map(Backend::Btrfs)
                .ok_or_else(|| {
                    Error::failed(format!("{} is not on btrfs", pgdata.display()))
                        .hint("use --backend zfs or copy")
                }),
            Some(BackendKind::Copy) => Ok(Backend::Copy(copy::CopyStore::new(pgdata, store)?)),
            None => match Filesystem::of(pgdata) {
                Filesystem::Zfs => zfs::Zfs::detect(pgdata, store)
                    .map_err(on("ZFS"))?
                    .map(Backend::Zfs)
                    .ok_or_else(|| on("ZFS")(Error::failed("no mounted dataset holds it"))),
                Filesystem::Btrfs => {
                    match btrfs::Btrfs::detect(pgdata, store).map_err(on("btrfs"))? {
                        Some(b) => Ok(Backend::Btrfs(b)),
                        None => Ok(Backend::Copy(copy::CopyStore::new(pgdata, store)?)),
                    }
                }
                Filesystem::Other => Ok(Backend::Copy(copy::CopyStore::new(pgdata, store)?)),
            },
        }
    }

    /// Which backend this is.
    pub fn kind(&self) -> BackendKind {
        match self {
            Backend::Zfs(_) => BackendKind::Zfs,
            Backend::Btrfs(_) => BackendKind::Btrfs,
            Backend::Copy(_) => BackendKind::Copy,
        }
    }

    /// The data directory (canonical).
    pub fn pgdata(&self) -> &Path {
        match self {
            Backend::Zfs(z) => &z.pgdata,
            Backend::Btrfs(b) => &b.pgdata,
            Backend::Copy(c) => &c.pgdata,
        }
    }

    /// The snapshot store: snapshots and sidecars (btrfs, copy), the lock (every backend).
    pub fn store(&self) -> &Path {
        match self {
            Backend::Zfs(z) => &z.store,
            Backend::Btrfs(b) => &b.store,
            Backend::Copy(c) => &c.store,
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

    /// The lock file every snap-* tool takes for this data directory's snapshots.
    pub fn lock_path(&self) -> PathBuf {
        self.store().join(".lock")
    }

    /// Takes the lock of this data directory's snapshots (creating the store when needed).
    ///
    /// # Errors
    /// Exit 75 when another run holds it; exit 1 when the store cannot be created.
    pub fn lock(&self, wait: Option<Duration>) -> Result<pgdr_core::lock::LockGuard> {
        self.ensure_store()?;
        pgdr_core::lock::acquire(
            &self.lock_path(),
            &format!("the snapshot store of {}", self.pgdata().display()),
            wait,
        )
    }

    /// Creates the store (and `.pgdr-snapshots` above a default one), 0700, owned by the
    /// data directory's owner: a store root made would lock the postgres user out.
    ///
    /// # Errors
    /// It cannot be created.
    pub fn ensure_store(&self) -> Result<()> {
        let owner = registry::ids_of(self.pgdata());
        let store = self.store();
        let mut missing = Vec::new();
        let mut d = store;
        while !d.exists() {
            missing.push(d.to_path_buf());
            match d.parent() {
                Some(p) => d = p,
                None => break,
            }
        }
        for dir in missing.iter().rev() {
            use std::os::unix::fs::DirBuilderExt;
            match std::fs::DirBuilder::new().mode(0o700).create(dir) {
                Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                    return Err(e).context(|| format!("cannot create {}", dir.display()))
                }
                _ => {}
            }
            if let Some(o) = owner {
                registry::give_to(dir, o)?;
            }
        }
        Ok(())
    }

    /// Checks that one snapshot can cover pg_wal and every tablespace; returns the
    /// tablespaces as they will be found in the snapshot.
    ///
    /// # Errors
    /// A piece lives where one snapshot of this backend cannot reach it.
    pub fn check_layout(&self, layout: &Layout) -> Result<Vec<Tablespace>> {
        match self {
            Backend::Zfs(z) => z.check_layout(layout),
            Backend::Btrfs(b) => b.check_layout(layout),
            Backend::Copy(c) => Ok(c.check_layout(layout)),
        }
    }

    /// Whether a snapshot of this name exists (made by snap-take or not).
    ///
    /// # Errors
    /// The storage cannot be asked.
    pub fn exists(&self, name: &str) -> Result<bool> {
        match self {
            Backend::Zfs(z) => z.exists(name),
            Backend::Btrfs(b) => Ok(b.snap_path(name).exists()),
            Backend::Copy(c) => Ok(c.snap_path(name).exists()),
        }
    }

    /// Takes the snapshot (for copy: the whole copy). Returns its location. btrfs and copy
    /// make it as `STORE/.NAME.partial`, which [`Backend::publish`] renames to NAME once its
    /// metadata is stored.
    ///
    /// # Errors
    /// The storage refused it; nothing is left behind.
    pub fn create(&self, name: &str) -> Result<String> {
        self.ensure_store()?;
        match self {
            Backend::Zfs(z) => z.create(name),
            Backend::Btrfs(b) => b.create(name),
            Backend::Copy(c) => c.create(name, false),
        }
    }

    /// Reads a file inside the snapshot (relative to PGDATA), or None where the backend
    /// cannot see into a snapshot without cloning it (zfs-fuse has no `.zfs` directory).
    ///
    /// # Errors
    /// The file cannot be read.
    pub fn read_in_snapshot(&self, name: &str, rel: &str) -> Result<Option<Vec<u8>>> {
        let root = match self {
            Backend::Zfs(z) => match z.snapshot_dir(name) {
                Some(d) => d,
                None => return Ok(None),
            },
            // A snapshot being taken is read before it is published.
            Backend::Btrfs(b) if !b.snap_path(name).is_dir() => b.partial_path(name),
            Backend::Copy(c) if !c.snap_path(name).is_dir() => c.partial_path(name),
            Backend::Btrfs(b) => b.snap_path(name),
            Backend::Copy(c) => c.snap_path(name),
        };
        let p = join_rel(&root, &self.pgdata_rel()).join(rel);
        pgdr_core::fsx::read_bytes(&p).map(Some)
    }

    /// Reads a file inside the snapshot through a temporary clone (zfs without `.zfs`).
    ///
    /// # Errors
    /// The clone or the read failed.
    pub fn read_via_clone(&self, name: &str, rel: &str) -> Result<Vec<u8>> {
        match self {
            Backend::Zfs(z) => z.read_via_clone(name, rel),
            _ => self
                .read_in_snapshot(name, rel)?
                .ok_or_else(|| Error::failed("cannot read the snapshot")),
        }
    }

    /// Stores the metadata with the snapshot (this is what makes it snap-take's).
    ///
    /// # Errors
    /// It cannot be stored.
    pub fn set_meta(&self, meta: &SnapshotMeta) -> Result<()> {
        match self {
            Backend::Zfs(z) => z.set_meta(meta),
            Backend::Btrfs(_) | Backend::Copy(_) => self.write_sidecar(meta),
        }
    }

    /// Gives a snapshot whose metadata is stored its name (btrfs, copy: renames
    /// `.NAME.partial` to NAME; zfs: nothing, its metadata is on the snapshot itself).
    ///
    /// # Errors
    /// The name is taken, or the rename failed.
    pub fn publish(&self, name: &str) -> Result<()> {
        match self {
            Backend::Zfs(_) => Ok(()),
            Backend::Btrfs(b) => b.publish(name).map(drop),
            Backend::Copy(c) => c.publish(name).map(drop),
        }
    }

    /// Every snapshot of this data directory made by snap-take, oldest first.
    ///
    /// # Errors
    /// The storage or a snapshot's metadata cannot be read.
    pub fn list(&self) -> Result<Vec<SnapshotMeta>> {
        let mut v = match self {
            Backend::Zfs(z) => z.list()?,
            Backend::Btrfs(b) => read_sidecars(&b.store, |n| b.snap_path(n))?,
            Backend::Copy(c) => read_sidecars(&c.store, |n| c.snap_path(n))?,
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
    ///
    /// # Errors
    /// It does not exist or was not made by snap-take.
    pub fn get(&self, name: &str) -> Result<SnapshotMeta> {
        self.list()?
            .into_iter()
            .find(|m| m.snapshot == name)
            .ok_or_else(|| {
                Error::failed(format!("no snapshot {name} of {}", self.pgdata().display()))
                    .because("it does not exist or was not made by snap-take")
            })
    }

    /// Destroys a snapshot and its metadata; refused when a clone depends on it.
    ///
    /// # Errors
    /// A clone depends on it, or the storage refused.
    pub fn destroy(&self, registry: &Registry, meta: &SnapshotMeta) -> Result<()> {
        if self.has_clones(registry, &meta.snapshot)? {
            return Err(Error::failed(format!("cannot destroy {}", meta.snapshot))
                .because("a clone depends on it"));
        }
        self.remove_snapshot(&meta.snapshot, meta.members.len() > 1)
    }

    /// Removes a snapshot (all of its set with `recursive`) and its sidecar, unconditionally:
    /// [`Backend::destroy`], and the rollback of one whose metadata could not be completed.
    ///
    /// # Errors
    /// The storage refused.
    pub fn remove_snapshot(&self, name: &str, recursive: bool) -> Result<()> {
        match self {
            Backend::Zfs(z) => z.destroy(name, recursive),
            Backend::Btrfs(b) => {
                btrfs::Btrfs::delete(&b.partial_path(name))?;
                btrfs::Btrfs::delete(&b.snap_path(name))?;
                self.remove_sidecar(name)
            }
            Backend::Copy(c) => {
                c.abandon(name);
                c.remove_tree(&c.snap_path(name))?;
                self.remove_sidecar(name)
            }
        }
    }

    /// Clones a snapshot into a writable copy named `clone` (a valid label, not recorded
    /// yet), at `target` (a directory that must not exist) or the backend's default place,
    /// and records it in `registry` (state "creating"). On any failure nothing is left.
    ///
    /// # Errors
    /// The name is invalid or taken, the target exists, or the storage refused.
    pub fn clone_snapshot(
        &self,
        registry: &Registry,
        meta: &SnapshotMeta,
        clone: &str,
        target: Option<&Path>,
    ) -> Result<CloneRecord> {
        crate::meta::check_label_arg("clone name", clone)?;
        if registry.read(clone)?.is_some() {
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
        let record = |location: String, root: PathBuf| CloneRecord {
            clone: clone.to_string(),
            snapshot: meta.snapshot.clone(),
            source_pgdata: meta.pgdata.clone(),
            backend: self.kind(),
            store: self.store().to_path_buf(),
            location,
            path: join_rel(&root, &meta.pgdata_rel),
            root,
            created: chrono::Utc::now(),
            state: "creating".into(),
            server: None,
            repository: None,
        };
        let rec = match self {
            Backend::Zfs(z) => {
                let (location, root) = z.clone_to(meta, clone, target)?;
                record(location, root)
            }
            Backend::Btrfs(b) => {
                let (location, root) = b.clone_to(meta, &self.fresh_clone_root(clone, target)?)?;
                record(location, root)
            }
            Backend::Copy(c) => {
                // A copy takes a while: recorded first, so a run killed while copying leaves
                // a clone that --list shows as creating and --destroy removes.
                let root = self.fresh_clone_root(clone, target)?;
                let rec = record(root.to_string_lossy().into_owned(), root);
                registry.write(&rec)?;
                if let Err(e) = c.clone_to(meta, &rec.root) {
                    let _ = registry.remove(clone);
                    return Err(e);
                }
                return Ok(rec);
            }
        };
        if let Err(e) = registry.write(&rec) {
            let _ = self.remove_clone(&rec);
            return Err(e);
        }
        Ok(rec)
    }

    /// [`Backend::clone_root`], refused when something is there already: a clone is never
    /// merged into, nor its rollback allowed to remove, files it did not make.
    fn fresh_clone_root(&self, clone: &str, target: Option<&Path>) -> Result<PathBuf> {
        let root = self.clone_root(clone, target)?;
        if std::fs::symlink_metadata(&root).is_ok() {
            return Err(Error::failed(format!("cannot clone into {}", root.display()))
                .because("it exists already, and no clone of that name is recorded")
                .hint("remove it if nothing uses it (a snap-clone killed before pgdr recorded clones first leaves one), or pick another --name"));
        }
        Ok(root)
    }

    /// Where a btrfs or copy clone goes: the given target, else `STORE/clones/NAME`.
    fn clone_root(&self, clone: &str, target: Option<&Path>) -> Result<PathBuf> {
        match target {
            Some(t) => Ok(t.to_path_buf()),
            None => {
                self.ensure_store()?;
                let d = self.store().join("clones");
                match std::fs::create_dir(&d) {
                    Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                        return Err(e).context(|| format!("cannot create {}", d.display()))
                    }
                    _ => {}
                }
                if let Some(o) = registry::ids_of(self.pgdata()) {
                    registry::give_to(&d, o)?;
                }
                Ok(d.join(clone))
            }
        }
    }

    /// Destroys a clone made by [`Backend::clone_snapshot`] and forgets it; refuses anything
    /// it did not make.
    ///
    /// # Errors
    /// No such clone, not ours, or the storage refused.
    pub fn destroy_clone(&self, registry: &Registry, clone: &str) -> Result<()> {
        let rec = registry.read(clone)?.ok_or_else(|| {
            Error::failed(format!("no clone named {clone}"))
                .because("it has no record in the clone registry")
        })?;
        self.remove_clone(&rec)?;
        registry.remove(clone)
    }

    /// Removes a recorded clone's storage (not its record).
    ///
    /// # Errors
    /// It is not the backend's clone, or the storage refused.
    pub fn remove_clone(&self, rec: &CloneRecord) -> Result<()> {
        match self {
            Backend::Zfs(z) => z.destroy_clone(rec),
            Backend::Btrfs(_) if rec.root.exists() => run::run(
                "btrfs",
                &["subvolume", "delete", &rec.root.to_string_lossy()],
            )
            .map(drop),
            Backend::Copy(c) => c.remove_tree(&rec.root),
            Backend::Btrfs(_) => Ok(()),
        }
    }

    /// Whether a clone depends on the snapshot: recorded in the registry, or (zfs) any
    /// dataset whose origin it is.
    ///
    /// # Errors
    /// The registry or the storage cannot be read.
    pub fn has_clones(&self, registry: &Registry, name: &str) -> Result<bool> {
        if let Backend::Zfs(z) = self {
            if z.has_any_clone(name)? {
                return Ok(true);
            }
        }
        registry.has_clones(self.pgdata(), name)
    }

    fn sidecar_path(&self, name: &str) -> PathBuf {
        sidecar_path(self.store(), name)
    }

    /// The sidecar belongs to the data directory's owner, like the snapshot it describes.
    fn write_sidecar(&self, meta: &SnapshotMeta) -> Result<()> {
        let p = self.sidecar_path(&meta.snapshot);
        let mut text = serde_json::to_string_pretty(meta).expect("metadata serializes");
        text.push('\n');
        pgdr_core::fsx::write_atomic(
            &p,
            text.as_bytes(),
            &pgdr_core::fsx::WriteOptions {
                backup: false,
                new_mode: Some(0o600),
            },
        )?;
        match registry::ids_of(self.pgdata()) {
            Some(o) => registry::give_to(&p, o),
            None => Ok(()),
        }
    }

    fn remove_sidecar(&self, name: &str) -> Result<()> {
        let p = self.sidecar_path(name);
        match std::fs::remove_file(&p) {
            Ok(()) => {
                let _ = pgdr_core::fsx::fsync_dir(self.store());
                Ok(())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e).context(|| format!("cannot remove {}", p.display())),
        }
    }
}

/// The default store of a data directory (or, for btrfs, its subvolume): `.pgdr-snapshots/NAME`
/// beside it.
///
/// # Errors
/// `dir` is `/`.
pub fn default_store(dir: &Path) -> Result<PathBuf> {
    let parent = dir.parent().ok_or_else(|| {
        Error::failed("cannot place the snapshot store")
            .because(format!("{} has no parent directory", dir.display()))
            .hint("pass --snapshot-dir DIR")
    })?;
    Ok(parent
        .join(".pgdr-snapshots")
        .join(flat_name(Path::new(dir.file_name().unwrap_or_default()))))
}

/// Where btrfs and copy make a snapshot until it is published: a name only an unfinished
/// snapshot has, so one a killed run left is recognisable ([`leftovers`]).
pub(crate) fn partial_path(store: &Path, name: &str) -> PathBuf {
    store.join(format!(".{name}.partial"))
}

pub(crate) fn sidecar_path(store: &Path, name: &str) -> PathBuf {
    store.join(format!("{name}.json"))
}

/// Sidecars whose snapshot directory exists. An unreadable sidecar is an error: silently
/// skipping it would let the newest-snapshot rule pick the wrong one.
pub(crate) fn read_sidecars(
    store: &Path,
    snap_path: impl Fn(&str) -> PathBuf,
) -> Result<Vec<SnapshotMeta>> {
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(store) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).context(|| format!("cannot list {}", store.display())),
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
        let meta = SnapshotMeta::from_stored(&text).map_err(|err| {
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

/// The path relative to `base` as a string ("" when equal), if `path` is inside `base`.
pub(crate) fn rel_to(path: &Path, base: &Path) -> Option<String> {
    let r = path.strip_prefix(base).ok()?;
    Some(r.to_string_lossy().into_owned())
}

/// `a` joined with a relative string that may be empty.
pub fn join_rel(a: &Path, rel: &str) -> PathBuf {
    if rel.is_empty() {
        a.to_path_buf()
    } else {
        a.join(rel)
    }
}

/// A name usable as one path component in store names.
pub(crate) fn flat_name(path: &Path) -> String {
    let mut s: String = path
        .components()
        .filter_map(|c| match c {
            Component::Normal(n) => Some(n.to_string_lossy().into_owned()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("_");
    s.retain(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if s.is_empty() {
        s.push_str("root");
    }
    s
}
