//! An image back into a directory: the tree made first (directories, empty files, symlinks),
//! then every distinct piece read once by `parallel` workers (each asking for the piece
//! `parallel` places ahead, so a server's answer arrives while the current one is written),
//! verified (the object's header, its size and SHA-256 as decompressed, and that SHA-256
//! against the one the manifest names) and written at every offset that holds it; then the
//! modes, the owner, and one sync of the file system. Any piece that is missing or not intact
//! fails the whole restore: the caller removes the directory, and nothing restored is used
//! before every piece was verified.

use super::data_key;
use super::manifest::{EntryKind, Manifest};
use crate::file::RestoreError;
use crate::object;
use crate::repo::Repo;
use crate::stored::ObjectKind;
use pgdr_core::{Context, Error, Result};
use std::collections::HashMap;
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
    /// Distinct pieces read (and verified); a piece several files (or places) hold is read
    /// once.
    pub objects_read: u64,
}

/// Writes into files at offsets, moving forward: a piece's bytes as they decompress, to
/// every place that holds them.
struct At<'a> {
    places: Vec<(&'a File, u64)>,
}

impl Write for At<'_> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        for (file, offset) in &mut self.places {
            file.write_all_at(b, *offset)?;
            *offset += b.len() as u64;
        }
        Ok(b.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A place a piece goes: (file, piece) as indexes into the manifest.
type Place = (usize, usize);

/// The distinct pieces of `m`, each with every place that holds it, in the order the
/// manifest first names them: one read of the store per distinct piece (against an object
/// store each read is a request, often a new connection), not one per place.
fn jobs_of(m: &Manifest) -> Vec<Vec<Place>> {
    let mut index: HashMap<&str, usize> = HashMap::new();
    let mut jobs: Vec<Vec<Place>> = Vec::new();
    for (fi, e) in m.files.iter().enumerate() {
        for (pi, digest) in e.pieces.iter().enumerate() {
            match index.get(digest.as_str()) {
                Some(&j) => jobs[j].push((fi, pi)),
                None => {
                    index.insert(digest, jobs.len());
                    jobs.push(vec![(fi, pi)]);
                }
            }
        }
    }
    jobs
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
    let jobs = jobs_of(m);
    let workers = parallel.max(1);
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
            let Some(places) = jobs.get(i) else { break };
            // The piece `parallel` places ahead is asked for now: the store's answer (a request
            // to a server) arrives while this one is decompressed, hashed and written.
            if let Some(&[ahead, ..]) = jobs.get(i + workers).map(Vec::as_slice) {
                repo.store().read_ahead(&data_key(&digest_at(m, ahead)));
            }
            if let Err(e) = restore_piece(repo, m, root, places, &mut open) {
                fail(e);
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..workers {
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
        objects_read: jobs.len() as u64,
    })
}

/// The SHA-256 the manifest names for a place (checked as hex by [`Manifest::check`]).
fn digest_at(m: &Manifest, (fi, pi): Place) -> [u8; 32] {
    let want = &m.files[fi].pieces[pi];
    let mut digest = [0u8; 32];
    for (i, d) in digest.iter_mut().enumerate() {
        *d = u8::from_str_radix(&want[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    digest
}

/// Reads one piece once, verified against the manifest's digest, into every place that
/// holds it. `open` keeps the file of the last first place open across calls (consecutive
/// pieces of one large file).
fn restore_piece(
    repo: &Repo,
    m: &Manifest,
    root: &Path,
    places: &[Place],
    open: &mut Option<(usize, File)>,
) -> Result<()> {
    let (fi, pi) = places[0];
    let e = &m.files[fi];
    let path = root.join(&e.path);
    let open_file = |fi: usize| {
        let path = root.join(&m.files[fi].path);
        OpenOptions::new()
            .write(true)
            .open(&path)
            .context(|| format!("cannot write {}", path.display()))
    };
    if open.as_ref().is_none_or(|(i, _)| *i != fi) {
        *open = Some((fi, open_file(fi)?));
    }
    let others = places[1..]
        .iter()
        .map(|&(fi, _)| open_file(fi))
        .collect::<Result<Vec<File>>>()?;
    let (_, f) = open.as_ref().expect("opened above");
    let want = &e.pieces[pi];
    let digest = digest_at(m, (fi, pi));
    let key = data_key(&digest);
    let len_at = |(fi, pi): Place| {
        let offset = pi as u64 * m.piece_size;
        (offset, (m.files[fi].size - offset).min(m.piece_size))
    };
    let (offset, len) = len_at(places[0]);
    let bad = |why: String| {
        Error::failed(format!("cannot restore {} of image {}", e.path, m.image))
            .because(format!(
                "piece {} ({}): {why}",
                pi + 1,
                repo.store().locate(&key)
            ))
            .hint("nothing was started; restore another image (snap-take --list --repo shows them)")
    };
    // Pieces with one digest have one content, so one length: a manifest saying otherwise
    // is refused before anything is read.
    if let Some(&(ofi, opi)) = places.iter().find(|&&p| len_at(p).1 != len) {
        return Err(bad(format!(
            "the manifest names it for {} bytes and, as piece {} of {}, for {}",
            len,
            opi + 1,
            m.files[ofi].path,
            len_at((ofi, opi)).1
        )));
    }
    let mut out = At {
        places: std::iter::once((f, offset))
            .chain(
                others
                    .iter()
                    .zip(&places[1..])
                    .map(|(f, &p)| (f, len_at(p).0)),
            )
            .collect(),
    };
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

#[cfg(test)]
mod tests {
    use super::super::upload::{upload, Request, SourceEntry};
    use super::super::PIECE;
    use super::*;

    /// Content held in several places (two files alike, and one piece twice within a file) is
    /// read once and written to every place; a piece that is not intact fails the restore
    /// whichever place named it.
    #[test]
    fn a_piece_held_in_several_places_is_read_once() {
        let d = tempfile::tempdir().unwrap();
        let repo = crate::repo::bound_for_test(d.path());
        let src = d.path().join("src");
        fs::create_dir(&src).unwrap();
        let piece: Vec<u8> = (0..PIECE as usize).map(|i| (i % 251) as u8).collect();
        let twice = [&piece[..], &piece[..], b"tail"].concat();
        fs::write(src.join("twice"), &twice).unwrap();
        fs::write(src.join("a"), b"alike").unwrap();
        fs::write(src.join("b"), b"alike").unwrap();
        let entry = |name: &str| SourceEntry {
            path: name.into(),
            kind: EntryKind::File,
            mode: 0o640,
            size: fs::metadata(src.join(name)).unwrap().len(),
            target: None,
            source: src.join(name),
            stamp: None,
        };
        let up = upload(
            &repo,
            &Request {
                name: "one".into(),
                created: chrono::Utc::now(),
                snapshot: serde_json::json!({}),
                owner: "postgres".into(),
                entries: vec![entry("twice"), entry("a"), entry("b")],
                parallel: 2,
                wait_lock: None,
                source: None,
                read_all: false,
            },
            &|_| Ok(()),
        )
        .unwrap();
        let m = up.manifest;
        let out = d.path().join("out");
        fs::create_dir(&out).unwrap();
        let r = restore(&repo, &m, &out, 3, None).unwrap();
        assert_eq!((r.files, r.objects_read), (3, 3));
        assert_eq!(fs::read(out.join("twice")).unwrap(), twice);
        assert_eq!(fs::read(out.join("a")).unwrap(), b"alike");
        assert_eq!(fs::read(out.join("b")).unwrap(), b"alike");
        let mode = fs::metadata(out.join("b")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o640);
        // The shared small piece swapped for another's bytes: refused.
        let alike = data_key(&{
            use sha2::Digest;
            sha2::Sha256::digest(b"alike").into()
        });
        let tail = data_key(&{
            use sha2::Digest;
            sha2::Sha256::digest(b"tail").into()
        });
        fs::copy(repo.store().locate(&tail), repo.store().locate(&alike)).unwrap();
        let out2 = d.path().join("out2");
        fs::create_dir(&out2).unwrap();
        let e = restore(&repo, &m, &out2, 3, None).unwrap_err().to_string();
        assert!(e.contains("cannot restore a of image one"), "{e}");
        assert!(e.contains("sha256"), "{e}");
    }
}
