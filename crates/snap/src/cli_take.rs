//! snap-take's command line: arguments in, the snapshot's metadata out. The operation is
//! [`crate::cmd::take`].

use crate::backend::BackendKind;
use crate::cmd::take::{TakeOptions, TakeRequest};
use crate::logical::list::LogicalList;
use crate::logical::meta::LogicalSnapshot;
use crate::logical::take::LogicalRequest;
use crate::meta::SnapshotMeta;
use clap::Parser;
use pgdr_core::{Error, Outcome, OutputArgs, Result};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Examples:
  snap-take --pgdata /zpdata01/pg
  snap-take --pgdata /zpdata01/pg --label nightly -d 'host=/var/run/postgresql user=postgres'
  snap-take --pgdata /zpdata01/pg | snap-prune - --keep-hourly 24 --keep-daily 7
  snap-take --logical -d 'dbname=app' --table 'public.job_*' --jobs 4 --to /backup/app
  snap-take --list --snapshot-dir /backup/logical";

/// Take a consistent snapshot of a PostgreSQL data directory.
#[derive(Debug, Parser)]
#[command(
    name = "snap-take",
    version,
    about = "Take a consistent snapshot of a PostgreSQL data directory",
    long_about = "Take a consistent, self-describing snapshot of a PostgreSQL data directory on ZFS \
(the dataset holding PGDATA, recursively with its child datasets), btrfs (a read-only snapshot \
of its subvolume) or as a copy (reflinks where the filesystem has them).\n\n\
Without -d the snapshot is one atomic, crash-consistent image: recovery from it replays WAL \
like after a power loss. It is refused when pg_wal or a tablespace lives where the same \
instant cannot cover it, and for the copy backend while the server runs. With -d, \
pg_backup_start and pg_backup_stop (pg_start_backup/pg_stop_backup before PostgreSQL 15) \
run in one session of snap-take's own around the snapshot, also on a standby, and the \
returned backup label is kept with the snapshot so a clone can restore it.\n\n\
The metadata (time, label, PostgreSQL version, system identifier, timeline, checkpoint and \
redo LSN read from the snapshot's own pg_control, wal_start = the oldest WAL file a \
recovery needs, and the backup label) is stored as the ZFS user property pgdr:meta, or as a \
JSON file beside a btrfs or copy snapshot, and printed.\n\n\
Names are pgdr-YYYYmmddTHHMMSSZ[-LABEL] in UTC; a second snapshot within the same second gets \
milliseconds, pgdr-YYYYmmddTHHMMSS.mmmZ[-LABEL], so two runs never collide.\n\n\
With --logical, snap-take takes a logical snapshot instead: the database -d names (or the \
tables --table names, less --exclude-table) dumped by pg_dump in directory format with --jobs \
workers, all from one snapshot that snap-take exports itself in a REPEATABLE READ \
transaction, so its moment is known: consistent_at (clock_timestamp() when the snapshot was \
taken) and lsn (the WAL position then). Every file pg_dump wrote is stored compressed (zstd) \
with its SHA-256, in --snapshot-dir DIR or in the repository --to REPO (through the \
repository's object layer, so encrypted when the repository is), with the metadata: \
database, tables, server version, system identifier, consistent_at, the pg_dump used. A \
snapshot is published all at once (a directory renamed into place, a manifest written last): \
a failed or interrupted dump leaves nothing that looks like one. pg_dump of a major at least \
the server's is needed; the newest found on PATH, in /usr/lib/postgresql/N/bin, \
/usr/pgsql-N/bin or PGDR_PG_ROOT/N/bin is used (or --pg-bin DIR), and an older one is \
refused with the reason. --list lists the logical snapshots of --snapshot-dir and --repo.",
    after_help = AFTER_HELP
)]
pub struct Args {
    /// The data directory to snapshot.
    #[arg(long, short = 'D', env = "PGDATA", value_name = "DIR")]
    pub pgdata: Option<PathBuf>,
    /// A label appended to the snapshot name (letters, digits, '.', '_', '-').
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// Connection for backup mode, or with --logical the database to dump (conninfo or URI;
    /// PG* variables and .pgpass apply).
    #[arg(long = "dbname", short = 'd', value_name = "CONNINFO")]
    pub dbname: Option<String>,
    /// Storage backend: zfs, btrfs or copy (default: detected from PGDATA: zfs, btrfs, else copy).
    #[arg(long, value_enum, hide_possible_values = true)]
    pub backend: Option<BackendKind>,
    /// The snapshot store: btrfs and copy snapshots, and every backend's lock (default:
    /// .pgdr-snapshots/NAME beside the data directory, subvolume or dataset).
    #[arg(long, value_name = "DIR")]
    pub snapshot_dir: Option<PathBuf>,
    /// Wait up to this many seconds for another run on the same data directory.
    #[arg(long, value_name = "SECONDS")]
    pub wait_lock: Option<f64>,
    /// Take a logical snapshot (pg_dump of the database -d names) instead.
    #[arg(long)]
    pub logical: bool,
    /// With --logical: dump only the tables matching this pg_dump pattern (repeatable; each
    /// must match a table).
    #[arg(long = "table", value_name = "PATTERN", requires = "logical")]
    pub tables: Vec<String>,
    /// With --logical: leave out the tables matching this pattern (repeatable).
    #[arg(long = "exclude-table", value_name = "PATTERN", requires = "logical")]
    pub exclude_tables: Vec<String>,
    /// With --logical: pg_dump's parallel jobs (also the files stored at once).
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub jobs: u32,
    /// With --logical: store it in this repository (made by wal-archive init) instead of
    /// --snapshot-dir.
    #[arg(long, value_name = "REPO", requires = "logical")]
    pub to: Option<PathBuf>,
    /// Where pg_dump is (default: the newest on PATH, in /usr/lib/postgresql/N/bin,
    /// /usr/pgsql-N/bin or PGDR_PG_ROOT/N/bin).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// List the logical snapshots of --snapshot-dir and --repo.
    #[arg(long, conflicts_with_all = ["logical", "label"])]
    pub list: bool,
    /// With --list: the repository to list.
    #[arg(long, value_name = "REPO", requires = "list")]
    pub repo: Option<PathBuf>,
    /// With --list: only this database's logical snapshots.
    #[arg(long, value_name = "NAME", requires = "list")]
    pub database: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pgdr_core::tool_args!(Args);

/// Parses the arguments into the operation's request, runs it, prints the snapshot.
pub fn run(args: Args) -> Result<Outcome> {
    if args.list {
        return Outcome::document(&crate::logical::list::run(
            args.snapshot_dir.as_deref(),
            args.repo.as_deref(),
            args.database.as_deref(),
        )?);
    }
    if args.logical {
        return Outcome::document(&crate::logical::take::run(&LogicalRequest {
            dsn: args.dbname,
            tables: args.tables,
            exclude_tables: args.exclude_tables,
            jobs: args.jobs,
            to: args.to,
            snapshot_dir: args.snapshot_dir,
            label: args.label,
            pg_bin: args.pg_bin,
            wait_lock: pgdr_core::lock::wait_duration("--wait-lock", args.wait_lock)?,
        })?);
    }
    let pgdata = args.pgdata.ok_or_else(|| {
        Error::usage("no data directory")
            .hint("give --pgdata DIR (or set PGDATA), or --logical -d CONNINFO")
    })?;
    let meta = crate::cmd::take::run(&TakeRequest {
        pgdata,
        backend: args.backend,
        snapshot_dir: args.snapshot_dir,
        options: TakeOptions {
            label: args.label,
            dsn: args.dbname,
            at: None,
        },
        wait_lock: pgdr_core::lock::wait_duration("--wait-lock", args.wait_lock)?,
    })?;
    Outcome::document(&meta)
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "The snapshot was taken and its metadata stored (--list: listed)."),
        (1, "It failed or was refused (not a data directory, no zfs/btrfs command, a layout one snapshot cannot cover, a snapshot name taken already, backup mode failed; with --logical: no pg_dump of a sufficient major, a --table pattern that matches no table, no privilege, pg_dump failed or the server restarted); nothing was left behind."),
        (2, "Usage error: bad arguments."),
        (75, "Another snap-take, snap-prune or snap-clone run holds the lock of this data directory's snapshots, or of the snapshot directory or repository dumps a logical snapshot goes to (see --wait-lock)."),
    ],
    documents: &[
        pgdr_core::man::DocSection::of::<SnapshotMeta>("snap-take"),
        pgdr_core::man::DocSection::of::<LogicalSnapshot>("snap-take --logical"),
        pgdr_core::man::DocSection::of::<LogicalList>("snap-take --list"),
    ],
    json_output: "The same object is stored with the snapshot (pgdr:meta or the sidecar). Read from a snapshot, keys a newer pgdr added are ignored; read from stdin (snap-prune -, snap-clone -), the document must be snap-take's exactly.",
    examples: &[
        ("An atomic snapshot of a standby's data directory on ZFS, from cron:", "1 * * * * postgres snap-take --pgdata /zpdata01/pg --label hourly"),
        ("Backup mode on a primary, keeping the backup label:", "snap-take --pgdata /var/lib/postgresql/15/main -d 'host=/var/run/postgresql user=postgres'"),
        ("Take a snapshot, then apply retention and prune the WAL archive:", "snap-take --pgdata /zpdata01/pg | snap-prune - --keep-hourly 24 --keep-daily 7 | wal-archive prune - --repo /zpdata02/wal"),
        ("The job tables of a database, with 4 pg_dump jobs, into the cluster's repository, then a week of them kept:", "snap-take --logical -d 'dbname=app' --table 'public.job_*' --jobs 4 --to /backup/app | snap-prune - --keep-daily 7"),
        ("Nightly logical snapshots of one database in a directory, from cron:", "0 2 * * * postgres snap-take --logical -d 'dbname=app' --label nightly --snapshot-dir /backup/logical --jobs 2"),
        ("What logical snapshots a directory holds:", "snap-take --list --snapshot-dir /backup/logical --pretty"),
    ],
    extra_sections: &[(
        "FILES",
        "The snapshot store, .pgdr-snapshots/NAME beside the data directory (btrfs: beside its subvolume; zfs: beside its dataset's mountpoint, so it is in no snapshot) or --snapshot-dir, holds btrfs and copy snapshots, their JSON sidecars, and .lock, the lock every snap-take, snap-prune and snap-clone run takes for these snapshots (removed when the run ends; created readable by all, so root's and the postgres user's runs share it). Created by root, the store and the sidecars belong to the data directory's owner.",
    ), (
        "CONSISTENCY",
        "PGDATA's filesystem is asked of the kernel (statfs) first: a zfs or btrfs command is run only when PGDATA is on ZFS or btrfs, so a broken zfs (no zfs-fuse daemon) never fails a snapshot of a data directory elsewhere.\nzfs: one 'zfs snapshot -r' of the dataset holding PGDATA covers it and every child dataset in one instant, so pg_wal and tablespaces may live in child datasets. Anything on another dataset, pool or filesystem is refused.\nbtrfs: snapshots are not recursive; pg_wal and tablespaces must be in the PGDATA subvolume.\ncopy: a copy takes time, so it is refused while the server runs unless -d is given; then pg_wal is copied after pg_backup_stop, so the copy holds every WAL file from wal_start to the backup's end.\nThe metadata is read from the snapshot's own global/pg_control (CRC-32C checked); with zfs-fuse, which has no .zfs directory, it is read from the live file when the checkpoint did not change across the snapshot, else through a temporary clone.",
    ), (
        "LOGICAL SNAPSHOTS",
        "A logical snapshot in --snapshot-dir DIR is the directory DIR/NAME: pgdr-logical.json (the document snap-take printed, with the SHA-256 of every file) and files/, pg_dump's files each in wal-archive's stored-object format (a 68-byte header with the size and SHA-256, then a zstd body: tail -c +69 FILE | zstd -d gives pg_dump's file back). It is made in the hidden directory DIR/.NAME.pgdr-tmp.PID and renamed into place when complete; DIR/.lock is the lock, shared with physical snapshots kept in the same directory. In a repository the same files are the objects dumps/NAME/files/FILE and the document the object dumps/NAME/manifest, written last, under the repository's dumps.lock (crates/repo/FORMAT.md, 'Logical dumps'). pg_dump writes its scratch copy uncompressed (--compress=0) into the staging directory, or for --to into $TMPDIR: there must be room for the uncompressed dump there. snap-prune removes what a killed run left once it is a day old.\nThe dump is consistent as of consistent_at: snap-take's own session exports its snapshot (pg_export_snapshot() in a REPEATABLE READ, READ ONLY transaction, also on a standby) and passes it to pg_dump --snapshot, so all jobs read the same snapshot and the time and WAL position of that snapshot are recorded, not the time pg_dump started. The role needs what pg_dump needs (SELECT on the tables); without EXECUTE on pg_control_system() system_identifier is null and the snapshot can only go to a --snapshot-dir.",
    )],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("snap-take", run)
}
