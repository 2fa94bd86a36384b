//! An image back into a directory: the tree made first (directories, empty files, symlinks),
//! then every piece read by `parallel` workers, verified (the object's header, its size and
//! SHA-256 as decompressed, and that SHA-256 against the one the manifest names) and written
//! at its offset; then the modes, the owner, and one sync of the file system. Any piece that
//! is missing or not intact fails the whole restore: the caller removes the directory, and
//! nothing restored is used before every piece was verified.

use super::data_key;
use super::manifest::{EntryKind, Manifest};
use crate::file::RestoreError;
use crate::object;
use crate::repo::Repo;
use crate::stored::ObjectKind;
use pgdr_core::{Context, Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a restore did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub files: u64,
    pub bytes: u64,
    /// Pieces read (and verified).
    pub objects_read: u64,
}

/// Writes into a file at an offset, moving forward (a piece's bytes as they decompress).
struct At<'a> {
    file: &'a File,
    offset: u64,
}

impl Write for At<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(b, self.offset)?;
        self.offset += b.len() as u64;
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Restores the image `m` into `root`, an existing empty directory. `owner` (uid, gid) gets
/// every entry when given (as root).
///
/// # Errors
/// A piece is missing or not intact (naming it and the file), the repository cannot be read,
/// the directory cannot be written, or SIGINT/SIGTERM arrived. What was written stays for the
/// caller to remove.
pub fn restore(
    repo: &Repo,
    m: &Manifest,
    root: &Path,
    parallel: usize,
    owner: Option<(u32, u32)>,
) -> Result<Restored> {
    m.check(&m.image)?;
    let cannot = |p: &Path| format!("cannot write {}", p.display());
    // The tree first, private to us until the end.
    for e in &m.files {
        let p = root.join(&e.path);
        match e.kind {
            EntryKind::Dir => fs::DirBuilder::new()
                .mode(0o700)
                .create(&p)
                .context(|| cannot(&p))?,
            EntryKind::File => {
                let f = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .open(&p)
                    .context(|| cannot(&p))?;
                f.set_len(e.size).context(|| cannot(&p))?;
            }
            EntryKind::Symlink => {
                let t = e.target.as_deref().unwrap_or_default();
                std::os::unix::fs::symlink(t, &p).context(|| cannot(&p))?;
            }
        }
    }
    let units: Vec<(usize, usize)> = m
        .files
        .iter()
        .enumerate()
        .flat_map(|(i, e)| (0..e.pieces.len()).map(move |p| (i, p)))
        .collect();
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let fail = |e: Error| {
        let mut f = failure.lock().unwrap_or_else(|p| p.into_inner());
        if f.is_none() {
            *f = Some(e);
        }
        stop.store(true, Ordering::Relaxed);
    };
    let worker = || {
        let mut open: Option<(usize, File)> = None;
        while !stop.load(Ordering::Relaxed) {
            if pgdr_core::signals::interrupted() {
                fail(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(fi, pi)) = units.get(i) else { break };
            if let Err(e) = restore_piece(repo, m, root, fi, pi, &mut open) {
                fail(e);
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..parallel.max(1) {
            s.spawn(worker);
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    // Modes and owner last, deepest first, so a 0500 directory does not stop its children.
    for e in m.files.iter().rev() {
        let p = root.join(&e.path);
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::lchown(&p, Some(uid), Some(gid))
                .context(|| format!("cannot change the owner of {}", p.display()))?;
        }
        if e.kind != EntryKind::Symlink {
            fs::set_permissions(&p, fs::Permissions::from_mode(e.mode & 0o7777))
                .context(|| format!("cannot set the mode of {}", p.display()))?;
        }
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(root, Some(uid), Some(gid))
            .context(|| format!("cannot change the owner of {}", root.display()))?;
    }
    // Every restored byte on disk before anything uses it: one syncfs, not one fsync a file.
    let dir = File::open(root).context(|| format!("cannot open {}", root.display()))?;
    rustix::fs::syncfs(&dir).context(|| format!("cannot sync {}", root.display()))?;
    let files = m.files.iter().filter(|e| e.kind == EntryKind::File);
    Ok(Restored {
        files: files.clone().count() as u64,
        bytes: files.map(|e| e.size).sum(),
        objects_read: units.len() as u64,
    })
}

/// Reads piece `pi` of file `fi` into place, verified against the manifest's digest.
fn restore_piece(
    repo: &Repo,
    m: &Manifest,
    root: &Path,
    fi: usize,
    pi: usize,
    open: &mut Option<(usize, File)>,
) -> Result<()> {
    let e = &m.files[fi];
    let path = root.join(&e.path);
    if open.as_ref().is_none_or(|(i, _)| *i != fi) {
        let f = OpenOptions::new()
            .write(true)
            .open(&path)
            .context(|| format!("cannot write {}", path.display()))?;
        *open = Some((fi, f));
    }
    let (_, f) = open.as_ref().expect("opened above");
    let want = &e.pieces[pi];
    let mut digest = [0u8; 32];
    for (i, d) in digest.iter_mut().enumerate() {
        *d = u8::from_str_radix(&want[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    let key = data_key(&digest);
    let offset = pi as u64 * m.piece_size;
    let len = (e.size - offset).min(m.piece_size);
    let bad = |why: String| {
        Error::failed(format!("cannot restore {} of image {}", e.path, m.image))
            .because(format!(
                "piece {} ({}): {why}",
                pi + 1,
                repo.store().locate(&key)
            ))
            .hint("nothing was started; restore another image (snap-take --list --repo shows them)")
    };
    let mut out = At { file: f, offset };
    match object::get(repo, &key, ObjectKind::ImageData, &mut out) {
        Ok(h) if h.sha256 != digest => Err(bad(format!(
            "it holds sha256 {}, the manifest names {want}",
            crate::stored::hex(&h.sha256)
        ))),
        Ok(h) if h.size != len => Err(bad(format!("{} bytes, {len} expected", h.size))),
        Ok(_) => Ok(()),
        Err(RestoreError::Write(w)) => Err(Err::<(), _>(w)
            .context(|| format!("cannot write {}", path.display()))
            .unwrap_err()),
        Err(e) => Err(bad(object::explain(e))),
    }
}
