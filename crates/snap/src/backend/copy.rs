//! copy: a directory copy of PGDATA that shares blocks (FICLONE reflinks) where the filesystem
//! can, else copies bytes. A copy is not one instant: it is refused for a running server
//! unless backup mode (`-d`) is used, and then pg_wal is copied after `pg_backup_stop`, so
//! the copy holds all WAL from the backup's start to its end.

use crate::datadir::Layout;
use crate::meta::{SnapshotMeta, Tablespace};
use pgdr_core::progress::Progress;
use pgdr_core::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::ErrorKind;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// A data directory and the store its copies go to.
#[derive(Debug, Clone)]
pub struct CopyStore {
    pub pgdata: PathBuf,
    pub store: PathBuf,
}

/// Files a copy leaves out: they describe the running server, not the data.
const SKIP_TOP: &[&str] = &["postmaster.pid", "postmaster.opts"];

/// Bytes copied and bytes shared by reflink; the progress shown on a terminal.
#[derive(Debug, Clone, Default)]
pub struct CopyStats {
    pub bytes: u64,
    pub reflinked: u64,
    pub files: u64,
    pub progress: Progress,
}

/// The bytes of the files under `p`, following symlinked directories (pg_wal, tablespaces):
/// the total of a copy's progress.
fn tree_bytes(p: &Path) -> u64 {
    match fs::metadata(p) {
        Ok(m) if m.is_dir() => fs::read_dir(p)
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| tree_bytes(&e.path()))
            .sum(),
        Ok(m) if m.is_file() => m.len(),
        _ => 0,
    }
}

impl CopyStore {
    /// The copies of `pgdata`, in `store` or the default store beside it.
    ///
    /// # Errors
    /// The store would be inside PGDATA, or PGDATA is `/`.
    pub fn new(pgdata: &Path, store: Option<&Path>) -> Result<CopyStore> {
        let store = match store {
            Some(s) => s.to_path_buf(),
            None => super::default_store(pgdata)?,
        };
        if store.starts_with(pgdata) {
            return Err(Error::usage("invalid --snapshot-dir")
                .because("it is inside PGDATA, which would copy the copies"));
        }
        Ok(CopyStore {
            pgdata: pgdata.to_path_buf(),
            store,
        })
    }

    /// pg_wal and tablespaces may be anywhere: the copy follows their symlinks and stores
    /// them as directories inside the copy.
    pub fn check_layout(&self, layout: &Layout) -> Vec<Tablespace> {
        layout
            .tablespaces
            .iter()
            .map(|(oid, target, _)| Tablespace {
                oid: oid.clone(),
                target: target.clone(),
                rel: format!("pg_tblspc/{oid}"),
            })
            .collect()
    }

    pub fn snap_path(&self, name: &str) -> PathBuf {
        self.store.join(name)
    }

    /// Where the snapshot is made, until [`CopyStore::publish`] renames it into place.
    pub fn partial_path(&self, name: &str) -> PathBuf {
        super::partial_path(&self.store, name)
    }

    /// Copies PGDATA to the partial snapshot `.NAME.partial`; returns where
    /// [`CopyStore::publish`] will put it. With `skip_wal`, pg_wal is left empty (its
    /// archive_status kept) for [`CopyStore::finish_wal`].
    pub fn create(&self, name: &str, skip_wal: bool) -> Result<String> {
        let partial = self.partial_path(name);
        if partial.exists() {
            self.remove_tree(&partial)?;
        }
        let r = copy_data_dir(&self.pgdata, &partial, skip_wal);
        if let Err(e) = r {
            let _ = self.remove_tree(&partial);
            return Err(e);
        }
        Ok(self.snap_path(name).to_string_lossy().into_owned())
    }

    /// Copies pg_wal into a partial copy made with `skip_wal` and checks that `wal_start` is
    /// there.
    pub fn finish_wal(&self, name: &str, wal_start: &str) -> Result<()> {
        let partial = self.partial_path(name);
        let r = (|| {
            let src = self
                .pgdata
                .join("pg_wal")
                .canonicalize()
                .map_err(io_err(&self.pgdata.join("pg_wal")))?;
            let mut stats = CopyStats::default();
            // pg_control after pg_backup_stop: on a standby its minRecoveryPoint is then at
            // or past the backup's end, which recovery waits for.
            let _ = fs::remove_file(partial.join("global/pg_control"));
            copy_entry(
                &self.pgdata.join("global/pg_control"),
                &partial.join("global/pg_control"),
                &mut stats,
                false,
            )?;
            copy_tree(&src, &partial.join("pg_wal"), &mut stats, true)?;
            if !partial.join("pg_wal").join(wal_start).is_file() {
                return Err(Error::failed("cannot complete the copy")
                    .because(format!("WAL file {wal_start}, where the backup starts, was removed from pg_wal before it could be copied"))
                    .hint("raise wal_keep_size, or use a copy-on-write backend"));
            }
            Ok(())
        })();
        if r.is_err() {
            let _ = self.remove_tree(&partial);
        }
        r
    }

    /// Drops a partial copy (after a failure elsewhere).
    pub fn abandon(&self, name: &str) {
        let _ = self.remove_tree(&self.partial_path(name));
    }

    /// Renames the partial copy to its name, once its sidecar is written: a snapshot's name
    /// never appears without its metadata. Returns its path.
    ///
    /// # Errors
    /// The name is taken, or the rename failed (the partial copy is removed).
    pub fn publish(&self, name: &str) -> Result<String> {
        let partial = self.partial_path(name);
        // Every copied byte on disk before the name appears (one syncfs, not one fsync a file).
        if let Ok(f) = File::open(&partial) {
            let _ = rustix::fs::syncfs(&f);
        }
        let dst = self.snap_path(name);
        let ok = pgdr_core::fsx::rename_noreplace(&partial, &dst).map_err(io_err(&dst))?;
        if !ok {
            let _ = self.remove_tree(&partial);
            return Err(Error::failed(format!("snapshot {name} exists already")));
        }
        let _ = pgdr_core::fsx::fsync_dir(&self.store);
        Ok(dst.to_string_lossy().into_owned())
    }

    pub fn remove_tree(&self, p: &Path) -> Result<()> {
        remove_tree(p)
    }

    /// A copy of the snapshot at `root`. Returns (location, root).
    ///
    /// # Errors
    /// The copy failed; what was copied is removed again.
    pub fn clone_to(&self, meta: &SnapshotMeta, root: &Path) -> Result<(String, PathBuf)> {
        let src = self.snap_path(&meta.snapshot);
        let mut stats = CopyStats {
            progress: Progress::bytes(&format!("copying snapshot {}", meta.snapshot), || {
                Some(tree_bytes(&src))
            }),
            ..CopyStats::default()
        };
        if let Err(e) = copy_tree(&src, root, &mut stats, false) {
            let _ = self.remove_tree(root);
            return Err(e);
        }
        Ok((root.to_string_lossy().into_owned(), root.to_path_buf()))
    }
}

/// Removes a directory tree (a missing one is no error). Symlinks inside are removed, never
/// followed (`remove_dir_all` opens each directory with `O_NOFOLLOW`).
pub(crate) fn remove_tree(p: &Path) -> Result<()> {
    match fs::remove_dir_all(p) {
        Err(e) if e.kind() != ErrorKind::NotFound => {
            Err(Error::failed(format!("cannot remove {}", p.display()))
                .because(pgdr_core::error::clean_io_message(&e.to_string())))
        }
        _ => Ok(()),
    }
}

fn io_err(p: &Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| {
        Error::failed(format!("cannot copy {}", p.display()))
            .because(pgdr_core::error::clean_io_message(&e.to_string()))
    }
}

/// Copies a data directory: pg_wal and tablespace symlinks followed (stored as directories),
/// postmaster.pid/opts left out.
pub fn copy_data_dir(src: &Path, dst: &Path, skip_wal: bool) -> Result<CopyStats> {
    let mut stats = CopyStats {
        progress: Progress::bytes(&format!("copying {}", src.display()), || {
            let wal = if skip_wal {
                tree_bytes(&src.join("pg_wal"))
            } else {
                0
            };
            Some(tree_bytes(src).saturating_sub(wal))
        }),
        ..CopyStats::default()
    };
    make_dir_like(src, dst)?;
    for e in fs::read_dir(src).map_err(io_err(src))? {
        let e = e.map_err(io_err(src))?;
        let name = e.file_name();
        let n = name.to_string_lossy();
        if SKIP_TOP.contains(&n.as_ref()) || (skip_wal && n == "global") {
            if n == "global" {
                // Copied now except pg_control, which finish_wal copies last.
                make_dir_like(&e.path(), &dst.join(&name))?;
                for g in fs::read_dir(e.path()).map_err(io_err(src))? {
                    let g = g.map_err(io_err(src))?;
                    if g.file_name() != "pg_control" {
                        copy_entry(
                            &g.path(),
                            &dst.join("global").join(g.file_name()),
                            &mut stats,
                            true,
                        )?;
                    }
                }
            }
            continue;
        }
        let (s, d) = (e.path(), dst.join(&name));
        match n.as_ref() {
            "pg_wal" => {
                let real = s.canonicalize().map_err(io_err(&s))?;
                if skip_wal {
                    make_dir_like(&real, &d)?;
                    let st = real.join("archive_status");
                    if st.is_dir() {
                        make_dir_like(&st, &d.join("archive_status"))?;
                    }
                } else {
                    copy_tree(&real, &d, &mut stats, true)?;
                }
            }
            "pg_tblspc" => {
                make_dir_like(&s, &d)?;
                for t in fs::read_dir(&s).map_err(io_err(&s))? {
                    let t = t.map_err(io_err(&s))?;
                    let real = t.path().canonicalize().map_err(io_err(&t.path()))?;
                    copy_tree(&real, &d.join(t.file_name()), &mut stats, true)?;
                }
            }
            _ => copy_entry(&s, &d, &mut stats, true)?,
        }
    }
    Ok(stats)
}

/// Copies a tree (symlinks as symlinks). With `tolerate_vanished`, files removed while the
/// copy runs (a live server drops and recycles files) are skipped, as pg_basebackup does.
pub fn copy_tree(
    src: &Path,
    dst: &Path,
    stats: &mut CopyStats,
    tolerate_vanished: bool,
) -> Result<()> {
    copy_entry(src, dst, stats, tolerate_vanished)
}

fn make_dir_like(src: &Path, dst: &Path) -> Result<()> {
    let meta = fs::metadata(src).map_err(io_err(src))?;
    match fs::create_dir(dst) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dst.is_dir() => {}
        Err(e) => return Err(io_err(dst)(e)),
    }
    fs::set_permissions(dst, fs::Permissions::from_mode(meta.mode() & 0o7777))
        .map_err(io_err(dst))?;
    let _ = std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()));
    Ok(())
}

fn copy_entry(src: &Path, dst: &Path, stats: &mut CopyStats, tolerate: bool) -> Result<()> {
    if pgdr_core::signals::interrupted() {
        return Err(
            Error::failed("interrupted").because("the partial copy was removed; nothing changed")
        );
    }
    let meta = match fs::symlink_metadata(src) {
        Ok(m) => m,
        Err(e) if tolerate && e.kind() == ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(io_err(src)(e)),
    };
    let ft = meta.file_type();
    if ft.is_dir() {
        make_dir_like(src, dst)?;
        let rd = match fs::read_dir(src) {
            Ok(rd) => rd,
            Err(e) if tolerate && e.kind() == ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(src)(e)),
        };
        for e in rd {
            let e = e.map_err(io_err(src))?;
            copy_entry(&e.path(), &dst.join(e.file_name()), stats, tolerate)?;
        }
    } else if ft.is_symlink() {
        let target = fs::read_link(src).map_err(io_err(src))?;
        std::os::unix::fs::symlink(&target, dst).map_err(io_err(dst))?;
        let _ = std::os::unix::fs::lchown(dst, Some(meta.uid()), Some(meta.gid()));
    } else if ft.is_file() {
        match copy_file(src, dst, &meta, stats) {
            Err(e) if tolerate && e.kind() == ErrorKind::NotFound => {}
            r => r.map_err(io_err(src))?,
        }
    }
    // Sockets and fifos are not data.
    Ok(())
}

/// One file: FICLONE (shares blocks on btrfs, XFS, …), else a kernel-side copy.
fn copy_file(
    src: &Path,
    dst: &Path,
    meta: &fs::Metadata,
    stats: &mut CopyStats,
) -> std::io::Result<()> {
    let mut from = File::open(src)?;
    let mut to = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(dst)?;
    let len = meta.len();
    if rustix::fs::ioctl_ficlone(&to, &from).is_ok() {
        stats.reflinked += len;
    } else {
        std::io::copy(&mut from, &mut to)?;
    }
    stats.bytes += len;
    stats.files += 1;
    stats.progress.add(len);
    let _ = std::os::unix::fs::fchown(&to, Some(meta.uid()), Some(meta.gid()));
    to.set_permissions(fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    Ok(())
}
