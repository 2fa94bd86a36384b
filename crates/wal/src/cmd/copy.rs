//! `wal-archive copy --repo SRC --to DST`: every object SRC holds that DST lacks (WAL, history
//! files, and any other kind: `images/`, `dumps/`…), one object at a time on N threads. Each
//! object is read decrypted from SRC and checked as read (a stored file's header, size and
//! SHA-256; for WAL, its cluster and kind; an age file's authentication), staged for DST
//! (encrypted for DST's recipients by DST's store), published with create-if-absent, then read
//! back from DST and compared with what was read from SRC. Nothing is ever overwritten: a name
//! DST holds with other content is reported and left alone. A copy killed at any point leaves
//! only whole objects and leftovers a later run or prune removes, so running it again resumes.
//!
//! DST keeps its own retention: `prune --repo DST` records its bound as `pruned/wal/NAME`, and
//! any object removed by retention may leave a tombstone `pruned/KEY`; copy never brings back
//! what DST pruned.

use crate::doc::{CopyReport, Problem};
use pgdr_core::{Context, Error, Result};
use pgdr_pgformat::wal_name::{Kind, WalName};
use pgdr_repo::repo::{self, OpenOptions, Repo, PRUNED_PREFIX};
use pgdr_repo::store::Created;
use pgdr_repo::stored::{self, hex, Damage, MAGIC};
use sha2::{Digest, Sha256};
use std::collections::{BTreeSet, HashSet};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// What to copy where.
#[derive(Debug, Clone, Default)]
pub struct CopyOptions {
    /// The repository copied to.
    pub to: PathBuf,
    /// The identity that decrypts DST when it is encrypted for other recipients than SRC
    /// (default: the same identity as SRC's; an age identity file may hold several).
    pub to_identity: Option<PathBuf>,
    /// Objects copied at once (default 4).
    pub parallel: usize,
    /// Count what would be copied; copy nothing.
    pub dry_run: bool,
}

/// Objects that belong to one repository only: settings, locks, push's acknowledgements,
/// retention markers.
fn copyable(key: &str) -> bool {
    !pgdr_repo::crypt::is_plaintext(key)
        && !key.ends_with(".lock")
        && !key.starts_with("acks/")
        && !key.starts_with(PRUNED_PREFIX)
}

/// A reader that writes what it reads to `out` and hashes it.
struct Tee<'a> {
    r: &'a mut dyn Read,
    out: &'a mut dyn Write,
    hash: Sha256,
    n: u64,
}

impl Read for Tee<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.r.read(buf)?;
        self.out.write_all(&buf[..n])?;
        self.hash.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }
}

/// SHA-256 and length of everything `r` yields.
fn digest(r: &mut dyn Read) -> io::Result<([u8; 32], u64)> {
    stored::sha256_of(r)
}

/// What one object came to.
enum Outcome {
    Copied { bytes: u64, stored: u64 },
    Present,
}

/// Copies SRC's objects that DST lacks.
///
/// # Errors
/// SRC or DST is not a usable repository, cannot be decrypted, or belongs to another
/// cluster (nothing is copied then). Failures of single objects are in the report.
pub fn copy(location: &Path, o: &CopyOptions) -> Result<CopyReport> {
    let parallel = if o.parallel == 0 { 4 } else { o.parallel };
    let src = Repo::open_with(
        location,
        &OpenOptions {
            identity: None,
            parallel,
            ..OpenOptions::default()
        },
    )?;
    let mut dst = Repo::open_with(
        &o.to,
        &OpenOptions {
            identity: o.to_identity.clone(),
            parallel,
            ..OpenOptions::default()
        },
    )
    .map_err(|e| {
        if o.to_identity.is_none() && e.to_string().contains("recipients") {
            e.hint("DST has other recipients: pass --to-identity FILE with DST's identity")
        } else {
            e
        }
    })?;
    for (r, what) in [(&src, "--repo"), (&dst, "--to")] {
        if !r.content_readable() && !o.dry_run {
            return Err(Error::failed(format!("cannot copy {} to {}", src.location(), dst.location()))
                .because(format!("{what} {} is encrypted and no identity given decrypts it; copy checks every object as read and as stored", r.location()))
                .hint("pass --identity FILE (and --to-identity FILE when DST has other recipients), or set PGDR_IDENTITY"));
        }
    }
    match (src.identity(), dst.identity()) {
        (Some(a), Some(b)) if a != b => {
            return Err(
                Error::failed(format!("refusing to copy into {}", dst.location()))
                    .because(format!(
            "it holds database system {} ({} byte segments), {} holds {} ({} byte segments)",
            b.system_identifier,
            b.wal_segment_size,
            src.location(),
            a.system_identifier,
            a.wal_segment_size
        ))
                    .hint("copy into a repository initialised for the same cluster"),
            )
        }
        (Some(a), None) if !o.dry_run => {
            dst.bind(a, &format!("copy from {}", src.location()))?;
        }
        _ => {}
    }
    let listing = src.store().list("")?;
    let objects: Vec<_> = listing
        .objects
        .into_iter()
        .filter(|i| copyable(&i.key))
        .collect();
    let have: HashSet<String> = dst
        .store()
        .list("")?
        .objects
        .into_iter()
        .map(|i| i.key)
        .collect();
    let (wal_bound, tombstones) = pruned(&dst)?;
    let size = src.identity().map(|i| i.wal_segment_size);
    let mut report = CopyReport {
        repo: src.location(),
        to: dst.location(),
        dry_run: o.dry_run,
        objects: objects.len() as u64,
        copied: 0,
        bytes: 0,
        stored_bytes: 0,
        present: 0,
        skipped_pruned: 0,
        failed: Vec::new(),
    };
    let mut todo = Vec::new();
    for info in objects {
        if have.contains(&info.key) {
            report.present += 1;
            continue;
        }
        let below_bound = match (repo::name_of(&info.key), wal_bound, size) {
            (Some(w), Some(b), Some(size)) => w.kind != Kind::History && w.segno(size) < b,
            _ => false,
        };
        if below_bound || tombstones.contains(&info.key) {
            report.skipped_pruned += 1;
            continue;
        }
        todo.push(info);
    }
    // History files first: a restore in the other region needs them before the segments.
    todo.sort_by_key(|i| (!i.key.ends_with(".history"), i.key.clone()));
    if o.dry_run {
        report.copied = todo.len() as u64;
        report.stored_bytes = todo.iter().map(|i| i.size).sum();
        return Ok(report);
    }
    let queue = Mutex::new(todo.into_iter());
    let results = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..parallel {
            s.spawn(|| loop {
                let Some(info) = queue.lock().unwrap_or_else(|p| p.into_inner()).next() else {
                    break;
                };
                let r = copy_object(&src, &dst, &info.key);
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((info.key, r));
            });
        }
    });
    for (key, r) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        match r {
            Ok(Outcome::Copied { bytes, stored }) => {
                report.copied += 1;
                report.bytes += bytes;
                report.stored_bytes += stored;
            }
            Ok(Outcome::Present) => report.present += 1,
            Err(e) => report.failed.push(Problem {
                timeline: repo::name_of(&key).map(|w| w.timeline),
                name: Some(key),
                problem: e.to_string(),
            }),
        }
    }
    report.failed.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(report)
}

/// DST's retention: the highest WAL bound its prunes recorded (a segment number), and the
/// keys removed one by one (tombstones).
fn pruned(dst: &Repo) -> Result<(Option<u64>, BTreeSet<String>)> {
    let size = dst.identity().map(|i| i.wal_segment_size);
    let mut bound = None;
    let mut tombstones = BTreeSet::new();
    for i in dst.store().list(PRUNED_PREFIX)?.objects {
        let rest = &i.key[PRUNED_PREFIX.len()..];
        let wal_bound = rest
            .strip_prefix("wal/")
            .and_then(WalName::parse)
            .zip(size)
            .map(|(w, size)| w.segno(size));
        match wal_bound {
            Some(b) => bound = bound.max(Some(b)),
            None => {
                tombstones.insert(rest.to_string());
            }
        }
    }
    Ok((bound, tombstones))
}

/// Copies one object: read and check from SRC while staging it for DST, publish, read back.
fn copy_object(src: &Repo, dst: &Repo, key: &str) -> Result<Outcome> {
    let from = src.store().locate(key);
    let Some(mut o) = src.store().read(key)? else {
        return Err(Error::failed(format!(
            "{from} vanished while it was copied"
        )));
    };
    let mut staged = dst.store().stage(key)?;
    let staged_path = staged.path().to_path_buf();
    let (sha, bytes) = {
        let mut tee = Tee {
            r: &mut o.reader,
            out: staged.file(),
            hash: Sha256::new(),
            n: 0,
        };
        check_as_read(src, key, &mut tee).map_err(|why| {
            Error::failed(format!("{from} cannot be read back intact"))
                .because(why)
                .hint("run 'wal-archive verify' on SRC; nothing was copied")
        })?;
        let sha: [u8; 32] = tee.hash.clone().finalize().into();
        (sha, tee.n)
    };
    staged
        .file()
        .flush()
        .context(|| format!("cannot write {}", staged_path.display()))?;
    let created = dst.store().create_if_absent(staged)?;
    let to = dst.store().locate(key);
    let back = dst
        .store()
        .read(key)?
        .ok_or_else(|| Error::failed(format!("{to} vanished after it was stored")))?;
    let stored = back.info.size;
    let mut reader = back.reader;
    let (got, n) = digest(&mut reader).context(|| format!("cannot read back {to}"))?;
    if got != sha || n != bytes {
        return Err(match created {
            Created::Exists => Error::failed(format!("{to} exists with other content"))
                .because(format!(
                    "sha256 {} ({n} bytes) in DST, {} ({bytes} bytes) in SRC; nothing was overwritten",
                    hex(&got),
                    hex(&sha)
                ))
                .hint("two clusters or a restored copy wrote into one of them? check both with 'wal-archive verify'"),
            Created::New => Error::failed(format!("{to} does not read back as stored"))
                .because(format!(
                    "sha256 {} ({n} bytes) read back, {} ({bytes} bytes) sent",
                    hex(&got),
                    hex(&sha)
                ))
                .hint(format!("remove {to} and run copy again")),
        });
    }
    Ok(match created {
        Created::New => Outcome::Copied { bytes, stored },
        Created::Exists => Outcome::Present,
    })
}

/// Reads a whole object through `tee`, checking what can be checked: a stored file (FORMAT.md,
/// magic `PGDRWAL\0`) is decompressed and its size and SHA-256 checked, and for a WAL name its
/// cluster and kind; any other object only as its store authenticates it (an encrypted one).
fn check_as_read(src: &Repo, key: &str, tee: &mut Tee) -> std::result::Result<(), String> {
    let mut head = [0u8; 8];
    let mut got = 0;
    while got < head.len() {
        match tee.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(pgdr_core::error::clean_io_message(&e.to_string())),
        }
    }
    let is_stored_file = got == head.len() && &head == MAGIC;
    let name = repo::name_of(key);
    if !is_stored_file {
        if name.is_some() {
            return Err("not a wal-archive stored file (bad magic)".into());
        }
        return io::copy(tee, &mut io::sink())
            .map(|_| ())
            .map_err(|e| pgdr_core::error::clean_io_message(&e.to_string()));
    }
    let mut chained = io::Cursor::new(head).chain(&mut *tee);
    let h =
        stored::read_verified(&mut chained, &mut io::sink(), &mut Vec::new()).map_err(
            |e| match e {
                Ok(io) => io.to_string(),
                Err(Damage(why)) => why,
            },
        )?;
    // Whatever a decompressor left unread is copied too, so DST holds exactly SRC's object.
    io::copy(tee, &mut io::sink())
        .map_err(|e| pgdr_core::error::clean_io_message(&e.to_string()))?;
    if let Some(w) = name {
        if let Some(id) = src.identity() {
            if h.system_identifier != id.system_identifier {
                return Err(format!(
                    "stored for database system {}, the repository is {}",
                    h.system_identifier, id.system_identifier
                ));
            }
        }
        if h.kind != stored::ObjectKind::Wal(w.kind) {
            return Err(format!("stored as a {} file", h.kind.as_str()));
        }
    }
    Ok(())
}
