//! Per-file work, apart from the commands that orchestrate it (as pgBackRest keeps
//! src/command/archive/push/file.c apart from push.c): storing one file with every check push
//! makes ([`store_file`]), and reading one back verified ([`restore`]) for get, verify and the
//! prefetch worker.

use crate::doc::{FileKind, StoredFile};
use crate::repo::{key_of, Identity, Repo};
use crate::store::{Created, Staged};
use crate::stored::{self, hex, Compression, Damage, Header, ObjectKind, HEADER_LEN};
use pgdr_core::{Context, Error, Result};
use pgdr_pgformat::history;
use pgdr_pgformat::page_header;
use pgdr_pgformat::wal_name::{Kind, WalName};
use std::fs::{self, File};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Reads up to `max` bytes from the start of `f`.
///
/// # Errors
/// The reader's.
pub fn read_prefix(f: &mut dyn Read, max: usize) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; max];
    let mut got = 0;
    while got < max {
        match f.read(&mut buf[got..]) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf)
}

/// The cluster a segment file belongs to, from its long page header.
pub fn segment_identity(path: &Path) -> Option<Identity> {
    let mut f = File::open(path).ok()?;
    let b = read_prefix(&mut f, page_header::LONG_HEADER_LEN).ok()?;
    let h = page_header::parse(&b).ok()?;
    Some(Identity {
        system_identifier: h.system_identifier,
        wal_segment_size: h.seg_size as u64,
    })
}

/// The directory a `%p` path is in (`pg_wal`), `.` for a bare name.
pub fn dir_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// For a `.history` or `.backup` file: the cluster of the newest segment beside it.
pub fn identity_from_pg_wal(path: &Path) -> Option<Identity> {
    let dir = dir_of(path);
    let mut names: Vec<String> = fs::read_dir(&dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| WalName::parse(n).is_some_and(|w| w.kind == Kind::Segment))
        .collect();
    names.sort();
    names
        .iter()
        .rev()
        .find_map(|n| segment_identity(&dir.join(n)))
}

/// `.history` and `.backup` files are small text files PostgreSQL writes; anything else under
/// such a name is a mistake worth refusing.
///
/// # Errors
/// Why the file is not one.
pub fn check_text_file(name: &WalName, first: &[u8], len: u64) -> std::result::Result<(), String> {
    if len > 1 << 20 {
        return Err(format!(
            "{len} bytes, too large for a {} file",
            name.kind.as_str()
        ));
    }
    let text = std::str::from_utf8(first).map_err(|_| "not a text file".to_string())?;
    match name.kind {
        Kind::History => history::parse(text)
            .map(|_| ())
            .map_err(|e| format!("malformed history file: {e}")),
        _ if text.contains("START WAL LOCATION:") => Ok(()),
        _ => Err("not a backup history file (no START WAL LOCATION line)".into()),
    }
}

fn write_error(path: &Path, e: io::Error) -> Error {
    let full = matches!(
        e.kind(),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded
    );
    let err = Err::<(), _>(e)
        .context(|| format!("cannot write {}", path.display()))
        .unwrap_err();
    if full {
        err.hint("the repository is full; nothing was published")
    } else {
        err
    }
}

fn report(name: &WalName, h: &Header, stored_bytes: u64, already_archived: bool) -> StoredFile {
    StoredFile {
        name: name.to_string(),
        kind: FileKind::from(name.kind),
        timeline: name.timeline,
        already_archived,
        bytes: h.size,
        stored_bytes,
        compression: h.compression,
        sha256: hex(&h.sha256),
    }
}

/// A file's body already compressed into a staged object in `$TMPDIR`
/// ([`crate::store::stage_in_temp`]), with a zeroed header in front: push on an object store
/// makes it while the repository's settings are still on their way ([`Prestage`]), and
/// [`store_file`] uses it when the settings ask for the compression it guessed.
#[derive(Debug)]
pub struct StagedBody {
    staged: Staged,
    first: Vec<u8>,
    /// The source's size when it was opened (only a regular file is staged).
    len: u64,
    body: stored::Body,
    compression: Compression,
    level: i32,
}

/// Compresses `path` into a [`StagedBody`] on another thread, before the repository is open.
/// Dropping it stops the work (the unnamed temporary file goes with it).
pub struct Prestage {
    work: Option<std::thread::JoinHandle<Option<StagedBody>>>,
    stop: Arc<AtomicBool>,
}

impl Prestage {
    /// Starts compressing `path` (for `key`) with `compression` at `level`, `workers` zstd
    /// threads. Only a regular file is read: a FIFO under a WAL name must not block it.
    pub fn start(
        key: &str,
        path: &Path,
        compression: Compression,
        level: i32,
        workers: u32,
    ) -> Prestage {
        let stop = Arc::new(AtomicBool::new(false));
        let (key, path, halt) = (key.to_string(), path.to_path_buf(), stop.clone());
        let work = std::thread::Builder::new()
            .name("prestage".into())
            .spawn(move || {
                let src = Source::open(&path).ok()?;
                let staged = crate::store::stage_in_temp(&key).ok()?;
                let halt = Some(halt);
                src.stage(staged, compression, level, workers, &path, halt)
                    .ok()
            })
            .ok();
        Prestage { work, stop }
    }

    /// The staged body, or None when it could not be made (the caller's own attempt then
    /// reports why).
    pub fn finish(mut self) -> Option<StagedBody> {
        self.work.take()?.join().ok()?
    }
}

impl Drop for Prestage {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// A reader that fails once `halt` is set: a dropped [`Prestage`] stops reading and compressing.
struct Halting<'a> {
    inner: &'a mut File,
    halt: Option<Arc<AtomicBool>>,
}

impl Read for Halting<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self
            .halt
            .as_ref()
            .is_some_and(|h| h.load(Ordering::Relaxed))
        {
            return Err(io::Error::other("no longer needed"));
        }
        self.inner.read(buf)
    }
}

/// A file push archives: a regular file, opened, its first bytes read (a segment's page
/// header, a text file's start).
struct Source {
    file: File,
    len: u64,
    first: Vec<u8>,
}

impl Source {
    /// Opens `path`, refusing anything but a regular file before opening it (opening a FIFO
    /// would wait for a writer).
    ///
    /// # Errors
    /// Not a regular file, or unreadable.
    fn open(path: &Path) -> Result<Source> {
        let cannot_read = || format!("cannot read {}", path.display());
        let not_regular =
            || Error::failed(format!("refusing {}", path.display())).because("not a regular file");
        if !fs::metadata(path).context(cannot_read)?.is_file() {
            return Err(not_regular());
        }
        let mut file = File::open(path).context(cannot_read)?;
        let meta = file.metadata().context(cannot_read)?;
        if !meta.is_file() {
            return Err(not_regular());
        }
        let first = read_prefix(&mut file, stored::FIRST_BYTES).context(cannot_read)?;
        Ok(Source {
            file,
            len: meta.len(),
            first,
        })
    }

    /// Writes a zeroed header, then the whole file (the one at `path`) compressed, into
    /// `staged`; stops when `halt` is set.
    ///
    /// # Errors
    /// Reading the file or writing the staged file failed.
    fn stage(
        mut self,
        mut staged: Staged,
        compression: Compression,
        level: i32,
        workers: u32,
        path: &Path,
        halt: Option<Arc<AtomicBool>>,
    ) -> Result<StagedBody> {
        let temp = staged.path().to_path_buf();
        let f = staged.file();
        f.write_all(&[0u8; HEADER_LEN])
            .map_err(|e| write_error(&temp, e))?;
        let mut src = Halting {
            inner: &mut self.file,
            halt,
        };
        let body = stored::write_body(&self.first, &mut src, f, compression, level, workers)
            .map_err(|e| match e {
                Ok(read) => Err::<(), _>(read)
                    .context(|| format!("cannot read {}", path.display()))
                    .unwrap_err(),
                Err(write) => write_error(&temp, write),
            })?;
        Ok(StagedBody {
            staged,
            first: self.first,
            len: self.len,
            body,
            compression,
            level,
        })
    }
}

/// Refuses a file push must not archive under `name`: a segment whose page header disagrees
/// with its name or the repository's cluster, or that is not a whole segment; a text file that
/// is not a history or backup history file.
fn check_source(
    name: &WalName,
    id: Identity,
    first: &[u8],
    len: u64,
    path: &Path,
) -> std::result::Result<(), Error> {
    let refuse = |why: String| Error::failed(format!("refusing {}", path.display())).because(why);
    if name.kind.is_wal() {
        let h = page_header::parse(first).map_err(refuse)?;
        page_header::check_against_name(&h, name).map_err(refuse)?;
        if h.system_identifier != id.system_identifier {
            return Err(refuse(format!(
                "it belongs to database system {}, the repository to {}",
                h.system_identifier, id.system_identifier
            ))
            .hint("a foreign cluster's WAL is never mixed in; give that cluster its own --repo"));
        }
        if h.seg_size as u64 != id.wal_segment_size {
            return Err(refuse(format!(
                "segment size {} differs from the repository's {}",
                h.seg_size, id.wal_segment_size
            )));
        }
        if len != id.wal_segment_size {
            return Err(refuse(format!(
                "{len} bytes, a segment has {}",
                id.wal_segment_size
            )));
        }
        Ok(())
    } else {
        check_text_file(name, first, len).map_err(refuse)
    }
}

/// Archives the file at `path` under `name`: checks it (a segment's page header against its
/// name and the repository's cluster; a text file's shape), streams it compressed into a
/// staged object with its header, and publishes it with create-if-absent. A name already
/// taken is compared: identical content is success once the archived copy reads back intact
/// and is durable; anything else a refusal naming both checksums.
///
/// `workers` zstd threads compress beside the calling one (0: it compresses alone); see
/// [`compression_workers`]. `pre`, a body compressed before the repository was open, is used
/// when it has this compression and level and the store stages in `$TMPDIR` as it did; it is
/// checked exactly as a body made here.
///
/// # Errors
/// The refusals above, I/O errors reading the file or writing the repository (nothing is
/// published then).
#[allow(clippy::too_many_arguments)]
pub fn store_file(
    repo: &Repo,
    id: Identity,
    name: &WalName,
    path: &Path,
    compression: Compression,
    level: i32,
    workers: u32,
    pre: Option<StagedBody>,
) -> Result<StoredFile> {
    let store = repo.store();
    let key = key_of(name);
    let pre = pre
        .filter(|p| p.compression == compression && p.level == level && store.stages_in_temp(&key));
    let made = match pre {
        Some(p) => {
            check_source(name, id, &p.first, p.len, path)?;
            p
        }
        None => {
            let src = Source::open(path)?;
            check_source(name, id, &src.first, src.len, path)?;
            // Locally a look is free and saves compressing a file already archived; on an
            // object store it is a round trip, and the conditional create answers the same
            // question.
            if store.kind() == "local" && store.head(&key)?.is_some() {
                return compare_existing(repo, name, path);
            }
            let staged = store.stage(&key)?;
            src.stage(staged, compression, level, workers, path, None)?
        }
    };
    let StagedBody {
        mut staged,
        body,
        len,
        ..
    } = made;
    let header = Header {
        compression,
        kind: ObjectKind::Wal(name.kind),
        size: body.size,
        system_identifier: id.system_identifier,
        sha256: body.sha256,
    };
    let temp = staged.path().to_path_buf();
    let f = staged.file();
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.write_all(&header.encode()))
        .map_err(|e| write_error(&temp, e))?;
    let stored_bytes = f.metadata().map_err(|e| write_error(&temp, e))?.len();
    if header.size != len {
        return Err(
            Error::failed(format!("cannot push {}", path.display())).because(format!(
                "the file changed while it was read ({len} bytes, then {})",
                header.size
            )),
        );
    }
    match store.create_if_absent(staged)? {
        Created::New => Ok(report(name, &header, stored_bytes, false)),
        // Another push published the name first: the rule for duplicates decides.
        Created::Exists => compare_existing(repo, name, path),
    }
}

/// zstd threads for one file pushed on its own: one per core, at most 4 (a 16 MiB segment
/// is a handful of jobs of 2 MiB at level 1); none for a small file or a single core.
pub fn compression_workers(size: u64) -> u32 {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    if size < 4 << 20 || cores < 2 {
        0
    } else {
        cores.min(4) as u32
    }
}

/// The name is taken: identical content is success once the archived copy reads back intact
/// and is on disk; anything else is a refusal naming both checksums.
fn compare_existing(repo: &Repo, name: &WalName, path: &Path) -> Result<StoredFile> {
    let store = repo.store();
    let key = key_of(name);
    if !repo.content_readable() {
        // Say why archiving is stuck: the name is taken, and only the identity can tell
        // whether it holds this file.
        return Err(Error::failed(format!(
            "{name} is already archived, and {} cannot be compared with it",
            path.display()
        ))
        .because("the repository is encrypted and no identity was given")
        .hint(format!(
            "give this push --identity FILE (or set {}) so a repeated push can be compared",
            crate::crypt::IDENTITY_ENV
        )));
    }
    let damaged = |why: String| {
        Error::failed(format!(
            "{name} is already archived but the archived copy is damaged"
        ))
        .because(why)
        .hint(format!(
            "run 'wal-archive verify'; move {} aside and push again",
            store.locate(&key)
        ))
    };
    let mut archived = store
        .read(&key)?
        .ok_or_else(|| damaged("it vanished while it was compared".into()))?;
    let h = stored::read_header(&mut archived.reader).map_err(|Damage(w)| damaged(w))?;
    let cannot_read = || format!("cannot read {}", path.display());
    let mut src = File::open(path).context(cannot_read)?;
    let (sha, size) = stored::sha256_of(&mut src).context(cannot_read)?;
    if sha != h.sha256 || size != h.size {
        return Err(Error::failed(format!(
            "{name} is already archived with different content"
        ))
        .because(format!(
            "archived sha256 {} ({} bytes), {} has sha256 {} ({size} bytes); nothing was overwritten",
            hex(&h.sha256),
            h.size,
            path.display(),
            hex(&sha)
        ))
        .hint("two clusters or a clone archive into one repository? give each its own --repo"));
    }
    // Same content: make sure the archived copy reads back and is on disk before saying so.
    match restore(repo, name, &mut io::sink()) {
        Ok(_) => {}
        Err(RestoreError::Damaged(w)) => return Err(damaged(w)),
        Err(RestoreError::Missing) => return Err(damaged("it vanished while it was read".into())),
        Err(RestoreError::Store(e)) => return Err(e),
        Err(RestoreError::Write(e)) => return Err(damaged(e.to_string())),
    }
    store.make_durable(&key)?;
    Ok(report(name, &h, archived.info.size, true))
}

/// Why an archived file could not be restored.
#[derive(Debug)]
pub enum RestoreError {
    /// It is not archived.
    Missing,
    /// The repository cannot be read (permissions, I/O).
    Store(Error),
    /// It is archived but not intact (or not what its name says).
    Damaged(String),
    /// Writing the output failed.
    Write(io::Error),
}

/// Checks a restored segment's page header against its name and the repository's cluster.
///
/// # Errors
/// Why the content is not what the name says.
pub fn check_restored(
    id: Option<Identity>,
    name: &WalName,
    first: &[u8],
) -> std::result::Result<(), String> {
    if !name.kind.is_wal() {
        return Ok(());
    }
    let h = page_header::parse(first)?;
    page_header::check_against_name(&h, name)?;
    match id {
        Some(id) if h.system_identifier != id.system_identifier => Err(format!(
            "it belongs to database system {}, the repository to {}",
            h.system_identifier, id.system_identifier
        )),
        Some(_) => Ok(()),
        None => Err("the repository is not bound to a database system".into()),
    }
}

/// Reads the archived `name` back into `out`, verified: header, size, SHA-256, the header's
/// cluster and kind, and for segments the page header against the name.
///
/// # Errors
/// [`RestoreError`]: missing, unreadable repository, damaged, or `out` failing. `out` may
/// have received bytes before a failure: callers write to a temporary file.
pub fn restore(
    repo: &Repo,
    name: &WalName,
    out: &mut dyn Write,
) -> std::result::Result<Header, RestoreError> {
    restore_sized(repo, name, out, &mut |_| {})
}

/// As [`restore`], telling `size` the file's size before any byte is written (a file
/// reserves its blocks with it).
///
/// # Errors
/// As [`restore`].
pub fn restore_sized(
    repo: &Repo,
    name: &WalName,
    out: &mut dyn Write,
    size: &mut dyn FnMut(u64),
) -> std::result::Result<Header, RestoreError> {
    let mut o = match repo.store().read(&key_of(name)) {
        Ok(Some(o)) => o,
        Ok(None) => return Err(RestoreError::Missing),
        Err(e) => return Err(RestoreError::Store(e)),
    };
    let mut first = Vec::new();
    let h =
        stored::read_verified_sized(&mut o.reader, out, &mut first, size).map_err(|e| match e {
            Ok(w) => RestoreError::Write(w),
            Err(Damage(why)) => RestoreError::Damaged(why),
        })?;
    let id = repo.identity();
    if let Some(id) = id.filter(|id| id.system_identifier != h.system_identifier) {
        return Err(RestoreError::Damaged(format!(
            "stored for database system {}, the repository is {}",
            h.system_identifier, id.system_identifier
        )));
    }
    if h.kind != ObjectKind::Wal(name.kind) {
        return Err(RestoreError::Damaged(format!(
            "stored as a {} file",
            h.kind.as_str()
        )));
    }
    check_restored(id, name, &first).map_err(RestoreError::Damaged)?;
    Ok(h)
}

/// Reads the header of an archived file (list, the spool check).
///
/// # Errors
/// Missing, unreadable or damaged, as one line.
pub fn read_header(repo: &Repo, key: &str) -> std::result::Result<Header, String> {
    match repo.store().read(key) {
        Ok(Some(mut o)) => stored::read_header(&mut o.reader).map_err(|Damage(w)| w),
        Ok(None) => Err("it vanished".into()),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_files_are_checked() {
        let h = WalName::parse("00000002.history").unwrap();
        assert!(check_text_file(&h, b"1\t0/3000000\tno recovery target specified\n", 40).is_ok());
        assert!(check_text_file(&h, b"garbage", 7).is_err());
        let b = WalName::parse("000000010000000000000002.00000028.backup").unwrap();
        assert!(check_text_file(
            &b,
            b"START WAL LOCATION: 0/2000028 (file 000000010000000000000002)\n",
            60
        )
        .is_ok());
        assert!(check_text_file(&b, b"\xff\xfe", 2).is_err());
    }
}
