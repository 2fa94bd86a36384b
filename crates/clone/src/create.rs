//! Making a clone, as one transaction: choose the snapshot, clone it, record it, prepare it
//! to recover to the target without touching production, start it as the owner and wait
//! until recovery reached the target. If any step fails (or SIGINT/SIGTERM arrives), the
//! server it started is stopped, the clone destroyed and forgotten.

use crate::doc::{CloneReport, Recovery};
use crate::prepare::{self, Action, Plan};
use crate::server::{self, Goal, Server};
use crate::target::{self, Target};
use chrono::{DateTime, SecondsFormat, Utc};
use pgdr_core::{Context, Error, Result};
use pgdr_snap::backend::discover;
use pgdr_snap::registry::{CloneRecord, Registry, ServerRecord};
use pgdr_snap::{Backend, BackendKind, SnapshotMeta};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Which snapshot, as asked.
#[derive(Debug, Clone)]
pub enum Source {
    /// `--snapshot NAME`.
    Name(String),
    /// `--before T`: the newest snapshot consistent at or before T.
    Before(DateTime<Utc>),
    /// `-`: the snapshot snap-take printed.
    Document(Box<SnapshotMeta>),
}

/// Everything a clone is made from.
#[derive(Debug, Clone)]
pub struct CreateRequest {
    pub source: Source,
    /// The data directory whose snapshots to use; None to search for them.
    pub pgdata: Option<PathBuf>,
    pub backend: Option<BackendKind>,
    /// The snapshot store (btrfs and copy), or the only place searched without pgdata.
    pub snapshot_dir: Option<PathBuf>,
    /// The clone's name (already checked).
    pub name: String,
    /// Where the clone's root goes (absolute; must not exist), or the backend's place.
    pub target_dir: Option<PathBuf>,
    /// The port, or None for a free one.
    pub port: Option<u16>,
    /// The recovery target, or None for the default (immediate, or the --before time).
    pub target: Option<Target>,
    pub action: Action,
    /// The restore_command, or None to keep the configured one.
    pub restore_command: Option<String>,
    /// shared_buffers for the clone (PostgreSQL's syntax).
    pub shared_buffers: Option<String>,
    /// Start the server and wait until recovery reached the target.
    pub start: bool,
    /// With `start`: give up after this long.
    pub wait: Option<Duration>,
    pub wait_lock: Option<Duration>,
    pub registry: Registry,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// The backend holding the snapshots: from snap-take's document, --pgdata, or found.
fn backend_for(req: &CreateRequest) -> Result<Backend> {
    if let Source::Document(m) = &req.source {
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
    let Some(pgdata) = &req.pgdata else {
        return discovered(req);
    };
    let pgdata = pgdr_snap::datadir::check_data_dir(pgdata)?;
    Backend::detect(&pgdata, req.backend, req.snapshot_dir.as_deref())
}

/// Without --pgdata: the one data directory whose snapshots snap-take's stores hold (every
/// imported ZFS pool, every mounted btrfs filesystem, or the --snapshot-dir store). With
/// --snapshot only the snapshots of that name count.
fn discovered(req: &CreateRequest) -> Result<Backend> {
    let d = discover::discover(req.snapshot_dir.as_deref())?;
    let mut found: Vec<_> = d
        .found
        .into_iter()
        .filter(|f| !matches!(req.backend, Some(k) if k != f.kind))
        .collect();
    if let Source::Name(n) = &req.source {
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
            let what = match &req.source {
                Source::Name(n) => format!("no snapshot {n} made by snap-take found"),
                _ => "no snapshot made by snap-take found".into(),
            };
            let mut searched = match &req.snapshot_dir {
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

fn choose_port(given: Option<u16>, records: &[CloneRecord]) -> Result<u16> {
    let taken_by_clone = |p: u16| {
        records
            .iter()
            .find(|r| r.server.as_ref().is_some_and(|s| s.port == p))
    };
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
    registry: &'a Registry,
    clone: Option<CloneRecord>,
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
        if let Some(rec) = &self.clone {
            match self.backend.remove_clone(rec) {
                Ok(()) => {
                    if let Err(e) = self.registry.remove(&rec.clone) {
                        problems.push(format!("its record could not be removed: {e}"));
                    }
                }
                Err(e) => problems.push(format!("the clone could not be destroyed: {e}")),
            }
        }
        if let Some(d) = &self.socket_outside {
            let _ = std::fs::remove_dir_all(d);
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

/// Makes the clone.
///
/// # Errors
/// No snapshot serves the request, the name or port is taken, a lock is held (exit 75), or a
/// step failed (the clone was rolled back).
pub fn run(req: &CreateRequest) -> Result<CloneReport> {
    let started = Instant::now();
    let name = &req.name;
    let registry = &req.registry;
    if registry.read(name)?.is_some() {
        return Err(
            Error::failed(format!("a clone named {name} exists already"))
                .hint("pick another --name, or snap-clone --destroy it first"),
        );
    }
    let backend = backend_for(req)?;
    // The registry is created for the data directory's owner before the name's lock, which
    // lives in it.
    if let Some(owner) = pgdr_snap::registry::ids_of(backend.pgdata()) {
        registry.ensure(owner)?;
    }
    let _name_lock = registry.lock(name, req.wait_lock)?;
    if registry.read(name)?.is_some() {
        return Err(
            Error::failed(format!("a clone named {name} exists already"))
                .hint("pick another --name, or snap-clone --destroy it first"),
        );
    }
    // Held while the snapshot is chosen and cloned, so snap-prune cannot destroy it in
    // between; afterwards the clone itself protects it.
    let data_lock = backend.lock(Some(req.wait_lock.unwrap_or(Duration::from_secs(30))))?;
    let snaps = backend.list()?;
    let (meta, target) = match &req.source {
        Source::Name(n) => (backend.get(n)?, req.target.unwrap_or(Target::Immediate)),
        Source::Document(m) => (
            backend.get(&m.snapshot)?,
            req.target.unwrap_or(Target::Immediate),
        ),
        Source::Before(t) => {
            let m = target::choose_before(&snaps, *t).cloned().ok_or_else(|| {
                let why = match snaps.first() {
                    Some(o) => format!(
                        "the oldest, {}, is consistent at {}",
                        o.snapshot,
                        rfc3339(o.consistent_at)
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
            (m, req.target.unwrap_or(Target::Time(*t)))
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
    let port = choose_port(req.port, &registry.list()?)?;
    let mut action = req.action;

    pgdr_core::signals::set_cooperative(true);
    let mut undo = Undo {
        backend: &backend,
        registry,
        clone: None,
        server: None,
        socket_outside: None,
    };
    let result = (|| -> Result<CloneReport> {
        check_interrupt()?;
        let mut rec = backend.clone_snapshot(registry, &meta, name, req.target_dir.as_deref())?;
        undo.clone = Some(rec.clone());
        let sock = socket_dir(&rec.path, name, port);
        if !sock.starts_with(&rec.path) {
            undo.socket_outside = Some(sock.clone());
        }
        let log = sock.join("server.log");
        rec.server = Some(ServerRecord {
            port,
            socket_dir: sock.clone(),
            log: log.clone(),
            pg_version: meta.pg_version,
            target_type: target.kind().into(),
            target: target.display(),
            action: action.name().into(),
        });
        registry.write(&rec)?;
        check_interrupt()?;
        let owner = pgdr_core::owner::data_dir_owner(&rec.path)?;
        let mut plan_target = target;
        let restore = match &req.restore_command {
            Some(r) => Some(r.clone()),
            None => {
                let configured = configured_restore_command(&bindir, &owner, &rec.path)?;
                if !configured.is_empty() {
                    None
                } else if target == Target::Immediate {
                    // Everything is in the snapshot's pg_wal; archive recovery still wants a
                    // command, and one that finds nothing sends it to pg_wal.
                    if meta.min_recovery_point.is_none() && meta.backup.is_none() {
                        // A crash image of a primary is consistent only at the end of its
                        // pg_wal, and "immediate" stops one record later, which no archive
                        // provides here: recover to the end and promote instead.
                        plan_target = Target::Latest;
                        action = Action::Promote;
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
            shared_buffers: req.shared_buffers.clone(),
        };
        prepare::prepare(&rec.path, &rec.root, &meta, &plan, &owner)?;
        check_interrupt()?;
        let mut reached = None;
        if req.start {
            let s = undo.server.insert(Server::new(
                &rec.path,
                &bindir,
                &owner,
                &sock,
                port,
                &log,
                meta.pg_version,
            ));
            s.start()?;
            let goal = match (plan.standby_mode(), action) {
                (true, _) => Goal::EndOfWal,
                (false, Action::Promote) => Goal::Promoted,
                (false, Action::Pause) => Goal::Paused,
            };
            reached = Some(server::wait_reached(s, goal, &target.display(), req.wait)?);
        }
        rec.state = "ready".into();
        registry.write(&rec)?;
        let reached_lsn = match reached.as_ref().and_then(|r| r.lsn.as_deref()) {
            Some(l) => Some(
                l.parse()
                    .map_err(|e| Error::failed("cannot read the clone's replay LSN").because(e))?,
            ),
            None => None,
        };
        let reached_time = match reached.as_ref().and_then(|r| r.time.as_deref()) {
            Some(t) => Some(
                target::parse_time(t)
                    .map_err(|e| Error::failed("cannot read the clone's replay time").because(e))?,
            ),
            None => None,
        };
        Ok(CloneReport {
            clone: name.clone(),
            path: rec.path.clone(),
            port,
            snapshot: meta.snapshot.clone(),
            backend: backend.kind().name().into(),
            location: rec.location.clone(),
            socket_dir: sock,
            log,
            started: req.start,
            recovery: Recovery {
                target: target.display(),
                target_type: target.kind().into(),
                action: action.name().into(),
                reached_lsn,
                reached_time,
                state: reached
                    .map(|r| r.state)
                    .unwrap_or_else(|| "configured".into()),
            },
            seconds: 0.0,
        })
    })();
    drop(data_lock);
    match result {
        Ok(mut doc) => {
            if let Some(s) = undo.server.take() {
                s.detach();
            }
            doc.seconds = (started.elapsed().as_secs_f64() * 1000.0).round() / 1000.0;
            Ok(doc)
        }
        Err(e) => {
            let readable = e.what.starts_with("cannot recover to");
            let e = match &undo.server {
                Some(s) if !readable && !e.to_string().contains("server log:") => {
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
