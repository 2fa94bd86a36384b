//! snap-clone's command line: arguments (or snap-take's document) in, one document out. The
//! operations are [`crate::create`], [`crate::list`], [`crate::destroy`] and [`crate::drill`].

use crate::create::{CreateRequest, Source};
use crate::doc::{CloneList, CloneReport, DestroyReport, DrillReport};
use crate::prepare::{self, Action};
use crate::tables::doc::RestoreReport;
use crate::tables::plan::OnConflict;
use crate::target::{self, Target};
use clap::Parser;
use pgdr_core::cli::Stdin;
use pgdr_core::{Context, Error, Outcome, OutputArgs, Result};
use pgdr_pgformat::Lsn;
use pgdr_snap::registry::Registry;
use pgdr_snap::{BackendKind, SnapshotMeta};
use std::path::{Path, PathBuf};

/// Clone a snapshot into a running PostgreSQL at any point in time.
#[derive(Debug, Parser)]
#[command(
    name = "snap-clone",
    version,
    about = "Clone a snapshot into a running PostgreSQL at any point in time",
    long_about = "Clone a snapshot made by snap-take (a ZFS clone, a btrfs snapshot, or a copy \
with reflinks) and make it a PostgreSQL server of its own that recovers to a target: the \
snapshot's own moment (--recovery-target immediate, the default with --snapshot), the end \
of the archived WAL (--recovery-target latest: everything the archive has), a time \
(--recovery-target-time, or --before T which also picks the newest snapshot consistent \
before T) or an LSN, replaying WAL from the archive (--repo for a wal-archive repository, \
whose next segments are prefetched while PostgreSQL replays, or --restore-command).\n\n\
The clone can never touch production: postmaster.pid, postmaster.opts, socket files, \
standby.signal and replication slots are removed; recovery.signal is created (standby.signal \
for --recovery-target latest with pause, below); \
postgresql.auto.conf gets (as ALTER SYSTEM would write them) its own port (a free one \
unless --port), its own socket directory, archive_mode = off, empty archive_command, \
primary_conninfo and primary_slot_name, the recovery target and action, \
recovery_target_timeline = latest and the restore_command; pg_wal and tablespace links are \
pointed into the clone; the backup label is restored when the snapshot has one.\n\n\
With --start the server is started as the data directory's owner with the snapshot's \
PostgreSQL major version, and snap-clone waits until recovery paused at the target (or \
was promoted). It watches recovery over the clone's socket as the data directory's owner with \
the PostgreSQL client library, so the major's bin directory needs no psql. A clone is one transaction: if any step fails, or SIGINT/SIGTERM arrives, \
the server it started is stopped, the clone destroyed, and it exits 1 with the reason and \
the end of the server log.\n\n\
Without --pgdata, --snapshot and --before look for snap-take's snapshots on every \
imported ZFS pool (the pgdr:meta property) and every mounted btrfs filesystem (snapshot \
subvolumes with their metadata beside them), or only in --snapshot-dir when given. When the \
snapshots found belong to one data directory, that one is used; snapshots of several data \
directories are a usage error naming them (pass --pgdata). With --repo only the snapshots of \
the repository's database system are candidates (the system_identifier of their metadata \
is the one the repository is bound to): another cluster's snapshots on the same host are \
ignored, as its WAL could not recover them. Copy snapshots have no \
system-wide place: they need --pgdata or --snapshot-dir.\n\n\
A target before a snapshot's consistent point is refused (PostgreSQL would stop with \
\"requested recovery stop point is before consistent recovery point\"), naming the \
snapshots that would serve it.\n\n\
From an image: with --repo and --target, and none of --pgdata (on the command line; PGDATA \
from the environment does not count), --snapshot-dir, --backend or '-', the snapshot is an \
image snap-take --to stored in the repository (--snapshot NAME, --before T or --latest chooses \
among them as among snapshots). It is restored into --target, a new directory, by --parallel \
workers, every piece verified against its SHA-256 and the manifest before anything uses it; \
then the clone is prepared, started and watched as any other, with restore_command reading \
the same repository. No ZFS pool or btrfs volume of the source is needed: this is how a new \
instance comes up in another region. A missing or damaged piece fails the run (exit 1) before \
anything starts, and the directory is removed.\n\n\
With --into CONNINFO, tables of a snapshot are restored into an existing database instead \
(see TABLE RESTORE): from a logical snapshot (--snapshot NAME in --snapshot-dir or --repo) \
with pg_restore, or from a physical one at any moment of the recovery window through a \
temporary clone that is destroyed afterwards: of a local snapshot, or of an image of --repo \
(with --target, or where this host has no snapshot that serves the request: none of the \
repository's database system, or none consistent by the --before time).\n\n\
A run killed with SIGKILL (which cannot be caught) leaves its clone in state creating, with \
its server if it was started; the next run that makes a clone finds such records whose \
name's lock no run holds, stops their server (immediate shutdown) and removes them, one \
note on stderr each (see CLONE REGISTRY)."
)]
#[command(group(clap::ArgGroup::new("started").args(["start", "into", "drill"]).multiple(true)))]
pub struct Args {
    /// '-' reads the snapshot object snap-take printed from stdin.
    #[arg(value_name = "-", value_parser = pgdr_core::cli::stdin_marker)]
    pub input: Option<Stdin>,
    /// The snapshot to clone (by name).
    #[arg(long, value_name = "NAME")]
    pub snapshot: Option<String>,
    /// Clone the newest snapshot consistent at or before this time (RFC 3339 with an
    /// offset); unless another target is given, recover to it.
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    /// Clone the newest snapshot (or image).
    #[arg(long)]
    pub latest: bool,
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
    /// Where the clone's root goes (must not exist; default: the backend's clone place; with
    /// --into, an image's goes to $TMPDIR/pgdr-tables-NAME).
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
    /// 'immediate': stop as soon as the clone is consistent (the snapshot's moment);
    /// 'latest': recover everything the archive has and stop at its end.
    #[arg(long, value_name = "immediate|latest", group = "rtarget")]
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
    /// --prefetch 4' (the next segments decompressed and verified ahead of replay). With
    /// --target and no --pgdata, --snapshot-dir, --backend or '-': the image is restored from
    /// it too (with --into also without --target when no local snapshot of its database
    /// system serves the request). An encrypted one is read with the identity file $PGDR_IDENTITY names (owned
    /// by the data directory's owner: the server's restore_command reads it too, and gets
    /// it as --identity FILE; a file of another user is refused before anything is cloned). A
    /// repository of another database system than the snapshot's is refused too. The AWS_* variables of an s3:// one are not written anywhere:
    /// a clone restarted with pg_ctl while it recovers needs them in its environment.
    #[arg(long, value_name = "REPO")]
    pub repo: Option<PathBuf>,
    /// Restoring an image: concurrent transfers.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// shared_buffers for the clone, written into its postgresql.auto.conf: for its recovery
    /// and every later start (e.g. 2GB; default: the snapshot's setting, raised for recovery
    /// only, see --replay-settings).
    #[arg(long, value_name = "SIZE")]
    pub shared_buffers: Option<String>,
    /// on (default): the recovering server is started with replay settings on its command
    /// line, not in its configuration: shared_buffers raised to an eighth of the available
    /// memory up to 2GB (never lowered; not with --shared-buffers), and from PostgreSQL 15
    /// recovery_prefetch = on, maintenance_io_concurrency = 64, wal_decode_buffer_size = 4MB
    /// (see REPLAY SETTINGS); off: the snapshot's own settings during recovery too.
    #[arg(
        long,
        value_enum,
        default_value = "on",
        hide_possible_values = true,
        value_name = "on|off"
    )]
    pub replay_settings: crate::replay::Switch,
    /// Start the clone and wait until recovery reached the target.
    #[arg(long)]
    pub start: bool,
    /// A restore drill: clone the newest snapshot (of --pgdata) or image (of --repo alone),
    /// recover it (by default to the end of the archive) and promote it, check it with
    /// amcheck, destroy it; exit 0 only when it recovered and is clean (see RESTORE DRILLS).
    #[arg(
        long,
        conflicts_with_all = ["input", "recovery_target_action", "into"]
    )]
    pub drill: bool,
    /// With --drill: json (the report; exit 0 or 1) or prometheus (metrics for
    /// node_exporter's textfile collector; exit 0 once written).
    #[arg(
        long,
        value_enum,
        hide_possible_values = true,
        requires = "drill",
        value_name = "json|prometheus"
    )]
    pub format: Option<crate::drill::Format>,
    /// With --start, --into or --drill: give up (and roll back) after this many seconds.
    #[arg(long, value_name = "SECONDS", requires = "started")]
    pub wait: Option<f64>,
    /// List every clone.
    #[arg(long, conflicts_with_all = ["input", "snapshot", "before", "latest", "name", "destroy", "start", "drill", "format"])]
    pub list: bool,
    /// Stop and destroy a clone made by snap-clone.
    #[arg(long, value_name = "CLONE", conflicts_with_all = ["input", "snapshot", "before", "latest", "name", "start", "drill", "format"])]
    pub destroy: Option<String>,
    /// Wait up to this many seconds for another run on the same clone name.
    #[arg(long, value_name = "SECONDS")]
    pub wait_lock: Option<f64>,
    /// Restore tables of the snapshot into this existing database (conninfo or URI) instead
    /// of making a clone to keep.
    #[arg(long, value_name = "CONNINFO", conflicts_with_all = ["list", "destroy"])]
    pub into: Option<String>,
    /// With --into: a table to restore, schema.table or table (repeatable; default: every
    /// table of the snapshot).
    #[arg(long = "table", value_name = "T", requires = "into")]
    pub tables: Vec<String>,
    /// With --into: when a name exists in the target, restore beside it under new names
    /// (rename), change nothing (fail), or replace the table (replace).
    #[arg(
        long,
        value_enum,
        default_value = "rename",
        value_name = "rename|fail|replace",
        hide_possible_values = true
    )]
    pub on_conflict: OnConflict,
    /// With --into: pg_dump jobs on a temporary clone; parallel maintenance workers + 1 for
    /// the index builds of the restore.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: u32,
    /// With --into: check the connection, the privileges and the plan; change nothing.
    #[arg(long, requires = "into")]
    pub dry_run: bool,
    /// With --into from a physical snapshot: keep the temporary clone (when all went well).
    #[arg(long, requires = "into")]
    pub keep_clone: bool,
    /// With --into from a physical snapshot: the database of the snapshot to dump the tables
    /// from (default: the --into database's name).
    #[arg(long, value_name = "NAME", requires = "into")]
    pub database: Option<String>,
    /// Where pg_dump and pg_restore are (default: the newest on PATH, in
    /// /usr/lib/postgresql/N/bin, /usr/pgsql-N/bin or PGDR_PG_ROOT/N/bin).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pgdr_core::tool_args!(Args);

pub(crate) fn parse_target(args: &Args) -> Result<Option<Target>> {
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
    match args.recovery_target.as_deref() {
        None => Ok(None),
        Some("immediate") => Ok(Some(Target::Immediate)),
        Some("latest") => Ok(Some(Target::Latest)),
        Some(t) => Err(Error::usage(format!("invalid --recovery-target {t:?}"))
            .because("the values are 'immediate' and 'latest'")),
    }
}

pub(crate) fn source(args: &Args) -> Result<Source> {
    let given = [
        args.input.is_some(),
        args.snapshot.is_some(),
        args.before.is_some(),
        args.latest,
    ];
    match given.iter().filter(|g| **g).count() {
        1 => {}
        0 if args.drill => return Ok(Source::Latest),
        0 => {
            return Err(Error::usage("nothing to clone").hint(
                "pass --snapshot NAME, --before TIME, --latest or '-' (or --list, --destroy CLONE)",
            ))
        }
        _ => {
            return Err(Error::usage(
                "--snapshot, --before, --latest and '-' exclude each other",
            ))
        }
    }
    if args.latest {
        return Ok(Source::Latest);
    }
    if args.input.is_some() {
        let meta = pgdr_core::doc::read_stdin::<SnapshotMeta>()?;
        return Ok(Source::Document(Box::new(meta)));
    }
    if let Some(n) = &args.snapshot {
        return Ok(Source::Name(n.clone()));
    }
    let b = args.before.as_deref().unwrap_or_default();
    target::parse_time(b)
        .map(Source::Before)
        .map_err(|e| Error::usage("invalid --before").because(e))
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

/// --shared-buffers as PostgreSQL's setting, in kB, within what the server accepts (16
/// pages of 8kB up to INT_MAX / 2 pages).
pub(crate) fn shared_buffers_setting(s: &str) -> Result<String> {
    let bad = |why: String| Error::usage(format!("invalid --shared-buffers {s:?}")).because(why);
    let bytes = pgdr_core::units::parse_size(s).map_err(bad)?;
    let kb = bytes / 1024;
    if kb < 128 || kb / 8 > i32::MAX as u64 / 2 {
        return Err(bad("PostgreSQL accepts 128kB up to just under 8TB".into()));
    }
    Ok(format!("{kb}kB"))
}

/// The restore_command: as given, for --repo, or None to keep the configured one.
pub(crate) fn restore_command(args: &Args) -> Result<Option<String>> {
    if let Some(c) = &args.restore_command {
        if c.trim().is_empty() {
            return Err(Error::usage("empty --restore-command"));
        }
        return Ok(Some(c.clone()));
    }
    let Some(repo) = &args.repo else {
        return Ok(None);
    };
    // An object store's URL is used as it is; a directory by its full path (the server runs
    // restore_command in the clone's data directory).
    let remote = repo.to_str().is_some_and(|r| r.contains("://"));
    let repo = if remote {
        repo.clone()
    } else {
        let canon = repo
            .canonicalize()
            .context(|| format!("cannot use --repo {}", repo.display()))?;
        if !canon.is_dir() {
            return Err(
                Error::failed(format!("cannot use --repo {}", repo.display()))
                    .because("it is not a directory"),
            );
        }
        canon
    };
    // The identity file by its full path (the server runs restore_command elsewhere).
    let identity = std::env::var_os(pgdr_repo::crypt::IDENTITY_ENV)
        .filter(|v| !v.is_empty())
        .map(|v| {
            let p = PathBuf::from(v);
            p.canonicalize().unwrap_or(p)
        });
    Ok(Some(prepare::wal_archive_command(
        &wal_archive_bin()?,
        &repo,
        identity.as_deref(),
    )))
}

/// The repository the restore_command pgdr writes reads from: --repo, unless
/// --restore-command replaces it.
pub(crate) fn wal_repo(args: &Args) -> Option<PathBuf> {
    args.restore_command
        .is_none()
        .then(|| args.repo.clone())
        .flatten()
}

/// Whether the arguments name a local snapshot's place: --pgdata on the command line,
/// --snapshot-dir, --backend or '-'. PGDATA from the environment does not count: on a host of
/// another region it names the instance to be, not a source.
pub(crate) fn names_local_place(args: &Args) -> bool {
    let pgdata_given =
        args.pgdata.is_some() && std::env::var_os("PGDATA").map(PathBuf::from) != args.pgdata;
    pgdata_given || args.snapshot_dir.is_some() || args.backend.is_some() || args.input.is_some()
}

/// Whether the clone is restored from an image of --repo: --target (or --drill) is given and
/// nothing names a local snapshot's place ([`names_local_place`]).
fn from_image(args: &Args) -> bool {
    args.repo.is_some() && (args.target.is_some() || args.drill) && !names_local_place(args)
}

/// Parses the arguments into one of the three operations, runs it, prints its document.
pub fn run(args: Args) -> Result<Outcome> {
    let wait_lock = pgdr_core::lock::wait_duration("--wait-lock", args.wait_lock)?;
    let registry = Registry::host();
    if args.list {
        let source = match &args.pgdata {
            Some(p) => Some(pgdr_snap::datadir::check_data_dir(p)?),
            None => None,
        };
        let doc: CloneList = crate::list::run(&registry, source.as_deref())?;
        return Outcome::document(&doc);
    }
    if let Some(name) = &args.destroy {
        let doc: DestroyReport = crate::destroy::run(&registry, name, wait_lock)?;
        return Outcome::document(&doc);
    }
    if args.into.is_some() {
        return crate::tables::cli::run(args);
    }
    let name = match (&args.name, args.drill) {
        (None, true) => crate::drill::clone_name(),
        (n, _) => n
            .clone()
            .ok_or_else(|| Error::usage("no clone name").hint("pass --name CLONE"))?,
    };
    pgdr_snap::meta::check_label_arg("--name", &name)?;
    let wait = pgdr_core::lock::wait_duration("--wait", args.wait)?;
    let target = parse_target(&args)?;
    let src = source(&args)?;
    let restore = restore_command(&args)?;
    let shared_buffers = match &args.shared_buffers {
        None => None,
        Some(s) => Some(shared_buffers_setting(s)?),
    };
    let target_dir = args
        .target
        .as_deref()
        .map(pgdr_core::fsx::absolute)
        .transpose()?;
    let image_repo = from_image(&args).then(|| args.repo.clone()).flatten();
    let wal_repo = wal_repo(&args);
    let req = CreateRequest {
        source: src,
        pgdata: args.pgdata,
        backend: args.backend,
        snapshot_dir: args.snapshot_dir,
        name,
        target_dir,
        port: args.port,
        target,
        action: args.recovery_target_action.unwrap_or(Action::Pause),
        restore_command: restore,
        wal_repo,
        shared_buffers,
        replay: args.replay_settings.into(),
        start: args.start,
        wait,
        wait_lock,
        registry,
        image_repo,
        parallel: args.parallel.into(),
        temporary: false,
    };
    if args.drill {
        return crate::drill::render(&crate::drill::run(req)?, args.format);
    }
    let doc: CloneReport = crate::create::run(&req)?;
    Outcome::document(&doc)
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "The clone was made (and with --start, recovery reached the target); or --list/--destroy succeeded; or (--into) the tables were restored, or with --dry-run the precheck passed; --drill: the drill passed, or with --format prometheus the metrics were written."),
        (1, "--drill: the drill failed (not restorable, corruption, or the clone not removed; the report says which). Otherwise: it failed or was refused (no such snapshot or image, a target before the snapshot's consistent point, a missing or damaged piece of an image, port taken, the server failed or stopped during recovery, --wait ran out, SIGINT/SIGTERM); the server it started was stopped and the clone destroyed (a restored directory removed). The message ends with the last lines of the server log. With --into: no such table in the snapshot, a name that exists (fail, replace), a privilege missing, no pg_dump/pg_restore of a sufficient major, the target database missing, or the restore failed: the target database is as it was and no temporary clone (nor an image's directory) is left."),
        (2, "Usage error: bad arguments, a document on stdin that is not snap-take's, or (without --pgdata) snapshots of several data directories found."),
        (75, "Another snap-clone run holds the lock of this clone name, or snap-take/snap-prune holds the lock of the data directory's snapshots longer than --wait-lock (default 30 seconds for the latter)."),
    ],
    documents: &[
        pgdr_core::man::DocSection::of::<CloneReport>("a clone made"),
        pgdr_core::man::DocSection::of::<CloneList>("--list"),
        pgdr_core::man::DocSection::of::<DestroyReport>("--destroy"),
        pgdr_core::man::DocSection::of::<RestoreReport>("--into"),
        pgdr_core::man::DocSection::of::<DrillReport>("--drill"),
    ],
    json_output: "",
    examples: &[
        ("The port of a paused server as of 17:28:37 (+08), from the newest snapshot before it, wherever snap-take stored it (one data directory's snapshots on ZFS or btrfs):", "snap-clone --before '2026-03-21 17:28:37+08' --name drill --repo /zpdata02/wal --start | jq .port"),
        ("A paused, queryable server as of 09:28 from the newest snapshot before it and the wal-archive repository:", "snap-clone --pgdata /zpdata01/pg --before '2026-03-21T09:28:00Z' --name drill --repo /zpdata02/wal --start"),
        ("A read-write copy of a snapshot's own moment on port 6543:", "snap-clone --pgdata /zpdata01/pg --snapshot pgdr-20260321T090000Z --name qa --recovery-target-action promote --port 6543 --start"),
        ("Clone what snap-take just took:", "snap-take --pgdata /zpdata01/pg | snap-clone - --name latest --start"),
        ("Everything the archive has, paused at its end:", "snap-clone --pgdata /zpdata01/pg --snapshot pgdr-20260321T090000Z --name all --recovery-target latest --repo /zpdata02/wal --start"),
        ("Every clone, then remove one:", "snap-clone --list --pretty; snap-clone --destroy drill"),
        ("A new instance in another region, from the repository alone, as it was at 17:28:37:", "snap-clone --repo s3://dr-region/pg --before '2026-03-21 17:28:37+08' --target /srv/pg/dr --name dr --start"),
        ("One table of last night's logical snapshot beside the live one (job_info_pgdr_20260321020000):", "snap-clone --snapshot pgdr-20260321T020000Z-nightly --snapshot-dir /backup/logical --into 'dbname=app' --table public.job_info"),
        ("The same table as it was at 17:28:37 (+08), from the physical snapshots and the WAL archive:", "snap-clone --before '2026-03-21 17:28:37+08' --recovery-target-time '2026-03-21 17:28:37+08' --repo /zpdata02/wal --into 'dbname=app' --table public.job_info"),
        ("The same in another region, from an image and the WAL in an encrypted repository alone:", "PGDR_IDENTITY=/etc/pgdr/dr.key snap-clone --repo s3://dr-region/pg --before '2026-03-21 17:28:37+08' --into 'dbname=app' --table public.job_info"),
        ("Check a replace before doing it:", "snap-clone --snapshot pgdr-20260321T020000Z --repo /backup/app --into 'dbname=app' --table public.job_info --on-conflict replace --dry-run --pretty"),
        ("Nightly from cron: prove the newest image restorable and clean, published for node_exporter's textfile collector (failures too):", "snap-clone --drill --repo s3://dr-region/pg --format prometheus > /var/lib/node_exporter/drill.prom.tmp && mv /var/lib/node_exporter/drill.prom.tmp /var/lib/node_exporter/drill.prom"),
    ],
    extra_sections: &[
        (
            "TABLE RESTORE",
            "--into CONNINFO restores the tables named with --table (schema.table or table, quoted as in SQL; every table without --table) into an existing database, with everything that belongs to them: partitions, sequences they own (identity and serial), defaults, constraints, indexes, triggers, policies, rules, extended statistics, comments, and their rows. Functions, types, sequences and schemas they need are created when the target lacks them and used as they are when it has them (listed under skipped). Foreign keys to tables that are not restored are not created (skipped, with the reason): the copy must not lock or depend on a live table. Owners, privileges and tablespaces are the target's (pg_restore --no-owner --no-privileges --no-tablespaces).\n--on-conflict rename (the default): a table any of whose names exists in the target (the table, its row type, a partition, an index, an owned sequence, a statistics object) is created as TABLE_pgdr_YYYYmmddHHMMSS (the snapshot's moment, UTC), and every name of its own gets the same suffix: indexes, constraints (including PostgreSQL 18's named NOT NULL constraints), sequences, triggers, policies, rules; the existing table and everything of it is not touched. A name that would pass PostgreSQL's 63 bytes keeps its first bytes, then 8 hex digits of the SHA-256 of the full name, then the suffix (shortened in the report). Restoring from the same moment twice is refused, naming the copy that exists. fail: nothing is changed when any name exists; the error lists them. replace: the existing table (with its partitions) is dropped and the snapshot's created in its place in the same transaction; foreign keys other tables hold on it are dropped first and created again afterwards, which validates every row (a violating row fails the whole replace: nothing changes); its owner and table-level grants are given back. A view on a replaced table makes replace refuse.\nThe whole restore is one transaction on one connection: pg_restore writes the SQL of the chosen entries of the archive's table of contents (its toc.dat, which pgdr reads to plan), snap-clone runs it with the new names, and streams each table's rows from its pg_dump data file into COPY (the entry's own COPY statement, renamed), as pg_restore would; a stored snapshot's files are decompressed and checked against their SHA-256 on the way. Any failure (a statement, pg_restore, a damaged file, SIGINT/SIGTERM) rolls it back. --jobs N lets PostgreSQL build each index with N-1 parallel maintenance workers in that transaction (parallel loading would need separate transactions).\n--dry-run is the precheck: the connection, CREATE on each target schema (CREATE on the database for a schema the restore creates), for replace the ownership of the table and of every table whose foreign keys on it are kept, and the plan (every object with the name it gets), with nothing changed in the target (from a physical snapshot the temporary clone is still made, and destroyed, to read the tables' definitions).\nFrom a physical snapshot (--snapshot S or --before T, with --recovery-target-time, --repo and the other clone options), a temporary clone recovers to the target and pauses, pg_dump (run as the data directory's owner, over the clone's socket, from the database named like --into's or --database) dumps the tables, they are restored as above, and the clone is destroyed, also on failure; --keep-clone keeps it after a success. The clone is of an image of --repo (as IMAGES says; the report's source is the repository) when --repo is given without --pgdata on the command line, --snapshot-dir, --backend or '-', and either --target is given or this host has no snapshot made by snap-take that would serve the request: of PGDATA from the environment, or on an imported ZFS pool or mounted btrfs filesystem; of the repository's database system (the system_identifier in the snapshot's metadata; another cluster's snapshots on the host are ignored, also when choosing among local snapshots); with --snapshot NAME, one of that name; with --before T, one consistent by T. A host of another region needs no more than the repository. The image is restored into --target, else into $TMPDIR/pgdr-tables-NAME, which needs room for the whole data directory; the directory is removed with the clone. A missing or damaged piece fails the run before anything is dumped: the target database is unchanged, and no clone or directory is left. The report's as_of is the recovery target time (else the point the clone reached), and renamed tables carry that moment; when it is known before the clone is made (--recovery-target-time, or --before alone), a copy of a --table from that moment already in the target is refused (--on-conflict rename) before anything is cloned or restored. The temporary clone's record says creating for as long as the run lasts, under its name's lock (ready once --keep-clone keeps it): a run killed with SIGKILL leaves it to the next run that makes a clone (CLONE REGISTRY).\npg_restore (and for a physical snapshot pg_dump) of a major at least the target's, the clone's and the dump's is needed: the newest on PATH, in /usr/lib/postgresql/N/bin, /usr/pgsql-N/bin or PGDR_PG_ROOT/N/bin is used, or --pg-bin DIR, and named in the report; an older one is refused with the reason.",
        ),
        (
            "REPLAY SETTINGS",
            "A clone's recovery is PostgreSQL's replay, one process that reads a page for every record it applies; once shared_buffers is full every page read evicts a dirty one, written out first, and where writes are slow (zfs-fuse, loop-mounted copy-on-write filesystems) that dominates. With --start (and for the temporary clones of --into and --drill) the recovering server is started with these settings on its command line (postgres -c NAME=VALUE), by default (--replay-settings on):\nshared_buffers = the larger of the snapshot's own setting and an eighth of the memory available when the clone starts (MemAvailable of /proc/meminfo, lowered to what the memory limit of a container's cgroup leaves), capped at 2GB: buffers for the pages the WAL touches made replay 3-5x faster on zfs-fuse with 1-2GB, and an eighth lets several clones (and parallel tests) share a host: clones started one after another hold at most 1-(7/8)^N of what was available. Never lower than the snapshot's; not given when it would not raise it, nor with --shared-buffers.\nFrom PostgreSQL 15 (the snapshot's PG_VERSION; 13 and 14 do not prefetch during recovery, and a server refuses settings it does not know): recovery_prefetch = on (read the blocks ahead of replay), maintenance_io_concurrency = 64 (prefetches in flight; the default 10 is sized for one disk), wal_decode_buffer_size = 4MB (WAL decoded ahead to find them; the default 512kB holds few records once full-page images fill it).\nThey are never written into postgresql.conf or postgresql.auto.conf, and postmaster.opts (the command line pg_ctl restart uses) is rewritten without them once recovery reached the target: every later start of the clone has the snapshot's own settings. A paused clone keeps them while it runs (a restart would replay again), also after a pg_promote() of your own until its next start. A clone snap-clone promotes (--recovery-target-action promote, or a crash image's own moment) with a raised shared_buffers is a server to keep: it is checkpointed, stopped and started again without them, so it holds the snapshot's memory, not the recovery's (the report's settings_handed_back); the drill's clone, destroyed right after, is not. The other three act only during recovery (maintenance_io_concurrency also on maintenance commands' prefetching until the next start), so they alone cause no restart.\n--replay-settings off starts the server with the snapshot's settings only. --shared-buffers SIZE is the user's choice: written into the clone's postgresql.auto.conf for every start, and the other replay settings still apply. The report's recovery.replay_settings lists what was given.",
        ),
        (
            "CONSISTENT POINT",
            "A recovery can only stop once the copy is consistent. For a time target that is the moment the snapshot had completed (consistent_at in its metadata); for an LSN target the snapshot's checkpoint, a standby's minimum recovery point, a backup's stop LSN and, for an atomic snapshot of a primary, the end of the WAL in its pg_wal (wal_end in its metadata; crash recovery replays all of it first; for a snapshot whose metadata predates wal_end the clone's own pg_wal is read before the first start). After a failover the clone follows the repository's newest timeline (recovery_target_timeline = latest): a snapshot consistent only after the point where that timeline branched off its own holds changes of the abandoned timeline, so --latest and --before skip it and naming it is refused with the switch point. --before T picks the newest snapshot consistent at or before T. A target before a snapshot's consistent point is refused, naming the snapshots that would serve it. A target beyond the end of the archive makes PostgreSQL stop (\"recovery ended before configured recovery target was reached\"); with --start the clone is rolled back and the one error line names where the archived WAL ends and its last transaction's time.\n--recovery-target latest recovers everything the archive (and the snapshot's pg_wal) holds. With the action pause the clone runs in standby mode without a primary until PostgreSQL waits for WAL the archive does not have, and snap-clone pauses it there (state paused, queryable; pg_promote() or pg_wal_replay_resume() ends recovery; PostgreSQL keeps no pause across a restart, so after pg_ctl restart such a clone replays again and follows what the archive gains, logging each segment the archive does not have yet, until it is paused or promoted); with promote it ends recovery at the end of the WAL and opens read-write on a new timeline.",
        ),
        (
            "CLONE REGISTRY",
            "The clone registry is per host: every clone has a JSON record in $PGDR_CLONE_DIR (default /var/lib/pgdr/clones): name, snapshot, source data directory, backend and store, location, path, port, socket directory, log, target. Records (and the registry, when root creates it) belong to the clone's data directory owner, so root's clones are the postgres user's too and the other way round; a non-root user where the registry does not exist yet needs it created once by root. NAME.lock beside a record is the per-clone lock, gone when the run ends. A record says creating only while the run making it holds its lock (for --into's temporary clone, until it is destroyed); the kernel releases the lock of a killed run, so every run that makes a clone (--start, --into from a physical snapshot, --drill, a bare clone) first takes, without waiting, the lock of each creating record: when it gets it, the run that wrote the record is gone, and the clone's server is stopped (immediate shutdown, as the data directory's owner), the clone and its record removed, with one note on stderr (\"snap-clone: note: removed clone NAME, left in state creating by a run that was killed\"); a record held by a live run is not touched. A --name or --target that a recorded clone holds is refused naming it and snap-clone --destroy NAME. snap-prune reads the same registry to skip snapshots that have clones (on ZFS it also skips any snapshot that is a dataset's origin); ZFS clones carry the pgdr:clone property. --destroy refuses a name without a record (creating nothing), a record written by neither root nor the clone's owner, and a ZFS dataset without pgdr:clone.",
        ),
        (
            "IMAGES",
            "A clone restored from an image, and a copy-backend clone, is recorded before its directory is made (state creating; an image's with the repository it came from), so a run killed while restoring or copying leaves a clone that --list shows and --destroy removes (and the next run that makes a clone removes, CLONE REGISTRY). The place a btrfs or copy clone goes (--target, or STORE/clones/NAME) must not exist: a clone is never merged into files it did not make, and its rollback never removes them. An image's clone depends on no snapshot of this host, so snap-prune never skips one for it. As root, the restored tree belongs to the user that owned the source's data directory (named in the image's manifest) when this host has that user, else to the owner of --target's parent directory; run as another user, to that user. The image is chosen when the run starts: an image snap-prune --repo removes during the restore fails it (exit 1, everything removed).",
        ),
        (
            "RESTORE DRILLS",
            "--drill clones the newest snapshot of --pgdata (or --snapshot-dir, or the one found) with WAL from --repo or the snapshot's restore_command; or, with --repo and no --pgdata, --snapshot-dir, --backend, the newest image of the repository, restored into --target or $TMPDIR/pgdr-drill-NAME (a directory that must not exist; it is removed again). --snapshot NAME or --before T choose another; the clone recovers to the end of the archive (--recovery-target latest, the default) or to T (or another recovery target) and is promoted, so amcheck can be created in it. Its name is drill-TIME-PID unless --name. Then amcheck checks every database: pg_amcheck --all --install-missing --heapallindexed when pg_amcheck is installed beside the server binaries of the clone's major, else CREATE EXTENSION amcheck and the server's bt_index_check(index, heapallindexed => true) for every B-tree index and, from PostgreSQL 14, verify_heapam for every table. When the server's contrib has no amcheck the report says \"amcheck\": \"unavailable\" and the drill passes on recovery alone. The clone is destroyed whatever happened, also on SIGINT/SIGTERM (pg_amcheck is killed). The report has the seconds taken, the LSN and time reached (pg_last_wal_replay_lsn, pg_last_xact_replay_timestamp), the corruption found and whether anything was left. --format prometheus prints pgdr_last_restore_drill_timestamp_seconds (when it ended), pgdr_last_restore_drill_success (1 or 0), pgdr_last_restore_drill_seconds and, when a transaction was replayed, pgdr_last_restore_drill_reached_timestamp_seconds, labelled source=\"pgdata\" or \"repo\" and location, and exits 0 whenever they were written, so a textfile pipeline publishes a failed drill too; only a usage error (exit 2) writes nothing.",
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
