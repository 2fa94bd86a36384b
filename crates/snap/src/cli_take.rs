//! snap-take's command line: arguments in, the snapshot's metadata out. The operation is
//! [`crate::cmd::take`].

use crate::backend::BackendKind;
use crate::cmd::image::{ImageRequest, PARALLEL};
use crate::cmd::list::ListRequest;
use crate::cmd::take::{TakeOptions, TakeRequest};
use crate::doc::{ImageReport, SnapshotList};
use crate::logical::list::LogicalList;
use crate::logical::meta::LogicalSnapshot;
use crate::logical::take::LogicalRequest;
use crate::meta::SnapshotMeta;
use clap::Parser;
use pgdr_core::cli::Stdin;
use pgdr_core::{Error, Outcome, OutputArgs, Result};
use std::path::PathBuf;
use std::time::Instant;

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
Without --logical, --to REPO then stores the snapshot as an image in a wal-archive repository (the one \
that archives the cluster's WAL, local or s3://): a file-level copy read from the snapshot, \
never from the live data directory (a read-only ZFS clone or btrfs snapshot of it, or the \
copy itself; of pg_wal only the segments a recovery from it reads: from its wal_start on, \
recycled ones left out), each file cut into pieces of 8 MiB, every piece compressed and checksummed as the \
repository stores WAL (and encrypted when the repository is), and a manifest (every file's \
path, size, mode and the SHA-256 of its pieces) with the snapshot's metadata, so the image \
alone says what it is and from which WAL it recovers. 'snap-take - --to REPO' stores an \
existing snapshot named by a snap-take document instead of taking one.\n\n\
Unchanged data is recognised in two ways. A piece is stored under the SHA-256 of its bytes, \
and a piece whose SHA-256 the repository holds already (from an earlier image of the cluster, \
or an interrupted run) is referenced, not sent again; two different pieces with the same \
SHA-256 are not known to exist. And a file is not read at all when the newest earlier image \
in the repository, of the same data directory and backend, holds it with the same inode \
number, size, modification time and change time (ctime: set by every write, truncate or \
chmod, with nanoseconds, and never settable from user space), and that change time is more \
than a second older than the earlier snapshot's newest change time and its name time: a \
file changed within a second of the earlier snapshot is read again, because a write right \
after a snapshot can get the same timestamp as one right before it (the kernel takes file \
times from a clock that advances once a tick). The residual risk is a system clock set back \
across the two snapshots and a write landing on the very nanosecond a file had before. \
--read-all reads and hashes every file (files_unchanged 0). On a copy-backend snapshot every \
file is new (cp gives new inodes and change times), so every file is read. The second image \
after a day of writes reads only the files that changed and sends only their pieces that \
changed. Pieces are sent by --parallel workers, so a large file is sent by several at once; \
memory is bounded by one piece per worker.\n\n\
The manifest is published last and never replaced: an image that is listed is complete. An \
interrupted upload leaves only pieces; run it again and it sends only what is missing \
(snap-prune --repo removes pieces no image references). The same snapshot stored twice sends \
nothing (already_stored).\n\n\
--list shows the snapshots of --pgdata and the images of --repo, each with the window it can \
serve: from its consistent point to the end of the continuous WAL the repository holds from \
its wal_start.\n\n\
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
refused with the reason. --list --logical lists the logical snapshots of --snapshot-dir and \
--repo (--database: of one database)."
)]
pub struct Args {
    /// '-' reads a snap-take document (a snapshot, or an image) from stdin and stores that
    /// snapshot as an image (with --to) instead of taking one.
    #[arg(value_name = "-", value_parser = pgdr_core::cli::stdin_marker, requires = "to")]
    pub input: Option<Stdin>,
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
    /// Then store the snapshot as an image in this wal-archive repository (made by
    /// wal-archive init); with --logical, store the dump there instead of in --snapshot-dir.
    #[arg(long, value_name = "REPO")]
    pub to: Option<PathBuf>,
    /// With --to (an image): concurrent transfers (pieces read, compressed and sent at once).
    #[arg(long, value_name = "N", default_value_t = PARALLEL, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub parallel: u16,
    /// With --to (an image): read and hash every file, trusting no earlier image's stamps
    /// (the image still records its own, for the next image).
    #[arg(long, requires = "to", conflicts_with = "logical")]
    pub read_all: bool,
    /// List the snapshots of --pgdata and the images of --repo, with their windows; with
    /// --logical (or --database, or --snapshot-dir without --pgdata and --repo), the logical
    /// snapshots of --snapshot-dir and --repo.
    #[arg(long, conflicts_with_all = ["input", "to", "label", "dbname", "tables", "exclude_tables"])]
    pub list: bool,
    /// With --list: the repository whose images to list and whose WAL gives the windows (with
    /// --logical: whose dumps to list). An encrypted one is read with the identity file
    /// $PGDR_IDENTITY names.
    #[arg(long, value_name = "REPO", requires = "list")]
    pub repo: Option<PathBuf>,
    /// Wait up to this many seconds for another run on the same data directory (or, with
    /// --to, on the repository's images; with --logical, on the snapshot directory or the
    /// repository's dumps).
    #[arg(long, value_name = "SECONDS")]
    pub wait_lock: Option<f64>,
    /// Take a logical snapshot (pg_dump of the database -d names) instead; with --list, list
    /// logical snapshots.
    #[arg(long, conflicts_with = "input")]
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
    /// Where pg_dump is (default: the newest on PATH, in /usr/lib/postgresql/N/bin,
    /// /usr/pgsql-N/bin or PGDR_PG_ROOT/N/bin).
    #[arg(long, value_name = "DIR")]
    pub pg_bin: Option<PathBuf>,
    /// With --list: only this database's logical snapshots (implies --logical).
    #[arg(long, value_name = "NAME", requires = "list")]
    pub database: Option<String>,
    #[command(flatten)]
    pub output: OutputArgs,
}

pgdr_core::tool_args!(Args);

/// Reads the snapshot a snap-take document on stdin names (a snapshot's, or an image's).
fn snapshot_from_stdin() -> Result<SnapshotMeta> {
    let hint = "pipe in the output of snap-take";
    let (map, _) = pgdr_core::doc::read_stdin_any(&["snap-take"])?;
    if map.get("kind").and_then(|k| k.as_str()) == Some(crate::logical::meta::KIND) {
        let name = map.get("snapshot").and_then(|s| s.as_str()).unwrap_or("it");
        return Err(
            Error::usage("a logical snapshot cannot be stored as an image")
                .because(format!(
                    "{name} is a pg_dump of one database, not a snapshot of a data directory"
                ))
                .hint("take it into the repository with snap-take --logical -d CONNINFO --to REPO"),
        );
    }
    if map.contains_key("image") {
        let r: ImageReport = pgdr_core::doc::from_map(map, "snap-take's", hint)?;
        return Ok(r.snapshot);
    }
    pgdr_core::doc::from_map(map, "snap-take's", hint)
}

/// Parses the arguments into the operation's request, runs it, prints its document.
pub fn run(args: Args) -> Result<Outcome> {
    let started = Instant::now();
    let wait_lock = pgdr_core::lock::wait_duration("--wait-lock", args.wait_lock)?;
    // A snapshot directory alone holds no physical snapshots to list without their data
    // directory: it is where logical snapshots are kept.
    let logical_list = args.logical
        || args.database.is_some()
        || (args.pgdata.is_none() && args.repo.is_none() && args.snapshot_dir.is_some());
    if args.list && logical_list {
        return Outcome::document(&crate::logical::list::run(
            args.snapshot_dir.as_deref(),
            args.repo.as_deref(),
            args.database.as_deref(),
        )?);
    }
    if args.list {
        let doc: SnapshotList = crate::cmd::list::run(&ListRequest {
            pgdata: args.pgdata,
            backend: args.backend,
            snapshot_dir: args.snapshot_dir,
            repo: args.repo,
        })?;
        return Outcome::document(&doc);
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
            wait_lock,
        })?);
    }
    let meta = match args.input {
        Some(Stdin) => {
            let m = snapshot_from_stdin()?;
            if let Some(p) = &args.pgdata {
                // --pgdata (or $PGDATA) beside '-' must name the same data directory.
                if p.canonicalize().ok() != m.pgdata.canonicalize().ok() {
                    return Err(Error::usage("give either - or --pgdata, not both").because(
                        format!(
                            "the document on stdin is about {}, --pgdata (or $PGDATA) names {}",
                            m.pgdata.display(),
                            p.display()
                        ),
                    ));
                }
            }
            m
        }
        None => {
            let pgdata = args.pgdata.ok_or_else(|| {
                Error::usage("no data directory")
                    .hint("give --pgdata DIR (or set PGDATA), '-' with --to, --list, or --logical -d CONNINFO")
            })?;
            // A --to that is no repository fails before a snapshot is taken for nothing.
            if let Some(repo) = &args.to {
                pgdr_repo::Repo::open(repo)?;
            }
            crate::cmd::take::run(&TakeRequest {
                pgdata,
                backend: args.backend,
                snapshot_dir: args.snapshot_dir,
                options: TakeOptions {
                    label: args.label,
                    dsn: args.dbname,
                    at: None,
                },
                wait_lock,
            })?
        }
    };
    let Some(repo) = args.to else {
        return Outcome::document(&meta);
    };
    let name = meta.snapshot.clone();
    // Leftovers this run removed go into its document (taking the snapshot, then opening its
    // view); a piped-in document's were reported by the run that removed them.
    let mut removed = match args.input {
        None => meta.removed_leftovers.clone(),
        Some(_) => Vec::new(),
    };
    let mut report = crate::cmd::image::run(&ImageRequest {
        snapshot: meta,
        repo,
        parallel: args.parallel.into(),
        read_all: args.read_all,
        wait_lock,
        started,
    })
    .map_err(|e| match args.input {
        // The snapshot this run took stays: say so.
        None => {
            let why = e.why.clone().map_or(String::new(), |w| format!(": {w}"));
            Error {
                why: Some(format!(
                    "{}{why}; the snapshot {name} was taken and stays",
                    e.what
                )),
                what: format!("cannot store {name} as an image"),
                ..e
            }
        }
        Some(_) => e,
    })?;
    removed.append(&mut report.snapshot.removed_leftovers);
    report.snapshot.removed_leftovers = removed;
    Outcome::document(&report)
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "The snapshot was taken and its metadata stored (with --to: and its image stored, or with --logical its dump; with --list: listed)."),
        (1, "It failed or was refused (not a data directory, no zfs/btrfs command, a layout one snapshot cannot cover, a snapshot name taken already, backup mode failed; with --logical: no pg_dump of a sufficient major, a --table pattern that matches no table, no privilege, pg_dump failed or the server restarted; nothing was left behind), or storing the image failed (no image is listed then; a snapshot taken by the run stays, and the message says so)."),
        (2, "Usage error: bad arguments, or a document on stdin that is not snap-take's (or is a logical snapshot's: it cannot be stored as an image)."),
        (75, "Another snap-take, snap-prune or snap-clone run holds the lock of this data directory's snapshots, or (--to) another upload or a snap-prune --repo holds the repository's images.lock, or (--logical) another run holds the lock of the snapshot directory or repository dumps the logical snapshot goes to (see --wait-lock)."),
    ],
    documents: &[
        pgdr_core::man::DocSection::of::<SnapshotMeta>("snap-take"),
        pgdr_core::man::DocSection::of::<ImageReport>("snap-take --to"),
        pgdr_core::man::DocSection::of::<LogicalSnapshot>("snap-take --logical"),
        pgdr_core::man::DocSection::of::<SnapshotList>("snap-take --list"),
        pgdr_core::man::DocSection::of::<LogicalList>("snap-take --list --logical"),
    ],
    json_output: "The same object is stored with the snapshot (pgdr:meta or the sidecar). Read from a snapshot, keys a newer pgdr added are ignored; read from stdin (snap-prune -, snap-clone -), the document must be snap-take's exactly.",
    examples: &[
        ("An atomic snapshot of a standby's data directory on ZFS, from cron:", "1 * * * * postgres snap-take --pgdata /zpdata01/pg --label hourly"),
        ("Backup mode on a primary, keeping the backup label:", "snap-take --pgdata /var/lib/postgresql/15/main -d 'host=/var/run/postgresql user=postgres'"),
        ("The data directory from /etc/pgdr/pgdr.toml ([global] pgdata = \"/zpdata01/pg\"), from cron:", "0 * * * * postgres snap-take --label hourly"),
        ("Take a snapshot, then apply retention and prune the WAL archive:", "snap-take --pgdata /zpdata01/pg | snap-prune - --keep-hourly 24 --keep-daily 7 | wal-archive prune - --repo /zpdata02/wal"),
        ("A snapshot stored as an image in the other region's repository, with its own retention:", "snap-take --pgdata /zpdata01/pg | snap-take - --to s3://dr-region/pg | snap-prune - --repo s3://dr-region/pg --keep-daily 30 | wal-archive prune - --repo s3://dr-region/pg"),
        ("Store a new snapshot as an image in a local repository:", "snap-take --pgdata /zpdata01/pg --to /backup/pg"),
        ("What can be restored, and to which moments:", "snap-take --list --pgdata /zpdata01/pg --repo /zpdata02/wal --pretty"),
        ("The job tables of a database, with 4 pg_dump jobs, into the cluster's repository, then a week of them kept:", "snap-take --logical -d 'dbname=app' --table 'public.job_*' --jobs 4 --to /backup/app | snap-prune - --keep-daily 7"),
        ("Nightly logical snapshots of one database in a directory, from cron:", "0 2 * * * postgres snap-take --logical -d 'dbname=app' --label nightly --snapshot-dir /backup/logical --jobs 2"),
        ("What logical snapshots a directory holds:", "snap-take --list --logical --snapshot-dir /backup/logical --pretty"),
    ],
    extra_sections: &[(
        "FILES",
        "The snapshot store, .pgdr-snapshots/NAME beside the data directory (btrfs: beside its subvolume; zfs: beside its dataset's mountpoint, so it is in no snapshot) or --snapshot-dir, holds btrfs and copy snapshots, their JSON sidecars, and .lock, the lock every snap-take, snap-prune and snap-clone run takes for these snapshots (removed when the run ends; created readable by all, so root's and the postgres user's runs share it). Created by root, the store and the sidecars belong to the data directory's owner. While --to reads a snapshot, the snapshot is seen through a view: on btrfs a read-only snapshot of it, .view-PID-NAME in the store; on ZFS a read-only clone of the set, POOL/pgdr-view-PID-NAME mounted at .view-PID-NAME in the store (so snap-prune skips the snapshot meanwhile: it has a clone); a copy is read in place under the store's lock. The view is removed when the upload ends. A btrfs view is flocked by its run for as long as it exists: one no run holds (its run was killed) is removed like the leftovers below, by the next snap-take (also snap-take - --to) or snap-prune of the store; a ZFS view of a run whose process is gone is removed by the next --to on the same pool.\nA snapshot is made under a name or with properties that mark it unfinished until its metadata is stored: btrfs and copy make it as .NAME.partial in the store and rename it to NAME after writing NAME.json; on ZFS it carries pgdr:tool=snap-take and pgdr:taker (the run making it) until pgdr:meta is set, as does the clone POOL/pgdr-read-PID-NAME through which a zfs-fuse snapshot is read. What a run that was killed (SIGKILL, OOM, a timeout) left so is removed by the next snap-take or snap-prune of the store while it holds the store's lock (on ZFS only when pgdr:taker names a run that is gone), with one stderr note each, and listed in removed_leftovers. Nothing else is touched.",
    ), (
        "CONSISTENCY",
        "PGDATA's filesystem is asked of the kernel (statfs) first: a zfs or btrfs command is run only when PGDATA is on ZFS or btrfs, so a broken zfs (no zfs-fuse daemon) never fails a snapshot of a data directory elsewhere.\nzfs: one 'zfs snapshot -r' of the dataset holding PGDATA covers it and every child dataset in one instant, so pg_wal and tablespaces may live in child datasets. Anything on another dataset, pool or filesystem is refused.\nbtrfs: snapshots are not recursive; pg_wal and tablespaces must be in the PGDATA subvolume.\ncopy: a copy takes time, so it is refused while the server runs unless -d is given; then pg_wal is copied after pg_backup_stop, so the copy holds every WAL file from wal_start to the backup's end.\nThe metadata is read from the snapshot's own global/pg_control (CRC-32C checked); with zfs-fuse, which has no .zfs directory, it is read from the live file when the checkpoint did not change across the snapshot, else through a temporary clone.",
    ), (
        "LOGICAL SNAPSHOTS",
        "A logical snapshot in --snapshot-dir DIR is the directory DIR/NAME: pgdr-logical.json (the document snap-take printed, with the SHA-256 of every file) and files/, pg_dump's files each in wal-archive's stored-object format (a 68-byte header with the size and SHA-256, then a zstd body: tail -c +69 FILE | zstd -d gives pg_dump's file back). It is made in the hidden directory DIR/.NAME.pgdr-tmp.PID and renamed into place when complete; DIR/.lock is the lock, shared with physical snapshots kept in the same directory. In a repository the same files are the objects dumps/NAME/files/FILE and the document the object dumps/NAME/manifest, written last, under the repository's dumps.lock (crates/repo/FORMAT.md, 'Logical dumps'). pg_dump writes its scratch copy uncompressed (--compress=0) into the staging directory, or for --to into a new directory $TMPDIR/pgdr-dump-XXXXXX: there must be room for the uncompressed dump there. That copy is plaintext even when the repository encrypts (pg_dump's directory format writes files, so it cannot be streamed into encrypted objects): it is created 0700 with pg_dump's files 0600 (umask 077), each file is removed as soon as it is stored, and the directory when the run ends, also on failure, SIGINT and SIGTERM. pg_dump is stopped when snap-take dies, but a run killed with SIGKILL (or a power loss) leaves the plaintext staging behind until the next snap-take --logical or snap-prune --logical on this host removes it: under the place's lock for DIR/.NAME.pgdr-tmp.PID and a repository's dump files without a manifest, and for $TMPDIR/pgdr-dump-XXXXXX only when its file pgdr-owner names a process that is provably gone (same host, boot and PID namespace; a directory without that file, another user's or a symlink is never touched). Each is reported in removed_leftovers with one note on stderr. Point TMPDIR at an encrypted file system when that window matters.\nThe dump is consistent as of consistent_at: snap-take's own session exports its snapshot (pg_export_snapshot() in a REPEATABLE READ, READ ONLY transaction, also on a standby) and passes it to pg_dump --snapshot, so all jobs read the same snapshot and the time and WAL position of that snapshot are recorded, not the time pg_dump started. The role needs what pg_dump needs (SELECT on the tables); without EXECUTE on pg_control_system() system_identifier is null and the snapshot can only go to a --snapshot-dir.",
    )],
};

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main::<Args>("snap-take", run)
}
