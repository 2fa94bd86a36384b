//! Storing a tree of files as an image: every file cut into pieces, each piece hashed and
//! sent only when the repository does not hold an object of that SHA-256 yet, by `parallel`
//! workers at once (the pieces of one large file go to several workers); the manifest is
//! published last, so an interrupted upload leaves pieces (which the next run reuses, or the
//! next prune removes) but never an image that looks complete.
//!
//! Memory is bounded by the workers: each holds one piece ([`PIECE`] bytes) at a time; the
//! set of pieces the repository holds is kept as 32-byte digests.

use super::manifest::{self, Entry, EntryKind, Manifest, Stamp};
use super::{data_key, digest_of, name_of, valid_name, DATA_PREFIX, LOCK, MANIFEST_PREFIX, PIECE};
use crate::object;
use crate::repo::Repo;
use crate::store::Created;
use crate::stored::{hex, ObjectKind};
use chrono::{DateTime, Utc};
use pgdr_core::{Context, Error, Result};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// One entry of the tree to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// As in the manifest: relative, `/`-separated, parents before children.
    pub path: String,
    pub kind: EntryKind,
    pub mode: u32,
    /// A file's size (read exactly this much).
    pub size: u64,
    /// A symlink's target.
    pub target: Option<String>,
    /// Where a file's bytes are read from.
    pub source: PathBuf,
    /// A file's stamp in the snapshot (None: always read).
    pub stamp: Option<Stamp>,
}

/// What to store.
#[derive(Debug, Clone)]
pub struct Request {
    /// The image's name (the snapshot's).
    pub name: String,
    /// When the snapshot was taken.
    pub created: DateTime<Utc>,
    /// The snapshot's metadata.
    pub snapshot: serde_json::Value,
    /// The name of the data directory's owner.
    pub owner: String,
    pub entries: Vec<SourceEntry>,
    /// Concurrent workers (at least 1).
    pub parallel: usize,
    /// How long to wait for the images lock.
    pub wait_lock: Option<Duration>,
    /// Which file system the snapshot is of (`BACKEND:PGDATA`), recorded in the manifest;
    /// with stamps, the newest earlier image of the same source lends the pieces of files
    /// whose stamp it shares. None: every file is read.
    pub source: Option<String>,
    /// Read every file, taking nothing from an earlier image (the source and stamps are
    /// still recorded, for the next image).
    pub read_all: bool,
}

/// What an upload did.
#[derive(Debug, Clone)]
pub struct Uploaded {
    /// The image's manifest (the one found, when it was stored already).
    pub manifest: Manifest,
    /// The image existed already (nothing was sent).
    pub already_stored: bool,
    /// Pieces sent, their original bytes, their bytes as stored.
    pub objects_sent: u64,
    pub bytes_sent: u64,
    pub stored_bytes_sent: u64,
    /// Distinct pieces the image references that the repository held already.
    pub objects_reused: u64,
    /// Files not read: an earlier image of the same source holds them with the same stamp.
    pub files_unchanged: u64,
    /// The image whose stamps were compared (None: every file was read).
    pub base: Option<String>,
}

/// Counts shared by the workers.
#[derive(Default)]
struct Tally {
    sent: u64,
    bytes_sent: u64,
    stored_sent: u64,
    /// The pieces this run sent (every other piece it references was there already).
    digests: std::collections::HashSet<[u8; 32]>,
}

/// Stores `req` as an image, under the repository's images lock. `same` decides whether an
/// existing image of that name is this one (then nothing is sent: `already_stored`), or says
/// why not (then it is refused).
///
/// # Errors
/// The name is invalid; the lock is held (exit 75); an image of that name with other content
/// exists; a file cannot be read (or is shorter than its size); the repository cannot be
/// written; SIGINT/SIGTERM. No manifest is published then.
pub fn upload(
    repo: &Repo,
    req: &Request,
    same: &dyn Fn(&Manifest) -> std::result::Result<(), String>,
) -> Result<Uploaded> {
    valid_name(&req.name).map_err(Error::usage)?;
    let id = repo.identity().ok_or_else(|| {
        Error::failed(format!("cannot store image {}", req.name)).because(format!(
            "repository {} is bound to no database system",
            repo.location()
        ))
    })?;
    let store = repo.store();
    let _lock = store.lock(
        LOCK,
        &format!("the image store of repository {}", repo.location()),
        req.wait_lock,
    )?;
    if let Some(existing) = manifest::read(repo, &req.name)? {
        same(&existing).map_err(|why| {
            Error::failed(format!(
                "image {} exists already in {} with other content",
                req.name,
                repo.location()
            ))
            .because(why)
            .hint("nothing was overwritten; images are never replaced")
        })?;
        return Ok(Uploaded {
            manifest: existing,
            already_stored: true,
            objects_sent: 0,
            bytes_sent: 0,
            stored_bytes_sent: 0,
            objects_reused: 0,
            files_unchanged: 0,
            base: None,
        });
    }
    // Pieces the repository holds, with their stored sizes: each is referenced, not sent.
    let mut held: HashMap<[u8; 32], u64> = HashMap::new();
    for o in store.list(DATA_PREFIX)?.objects {
        if let Some(d) = digest_of(&o.key).and_then(parse_hex) {
            held.insert(d, o.size);
        }
    }
    let compression = repo.compression();
    // The repository's settings were checked when it was made (init refuses a bad level).
    let level = compression
        .level(repo.settings().compression_level)
        .unwrap_or(1);
    let base = base_image(repo, req)?;
    let lent: Vec<Option<Vec<[u8; 32]>>> = req
        .entries
        .iter()
        .map(|e| base.as_ref().and_then(|b| b.lends(e, &held)))
        .collect();
    let units: Vec<(usize, u64)> = req
        .entries
        .iter()
        .enumerate()
        .filter(|(i, e)| e.kind == EntryKind::File && lent[*i].is_none())
        .flat_map(|(i, e)| (0..e.size.div_ceil(PIECE)).map(move |p| (i, p)))
        .collect();
    let files_unchanged = lent.iter().filter(|l| l.is_some()).count() as u64;
    let pieces: Vec<Mutex<Vec<[u8; 32]>>> = req
        .entries
        .iter()
        .zip(lent)
        .map(|(e, l)| {
            Mutex::new(l.unwrap_or_else(|| vec![[0u8; 32]; e.size.div_ceil(PIECE) as usize]))
        })
        .collect();
    let held = Mutex::new(held);
    let tally = Mutex::new(Tally::default());
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let failure: Mutex<Option<Error>> = Mutex::new(None);
    let worker = || {
        let mut buf = vec![0u8; PIECE as usize];
        let mut open: Option<(usize, File)> = None;
        while !stop.load(Ordering::Relaxed) {
            if pgdr_core::signals::interrupted() {
                fail(&failure, &stop, interrupted());
                break;
            }
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(&(fi, pi)) = units.get(i) else { break };
            let e = &req.entries[fi];
            let r = send_piece(
                repo,
                e,
                fi,
                pi,
                &mut buf,
                &mut open,
                &held,
                &tally,
                compression,
                level,
            );
            match r {
                Ok(d) => lock(&pieces[fi])[pi as usize] = d,
                Err(err) => fail(&failure, &stop, err),
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 0..req.parallel.max(1) {
            s.spawn(worker);
        }
    });
    if let Some(e) = failure.into_inner().unwrap_or_else(|p| p.into_inner()) {
        return Err(e);
    }
    let held = held.into_inner().unwrap_or_else(|p| p.into_inner());
    let mut m = Manifest::new(
        &req.name,
        id.system_identifier,
        req.created,
        req.snapshot.clone(),
    );
    m.owner = req.owner.clone();
    m.source = req.source.clone();
    let mut distinct = std::collections::HashSet::new();
    for (e, p) in req.entries.iter().zip(pieces) {
        let p = p.into_inner().unwrap_or_else(|p| p.into_inner());
        m.bytes += if e.kind == EntryKind::File { e.size } else { 0 };
        distinct.extend(p.iter().copied());
        m.files.push(Entry {
            path: e.path.clone(),
            kind: e.kind,
            mode: e.mode,
            size: if e.kind == EntryKind::File { e.size } else { 0 },
            pieces: p.iter().map(|d| hex(d)).collect(),
            target: e.target.clone(),
            stamp: if e.kind == EntryKind::File {
                e.stamp
            } else {
                None
            },
        });
    }
    m.objects = distinct.len() as u64;
    m.stored_bytes = distinct
        .iter()
        .map(|d| held.get(d).copied().unwrap_or(0))
        .sum();
    let t = tally.into_inner().unwrap_or_else(|p| p.into_inner());
    let reused = distinct.iter().filter(|d| !t.digests.contains(*d)).count() as u64;
    m.check(&req.name)?;
    if pgdr_core::signals::interrupted() {
        return Err(interrupted());
    }
    let put = manifest::write(repo, &m, compression, level)?;
    if put.created == Created::Exists {
        return Err(Error::failed(format!("cannot store image {}", req.name))
            .because("another run published a manifest of that name meanwhile")
            .hint("nothing was overwritten"));
    }
    Ok(Uploaded {
        manifest: m,
        already_stored: false,
        objects_sent: t.sent,
        bytes_sent: t.bytes_sent,
        stored_bytes_sent: t.stored_sent,
        objects_reused: reused,
        files_unchanged,
        base: base.map(|b| b.name),
    })
}

/// The newest earlier image of the same source, whose stamps can stand for file contents.
struct Base {
    name: String,
    /// [`Manifest::stamp_bound`].
    bound: i64,
    /// Its files by path: size, stamp, pieces.
    files: HashMap<String, (u64, Stamp, Vec<[u8; 32]>)>,
}

impl Base {
    /// The pieces of `e` when the base holds its path with the same size and a trusted
    /// stamp equal to `e`'s, and the repository still holds every one of them.
    fn lends(&self, e: &SourceEntry, held: &HashMap<[u8; 32], u64>) -> Option<Vec<[u8; 32]>> {
        let stamp = e.stamp.filter(|_| e.kind == EntryKind::File)?;
        let (size, s, pieces) = self.files.get(&e.path)?;
        (*size == e.size
            && *s == stamp
            && s.trusted(self.bound)
            && pieces.iter().all(|d| held.contains_key(d)))
        .then(|| pieces.clone())
    }
}

/// The image stored last in the repository, when it is of `req`'s source, was taken before
/// `req`'s snapshot and kept stamps. Its manifest is read under the images lock, so no prune
/// removes its pieces meanwhile; they are still checked against the listing.
///
/// # Errors
/// The repository cannot be listed or read.
fn base_image(repo: &Repo, req: &Request) -> Result<Option<Base>> {
    let Some(source) = req.source.as_ref().filter(|_| !req.read_all) else {
        return Ok(None);
    };
    let newest = repo
        .store()
        .list(MANIFEST_PREFIX)?
        .objects
        .into_iter()
        .filter_map(|o| Some((o.modified, name_of(&o.key)?.to_string())))
        .filter(|(_, n)| *n != req.name)
        .max();
    let Some((_, name)) = newest else {
        return Ok(None);
    };
    // A manifest this build cannot use lends nothing; it does not fail the upload.
    let Some(m) = manifest::read(repo, &name).ok().flatten() else {
        return Ok(None);
    };
    if m.source.as_ref() != Some(source) || m.created >= req.created || m.check(&name).is_err() {
        return Ok(None);
    }
    let Some(bound) = m.stamp_bound() else {
        return Ok(None);
    };
    let files = m
        .files
        .into_iter()
        .filter(|e| e.kind == EntryKind::File)
        .filter_map(|e| {
            let pieces = e
                .pieces
                .iter()
                .map(|h| parse_hex(h))
                .collect::<Option<_>>()?;
            Some((e.path, (e.size, e.stamp?, pieces)))
        })
        .collect();
    Ok(Some(Base { name, bound, files }))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

fn interrupted() -> Error {
    Error::failed("interrupted").because(
        "no image was published; the pieces sent so far are reused by the next run (or removed by the next snap-prune --repo)",
    )
}

/// Keeps the first failure and stops the other workers.
fn fail(failure: &Mutex<Option<Error>>, stop: &AtomicBool, e: Error) {
    let mut f = lock(failure);
    if f.is_none() {
        *f = Some(e);
    }
    stop.store(true, Ordering::Relaxed);
}

fn parse_hex(h: &str) -> Option<[u8; 32]> {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(h.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// Reads piece `pi` of entry `fi`, hashes it, and sends it unless the repository (or another
/// worker) has it. Returns its SHA-256.
#[allow(clippy::too_many_arguments)]
fn send_piece(
    repo: &Repo,
    e: &SourceEntry,
    fi: usize,
    pi: u64,
    buf: &mut [u8],
    open: &mut Option<(usize, File)>,
    held: &Mutex<HashMap<[u8; 32], u64>>,
    tally: &Mutex<Tally>,
    compression: crate::stored::Compression,
    level: i32,
) -> Result<[u8; 32]> {
    let off = pi * PIECE;
    let len = (e.size - off).min(PIECE) as usize;
    let cannot_read = || format!("cannot read {}", e.source.display());
    if open.as_ref().is_none_or(|(i, _)| *i != fi) {
        *open = Some((fi, File::open(&e.source).context(cannot_read)?));
    }
    let (_, f) = open.as_ref().expect("opened above");
    f.read_exact_at(&mut buf[..len], off).map_err(|err| {
        if err.kind() == std::io::ErrorKind::UnexpectedEof {
            Error::failed(cannot_read()).because(format!(
                "it is shorter than the {} bytes it had when the image began",
                e.size
            ))
        } else {
            Err::<(), _>(err).context(cannot_read).unwrap_err()
        }
    })?;
    let piece = &buf[..len];
    let digest: [u8; 32] = Sha256::digest(piece).into();
    {
        let mut h = lock(held);
        if h.contains_key(&digest) {
            return Ok(digest);
        }
        // Claimed: another worker meeting the same piece references it (this one sends it;
        // if sending fails, the whole upload fails).
        h.insert(digest, 0);
    }
    let key = data_key(&digest);
    let put = object::put(
        repo,
        &key,
        ObjectKind::ImageData,
        &mut &piece[..],
        compression,
        level,
    )?;
    let stored = match put.created {
        Created::New => {
            let mut t = lock(tally);
            t.sent += 1;
            t.bytes_sent += len as u64;
            t.stored_sent += put.stored_bytes;
            t.digests.insert(digest);
            put.stored_bytes
        }
        // Written meanwhile by someone else (a copy into this repository).
        Created::Exists => repo.store().head(&key)?.map_or(0, |i| i.size),
    };
    lock(held).insert(digest, stored);
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000_000;

    fn file(src: &std::path::Path, path: &str, ctime_ns: i64) -> SourceEntry {
        let p = src.join(path);
        SourceEntry {
            path: path.into(),
            kind: EntryKind::File,
            mode: 0o600,
            size: std::fs::metadata(&p).unwrap().len(),
            target: None,
            source: p,
            stamp: Some(Stamp {
                ino: 1,
                ctime_ns,
                mtime_ns: ctime_ns,
            }),
        }
    }

    fn pieces_of<'a>(m: &'a Manifest, path: &str) -> &'a [String] {
        &m.files.iter().find(|e| e.path == path).unwrap().pieces
    }

    /// The stamps upload trusts are the caller's: a file whose stamp an earlier image of the
    /// same source shares, changed well before that snapshot, is not read (its new content
    /// here proves it); a changed stamp, a change within a second of the earlier snapshot, a
    /// missing piece, another source or a later earlier image make it read.
    #[test]
    fn only_files_with_a_trusted_shared_stamp_are_not_read() {
        let d = tempfile::tempdir().unwrap();
        let repo = crate::repo::bound_for_test(d.path());
        let src = d.path().join("src");
        std::fs::create_dir(&src).unwrap();
        for (f, text) in [("a", "a1"), ("b", "b1"), ("c", "c1"), ("gone", "g1")] {
            std::fs::write(src.join(f), text).unwrap();
        }
        let t1 = Utc::now();
        let old = t1.timestamp_nanos_opt().unwrap() - 100 * S;
        // c changed half a second before the newest change (its own): too close to trust.
        let newest = t1.timestamp_nanos_opt().unwrap() - S / 2;
        // Names i1, i2, … sort as they were stored, as snapshot names do: the newest image
        // is found by the store's modification time, which has whole seconds here.
        let req = |name: &str, created, source: &str, e: Vec<SourceEntry>| Request {
            name: name.into(),
            created,
            snapshot: serde_json::json!({}),
            owner: "postgres".into(),
            entries: e,
            parallel: 2,
            wait_lock: None,
            source: Some(source.into()),
            read_all: false,
        };
        let first = |src: &std::path::Path| {
            vec![
                file(src, "a", old),
                file(src, "b", old),
                file(src, "c", newest),
                file(src, "gone", old),
            ]
        };
        let one = upload(&repo, &req("i1", t1, "zfs:/pg", first(&src)), &|_| Ok(())).unwrap();
        assert_eq!((one.files_unchanged, one.base.as_deref()), (0, None));
        let m1 = one.manifest;
        assert_eq!(m1.stamp_bound(), Some(newest));
        // Every file changes on disk; only the stamps say what changed.
        for (f, text) in [("a", "a2"), ("b", "b2"), ("c", "c2"), ("gone", "g2")] {
            std::fs::write(src.join(f), text).unwrap();
        }
        // The piece of "gone" disappears from the repository.
        let gone = &pieces_of(&m1, "gone")[0];
        repo.store()
            .delete(&[data_key(&parse_hex(gone).unwrap())])
            .unwrap();
        let t2 = t1 + chrono::Duration::seconds(10);
        let mut e = first(&src);
        e[1].stamp.as_mut().unwrap().mtime_ns += 1;
        let two = upload(&repo, &req("i2", t2, "zfs:/pg", e), &|_| Ok(())).unwrap();
        assert_eq!((two.files_unchanged, two.base.as_deref()), (1, Some("i1")));
        let m2 = two.manifest;
        // a: lent (the old content's piece, the file was not read).
        assert_eq!(pieces_of(&m2, "a"), pieces_of(&m1, "a"));
        // b (stamp changed), c (too close to the snapshot), gone (piece missing): read.
        for f in ["b", "c", "gone"] {
            assert_ne!(pieces_of(&m2, f), pieces_of(&m1, f), "{f}");
            let want = hex(&Sha256::digest(std::fs::read(src.join(f)).unwrap()));
            assert_eq!(pieces_of(&m2, f), [want], "{f}");
        }
        assert_eq!(m2.source.as_deref(), Some("zfs:/pg"));
        assert!(m2.files.iter().all(|e| e.stamp.is_some()));
        // Another source, or an earlier image that is not earlier: every file read.
        let t3 = t2 + chrono::Duration::seconds(10);
        let three = upload(&repo, &req("i3", t3, "btrfs:/pg", first(&src)), &|_| Ok(()));
        assert_eq!(three.unwrap().files_unchanged, 0);
        let four = upload(&repo, &req("i4", t1, "btrfs:/pg", first(&src)), &|_| Ok(()));
        assert_eq!(four.unwrap().files_unchanged, 0);
        // --read-all takes nothing, but records its source and stamps for the next image.
        let t5 = t3 + chrono::Duration::seconds(10);
        let mut all = req("i5", t5, "zfs:/pg", first(&src));
        all.read_all = true;
        let five = upload(&repo, &all, &|_| Ok(())).unwrap();
        assert_eq!((five.files_unchanged, five.base), (0, None));
        assert_eq!(five.manifest.source.as_deref(), Some("zfs:/pg"));
        let t6 = t5 + chrono::Duration::seconds(10);
        let six = upload(&repo, &req("i6", t6, "zfs:/pg", first(&src)), &|_| Ok(())).unwrap();
        assert_eq!((six.files_unchanged, six.base.as_deref()), (3, Some("i5")));
    }
}
