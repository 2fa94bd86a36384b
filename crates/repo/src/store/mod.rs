//! Where a repository's bytes live, behind one interface of object operations: create an
//! object if absent, read one, look at one, list a prefix, delete, read the settings. The
//! repository ([`crate::repo`]) and the commands know objects by key only
//! (`wal/00000001/000000010000000000000003`), never paths, so a local directory
//! ([`local::LocalStore`], today's layout, FORMAT.md) and an object store (S3 through the
//! `object_store` crate, issue 14) are the same repository to them.
//!
//! The one write primitive is [`Store::create_if_absent`]: a name, once published, is never
//! replaced (locally a link of an unnamed file, or `renameat2(RENAME_NOREPLACE)` of a named
//! one; on S3 a conditional `If-None-Match: *` put). An object is written in two steps: [`Store::stage`] gives a local temporary file the
//! caller writes (and may seek in, to put a header in front of a streamed body), then
//! `create_if_absent` makes it durable and publishes it, or reports the name taken.

pub mod local;
pub mod s3;

use pgdr_core::fsx::Pending;
use pgdr_core::lock::LockGuard;
use pgdr_core::{Error, Result};
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// An object's name in a repository: a relative path with `/` separators, e.g.
/// `pgdr-wal-archive.json` or `wal/00000002/00000002.history`.
pub type Key = str;

/// What a listing or a look at one object says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectInfo {
    pub key: String,
    /// Bytes as stored.
    pub size: u64,
    /// Last modification, seconds since the Unix epoch.
    pub modified: i64,
}

/// Every object under a prefix, by key, and the leftovers of writes that never finished
/// (locally the temporary files of killed writers; on S3 incomplete multipart uploads).
#[derive(Debug, Clone, Default)]
pub struct Listing {
    pub objects: Vec<ObjectInfo>,
    pub leftovers: Vec<ObjectInfo>,
}

/// An object opened for reading.
pub struct Object {
    pub info: ObjectInfo,
    pub reader: Box<dyn Read + Send>,
}

/// The outcome of [`Store::create_if_absent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Published, durable.
    New,
    /// An object of that name exists already; it was left as it was.
    Exists,
}

/// An object being written: a local temporary file that [`Store::create_if_absent`]
/// publishes under `key`. A local repository's is a [`Pending`] file beside its object
/// (unnamed where the filesystem allows; a named one is removed on drop and on SIGINT/SIGTERM
/// unless published); one only read back ([`stage_in_temp`]) has no name at all.
#[derive(Debug)]
pub struct Staged {
    key: String,
    /// What publishes the file beside its object; None for one only read back.
    pending: Option<Pending>,
    file: File,
    /// The file's path, or what stands for it in messages when it has none.
    shown: PathBuf,
}

impl Staged {
    /// The key it will be published under.
    pub fn key(&self) -> &str {
        &self.key
    }
    /// The file to write (and seek in).
    pub fn file(&mut self) -> &mut File {
        &mut self.file
    }
    /// The temporary file's path (or what stands for it), for messages.
    pub fn path(&self) -> &Path {
        &self.shown
    }
}

/// A repository's storage. Every method's error is one worded line (what, why, what to do).
pub trait Store: Send + Sync {
    /// The repository's location as the user gives it (`/zpdata02/wal`).
    fn location(&self) -> String;
    /// Where an object is, for messages (`/zpdata02/wal/wal/00000001/…`).
    fn locate(&self, key: &Key) -> String;
    /// Reads the settings object (`pgdr-wal-archive.json`): opening a repository. Here each
    /// kind of store checks that the location may be used (privacy, owner, credentials).
    ///
    /// # Errors
    /// A location that is not an initialised repository ([`not_initialised`]), one that
    /// cannot be read, or one that others could write to.
    fn read_settings(&self) -> Result<Vec<u8>>;
    /// A new object to be published under `key`.
    ///
    /// # Errors
    /// The temporary file cannot be made.
    fn stage(&self, key: &Key) -> Result<Staged>;
    /// Whether [`Store::stage`] of `key` is [`stage_in_temp`]'s: then a file staged that way
    /// before the store was opened (push compressing while the settings are read) is as good
    /// as one it stages itself.
    fn stages_in_temp(&self, _key: &Key) -> bool {
        false
    }
    /// Makes `staged` durable and publishes it under its key unless an object of that name
    /// exists (then the staged file is discarded).
    ///
    /// # Errors
    /// It cannot be made durable or published; nothing was replaced.
    fn create_if_absent(&self, staged: Staged) -> Result<Created>;
    /// Opens an object; `None` only when it certainly does not exist.
    ///
    /// # Errors
    /// Anything else that keeps it from being read (permissions, not a regular file, I/O).
    fn read(&self, key: &Key) -> Result<Option<Object>>;
    /// Starts reading `key` in the background where a read is a round trip to a server (S3),
    /// so that the first [`Store::read`] of it that follows does not wait for one: a caller
    /// overlaps it with the reads that must come first (the settings, which decide whether the
    /// location may be used at all). It decides nothing: what it read is only ever returned by
    /// that later `read`, and dropped unseen if none comes. A local store does nothing.
    fn read_ahead(&self, _key: &Key) {}
    /// Looks at an object without reading it; `None` when it does not exist.
    ///
    /// # Errors
    /// As [`Store::read`].
    fn head(&self, key: &Key) -> Result<Option<ObjectInfo>>;
    /// Makes sure an existing object is durable (a file written by a writer that was killed
    /// before its fsync: the "already archived" answer promises it is on disk).
    ///
    /// # Errors
    /// It cannot be synced.
    fn make_durable(&self, key: &Key) -> Result<()>;
    /// Every object whose key starts with `prefix` (a directory-like prefix ending in `/`).
    ///
    /// # Errors
    /// The prefix cannot be listed.
    fn list(&self, prefix: &Key) -> Result<Listing>;
    /// Deletes objects (and leftovers), durably; a key already gone is no error.
    ///
    /// # Errors
    /// One of them cannot be deleted (the ones before it are gone).
    fn delete(&self, keys: &[String]) -> Result<()>;
    /// Takes the repository's lock `name` (e.g. `prune.lock`) for `what`; held until the
    /// returned [`Lock`] is dropped.
    ///
    /// # Errors
    /// Exit 75 when another run holds it (after `wait`), exit 1 when it cannot be taken.
    fn lock(&self, name: &str, what: &str, wait: Option<Duration>) -> Result<Lock>;
    /// The kind of store: `"local"` or `"s3"`.
    fn kind(&self) -> &'static str;
}

/// A repository lock, released on drop: a locked file beside the objects, or on an object
/// store a lock object created with a conditional create (taken over when older than an hour).
#[must_use = "the lock is released when dropped"]
pub enum Lock {
    File(LockGuard),
    Object(s3::ObjectLock),
}

/// How a store is opened.
#[derive(Debug, Clone, Copy)]
pub struct StoreOptions {
    /// Concurrent transfers one object may use (the parts of a large object on S3).
    pub parallel: usize,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions { parallel: 4 }
    }
}

/// Whether `location` names an object store (`s3://…`) rather than a local directory.
pub fn is_remote(location: &Path) -> bool {
    location.to_str().is_some_and(|s| s.starts_with("s3://"))
}

fn s3_location(location: &Path) -> Option<Result<s3::S3Location>> {
    s3::S3Location::parse(location.to_str()?)
}

/// Opens the store at `location`: a local directory, or `s3://BUCKET[/PREFIX]`.
///
/// # Errors
/// A local location that does not exist or is not a directory (not an initialised
/// repository); a malformed `s3://` URL (exit 2); an S3 configuration that cannot be used.
pub fn open(location: &Path, o: StoreOptions) -> Result<Box<dyn Store>> {
    match s3_location(location) {
        Some(loc) => Ok(Box::new(s3::S3Store::open(loc?, o.parallel)?)),
        None => Ok(Box::new(local::LocalStore::open(location)?)),
    }
}

/// Makes `location` ready to become a repository (`init`): see
/// [`local::LocalStore::create`] and [`s3::S3Store::create`]. `owner` (as root) gets a newly
/// created local directory.
///
/// # Errors
/// A location that cannot be created or holds something other than a repository.
pub fn create(location: &Path, owner: Option<(u32, u32)>) -> Result<Box<dyn Store>> {
    match s3_location(location) {
        Some(loc) => Ok(Box::new(s3::S3Store::create(
            loc?,
            StoreOptions::default().parallel,
        )?)),
        None => Ok(Box::new(local::LocalStore::create(location, owner)?)),
    }
}

/// A staged object in a private temporary file of this host (`$TMPDIR`, 0600) that never
/// has a name (`O_TMPFILE`, else unlinked as soon as it is made), for stores whose objects are
/// not local files and for the plaintext of an encrypted object: a run killed by SIGKILL
/// leaves neither data nor plaintext behind in `$TMPDIR`.
///
/// # Errors
/// The temporary file cannot be made.
pub fn stage_in_temp(key: &Key) -> Result<Staged> {
    let name = key.rsplit('/').next().unwrap_or(key);
    let dir = std::env::temp_dir();
    let file = tempfile::tempfile_in(&dir).map_err(|e| {
        Error::failed(format!(
            "cannot create a temporary file in {}",
            std::env::temp_dir().display()
        ))
        .because(pgdr_core::error::clean_io_message(&e.to_string()))
        .hint("set TMPDIR to a writable directory")
    })?;
    Ok(Staged {
        key: key.to_string(),
        pending: None,
        file,
        shown: dir.join(format!("(an unnamed file for {name})")),
    })
}

/// The refusal of a location that is not an initialised repository (exit 1; `get` makes it
/// exit above 125).
pub fn not_initialised(location: &str, why: impl std::fmt::Display) -> Error {
    Error::failed(format!(
        "{location} is not an initialised wal-archive repository"
    ))
    .because(why)
    .hint(format!(
        "check --repo; a new repository is made with 'wal-archive init --repo {location}'"
    ))
}
