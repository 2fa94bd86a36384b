//! Making a clone, as one transaction: choose the snapshot, clone it, record it, prepare it
//! to recover to the target without touching production, start it as the owner and wait
//! until recovery reached the target. If any step fails (or SIGINT/SIGTERM arrives), the
//! server it started is stopped, the clone destroyed and forgotten. A clone from an image in
//! a repository is [`crate::from_image`]; both share [`crate::setup`].

use crate::doc::CloneReport;
use crate::prepare::Action;
use crate::setup::{
    check_interrupt, choose_port, conclude, configure_and_start, Setup, Storage, Undo,
};
use crate::target::{self, Target};
use chrono::{DateTime, SecondsFormat, Utc};
use pgdr_core::lock::LockGuard;
use pgdr_core::{Error, Result};
use pgdr_snap::backend::discover;
use pgdr_snap::registry::{CloneRecord, Registry};
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
    /// `--latest`: the newest one.
    Latest,
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
    /// The repository of `restore_command` when pgdr wrote it (`--repo`), checked before a
    /// local snapshot is cloned: the snapshot's database system, and for an encrypted one an
    /// identity file ($PGDR_IDENTITY) of the clone server's own (`check_wal_repo`).
    pub wal_repo: Option<PathBuf>,
    /// shared_buffers for the clone (PostgreSQL's syntax), written into its configuration.
    pub shared_buffers: Option<String>,
    /// The settings its recovery runs with ([`crate::replay`]).
    pub replay: crate::replay::Policy,
    /// Start the server and wait until recovery reached the target.
    pub start: bool,
    /// With `start`: give up after this long.
    pub wait: Option<Duration>,
    pub wait_lock: Option<Duration>,
    pub registry: Registry,
    /// Restore an image of this repository instead of cloning a local snapshot.
    pub image_repo: Option<PathBuf>,
    /// With `image_repo`: concurrent transfers of the restore.
    pub parallel: usize,
    /// A clone that lives only for its run (`--into`'s): its record stays `creating` and
    /// [`make`] hands back its name's lock, which the run holds until it destroys the clone
    /// (or keeps it), so a killed run's clone is found and removed ([`crate::leftovers`]).
    pub temporary: bool,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// How to word what is chosen from.
pub(crate) struct Among<'a> {
    /// "snapshot" or "image".
    pub noun: &'a str,
    /// "of /zpdata01/pg", "in repository /backup/pg".
    pub of: String,
    /// Why a name is not found.
    pub missing: &'a str,
    /// Why --before found nothing when there is nothing at all.
    pub none: &'a str,
    /// What to do when nothing is old enough for the target.
    pub older: &'a str,
    /// The newest timeline of the WAL the clone recovers from, when newer than a snapshot's.
    pub newest: Option<&'a crate::timeline::Newest>,
}

/// The snapshot (of `snaps`, oldest first) the source names and the recovery target (its
/// default: immediate, or the --before time), checked: the snapshot serves the target and its
/// PostgreSQL is one snap-clone configures.
///
/// # Errors
/// Nothing is named so, nothing is consistent early enough, the target is before the
/// snapshot's consistent point (naming the ones that would serve it), or an old major.
pub(crate) fn choose(
    all: &[SnapshotMeta],
    source: &Source,
    target: Option<Target>,
    among: &Among,
) -> Result<(SnapshotMeta, Target)> {
    let Among { noun, of, .. } = among;
    // After a failover only the snapshots on the newest timeline's history are candidates
    // (crate::timeline); one named outright that is not is refused with the reason.
    let off = |m: &SnapshotMeta| {
        among
            .newest
            .and_then(|n| crate::timeline::snapshot_fits(n, m).err())
    };
    let on: Vec<SnapshotMeta> = all.iter().filter(|m| off(m).is_none()).cloned().collect();
    let snaps = &on[..];
    let left_out = all.len() - on.len();
    let named = |n: &str| {
        let m = all
            .iter()
            .find(|m| m.snapshot == n)
            .cloned()
            .ok_or_else(|| Error::failed(format!("no {noun} {n} {of}")).because(among.missing))?;
        match off(&m) {
            None => Ok(m),
            Some(why) => Err(Error::failed(format!("cannot clone {n}"))
                .because(why)
                .hint(format!(
                    "clone {} {noun} taken before the switch, or one taken since on the new \
                     timeline",
                    if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
                        "an"
                    } else {
                        "a"
                    }
                ))),
        }
    };
    let newer_timeline = |e: Error| {
        if left_out == 0 {
            return e;
        }
        let n = among.newest.map_or(0, |n| n.timeline);
        e.hint(format!(
            "{left_out} {noun}(s) {of} are not on the history of timeline {n}, the newest in the \
             repository (taken on a timeline abandoned at a failover): they are not candidates"
        ))
    };
    let (meta, target) = match source {
        Source::Name(n) => (named(n)?, target.unwrap_or(Target::Immediate)),
        Source::Document(m) => (named(&m.snapshot)?, target.unwrap_or(Target::Immediate)),
        Source::Latest => {
            let m = snaps
                .iter()
                .max_by_key(|m| (m.consistent_at, m.created))
                .cloned()
                .ok_or_else(|| {
                    newer_timeline(Error::failed(format!("no {noun} {of}")).because(among.none))
                })?;
            (m, target.unwrap_or(Target::Immediate))
        }
        Source::Before(t) => {
            let m = target::choose_before(snaps, *t).cloned().ok_or_else(|| {
                let why = match snaps.first() {
                    Some(o) => format!(
                        "the oldest, {}, is consistent at {}",
                        o.snapshot,
                        rfc3339(o.consistent_at)
                    ),
                    None => among.none.to_string(),
                };
                newer_timeline(
                    Error::failed(format!(
                        "no {noun} {of} is consistent before {}",
                        rfc3339(*t)
                    ))
                    .because(why),
                )
            })?;
            (m, target.unwrap_or(Target::Time(*t)))
        }
    };
    if let Err(reason) = target::check(&meta, &target) {
        let serve = target::serving(snaps, &target);
        let hint = if serve.is_empty() {
            among.older.to_string()
        } else {
            format!(
                "{noun}s that would serve it: {}",
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
    Ok((meta, target))
}

/// The newest timeline in `repo` newer than the oldest timeline of `snaps` (what the clone's
/// recovery_target_timeline = latest will follow), with its history.
///
/// # Errors
/// A history file in the repository cannot be read.
pub(crate) fn newest_of(
    repo: &pgdr_repo::repo::Repo,
    snaps: &[SnapshotMeta],
) -> Result<Option<crate::timeline::Newest>> {
    let Some(from) = snaps.iter().map(|m| m.timeline).min() else {
        return Ok(None);
    };
    let newest = crate::timeline::newest(repo, from)?;
    let top = newest.as_ref().map_or(from, |n| n.timeline);
    if let Some(next) = pgdr_repo::timeline::unfollowable(repo, top)? {
        return Err(Error::failed(format!(
            "cannot choose what to clone from {}",
            repo.location()
        ))
        .because(format!(
            "it holds WAL of timeline {next} but not {next:08X}.history, so recovery cannot \
             follow it and would end on timeline {top} (PostgreSQL finds timelines by their \
             history files)"
        ))
        .hint(format!(
            "push the history of the server that began timeline {next}: wal-archive push \
             PGDATA/pg_wal/{next:08X}.history --repo {}",
            repo.location()
        )));
    }
    Ok(newest)
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

/// The database system (pg_control's system identifier, as snapshots record it) whose WAL
/// the repository `repo` holds; None while it is bound to none.
///
/// # Errors
/// The repository cannot be opened.
pub(crate) fn repo_system(repo: &Path) -> Result<Option<String>> {
    let r = pgdr_repo::repo::Repo::open(repo)?;
    Ok(r.identity().map(|id| id.system_identifier.to_string()))
}

/// Whether a snapshot found on this host can serve a clone for `source` recovering from
/// the WAL of database system `system` (the repository's, when there is one): it is of that
/// system (the WAL of another cannot recover it, and `check_wal_repo` would refuse it), and
/// it has the name asked for, or is consistent by the --before time.
pub(crate) fn serves(m: &SnapshotMeta, source: &Source, system: Option<&str>) -> bool {
    let ours = system.is_none_or(|id| m.system_identifier == id);
    ours && match source {
        Source::Name(n) => m.snapshot == *n,
        Source::Before(t) => m.consistent_at <= *t,
        Source::Document(_) | Source::Latest => true,
    }
}

/// Without --pgdata: the one data directory whose snapshots snap-take's stores hold (every
/// imported ZFS pool, every mounted btrfs filesystem, or the --snapshot-dir store). With
/// --snapshot only the snapshots of that name count; with --repo (the WAL the clone recovers
/// from) only those of the repository's database system: another cluster's snapshots on the
/// same host are not candidates, so they neither make the choice ambiguous nor are chosen.
fn discovered(req: &CreateRequest) -> Result<Backend> {
    let d = discover::discover(req.snapshot_dir.as_deref())?;
    let system = match &req.wal_repo {
        Some(r) => repo_system(r)?,
        None => None,
    };
    let mut found: Vec<_> = d
        .found
        .into_iter()
        .filter(|f| !matches!(req.backend, Some(k) if k != f.kind))
        .collect();
    if let Source::Name(n) = &req.source {
        found.retain(|f| f.meta.snapshot == *n);
    }
    let all = found.len();
    if let Some(id) = &system {
        found.retain(|f| f.meta.system_identifier == *id);
    }
    let foreign = all - found.len();
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
            if let (Some(id), true) = (&system, foreign > 0) {
                searched.push_str(&format!(
                    "; {foreign} of other database systems than --repo's ({id}) left out"
                ));
            }
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

/// The WAL of `--repo` for a clone of the local snapshot `meta`, checked before anything is
/// cloned: the repository opens (which refuses an identity file that cannot be used: missing,
/// readable by group or others, holding no identity), holds the WAL of the snapshot's
/// database system, and, encrypted, has an identity file that the clone's server (running as
/// the data directory's owner, `uid`) can read, as the image path checks.
///
/// # Errors
/// The repository cannot be opened, belongs to another database system, or is encrypted and
/// no identity file is named or it is another user's.
fn check_wal_repo(req: &CreateRequest, meta: &SnapshotMeta, uid: Option<u32>) -> Result<()> {
    let Some(repo) = &req.wal_repo else {
        return Ok(());
    };
    let r = pgdr_repo::repo::Repo::open(repo)?;
    if let Some(id) = r.identity() {
        if id.system_identifier.to_string() != meta.system_identifier {
            return Err(Error::failed(format!(
                "cannot recover {} from --repo {}",
                meta.snapshot,
                repo.display()
            ))
            .because(format!(
                "the repository holds the WAL of database system {}, the snapshot is of {}",
                id.system_identifier, meta.system_identifier
            ))
            .hint("give --repo the repository this cluster archives to"));
        }
    }
    let Some(uid) = uid.filter(|_| r.encrypted()) else {
        return Ok(());
    };
    let user = pgdr_core::owner::user_by_uid(uid).map_or_else(|| format!("uid {uid}"), |u| u.name);
    if std::env::var_os(pgdr_repo::crypt::IDENTITY_ENV).is_none_or(|v| v.is_empty()) {
        return Err(Error::failed(format!(
            "cannot recover from --repo {}",
            repo.display()
        ))
        .because("its WAL is encrypted, and PGDR_IDENTITY names no identity file")
        .hint(format!(
            "PGDR_IDENTITY=FILE, a file of {user} with mode 600 (the clone's restore_command reads it)"
        )));
    }
    crate::from_image::identity_readable_by(uid, &user)
}

/// Makes the clone.
///
/// # Errors
/// No snapshot serves the request, the name or port is taken, a lock is held (exit 75), or a
/// step failed (the clone was rolled back).
pub fn run(req: &CreateRequest) -> Result<CloneReport> {
    make(req).map(|(report, _name_lock)| report)
}

/// Makes the clone and hands back its name's lock, still held (for a `temporary` one, whose
/// record says `creating` as long as the lock is held).
///
/// # Errors
/// As [`run`].
pub fn make(req: &CreateRequest) -> Result<(CloneReport, LockGuard)> {
    crate::leftovers::remove_killed(&req.registry);
    if let Some(repo) = &req.image_repo {
        return crate::from_image::run(req, repo);
    }
    let started = Instant::now();
    let name = &req.name;
    let registry = &req.registry;
    if let Some(rec) = registry.read(name)? {
        return Err(exists_already(&rec));
    }
    if let Some(t) = &req.target_dir {
        check_place(registry, t)?;
    }
    let backend = backend_for(req)?;
    // The registry is created for the data directory's owner before the name's lock, which
    // lives in it.
    let owner = pgdr_snap::registry::ids_of(backend.pgdata());
    if let Some(owner) = owner {
        registry.ensure(owner)?;
    }
    let name_lock = registry.lock(name, req.wait_lock)?;
    if let Some(rec) = registry.read(name)? {
        return Err(exists_already(&rec));
    }
    // Held while the snapshot is chosen and cloned, so snap-prune cannot destroy it in
    // between; afterwards the clone itself protects it.
    let data_lock = backend.lock(Some(req.wait_lock.unwrap_or(Duration::from_secs(30))))?;
    let snaps = backend.list()?;
    let newest = match &req.wal_repo {
        Some(r) => newest_of(&pgdr_repo::repo::Repo::open(r)?, &snaps)?,
        None => None,
    };
    let (meta, target) = choose(
        &snaps,
        &req.source,
        req.target,
        &Among {
            noun: "snapshot",
            of: format!("of {}", backend.pgdata().display()),
            missing: "it does not exist or was not made by snap-take",
            none: "it has no snapshots made by snap-take",
            older: "no snapshot of this data directory is that old; recover from a base backup",
            newest: newest.as_ref(),
        },
    )?;
    let bindir = pgdr_core::pgbin::bindir(Some(meta.pg_version))?;
    check_wal_repo(req, &meta, owner.map(|o| o.0))?;
    let port = choose_port(req.port, &registry.list()?)?;

    pgdr_core::signals::set_cooperative(true);
    let mut undo = Undo::new(Storage::Backend(&backend), registry);
    let result = (|| -> Result<CloneReport> {
        check_interrupt()?;
        let rec = backend.clone_snapshot(registry, &meta, name, req.target_dir.as_deref())?;
        undo.clone = Some(rec.clone());
        configure_and_start(
            &mut undo,
            rec,
            &Setup {
                name: name.clone(),
                meta: &meta,
                target,
                action: req.action,
                port,
                bindir: bindir.clone(),
                restore_command: req.restore_command.clone(),
                shared_buffers: req.shared_buffers.clone(),
                replay: req.replay,
                start: req.start,
                wait: req.wait,
                registry,
                backend_name: backend.kind().name(),
                temporary: req.temporary,
                newest: newest.as_ref(),
            },
        )
    })();
    drop(data_lock);
    conclude(result, undo, started).map(|r| (r, name_lock))
}

/// The refusal of a name the registry has: what to do is `snap-clone --destroy NAME` (a
/// clone still `creating` is another run's, or one whose run was killed and the next run
/// that makes a clone removes).
pub(crate) fn exists_already(rec: &CloneRecord) -> Error {
    let name = &rec.clone;
    let e = Error::failed(format!("a clone named {name} exists already"));
    let e = if rec.state == "creating" {
        e.because("another run is making it")
    } else {
        e.because(format!("its data directory is {}", rec.path.display()))
    };
    e.hint(format!(
        "pick another --name, or snap-clone --destroy {name} first"
    ))
}

/// Refuses a --target that is a recorded clone's place, naming it (a plain "it exists" would
/// leave the user to find out that `snap-clone --destroy NAME` removes it).
///
/// # Errors
/// `target` is (or is inside) a clone of the registry.
pub(crate) fn check_place(registry: &Registry, target: &Path) -> Result<()> {
    if !(target.exists() || target.is_symlink()) {
        return Ok(());
    }
    let records = registry.list().unwrap_or_default();
    match records.iter().find(|r| target.starts_with(&r.root)) {
        Some(r) => Err(
            Error::failed(format!("cannot make a clone in {}", target.display()))
                .because(format!("it is clone {}'s (state {})", r.clone, r.state))
                .hint(format!(
                    "snap-clone --destroy {} removes it, or give --target a directory that does not exist yet",
                    r.clone
                )),
        ),
        None => Ok(()),
    }
}
