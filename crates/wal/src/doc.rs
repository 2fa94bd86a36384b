//! The documents wal-archive prints, one type each (SPEC "One document shape"). Sizes:
//! `bytes` are original bytes, `stored_bytes` as stored (compressed, with the header).
//! wal-archive reads one document with `-`: snap-prune's [`pgdr_snap::doc::PruneReport`].

use pgdr_core::Document;
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
    /// How many following segments a background prefetch was started for (0: none): --prefetch
    /// N within the spool's bound.
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
    /// Their original bytes (as pgdr stores them, before encryption).
    pub bytes: u64,
    /// Their bytes as stored in DST (after DST's encryption).
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
