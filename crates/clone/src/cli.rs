//! snap-clone: a running PostgreSQL at any point in time, from a snapshot and the WAL archive.

use crate::prepare::{self, Action, Plan};
use crate::registry::{self, Record};
use crate::server::{self, Server};
use crate::target::{self, Target};
use chrono::{SecondsFormat, Utc};
use clap::Parser;
use pgdr_core::{Context, Error, Outcome, OutputArgs, Result};
use pgdr_pgformat::Lsn;
use pgdr_snap::{Backend, BackendKind, SnapshotMeta};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const AFTER_HELP: &str = "\
Examples:
  snap-clone --before '2026-03-21 17:28:37+08' --name drill --repo /zpdata02/wal --start \\
      | jq .port
  snap-clone --pgdata /zpdata01/pg --before '2026-03-21 09:28:00+00' --name drill \\
      --repo /zpdata02/wal --start
  snap-clone --pgdata /zpdata01/pg --snapshot pgdr-20260321T090000Z --name qa --start \\
      --recovery-target-action promote --port 6543
  snap-take --pgdata /zpdata01/pg | snap-clone - --name latest --start
  snap-clone --list
  snap-clone --destroy drill";

/// Clone a snapshot into a running PostgreSQL at any point in time.
#[derive(Debug, Parser)]
#[command(
    name = "snap-clone",
    version,
    about = "Clone a snapshot into a running PostgreSQL at any point in time",
    long_about = "Clone a snapshot made by snap-take (a ZFS clone, a btrfs snapshot, or a copy \
with reflinks) and make it a PostgreSQL server of its own that recovers to a target: the \
snapshot's own moment (--recovery-target immediate, the default with --snapshot), a time \
(--recovery-target-time, or --before T which also picks the newest snapshot consistent \
before T) or an LSN, replaying WAL from the archive (--repo for a wal-archive repository, \
whose next segments are prefetched while PostgreSQL replays, or --restore-command).\n\n\
The clone can never touch production: postmaster.pid, postmaster.opts, socket files, \
standby.signal and replication slots are removed; recovery.signal is created; \
postgresql.auto.conf gets (as ALTER SYSTEM would write them) its own port (a free one \
unless --port), its own socket directory, archive_mode = off, empty archive_command, \
primary_conninfo and primary_slot_name, the recovery target and action, \
recovery_target_timeline = latest and the restore_command; pg_wal and tablespace links are \
pointed into the clone; the backup label is restored when the snapshot has one.\n\n\
With --start the server is started as the data directory's owner with the snapshot's \
PostgreSQL major version, and snap-clone waits until recovery paused at the target (or \
was promoted). A clone is one transaction: if any step fails, or SIGINT/SIGTERM arrives, \
the server it started is stopped, the clone destroyed, and it exits 1 with the reason and \
the end of the server log.\n\n\
Without --pgdata, --snapshot and --before look for snap-take's snapshots on every \
imported ZFS pool (the pgdr:meta property) and every mounted btrfs filesystem (snapshot \
subvolumes with their metadata beside them), or only in --snapshot-dir when given. When the \
snapshots found belong to one data directory, that one is used; snapshots of several data \
directories are a usage error naming them (pass --pgdata). Copy snapshots have no \
system-wide place: they need --pgdata or --snapshot-dir.\n\n\
A target before a snapshot's consistent point is refused (PostgreSQL would stop with \
\"requested recovery stop point is before consistent recovery point\"), naming the \
snapshots that would serve it.",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// '-' reads the snapshot object snap-take printed from stdin.
    #[arg(value_name = "-")]
    pub input: Option<String>,
    /// The snapshot to clone (by name).
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// Clone the newest snapshot consistent at or before this time (RFC 3339 with an
    /// offset); unless another target is given, recover to it.
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    /// The data directory whose snapshots to use (with --snapshot or --before; needed only
    /// when snapshots of several data directories are found, or for copy snapshots).
    #[arg(long, short = 'D', env = "PGDATA", value_name = "DIR")]
    pub pgdata: Option<PathBuf>,
    /// Storage backend: zfs, btrfs or copy (default: detected from PGDATA).
    #[arg(long, value_enum, hide_possible_values = true)]
    pub backend: Option<BackendKind>,
    /// Where btrfs and copy snapshots are kept (as given to snap-take); without --pgdata,
    /// the only place searched.
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// The clone's name (letters, digits, '.', '_', '-').
    #[arg(long, value_name = "CLONE")]
    pub name: Option<String>,
    /// Where the clone's root goes (must not exist; default: the backend's clone place).
    #[arg(long, value_name = "DIR")]
    pub target: Option<PathBuf>,
    /// The clone's port (default: a free one).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Recover to this time (RFC 3339 with an offset): commits up to it are kept.
    #[arg(long, value_name = "T", group = "rtarget")]
    pub recovery_target_time: Option<String>,
    /// Recover to this LSN.
    #[arg(long, value_name = "L", group = "rtarget")]
    pub recovery_target_lsn: Option<String>,
    /// 'immediate': stop as soon as the clone is consistent (the snapshot's moment).
    #[arg(long, value_name = "immediate", group = "rtarget")]
    pub recovery_target: Option<String>,
    /// What to do at the target: pause (read-only, queryable; default) or promote.
    #[arg(
        long,
        value_enum,
        hide_possible_values = true,
        value_name = "pause|promote"
    )]
    pub recovery_target_action: Option<Action>,
    /// restore_command for the clone (default: the one its configuration has).
    #[arg(long, value_name = "CMD", conflicts_with = "repo")]
    pub restore_command: Option<String>,
    /// A wal-archive repository: restore_command = 'wal-archive get %f %p --repo DIR
    /// --prefetch 4' (the next segments decompressed and verified ahead of replay).
    #[arg(long, value_name = "DIR")]
    pub repo: Option<PathBuf>,
    /// shared_buffers for the clone (e.g. 2GB; default: the snapshot's setting). Replay
    /// writes out a dirty page for every page it reads once the buffers are full; where
    /// each write is slow (zfs-fuse), buffers that hold the pages the WAL touches make a
    /// point-in-time clone several times faster.
    #[arg(long, value_name = "SIZE")]
    pub shared_buffers: Option<String>,
    /// Start the clone and wait until recovery reached the target.
    #[arg(long)]
    pub start: bool,
    /// With --start: give up (and roll back) after this many seconds.
    #[arg(long, value_name = "SECONDS", requires = "start")]
    pub wait: Option<f64>,
    /// List every clone.
    #[arg(long, conflicts_with_all = ["input", "snapshot", "before", "name", "destroy", "start"])]
    pub list: bool,
    /// Stop and destroy a clone made by snap-clone.
    #[arg(long, value_name = "CLONE", conflicts_with_all = ["input", "snapshot", "before", "name", "start"])]
    pub destroy: Option<String>,
    /// Wait up to this many seconds for another run on the same clone name.
    #[arg(long, value_name = "SECONDS")]
    pub wait_lock: Option<f64>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pgdr_core::tool_args!(Args);

fn seconds(what: &str, w: Option<f64>) -> Result<Option<Duration>> {
    pgdr_core::lock::wait_duration(what, w)
}

fn rfc3339(t: chrono::DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

pub fn run(args: Args) -> Result<Outcome> {
    let started = Instant::now();
    let wait_lock = seconds("--wait-lock", args.wait_lock)?;
    if args.list {
        return list(&args);
    }
    if let Some(name) = &args.destroy {
        return destroy(name, wait_lock);
    }
    create(args, started, wait_lock)
}

/// Which snapshot, as asked.
enum Source {
    Name(String),
    Before(chrono::DateTime<Utc>),
    Stdin(Box<SnapshotMeta>),
}

fn parse_target(args: &Args) -> Result<Option<Target>> {
    if let Some(t) = &args.recovery_target_time {
        let t = target::parse_time(t)
            .map_err(|e| Error::usage("invalid --recovery-target-time").because(e))?;
        return Ok(Some(Target::Time(t)));
    }
    if let Some(l) = &args.recovery_target_lsn {
        let l: Lsn = l
            .parse()
            .map_err(|e| Error::usage("invalid --recovery-target-lsn").because(e))?;
        return Ok(Some(Target::Lsn(l)));
    }
    if let Some(t) = &args.recovery_target {
        if t != "immediate" {
            return Err(Error::usage(format!("invalid --recovery-target {t:?}"))
                .because("the only value is 'immediate'"));
        }
        return Ok(Some(Target::Immediate));
    }
    Ok(None)
}

fn source(args: &Args) -> Result<Source> {
    let given = [
        args.input.is_some(),
        args.snapshot.is_some(),
        args.before.is_some(),
    ];
    match given.iter().filter(|g| **g).count() {
        1 => {}
        0 => {
            return Err(Error::usage("nothing to clone")
                .hint("pass --snapshot NAME, --before TIME or '-' (or --list, --destroy CLONE)"))
        }
        _ => {
            return Err(Error::usage(
                "--snapshot, --before and '-' exclude each other",
            ))
        }
    }
    if let Some(i) = &args.input {
        if i != "-" {
            return Err(Error::usage(format!("unexpected argument {i:?}"))
                .hint("the only positional argument is '-' (a snap-take document on stdin)"));
        }
        let v = pgdr_core::input::read_stdin_json()?;
        let meta: SnapshotMeta = serde_json::from_value(v)
            .map_err(|e| Error::usage("stdin is not a snap-take snapshot object").because(e))?;
        return Ok(Source::Stdin(Box::new(meta)));
    }
    if let Some(n) = &args.snapshot {
        return Ok(Source::Name(n.clone()));
    }
    let b = args.before.as_deref().unwrap_or_default();
    target::parse_time(b)
        .map(Source::Before)
        .map_err(|e| Error::usage("invalid --before").because(e))
}

/// The backend holding the snapshots: from the snap-take document, or --pgdata.
fn backend_for(args: &Args, src: &Source) -> Result<Backend> {
    if let Source::Stdin(m) = src {
        let kind = BackendKind::parse(&m.backend).ok_or_else(|| {
            Error::usage(format!(
                "unknown backend {:?} in the snapshot object",
                m.backend
            ))
        })?;
        let store = match kind {
            BackendKind::Zfs => None,
            _ => Path::new(&m.location).parent().map(Path::to_path_buf),
        };
        return Backend::detect(&m.pgdata, Some(kind), store.as_deref());
    }
    let Some(pgdata) = &args.pgdata else {
        return discovered(args, src);
    };
    let pgdata = pgdr_snap::sys::check_data_dir(pgdata)?;
    Backend::detect(&pgdata, args.backend, args.snapshot_dir.as_deref())
}

/// Without --pgdata: the one data directory whose snapshots snap-take's stores hold (every
/// imported ZFS pool, every mounted btrfs filesystem, or the --snapshot-dir store). With
/// --snapshot only the snapshots of that name count.
fn discovered(args: &Args, src: &Source) -> Result<Backend> {
    let d = pgdr_snap::backend::discover::discover(args.snapshot_dir.as_deref())?;
    let mut found: Vec<_> = d
        .found
        .into_iter()
        .filter(|f| !matches!(args.backend, Some(k) if k != f.kind))
        .collect();
    if let Source::Name(n) = src {
        found.retain(|f| f.meta.snapshot == *n);
    }
    let mut dirs: Vec<(PathBuf, BackendKind, Option<PathBuf>)> = found
        .into_iter()
        .map(|f| (f.meta.pgdata, f.kind, f.store))
        .collect();
    dirs.sort_by(|a, b| a.0.cmp(&b.0));
    dirs.dedup();
    match dirs.as_slice() {
        [(pgdata, kind, store)] => Backend::detect(pgdata, Some(*kind), store.as_deref()),
        [] => {
            let what = match src {
                Source::Name(n) => format!("no snapshot {n} made by snap-take found"),
                _ => "no snapshot made by snap-take found".into(),
            };
            let mut searched = match &args.snapshot_dir {
                Some(s) => format!("{} has none", s.display()),
                None => "no imported ZFS pool or mounted btrfs filesystem has one".into(),
            };
            for n in &d.notes {
                searched.push_str("; ");
                searched.push_str(n);
            }
            Err(Error::failed(what).because(searched).hint(
                "pass --pgdata DIR; copy snapshots live beside their data directory and are \
                 found only through it or --snapshot-dir",
            ))
        }
        many => {
            let mut names: Vec<String> = many.iter().map(|d| d.0.display().to_string()).collect();
            names.dedup();
            Err(Error::usage(format!(
                "snapshots of several data directories: {}",
                names.join(", ")
            ))
            .hint("pass --pgdata DIR to choose one"))
        }
    }
}

/// The path of the wal-archive binary: beside this one, else on PATH.
fn wal_archive_bin() -> Result<PathBuf> {
    if let Some(d) = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
    {
        let p = d.join("wal-archive");
        if p.is_file() {
            return Ok(p);
        }
    }
    if let Some(path) = std::env::var_os("PATH") {
        for d in std::env::split_paths(&path) {
            let p = d.join("wal-archive");
            if p.is_file() && p.is_absolute() {
                return Ok(p);
            }
        }
    }
    Err(Error::failed("cannot find wal-archive")
        .because("it is neither beside snap-clone nor on PATH")
        .hint("install wal-archive, or pass --restore-command"))
}

/// Whether a TCP port is free on every address (bound by nobody, listening or not).
fn port_free(port: u16) -> bool {
    use std::net::TcpListener;
    if TcpListener::bind(("0.0.0.0", port)).is_err() {
        return false;
    }
    match TcpListener::bind(("::", port)) {
        Ok(_) => true,
        Err(e) => e.kind() != std::io::ErrorKind::AddrInUse,
    }
}

fn choose_port(given: Option<u16>, records: &[Record]) -> Result<u16> {
    let taken_by_clone = |p: u16| records.iter().find(|r| r.port == p);
    if let Some(p) = given {
        if p == 0 {
            return Err(Error::usage("invalid --port 0"));
        }
        if let Some(r) = taken_by_clone(p) {
            return Err(Error::failed(format!("port {p} is taken"))
                .because(format!("clone {} uses it", r.clone))
                .hint("pick another --port, or leave it out for a free one"));
        }
        if !port_free(p) {
            return Err(Error::failed(format!("port {p} is taken"))
                .because("another program is bound to it")
                .hint("pick another --port, or leave it out for a free one"));
        }
        return Ok(p);
    }
    // The kernel's choice (its ephemeral range): never a port a stopped production server
    // is configured for, which a fixed range could hit.
    for _ in 0..100 {
        let p = std::net::TcpListener::bind(("0.0.0.0", 0))
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .context(|| "cannot find a free port".into())?;
        if taken_by_clone(p).is_none() && port_free(p) {
            return Ok(p);
        }
    }
    Err(Error::failed("cannot find a free port").hint("pass --port N"))
}

/// --shared-buffers as PostgreSQL's setting, in kB, within what the server accepts (16
/// pages of 8kB up to INT_MAX / 2 pages).
fn shared_buffers_setting(s: &str) -> Result<String> {
    let bad = |why: String| Error::usage(format!("invalid --shared-buffers {s:?}")).because(why);
    let bytes = pgdr_core::units::parse_size(s).map_err(bad)?;
    let kb = bytes / 1024;
    if kb < 128 || kb / 8 > i32::MAX as u64 / 2 {
        return Err(bad("PostgreSQL accepts 128kB up to just under 8TB".into()));
    }
    Ok(format!("{kb}kB"))
}

/// The restore_command: as given, for --repo, or None to keep the configured one.
fn restore_command(args: &Args) -> Result<Option<String>> {
    if let Some(c) = &args.restore_command {
        if c.trim().is_empty() {
            return Err(Error::usage("empty --restore-command"));
        }
        return Ok(Some(c.clone()));
    }
    let Some(repo) = &args.repo else {
        return Ok(None);
    };
    let repo = repo.canonicalize().map_err(|e| {
        Error::failed(format!("cannot use --repo {}", repo.display()))
            .because(pgdr_core::error::clean_io_message(&e.to_string()))
    })?;
    if !repo.is_dir() {
        return Err(
            Error::failed(format!("cannot use --repo {}", repo.display()))
                .because("it is not a directory"),
        );
    }
    Ok(Some(prepare::wal_archive_command(
        &wal_archive_bin()?,
        &repo,
    )))
}

/// The restore_command the clone's own configuration sets ("" when none).
fn configured_restore_command(
    bindir: &Path,
    owner: &pgdr_core::owner::User,
    pgdata: &Path,
) -> Result<String> {
    let out = pgdr_core::owner::command_as(owner, bindir.join("postgres"))
        .arg("-D")
        .arg(pgdata)
        .args(["-C", "restore_command"])
        .output()
        .context(|| format!("cannot run {}", bindir.join("postgres").display()))?;
    if !out.status.success() {
        return Err(
            Error::failed("cannot read the clone's configuration").because(
                String::from_utf8_lossy(&out.stderr)
                    .lines()
                    .next()
                    .unwrap_or("postgres -C failed")
                    .to_string(),
            ),
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// The socket directory: inside the clone when the socket path fits the kernel's limit.
fn socket_dir(pgdata: &Path, name: &str, port: u16) -> PathBuf {
    let inside = pgdata.join("pgdr_clone");
    let sock_len = inside.as_os_str().len() + format!("/.s.PGSQL.{port}").len();
    if sock_len < 100 {
        inside
    } else {
        PathBuf::from(format!("/tmp/pgdr-clone-{name}"))
    }
}

/// What the transaction has done so far, to undo on failure.
struct Undo<'a> {
    backend: &'a Backend,
    name: String,
    cloned: bool,
    server: Option<Server>,
    socket_outside: Option<PathBuf>,
}

impl Undo<'_> {
    /// Stops what it started, destroys the clone, forgets it. Cleanup failures are added to
    /// the error (the original reason stays first).
    fn rollback(&mut self, err: Error) -> Error {
        let mut problems = Vec::new();
        if let Some(s) = &mut self.server {
            s.stop(false);
        }
        if self.cloned {
            if let Err(e) = self.backend.destroy_clone(&self.name) {
                problems.push(format!("the clone could not be destroyed: {e}"));
            }
        }
        if let Some(d) = &self.socket_outside {
            let _ = std::fs::remove_dir_all(d);
        }
        if problems.is_empty() {
            if let Err(e) = registry::remove(&self.name) {
                problems.push(format!("its record could not be removed: {e}"));
            }
        }
        if problems.is_empty() {
            return err;
        }
        let why = match &err.why {
            Some(w) => format!("{w}; {}", problems.join("; ")),
            None => problems.join("; "),
        };
        Error {
            why: Some(why),
            ..err
        }
    }
}

fn check_interrupt() -> Result<()> {
    if pgdr_core::signals::interrupted() {
        return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
    }
    Ok(())
}

fn create(args: Args, started: Instant, wait_lock: Option<Duration>) -> Result<Outcome> {
    let name = args
        .name
        .clone()
        .ok_or_else(|| Error::usage("no clone name").hint("pass --name CLONE"))?;
    pgdr_snap::meta::check_label(&name)
        .map_err(|e| Error::usage(format!("invalid --name {name:?}")).because(e))?;
    let wait = seconds("--wait", args.wait)?;
    let explicit_target = parse_target(&args)?;
    let src = source(&args)?;
    let restore = restore_command(&args)?;
    let shared_buffers = match &args.shared_buffers {
        None => None,
        Some(s) => Some(shared_buffers_setting(s)?),
    };
    let target_dir = match &args.target {
        Some(t) if t.is_absolute() => Some(t.clone()),
        Some(t) => Some(
            std::env::current_dir()
                .context(|| "cannot read the current directory".into())?
                .join(t),
        ),
        None => None,
    };
    let _name_lock = registry::lock(&name, wait_lock)?;
    if registry::read(&name)?.is_some() {
        return Err(
            Error::failed(format!("a clone named {name} exists already"))
                .hint("pick another --name, or snap-clone --destroy it first"),
        );
    }
    let backend = backend_for(&args, &src)?;
    // Held while the snapshot is chosen and cloned, so snap-prune cannot destroy it in
    // between; afterwards the clone itself protects it.
    let data_lock = pgdr_core::lock::acquire(
        &backend.lock_path(),
        &format!("data directory {}", backend.pgdata().display()),
        Some(wait_lock.unwrap_or(Duration::from_secs(30))),
    )?;
    let snaps = backend.list()?;
    let (meta, target) = match &src {
        Source::Name(n) => (
            backend.get(n)?,
            explicit_target.unwrap_or(Target::Immediate),
        ),
        Source::Stdin(m) => (
            backend.get(&m.snapshot)?,
            explicit_target.unwrap_or(Target::Immediate),
        ),
        Source::Before(t) => {
            let m = target::choose_before(&snaps, *t).cloned().ok_or_else(|| {
                let why = match snaps.first() {
                    Some(o) => format!(
                        "the oldest, {}, is consistent at {}",
                        o.snapshot,
                        rfc3339(o.consistent_time())
                    ),
                    None => "it has no snapshots made by snap-take".into(),
                };
                Error::failed(format!(
                    "no snapshot of {} is consistent before {}",
                    backend.pgdata().display(),
                    rfc3339(*t)
                ))
                .because(why)
            })?;
            (m, explicit_target.unwrap_or(Target::Time(*t)))
        }
    };
    if let Err(reason) = target::check(&meta, &target) {
        let serve = target::serving(&snaps, &target);
        let hint = if serve.is_empty() {
            "no snapshot of this data directory is that old; recover from a base backup".into()
        } else {
            format!(
                "snapshots that would serve it: {}",
                target::name_list(&serve, 5)
            )
        };
        return Err(
            Error::failed(format!("cannot clone {} to that target", meta.snapshot))
                .because(reason)
                .hint(hint),
        );
    }
    if meta.pg_version < 12 {
        return Err(
            Error::failed(format!("cannot clone {}", meta.snapshot)).because(format!(
                "it is PostgreSQL {}; snap-clone writes recovery settings the PostgreSQL 12+ way",
                meta.pg_version
            )),
        );
    }
    let bindir = pgdr_core::pgbin::bindir(Some(meta.pg_version))?;
    let records = registry::list()?;
    let port = choose_port(args.port, &records)?;
    let action = args.recovery_target_action.unwrap_or(Action::Pause);

    pgdr_core::signals::set_cooperative(true);
    let mut undo = Undo {
        backend: &backend,
        name: name.clone(),
        cloned: false,
        server: None,
        socket_outside: None,
    };
    let result = (|| -> Result<serde_json::Value> {
        check_interrupt()?;
        let info = backend.clone_snapshot(&meta, &name, target_dir.as_deref())?;
        undo.cloned = true;
        let sock = socket_dir(&info.pgdata, &name, port);
        if !sock.starts_with(&info.pgdata) {
            undo.socket_outside = Some(sock.clone());
        }
        let log = sock.join("server.log");
        let mut rec = Record {
            clone: name.clone(),
            snapshot: meta.snapshot.clone(),
            source_pgdata: meta.pgdata.clone(),
            backend: backend.kind().name().into(),
            store: match &backend {
                Backend::Btrfs(b) => Some(b.store.clone()),
                Backend::Copy(c) => Some(c.store.clone()),
                Backend::Zfs(_) => None,
            },
            location: info.location.clone(),
            root: info.root.clone(),
            path: info.pgdata.clone(),
            port,
            socket_dir: sock.clone(),
            log: log.clone(),
            pg_version: meta.pg_version,
            created: Utc::now(),
            target_type: target.kind().into(),
            target: target.display(),
            action: action.name().into(),
            state: "creating".into(),
        };
        registry::write(&rec)?;
        check_interrupt()?;
        let owner = pgdr_core::owner::data_dir_owner(&info.pgdata)?;
        let mut plan_target = Some(target);
        let restore = match restore {
            Some(r) => Some(r),
            None => {
                let configured = configured_restore_command(&bindir, &owner, &info.pgdata)?;
                if !configured.is_empty() {
                    None
                } else if target == Target::Immediate {
                    // Everything is in the snapshot's pg_wal; archive recovery still wants a
                    // command, and one that finds nothing sends it to pg_wal.
                    if meta.min_recovery_point.is_none() && meta.backup.is_none() {
                        // A crash image of a primary is consistent only at the end of its
                        // pg_wal, and "immediate" stops one record later, which no archive
                        // provides here: recover to the end and promote instead.
                        plan_target = None;
                    }
                    Some("false".into())
                } else {
                    return Err(Error::failed("no WAL archive to recover from")
                        .because("the clone's configuration has no restore_command")
                        .hint(
                            "pass --repo DIR (a wal-archive repository) or --restore-command CMD",
                        ));
                }
            }
        };
        let plan = Plan {
            clone: name.clone(),
            port,
            target: plan_target,
            action,
            restore_command: restore,
            socket_dir: sock.clone(),
            pg_version: meta.pg_version,
            shared_buffers: shared_buffers.clone(),
        };
        prepare::prepare(&info.pgdata, &info.root, &meta, &plan, &owner)?;
        check_interrupt()?;
        let mut reached = None;
        if args.start {
            let s = undo.server.insert(Server::new(
                &info.pgdata,
                &bindir,
                &owner,
                &sock,
                port,
                &log,
                meta.pg_version,
            ));
            s.start()?;
            reached = Some(server::wait_reached(s, action == Action::Promote, wait)?);
        }
        rec.state = "ready".into();
        registry::write(&rec)?;
        Ok(json!({
            "clone": name,
            "path": info.pgdata,
            "port": port,
            "snapshot": meta.snapshot,
            "backend": backend.kind().name(),
            "location": info.location,
            "socket_dir": sock,
            "log": log,
            "started": args.start,
            "recovery": {
                "target": target.display(),
                "target_type": target.kind(),
                "action": action.name(),
                "reached_lsn": reached.as_ref().and_then(|r| r.lsn.clone()),
                "reached_time": reached.as_ref().and_then(|r| r.time.clone()),
                "state": reached.as_ref().map(|r| r.state.clone()).unwrap_or_else(|| "configured".into()),
            },
        }))
    })();
    drop(data_lock);
    match result {
        Ok(mut doc) => {
            if let Some(s) = undo.server.take() {
                s.detach();
            }
            doc["seconds"] = json!((started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0);
            Outcome::json(doc)
        }
        Err(e) => {
            let e = match &undo.server {
                Some(s) if !e.to_string().contains("server log:") => {
                    let tail = s.log_tail(5);
                    let why = match &e.why {
                        Some(w) if !tail.is_empty() => format!("{w}; server log: {tail}"),
                        Some(w) => w.clone(),
                        None => format!("server log: {tail}"),
                    };
                    Error {
                        why: Some(why),
                        ..e
                    }
                }
                _ => e,
            };
            Err(undo.rollback(e))
        }
    }
}

fn list(args: &Args) -> Result<Outcome> {
    let filter = match &args.pgdata {
        Some(p) => Some(pgdr_snap::sys::check_data_dir(p)?),
        None => None,
    };
    let mut out = Vec::new();
    for r in registry::list()? {
        if filter.as_ref().is_some_and(|f| *f != r.source_pgdata) {
            continue;
        }
        let pid = server::running_pid(&r.path);
        out.push(json!({
            "clone": r.clone,
            "snapshot": r.snapshot,
            "source_pgdata": r.source_pgdata,
            "backend": r.backend,
            "location": r.location,
            "path": r.path,
            "port": r.port,
            "socket_dir": r.socket_dir,
            "running": pid.is_some(),
            "pid": pid,
            "exists": r.path.is_dir(),
            "state": r.state,
            "created": rfc3339(r.created),
            "recovery": {"target": r.target, "target_type": r.target_type, "action": r.action},
        }));
    }
    Outcome::json(json!({ "clones": out }))
}

fn destroy(name: &str, wait_lock: Option<Duration>) -> Result<Outcome> {
    pgdr_snap::meta::check_label(name)
        .map_err(|e| Error::usage(format!("invalid --destroy {name:?}")).because(e))?;
    let _lock = registry::lock(name, wait_lock)?;
    let rec = registry::read(name)?.ok_or_else(|| {
        Error::failed(format!("no clone named {name}"))
            .because("snap-clone did not create it (it has no record in the clone registry)")
            .hint("snap-clone --list shows the clones it made")
    })?;
    let kind = BackendKind::parse(&rec.backend).ok_or_else(|| {
        Error::failed(format!(
            "clone record {name} names backend {:?}",
            rec.backend
        ))
    })?;
    let backend = Backend::detect(&rec.source_pgdata, Some(kind), rec.store.as_deref())?;
    let known = backend.clones()?.into_iter().any(|c| c.clone == name);
    let mut stopped = false;
    if server::running_pid(&rec.path).is_some() {
        let owner = pgdr_core::owner::data_dir_owner(&rec.path)?;
        let bindir = pgdr_core::pgbin::bindir(Some(rec.pg_version))?;
        let mut s = Server::new(
            &rec.path,
            &bindir,
            &owner,
            &rec.socket_dir,
            rec.port,
            &rec.log,
            rec.pg_version,
        );
        s.stop(true);
        stopped = true;
    }
    let existed = known || rec.root.exists();
    if known {
        backend.destroy_clone(name)?;
    } else if rec.root.exists() {
        return Err(Error::failed(format!("cannot destroy clone {name}"))
            .because(format!(
                "{} exists but the {} backend does not list it as a clone snap-clone made",
                rec.root.display(),
                rec.backend
            ))
            .hint("remove it by hand if it is yours"));
    }
    if !rec.socket_dir.starts_with(&rec.path) {
        let _ = std::fs::remove_dir_all(&rec.socket_dir);
    }
    registry::remove(name)?;
    Outcome::json(json!({
        "destroyed": name,
        "snapshot": rec.snapshot,
        "path": rec.path,
        "location": rec.location,
        "stopped": stopped,
        "existed": existed,
    }))
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "The clone was made (and with --start, recovery reached the target); or --list/--destroy succeeded."),
        (1, "It failed or was refused (no such snapshot, a target before the snapshot's consistent point, port taken, the server failed or stopped during recovery, --wait ran out, SIGINT/SIGTERM); the server it started was stopped and the clone destroyed. The message ends with the last lines of the server log."),
        (2, "Usage error: bad arguments, a malformed snapshot object on stdin, or (without --pgdata) snapshots of several data directories found."),
        (75, "Another snap-clone run holds the lock of this clone name, or snap-take/snap-prune holds the data directory's lock longer than --wait-lock (default 30 seconds for the latter)."),
    ],
    documents: &[],
    json_output: "A clone: {\"clone\", \"path\" (its data directory), \"port\", \"snapshot\", \"backend\", \"location\" (zfs dataset or directory), \"socket_dir\", \"log\", \"started\", \"recovery\": {\"target\" (RFC 3339 time, LSN or \"immediate\"), \"target_type\": \"time|lsn|immediate\", \"action\": \"pause|promote\", \"reached_lsn\" and \"reached_time\" (pg_last_wal_replay_lsn() and pg_last_xact_replay_timestamp() once reached; null without --start), \"state\": \"paused|promoted|configured\"}, \"seconds\"}.\n--list: {\"clones\": [{\"clone\", \"snapshot\", \"source_pgdata\", \"backend\", \"location\", \"path\", \"port\", \"socket_dir\", \"running\", \"pid\", \"exists\", \"state\": \"creating|ready\", \"created\", \"recovery\": {\"target\", \"target_type\", \"action\"}}]}.\n--destroy: {\"destroyed\", \"snapshot\", \"path\", \"location\", \"stopped\", \"existed\"}.",
    examples: &[
        ("The port of a paused server as of 17:28:37 (+08), from the newest snapshot before it, wherever snap-take stored it (one data directory's snapshots on ZFS or btrfs):", "snap-clone --before '2026-03-21 17:28:37+08' --name drill --repo /zpdata02/wal --start | jq .port"),
        ("A paused, queryable server as of 09:28 from the newest snapshot before it and the wal-archive repository:", "snap-clone --pgdata /zpdata01/pg --before '2026-03-21T09:28:00Z' --name drill --repo /zpdata02/wal --start"),
        ("A read-write copy of a snapshot's own moment on port 6543:", "snap-clone --pgdata /zpdata01/pg --snapshot pgdr-20260321T090000Z --name qa --recovery-target-action promote --port 6543 --start"),
        ("Clone what snap-take just took:", "snap-take --pgdata /zpdata01/pg | snap-clone - --name latest --start"),
        ("Every clone, then remove one:", "snap-clone --list --pretty; snap-clone --destroy drill"),
    ],
    extra_sections: &[
        (
            "CONSISTENT POINT",
            "A recovery can only stop once the copy is consistent. For a time target that is the moment the snapshot had completed (consistent_at in its metadata; without it, two seconds after its name's time); for an LSN target the snapshot's checkpoint, a standby's minimum recovery point and a backup's stop LSN. --before T picks the newest snapshot consistent at or before T. A target before a snapshot's consistent point is refused, naming the snapshots that would serve it. A target beyond the end of the archive makes PostgreSQL stop with \"recovery ended before configured recovery target was reached\"; with --start that rolls the clone back.",
        ),
        (
            "CLONE REGISTRY",
            "Every clone has a JSON record in $PGDR_CLONE_DIR (default /var/lib/pgdr/clones for root, ${XDG_STATE_HOME:-~/.local/state}/pgdr/clones otherwise): name, snapshot, source data directory, backend and store, location, path, port, socket directory, log, target. NAME.lock beside it is the per-clone lock. The snapshot library records the clone too (the pgdr:clone property on the ZFS dataset, clones/NAME.json in the btrfs or copy store), which is how snap-prune skips snapshots that have clones. --destroy refuses a name without a record, and a path the backend does not list as its clone.",
        ),
        (
            "FILES",
            "The clone's socket directory is pgdr_clone/ inside its data directory (or /tmp/pgdr-clone-NAME when that path would be too long for a Unix socket), holding server.log, the log of the server --start runs. With --start and no --repo or --restore-command, the restore_command of the copied configuration is kept; with none there, an immediate target uses 'false' (the snapshot's pg_wal holds what it needs) and any other target is refused. A crash image of a primary is consistent only at the end of its pg_wal and PostgreSQL stops an immediate target one record later, so without an archive such a clone recovers to the end of its WAL and is promoted (state \"promoted\").",
        ),
    ],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("snap-clone", run)
}
