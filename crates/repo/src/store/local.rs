//! A repository in a local directory (FORMAT.md): objects are files under the root, keys
//! their relative paths. Durability as PostgreSQL's own files: a new object is written to a
//! file in its final directory that has no name yet (`O_TMPFILE`, so a writer killed by
//! SIGKILL leaves nothing; where the filesystem has no unnamed files, `.NAME.pgdr-tmp.PID.N`,
//! 0600, created exclusively), fsynced, published under its name only if the name is free
//! (a link, which never replaces; `renameat2(RENAME_NOREPLACE)` for a named one), and its
//! directory fsynced. Directories are 0700, files 0600; when root writes, new files and directories are
//! given to the owner of the root directory, so PostgreSQL (running as that owner) can read
//! them.

use super::{not_initialised, Created, Key, Listing, Lock, Object, ObjectInfo, Staged, Store};
use pgdr_core::fsx::Pending;
use pgdr_core::{Context, Error, Result};
use std::collections::BTreeSet;
use std::fs::{self, DirBuilder, File};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
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

    /// As root, hands a new open file (perhaps unnamed, `shown` in messages) to the
    /// repository's owner.
    fn give_away_file(&self, file: &File, shown: &Path) -> Result<()> {
        if euid() == 0 && self.owner.0 != 0 {
            std::os::unix::fs::fchown(file, Some(self.owner.0), Some(self.owner.1))
                .context(|| format!("cannot give {} to the repository's owner", shown.display()))?;
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
        let dir = target.parent().unwrap_or(&self.root);
        self.ensure_dir(dir)?;
        let (pending, file) = Pending::beside(&target)
            .context(|| format!("cannot create a temporary file beside {}", target.display()))?;
        let shown = match pending.temp_path() {
            Some(p) => p.to_path_buf(),
            None => {
                let name = target.file_name().unwrap_or_default().to_string_lossy();
                dir.join(format!("(an unnamed file for {name})"))
            }
        };
        self.give_away_file(&file, &shown)?;
        Ok(Staged {
            key: key.to_string(),
            shown,
            pending: Some(pending),
            file,
        })
    }

    fn create_if_absent(&self, staged: Staged) -> Result<Created> {
        let target = self.path(&staged.key);
        let Staged {
            pending,
            file,
            shown,
            ..
        } = staged;
        // Only this store's own stage() gives it objects, and those are written beside them.
        let pending = pending.ok_or_else(|| {
            Error::failed(format!("cannot publish {}", target.display()))
                .because("the object was not staged in the repository")
        })?;
        file.sync_all()
            .context(|| format!("cannot write {}", shown.display()))?;
        {
            // Only the publication (and forgetting a named temporary file) waits for a signal:
            // the directory's fsync below need not hold every other writer of the process
            // back.
            let _guard = pgdr_core::signals::critical_section();
            let published = pending
                .publish_new(&file)
                .context(|| format!("cannot publish {}", target.display()))?;
            if !published {
                return Ok(Created::Exists);
            }
        }
        drop(file);
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
        let (t, _f) = Pending::named_beside(&root.join("wal/00000001/C")).unwrap();
        let t = t.temp_path().unwrap().to_path_buf();
        let l = s.list("wal/").unwrap();
        assert_eq!(l.objects.len(), 1);
        assert_eq!(l.objects[0].key, "wal/00000001/A");
        assert_eq!(l.leftovers.len(), 1);
        s.delete(&[l.leftovers[0].key.clone(), "wal/00000001/A".into()])
            .unwrap();
        assert!(s.list("wal/").unwrap().objects.is_empty());
        assert!(!t.exists());
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
