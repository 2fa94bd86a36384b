//! The documents wal-archive prints, one type each (SPEC "One document shape"). Sizes:
//! `bytes` are original bytes, `stored_bytes` as stored (compressed, with the header).
//! wal-archive reads one document with `-`: snap-prune's [`pgdr_snap::doc::PruneReport`].

use chrono::{DateTime, Utc};
use pgdr_core::Document;
use pgdr_pgformat::Lsn;
pub use pgdr_repo::doc::{FileKind, Gap, Problem, StoredFile, Timeline};
use pgdr_repo::stored::Compression;
use serde::{Deserialize, Serialize};

/// `wal-archive init`: the repository as it now is.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InitReport {
    /// The repository (--repo).
    pub repo: String,
    /// True when this run created it; false when it was already a repository with these
    /// settings (init is idempotent).
    pub created: bool,
    /// The repository format version (FORMAT.md).
    pub format_version: u32,
    /// What push uses when --compress is not given.
    pub compression: Compression,
    /// The zstd level push uses when --level is not given (null: 1, or no levels).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub compression_level: Option<i32>,
    /// The database system identifier the repository is bound to, as a string (64-bit
    /// integers do not survive JSON doubles); null until the first push binds it.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub system_identifier: Option<String>,
    /// The cluster's WAL segment size in bytes; null until bound.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub wal_segment_size: Option<u64>,
    /// The user owning the repository directory: the one that must run archive_command
    /// (null when the repository is not a local directory).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub owner: Option<String>,
    /// Where it is: "local" (a directory) or "s3" (an S3-compatible bucket).
    pub kind: String,
    /// The recipients every object is encrypted to (public keys); empty when the repository
    /// is not encrypted.
    pub encrypt_to: Vec<String>,
}

impl Document for InitReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
}

/// `push`: the file archived, and with --parallel the other ready files pushed meanwhile.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PushReport {
    /// The repository.
    pub repo: String,
    /// The file PostgreSQL asked for.
    pub file: StoredFile,
    /// True when an earlier `push --parallel` had already stored this very file (same
    /// device, inode, size and modification time), so nothing was read again.
    pub acknowledged: bool,
    /// What --parallel pushed ahead; null without --parallel.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub parallel: Option<ParallelReport>,
}

impl Document for PushReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
}

/// The files `push --parallel` pushed ahead of PostgreSQL's calls.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParallelReport {
    /// Pushed and acknowledged.
    pub pushed: Vec<StoredFile>,
    /// Not pushed (PostgreSQL's own call for each gets the full answer later).
    pub failed: Vec<ParallelFailure>,
}

/// A file --parallel could not push.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParallelFailure {
    /// Its name.
    pub name: String,
    /// The error line.
    pub error: String,
}

/// `get`: the file restored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GetReport {
    /// The name restored (%f).
    pub name: String,
    /// Where it was written (%p).
    pub dest: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// How it was stored.
    pub compression: Compression,
    /// SHA-256 of its bytes, checked against the archived one.
    pub sha256: String,
    /// True when it came from the --prefetch spool (verified by the prefetch worker against
    /// the checksum the archive still records).
    pub from_prefetch: bool,
    /// How many following segments a background prefetch was started for (0: none, or the
    /// worker an earlier get started is still at work): --prefetch N within the spool's bound.
    pub prefetch: usize,
}

impl Document for GetReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
}

/// `list`: what the repository holds, per timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListReport {
    /// The repository.
    pub repo: String,
    /// Its format version (FORMAT.md).
    pub format_version: u32,
    /// The database system it is bound to, as a string; null until the first push.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub system_identifier: Option<String>,
    /// The cluster's WAL segment size in bytes; null until the first push.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub wal_segment_size: Option<u64>,
    /// Archived files of every kind.
    pub files: u64,
    /// Their original bytes.
    pub bytes: u64,
    /// Their bytes in the repository.
    pub stored_bytes: u64,
    /// Per timeline, in order.
    pub timelines: Vec<Timeline>,
    /// The archived history files.
    pub history: Vec<String>,
    /// Files whose header cannot be read.
    pub unreadable: Vec<Problem>,
    /// True when every file's header was read. False for an encrypted repository listed
    /// without an identity: then "bytes" are 0 (unknown) and history files were not followed
    /// (no parent or switchpoint).
    pub content_read: bool,
}

impl Document for ListReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
}

/// `verify`: every file read back in full; exit 1 when problems is not empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyReport {
    /// The repository.
    pub repo: String,
    /// True when no problem was found.
    pub ok: bool,
    /// Files read.
    pub files: u64,
    /// Their original bytes.
    pub bytes: u64,
    /// Their bytes in the repository.
    pub stored_bytes: u64,
    /// Per timeline, as list prints them.
    pub timelines: Vec<Timeline>,
    /// Damaged or foreign files, gaps, missing history files, timelines that do not reach
    /// their children's switch points.
    pub problems: Vec<Problem>,
    /// Temporary files of writes in progress or killed (prune removes them after a day).
    pub temporary_files: u64,
    /// Objects under wal/ that are not archived files (wrong names or places).
    pub unknown_files: Vec<String>,
    /// True when every file was read back and checked. False for an encrypted repository
    /// verified without an identity: then only names, continuity by name and the presence
    /// of history files were checked.
    pub content_verified: bool,
}

impl Document for VerifyReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
}

/// Where prune's bound came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub enum PruneSource {
    /// --before WALNAME.
    #[serde(rename = "before")]
    Before,
    /// --keep-days N.
    #[serde(rename = "keep_days")]
    KeepDays,
    /// `-`: snap-prune's document on stdin (the wal_start of its oldest kept snapshot).
    #[serde(rename = "snap-prune")]
    SnapPrune,
}

/// `prune`: what was (with dry_run: would be) removed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneReport {
    /// The repository.
    pub repo: String,
    /// The first segment kept on every timeline; null when there was nothing to keep from
    /// (then nothing is removed).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub bound: Option<String>,
    /// Where the bound came from.
    pub source: PruneSource,
    /// Nothing was removed: "removed" lists what would have been.
    pub dry_run: bool,
    /// What made this a dry run: "--dry-run", or the tool whose document on stdin was a dry
    /// run ("snap-prune"); null when it was not one.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub dry_run_from: Option<String>,
    /// The files removed (segments, .partial and .backup files below the bound; never
    /// .history files), in name order.
    pub removed: Vec<String>,
    /// How many.
    pub removed_count: u64,
    /// Their bytes in the repository (what the removal frees).
    pub removed_stored_bytes: u64,
    /// Archived files kept.
    pub kept: u64,
    /// Temporary files of writes killed more than a day ago, removed too.
    pub stale_temporary_files: u64,
    /// Why nothing was done, when there was no bound.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub note: Option<String>,
}

impl Document for PruneReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// The hidden `prefetch-worker` (started by `get --prefetch`, its output discarded).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PrefetchReport {
    /// Segments decompressed, verified and put into the spool.
    pub prefetched: u64,
}

impl Document for PrefetchReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
}

/// `copy`: what was copied from one repository to another (with dry_run: would be).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CopyReport {
    /// The repository copied from (--repo).
    pub repo: String,
    /// The repository copied to (--to).
    pub to: String,
    /// Nothing was copied: the counts say what would have been.
    pub dry_run: bool,
    /// Objects SRC holds (WAL, history files, images, dumps; not settings, locks or
    /// acknowledgements).
    pub objects: u64,
    /// Objects copied by this run (each checked as read from SRC and as stored in DST).
    pub copied: u64,
    /// Their original bytes (as pgdr stores them, before encryption); 0 on a dry run,
    /// which reads no object to learn it.
    pub bytes: u64,
    /// Their bytes as stored in DST (after DST's encryption); on a dry run, as SRC stores
    /// them.
    pub stored_bytes: u64,
    /// Objects DST already held with identical content.
    pub present: u64,
    /// Objects DST's own retention removed (below its prune bound): never brought back.
    pub skipped_pruned: u64,
    /// Objects that could not be copied, each with why (then the exit status is 1).
    pub failed: Vec<Problem>,
}

impl Document for CopyReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// `info`: the repository, what it holds per timeline, and the recovery window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InfoReport {
    /// The repository (--repo).
    pub repo: String,
    /// Where it is: "local" (a directory) or "s3" (an S3-compatible bucket).
    pub kind: String,
    /// Its format version (FORMAT.md): 1 plain, 2 encrypted.
    pub format_version: u32,
    /// When it was created (its settings' "created").
    pub created: DateTime<Utc>,
    /// The database system it is bound to, as a string; null until the first push.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub system_identifier: Option<String>,
    /// The cluster's WAL segment size in bytes; null until the first push.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub wal_segment_size: Option<u64>,
    /// What push uses when --compress is not given (the settings'; else zstd).
    pub compression: Compression,
    /// The zstd level push uses when --level is not given (null: 1, or no levels).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub compression_level: Option<i32>,
    /// True when every object is encrypted (format version 2).
    pub encrypted: bool,
    /// The recipients objects are encrypted to; empty when not encrypted.
    pub encrypt_to: Vec<String>,
    /// True when objects could be read. False for an encrypted repository without an
    /// identity: then "bytes" are 0 (unknown) and history files were not followed, so the
    /// window is computed on the newest timeline alone.
    pub content_read: bool,
    /// Archived WAL files of every kind (segments, .partial, .backup, .history).
    pub files: u64,
    /// Their original bytes.
    pub bytes: u64,
    /// Their bytes in the repository.
    pub stored_bytes: u64,
    /// WAL per timeline, in order, as list prints it (first/last segment, count, bytes,
    /// stored_bytes, gaps, parent and switch point from the history file).
    pub timelines: Vec<Timeline>,
    /// Files whose header cannot be read.
    pub unreadable: Vec<Problem>,
    /// The snapshot images it holds (snap-take --to), oldest first; empty when content_read
    /// is false (their manifests are encrypted).
    pub images: Vec<InfoImage>,
    /// The logical snapshots it holds (snap-take --logical --to), oldest first, as
    /// 'snap-take --list --logical' lists them; empty when content_read is false.
    pub dumps: Vec<pgdr_snap::logical::list::ListedLogical>,
    /// The recovery window.
    pub window: RecoveryWindow,
}

/// A snapshot image in the repository (snap-take --to), as its manifest describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InfoImage {
    /// Its name (the snapshot's).
    pub image: String,
    /// When the snapshot was taken.
    pub created: DateTime<Utc>,
    /// The snapshot's label, if any.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub label: Option<String>,
    /// The database system, as a string.
    pub system_identifier: String,
    /// Its timeline.
    pub timeline: u32,
    /// The oldest WAL file a recovery from it needs.
    pub wal_start: String,
    /// Its consistent point: the earliest LSN a recovery from it can stop at.
    pub consistent_lsn: Lsn,
    /// When it was consistent (snap-take's metadata: no commit in its WAL is younger).
    pub consistent_at: DateTime<Utc>,
    /// Original bytes of its files.
    pub bytes: u64,
    /// The stored bytes of the pieces it references (shared with other images).
    pub stored_bytes: u64,
    /// The latest LSN a recovery from it reaches (as the window's latest_lsn, from this
    /// image); null when its WAL is not archived, or when no clone recovers it onto the
    /// newest timeline (an image of a timeline abandoned at a failover, consistent after the
    /// switch: not the window's earliest_image either).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub latest_lsn: Option<Lsn>,
}

impl Document for InfoReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
}

/// The moments a server can be recovered to from what the repository holds, as LSNs.
///
/// Recovery follows one timeline, as PostgreSQL does with recovery_target_timeline =
/// 'latest': the newest timeline in the repository (the highest ID with a segment or a
/// history file) and, through its history file, the ancestors it branched off, each up to its
/// switch point (src/backend/access/transam/xlogrecovery.c, XLogFileReadAnyTLI: for a segment,
/// the newest timeline that had begun by then). .partial files are not used: restore_command
/// is never asked for them.
///
/// "earliest" is the first LSN a recovery can stop at: the consistent point of the oldest
/// snapshot image the repository holds (images are the base backups it knows; a logical dump
/// is not one). A base backup taken elsewhere (a local snapshot, pg_basebackup) is
/// not known to the repository: without one, earliest is null and earliest_note says why;
/// wal_start then says which base backups can use this WAL (those whose WAL starts at or
/// after it).
///
/// "latest" is the end of the WAL continuous from wal_start (the oldest image's oldest WAL
/// file; without an image, the start of the run that ends at the newest segment) on that
/// timeline: the end LSN of
/// the last segment reachable without a missing segment (or the switch point, when that
/// segment is on an ancestor timeline). A recovery can replay up to it, no further; the last
/// record inside it may end a little before. Times are not read from WAL records:
/// latest_segment_stored_at is only when that segment was stored (the store's modification
/// time), an upper bound of the last transaction it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecoveryWindow {
    /// The timeline recovery follows (the newest one); null when the repository holds no WAL.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub timeline: Option<u32>,
    /// The earliest recoverable LSN: the oldest image's consistent point; null when the
    /// repository holds no image.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub earliest_lsn: Option<Lsn>,
    /// That image.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub earliest_image: Option<String>,
    /// When it was consistent (its metadata's consistent_at, taken when the snapshot
    /// completed): the earliest recovery_target_time.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub earliest_time: Option<DateTime<Utc>>,
    /// Why earliest_lsn is null; null when it is not.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub earliest_note: Option<String>,
    /// The start of the continuous WAL that ends at latest_lsn (the start of its first
    /// segment); null when there is no WAL on the timeline.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub wal_start: Option<Lsn>,
    /// The first segment of that WAL.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub wal_start_segment: Option<String>,
    /// The latest recoverable LSN (defined above); null when there is no WAL to reach it.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub latest_lsn: Option<Lsn>,
    /// The segment ending at latest_lsn.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub latest_segment: Option<String>,
    /// When that segment was stored in the repository (the store's modification time, not a
    /// time read from WAL).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub latest_segment_stored_at: Option<DateTime<Utc>>,
    /// Why latest_lsn is null, or what limits it (a missing segment after it, an unreadable
    /// history file); null when nothing does.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub latest_note: Option<String>,
}

/// `check`: whether a running primary archives into the repository; exit 1 when problems is
/// not empty.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckReport {
    /// The repository (--repo).
    pub repo: String,
    /// The server checked (host, port, user, dbname; never the password).
    pub server: String,
    /// True when problems is empty.
    pub ok: bool,
    /// What is wrong, each with a code: "archive_mode_off", "archive_library_set",
    /// "archive_command_empty", "archive_command_not_wal_archive" (it does not run
    /// 'wal-archive push'), "archive_command_other_repo" (it names another repository),
    /// "archive_command_hides_failures" (a push in it is piped, or followed by ';', '&' or
    /// '||', so the command can succeed when that push failed),
    /// "settings_unreadable", "system_identifier_mismatch", "archiver_failing" (a failure
    /// since the last success in pg_stat_archiver), "switch_failed", "segment_elsewhere" (the
    /// server archived the switched segment but it is not in the repository),
    /// "segment_not_arrived" (not archived within --timeout), "history_missing" (the server is
    /// past timeline 1 and its timeline's history file is not in the repository, so recovery
    /// from it cannot follow that timeline). For every other repository
    /// archive_command pushes into (command_repos): "command_repo_unreadable" (it cannot be
    /// opened as a repository), "command_repo_system_identifier_mismatch" (it holds another
    /// cluster's WAL), "command_repo_segment_missing" (the switched segment reached the
    /// repository or the server counted it archived, and it is not in that one).
    pub problems: Vec<CheckProblem>,
    /// What could not be decided, not counted as a problem: "repo_not_named" (archive_command
    /// names no repository, so the server's environment or configuration file decides),
    /// "repository_unbound" (the repository is bound to no cluster yet).
    pub warnings: Vec<CheckProblem>,
    /// The server's system identifier (pg_control_system()), as a string; null when it could
    /// not be read.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub server_system_identifier: Option<String>,
    /// The repository's system identifier; null while it is bound to no cluster.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub repo_system_identifier: Option<String>,
    /// The server's archive_mode; null when it could not be read.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub archive_mode: Option<String>,
    /// The server's archive_command, with the values of variables that look like secrets
    /// (…KEY…, …SECRET…, …TOKEN…, …PASSWORD…) shown as ********; null when it could not be
    /// read.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub archive_command: Option<String>,
    /// The server's archive_library (PostgreSQL 15 and later); null before 15 or unreadable.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub archive_library: Option<String>,
    /// The repository archive_command names (--repo, or WAL_ARCHIVE_REPO/PGDR_REPO set in
    /// the command): the one that is --repo when several are named, else the first; null when
    /// it names none.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub command_repo: Option<String>,
    /// Every repository a 'wal-archive push' of archive_command names, in the command's order
    /// (`push %p --repo A && push %p --repo B` names two), each checked; empty when it names
    /// none. Absent from documents of earlier releases.
    #[serde(default)]
    pub command_repos: Vec<CommandRepo>,
    /// pg_stat_archiver as read after the switch (or before, when there was none).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub archiver: Option<ArchiverState>,
    /// The segment the forced switch completed (pg_walfile_name(pg_switch_wal())); null when
    /// the switch failed.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub switched_segment: Option<String>,
    /// True when that segment arrived in the repository within --timeout.
    pub arrived: bool,
    /// Seconds spent waiting for it.
    pub waited_seconds: f64,
}

impl Document for CheckReport {
    const PRODUCERS: &'static [&'static str] = &["wal-archive"];
}

/// A repository archive_command pushes into, as `check` found it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandRepo {
    /// As the command names it (--repo, or WAL_ARCHIVE_REPO/PGDR_REPO set before the program).
    pub repo: String,
    /// True for the repository given with --repo, whose findings are the report's own; the
    /// others are checked too, their findings named "command_repo_…".
    pub given: bool,
    /// The system identifier of the cluster whose WAL it holds; null while it is bound to no
    /// cluster, or when it cannot be opened.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub system_identifier: Option<String>,
    /// True when the switched segment is in it.
    pub arrived: bool,
}

/// One finding of `check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckProblem {
    /// A short, stable code (listed under problems and warnings).
    pub code: String,
    /// What is wrong, in one line.
    pub message: String,
}

/// The server's archiver (pg_stat_archiver, src/backend/utils/activity/pgstat_archiver.c).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiverState {
    /// Files archived since the statistics were reset.
    pub archived_count: u64,
    /// The last file archived; null when none was.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_archived_wal: Option<String>,
    /// When.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_archived_time: Option<DateTime<Utc>>,
    /// Failed attempts since the statistics were reset.
    pub failed_count: u64,
    /// The last file that failed; null when none did.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_failed_wal: Option<String>,
    /// When.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub last_failed_time: Option<DateTime<Utc>>,
    /// True when the last failure is more recent than the last success.
    pub failing: bool,
}
