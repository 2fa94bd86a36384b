//! The `wal-archive` command line: push, get, list, verify, prune.

use crate::repo::{self, read_header, restore_into, temp_beside, Damage, Repo};
use crate::stored::{hex, Compression, Header};
use pgdr_core::error::clean_io_message;
use pgdr_core::{Error, ErrorKind, Outcome, OutputArgs, Result};
use pgdr_pgformat::history;
use pgdr_pgformat::page_header;
use pgdr_pgformat::wal_name::{Kind, WalName};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The exit code of `get` when a file is archived but cannot be read back intact. PostgreSQL
/// treats a restore_command status above 125 as fatal and stops recovery, instead of taking
/// the failure for "end of archive" and ending recovery early at the wrong point.
pub const GET_FATAL: u8 = 126;

const ABOUT: &str =
    "Push PostgreSQL WAL into a private, checksummed, compressed archive and get it back";

const LONG_ABOUT: &str = "\
wal-archive is PostgreSQL's archive_command and restore_command. push checks each segment's page \
header (magic, timeline, address, system identifier), compresses it (zstd by default), stores it \
with the SHA-256 of its original bytes, makes it durable, and publishes it under a name that can \
never be overwritten. get verifies the checksum before writing the destination atomically; a \
file that is archived but damaged exits 126, which stops recovery instead of ending it early. \
list, verify and prune work on the whole repository, timeline by timeline.

The repository is --repo PATH or $WAL_ARCHIVE_REPO; it is created by the first push and bound \
to that cluster's system identifier. Its format is described in FORMAT.md inside it and in the \
REPOSITORY FORMAT section of the man page.";

const AFTER_HELP: &str = "\
Examples:
  archive_command = 'wal-archive push %p --repo /arch'
  restore_command = 'wal-archive get %f %p --repo /arch'
  wal-archive list --repo /arch --pretty
  wal-archive verify --repo /arch || echo 'archive damaged'
  wal-archive prune --keep-days 14 --repo /arch --dry-run
  snap-prune --pgdata /pg --keep-daily 7 | wal-archive prune - --repo /arch";

#[derive(Debug, clap::Parser)]
#[command(name = "wal-archive", version, about = ABOUT, long_about = LONG_ABOUT, after_help = AFTER_HELP)]
pub struct Args {
    #[command(flatten)]
    pub output: OutputArgs,
    /// The repository directory (default: $WAL_ARCHIVE_REPO).
    #[arg(long, global = true, value_name = "PATH")]
    pub repo: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

pgdr_core::tool_args!(Args);

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Archive one WAL file (archive_command = 'wal-archive push %p --repo DIR').
    #[command(
        long_about = "Archive one WAL file: a segment, a .partial segment, a .backup or a .history \
file. Durable before exit 0. If the name is already archived with identical content, exit 0 with \
\"already_archived\": true once the archived copy is on disk; with different content, exit 1 \
naming both checksums, nothing overwritten."
    )]
    Push(PushArgs),
    /// Restore one archived file (restore_command = 'wal-archive get %f %p --repo DIR').
    #[command(
        long_about = "Restore one archived file into DEST, atomically, after checking its SHA-256 \
(and, for segments, its page header). Not archived: exit 1 with one line. Archived but \
unreadable or damaged: exit 126, nothing written."
    )]
    Get(GetArgs),
    /// Per timeline: first, last, count, bytes, stored bytes, gaps; history files.
    List,
    /// Read back every file: checksum, header, continuity per timeline following history files.
    Verify,
    /// Remove segments older than a bound on every timeline (never .history files).
    Prune(PruneArgs),
    /// Internal: fills get's prefetch spool (started by get --prefetch).
    #[command(hide = true)]
    PrefetchWorker(WorkerArgs),
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The file to archive (%p: pg_wal/NAME, relative to the data directory).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Compression of the stored copy.
    #[arg(long, value_enum, default_value = "zstd")]
    pub compress: Compression,
    /// zstd level (-7 to 22; default 1). Not accepted with lz4 or none.
    #[arg(long, allow_negative_numbers = true)]
    pub level: Option<i32>,
    /// Also push, with N threads, the other files pg_wal/archive_status marks .ready; later
    /// calls for them return at once. PostgreSQL's status files are never renamed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub parallel: usize,
}

#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The file name to restore (%f).
    #[arg(value_name = "NAME")]
    pub name: String,
    /// Where to write it (%p).
    #[arg(value_name = "DEST")]
    pub dest: PathBuf,
    /// Decompress and verify the next N segments ahead, in the background, into a spool
    /// outside pg_wal (only when DEST is PostgreSQL's RECOVERYXLOG).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub prefetch: usize,
    /// The prefetch spool (default: pgdr_wal_prefetch beside DEST's directory, i.e. in the
    /// data directory, outside pg_wal).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("bound").required(true).args(["before", "keep_days", "input"])))]
pub struct PruneArgs {
    /// Remove files whose segment comes before this WAL file name (on every timeline).
    #[arg(long, value_name = "WALNAME")]
    pub before: Option<String>,
    /// Keep what was archived in the last N days (and everything after it).
    #[arg(long, value_name = "N")]
    pub keep_days: Option<f64>,
    /// '-': read snap-prune's JSON on stdin and keep from its oldest kept snapshot's wal_start.
    #[arg(value_name = "-")]
    pub input: Option<String>,
    /// Print what would be removed; remove nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Wait up to SECONDS for another prune holding the lock (default: fail at once, exit 75).
    #[arg(long, value_name = "SECONDS")]
    pub wait_lock: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub struct WorkerArgs {
    #[arg(long)]
    pub spool: PathBuf,
    #[arg(long)]
    pub after: String,
    #[arg(long)]
    pub count: usize,
}

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("wal-archive", run)
}

fn repo_root(a: &Option<PathBuf>) -> Result<PathBuf> {
    match a {
        Some(p) => Ok(p.clone()),
        None => match std::env::var_os("WAL_ARCHIVE_REPO") {
            Some(p) if !p.is_empty() => Ok(PathBuf::from(p)),
            _ => Err(Error::usage("no repository given")
                .hint("pass --repo PATH or set WAL_ARCHIVE_REPO")),
        },
    }
}

pub fn run(args: Args) -> Result<Outcome> {
    let root = repo_root(&args.repo);
    match args.cmd {
        Cmd::Push(a) => push(&root?, a),
        Cmd::Get(a) => get(root.map_err(|e| e.kind(ErrorKind::Code(GET_FATAL)))?, a),
        Cmd::List => list(&root?),
        Cmd::Verify => verify(&root?),
        Cmd::Prune(a) => prune(&root?, a),
        Cmd::PrefetchWorker(a) => prefetch_worker(&root?, a),
    }
}

// ---------------------------------------------------------------------------------------------
// push

fn io_err(what: String) -> impl FnOnce(io::Error) -> Error {
    move |e| Error::failed(what).because(clean_io_message(&e.to_string()))
}

fn read_prefix(f: &mut File, max: usize) -> io::Result<Vec<u8>> {
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

/// The (system identifier, segment size) of a segment file, from its long page header.
fn segment_identity(path: &Path) -> Option<(u64, u64)> {
    let mut f = File::open(path).ok()?;
    let b = read_prefix(&mut f, page_header::LONG_HEADER_LEN).ok()?;
    let h = page_header::parse(&b).ok()?;
    Some((h.system_identifier, h.seg_size as u64))
}

/// For a first push that is not a segment: learn the cluster from a segment beside it.
fn identity_from_pg_wal(path: &Path) -> Option<(u64, u64)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
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

/// What pushing one file did.
#[derive(Debug, Clone, serde::Serialize)]
struct PushReport {
    name: String,
    kind: &'static str,
    timeline: u32,
    already_archived: bool,
    size: u64,
    stored_size: u64,
    compression: &'static str,
    sha256: String,
}

fn push(root: &Path, a: PushArgs) -> Result<Outcome> {
    let level = match (a.compress, a.level) {
        (Compression::Zstd, Some(l)) if !(-7..=22).contains(&l) => {
            return Err(Error::usage(format!("invalid --level {l}"))
                .because("zstd levels go from -7 to 22"))
        }
        (Compression::Zstd, l) => l.unwrap_or(1),
        (c, Some(_)) => {
            return Err(Error::usage("--level applies to zstd only")
                .because(format!("--compress {} has no levels", c.as_str())))
        }
        (_, None) => 0,
    };
    let fname = a
        .path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = WalName::parse(&fname).ok_or_else(|| {
        Error::usage(format!("cannot push {}", a.path.display())).because(format!(
            "{fname:?} is not a WAL segment, .partial, .backup or .history file name"
        ))
    })?;
    let repo = open_repo_for_push(root, &a.path, &name)?;
    if let Some(r) = acknowledged(&repo, &name, &a.path) {
        return Outcome::json(json!({"repo": root, "acknowledged": true, "file": r}));
    }
    let main = push_one(&repo, &name, &a.path, a.compress, level)?;
    let mut doc = json!({"repo": root, "file": main});
    if a.parallel > 0 {
        doc["parallel"] = push_ready(&repo, &a.path, &name, a.parallel, a.compress, level);
    }
    Outcome::json(doc)
}

fn open_repo_for_push(root: &Path, path: &Path, name: &WalName) -> Result<Repo> {
    if root.join(repo::META_FILE).exists() {
        return Repo::open(root);
    }
    let ident = if name.kind.is_wal() {
        segment_identity(path)
    } else {
        identity_from_pg_wal(path)
    };
    match ident {
        Some((sysid, size)) => Repo::open_or_init(root, sysid, size),
        // Let the regular checks explain what is wrong with the file.
        None if name.kind.is_wal() => Repo::open(root).or_else(|_| {
            let mut f = File::open(path).map_err(io_err(format!("cannot read {}", path.display())))?;
            let b = read_prefix(&mut f, page_header::LONG_HEADER_LEN)
                .map_err(io_err(format!("cannot read {}", path.display())))?;
            Err(match page_header::parse(&b) {
                Err(why) => Error::failed(format!("refusing {}", path.display())).because(why),
                Ok(_) => Error::failed(format!("cannot create repository {}", root.display())),
            })
        }),
        None => Err(Error::failed(format!("cannot push {}", path.display()))
            .because(format!(
                "the repository {} does not exist yet and no WAL segment beside the file names the cluster",
                root.display()
            ))
            .hint("push a WAL segment first; it binds the repository to its cluster")),
    }
}

/// The source file's identity, so a later call can trust an acknowledgement.
fn source_stamp(m: &fs::Metadata) -> Value {
    json!({"dev": m.dev(), "ino": m.ino(), "size": m.len(), "mtime_ns": m.mtime() * 1_000_000_000 + m.mtime_nsec()})
}

/// A file pushed earlier by `--parallel`: answer at once if the source is the same file, unchanged.
fn acknowledged(repo: &Repo, name: &WalName, path: &Path) -> Option<Value> {
    let ack = repo.acks_dir().join(name.to_string());
    let text = fs::read_to_string(&ack).ok()?;
    let v: Value = serde_json::from_str(&text).ok()?;
    let m = fs::metadata(path).ok()?;
    if v.get("source") != Some(&source_stamp(&m)) || !repo.path_of(name).is_file() {
        return None;
    }
    // The archived copy was fsynced before the acknowledgement was written. Removing it is
    // only tidying: without it a repeated call takes the full comparison path.
    let _ = fs::remove_file(&ack);
    let mut r = v.get("file").cloned()?;
    r["already_archived"] = json!(true);
    Some(r)
}

fn push_one(
    repo: &Repo,
    name: &WalName,
    path: &Path,
    compression: Compression,
    level: i32,
) -> Result<PushReport> {
    let refuse = |why: String| Error::failed(format!("refusing {}", path.display())).because(why);
    let mut src = File::open(path).map_err(io_err(format!("cannot read {}", path.display())))?;
    let meta = src
        .metadata()
        .map_err(io_err(format!("cannot read {}", path.display())))?;
    if !meta.is_file() {
        return Err(refuse("not a regular file".into()));
    }
    let first =
        read_prefix(&mut src, 8192).map_err(io_err(format!("cannot read {}", path.display())))?;
    if name.kind.is_wal() {
        let h = page_header::parse(&first).map_err(refuse)?;
        page_header::check_against_name(&h, name).map_err(refuse)?;
        if h.system_identifier != repo.sysid {
            return Err(refuse(format!(
                "it belongs to database system {}, the repository to {}",
                h.system_identifier, repo.sysid
            ))
            .hint("a foreign cluster's WAL is never mixed in; give that cluster its own --repo"));
        }
        if h.seg_size as u64 != repo.seg_size() {
            return Err(refuse(format!(
                "segment size {} differs from the repository's {}",
                h.seg_size,
                repo.seg_size()
            )));
        }
        if meta.len() != repo.seg_size() {
            return Err(refuse(format!(
                "{} bytes, a segment has {}",
                meta.len(),
                repo.seg_size()
            )));
        }
    } else {
        check_text_file(name, &first, meta.len()).map_err(refuse)?;
    }
    let dir = repo.timeline_dir(name.timeline);
    repo.ensure_dir(&repo.wal_dir())?;
    repo.ensure_dir(&dir)?;
    let target = repo.path_of(name);
    if target.exists() {
        return compare_existing(repo, name, path, &target);
    }
    let (temp, header, stored) =
        repo.write_stored(&target, &first, &mut src, name.kind, compression, level)?;
    if header.size != meta.len() {
        return Err(
            Error::failed(format!("cannot push {}", path.display())).because(format!(
                "the file changed while it was read ({} bytes, then {})",
                meta.len(),
                header.size
            )),
        );
    }
    if !repo.publish(temp, &target)? {
        // Another push published the name first: the rule for duplicates decides.
        return compare_existing(repo, name, path, &target);
    }
    Ok(PushReport {
        name: name.to_string(),
        kind: name.kind.as_str(),
        timeline: name.timeline,
        already_archived: false,
        size: header.size,
        stored_size: stored,
        compression: compression.as_str(),
        sha256: hex(&header.sha256),
    })
}

/// `.history` and `.backup` files are small text files PostgreSQL writes; anything else under
/// such a name is a mistake worth refusing.
fn check_text_file(name: &WalName, first: &[u8], len: u64) -> Result<(), String> {
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

/// The name is taken: identical content is success once the archived copy is on disk;
/// anything else is a refusal naming both checksums.
fn compare_existing(repo: &Repo, name: &WalName, path: &Path, target: &Path) -> Result<PushReport> {
    let damaged = |why: String| {
        Error::failed(format!(
            "{name} is already archived but the archived copy is damaged"
        ))
        .because(why)
        .hint(format!(
            "run 'wal-archive verify'; move {} aside and push again",
            target.display()
        ))
    };
    let h: Header = read_header(target).map_err(|Damage(w)| damaged(w))?;
    let mut src = File::open(path).map_err(io_err(format!("cannot read {}", path.display())))?;
    let (sha, size) =
        repo::sha256_file(&mut src).map_err(io_err(format!("cannot read {}", path.display())))?;
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
    restore_into(target, &mut io::sink(), &mut Vec::new()).map_err(|e| match e {
        Ok(io) => damaged(clean_io_message(&io.to_string())),
        Err(Damage(w)) => damaged(w),
    })?;
    let sync = |p: &Path| File::open(p).and_then(|f| f.sync_all());
    sync(target).map_err(io_err(format!("cannot sync {}", target.display())))?;
    let dir = target.parent().unwrap_or(&repo.root);
    pgdr_core::fsx::fsync_dir(dir).map_err(io_err(format!("cannot sync {}", dir.display())))?;
    let stored = fs::metadata(target).map(|m| m.len()).unwrap_or(0);
    Ok(PushReport {
        name: name.to_string(),
        kind: name.kind.as_str(),
        timeline: name.timeline,
        already_archived: true,
        size: h.size,
        stored_size: stored,
        compression: h.compression.as_str(),
        sha256: hex(&h.sha256),
    })
}

/// `--parallel N`: push what archive_status marks .ready (history files first, then oldest),
/// up to 4×N files, with N threads, and acknowledge each durably for PostgreSQL's later calls.
fn push_ready(
    repo: &Repo,
    path: &Path,
    main: &WalName,
    threads: usize,
    compression: Compression,
    level: i32,
) -> Value {
    let pg_wal = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let status = pg_wal.join("archive_status");
    let mut ready: Vec<WalName> = fs::read_dir(&status)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            WalName::parse(n.strip_suffix(".ready")?)
        })
        .filter(|w| w != main && !repo.acks_dir().join(w.to_string()).exists())
        .collect();
    ready.sort_by_key(|w| (w.kind != Kind::History, w.to_string()));
    ready.truncate(threads * 4);
    if ready.is_empty() {
        return json!({"pushed": [], "failed": []});
    }
    if repo.ensure_dir(&repo.acks_dir()).is_err() {
        return json!({"pushed": [], "failed": [{"error": "cannot create the acks directory"}]});
    }
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
                    .map_err(|e| Error::failed("cannot stat").because(e))
                    .and_then(|m| {
                        let rep = push_one(repo, &w, &p, compression, level)?;
                        let ack = json!({"file": rep, "source": source_stamp(&m)});
                        pgdr_core::fsx::write_atomic(
                            &repo.acks_dir().join(w.to_string()),
                            ack.to_string().as_bytes(),
                            &pgdr_core::fsx::WriteOptions::default(),
                        )?;
                        Ok(rep)
                    });
                results
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .push((w, r));
            });
        }
    });
    let mut pushed = Vec::new();
    let mut failed = Vec::new();
    for (w, r) in results.into_inner().unwrap_or_else(|p| p.into_inner()) {
        match r {
            Ok(rep) => pushed.push(json!(rep)),
            // PostgreSQL will call for it itself and get the full answer then.
            Err(e) => failed.push(json!({"name": w.to_string(), "error": e.to_string()})),
        }
    }
    json!({"pushed": pushed, "failed": failed})
}

// ---------------------------------------------------------------------------------------------
// get

fn fatal(e: Error) -> Error {
    e.kind(ErrorKind::Code(GET_FATAL))
}

fn get(root: PathBuf, a: GetArgs) -> Result<Outcome> {
    let name = WalName::parse(&a.name).ok_or_else(|| {
        Error::usage(format!("cannot get {:?}", a.name))
            .because("not a WAL segment, .partial, .backup or .history file name")
    })?;
    let repo = Repo::open(&root).map_err(fatal)?;
    let source = repo.path_of(&name);
    match fs::metadata(&source) {
        Ok(m) if m.is_file() => {}
        Ok(_) => {
            return Err(fatal(
                Error::failed(format!("cannot read {}", source.display()))
                    .because("not a regular file"),
            ))
        }
        // "Not found" is how recovery learns it reached the end of the archive: one quiet line.
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let dir_ok = fs::metadata(repo.wal_dir()).is_ok() || !repo.root.join("wal").exists();
            if dir_ok {
                return Err(Error::failed(format!("{name} is not in the archive")));
            }
            return Err(fatal(
                Error::failed(format!("cannot read {}", source.display())).because(e),
            ));
        }
        Err(e) => {
            return Err(fatal(
                Error::failed(format!("cannot read {}", source.display()))
                    .because(clean_io_message(&e.to_string())),
            ))
        }
    }
    let spool = spool_dir(&a);
    let mut from_spool = false;
    let header = match spool
        .as_ref()
        .and_then(|s| take_from_spool(&repo, &name, s, &a.dest))
    {
        Some(h) => {
            from_spool = true;
            h
        }
        None => restore_to(&repo, &name, &source, &a.dest)?,
    };
    let mut started = 0;
    if let (Some(spool), true) = (&spool, name.kind == Kind::Segment) {
        if spawn_prefetch(&root, spool, &name, a.prefetch) {
            started = a.prefetch;
        }
    }
    Outcome::json(json!({
        "name": name.to_string(),
        "dest": a.dest,
        "size": header.size,
        "compression": header.compression.as_str(),
        "sha256": hex(&header.sha256),
        "from_prefetch": from_spool,
        "prefetch": started,
    }))
}

/// Checks a restored segment's page header against its name and the repository.
fn check_restored(repo: &Repo, name: &WalName, first: &[u8]) -> Result<(), String> {
    if !name.kind.is_wal() {
        return Ok(());
    }
    let h = page_header::parse(first)?;
    page_header::check_against_name(&h, name)?;
    if h.system_identifier != repo.sysid {
        return Err(format!(
            "it belongs to database system {}, the repository to {}",
            h.system_identifier, repo.sysid
        ));
    }
    Ok(())
}

/// Decompresses and verifies `source` into a temporary file beside `dest`, then renames it
/// over `dest`. Any failure is fatal (exit 126) and leaves `dest` untouched.
fn restore_to(repo: &Repo, name: &WalName, source: &Path, dest: &Path) -> Result<Header> {
    let (temp, f) = temp_beside(dest).map_err(|e| {
        fatal(
            Error::failed(format!("cannot write {}", dest.display()))
                .because(clean_io_message(&e.to_string())),
        )
    })?;
    let mut w = io::BufWriter::with_capacity(1 << 20, f);
    let mut first = Vec::new();
    let h = restore_into(source, &mut w, &mut first).map_err(|e| match e {
        Ok(io) => fatal(
            Error::failed(format!("cannot write {}", dest.display()))
                .because(clean_io_message(&io.to_string())),
        ),
        Err(Damage(why)) => fatal(
            Error::failed(format!("{name} is archived but cannot be read back intact"))
                .because(why)
                .hint("recovery stops here rather than end early; run 'wal-archive verify'"),
        ),
    })?;
    check_restored(repo, name, &first).map_err(|why| {
        fatal(Error::failed(format!("{name} is archived but its content is wrong")).because(why))
    })?;
    let f = w.into_inner().map_err(|e| {
        fatal(
            Error::failed(format!("cannot write {}", dest.display()))
                .because(clean_io_message(&e.error().to_string())),
        )
    })?;
    finish_dest(temp, f, dest)?;
    Ok(h)
}

fn finish_dest(temp: pgdr_core::signals::TempFile, f: File, dest: &Path) -> Result<()> {
    let fail = |e: io::Error| {
        fatal(
            Error::failed(format!("cannot write {}", dest.display()))
                .because(clean_io_message(&e.to_string())),
        )
    };
    f.sync_all().map_err(fail)?;
    let _guard = pgdr_core::signals::critical_section();
    fs::rename(temp.path(), dest).map_err(fail)?;
    temp.keep();
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    pgdr_core::fsx::fsync_dir(dir).map_err(fail)?;
    Ok(())
}

fn spool_dir(a: &GetArgs) -> Option<PathBuf> {
    if let Some(s) = &a.spool {
        return Some(s.clone());
    }
    if a.prefetch == 0 {
        return None;
    }
    // Only under recovery's own RECOVERYXLOG: pg_rewind and hand calls get no prefetch.
    if a.dest.file_name()? != "RECOVERYXLOG" {
        return None;
    }
    let dest = std::path::absolute(&a.dest).ok()?;
    Some(dest.parent()?.parent()?.join("pgdr_wal_prefetch"))
}

/// Serves `name` from the spool when a prefetched copy is there and still matches the
/// archive's checksum.
fn take_from_spool(repo: &Repo, name: &WalName, spool: &Path, dest: &Path) -> Option<Header> {
    let p = spool.join(name.to_string());
    if !p.is_file() {
        return None;
    }
    let h = read_header(&repo.path_of(name)).ok()?;
    let ok = File::open(&p)
        .and_then(|mut f| repo::sha256_file(&mut f))
        .is_ok_and(|(sha, size)| sha == h.sha256 && size == h.size);
    if !ok {
        let _ = fs::remove_file(&p);
        return None;
    }
    let _guard = pgdr_core::signals::critical_section();
    if fs::rename(&p, dest).is_err() {
        return None; // another file system: read it from the archive instead
    }
    let f = File::open(dest).ok()?;
    f.sync_all().ok()?;
    let dir = match dest.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    pgdr_core::fsx::fsync_dir(dir).ok()?;
    Some(h)
}

fn spawn_prefetch(root: &Path, spool: &Path, after: &WalName, count: usize) -> bool {
    use std::os::unix::process::CommandExt;
    use std::process::{Command, Stdio};
    if count == 0 {
        return false;
    }
    let Ok(exe) = std::env::current_exe() else {
        return false;
    };
    let mut cmd = Command::new(exe);
    cmd.arg("--repo")
        .arg(root)
        .arg("prefetch-worker")
        .arg("--spool")
        .arg(spool)
        .arg("--after")
        .arg(after.to_string())
        .arg("--count")
        .arg(count.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    // SAFETY: setsid is async-signal-safe; the worker leaves recovery's process group so a
    // signal meant for restore_command does not reach it.
    unsafe {
        cmd.pre_exec(|| {
            libc::setsid();
            Ok(())
        });
    }
    cmd.spawn().is_ok()
}

/// Fills the spool with the next `count` segments after `after`, each verified then renamed
/// into place; one worker per spool at a time; older spool entries are removed.
fn prefetch_worker(root: &Path, a: WorkerArgs) -> Result<Outcome> {
    let repo = Repo::open(root)?;
    let after = WalName::parse(&a.after).ok_or_else(|| Error::usage("bad --after"))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode_0700()
        .create(&a.spool)
        .map_err(io_err(format!("cannot create {}", a.spool.display())))?;
    repo::check_private(&a.spool)?;
    let _lock = match pgdr_core::lock::acquire(&a.spool.join(".lock"), "the prefetch spool", None) {
        Ok(l) => l,
        Err(_) => return Outcome::json(json!({"prefetched": 0})),
    };
    let size = repo.seg_size();
    let first = after.segno(size) + 1;
    let wanted: Vec<String> = (first..first + a.count as u64)
        .map(|s| WalName::segment(after.timeline, s, size).to_string())
        .collect();
    // Bounded: anything not among the next `count` names goes.
    for e in fs::read_dir(&a.spool).into_iter().flatten().flatten() {
        let n = e.file_name().to_string_lossy().into_owned();
        if n != ".lock" && !wanted.contains(&n) {
            let _ = fs::remove_file(e.path());
        }
    }
    let mut done = 0;
    for n in &wanted {
        let w = WalName::parse(n).expect("made by us");
        let target = a.spool.join(n);
        let source = repo.path_of(&w);
        if target.exists() {
            continue;
        }
        if !source.is_file() {
            break;
        }
        let Ok((temp, f)) = temp_beside(&target) else {
            break;
        };
        let mut bw = io::BufWriter::with_capacity(1 << 20, f);
        let mut head = Vec::new();
        if restore_into(&source, &mut bw, &mut head).is_err()
            || check_restored(&repo, &w, &head).is_err()
        {
            break; // get reports the damage when recovery asks for it
        }
        let Ok(f) = bw.into_inner() else { break };
        if f.sync_all().is_err() || fs::rename(temp.path(), &target).is_err() {
            break;
        }
        temp.keep();
        done += 1;
    }
    Outcome::json(json!({"prefetched": done}))
}

trait DirMode {
    fn mode_0700(&mut self) -> &mut Self;
}
impl DirMode for std::fs::DirBuilder {
    fn mode_0700(&mut self) -> &mut Self {
        use std::os::unix::fs::DirBuilderExt;
        self.mode(0o700)
    }
}

// ---------------------------------------------------------------------------------------------
// list and verify

#[derive(Debug, Default)]
struct TimelineSummary {
    segments: Vec<u64>,
    names: Vec<String>,
    partial: Vec<String>,
    backup: Vec<String>,
    bytes: u64,
    stored: u64,
}

fn gaps(segnos: &[u64], tli: u32, size: u64) -> Vec<Value> {
    let mut out = Vec::new();
    for w in segnos.windows(2) {
        if w[1] > w[0] + 1 {
            out.push(json!({
                "first": WalName::segment(tli, w[0] + 1, size).to_string(),
                "last": WalName::segment(tli, w[1] - 1, size).to_string(),
                "count": w[1] - w[0] - 1,
            }));
        }
    }
    out
}

/// Reads a small stored file (a .history) fully, verified.
fn read_small(path: &Path) -> std::result::Result<Vec<u8>, String> {
    let mut out = Vec::new();
    restore_into(path, &mut out, &mut Vec::new()).map_err(|e| match e {
        Ok(io) => io.to_string(),
        Err(Damage(w)) => w,
    })?;
    Ok(out)
}

struct Survey {
    timelines: BTreeMap<u32, TimelineSummary>,
    history: BTreeMap<u32, std::result::Result<Vec<history::Entry>, String>>,
    files: u64,
    bytes: u64,
    stored: u64,
    unreadable: Vec<(String, String)>,
    scan: repo::Scan,
}

fn survey(repo: &Repo) -> Result<Survey> {
    let scan = repo.scan()?;
    let size = repo.seg_size();
    let mut s = Survey {
        timelines: BTreeMap::new(),
        history: BTreeMap::new(),
        files: 0,
        bytes: 0,
        stored: 0,
        unreadable: Vec::new(),
        scan: repo::Scan::default(),
    };
    for (w, p, stored, _) in &scan.files {
        s.files += 1;
        s.stored += stored;
        let orig = match read_header(p) {
            Ok(h) => h.size,
            Err(Damage(why)) => {
                s.unreadable.push((w.to_string(), why));
                0
            }
        };
        s.bytes += orig;
        if w.kind == Kind::History {
            let h = read_small(p).and_then(|b| {
                history::parse(&String::from_utf8_lossy(&b)).map_err(|e| format!("malformed: {e}"))
            });
            s.history.insert(w.timeline, h);
            continue;
        }
        let t = s.timelines.entry(w.timeline).or_default();
        t.bytes += orig;
        t.stored += stored;
        match w.kind {
            Kind::Segment => {
                t.segments.push(w.segno(size));
                t.names.push(w.to_string());
            }
            Kind::Partial => t.partial.push(w.to_string()),
            _ => t.backup.push(w.to_string()),
        }
    }
    for t in s.timelines.values_mut() {
        let mut pairs: Vec<_> = t.segments.iter().cloned().zip(t.names.drain(..)).collect();
        pairs.sort();
        t.segments = pairs.iter().map(|p| p.0).collect();
        t.names = pairs.into_iter().map(|p| p.1).collect();
    }
    s.scan = scan;
    Ok(s)
}

fn timelines_json(s: &Survey, size: u64) -> Vec<Value> {
    let mut tlis: Vec<u32> = s
        .timelines
        .keys()
        .chain(s.history.keys())
        .cloned()
        .collect();
    tlis.sort();
    tlis.dedup();
    tlis.into_iter()
        .map(|tli| {
            let empty = TimelineSummary::default();
            let t = s.timelines.get(&tli).unwrap_or(&empty);
            let (parent, switch) = match s.history.get(&tli) {
                Some(Ok(h)) => h
                    .last()
                    .map(|e| (json!(e.timeline), json!(e.switchpoint.to_string())))
                    .unwrap_or((Value::Null, Value::Null)),
                _ => (Value::Null, Value::Null),
            };
            json!({
                "timeline": tli,
                "parent": parent,
                "switchpoint": switch,
                "history": s.history.contains_key(&tli).then(|| format!("{tli:08X}.history")),
                "first": t.names.first(),
                "last": t.names.last(),
                "count": t.segments.len(),
                "bytes": t.bytes,
                "stored_bytes": t.stored,
                "gaps": gaps(&t.segments, tli, size),
                "partial": t.partial,
                "backup": t.backup,
            })
        })
        .collect()
}

fn list(root: &Path) -> Result<Outcome> {
    let repo = Repo::open(root)?;
    let s = survey(&repo)?;
    let history: Vec<String> = s
        .history
        .keys()
        .map(|t| format!("{t:08X}.history"))
        .collect();
    Outcome::json(json!({
        "repo": root,
        "format_version": repo.meta.version,
        "system_identifier": repo.meta.system_identifier,
        "wal_segment_size": repo.seg_size(),
        "files": s.files,
        "bytes": s.bytes,
        "stored_bytes": s.stored,
        "timelines": timelines_json(&s, repo.seg_size()),
        "history": history,
        "unreadable": s.unreadable.iter().map(|(n, w)| json!({"name": n, "problem": w})).collect::<Vec<_>>(),
    }))
}

fn verify(root: &Path) -> Result<Outcome> {
    let repo = Repo::open(root)?;
    let s = survey(&repo)?;
    let size = repo.seg_size();
    let mut problems: Vec<Value> = Vec::new();
    // Every file read back in full, on every core.
    let files = &s.scan.files;
    let next = std::sync::atomic::AtomicUsize::new(0);
    let found = std::sync::Mutex::new(Vec::new());
    let threads = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .min(8);
    std::thread::scope(|sc| {
        for _ in 0..threads {
            sc.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some((w, p, _, _)) = files.get(i) else {
                    break;
                };
                let mut first = Vec::new();
                let r = restore_into(p, &mut io::sink(), &mut first)
                    .map_err(|e| match e {
                        Ok(io) => clean_io_message(&io.to_string()),
                        Err(Damage(why)) => why,
                    })
                    .and_then(|h| {
                        if h.system_identifier != repo.sysid {
                            return Err(format!(
                                "stored for database system {}, the repository is {}",
                                h.system_identifier, repo.sysid
                            ));
                        }
                        if h.kind != w.kind {
                            return Err(format!("stored as a {} file", h.kind.as_str()));
                        }
                        check_restored(&repo, w, &first)
                    });
                if let Err(why) = r {
                    found.lock().unwrap_or_else(|p| p.into_inner()).push(
                        json!({"name": w.to_string(), "timeline": w.timeline, "problem": why}),
                    );
                }
            });
        }
    });
    let mut found = found.into_inner().unwrap_or_else(|p| p.into_inner());
    found.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    problems.extend(found);
    for (tli, t) in &s.timelines {
        for g in gaps(&t.segments, *tli, size) {
            problems.push(json!({"timeline": tli, "problem": format!(
                "missing {} segment(s) {} to {}", g["count"], g["first"].as_str().unwrap_or(""), g["last"].as_str().unwrap_or(""))}));
        }
        if *tli > 1 && !s.history.contains_key(tli) {
            problems.push(json!({"timeline": tli, "problem": format!("no {tli:08X}.history file for timeline {tli}")}));
        }
    }
    // Follow each history file: the parent must reach the switch point, the child start there.
    for (tli, h) in &s.history {
        let entries = match h {
            Ok(e) => e,
            Err(why) => {
                problems.push(
                    json!({"name": format!("{tli:08X}.history"), "timeline": tli, "problem": why}),
                );
                continue;
            }
        };
        let Some(last) = entries.last() else { continue };
        let switch_seg = last.switchpoint.0 / size;
        let parent = s.timelines.get(&last.timeline);
        let child = s.timelines.get(tli);
        if let Some(p) = parent.filter(|p| !p.segments.is_empty()) {
            let reach = p.segments.last().copied().unwrap_or(0);
            if switch_seg > 0 && reach < switch_seg - 1 {
                problems.push(json!({"timeline": last.timeline, "problem": format!(
                    "timeline {} ends at {} but timeline {tli} branches off at {}: {} missing",
                    last.timeline, p.names.last().cloned().unwrap_or_default(), last.switchpoint,
                    WalName::segment(last.timeline, reach + 1, size))}));
            }
            if let Some(first) = child.and_then(|c| c.segments.first()) {
                if *first > switch_seg {
                    problems.push(json!({"timeline": tli, "problem": format!(
                        "timeline {tli} branches off at {} but its first segment is {}: {} missing",
                        last.switchpoint, WalName::segment(*tli, *first, size),
                        WalName::segment(*tli, switch_seg, size))}));
                }
            }
        }
    }
    for (n, why) in &s.unreadable {
        if !problems.iter().any(|p| p["name"] == json!(n)) {
            problems.push(json!({"name": n, "problem": why}));
        }
    }
    let ok = problems.is_empty();
    let out = Outcome::json(json!({
        "repo": root,
        "ok": ok,
        "files": s.files,
        "bytes": s.bytes,
        "stored_bytes": s.stored,
        "timelines": timelines_json(&s, size),
        "problems": problems,
        "temporary_files": s.scan.temps.len(),
        "unknown_files": s.scan.unknown.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    }))?;
    Ok(if ok { out } else { out.with_code(1) })
}

// ---------------------------------------------------------------------------------------------
// prune

fn prune(root: &Path, a: PruneArgs) -> Result<Outcome> {
    let repo = Repo::open(root)?;
    let size = repo.seg_size();
    let scan_now = || repo.scan();
    let (bound, source): (Option<WalName>, String) = if let Some(b) = &a.before {
        let w = WalName::parse(b)
            .filter(|w| w.kind != Kind::History && w.fits(size))
            .ok_or_else(|| {
                Error::usage(format!("invalid --before {b:?}"))
                    .because("expected a 24-hex-digit WAL file name")
            })?;
        (Some(w), "before".into())
    } else if let Some(days) = a.keep_days {
        if !(days.is_finite() && days >= 0.0) {
            return Err(Error::usage(format!("invalid --keep-days {days}")));
        }
        let cutoff = chrono::Utc::now().timestamp() - (days * 86400.0) as i64;
        let scan = scan_now()?;
        let segs: Vec<&(WalName, PathBuf, u64, i64)> = scan
            .files
            .iter()
            .filter(|f| f.0.kind == Kind::Segment)
            .collect();
        let recent = segs
            .iter()
            .filter(|f| f.3 >= cutoff)
            .map(|f| f.0.segno(size))
            .min();
        // Nothing archived recently: keep the newest segment rather than empty the archive.
        let newest = segs.iter().map(|f| f.0.segno(size)).max();
        (
            recent.or(newest).map(|s| WalName::segment(1, s, size)),
            "keep_days".into(),
        )
    } else {
        if a.input.as_deref() != Some("-") {
            return Err(
                Error::usage("the only positional argument prune takes is '-'").hint(
                    "use --before WALNAME, --keep-days N, or '-' with snap-prune's output on stdin",
                ),
            );
        }
        let doc = pgdr_core::input::read_stdin_json()?;
        (wal_start_from_snap_prune(&doc, size)?, "snap-prune".into())
    };
    let Some(bound) = bound else {
        return Outcome::json(json!({
            "repo": root, "bound": null, "source": source, "dry_run": a.dry_run,
            "removed": [], "removed_count": 0, "removed_bytes": 0,
            "note": "no bound: nothing to keep from, nothing removed",
        }));
    };
    let bound_seg = bound.segno(size);
    let _lock = if a.dry_run {
        None
    } else {
        let wait = pgdr_core::lock::wait_duration("--wait-lock", a.wait_lock)?;
        Some(pgdr_core::lock::acquire(
            &root.join("prune.lock"),
            &format!("repository {}", root.display()),
            wait,
        )?)
    };
    let scan = scan_now()?;
    let mut removed = Vec::new();
    let mut removed_bytes = 0u64;
    let mut kept = 0u64;
    let mut dirs = std::collections::BTreeSet::new();
    for (w, p, stored, _) in &scan.files {
        if w.kind == Kind::History || w.segno(size) >= bound_seg {
            kept += 1;
            continue;
        }
        if !a.dry_run {
            fs::remove_file(p).map_err(io_err(format!("cannot remove {}", p.display())))?;
            if let Some(d) = p.parent() {
                dirs.insert(d.to_path_buf());
            }
        }
        removed.push(w.to_string());
        removed_bytes += stored;
    }
    // Temporary files of pushes killed long ago.
    let day_ago = chrono::Utc::now().timestamp() - 86400;
    let mut stale = 0;
    for t in &scan.temps {
        if fs::metadata(t).is_ok_and(|m| m.mtime() < day_ago) {
            stale += 1;
            if !a.dry_run {
                let _ = fs::remove_file(t);
            }
        }
    }
    for d in dirs {
        pgdr_core::fsx::fsync_dir(&d).map_err(io_err(format!("cannot sync {}", d.display())))?;
    }
    Outcome::json(json!({
        "repo": root,
        "bound": bound.segment_name(),
        "source": source,
        "dry_run": a.dry_run,
        "removed": removed,
        "removed_count": removed.len(),
        "removed_bytes": removed_bytes,
        "kept": kept,
        "stale_temporary_files": stale,
    }))
}

/// snap-prune prints `{"kept": [...], "destroyed": [...], "oldest_kept": {... "wal_start"}}`.
fn wal_start_from_snap_prune(doc: &Value, size: u64) -> Result<Option<WalName>> {
    let Some(oldest) = doc.get("oldest_kept") else {
        return Err(Error::usage("no \"oldest_kept\" in the JSON on stdin")
            .hint("pipe in snap-prune's output"));
    };
    if oldest.is_null() {
        return Ok(None);
    }
    let ws = oldest
        .get("wal_start")
        .or_else(|| oldest.get("metadata").and_then(|m| m.get("wal_start")))
        .or_else(|| oldest.get("snapshot").and_then(|m| m.get("wal_start")));
    match ws {
        Some(Value::String(s)) => WalName::parse(s)
            .filter(|w| w.kind == Kind::Segment && w.fits(size))
            .map(Some)
            .ok_or_else(|| {
                Error::usage(format!("invalid oldest_kept.wal_start {s:?}"))
                    .because("expected a WAL file name")
            }),
        Some(Value::Null) => Ok(None),
        _ => Err(
            Error::usage("no oldest_kept.wal_start in the JSON on stdin")
                .hint("pipe in snap-prune's output"),
        ),
    }
}

// ---------------------------------------------------------------------------------------------
// man page

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "Success. push: the file is archived and on disk (also when it was already archived with identical content). verify: no problem found."),
        (1, "The operation failed or was refused, nothing changed. push: a different file is archived under the name (both checksums named), a foreign cluster's segment, a bad page header, an I/O error such as a full disk. get: the name is not archived (one line; PostgreSQL reads it as the end of the archive). verify: problems found (the report is printed)."),
        (2, "Usage error or malformed input (bad arguments, not a WAL file name, malformed JSON on stdin)."),
        (75, "prune: another prune holds the repository's lock (see --wait-lock)."),
        (126, "get only: the file is archived but cannot be read back intact (checksum mismatch, damaged or unreadable file, unreadable or missing repository, DEST cannot be written). Nothing is written to DEST. PostgreSQL treats a restore_command status above 125 as fatal and stops recovery instead of ending it early at the wrong point. No other command exits above 125."),
    ],
    documents: &[],
    json_output: "\
push: {\"repo\", \"file\": {\"name\", \"kind\" (segment, partial, backup, history), \"timeline\", \"already_archived\", \"size\", \"stored_size\", \"compression\", \"sha256\"}, \"acknowledged\" (true when an earlier --parallel push had stored it), \"parallel\": {\"pushed\": [file...], \"failed\": [{\"name\", \"error\"}]}}.
get: {\"name\", \"dest\", \"size\", \"compression\", \"sha256\", \"from_prefetch\", \"prefetch\"}.
list: {\"repo\", \"format_version\", \"system_identifier\" (a string), \"wal_segment_size\", \"files\", \"bytes\", \"stored_bytes\", \"timelines\": [{\"timeline\", \"parent\", \"switchpoint\", \"history\", \"first\", \"last\", \"count\", \"bytes\", \"stored_bytes\", \"gaps\": [{\"first\", \"last\", \"count\"}], \"partial\": [...], \"backup\": [...]}], \"history\": [...], \"unreadable\": [{\"name\", \"problem\"}]}.
verify: {\"repo\", \"ok\", \"files\", \"bytes\", \"stored_bytes\", \"timelines\" (as list), \"problems\": [{\"name\", \"timeline\", \"problem\"}], \"temporary_files\", \"unknown_files\"}; exit 1 when problems is not empty.
prune: {\"repo\", \"bound\", \"source\", \"dry_run\", \"removed\": [names], \"removed_count\", \"removed_bytes\", \"kept\", \"stale_temporary_files\"}.",
    examples: &[
        ("Archive from PostgreSQL (postgresql.conf):", "archive_command = 'wal-archive push %p --repo /arch'"),
        ("Archive faster, pushing other ready segments with 4 threads:", "archive_command = 'wal-archive push %p --parallel 4 --repo /arch'"),
        ("Restore (postgresql.conf of the server being recovered):", "restore_command = 'wal-archive get %f %p --prefetch 8 --repo /arch'"),
        ("See what the archive holds, per timeline:", "wal-archive list --repo /arch --pretty"),
        ("Check every file from cron:", "wal-archive verify --repo /arch >/dev/null || page-oncall"),
        ("Keep WAL for the snapshots snap-prune keeps:", "snap-prune --pgdata /pg --keep-daily 7 | wal-archive prune - --repo /arch"),
    ],
    extra_sections: &[
        ("REPOSITORY FORMAT", "\
Version 1 (checked on every open; another version is refused). The repository directory holds pgdr-wal-archive.json ({\"format\": \"pgdr-wal-archive\", \"version\": 1, \"system_identifier\", \"wal_segment_size\", \"created\"}), FORMAT.md (the full description), wal/TTTTTTTT/NAME (every archived file under its PostgreSQL name, in the directory of its timeline, .history files included), acks/ (push --parallel acknowledgements) and prune.lock.
Each stored file is a 68-byte header (magic PGDRWAL\\0, file format version, compression, kind, original size, system identifier, SHA-256 of the original bytes, CRC-32C of the header) followed by the body: raw, one zstd frame, or an lz4 frame.
Directories are created 0700 and files 0600; a repository directory writable by group or others, or owned by another user (unless running as root), is refused.
Files are written to .NAME.pgdr-tmp.PID.N in the target directory, fsynced, published with renameat2(RENAME_NOREPLACE) (link where unsupported) and the directory fsynced: a name, once published, is never replaced."),
        ("ENVIRONMENT", "WAL_ARCHIVE_REPO: the repository when --repo is not given."),
    ],
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snap_prune_documents() {
        let size = 16 << 20;
        let d = json!({"kept": [], "oldest_kept": {"snapshot": "pgdr-x", "wal_start": "000000020000000000000005"}});
        assert_eq!(
            wal_start_from_snap_prune(&d, size)
                .unwrap()
                .unwrap()
                .to_string(),
            "000000020000000000000005"
        );
        assert!(
            wal_start_from_snap_prune(&json!({"oldest_kept": null}), size)
                .unwrap()
                .is_none()
        );
        assert_eq!(
            wal_start_from_snap_prune(&json!({}), size)
                .unwrap_err()
                .exit_code(),
            2
        );
        let bad = json!({"oldest_kept": {"wal_start": "nope"}});
        assert_eq!(
            wal_start_from_snap_prune(&bad, size)
                .unwrap_err()
                .exit_code(),
            2
        );
    }

    #[test]
    fn gaps_are_ranges() {
        let g = gaps(&[1, 2, 5, 6, 8], 1, 16 << 20);
        assert_eq!(g.len(), 2);
        assert_eq!(g[0]["first"], "000000010000000000000003");
        assert_eq!(g[0]["count"], 2);
        assert_eq!(g[1]["last"], "000000010000000000000007");
    }

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
