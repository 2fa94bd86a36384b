//! What every clone shares once its storage exists, whether a clone of a local snapshot
//! ([`crate::create`]) or a directory an image was restored into ([`crate::from_image`]):
//! the port, the socket directory, the recovery settings (prepare), the start and the wait,
//! and the transaction around it all: on failure the server is stopped, the clone removed
//! and forgotten, and the error carries the end of the server log.

use crate::doc::{CloneReport, Recovery};
use crate::prepare::{self, Action, Plan};
use crate::replay::{self, Policy};
use crate::server::{self, Goal, Server};
use crate::target::{self, Target};
use pgdr_core::{Context, Error, Result};
use pgdr_snap::registry::{CloneRecord, Registry, ServerRecord};
use pgdr_snap::{Backend, SnapshotMeta};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

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

/// The clone's port: the one given, when free and no clone's; else one the kernel picks.
///
/// # Errors
/// The given port is taken (or 0), or no free port was found.
pub(crate) fn choose_port(given: Option<u16>, records: &[CloneRecord]) -> Result<u16> {
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

/// Where a clone's storage comes from, to remove it again.
pub(crate) enum Storage<'a> {
    /// A clone of a snapshot of this backend.
    Backend(&'a Backend),
    /// A directory an image was restored into.
    Directory,
}

impl Storage<'_> {
    fn remove(&self, rec: &CloneRecord) -> Result<()> {
        match self {
            Storage::Backend(b) => b.remove_clone(rec),
            Storage::Directory => match std::fs::remove_dir_all(&rec.root) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    Err(e).context(|| format!("cannot remove {}", rec.root.display()))
                }
                _ => Ok(()),
            },
        }
    }
}

/// What the transaction has done so far, to undo on failure.
pub(crate) struct Undo<'a> {
    pub storage: Storage<'a>,
    pub registry: &'a Registry,
    pub clone: Option<CloneRecord>,
    pub server: Option<Server>,
    pub socket_outside: Option<PathBuf>,
}

impl Undo<'_> {
    pub fn new<'a>(storage: Storage<'a>, registry: &'a Registry) -> Undo<'a> {
        Undo {
            storage,
            registry,
            clone: None,
            server: None,
            socket_outside: None,
        }
    }

    /// Stops what it started, destroys the clone, forgets it. Cleanup failures are added to
    /// the error (the original reason stays first).
    fn rollback(&mut self, err: Error) -> Error {
        let mut problems = Vec::new();
        if let Some(s) = &mut self.server {
            s.stop(false);
        }
        if let Some(rec) = &self.clone {
            match self.storage.remove(rec) {
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

pub(crate) fn check_interrupt() -> Result<()> {
    if pgdr_core::signals::interrupted() {
        return Err(Error::failed("interrupted").because("SIGINT or SIGTERM arrived"));
    }
    Ok(())
}

/// What the shared part of making a clone needs.
pub(crate) struct Setup<'a> {
    pub name: String,
    pub meta: &'a SnapshotMeta,
    pub target: Target,
    pub action: Action,
    pub port: u16,
    pub bindir: PathBuf,
    /// None keeps the restore_command the copied configuration has.
    pub restore_command: Option<String>,
    pub shared_buffers: Option<String>,
    /// The settings the recovering start gets ([`crate::replay`]).
    pub replay: Policy,
    pub start: bool,
    pub wait: Option<Duration>,
    pub registry: &'a Registry,
    /// The report's backend: zfs, btrfs, copy, or image.
    pub backend_name: &'a str,
    /// The record stays `creating`: the clone lives only for its run
    /// ([`crate::create::CreateRequest::temporary`]).
    pub temporary: bool,
    /// The newest timeline of the WAL it recovers from, when newer than the snapshot's.
    pub newest: Option<&'a crate::timeline::Newest>,
}

/// Where a crash image is consistent, read from the clone's own pg_wal when its metadata does
/// not say (snapshots taken before snap-take recorded wal_end): the end of the WAL there
/// ([`pgdr_snap::wal_end`]), for an atomic snapshot of a primary; else the metadata's point.
fn consistent_in_clone(pgdata: &Path, meta: &SnapshotMeta) -> pgdr_pgformat::Lsn {
    let known = meta.consistent_lsn();
    if meta.wal_end.is_some() || meta.method != "atomic" || meta.min_recovery_point.is_some() {
        return known;
    }
    let crashed = std::fs::read(pgdata.join("global/pg_control"))
        .ok()
        .and_then(|b| pgdr_pgformat::control::parse(&b).ok())
        .is_some_and(|c| c.state != "shut down");
    if !crashed {
        return known;
    }
    pgdr_snap::wal_end::wal_end(
        &pgdata.join("pg_wal"),
        meta.redo_lsn,
        meta.timeline,
        meta.wal_segment_size,
    )
    .ok()
    .flatten()
    .map_or(known, |e| known.max(e))
}

/// The checks of [`crate::target::check`] and [`crate::timeline::snapshot_fits`] again, with
/// the consistent point the clone's pg_wal gives: a refusal here, before the first start,
/// is one line instead of PostgreSQL's FATAL (or, after a failover, a clone that silently
/// kept the abandoned timeline's changes).
fn check_consistent_point(pgdata: &Path, s: &Setup) -> Result<()> {
    let meta = s.meta;
    let at = consistent_in_clone(pgdata, meta);
    if at == meta.consistent_lsn() {
        return Ok(());
    }
    let why = match s.target {
        Target::Lsn(l) if l < at => Some(format!(
            "the recovery target {l} is before {}'s consistent point {at}, the end of the WAL in \
             its pg_wal, which crash recovery replays first (requested recovery stop point is \
             before consistent recovery point)",
            meta.snapshot
        )),
        _ => None,
    }
    .or_else(|| {
        s.newest
            .and_then(|n| crate::timeline::fits(n, meta.timeline, at).err())
    });
    match why {
        None => Ok(()),
        Some(why) => Err(Error::failed(format!("cannot clone {}", meta.snapshot))
            .because(why)
            .hint("clone an older snapshot (--snapshot NAME, or --before an earlier time)")),
    }
}

/// From a fresh clone, recorded as `rec` (and in `undo`), to a configured server, started
/// and at its target with `s.start`.
///
/// # Errors
/// A step failed; the caller rolls back with [`conclude`].
pub(crate) fn configure_and_start(
    undo: &mut Undo,
    mut rec: CloneRecord,
    s: &Setup,
) -> Result<CloneReport> {
    let (port, target, registry) = (s.port, s.target, s.registry);
    let mut action = s.action;
    let sock = socket_dir(&rec.path, &s.name, port);
    if !sock.starts_with(&rec.path) {
        undo.socket_outside = Some(sock.clone());
    }
    let log = sock.join("server.log");
    rec.server = Some(ServerRecord {
        port,
        socket_dir: sock.clone(),
        log: log.clone(),
        pg_version: s.meta.pg_version,
        target_type: target.kind().into(),
        target: target.display(),
        action: action.name().into(),
    });
    registry.write(&rec)?;
    check_interrupt()?;
    let owner = pgdr_core::owner::data_dir_owner(&rec.path)?;
    let mut plan_target = target;
    let restore = match &s.restore_command {
        Some(r) => Some(r.clone()),
        None => {
            let configured = configured_restore_command(&s.bindir, &owner, &rec.path)?;
            if !configured.is_empty() {
                None
            } else if target == Target::Immediate {
                // Everything is in the snapshot's pg_wal; archive recovery still wants a
                // command, and one that finds nothing sends it to pg_wal.
                if s.meta.min_recovery_point.is_none() && s.meta.backup.is_none() {
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
                    .hint("pass --repo DIR (a wal-archive repository) or --restore-command CMD"));
            }
        }
    };
    let plan = Plan {
        clone: s.name.clone(),
        port,
        target: plan_target,
        action,
        restore_command: restore,
        socket_dir: sock.clone(),
        pg_version: s.meta.pg_version,
        shared_buffers: s.shared_buffers.clone(),
    };
    prepare::prepare(&rec.path, &rec.root, s.meta, &plan, &owner)?;
    check_consistent_point(&rec.path, s)?;
    check_interrupt()?;
    let mut reached = None;
    let mut replay_settings = Vec::new();
    let mut handed_back = true;
    if s.start {
        if s.replay != Policy::Off {
            // --shared-buffers is in the configuration already: the user's choice stays.
            let own = match &s.shared_buffers {
                Some(_) => None,
                None => Some(replay::own_shared_buffers(&s.bindir, &owner, &rec.path)?),
            };
            replay_settings = replay::settings(s.meta.pg_version, own, replay::available_memory());
        }
        let srv = undo.server.insert(Server::new(
            &rec.path,
            &s.bindir,
            &owner,
            &sock,
            port,
            &log,
            s.meta.pg_version,
        ));
        srv.start(&replay_settings)?;
        let goal = match (plan.standby_mode(), action) {
            (true, _) => Goal::EndOfWal,
            (false, Action::Promote) => Goal::Promoted,
            (false, Action::Pause) => Goal::Paused,
        };
        let got = server::wait_reached(srv, goal, &target.display(), s.wait)?;
        handed_back = replay_settings.is_empty();
        if !handed_back {
            let raised = replay_settings.iter().any(|(n, _)| n == "shared_buffers");
            if got.state == "promoted" && raised && s.replay == Policy::Recovery {
                // Recovery is over and the clone is one to keep: it gets the snapshot's own
                // memory back (only a restart changes shared_buffers). The checkpoint writes
                // what replay left in the buffers now, so the shutdown has nothing to wait on.
                srv.execute("CHECKPOINT")?;
                srv.stop(true);
                srv.start(&[])?;
                server::wait_reached(srv, Goal::Promoted, &target.display(), s.wait)?;
                handed_back = true;
            } else {
                srv.forget_start_options()?;
            }
        }
        reached = Some(got);
    }
    if !s.temporary {
        rec.state = "ready".into();
        registry.write(&rec)?;
    }
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
        clone: s.name.clone(),
        path: rec.path.clone(),
        port,
        snapshot: s.meta.snapshot.clone(),
        backend: s.backend_name.into(),
        location: rec.location.clone(),
        socket_dir: sock,
        log,
        started: s.start,
        recovery: Recovery {
            target: target.display(),
            target_type: target.kind().into(),
            action: action.name().into(),
            reached_lsn,
            reached_time,
            state: reached
                .map(|r| r.state)
                .unwrap_or_else(|| "configured".into()),
            replay_settings: replay_settings.into_iter().collect(),
            settings_handed_back: handed_back,
        },
        seconds: 0.0,
    })
}

/// The end of the transaction: on success the server keeps running on its own and the report
/// gets its duration; on failure the end of the server log joins the error (unless it is
/// already one readable line) and everything is undone.
///
/// # Errors
/// `result`'s error, after the rollback.
pub(crate) fn conclude(
    result: Result<CloneReport>,
    mut undo: Undo,
    started: Instant,
) -> Result<CloneReport> {
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
