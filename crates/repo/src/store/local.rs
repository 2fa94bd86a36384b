//! A repository in a local directory (FORMAT.md): objects are files under the root, keys
//! their relative paths. Durability as PostgreSQL's own files: a new object is written to
//! `.NAME.pgdr-tmp.PID.N` in its final directory (0600, created exclusively), fsynced,
//! published with `renameat2(RENAME_NOREPLACE)` (link where unsupported), and its directory
//! fsynced. Directories are 0700, files 0600; when root writes, new files and directories are
//! given to the owner of the root directory, so PostgreSQL (running as that owner) can read
//! them.

use super::{not_initialised, Created, Key, Listing, Lock, Object, ObjectInfo, Staged, Store};
use pgdr_core::signals::TempFile;
use pgdr_core::{Context, Error, Result};
use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The settings object's key (it marks a repository).
const SETTINGS: &str = "pgdr-wal-archive.json";

/// A repository directory.
#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    /// Owner and group of the root: what root hands new files to.
    owner: (u32, u32),
}

fn euid() -> u32 {
    rustix::process::geteuid().as_raw()
}

fn user_name(uid: u32) -> String {
    pgdr_core::owner::user_by_uid(uid)
        .map(|u| u.name)
        .unwrap_or_else(|| format!("uid {uid}"))
}

/// Entries a fresh location may hold before `init`: hidden files and the `lost+found` of a
/// newly made file system.
fn ignorable(name: &str) -> bool {
    name.starts_with('.') || name == "lost+found"
}

/// Whether a directory entry is a temporary file of a write in progress (or killed).
pub fn is_temp_name(name: &str) -> bool {
    name.starts_with('.') && name.contains(".pgdr-tmp.")
}

impl LocalStore {
    /// The repository directory at `root`, which must exist.
    ///
    /// # Errors
    /// Missing or not a directory: not an initialised repository.
    pub fn open(root: &Path) -> Result<LocalStore> {
        let loc = root.display().to_string();
        let m = match fs::metadata(root) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(not_initialised(&loc, "it does not exist"))
            }
            Err(e) => return Err(e).context(|| format!("cannot open repository {loc}")),
        };
        if !m.is_dir() {
            return Err(not_initialised(&loc, "it is not a directory"));
        }
        Ok(LocalStore {
            root: root.to_path_buf(),
            owner: (m.uid(), m.gid()),
        })
    }

    /// Makes `root` ready to become a repository: creates it (0700, one level: its parent must
    /// exist) or accepts an existing directory that is empty (but for hidden files and
    /// `lost+found`) or already a repository. `owner` (as root) is who gets a new directory.
    ///
    /// # Errors
    /// A missing parent, a directory holding something else, one others can write to.
    pub fn create(root: &Path, owner: Option<(u32, u32)>) -> Result<LocalStore> {
        let loc = root.display().to_string();
        match fs::metadata(root) {
            Ok(m) if !m.is_dir() => Err(Error::failed(format!("cannot create repository {loc}"))
                .because("it exists and is not a directory")),
            Ok(_) => {
                let store = Self::open(root)?;
                if !root.join(SETTINGS).exists() {
                    let entries =
                        fs::read_dir(root).context(|| format!("cannot create repository {loc}"))?;
                    let mut other: Vec<String> = entries
                        .filter_map(|e| e.ok())
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| !ignorable(n) && n != "FORMAT.md")
                        .collect();
                    if !other.is_empty() {
                        other.sort();
                        other.truncate(3);
                        return Err(Error::failed(format!("cannot create repository {loc}"))
                            .because(format!(
                                "the directory is not empty (it holds {}) and is not a repository",
                                other.join(", ")
                            ))
                            .hint("give --repo a new or empty directory"));
                    }
                }
                store.check_private()?;
                Ok(store)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let parent = match root.parent() {
                    Some(p) if !p.as_os_str().is_empty() => p,
                    _ => Path::new("."),
                };
                if !parent.is_dir() {
                    return Err(Error::failed(format!("cannot create repository {loc}"))
                        .because(format!("{} does not exist", parent.display()))
                        .hint(
                            "create the parent directory first (or mount it), then run init again",
                        ));
                }
                DirBuilder::new()
                    .mode(0o700)
                    .create(root)
                    .context(|| format!("cannot create repository {loc}"))?;
                if let (Some((uid, gid)), 0) = (owner, euid()) {
                    std::os::unix::fs::chown(root, Some(uid), Some(gid))
                        .context(|| format!("cannot give {loc} to uid {uid}"))?;
                }
                pgdr_core::fsx::fsync_dir(parent)
                    .context(|| format!("cannot sync {}", parent.display()))?;
                Self::open(root)
            }
            Err(e) => Err(e).context(|| format!("cannot create repository {loc}")),
        }
    }

    fn path(&self, key: &Key) -> PathBuf {
        self.root.join(key)
    }

    /// The user the repository belongs to cannot be us: say who owns it and what to do.
    fn foreign_owner(&self, owner: u32) -> Error {
        let me = euid();
        let (theirs, mine) = (user_name(owner), user_name(me));
        let loc = self.root.display();
        // Every tool that opens a repository comes here (snap-take --to, snap-clone --repo…):
        // the words name none of them. PostgreSQL never runs as root, so "as the server does"
        // only fits another owner.
        let run_as = if owner == 0 {
            "run it as root".to_string()
        } else {
            format!("run it as {theirs} (as archive_command does when {theirs} runs the server)")
        };
        Error::failed(format!("cannot use repository {loc}"))
            .because(format!(
                "it belongs to {theirs} and this process runs as {mine}; its contents are private to the repository's owner"
            ))
            .hint(format!("{run_as}, or make {mine} the owner: chown -R {mine}: {loc}"))
    }

    /// Refuses a root directory that someone other than its owner (and root) can write to, or
    /// that belongs to another user.
    fn check_private(&self) -> Result<()> {
        let loc = self.root.display();
        let m = fs::metadata(&self.root).context(|| format!("cannot open repository {loc}"))?;
        let mode = m.mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(Error::failed(format!("refusing repository directory {loc}"))
                .because(format!(
                    "it is writable by other users (mode {mode:04o}); WAL holds every row of the database"
                ))
                .hint(format!("chmod 0700 {loc}")));
        }
        let me = euid();
        if me != 0 && m.uid() != me {
            return Err(self.foreign_owner(m.uid()));
        }
        Ok(())
    }

    /// As root, hands a new file or directory to the repository's owner.
    fn give_away(&self, path: &Path) -> Result<()> {
        if euid() == 0 && self.owner.0 != 0 {
            std::os::unix::fs::chown(path, Some(self.owner.0), Some(self.owner.1))
                .context(|| format!("cannot give {} to the repository's owner", path.display()))?;
        }
        Ok(())
    }

    /// Creates a directory of the repository and its missing parents below the root (0700,
    /// owned like the root), durably.
    fn ensure_dir(&self, dir: &Path) -> Result<()> {
        if dir == self.root || dir.is_dir() {
            return Ok(());
        }
        let parent = dir.parent().unwrap_or(&self.root);
        self.ensure_dir(parent)?;
        match DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => return Ok(()),
            Err(e) => return Err(e).context(|| format!("cannot create {}", dir.display())),
        }
        self.give_away(dir)?;
        pgdr_core::fsx::fsync_dir(parent).context(|| format!("cannot sync {}", parent.display()))
    }

    fn info(&self, key: &Key, m: &fs::Metadata) -> ObjectInfo {
        ObjectInfo {
            key: key.to_string(),
            size: m.len(),
            modified: m.mtime(),
        }
    }

    fn walk(&self, dir: &Path, key_prefix: &str, out: &mut Listing) -> Result<()> {
        let entries = match fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).context(|| format!("cannot read {}", dir.display())),
        };
        for e in entries {
            let e = e.context(|| format!("cannot read {}", dir.display()))?;
            let name = e.file_name().to_string_lossy().into_owned();
            let key = format!("{key_prefix}{name}");
            let path = e.path();
            let m = e
                .metadata()
                .context(|| format!("cannot stat {}", path.display()))?;
            if m.is_dir() {
                self.walk(&path, &format!("{key}/"), out)?;
            } else if is_temp_name(&name) {
                out.leftovers.push(self.info(&key, &m));
            } else {
                out.objects.push(self.info(&key, &m));
            }
        }
        Ok(())
    }
}

/// `.NAME.pgdr-tmp.PID.N` beside `target`: a name no other process or call uses.
fn temp_path(target: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}.pgdr-tmp.{}.{n}", std::process::id()))
}

/// Creates `.NAME.pgdr-tmp.PID.N` beside `target` (0600, create-new), registered for removal
/// on drop and on SIGINT/SIGTERM.
///
/// # Errors
/// The file cannot be created.
pub fn temp_beside(target: &Path) -> io::Result<(TempFile, File)> {
    let path = temp_path(target);
    let temp = TempFile::register(&path);
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)?;
    Ok((temp, f))
}

/// A file being written for `target`, not yet under any name where the filesystem allows
/// (Linux's `O_TMPFILE`): a process killed by SIGKILL before [`Pending::publish`] leaves
/// nothing behind, where a named temporary file would stay. Elsewhere (FUSE, NFS, no /proc)
/// it is [`temp_beside`]'s named file. Nothing is synced: the caller decides.
#[derive(Debug)]
pub struct Pending {
    target: PathBuf,
    /// The named temporary file, when the filesystem has no unnamed ones.
    named: Option<TempFile>,
}

impl Pending {
    /// The file to write (0600, readable and writable) and what publishes it.
    ///
    /// # Errors
    /// Neither an unnamed nor a named file can be created in `target`'s directory.
    pub fn beside(target: &Path) -> io::Result<(Pending, File)> {
        use rustix::fs::{Mode, OFlags, CWD};
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        // Linking an unnamed file goes through /proc/self/fd (linkat AT_EMPTY_PATH needs
        // CAP_DAC_READ_SEARCH, which PostgreSQL's user lacks).
        if Path::new("/proc/self/fd").is_dir() {
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            if let Ok(fd) = rustix::fs::openat(CWD, dir, flags, Mode::from_raw_mode(0o600)) {
                let pending = Pending {
                    target: target.to_path_buf(),
                    named: None,
                };
                return Ok((pending, File::from(fd)));
            }
        }
        let (temp, f) = temp_beside(target)?;
        let pending = Pending {
            target: target.to_path_buf(),
            named: Some(temp),
        };
        Ok((pending, f))
    }

    /// Puts `file` (the one [`Pending::beside`] returned) under `target`'s name, replacing
    /// what was there: an unnamed file is linked straight to a free name (no temporary name
    /// ever exists), or to a temporary name renamed over an occupied one.
    ///
    /// # Errors
    /// The link or the rename fails; the target is then as it was.
    pub fn publish(self, file: File) -> io::Result<()> {
        use rustix::fs::{AtFlags, CWD};
        use std::os::fd::AsRawFd;
        if let Some(temp) = self.named {
            fs::rename(temp.path(), &self.target)?;
            temp.keep();
            return Ok(());
        }
        let fd = format!("/proc/self/fd/{}", file.as_raw_fd());
        let link =
            |to: &Path| rustix::fs::linkat(CWD, fd.as_str(), CWD, to, AtFlags::SYMLINK_FOLLOW);
        match link(&self.target) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::EXIST) => {
                let temp = TempFile::register(&temp_path(&self.target));
                link(temp.path())?;
                fs::rename(temp.path(), &self.target)?;
                temp.keep();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl Store for LocalStore {
    fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn locate(&self, key: &Key) -> String {
        self.path(key).display().to_string()
    }

    fn read_settings(&self) -> Result<Vec<u8>> {
        let loc = self.location();
        let path = self.path(SETTINGS);
        match fs::read(&path) {
            Ok(b) => {
                self.check_private()?;
                Ok(b)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let mut names = fs::read_dir(&self.root)
                    .context(|| format!("cannot open repository {loc}"))?
                    .filter_map(|e| e.ok())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| !ignorable(n));
                Err(not_initialised(
                    &loc,
                    match names.next() {
                        None => format!(
                            "the directory is empty (an unmounted mount point?) and has no {SETTINGS}"
                        ),
                        Some(_) => format!("it has no {SETTINGS}"),
                    },
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::PermissionDenied => {
                let owner = fs::metadata(&self.root).map(|m| m.uid()).unwrap_or(0);
                if owner != euid() && euid() != 0 {
                    Err(self.foreign_owner(owner))
                } else {
                    Err(e).context(|| format!("cannot read {}", path.display()))
                }
            }
            Err(e) => Err(e).context(|| format!("cannot read {}", path.display())),
        }
    }

    fn stage(&self, key: &Key) -> Result<Staged> {
        let target = self.path(key);
        self.ensure_dir(target.parent().unwrap_or(&self.root))?;
        let (temp, file) = temp_beside(&target)
            .context(|| format!("cannot create a temporary file beside {}", target.display()))?;
        self.give_away(temp.path())?;
        Ok(Staged {
            key: key.to_string(),
            shown: temp.path().to_path_buf(),
            temp: Some(temp),
            file,
        })
    }

    fn create_if_absent(&self, staged: Staged) -> Result<Created> {
        let target = self.path(&staged.key);
        let Staged { temp, file, .. } = staged;
        // Only this store's own stage() gives it objects, and those have names.
        let temp = temp.ok_or_else(|| {
            Error::failed(format!("cannot publish {}", target.display()))
                .because("the object was not staged in the repository")
        })?;
        file.sync_all()
            .context(|| format!("cannot write {}", temp.path().display()))?;
        drop(file);
        {
            // Only the rename and forgetting the temporary file wait for a signal: the
            // directory's fsync below need not hold every other writer of the process back.
            let _guard = pgdr_core::signals::critical_section();
            let published = pgdr_core::fsx::rename_noreplace(temp.path(), &target)
                .context(|| format!("cannot publish {}", target.display()))?;
            if !published {
                return Ok(Created::Exists);
            }
            temp.keep();
        }
        let dir = target.parent().unwrap_or(&self.root);
        pgdr_core::fsx::fsync_dir(dir).context(|| format!("cannot sync {}", dir.display()))?;
        Ok(Created::New)
    }

    fn read(&self, key: &Key) -> Result<Option<Object>> {
        let path = self.path(key);
        let f = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context(|| format!("cannot read {}", path.display())),
        };
        let m = f
            .metadata()
            .context(|| format!("cannot read {}", path.display()))?;
        if !m.is_file() {
            return Err(Error::failed(format!("cannot read {}", path.display()))
                .because("not a regular file"));
        }
        Ok(Some(Object {
            info: self.info(key, &m),
            reader: Box::new(f),
        }))
    }

    fn head(&self, key: &Key) -> Result<Option<ObjectInfo>> {
        let path = self.path(key);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(self.info(key, &m))),
            Ok(_) => Err(Error::failed(format!("cannot read {}", path.display()))
                .because("not a regular file")),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).context(|| format!("cannot read {}", path.display())),
        }
    }

    fn make_durable(&self, key: &Key) -> Result<()> {
        let path = self.path(key);
        File::open(&path)
            .and_then(|f| f.sync_all())
            .context(|| format!("cannot sync {}", path.display()))?;
        let dir = path.parent().unwrap_or(&self.root);
        pgdr_core::fsx::fsync_dir(dir).context(|| format!("cannot sync {}", dir.display()))
    }

    fn list(&self, prefix: &Key) -> Result<Listing> {
        let mut out = Listing::default();
        self.walk(&self.path(prefix), prefix, &mut out)?;
        out.objects.sort_by(|a, b| a.key.cmp(&b.key));
        out.leftovers.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    fn delete(&self, keys: &[String]) -> Result<()> {
        let mut dirs = BTreeSet::new();
        for key in keys {
            let path = self.path(key);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e).context(|| format!("cannot remove {}", path.display())),
            }
            dirs.insert(path.parent().unwrap_or(&self.root).to_path_buf());
        }
        for d in dirs {
            pgdr_core::fsx::fsync_dir(&d).context(|| format!("cannot sync {}", d.display()))?;
        }
        Ok(())
    }

    fn lock(&self, name: &str, what: &str, wait: Option<Duration>) -> Result<Lock> {
        let path = self.path(name);
        let guard = pgdr_core::lock::acquire(&path, what, wait)?;
        // A lock file root made must stay usable by the owner's own runs (its cron).
        self.give_away(&path)?;
        Ok(Lock::File(guard))
    }

    fn kind(&self) -> &'static str {
        "local"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_pending_file_has_no_name_until_published_free_or_occupied() {
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("RECOVERYXLOG");
        let names = || -> Vec<String> {
            fs::read_dir(d.path())
                .unwrap()
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        };
        for (round, body) in [b"first", b"again"].into_iter().enumerate() {
            let (p, mut f) = Pending::beside(&target).unwrap();
            f.write_all(body).unwrap();
            // The test directory is on a filesystem with O_TMPFILE: nothing named yet.
            let before: Vec<String> = if round == 0 {
                vec![]
            } else {
                vec!["RECOVERYXLOG".into()]
            };
            assert_eq!(names(), before, "round {round}");
            assert!(p.named.is_none());
            p.publish(f).unwrap();
            assert_eq!(names(), ["RECOVERYXLOG"], "round {round}");
            assert_eq!(fs::read(&target).unwrap(), body);
            assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
        }
    }

    #[test]
    fn objects_are_created_once_listed_read_and_deleted() {
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("repo");
        let s = LocalStore::create(&root, None).unwrap();
        assert_eq!(fs::metadata(&root).unwrap().mode() & 0o777, 0o700);
        let mut a = s.stage("wal/00000001/A").unwrap();
        a.file().write_all(b"first").unwrap();
        let mut b = s.stage("wal/00000001/A").unwrap();
        b.file().write_all(b"second").unwrap();
        assert_eq!(s.create_if_absent(a).unwrap(), Created::New);
        assert_eq!(s.create_if_absent(b).unwrap(), Created::Exists);
        let mut text = String::new();
        s.read("wal/00000001/A")
            .unwrap()
            .unwrap()
            .reader
            .read_to_string(&mut text)
            .unwrap();
        assert_eq!(text, "first");
        assert!(s.read("wal/00000001/B").unwrap().is_none());
        assert_eq!(s.head("wal/00000001/A").unwrap().unwrap().size, 5);
        let mode = |p: &str| fs::metadata(root.join(p)).unwrap().mode() & 0o777;
        assert_eq!(
            (mode("wal"), mode("wal/00000001"), mode("wal/00000001/A")),
            (0o700, 0o700, 0o600)
        );
        // A killed writer's temporary file is a leftover, not an object.
        let (t, _f) = temp_beside(&root.join("wal/00000001/C")).unwrap();
        let l = s.list("wal/").unwrap();
        assert_eq!(l.objects.len(), 1);
        assert_eq!(l.objects[0].key, "wal/00000001/A");
        assert_eq!(l.leftovers.len(), 1);
        s.delete(&[l.leftovers[0].key.clone(), "wal/00000001/A".into()])
            .unwrap();
        assert!(s.list("wal/").unwrap().objects.is_empty());
        assert!(!t.path().exists());
        s.make_durable("nothing").unwrap_err();
    }

    #[test]
    fn what_is_not_a_repository_is_refused_and_never_created() {
        let d = tempfile::tempdir().unwrap();
        let missing = d.path().join("missing");
        let e = LocalStore::open(&missing).unwrap_err();
        assert!(e.to_string().contains("not an initialised"), "{e}");
        assert!(e.to_string().contains("wal-archive init"), "{e}");
        assert!(!missing.exists());
        // An empty directory (an unmounted mount point) is not a repository either.
        let empty = d.path().join("empty");
        fs::create_dir(&empty).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o700)).unwrap();
        let e = LocalStore::open(&empty)
            .unwrap()
            .read_settings()
            .unwrap_err();
        assert!(e.to_string().contains("unmounted mount point"), "{e}");
        assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
        // create: a missing parent is not made; a directory holding other files is refused.
        let e = LocalStore::create(&d.path().join("a/b"), None).unwrap_err();
        assert!(e.to_string().contains("does not exist"), "{e}");
        fs::write(empty.join("data.txt"), "x").unwrap();
        let e = LocalStore::create(&empty, None).unwrap_err();
        assert!(e.to_string().contains("data.txt"), "{e}");
        fs::remove_file(empty.join("data.txt")).unwrap();
        fs::create_dir(empty.join("lost+found")).unwrap();
        LocalStore::create(&empty, None).unwrap();
        fs::set_permissions(&empty, fs::Permissions::from_mode(0o777)).unwrap();
        let e = LocalStore::create(&empty, None).unwrap_err();
        assert!(e.to_string().contains("writable by other users"), "{e}");
    }
}
