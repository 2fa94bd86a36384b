//! The `wal-archive` command line: arguments, and the rendering of each subcommand's
//! document. The operations are in [`crate::cmd`].

use crate::cmd::check::CheckOptions;
use crate::cmd::copy::CopyOptions;
use crate::cmd::get::{self, GetOptions, GET_FATAL};
use crate::cmd::init::InitOptions;
use crate::cmd::prefetch::WorkerOptions;
use crate::cmd::prune::{Bound, PruneOptions};
use crate::cmd::push::PushOptions;
use crate::cmd::{check, copy, info, init, list, prefetch, prune, push, verify};
use crate::doc;
use pgdr_core::cli::Stdin;
use pgdr_core::man::DocSection;
use pgdr_core::{Error, Outcome, OutputArgs, Result};
use pgdr_repo::stored::Compression;
use std::path::PathBuf;

const ABOUT: &str =
    "Push PostgreSQL WAL into a private, checksummed, compressed archive and get it back";

const LONG_ABOUT: &str = "\
wal-archive is PostgreSQL's archive_command and restore_command. push checks each segment's page \
header (magic, timeline, address, system identifier), compresses it (zstd by default), stores it \
with the SHA-256 of its original bytes, makes it durable, and publishes it under a name that can \
never be overwritten. get verifies the checksum before writing the destination atomically; a \
file that is archived but damaged exits 126, which stops recovery instead of ending it early. \
list, info (with the recovery window), verify and prune work on the whole repository, timeline by \
timeline; check proves end to end that a running primary archives into it.

The repository is --repo (or $WAL_ARCHIVE_REPO, else $PGDR_REPO): a local directory, or \
s3://BUCKET[/PREFIX] in Amazon S3 or an S3-compatible store (credentials, region and endpoint from \
the standard AWS variables or the instance's credential chain). It is created by 'wal-archive \
init' and bound to one cluster's system identifier (given to init with --pgdata or -d, or taken \
from the first push); every other command refuses a location that is not an initialised \
repository. init --encrypt-to makes every object an age file for those recipients; reading it \
back needs --identity. copy sends what one repository holds to another (another region), \
verified and re-encrypted. The format is described in FORMAT.md inside the repository and in the \
REPOSITORY FORMAT section of the man page.";

#[derive(Debug, clap::Parser)]
#[command(name = "wal-archive", version, about = ABOUT, long_about = LONG_ABOUT)]
pub struct Args {
    #[command(flatten)]
    pub output: OutputArgs,
    /// The repository: a directory, or s3://BUCKET[/PREFIX] (default: $WAL_ARCHIVE_REPO, else
    /// $PGDR_REPO).
    #[arg(
        long,
        global = true,
        value_name = "PATH|s3://BUCKET[/PREFIX]",
        env = "WAL_ARCHIVE_REPO"
    )]
    pub repo: Option<PathBuf>,
    /// The age identity file (AGE-SECRET-KEY-1… lines, or an unencrypted ssh-ed25519/ssh-rsa
    /// private key) that decrypts an encrypted repository; refused when group or others can
    /// read it.
    #[arg(long, global = true, value_name = "FILE", env = "PGDR_IDENTITY")]
    pub identity: Option<PathBuf>,
    #[command(subcommand)]
    pub cmd: Cmd,
}

pgdr_core::tool_args!(Args);

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Create a repository (wal-archive init --repo DIR [--pgdata DIR | -d CONNINFO]).
    #[command(
        long_about = "Create a repository: the directory (0700; its parent must exist) or an \
empty one (an unmounted mount point is refused by every other command, never filled), the \
format page and the settings. With --pgdata (read from pg_control) or -d (asked from the \
server) it is bound to that cluster at once; otherwise the first push binds it. Running init \
again on a repository with the same settings changes nothing (\"created\": false); other \
settings are refused."
    )]
    Init(InitArgs),
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
unreadable or damaged, no usable repository, or a wrong command line: exit 126, nothing written. DEST is renamed into \
place but not fsynced: PostgreSQL moves a restored file under its own name in pg_wal with \
durable_rename, which fsyncs it (KeepFileRestoredFromArchive, xlogarchive.c), before it relies on \
it, and a crash before that restarts recovery, which asks the archive again; a sync here would \
only wait for the disk."
    )]
    Get(GetArgs),
    /// Per timeline: first, last, count, bytes, stored bytes, gaps; history files.
    List,
    /// The repository, WAL per timeline, images, and the recovery window (earliest, latest LSN).
    #[command(
        long_about = "Describe the repository: where it is, its format, cluster, compression and \
encryption; its WAL per timeline (first and last segment, count, bytes, gaps); its snapshot \
images (snap-take --to), each with its consistent point and how far a recovery from it reaches; \
and the recovery window: the earliest and latest LSN a server can be recovered to from what it \
holds, following the newest timeline and its ancestors as recovery_target_timeline = 'latest' \
does. The earliest is the consistent point of the oldest image (null, with a note, when there is \
none: a snapshot or pg_basebackup kept elsewhere is not known to the repository); the latest is \
the end of the last segment reachable from the oldest image's first WAL file (without an image: \
from the start of the run of segments ending at the newest) without a missing one. No time is \
read from WAL records: earliest_time is the image's consistent_at, latest_segment_stored_at when \
the last segment was stored."
    )]
    Info,
    /// Read back every file: checksum, header, continuity per timeline following history files.
    #[command()]
    Verify,
    /// Remove segments older than a bound on every timeline (never .history files).
    #[command()]
    Prune(PruneArgs),
    /// Check a running primary's archiving into the repository, end to end.
    #[command(
        long_about = "Check that a running primary archives into the repository: archive_mode is \
on; archive_command runs 'wal-archive push' into this repository (named by --repo in the \
command, or by WAL_ARCHIVE_REPO/PGDR_REPO set in it; when the command names none, the server's \
environment or configuration file decides, which is reported as a warning); archive_library is \
not set; the server's system identifier is the repository's; pg_stat_archiver shows no failure \
since the last success. Then it writes a little WAL (txid_current()), forces a WAL switch \
(pg_switch_wal()) and waits up to --timeout seconds for the switched segment to arrive in the \
repository. An archive_command that pushes into several repositories ('push %p --repo A && \
push %p --repo B') passes when one of them is this repository, and every other one is checked \
too: it opens, holds the server's cluster's WAL and has the switched segment (command_repos). \
Every problem is listed with a code; exit 0 when there is none, 1 otherwise. A \
standby is refused (exit 1): check its primary. Needs a role that may read archive_command \
(superuser or pg_read_all_settings) and execute pg_switch_wal()."
    )]
    Check(CheckArgs),
    /// Copy what the repository holds and DST lacks into DST (another region), verified.
    #[command(
        long_about = "Copy every object the repository (--repo, SRC) holds and DST lacks: WAL, \
history files, and any other object kind (images, dumps), one object at a time on --parallel \
threads. Each object is checked as read from SRC (checksum, size, cluster; an encrypted one is \
authenticated) and again as stored in DST (read back and compared), and is re-encrypted for \
DST's recipients. A name DST holds already is never overwritten; one with other content is \
reported (exit 1). Idempotent; a copy killed at any point is resumed by running it again. DST \
must be initialised (wal-archive init --repo DST) and not bound to another cluster. DST keeps its \
own retention: what 'wal-archive prune --repo DST' removed is not copied again."
    )]
    Copy(CopyArgs),
    /// Internal: fills get's prefetch spool (started by get --prefetch).
    #[command(hide = true)]
    PrefetchWorker(WorkerArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// push's default compression (default zstd).
    #[arg(long, value_enum)]
    pub compress: Option<Compression>,
    /// push's default zstd level (-7 to 22; default 1).
    #[arg(long, allow_negative_numbers = true)]
    pub level: Option<i32>,
    /// Bind the repository to this data directory's cluster (read from global/pg_control).
    #[arg(long, short = 'D', value_name = "DIR", conflicts_with = "dbname")]
    pub pgdata: Option<PathBuf>,
    /// Bind the repository to this server's cluster: a libpq conninfo or postgres:// URI.
    #[arg(short = 'd', long = "dbname", value_name = "CONNINFO")]
    pub dbname: Option<String>,
    /// Encrypt every object stored from now on to this recipient: an age public key (age1…)
    /// or an ssh-ed25519/ssh-rsa public key line. Repeatable.
    #[arg(long, value_name = "RECIPIENT")]
    pub encrypt_to: Vec<String>,
    /// Encrypt to the recipients listed in FILE (one a line, # comments), as age -R reads them.
    #[arg(long, value_name = "FILE")]
    pub encrypt_to_file: Vec<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct CheckArgs {
    /// The primary: a libpq conninfo or postgres:// URI (default: the PG* environment, as
    /// libpq).
    #[arg(short = 'd', long = "dbname", value_name = "CONNINFO")]
    pub dbname: Option<String>,
    /// Seconds to wait for the switched segment to arrive in the repository.
    #[arg(long, value_name = "SECONDS", default_value_t = 60.0)]
    pub timeout: f64,
}

#[derive(Debug, clap::Args)]
pub struct CopyArgs {
    /// The repository to copy into: a directory or s3://BUCKET[/PREFIX], initialised.
    #[arg(long, value_name = "DST")]
    pub to: PathBuf,
    /// The identity that decrypts DST, when DST is encrypted for other recipients than SRC
    /// (default: --identity; one age identity file may hold both).
    #[arg(long, value_name = "FILE")]
    pub to_identity: Option<PathBuf>,
    /// Objects copied at once (default 4).
    #[arg(long, value_name = "N", default_value_t = 4)]
    pub parallel: usize,
    /// Count what would be copied; copy nothing.
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, clap::Args)]
pub struct PushArgs {
    /// The file to archive (%p: pg_wal/NAME, relative to the data directory).
    #[arg(value_name = "PATH")]
    pub path: PathBuf,
    /// Compression of the stored copy (default: the repository's, else zstd).
    #[arg(long, value_enum)]
    pub compress: Option<Compression>,
    /// zstd level (-7 to 22; default: the repository's, else 1). Not accepted with lz4 or none.
    #[arg(long, allow_negative_numbers = true)]
    pub level: Option<i32>,
    /// Also push, with N threads, the other files pg_wal/archive_status marks .ready; later
    /// calls for them (with --parallel too, as archive_command gives every call) return at
    /// once. PostgreSQL's status files are never renamed.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub parallel: usize,
    #[command(flatten)]
    pub quiet: QuietArgs,
}

/// push and get are quiet when PostgreSQL runs them.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct QuietArgs {
    /// Print the document even when PostgreSQL runs this (by default nothing is printed on
    /// success under archive_command or restore_command: their stdout is the server log).
    #[arg(long)]
    pub json: bool,
}

impl QuietArgs {
    /// The document, or nothing under the server (failures print their line on stderr
    /// either way: the runner does that).
    fn render<T: pgdr_core::Document>(&self, doc: &T) -> Result<Outcome> {
        if !self.json && crate::caller::run_by_postgres() {
            return Ok(Outcome::text(String::new()));
        }
        Outcome::document(doc)
    }
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
    /// outside pg_wal (only when DEST is PostgreSQL's RECOVERYXLOG), on the timeline recovery
    /// follows (across a switch to a newer timeline whose history file is in pg_wal). The spool
    /// holds at most N segments and at most 1 GiB of them (at least one segment).
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub prefetch: usize,
    /// The prefetch spool (default: pgdr_wal_prefetch beside DEST's directory, i.e. in the
    /// data directory, outside pg_wal).
    #[arg(long, value_name = "DIR")]
    pub spool: Option<PathBuf>,
    #[command(flatten)]
    pub quiet: QuietArgs,
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
    /// '-': read snap-prune's document on stdin and keep from its oldest kept snapshot's
    /// wal_start. A snap-prune --dry-run document makes this a dry run too.
    #[arg(value_name = "-", value_parser = pgdr_core::cli::stdin_marker)]
    pub input: Option<Stdin>,
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
    #[arg(long)]
    pub pg_wal: Option<PathBuf>,
}

pub fn main() -> std::process::ExitCode {
    pgdr_core::runner::main_with::<Args>(
        "wal-archive",
        run,
        pgdr_core::runner::Settings {
            // restore_command: a broken configuration file or command line must stop
            // recovery, not end it (exit 2 would read as "not archived").
            config_failure_code: |path| {
                (path.first().map(String::as_str) == Some("get")).then_some(GET_FATAL)
            },
            ..Default::default()
        },
    )
}

fn repo_location(repo: Option<PathBuf>) -> Result<PathBuf> {
    match repo.or_else(|| std::env::var_os("PGDR_REPO").map(PathBuf::from)) {
        Some(p) if !p.as_os_str().is_empty() => Ok(p),
        _ => Err(Error::usage("no repository given")
            .hint("pass --repo PATH or s3://BUCKET/PREFIX, set WAL_ARCHIVE_REPO, or set repo in /etc/pgdr/pgdr.toml")),
    }
}

/// Runs the parsed command and renders its document.
///
/// # Errors
/// The operation's.
pub fn run(args: Args) -> Result<Outcome> {
    let location = repo_location(args.repo);
    if let Some(id) = &args.identity {
        // The repository layer (and get's prefetch worker, a child process) reads the
        // identity from PGDR_IDENTITY; set here, before any thread starts.
        let id = std::path::absolute(id).unwrap_or_else(|_| id.clone());
        std::env::set_var(pgdr_repo::crypt::IDENTITY_ENV, id);
    }
    match args.cmd {
        Cmd::Init(a) => Outcome::document(&init::init(
            &location?,
            &InitOptions {
                compression: a.compress,
                level: a.level,
                pgdata: a.pgdata,
                dbname: a.dbname,
                encrypt_to: a.encrypt_to,
                encrypt_to_file: a.encrypt_to_file,
            },
        )?),
        Cmd::Push(a) => a.quiet.render(&push::push(
            &location?,
            &PushOptions {
                path: a.path,
                compression: a.compress,
                level: a.level,
                parallel: a.parallel,
            },
        )?),
        Cmd::Get(a) => a.quiet.render(&get::get(
            &location.map_err(get::fatal)?,
            &GetOptions {
                name: a.name,
                dest: a.dest,
                prefetch: a.prefetch,
                spool: a.spool,
            },
        )?),
        Cmd::List => Outcome::document(&list::list(&location?)?),
        Cmd::Info => Outcome::document(&info::info(&location?)?),
        Cmd::Check(a) => {
            let report = check::check(
                &location?,
                &CheckOptions {
                    dbname: a.dbname,
                    timeout: pgdr_core::lock::wait_duration("--timeout", Some(a.timeout))?
                        .unwrap_or_default(),
                },
            )?;
            let code = if report.ok { 0 } else { 1 };
            Ok(Outcome::document(&report)?.with_code(code))
        }
        Cmd::Verify => {
            let report = verify::verify(&location?)?;
            let code = if report.ok { 0 } else { 1 };
            Ok(Outcome::document(&report)?.with_code(code))
        }
        Cmd::Prune(a) => {
            let bound = match (a.before, a.keep_days, a.input) {
                (Some(b), _, _) => Bound::Before(b),
                (None, Some(d), _) => Bound::KeepDays(d),
                (None, None, _) => Bound::SnapPrune(Box::new(pgdr_core::doc::read_stdin::<
                    pgdr_snap::doc::PruneReport,
                >()?)),
            };
            Outcome::document(&prune::prune(
                &location?,
                &PruneOptions {
                    bound,
                    dry_run: a.dry_run,
                    wait_lock: a.wait_lock,
                },
            )?)
        }
        Cmd::Copy(a) => {
            let report = copy::copy(
                &location?,
                &CopyOptions {
                    to: a.to,
                    to_identity: a.to_identity,
                    parallel: a.parallel,
                    dry_run: a.dry_run,
                },
            )?;
            let code = if report.failed.is_empty() { 0 } else { 1 };
            Ok(Outcome::document(&report)?.with_code(code))
        }
        Cmd::PrefetchWorker(a) => Outcome::document(&prefetch::worker(
            &location?,
            &WorkerOptions {
                spool: a.spool,
                after: a.after,
                count: a.count,
                pg_wal: a.pg_wal,
            },
        )?),
    }
}

pub static MAN: pgdr_core::man::ManExtra = pgdr_core::man::ManExtra {
    exit_status: &[
        (0, "Success. init: the repository exists with these settings. push: the file is archived and on disk (also when it was already archived with identical content). verify: no problem found. check: no problem found."),
        (1, "The operation failed or was refused, nothing changed. Every command but init and get: --repo is not an initialised repository (a missing or empty directory, e.g. an unmounted mount point, or an empty or foreign S3 prefix; nothing is created); an S3 store that cannot be reached, refuses the credentials, has no such bucket, or keeps failing (a request is retried up to 8 times with jittered exponential backoff, for at most 30 seconds; a store that accepts the connection but sends nothing for 30 seconds fails the request as timed out); an identity file group or others can read. copy: SRC or DST cannot be decrypted, DST belongs to another cluster, or some objects could not be copied (the report lists them). push: a different file is archived under the name (both checksums named), a foreign cluster's segment, a bad page header, an I/O error such as a full disk. get: the name is not archived (one line; PostgreSQL reads it as the end of the archive). verify: problems found (the report is printed). check: problems found (the report is printed), the server cannot be reached, or it is a standby (one line: check its primary)."),
        (2, "Usage error or malformed input (bad arguments, a document on stdin that is not snap-prune's); for get, 126 instead."),
        (75, "prune: another prune holds the repository's lock (see --wait-lock)."),
        (GET_FATAL, "get only: the file is archived but cannot be read back intact (checksum mismatch, damaged, truncated or unreadable file; an encrypted repository without an identity, with a wrong one, or with one group or others can read), or there is no usable repository (missing, not initialised, unreadable, unreachable), or DEST cannot be written, or the command line is wrong (an unknown or empty option; no repository given, a WAL_ARCHIVE_REPO= set empty counting as unset; a name that is no WAL file name: PostgreSQL would read exit 2 as 'not archived' and end recovery there). Nothing is written to DEST. PostgreSQL treats a restore_command status above 125 as fatal and stops recovery instead of ending it early at the wrong point. No other command exits above 125."),
    ],
    documents: &[
        DocSection::of::<doc::InitReport>("init"),
        DocSection::of::<doc::PushReport>("push"),
        DocSection::of::<doc::GetReport>("get"),
        DocSection::of::<doc::ListReport>("list"),
        DocSection::of::<doc::VerifyReport>("verify"),
        DocSection::of::<doc::InfoReport>("info"),
        DocSection::of::<doc::CheckReport>("check"),
        DocSection::of::<doc::PruneReport>("prune"),
        DocSection::of::<doc::CopyReport>("copy"),
    ],
    json_output: "\
Each command prints one document; push and get print theirs only when run by hand or with --json: run by PostgreSQL (archive_command, restore_command: a postgres process among their ancestors) they print nothing on success, because their stdout is the server log. Failures always print one line on stderr. Sizes: \"bytes\" are original bytes, \"stored_bytes\" as stored in the repository (compressed, with the 68-byte header). System identifiers are strings (64-bit integers do not survive JSON doubles).",
    examples: &[
        ("Create the repository, bound to the cluster of a data directory:", "wal-archive init --repo /arch --pgdata /var/lib/postgresql/15/main"),
        ("Archive from PostgreSQL (postgresql.conf):", "archive_command = 'wal-archive push %p --repo /arch'"),
        ("Archive faster, pushing other ready segments with 4 threads:", "archive_command = 'wal-archive push %p --parallel 4 --repo /arch'"),
        ("Restore (postgresql.conf of the server being recovered):", "restore_command = 'wal-archive get %f %p --prefetch 8 --repo /arch'"),
        ("See what the archive holds, per timeline:", "wal-archive list --repo /arch --pretty"),
        ("Check every file from cron:", "wal-archive verify --repo /arch >/dev/null || page-oncall"),
        ("What the repository holds and the LSNs a recovery can reach:", "wal-archive info --repo /arch --pretty"),
        ("Check that the primary really archives into the repository (a forced switch, 30 s):", "wal-archive check --repo /arch -d 'host=/run/postgresql dbname=postgres' --timeout 30"),
        ("The same with the PG* environment, from cron:", "PGHOST=/run/postgresql PGDATABASE=postgres wal-archive check --repo /arch >/dev/null || page-oncall"),
        ("Keep WAL for the snapshots snap-prune keeps:", "snap-prune --pgdata /pg --keep-daily 7 | wal-archive prune - --repo /arch"),
        ("Create a repository bound to a running server's cluster, storing lz4:", "wal-archive init --repo /arch -d 'host=/run/postgresql dbname=postgres' --compress lz4"),
        ("Remove WAL before a segment, previewing first:", "wal-archive prune --before 000000010000000A00000000 --repo /arch --dry-run"),
        ("Keep two weeks of WAL:", "wal-archive prune --keep-days 14 --repo /arch"),
        ("An encrypted repository in another region:", "wal-archive init --repo s3://dr-region/pg --pgdata /pg --encrypt-to-file /etc/pgdr/recipients.txt"),
        ("A daily copy into it:", "wal-archive copy --repo /arch --to s3://dr-region/pg"),
        ("Restore from it (the identity file is 0600):", "restore_command = 'wal-archive get %f %p --repo s3://dr-region/pg --identity /etc/pgdr/dr.key'"),
        ("Copy into another region, previewing first, 8 objects at a time:", "wal-archive copy --repo s3://main/pg --to s3://dr-region/pg --parallel 8 --dry-run"),
    ],
    extra_sections: &[
        ("REPOSITORY FORMAT", "\
Version 1 (checked on every open; another version is refused). The repository directory holds pgdr-wal-archive.json (the settings: {\"format\": \"pgdr-wal-archive\", \"version\": 1, \"created\", and when known at init \"system_identifier\", \"wal_segment_size\"; optionally \"compression\", \"compression_level\"), cluster.json (the cluster the first push bound the repository to, when init was not told), FORMAT.md (the full description), wal/TTTTTTTT/NAME (every archived file under its PostgreSQL name, in the directory of its timeline, .history files included), acks/ (push --parallel acknowledgements) and prune.lock.
Each stored file is a 68-byte header (magic PGDRWAL\\0, file format version, compression, kind, original size, system identifier, SHA-256 of the original bytes, CRC-32C of the header) followed by the body: raw, one zstd frame, or an lz4 frame.
Directories are created 0700 and files 0600; a repository directory writable by group or others, or owned by another user (unless running as root), is refused, with the owner named.
Files are written to a file in the target directory that has no name yet (O_TMPFILE: a run killed by SIGKILL leaves nothing behind), fsynced, published by linking it to its name (a link never replaces an existing name) and the directory fsynced: a name, once published, is never replaced. Where the file system has no unnamed files (FUSE such as zfs-fuse, NFS) the file is .NAME.pgdr-tmp.PID.N, published with renameat2(RENAME_NOREPLACE) (link where unsupported); prune removes such leftovers after a day. cluster.json is published the same way, so two first pushes at once bind the repository to one cluster."),
        ("S3 REPOSITORIES", "\
--repo s3://BUCKET[/PREFIX] keeps the same layout as keys below PREFIX. The bucket must exist. Every object is published with a conditional create (If-None-Match: *), decided by the store, never a check then a put: objects above 8 MiB are sent in parallel parts (at most --parallel parts in memory; default 4) to a temporary key .NAME.pgdr-tmp.PID.N beside the final one, then published under the final name by a conditional CompleteMultipartUpload copying it server-side, and the temporary key deleted. A killed run may leave such temporary keys (prune removes them after a day) and incomplete multipart uploads (a bucket lifecycle rule AbortIncompleteMultipartUpload removes those). Requests that fail on the network, with a 5xx or throttling answer are retried up to 8 times with jittered exponential backoff (from 100 ms, at most 5 s apart), for at most 30 seconds: an endpoint nobody answers on fails within a few seconds. prune's lock is an object, prune.lock (images.lock and dumps.lock likewise), created the same way and deleted when done. It names its holder (host, boot, PID namespace, PID and the process's start time) and is rewritten every minute while held; a run on the same host and boot that finds the holder's process gone takes it over at once (a run killed with SIGKILL), any run after 10 minutes without a rewrite (an hour for a lock written by an older pgdr, which does not rewrite it). A run refused the lock names its holder."),
        ("ENCRYPTION", "\
A repository made with init --encrypt-to or --encrypt-to-file (format version 2) stores every object but pgdr-wal-archive.json, cluster.json and FORMAT.md as an age file (age-encryption.org/v1) for its recipients: X25519 age1… keys or ssh-ed25519/ssh-rsa public keys. 'age -d -i KEY OBJECT' gives what pgdr stores unencrypted: for WAL, the 68-byte header and the compressed body, so 'age -d -i KEY OBJECT | tail -c +69 | zstd -d' is the original file. Object names and the settings are the only plaintext. Writing needs only the recipients. Reading (get, verify, list's sizes, copy, and push when a name is already archived and must be compared) needs --identity FILE or PGDR_IDENTITY: age identities (AGE-SECRET-KEY-1… lines) or an unencrypted ssh-ed25519/ssh-rsa private key, in a file group and others cannot read. Without an identity, list reports \"content_read\": false and verify \"content_verified\": false (names and continuity checked only). Plaintext is staged in private files under $TMPDIR that have no name (O_TMPFILE, else unlinked as soon as made) while objects are encrypted or copied, as is every object bound for S3: a run killed by SIGKILL leaves no plaintext behind."),
        ("ENVIRONMENT", "\
WAL_ARCHIVE_REPO, then PGDR_REPO: the repository when --repo is not given. PGDR_IDENTITY: the identity file when --identity is not given. TMPDIR: where objects for S3 or for encryption are staged. For s3:// repositories: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, AWS_REGION (or AWS_DEFAULT_REGION), AWS_ENDPOINT_URL (MinIO, Ceph RGW, OSS and other S3-compatible stores), AWS_ALLOW_HTTP=true (a plain-HTTP endpoint, e.g. a test server), AWS_CA_BUNDLE (a PEM file of the CA certificates to trust instead of the system's, as for the AWS CLI: a private CA); without keys, the container (AWS_CONTAINER_CREDENTIALS_*), web identity (AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN) and instance metadata credentials. Credentials are never taken from the command line and never printed."),
    ],
};
