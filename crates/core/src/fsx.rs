//! Files written the only safe way: temporary file in the same directory, fsync, rename, fsync
//! of the directory; mode, owner and group of a replaced file kept.

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

fn temp_name(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = N.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.pgdr-tmp.{}.{n}", std::process::id()))
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

/// Writes `contents` to a new temporary file beside `target` (fsynced, with `mode`, owner and
/// group) and returns it, still to be renamed or linked into place.
pub fn write_temp_beside(
    target: &Path,
    contents: &[u8],
    mode: u32,
    owner: Option<(u32, u32)>,
) -> std::io::Result<TempFile> {
    let tmp_path = temp_name(target);
    let temp = TempFile::register(&tmp_path);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp_path)?;
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
    Ok(temp)
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
    let temp = write_temp_beside(path, contents, mode, owner).map_err(io)?;
    let mut report = WriteReport::default();
    if opts.backup && existing.is_some() {
        report.backup = Some(backup_copy(path).map_err(io)?);
    }
    let dir = parent_of(path);
    {
        let _guard = critical_section();
        fs::rename(temp.path(), path).map_err(io)?;
        temp.keep();
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
    let temp = write_temp_beside(
        &bak,
        &old,
        meta.mode() & 0o7777,
        Some((meta.uid(), meta.gid())),
    )?;
    let _guard = critical_section();
    fs::rename(temp.path(), &bak)?;
    temp.keep();
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
