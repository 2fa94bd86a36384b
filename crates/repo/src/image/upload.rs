//! Storing a tree of files as an image: every file cut into pieces, each piece hashed and
//! sent only when the repository does not hold an object of that SHA-256 yet, by `parallel`
//! workers at once (the pieces of one large file go to several workers); the manifest is
//! published last, so an interrupted upload leaves pieces (which the next run reuses, or the
//! next prune removes) but never an image that looks complete.
//!
//! Memory is bounded by the workers: each holds one piece ([`PIECE`] bytes) at a time; the
//! set of pieces the repository holds is kept as 32-byte digests.

use super::manifest::{self, Entry, EntryKind, Manifest};
use super::{data_key, digest_of, valid_name, DATA_PREFIX, LOCK, PIECE};
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
        &format!("the images of repository {}", repo.location()),
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
    let units: Vec<(usize, u64)> = req
        .entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.kind == EntryKind::File)
        .flat_map(|(i, e)| (0..e.size.div_ceil(PIECE)).map(move |p| (i, p)))
        .collect();
    let pieces: Vec<Mutex<Vec<[u8; 32]>>> = req
        .entries
        .iter()
        .map(|e| Mutex::new(vec![[0u8; 32]; e.size.div_ceil(PIECE) as usize]))
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
    })
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
