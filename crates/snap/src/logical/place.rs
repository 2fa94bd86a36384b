//! Where logical snapshots are kept: a snapshot directory (`--snapshot-dir DIR`) or a
//! repository (`--to REPO`, `--repo REPO`; crates/repo/FORMAT.md "Logical dumps"). Both hold
//! pg_dump's files in the repository's stored-object format (a header with size and SHA-256,
//! a zstd body), and a snapshot appears all at once or not at all:
//!
//! ```text
//! DIR/.lock                         the lock, shared with physical snapshots kept there
//! DIR/NAME/pgdr-logical.json        the metadata and manifest (LogicalSnapshot)
//! DIR/NAME/files/toc.dat, 3345.dat  pg_dump's files, stored objects
//! DIR/.NAME.pgdr-tmp.PID/           a snapshot being made: renamed to NAME when complete
//! $TMPDIR/pgdr-dump-XXXXXX/         pg_dump's scratch copy for a repository (leftovers.rs)
//! REPO/dumps/NAME/files/FILE        (through the repository's object API only)
//! REPO/dumps/NAME/manifest          published last
//! ```

use super::meta::{DumpedFile, LogicalSnapshot};
use pgdr_core::{Context, Error, Result};
use pgdr_repo::dump;
use pgdr_repo::stored::{self, Compression, Header, ObjectKind, HEADER_LEN};
use pgdr_repo::Repo;
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The metadata file inside a local logical snapshot.
pub const META_FILE: &str = "pgdr-logical.json";
/// The zstd level dump files are stored with (the repository's level when it sets one):
/// pgbench-like data compresses to less than pg_dump's own gzip at about four times its speed.
pub const LEVEL: i32 = 3;

/// A place that holds logical snapshots.
pub enum Place {
    /// A snapshot directory (absolute).
    Dir(PathBuf),
    /// A repository, and its location as given.
    Repo(Box<Repo>, String),
}

impl std::fmt::Debug for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

use pgdr_core::fsx::absolute;

impl Place {
    /// A snapshot directory (it need not exist yet: a snapshot taken there creates it).
    ///
    /// # Errors
    /// The current directory cannot be read for a relative path.
    pub fn dir(p: &Path) -> Result<Place> {
        Ok(Place::Dir(absolute(p)?))
    }

    /// An initialised repository.
    ///
    /// # Errors
    /// As [`Repo::open`].
    pub fn repo(p: &Path) -> Result<Place> {
        Ok(Place::Repo(
            Box::new(Repo::open(p)?),
            p.display().to_string(),
        ))
    }

    /// For messages: the directory, or "repository R".
    pub fn describe(&self) -> String {
        match self {
            Place::Dir(d) => d.display().to_string(),
            Place::Repo(_, r) => format!("repository {r}"),
        }
    }

    /// (snapshot_dir, repository) as the documents name them.
    pub fn names(&self) -> (Option<PathBuf>, Option<String>) {
        match self {
            Place::Dir(d) => (Some(d.clone()), None),
            Place::Repo(_, r) => (None, Some(r.clone())),
        }
    }

    /// Where a snapshot of this name is.
    pub fn location(&self, name: &str) -> String {
        match self {
            Place::Dir(d) => d.join(name).display().to_string(),
            Place::Repo(..) => format!("{}{name}", dump::PREFIX),
        }
    }

    /// Takes the lock of this place's snapshots (a directory is created, 0700, when
    /// `create`): DIR/.lock, or the repository's dumps.lock.
    ///
    /// # Errors
    /// Exit 75 when another run holds it; exit 1 when it cannot be taken.
    pub fn lock(&self, wait: Option<Duration>, create: bool) -> Result<Box<dyn std::any::Any>> {
        match self {
            Place::Dir(d) => {
                if create {
                    use std::os::unix::fs::DirBuilderExt;
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(d)
                        .context(|| format!("cannot create {}", d.display()))?;
                } else if !d.is_dir() {
                    return Err(Error::failed(format!("cannot use {}", d.display()))
                        .because("there is no such directory"));
                }
                let g = pgdr_core::lock::acquire(
                    &d.join(".lock"),
                    &format!("the snapshots in {}", d.display()),
                    wait,
                )?;
                Ok(Box::new(g))
            }
            Place::Repo(repo, r) => {
                let g = repo.store().lock(
                    dump::LOCK,
                    &format!("the dump store of repository {r}"),
                    wait,
                )?;
                Ok(Box::new(g))
            }
        }
    }

    /// Whether anything is stored under this name (a snapshot, or what a killed run left).
    ///
    /// # Errors
    /// The place cannot be read.
    pub fn occupied(&self, name: &str) -> Result<bool> {
        match self {
            Place::Dir(d) => Ok(d.join(name).symlink_metadata().is_ok()),
            Place::Repo(repo, _) => dump::occupied(repo, name),
        }
    }

    /// Every logical snapshot here, oldest first. Physical snapshots kept in the same
    /// directory (copy and btrfs sidecars) are not logical ones and are left out.
    ///
    /// # Errors
    /// The place cannot be listed, or a snapshot's metadata cannot be read.
    pub fn list(&self) -> Result<Vec<LogicalSnapshot>> {
        let mut out = Vec::new();
        match self {
            Place::Dir(d) => {
                let rd = match std::fs::read_dir(d) {
                    Ok(rd) => rd,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
                    Err(e) => return Err(e).context(|| format!("cannot list {}", d.display())),
                };
                for e in rd.flatten() {
                    let name = e.file_name().to_string_lossy().into_owned();
                    if crate::meta::parse_name(&name).is_none() {
                        continue;
                    }
                    if let Some(m) = self.get(&name)? {
                        out.push(m);
                    }
                }
            }
            Place::Repo(repo, _) => {
                for name in dump::survey(repo)?.published {
                    if let Some(m) = self.get(&name)? {
                        out.push(m);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.created.cmp(&b.created).then(a.snapshot.cmp(&b.snapshot)));
        Ok(out)
    }

    /// The logical snapshot `name`, or None when there is none of that name.
    ///
    /// # Errors
    /// Its metadata cannot be read or is not a logical snapshot's.
    pub fn get(&self, name: &str) -> Result<Option<LogicalSnapshot>> {
        let (text, whence) = match self {
            Place::Dir(d) => {
                let p = d.join(name).join(META_FILE);
                match std::fs::read_to_string(&p) {
                    Ok(t) => (t, p.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                    Err(e) => return Err(e).context(|| format!("cannot read {}", p.display())),
                }
            }
            Place::Repo(repo, _) => match dump::read_manifest(repo, name)? {
                Some(b) => (
                    String::from_utf8_lossy(&b).into_owned(),
                    repo.store().locate(&dump::manifest_key(name)),
                ),
                None => return Ok(None),
            },
        };
        LogicalSnapshot::from_stored(&text).map(Some).map_err(|e| {
            Error::failed(format!("cannot read logical snapshot metadata {whence}")).because(e)
        })
    }

    /// Reads file `file` of snapshot `snap` into `out`, verified: the stored object's own
    /// checksum and the manifest's SHA-256.
    ///
    /// # Errors
    /// Missing, damaged, or not what the manifest says.
    pub fn read_file(&self, snap: &LogicalSnapshot, file: &str, out: &mut dyn Write) -> Result<()> {
        let fail = |why: String| {
            Error::failed(format!("cannot read {file} of {}", snap.snapshot)).because(why)
        };
        let want = snap
            .files
            .iter()
            .find(|f| f.file == file)
            .ok_or_else(|| fail("the manifest does not list it".into()))?;
        let h: Header = match self {
            Place::Dir(d) => {
                let p = d.join(&snap.snapshot).join("files").join(file);
                let mut f =
                    std::fs::File::open(&p).context(|| format!("cannot open {}", p.display()))?;
                let h =
                    stored::read_verified(&mut f, out, &mut Vec::new()).map_err(|e| match e {
                        Ok(w) => fail(pgdr_core::error::clean_io_message(&w.to_string())),
                        Err(d) => fail(format!("{} is damaged: {d}", p.display())),
                    })?;
                if h.kind != ObjectKind::DumpFile {
                    return Err(fail(format!("stored as {}", h.kind.as_str())));
                }
                h
            }
            Place::Repo(repo, _) => dump::get_file(repo, &snap.snapshot, file, out)
                .map_err(|e| fail(pgdr_repo::object::explain(e)))?,
        };
        if stored::hex(&h.sha256) != want.sha256 {
            return Err(fail(format!(
                "sha256 {} stored, the manifest says {}",
                stored::hex(&h.sha256),
                want.sha256
            )));
        }
        Ok(())
    }

    /// Removes snapshot `name` (the metadata first, so a failure part-way leaves no
    /// snapshot, only files snap-prune removes later).
    ///
    /// # Errors
    /// It cannot be removed.
    pub fn remove(&self, name: &str) -> Result<()> {
        match self {
            Place::Dir(d) => {
                let dir = d.join(name);
                let meta = dir.join(META_FILE);
                match std::fs::remove_file(&meta) {
                    Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                        return Err(e).context(|| format!("cannot remove {}", meta.display()))
                    }
                    _ => {}
                }
                let _ = pgdr_core::fsx::fsync_dir(&dir);
                std::fs::remove_dir_all(&dir)
                    .context(|| format!("cannot remove {}", dir.display()))?;
                let _ = pgdr_core::fsx::fsync_dir(d);
                Ok(())
            }
            Place::Repo(repo, _) => dump::delete(repo, name).map(|_| ()),
        }
    }
}

/// A logical snapshot being stored: files go in one by one (from several threads), then the
/// metadata publishes it. Dropped unpublished, it removes what it stored.
pub struct Upload<'a> {
    place: &'a Place,
    name: String,
    /// A directory: the staging directory renamed into place at the end.
    staging: Option<PathBuf>,
    system_identifier: u64,
    compression: Compression,
    level: i32,
    published: bool,
}

fn create_dir(p: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(p)
        .context(|| format!("cannot create {}", p.display()))
}

impl<'a> Upload<'a> {
    /// Starts storing snapshot `name` (free: the caller holds the lock and checked).
    ///
    /// # Errors
    /// The staging directory cannot be made.
    pub fn begin(place: &'a Place, name: &str, system_identifier: u64) -> Result<Upload<'a>> {
        let (staging, compression, level) = match place {
            Place::Dir(d) => {
                let s = d.join(format!(".{name}.pgdr-tmp.{}", std::process::id()));
                create_dir(&s)?;
                create_dir(&s.join("files"))?;
                (Some(s), Compression::Zstd, LEVEL)
            }
            Place::Repo(repo, _) => {
                let c = repo.compression();
                let level = match c {
                    Compression::Zstd => repo.settings().compression_level.unwrap_or(LEVEL),
                    _ => 0,
                };
                (None, c, level)
            }
        };
        Ok(Upload {
            place,
            name: name.to_string(),
            staging,
            system_identifier,
            compression,
            level,
            published: false,
        })
    }

    /// A scratch directory pg_dump can write into: inside the staging directory (same file
    /// system), or for a repository one in $TMPDIR ([`super::leftovers::scratch`]).
    ///
    /// # Errors
    /// It cannot be made.
    pub fn scratch(&self) -> Result<tempfile::TempDir> {
        super::leftovers::scratch(self.staging.as_deref())
    }

    /// Stores pg_dump's file `file`, read from `f` (`src` names it in messages).
    ///
    /// # Errors
    /// It cannot be read or stored.
    pub fn store(&self, file: &str, src: &Path, f: &mut dyn Read) -> Result<DumpedFile> {
        match (self.place, &self.staging) {
            (Place::Dir(_), Some(s)) => {
                let p = s.join("files").join(file);
                let mut out = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
                    .context(|| format!("cannot create {}", p.display()))?;
                let werr = |e: std::io::Error| {
                    Err::<(), _>(e)
                        .context(|| format!("cannot write {}", p.display()))
                        .unwrap_err()
                };
                out.write_all(&[0u8; HEADER_LEN]).map_err(werr)?;
                let body = stored::write_body(&[], f, &mut out, self.compression, self.level, 0)
                    .map_err(|e| match e {
                        Ok(r) => Err::<(), _>(r)
                            .context(|| format!("cannot read {}", src.display()))
                            .unwrap_err(),
                        Err(w) => werr(w),
                    })?;
                let h = Header {
                    compression: self.compression,
                    kind: ObjectKind::DumpFile,
                    size: body.size,
                    system_identifier: self.system_identifier,
                    sha256: body.sha256,
                };
                out.seek(SeekFrom::Start(0))
                    .and_then(|_| out.write_all(&h.encode()))
                    .and_then(|_| out.sync_all())
                    .map_err(werr)?;
                let stored_bytes = out.metadata().map_err(werr)?.len();
                Ok(DumpedFile {
                    file: file.to_string(),
                    bytes: body.size,
                    stored_bytes,
                    sha256: stored::hex(&body.sha256),
                })
            }
            (Place::Repo(repo, _), _) => {
                let p = dump::put_file(repo, &self.name, file, f, self.compression, self.level)?;
                Ok(DumpedFile {
                    file: file.to_string(),
                    bytes: p.header.size,
                    stored_bytes: p.stored_bytes,
                    sha256: stored::hex(&p.header.sha256),
                })
            }
            (Place::Dir(_), None) => unreachable!("a directory upload has a staging directory"),
        }
    }

    /// Publishes the snapshot with its metadata: from now on it is listed.
    ///
    /// # Errors
    /// It cannot be published (nothing is then).
    pub fn publish(mut self, meta: &LogicalSnapshot) -> Result<()> {
        match (self.place, &self.staging) {
            (Place::Dir(d), Some(s)) => {
                let text = meta.to_stored();
                let p = s.join(META_FILE);
                let mut f = std::fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
                    .context(|| format!("cannot create {}", p.display()))?;
                f.write_all(text.as_bytes())
                    .and_then(|_| f.sync_all())
                    .context(|| format!("cannot write {}", p.display()))?;
                pgdr_core::fsx::fsync_dir(&s.join("files"))
                    .and_then(|_| pgdr_core::fsx::fsync_dir(s))
                    .context(|| format!("cannot sync {}", s.display()))?;
                let target = d.join(&self.name);
                let _guard = pgdr_core::signals::critical_section();
                let moved = match pgdr_core::fsx::rename_noreplace(s, &target) {
                    Ok(m) => m,
                    // Directories cannot take the hard-link fallback; under the lock the name
                    // was checked free.
                    Err(_) if !target.exists() => {
                        std::fs::rename(s, &target).map(|_| true).context(|| {
                            format!("cannot rename {} to {}", s.display(), target.display())
                        })?
                    }
                    Err(e) => {
                        return Err(e).context(|| format!("cannot publish {}", target.display()))
                    }
                };
                if !moved {
                    return Err(
                        Error::failed(format!("cannot publish {}", target.display()))
                            .because("it exists already"),
                    );
                }
                self.published = true;
                pgdr_core::fsx::fsync_dir(d).context(|| format!("cannot sync {}", d.display()))?;
            }
            (Place::Repo(repo, _), _) => {
                dump::put_manifest(
                    repo,
                    &self.name,
                    meta.to_stored().as_bytes(),
                    repo.compression(),
                )?;
                self.published = true;
            }
            (Place::Dir(_), None) => unreachable!("a directory upload has a staging directory"),
        }
        Ok(())
    }
}

impl Drop for Upload<'_> {
    fn drop(&mut self) {
        if self.published {
            return;
        }
        match (self.place, &self.staging) {
            (Place::Dir(_), Some(s)) => {
                let _ = std::fs::remove_dir_all(s);
            }
            (Place::Repo(repo, _), _) => {
                let _ = dump::delete(repo, &self.name);
            }
            _ => {}
        }
    }
}

/// Reads a whole local file (toc.dat of a scratch dump).
///
/// # Errors
/// It cannot be read.
pub fn read_all(p: &Path) -> Result<Vec<u8>> {
    let mut b = Vec::new();
    std::fs::File::open(p)
        .and_then(|mut f| f.read_to_end(&mut b))
        .context(|| format!("cannot read {}", p.display()))?;
    Ok(b)
}
