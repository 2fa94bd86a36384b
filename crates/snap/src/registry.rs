//! The clone registry: one JSON record per clone made from a snap-take snapshot, per host, in
//! `$PGDR_CLONE_DIR` (default `/var/lib/pgdr/clones`). It is the one list of clones:
//! snap-clone's `--list` and `--destroy` read it, and snap-prune asks it whether a snapshot
//! has a clone (for ZFS the filesystem's own origin is asked too).
//!
//! Who owns what: like PostgreSQL's own files, everything belongs to the data directory's
//! owner. A record (and the registry directory, when it is created) written by root is
//! given to the clone's owner, so the postgres user sees, and can destroy, the clones root
//! made, and the other way round. `NAME.lock`, the per-clone lock, lives beside the records
//! and is gone when the run that took it ends.
//!
//! A record is written as soon as the clone exists (state `creating`), so even a clone whose
//! run was killed can be found and destroyed.

use crate::backend::BackendKind;
use chrono::{DateTime, Utc};
use pgdr_core::fsx::{self, WriteOptions};
use pgdr_core::{Context, Error, Result};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The registry directory when `$PGDR_CLONE_DIR` is not set.
pub const DEFAULT_DIR: &str = "/var/lib/pgdr/clones";

/// One clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CloneRecord {
    /// The clone's name.
    pub clone: String,
    /// The snapshot it was made from.
    pub snapshot: String,
    /// The data directory the snapshot was taken of.
    pub source_pgdata: PathBuf,
    pub backend: BackendKind,
    /// The snapshot store of the source (where its snapshots, or for zfs its lock, live).
    pub store: PathBuf,
    /// zfs: the clone's dataset; btrfs and copy: its root directory.
    pub location: String,
    /// The clone's root (its dataset's mountpoint or its directory).
    pub root: PathBuf,
    /// The clone's data directory.
    pub path: PathBuf,
    pub created: DateTime<Utc>,
    /// "creating" while it is set up, then "ready".
    pub state: String,
    /// The server snap-clone configured in it; None for a bare clone (the library's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerRecord>,
    /// For a clone restored from an image: the repository it came from. Its storage is then
    /// a plain directory (`backend` copy, `root`), depending on no snapshot of this host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repository: Option<String>,
}

/// The server configured in a clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerRecord {
    pub port: u16,
    pub socket_dir: PathBuf,
    /// The log the server is started with.
    pub log: PathBuf,
    pub pg_version: u32,
    /// "time", "lsn", "immediate" or "latest", and the value.
    pub target_type: String,
    pub target: String,
    /// "pause" or "promote".
    pub action: String,
}

/// The host's clone registry.
#[derive(Debug, Clone)]
pub struct Registry {
    pub dir: PathBuf,
}

impl Registry {
    /// `$PGDR_CLONE_DIR`, else [`DEFAULT_DIR`].
    pub fn host() -> Registry {
        let dir = std::env::var_os("PGDR_CLONE_DIR")
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
        Registry { dir }
    }

    fn record_path(&self, name: &str) -> PathBuf {
        self.dir.join(format!("{name}.json"))
    }

    /// Creates the registry directory (0755: every user that prunes snapshots must see which
    /// have clones; records hold no secrets) when missing; created by root, it is given to
    /// `owner` (uid, gid), the data directory owner of the clone about to be recorded.
    ///
    /// # Errors
    /// It cannot be created (a non-root user where the parent is root's).
    pub fn ensure(&self, owner: (u32, u32)) -> Result<()> {
        if self.dir.is_dir() {
            return Ok(());
        }
        if let Some(parent) = self.dir.parent() {
            std::fs::create_dir_all(parent).context(|| self.cannot_create())?;
        }
        use std::os::unix::fs::DirBuilderExt;
        match std::fs::DirBuilder::new().mode(0o755).create(&self.dir) {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(Error::failed(self.cannot_create())
                    .because(pgdr_core::error::clean_io_message(&e.to_string()))
                    .hint(format!(
                "create it once as root (install -d -o postgres -m 700 {}), or set PGDR_CLONE_DIR",
                self.dir.display()
            )))
            }
            _ => {}
        }
        give_to(&self.dir, owner)
    }

    fn cannot_create(&self) -> String {
        format!("cannot create the clone registry {}", self.dir.display())
    }

    /// The lock of one clone name, held for a whole create or destroy. The registry must
    /// exist ([`Registry::ensure`]).
    ///
    /// # Errors
    /// Exit 75 when another run holds it.
    pub fn lock(&self, name: &str, wait: Option<Duration>) -> Result<pgdr_core::lock::LockGuard> {
        pgdr_core::lock::acquire(
            &self.dir.join(format!("{name}.lock")),
            &format!("clone {name}"),
            wait,
        )
    }

    /// The record of a clone, if there is one.
    ///
    /// # Errors
    /// It exists but cannot be read.
    pub fn read(&self, name: &str) -> Result<Option<CloneRecord>> {
        let p = self.record_path(name);
        if !p.exists() {
            return Ok(None);
        }
        let text = fsx::read_text(&p)?;
        serde_json::from_str(&text).map(Some).map_err(|e| {
            Error::failed(format!("cannot read clone record {}", p.display())).because(e)
        })
    }

    /// Whether the record of `rec` was written by root or by the owner of the clone it names
    /// (its data directory, and for a copy, whose removal is a plain recursive delete, its
    /// root too): a record anyone else planted must never make root stop or remove something.
    /// (btrfs removes only a subvolume, zfs only a dataset carrying pgdr:clone.)
    pub fn trusted(&self, rec: &CloneRecord) -> bool {
        let uid = |p: &Path| std::fs::symlink_metadata(p).ok().map(|m| m.uid());
        match uid(&self.record_path(&rec.clone)) {
            Some(0) => true,
            Some(u) => {
                let path_ok = uid(&rec.path).is_none_or(|p| p == u);
                let root_ok =
                    rec.backend != BackendKind::Copy || uid(&rec.root).is_none_or(|r| r == u);
                path_ok && root_ok && rec.path.starts_with(&rec.root)
            }
            None => false,
        }
    }

    /// Writes (or replaces) a record, atomically, given to the clone's owner.
    ///
    /// # Errors
    /// The registry cannot be written.
    pub fn write(&self, rec: &CloneRecord) -> Result<()> {
        let owner = ids_of(&rec.path).or_else(|| ids_of(&rec.source_pgdata));
        if let Some(o) = owner {
            self.ensure(o)?;
        }
        let mut text = serde_json::to_string_pretty(rec).expect("a record serializes");
        text.push('\n');
        let p = self.record_path(&rec.clone);
        fsx::write_atomic(
            &p,
            text.as_bytes(),
            &WriteOptions {
                backup: false,
                new_mode: Some(0o600),
            },
        )?;
        match owner {
            Some(o) => give_to(&p, o),
            None => Ok(()),
        }
    }

    /// Removes a record (none is fine).
    ///
    /// # Errors
    /// It exists and cannot be removed.
    pub fn remove(&self, name: &str) -> Result<()> {
        let p = self.record_path(name);
        match std::fs::remove_file(&p) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(e).context(|| format!("cannot remove {}", p.display()))
            }
            _ => {
                let _ = fsx::fsync_dir(&self.dir);
                Ok(())
            }
        }
    }

    /// Every record, by name. An unreadable record is an error, not a silent omission.
    ///
    /// # Errors
    /// The registry or a record cannot be read.
    pub fn list(&self) -> Result<Vec<CloneRecord>> {
        let mut out = Vec::new();
        let rd = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => {
                return Err(e)
                    .context(|| format!("cannot list the clone registry {}", self.dir.display()))
                    .map_err(|e| {
                        e.hint("every user that prunes or clones must be able to read it: chmod 755 it, or set PGDR_CLONE_DIR")
                    })
            }
        };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(clone) = name.strip_suffix(".json") else {
                continue;
            };
            if let Some(r) = self.read(clone)? {
                out.push(r);
            }
        }
        out.sort_by(|a, b| a.clone.cmp(&b.clone));
        Ok(out)
    }

    /// Whether a clone of `snapshot` of the data directory `pgdata` is recorded (a clone
    /// restored from an image depends on no local snapshot).
    ///
    /// # Errors
    /// As [`Registry::list`].
    pub fn has_clones(&self, pgdata: &Path, snapshot: &str) -> Result<bool> {
        Ok(self
            .list()?
            .iter()
            .any(|r| r.source_pgdata == pgdata && r.snapshot == snapshot && r.repository.is_none()))
    }
}

/// (uid, gid) of a path.
pub fn ids_of(p: &Path) -> Option<(u32, u32)> {
    std::fs::metadata(p).ok().map(|m| (m.uid(), m.gid()))
}

/// As root, gives `p` to `owner`; otherwise it is ours already.
pub(crate) fn give_to(p: &Path, owner: (u32, u32)) -> Result<()> {
    if pgdr_core::owner::is_root() {
        std::os::unix::fs::lchown(p, Some(owner.0), Some(owner.1))
            .context(|| format!("cannot change the owner of {}", p.display()))?;
    }
    Ok(())
}
