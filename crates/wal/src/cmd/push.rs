//! `wal-archive push`: PostgreSQL's archive_command. Checks and stores one file
//! ([`pgdr_repo::file::store_file`]); binds a repository initialised without a cluster to the
//! first segment's; with `--parallel N` also pushes what `pg_wal/archive_status` marks
//! `.ready` and acknowledges each, so PostgreSQL's later calls for them return at once.

use crate::doc::{ParallelFailure, ParallelReport, PushReport, StoredFile};
use pgdr_core::{Context, Error, Result};
use pgdr_pgformat::page_header;
use pgdr_pgformat::wal_name::{Kind, WalName};
use pgdr_repo::file::{self, dir_of, store_file};
use pgdr_repo::repo::{ack_key, key_of, Identity, OpenOptions, Repo};
use pgdr_repo::store::Store;
use pgdr_repo::stored::Compression;
use serde::{Deserialize, Serialize};
use std::fs::{self, File};
use std::io::{Read, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What to push.
#[derive(Debug, Clone, Default)]
pub struct PushOptions {
    /// The file (%p).
    pub path: PathBuf,
    /// Compression (default: the repository's, else zstd).
    pub compression: Option<Compression>,
    /// zstd level (default: the repository's, else 1).
    pub level: Option<i32>,
    /// Threads for the other `.ready` files (0: none).
    pub parallel: usize,
}

/// The source file's identity, so a later call can trust an acknowledgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceStamp {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i64,
}

impl SourceStamp {
    fn of(m: &fs::Metadata) -> SourceStamp {
        SourceStamp {
            dev: m.dev(),
            ino: m.ino(),
            size: m.len(),
            mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
        }
    }
}

/// `acks/NAME`: a file `--parallel` stored, and the source it read.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Ack {
    file: StoredFile,
    source: SourceStamp,
}

/// Archives `o.path`.
///
/// # Errors
/// Usage errors (exit 2) for a name that is not PostgreSQL's or a bad level; refusals and
/// I/O errors (exit 1): not an initialised repository, another cluster's segment, a bad
/// header, different content under an archived name, a full disk.
pub fn push(location: &Path, o: &PushOptions) -> Result<PushReport> {
    let fname = o
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = WalName::parse(&fname).ok_or_else(|| {
        Error::usage(format!("cannot push {}", o.path.display())).because(format!(
            "{fname:?} is not a WAL segment, .partial, .backup or .history file name"
        ))
    })?;
    let size = fs::metadata(&o.path).map_or(0, |m| m.len());
    let workers = file::compression_workers(size);
    // On an object store, opening is a round trip: the file is compressed meanwhile, with the
    // compression asked for or else the default, which the settings then confirm or overrule.
    let remote = pgdr_repo::store::is_remote(location);
    let pre = remote
        .then(|| {
            let c = o.compression.unwrap_or(Compression::Zstd);
            let level = c.level(o.level).ok()?;
            Some(file::Prestage::start(
                &key_of(&name),
                &o.path,
                c,
                level,
                workers,
            ))
        })
        .flatten();
    // An acknowledgement is read with the settings (on S3, one round trip for both), and only
    // trusted once the repository opened and the file's cluster was checked. Only `--parallel`
    // writes them, and PostgreSQL calls every push with the one archive_command: on an object
    // store, where each look is a request, a push without it does not look (a file a
    // `--parallel` run stored anyway is found by the conditional create and compared).
    let look_for_ack = o.parallel > 0 || !remote;
    let open = OpenOptions {
        read_ahead: look_for_ack.then(|| ack_key(&name)).into_iter().collect(),
        ..OpenOptions::default()
    };
    let mut repo = Repo::open_with(location, &open)?;
    let (compression, level) = match o.compression {
        Some(c) => (c, c.level(o.level)?),
        None => {
            let c = repo.compression();
            let level = c
                .level(o.level.or(repo.settings().compression_level))
                .map_err(|e| match c {
                    Compression::Zstd => e,
                    _ => e
                        .because(format!(
                            "the repository's compression is {}, which has no levels",
                            c.as_str()
                        ))
                        .hint("give --compress zstd with --level, or no --level"),
                })?;
            (c, level)
        }
    };
    let id = identity(&mut repo, &name, &o.path)?;
    if let Some(file) = look_for_ack
        .then(|| acknowledged(&repo, &name, &o.path))
        .flatten()
    {
        return Ok(PushReport {
            repo: repo.location(),
            file,
            acknowledged: true,
            parallel: None,
        });
    }
    let pre = pre.and_then(file::Prestage::finish);
    let file = store_file(&repo, id, &name, &o.path, compression, level, workers, pre)?;
    let parallel = (o.parallel > 0)
        .then(|| push_ready(&repo, id, &o.path, &name, o.parallel, compression, level));
    Ok(PushReport {
        repo: repo.location(),
        file,
        acknowledged: false,
        parallel,
    })
}

/// The repository's cluster; a repository initialised without one is bound here to the
/// cluster of the file pushed (a segment's page header, or the newest segment beside a
/// history or backup file).
fn identity(repo: &mut Repo, name: &WalName, path: &Path) -> Result<Identity> {
    if let Some(id) = repo.identity() {
        return Ok(id);
    }
    let found = if name.kind.is_wal() {
        file::segment_identity(path)
    } else {
        file::identity_from_pg_wal(path)
    };
    match found {
        Some(id) => repo.bind(id, &format!("push of {name}")),
        // Let the page header say what is wrong with the file.
        None if name.kind.is_wal() => {
            let cannot_read = || format!("cannot read {}", path.display());
            let mut f = File::open(path).context(cannot_read)?;
            let b = file::read_prefix(&mut f, page_header::LONG_HEADER_LEN).context(cannot_read)?;
            let why = page_header::parse(&b)
                .err()
                .unwrap_or_else(|| "its page header names no cluster".into());
            Err(Error::failed(format!("refusing {}", path.display())).because(why))
        }
        None => Err(Error::failed(format!("cannot push {}", path.display()))
            .because(format!(
                "the repository {} is bound to no cluster yet and no WAL segment beside the file names one",
                repo.location()
            ))
            .hint("push a WAL segment first, or name the cluster: wal-archive init --pgdata DIR")),
    }
}

fn read_ack(store: &dyn Store, key: &str) -> Option<Ack> {
    let mut o = store.read(key).ok()??;
    let mut text = String::new();
    o.reader.read_to_string(&mut text).ok()?;
    serde_json::from_str(&text).ok()
}

/// A file pushed earlier by `--parallel`: answered at once if the source is the same file,
/// unchanged, and the archived copy is there.
fn acknowledged(repo: &Repo, name: &WalName, path: &Path) -> Option<StoredFile> {
    let store = repo.store();
    let key = ack_key(name);
    let ack = read_ack(store, &key)?;
    let same = fs::metadata(path).is_ok_and(|m| SourceStamp::of(&m) == ack.source)
        && store.head(&key_of(name)).is_ok_and(|h| h.is_some());
    // The archived copy was durable before the acknowledgement was written. Removing it is
    // tidying: without it a repeated call takes the full comparison path.
    let _ = store.delete(&[key]);
    same.then_some(StoredFile {
        already_archived: true,
        ..ack.file
    })
}

/// `--parallel N`: pushes what archive_status marks .ready (history files first, then oldest),
/// up to 4×N files, with N threads, and acknowledges each durably for PostgreSQL's later calls.
/// PostgreSQL's status files are never touched.
fn push_ready(
    repo: &Repo,
    id: Identity,
    path: &Path,
    main: &WalName,
    threads: usize,
    compression: Compression,
    level: i32,
) -> ParallelReport {
    let store = repo.store();
    let pg_wal = dir_of(path);
    let mut ready: Vec<WalName> = fs::read_dir(pg_wal.join("archive_status"))
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            WalName::parse(n.strip_suffix(".ready")?)
        })
        .filter(|w| w != main && !store.head(&ack_key(w)).is_ok_and(|h| h.is_some()))
        .collect();
    ready.sort_by_key(|w| (w.kind != Kind::History, w.to_string()));
    ready.truncate(threads * 4);
    let queue = std::sync::Mutex::new(ready.into_iter());
    let results = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..threads {
            s.spawn(|| loop {
                let Some(w) = queue.lock().unwrap_or_else(|p| p.into_inner()).next() else {
                    break;
                };
                let p = pg_wal.join(w.to_string());
                let r = fs::metadata(&p)
                    .context(|| format!("cannot read {}", p.display()))
                    .and_then(|m| {
                        // Already one thread per file: each compresses on its own.
                        let file = store_file(repo, id, &w, &p, compression, level, 0, None)?;
                        let ack = Ack {
                            file: file.clone(),
                            source: SourceStamp::of(&m),
                        };
                        let key = ack_key(&w);
                        let mut staged = store.stage(&key)?;
                        staged
                            .file()
                            .write_all(
                                serde_json::to_string(&ack)
                                    .expect("serializable")
                                    .as_bytes(),
                            )
                            .context(|| format!("cannot write {}", store.locate(&key)))?;
                        store.create_if_absent(staged)?;
                        Ok(file)
                    });
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((w, r));
            });
        }
    });
    let mut report = ParallelReport {
        pushed: Vec::new(),
        failed: Vec::new(),
    };
    for (w, r) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        match r {
            Ok(file) => report.pushed.push(file),
            // PostgreSQL will call for it itself and get the full answer then.
            Err(e) => report.failed.push(ParallelFailure {
                name: w.to_string(),
                error: e.to_string(),
            }),
        }
    }
    report.pushed.sort_by(|a, b| a.name.cmp(&b.name));
    report
}
