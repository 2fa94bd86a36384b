//! A repository (FORMAT.md): its settings, the database system it is bound to, and where each
//! archived file lives, on top of a [`Store`]. Opening refuses anything that is not an
//! initialised repository of a format this build reads; `init` creates one; the first push
//! into a repository initialised without a cluster binds it, race-free.

use crate::crypt::{self, EncryptedStore};
use crate::store::{self, Created, Store, StoreOptions};
use crate::stored::Compression;
use chrono::{DateTime, Utc};
use pgdr_core::{Context, Error, Result};
use pgdr_pgformat::wal_name::WalName;
use serde::{Deserialize, Serialize};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

/// The repository format this build writes for an unencrypted repository.
pub const REPO_VERSION: u32 = 1;
/// The format of an encrypted repository: version-1 readers must not open it as if it were
/// plain. This build reads both.
pub const REPO_VERSION_ENCRYPTED: u32 = 2;
/// The settings object; its presence marks a repository.
pub const SETTINGS_KEY: &str = "pgdr-wal-archive.json";
/// The binding to a database system when `init` did not know it (created by the first push).
pub const CLUSTER_KEY: &str = "cluster.json";
/// The format page, a copy of FORMAT.md.
pub const FORMAT_KEY: &str = "FORMAT.md";
/// The prune lock.
pub const PRUNE_LOCK: &str = "prune.lock";
/// Retention markers: `pruned/wal/NAME`, the bound of a prune (segments before NAME were
/// removed on purpose), and `pruned/KEY`, an object removed on purpose. `wal-archive copy`
/// never brings back what a repository's own retention removed.
pub const PRUNED_PREFIX: &str = "pruned/";
const FORMAT_NAME: &str = "pgdr-wal-archive";

/// `pgdr-wal-archive.json`. Written once, by `init` (or, before `init` existed, by the first
/// push), never replaced. A key this build does not know is refused: a later format may add
/// keys that change how objects are stored (encryption), which must never be ignored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Always "pgdr-wal-archive".
    pub format: String,
    /// [`REPO_VERSION`].
    pub version: u32,
    /// The database system, as a string (64-bit integers do not survive JSON doubles); absent
    /// when `init` was not told the cluster ([`CLUSTER_KEY`] then holds it once bound).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_identifier: Option<String>,
    /// The cluster's WAL segment size in bytes; present exactly when `system_identifier` is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_segment_size: Option<u64>,
    /// When the repository was created (older repositories have a local offset).
    pub created: DateTime<Utc>,
    /// What push uses without --compress (absent: zstd).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression: Option<Compression>,
    /// The zstd level push uses without --level (absent: 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compression_level: Option<i32>,
    /// Version 2: every object but the settings is an age file for these recipients
    /// (`age1…`, `ssh-ed25519 …`, `ssh-rsa …`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encrypt_to: Option<Vec<String>>,
}

/// `cluster.json`: the database system the first push bound the repository to. Created with
/// create-if-absent: of two first pushes at once, one creates it and the other reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ClusterFile {
    system_identifier: String,
    wal_segment_size: u64,
    bound: DateTime<Utc>,
    /// What bound it ("push of 000000010000000000000001").
    bound_by: String,
}

/// The database system a repository holds WAL of (pg_control's system identifier, the WAL
/// segment size; src/include/catalog/pg_control.h).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Identity {
    pub system_identifier: u64,
    pub wal_segment_size: u64,
}

/// What `init` is asked for.
#[derive(Debug, Clone, Default)]
pub struct InitRequest {
    pub compression: Option<Compression>,
    pub compression_level: Option<i32>,
    /// The cluster, when known (from --pgdata's pg_control or -d).
    pub identity: Option<Identity>,
    /// As root: who gets a newly created repository directory.
    pub owner: Option<(u32, u32)>,
    /// Encrypt every object to these recipients (checked with [`crypt::parse_recipient`]).
    pub encrypt_to: Vec<String>,
}

/// How a repository is opened.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// The identity file that decrypts an encrypted repository's objects (default:
    /// `$PGDR_IDENTITY`).
    pub identity: Option<PathBuf>,
    /// Concurrent transfers of one object (parts of a large object on S3); 0: the default.
    pub parallel: usize,
    /// Keys the caller reads right after opening (get: the file; push: its acknowledgement):
    /// on S3 their reads start together with the settings' ([`Store::read_ahead`]), so the
    /// open and the read cost one round trip instead of two. Nothing read is used before the
    /// settings proved the location a repository this build may use.
    pub read_ahead: Vec<String>,
}

impl OpenOptions {
    fn identity(&self) -> Option<PathBuf> {
        self.identity.clone().or_else(|| {
            std::env::var_os(crypt::IDENTITY_ENV)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
    }
    fn store(&self) -> StoreOptions {
        match self.parallel {
            0 => StoreOptions::default(),
            n => StoreOptions { parallel: n },
        }
    }
}

/// An opened repository.
pub struct Repo {
    /// The objects' store: an [`EncryptedStore`] around the location's when encrypted.
    store: Box<dyn Store>,
    settings: Settings,
    identity: Option<Identity>,
    /// False for an encrypted repository opened without an identity.
    readable: bool,
}

impl std::fmt::Debug for Repo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repo")
            .field("location", &self.store.location())
            .field("settings", &self.settings)
            .field("identity", &self.identity)
            .finish()
    }
}

fn cannot_open(loc: &str) -> impl Fn(String) -> Error + '_ {
    move |why| Error::failed(format!("cannot open repository {loc}")).because(why)
}

fn identity_from(sysid: &str, size: u64, whence: &str) -> std::result::Result<Identity, String> {
    let system_identifier = sysid
        .parse()
        .map_err(|_| format!("bad system_identifier {sysid:?} in {whence}"))?;
    if !pgdr_pgformat::wal_name::valid_seg_size(size) {
        return Err(format!("bad wal_segment_size {size} in {whence}"));
    }
    Ok(Identity {
        system_identifier,
        wal_segment_size: size,
    })
}

/// Parses and checks the settings object.
fn parse_settings(bytes: &[u8], loc: &str) -> Result<Settings> {
    let fail = cannot_open(loc);
    let s: Settings = serde_json::from_slice(bytes).map_err(|e| {
        fail(format!(
            "{SETTINGS_KEY} is malformed or from a newer wal-archive: {e}"
        ))
    })?;
    if s.format != FORMAT_NAME {
        return Err(fail(format!("{SETTINGS_KEY} names format {:?}", s.format)));
    }
    if s.version == REPO_VERSION && s.encrypt_to.is_some() {
        return Err(fail(format!(
            "{SETTINGS_KEY} of format version 1 names encrypt_to, which only version {REPO_VERSION_ENCRYPTED} has"
        )));
    }
    if s.version == REPO_VERSION_ENCRYPTED && s.encrypt_to.as_ref().is_none_or(|r| r.is_empty()) {
        return Err(fail(format!(
            "repository format version {REPO_VERSION_ENCRYPTED} without encryption recipients (encrypt_to)"
        )));
    }
    if s.version != REPO_VERSION && s.version != REPO_VERSION_ENCRYPTED {
        return Err(fail(format!(
            "repository format version {}, this wal-archive {} reads versions {REPO_VERSION} and {REPO_VERSION_ENCRYPTED}",
            s.version,
            pgdr_core::VERSION
        ))
        .hint("use the wal-archive release that wrote it"));
    }
    if s.system_identifier.is_some() != s.wal_segment_size.is_some() {
        return Err(fail(format!(
            "{SETTINGS_KEY} has one of system_identifier and wal_segment_size without the other"
        )));
    }
    Ok(s)
}

/// Writes a small object with create-if-absent; true when this call created it.
fn create_small(store: &dyn Store, key: &str, bytes: &[u8]) -> Result<bool> {
    let mut staged = store.stage(key)?;
    staged
        .file()
        .write_all(bytes)
        .context(|| format!("cannot write {}", store.locate(key)))?;
    Ok(store.create_if_absent(staged)? == Created::New)
}

fn read_small(store: &dyn Store, key: &str) -> Result<Option<Vec<u8>>> {
    let Some(mut o) = store.read(key)? else {
        return Ok(None);
    };
    let mut b = Vec::new();
    o.reader
        .read_to_end(&mut b)
        .context(|| format!("cannot read {}", store.locate(key)))?;
    Ok(Some(b))
}

impl Repo {
    /// Opens the repository at `location`.
    ///
    /// # Errors
    /// Not an initialised repository (with the hint `wal-archive init`), unreadable, writable
    /// by others, owned by another user, or of another format version.
    pub fn open(location: &Path) -> Result<Repo> {
        Self::open_with(location, &OpenOptions::default())
    }

    /// Opens the repository at `location` (a directory or `s3://BUCKET[/PREFIX]`) with an
    /// identity and a transfer bound.
    ///
    /// # Errors
    /// As [`Repo::open`]; an identity file that cannot be used (readable by group or others,
    /// no identity in it) when the repository is encrypted.
    pub fn open_with(location: &Path, o: &OpenOptions) -> Result<Repo> {
        Self::from_store(store::open(location, o.store())?, o)
    }

    fn from_store(store: Box<dyn Store>, o: &OpenOptions) -> Result<Repo> {
        let loc = store.location();
        for key in &o.read_ahead {
            store.read_ahead(key);
        }
        let settings = parse_settings(&store.read_settings()?, &loc)?;
        let (store, readable): (Box<dyn Store>, bool) = match &settings.encrypt_to {
            Some(r) => {
                let e = EncryptedStore::new(store, r, o.identity().as_deref())?;
                let readable = e.can_decrypt();
                (Box::new(e), readable)
            }
            None => (store, true),
        };
        let identity = match (&settings.system_identifier, settings.wal_segment_size) {
            (Some(id), Some(size)) => {
                Some(identity_from(id, size, SETTINGS_KEY).map_err(cannot_open(&loc))?)
            }
            _ => read_cluster(&*store)?,
        };
        Ok(Repo {
            store,
            settings,
            identity,
            readable,
        })
    }

    /// Creates a repository at `location`, or accepts the one there when its settings agree
    /// with `req` (init is idempotent). Returns the repository and whether it was created.
    ///
    /// # Errors
    /// A location that holds something else or cannot be created; an existing repository
    /// with other settings or another cluster.
    pub fn init(location: &Path, req: &InitRequest) -> Result<(Repo, bool)> {
        let store = store::create(location, req.owner)?;
        let loc = store.location();
        let encrypt_to = (!req.encrypt_to.is_empty()).then(|| req.encrypt_to.clone());
        let settings = Settings {
            format: FORMAT_NAME.into(),
            version: if encrypt_to.is_some() {
                REPO_VERSION_ENCRYPTED
            } else {
                REPO_VERSION
            },
            encrypt_to,
            system_identifier: req.identity.map(|i| i.system_identifier.to_string()),
            wal_segment_size: req.identity.map(|i| i.wal_segment_size),
            created: Utc::now(),
            compression: req.compression,
            compression_level: req.compression_level,
        };
        // The format page first: the settings object is what marks a repository.
        create_small(&*store, FORMAT_KEY, include_str!("../FORMAT.md").as_bytes())?;
        let mut text = serde_json::to_string_pretty(&settings).expect("serializable");
        text.push('\n');
        let created = create_small(&*store, SETTINGS_KEY, text.as_bytes())?;
        let repo = Self::from_store(store, &OpenOptions::default())?;
        if !created {
            repo.agrees_with(req).map_err(|why| {
                Error::failed(format!("{loc} is already a repository with other settings"))
                    .because(why)
                    .hint("use another --repo, or use this one as it is")
            })?;
        }
        Ok((repo, created))
    }

    fn agrees_with(&self, req: &InitRequest) -> std::result::Result<(), String> {
        let s = &self.settings;
        if let (Some(want), Some(have)) = (req.identity, self.identity) {
            if want != have {
                return Err(format!(
                    "it is bound to database system {} ({} byte segments), not {} ({} byte segments)",
                    have.system_identifier, have.wal_segment_size, want.system_identifier, want.wal_segment_size
                ));
            }
        }
        if req.compression.is_some() && req.compression != s.compression {
            return Err(format!(
                "its compression is {}",
                self.compression().as_str()
            ));
        }
        let mut have: Vec<&String> = s.encrypt_to.iter().flatten().collect();
        let mut want: Vec<&String> = req.encrypt_to.iter().collect();
        have.sort();
        want.sort();
        if have != want {
            return Err(match have.len() {
                0 => "it is not encrypted".to_string(),
                n => format!("it is encrypted to {n} other recipient(s)"),
            });
        }
        if req.compression_level.is_some() && req.compression_level != s.compression_level {
            return Err(format!(
                "its compression level is {}",
                s.compression_level
                    .map_or("the default".into(), |l| l.to_string())
            ));
        }
        Ok(())
    }

    /// Binds an unbound repository to `id` (the first push does), or checks a bound one.
    /// Race-free: the binding is created with create-if-absent, so of two first pushes at once
    /// one binds and the other reads what it bound.
    ///
    /// # Errors
    /// The repository is bound to another database system or segment size, or the binding
    /// cannot be written.
    pub fn bind(&mut self, id: Identity, by: &str) -> Result<Identity> {
        if self.identity.is_none() {
            let file = ClusterFile {
                system_identifier: id.system_identifier.to_string(),
                wal_segment_size: id.wal_segment_size,
                bound: Utc::now(),
                bound_by: by.to_string(),
            };
            let mut text = serde_json::to_string_pretty(&file).expect("serializable");
            text.push('\n');
            create_small(&*self.store, CLUSTER_KEY, text.as_bytes())?;
            self.identity = read_cluster(&*self.store)?;
        }
        let have = self.identity.ok_or_else(|| {
            Error::failed(format!("cannot bind repository {}", self.location()))
                .because(format!("{CLUSTER_KEY} vanished after it was written"))
        })?;
        Ok(have)
    }

    /// The database system, once bound.
    pub fn identity(&self) -> Option<Identity> {
        self.identity
    }

    /// The storage.
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The location, as given.
    pub fn location(&self) -> String {
        self.store.location()
    }

    /// The settings object.
    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether objects are encrypted (the recipients are in [`Settings::encrypt_to`]).
    pub fn encrypted(&self) -> bool {
        self.settings.encrypt_to.is_some()
    }

    /// Whether objects can be read: false for an encrypted repository opened without an
    /// identity (names, sizes and settings are all that can be seen then).
    pub fn content_readable(&self) -> bool {
        self.readable
    }

    /// What push uses without --compress.
    pub fn compression(&self) -> Compression {
        self.settings.compression.unwrap_or(Compression::Zstd)
    }
}

fn read_cluster(store: &dyn Store) -> Result<Option<Identity>> {
    let loc = store.location();
    let Some(b) = read_small(store, CLUSTER_KEY)? else {
        return Ok(None);
    };
    let c: ClusterFile = serde_json::from_slice(&b)
        .map_err(|e| cannot_open(&loc)(format!("{CLUSTER_KEY} is malformed: {e}")))?;
    identity_from(&c.system_identifier, c.wal_segment_size, CLUSTER_KEY)
        .map(Some)
        .map_err(cannot_open(&loc))
}

/// Where an archived file lives: `wal/TTTTTTTT/NAME`, in the directory of its timeline.
pub fn key_of(name: &WalName) -> String {
    format!("wal/{:08X}/{name}", name.timeline)
}

/// The archived file a key under `wal/` names, when it is one (in its timeline's directory).
pub fn name_of(key: &str) -> Option<WalName> {
    let rest = key.strip_prefix("wal/")?;
    let (dir, file) = rest.split_once('/')?;
    let w = WalName::parse(file)?;
    (dir == format!("{:08X}", w.timeline)).then_some(w)
}

/// Where `push --parallel` acknowledges a file it pushed ahead.
pub fn ack_key(name: &WalName) -> String {
    format!("acks/{name}")
}

/// A local repository at `dir/r` bound to cluster 7 with 16 MiB segments: the unit tests'
/// repository.
#[cfg(test)]
pub(crate) fn bound_for_test(dir: &Path) -> Repo {
    let req = InitRequest {
        identity: Some(Identity {
            system_identifier: 7,
            wal_segment_size: 16 << 20,
        }),
        ..Default::default()
    };
    Repo::init(&dir.join("r"), &req).unwrap().0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_of_every_generation_parse() {
        // As the first push wrote them before init existed (a local offset).
        let old = br#"{"format": "pgdr-wal-archive", "version": 1, "system_identifier": "7361234567890123456",
 "wal_segment_size": 16777216, "created": "2026-03-21T17:28:37+08:00"}"#;
        let s = parse_settings(old, "/r").unwrap();
        assert_eq!(s.created.to_rfc3339(), "2026-03-21T09:28:37+00:00");
        assert_eq!(s.compression, None);
        // Unbound, with settings.
        let new = br#"{"format":"pgdr-wal-archive","version":1,"created":"2026-03-21T09:28:37Z","compression":"lz4"}"#;
        let s = parse_settings(new, "/r").unwrap();
        assert_eq!(
            (s.system_identifier, s.compression),
            (None, Some(Compression::Lz4))
        );
        // A key a later format adds (how objects are stored) is never ignored.
        let later = br#"{"format":"pgdr-wal-archive","version":1,"created":"2026-03-21T09:28:37Z","encrypt_to":["age1x"]}"#;
        assert!(parse_settings(later, "/r")
            .unwrap_err()
            .to_string()
            .contains("encrypt_to"));
        let half = br#"{"format":"pgdr-wal-archive","version":1,"created":"2026-03-21T09:28:37Z","wal_segment_size":16777216}"#;
        assert!(parse_settings(half, "/r").is_err());
        let v2 = br#"{"format":"pgdr-wal-archive","version":2,"created":"2026-03-21T09:28:37Z"}"#;
        assert!(parse_settings(v2, "/r")
            .unwrap_err()
            .to_string()
            .contains("version 2"));
    }

    #[test]
    fn keys_are_names_in_their_timeline() {
        let w = WalName::parse("000000020000000000000005").unwrap();
        assert_eq!(key_of(&w), "wal/00000002/000000020000000000000005");
        assert_eq!(name_of(&key_of(&w)), Some(w));
        assert_eq!(name_of("wal/00000001/000000020000000000000005"), None);
        assert_eq!(name_of("wal/00000002/junk"), None);
        assert_eq!(name_of("acks/000000020000000000000005"), None);
    }

    #[test]
    fn init_is_idempotent_and_binding_happens_once() {
        let d = tempfile::tempdir().unwrap();
        let loc = d.path().join("r");
        let (repo, created) = Repo::init(&loc, &InitRequest::default()).unwrap();
        assert!(created && repo.identity().is_none());
        let (_, again) = Repo::init(&loc, &InitRequest::default()).unwrap();
        assert!(!again);
        let e = Repo::init(
            &loc,
            &InitRequest {
                compression: Some(Compression::Lz4),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("other settings"), "{e}");
        let a = Identity {
            system_identifier: 7,
            wal_segment_size: 16 << 20,
        };
        let b = Identity {
            system_identifier: 8,
            ..a
        };
        let mut r1 = Repo::open(&loc).unwrap();
        let mut r2 = Repo::open(&loc).unwrap();
        assert_eq!(r1.bind(a, "test").unwrap(), a);
        // The second opened before the binding: it reads the first one's, whatever it asked.
        assert_eq!(r2.bind(b, "test").unwrap(), a);
        assert_eq!(Repo::open(&loc).unwrap().identity(), Some(a));
        let e = Repo::init(
            &loc,
            &InitRequest {
                identity: Some(b),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(e.to_string().contains("database system 7"), "{e}");
    }
}
