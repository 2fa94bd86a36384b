//! Files written the only safe way: a new file in the same directory (unnamed where the
//! filesystem allows, see [`Pending`]), fsync, link or rename into place, fsync of the
//! directory; mode, owner and group of a replaced file kept.

use crate::error::{clean_io_message, Context, Error, Result};
use crate::signals::{critical_section, TempFile};
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// `p` made absolute against the current directory (not resolved: no symlink or `..` is
/// followed), for paths handed to servers or recorded for later runs from elsewhere.
///
/// # Errors
/// The current directory cannot be read (removed, say).
pub fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        return Ok(p.to_path_buf());
    }
    Ok(std::env::current_dir()
        .context(|| "cannot read the current directory".into())?
        .join(p))
}

/// Reads a text file for editing, with clear errors for the usual mistakes.
/// Missing, unreadable or a directory: exit 1. Not UTF-8: exit 2 (malformed input).
pub fn read_text(path: &Path) -> Result<String> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|e| {
        Error::usage(format!("cannot read {}", path.display())).because(format!(
            "invalid UTF-8 at byte {}",
            e.utf8_error().valid_up_to()
        ))
    })
}

/// Reads a whole file, refusing directories with a clear reason.
pub fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    let fail = |why: String| Error::failed(format!("cannot read {}", path.display())).because(why);
    let meta = fs::metadata(path).map_err(|e| fail(clean_io_message(&e.to_string())))?;
    if meta.is_dir() {
        return Err(fail("it is a directory".into()));
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut buf))
        .map_err(|e| fail(clean_io_message(&e.to_string())))?;
    Ok(buf)
}

/// How to write.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// Keep the previous file beside the new one as `NAME.pgdr-YYYYmmddTHHMMSSZ.bak`.
    pub backup: bool,
    /// Mode for a file that does not exist yet (an existing file keeps its own). Default 0600.
    pub new_mode: Option<u32>,
}

/// What a write did.
#[derive(Debug, Clone, Default)]
pub struct WriteReport {
    pub backup: Option<PathBuf>,
}

/// `.NAME.pgdr-tmp.PID.N` beside `target`: a name no other process or call uses.
fn temp_name(target: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    target.with_file_name(format!(".{name}.pgdr-tmp.{}.{n}", std::process::id()))
}

fn parent_of(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Fsyncs a directory so a rename or a new name in it survives a crash.
pub fn fsync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Reserves `len` bytes of blocks for a file about to be written whole (fallocate(2) with
/// FALLOC_FL_KEEP_SIZE: its length still grows only as bytes are written, so a reader
/// watching it grow, as get watches the prefetch spool, sees what it saw before), on ext4
/// and XFS only. There, filling a reserved 16 MiB segment cost ~2.2 ms against ~3.4 block by
/// block; on btrfs it cost ~1 ms more (18.9 against 17.9 ms), and zfs-fuse cannot. Best
/// effort: a filesystem that refuses changes nothing; glibc's fallback of writing zeros is
/// never used.
pub fn reserve(f: &File, len: u64) {
    const EXT4: u64 = 0xEF53;
    const XFS: u64 = 0x5846_5342;
    let reserves = rustix::fs::fstatfs(f).is_ok_and(|s| {
        let kind = s.f_type as u64;
        kind == EXT4 || kind == XFS
    });
    if reserves {
        let _ = rustix::fs::fallocate(f, rustix::fs::FallocateFlags::KEEP_SIZE, 0, len);
    }
}

/// A file being written for `target`, not yet under any name where the filesystem allows
/// (Linux's `O_TMPFILE`): a process killed by SIGKILL before it is published leaves nothing
/// behind, where a named temporary file would stay. Elsewhere (FUSE such as zfs-fuse, NFS, no
/// /proc) it is a named `.NAME.pgdr-tmp.PID.N` (0600, created exclusively), removed on drop
/// and on SIGINT/SIGTERM unless published. Nothing is synced and no signal is held off: the
/// caller decides (fsync the file before publishing, the directory after; publish inside
/// [`critical_section`]).
#[derive(Debug)]
pub struct Pending {
    target: PathBuf,
    /// The named temporary file, when the filesystem has no unnamed ones.
    named: Option<TempFile>,
}

impl Pending {
    /// The file to write for `target` (0600 before the umask, readable and writable), unnamed
    /// where the filesystem allows, and what publishes it.
    ///
    /// # Errors
    /// Neither an unnamed nor a named file can be created in `target`'s directory.
    pub fn beside(target: &Path) -> std::io::Result<(Pending, File)> {
        use rustix::fs::{Mode, OFlags, CWD};
        // Linking an unnamed file goes through /proc/self/fd (linkat AT_EMPTY_PATH needs
        // CAP_DAC_READ_SEARCH, which PostgreSQL's user lacks).
        if Path::new("/proc/self/fd").is_dir() {
            let flags = OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC;
            let dir = parent_of(target);
            if let Ok(fd) = rustix::fs::openat(CWD, dir, flags, Mode::from_raw_mode(0o600)) {
                let pending = Pending {
                    target: target.to_path_buf(),
                    named: None,
                };
                return Ok((pending, File::from(fd)));
            }
        }
        Self::named_beside(target)
    }

    /// As [`Pending::beside`], always with a name: for a file others must find while it is
    /// written, and what filesystems without unnamed files get.
    ///
    /// # Errors
    /// The file cannot be created in `target`'s directory.
    pub fn named_beside(target: &Path) -> std::io::Result<(Pending, File)> {
        let path = temp_name(target);
        let temp = TempFile::register(&path);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        let pending = Pending {
            target: target.to_path_buf(),
            named: Some(temp),
        };
        Ok((pending, f))
    }

    /// The temporary name, when the file has one.
    pub fn temp_path(&self) -> Option<&Path> {
        self.named.as_ref().map(TempFile::path)
    }

    /// `file` (the one [`Pending::beside`] returned) linked, unnamed, to `to`.
    fn link(file: &File, to: &Path) -> rustix::io::Result<()> {
        use rustix::fs::{AtFlags, CWD};
        use std::os::fd::AsRawFd;
        let fd = format!("/proc/self/fd/{}", file.as_raw_fd());
        rustix::fs::linkat(CWD, fd.as_str(), CWD, to, AtFlags::SYMLINK_FOLLOW)
    }

    /// Puts `file` (the one [`Pending::beside`] returned) under the target's name, replacing
    /// what was there: an unnamed file is linked straight to a free name (no temporary name
    /// ever exists), or to a temporary name renamed over an occupied one (a name that exists
    /// for two system calls).
    ///
    /// # Errors
    /// The link or the rename fails; the target is then as it was.
    pub fn publish(self, file: &File) -> std::io::Result<()> {
        if let Some(temp) = self.named {
            fs::rename(temp.path(), &self.target)?;
            temp.keep();
            return Ok(());
        }
        match Self::link(file, &self.target) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::EXIST) => {
                let temp = TempFile::register(&temp_name(&self.target));
                Self::link(file, temp.path())?;
                fs::rename(temp.path(), &self.target)?;
                temp.keep();
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Puts `file` under the target's name only if that name is free: true when published,
    /// false (and the file discarded) when the name exists. An unnamed file is linked (a
    /// link never replaces: EEXIST is the answer), a named one renamed with
    /// [`rename_noreplace`].
    ///
    /// # Errors
    /// The link or the rename fails for another reason; nothing was replaced.
    pub fn publish_new(self, file: &File) -> std::io::Result<bool> {
        if let Some(temp) = self.named {
            let published = rename_noreplace(temp.path(), &self.target)?;
            if published {
                temp.keep();
            }
            return Ok(published);
        }
        match Self::link(file, &self.target) {
            Ok(()) => Ok(true),
            Err(rustix::io::Errno::EXIST) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }
}

/// Writes `contents` to a [`Pending`] file for `target` with `mode`, owner and group, and
/// fsyncs it; still to be published.
fn write_pending(
    target: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<(Pending, File)> {
    let (pending, mut f) = Pending::beside(target)?;
    f.write_all(contents)?;
    if let Some((uid, gid)) = owner {
        // Only root can give a file away; as anyone else the owner is already us.
        if let Err(e) = std::os::unix::fs::fchown(&f, Some(uid), Some(gid)) {
            if e.kind() != ErrorKind::PermissionDenied {
                return Err(e);
            }
        }
    }
    f.set_permissions(fs::Permissions::from_mode(mode))?;
    f.sync_all()?;
    Ok((pending, f))
}

/// Replaces (or creates) `path` atomically with `contents`.
pub fn write_atomic(path: &Path, contents: &[u8], opts: &WriteOptions) -> Result<WriteReport> {
    let fail = |why: String| {
        Error::failed(format!("cannot write {}", path.display()))
            .because(why)
            .hint("the file was left unchanged")
    };
    let io = |e: std::io::Error| fail(clean_io_message(&e.to_string()));
    let existing = match fs::metadata(path) {
        Ok(m) if m.is_dir() => return Err(fail("it is a directory".into())),
        Ok(m) => Some(m),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => return Err(io(e)),
    };
    let (mode, owner) = match &existing {
        Some(m) => (m.mode() & 0o7777, Some((m.uid(), m.gid()))),
        None => (opts.new_mode.unwrap_or(0o600), None),
    };
    let (pending, file) = write_pending(path, contents, mode, owner).map_err(io)?;
    let mut report = WriteReport::default();
    if opts.backup && existing.is_some() {
        report.backup = Some(backup_copy(path).map_err(io)?);
    }
    let dir = parent_of(path);
    {
        let _guard = critical_section();
        pending.publish(&file).map_err(io)?;
        fsync_dir(dir).map_err(io)?;
    }
    Ok(report)
}

/// Copies the current file to `NAME.pgdr-<UTC time>.bak`, atomically, keeping mode and owner.
fn backup_copy(path: &Path) -> std::io::Result<PathBuf> {
    let meta = fs::metadata(path)?;
    let old = fs::read(path)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let bak = path.with_file_name(format!("{name}.pgdr-{stamp}.bak"));
    let (pending, file) = write_pending(
        &bak,
        &old,
        meta.mode() & 0o7777,
        Some((meta.uid(), meta.gid())),
    )?;
    let _guard = critical_section();
    pending.publish(&file)?;
    fsync_dir(parent_of(&bak))?;
    Ok(bak)
}

/// Publishes `tmp` as `target` only if `target` does not exist (renameat2 RENAME_NOREPLACE,
/// falling back to link+unlink where the filesystem lacks it). Returns false if it existed.
pub fn rename_noreplace(tmp: &Path, target: &Path) -> std::io::Result<bool> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
    let (from, to) = (c(tmp)?, c(target)?);
    // SAFETY: both are valid NUL-terminated paths; AT_FDCWD resolves them relative to the cwd.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(true);
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EEXIST) => Ok(false),
        Some(libc::EINVAL) | Some(libc::ENOSYS) | Some(libc::EOPNOTSUPP) => {
            match fs::hard_link(tmp, target) {
                Ok(()) => {
                    fs::remove_file(tmp)?;
                    Ok(true)
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => Ok(false),
                Err(e) => Err(e),
            }
        }
        _ => Err(err),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reserved file keeps the length of what was written (the prefetch spool's watcher
    /// reads it) and, on ext4 or XFS, has the blocks already.
    #[test]
    fn reserve_keeps_the_length_and_takes_the_blocks() {
        use std::os::unix::fs::MetadataExt;
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("seg");
        let mut f = File::create(&p).unwrap();
        reserve(&f, 4 << 20);
        std::io::Write::write_all(&mut f, b"abc").unwrap();
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.len(), 3);
        let kind = rustix::fs::fstatfs(&f).unwrap().f_type as u64;
        if kind == 0xEF53 || kind == 0x5846_5342 {
            assert!(m.blocks() * 512 >= 4 << 20, "{} blocks", m.blocks());
        }
    }

    #[test]
    fn replace_keeps_mode_and_content() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pg_hba.conf");
        fs::write(&p, "old\n").unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o640)).unwrap();
        let r = write_atomic(
            &p,
            b"new\n",
            &WriteOptions {
                backup: true,
                new_mode: None,
            },
        )
        .unwrap();
        assert_eq!(fs::read_to_string(&p).unwrap(), "new\n");
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o640);
        let bak = r.backup.unwrap();
        assert_eq!(fs::read_to_string(&bak).unwrap(), "old\n");
        assert_eq!(fs::metadata(&bak).unwrap().mode() & 0o777, 0o640);
        // No temporary file is left behind.
        let names: Vec<_> = fs::read_dir(d.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 2, "{names:?}");
    }

    #[test]
    fn new_file_gets_private_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_atomic(&p, b"1", &WriteOptions::default()).unwrap();
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn directory_and_missing_parent_fail_cleanly() {
        let d = tempfile::tempdir().unwrap();
        let e = write_atomic(d.path(), b"1", &WriteOptions::default()).unwrap_err();
        assert!(e.to_string().contains("it is a directory"), "{e}");
        let e =
            write_atomic(&d.path().join("no/such"), b"1", &WriteOptions::default()).unwrap_err();
        assert_eq!(e.exit_code(), 1);
    }

    #[test]
    fn read_text_errors() {
        let d = tempfile::tempdir().unwrap();
        assert!(read_text(d.path())
            .unwrap_err()
            .to_string()
            .contains("directory"));
        let p = d.path().join("bad");
        fs::write(&p, b"ok\xff").unwrap();
        let e = read_text(&p).unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("invalid UTF-8 at byte 2"), "{e}");
        assert_eq!(
            read_text(&d.path().join("none")).unwrap_err().exit_code(),
            1
        );
    }

    fn names(d: &Path) -> Vec<String> {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    fn pending(target: &Path, named: bool, body: &[u8]) -> (Pending, File) {
        let (p, mut f) = if named {
            Pending::named_beside(target).unwrap()
        } else {
            Pending::beside(target).unwrap()
        };
        f.write_all(body).unwrap();
        // The test directory is on a filesystem with O_TMPFILE: nothing named yet.
        assert_eq!(p.temp_path().is_some(), named);
        (p, f)
    }

    #[test]
    fn a_pending_file_has_no_name_until_published_free_or_occupied() {
        for named in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let target = d.path().join("RECOVERYXLOG");
            for (round, body) in [b"first", b"again"].into_iter().enumerate() {
                let before = names(d.path());
                let (p, f) = pending(&target, named, body);
                let temp = p.temp_path().map(|t| t.to_path_buf());
                let mut expect = before.clone();
                if let Some(t) = &temp {
                    expect.push(t.file_name().unwrap().to_string_lossy().into_owned());
                    expect.sort();
                }
                assert_eq!(names(d.path()), expect, "named {named}, round {round}");
                p.publish(&f).unwrap();
                assert_eq!(names(d.path()), ["RECOVERYXLOG"], "round {round}");
                assert_eq!(fs::read(&target).unwrap(), body);
                assert_eq!(fs::metadata(&target).unwrap().mode() & 0o777, 0o600);
            }
        }
    }

    #[test]
    fn publish_new_takes_a_free_name_and_never_an_occupied_one() {
        for named in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let target = d.path().join("obj");
            let (p, f) = pending(&target, named, b"first");
            assert!(p.publish_new(&f).unwrap(), "named {named}");
            assert_eq!(names(d.path()), ["obj"]);
            // Occupied (EEXIST from the link, false from renameat2): left as it was, and the
            // loser's file is gone with it.
            let (p, f) = pending(&target, named, b"second");
            assert!(!p.publish_new(&f).unwrap(), "named {named}");
            drop(f);
            assert_eq!(fs::read(&target).unwrap(), b"first");
            assert_eq!(names(d.path()), ["obj"], "named {named}");
        }
    }

    #[test]
    fn a_pending_file_dropped_unpublished_leaves_nothing() {
        for named in [false, true] {
            let d = tempfile::tempdir().unwrap();
            let (p, f) = pending(&d.path().join("x"), named, b"never");
            drop((p, f));
            assert!(names(d.path()).is_empty(), "named {named}");
        }
    }

    #[test]
    fn noreplace_never_overwrites() {
        let d = tempfile::tempdir().unwrap();
        let (a, b, t) = (d.path().join("a"), d.path().join("b"), d.path().join("t"));
        fs::write(&a, "a").unwrap();
        fs::write(&b, "b").unwrap();
        assert!(rename_noreplace(&a, &t).unwrap());
        assert!(!rename_noreplace(&b, &t).unwrap());
        assert_eq!(fs::read_to_string(&t).unwrap(), "a");
        assert!(b.exists());
    }
}
