//! snap-take's command line: arguments in, the snapshot's metadata out. The operation is
//! [`crate::cmd::take`].

use crate::backend::BackendKind;
use crate::cmd::take::{TakeOptions, TakeRequest};
use crate::meta::SnapshotMeta;
use clap::Parser;
use pgdr_core::{Outcome, OutputArgs, Result};
use std::path::PathBuf;

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
milliseconds, pgdr-YYYYmmddTHHMMSS.mmmZ[-LABEL], so two runs never collide."
)]
pub struct Args {
    /// The data directory to snapshot.
    #[arg(long, short = 'D', env = "PGDATA", value_name = "DIR")]
    pub pgdata: PathBuf,
    /// A label appended to the snapshot name (letters, digits, '.', '_', '-').
    #[arg(long, value_name = "L")]
    pub label: Option<String>,
    /// Connection for backup mode (conninfo or URI; PG* variables and .pgpass apply).
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
    #[command(flatten)]
    pub output: OutputArgs,
}

pgdr_core::tool_args!(Args);

/// Parses the arguments into the operation's request, runs it, prints the snapshot.
pub fn run(args: Args) -> Result<Outcome> {
    let meta = crate::cmd::take::run(&TakeRequest {
        pgdata: args.pgdata,
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
        (0, "The snapshot was taken and its metadata stored."),
        (1, "It failed or was refused (not a data directory, no zfs/btrfs command, a layout one snapshot cannot cover, a snapshot name taken already, backup mode failed); nothing was left behind."),
        (2, "Usage error: bad arguments."),
        (75, "Another snap-take, snap-prune or snap-clone run holds the lock of this data directory's snapshots (see --wait-lock)."),
    ],
    documents: &[pgdr_core::man::DocSection::of::<SnapshotMeta>("snap-take")],
    json_output: "The same object is stored with the snapshot (pgdr:meta or the sidecar). Read from a snapshot, keys a newer pgdr added are ignored; read from stdin (snap-prune -, snap-clone -), the document must be snap-take's exactly.",
    examples: &[
        ("An atomic snapshot of a standby's data directory on ZFS, from cron:", "1 * * * * postgres snap-take --pgdata /zpdata01/pg --label hourly"),
        ("Backup mode on a primary, keeping the backup label:", "snap-take --pgdata /var/lib/postgresql/15/main -d 'host=/var/run/postgresql user=postgres'"),
        ("The data directory from /etc/pgdr/pgdr.toml ([global] pgdata = \"/zpdata01/pg\"), from cron:", "0 * * * * postgres snap-take --label hourly"),
        ("Take a snapshot, then apply retention and prune the WAL archive:", "snap-take --pgdata /zpdata01/pg | snap-prune - --keep-hourly 24 --keep-daily 7 | wal-archive prune - --repo /zpdata02/wal"),
    ],
    extra_sections: &[(
        "FILES",
        "The snapshot store, .pgdr-snapshots/NAME beside the data directory (btrfs: beside its subvolume; zfs: beside its dataset's mountpoint, so it is in no snapshot) or --snapshot-dir, holds btrfs and copy snapshots, their JSON sidecars, and .lock, the lock every snap-take, snap-prune and snap-clone run takes for these snapshots (removed when the run ends; created readable by all, so root's and the postgres user's runs share it). Created by root, the store and the sidecars belong to the data directory's owner.",
    ), (
        "CONSISTENCY",
        "PGDATA's filesystem is asked of the kernel (statfs) first: a zfs or btrfs command is run only when PGDATA is on ZFS or btrfs, so a broken zfs (no zfs-fuse daemon) never fails a snapshot of a data directory elsewhere.\nzfs: one 'zfs snapshot -r' of the dataset holding PGDATA covers it and every child dataset in one instant, so pg_wal and tablespaces may live in child datasets. Anything on another dataset, pool or filesystem is refused.\nbtrfs: snapshots are not recursive; pg_wal and tablespaces must be in the PGDATA subvolume.\ncopy: a copy takes time, so it is refused while the server runs unless -d is given; then pg_wal is copied after pg_backup_stop, so the copy holds every WAL file from wal_start to the backup's end.\nThe metadata is read from the snapshot's own global/pg_control (CRC-32C checked); with zfs-fuse, which has no .zfs directory, it is read from the live file when the checkpoint did not change across the snapshot, else through a temporary clone.",
    )],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("snap-take", run)
}
