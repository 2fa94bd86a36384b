//! The documents snap-prune prints, read back by `wal-archive prune -` (and by snap-prune
//! itself), and snap-take's documents other than the snapshot's [`crate::SnapshotMeta`]: an
//! image stored ([`ImageReport`]) and the list of snapshots and images ([`SnapshotList`]).
//!
//! Times are RFC 3339 in UTC, with milliseconds where a snapshot has them.

use crate::meta::SnapshotMeta;
use chrono::{DateTime, Utc};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// snap-prune's report: what the policy kept, destroyed and had to skip, and the oldest
/// snapshot (or image) left, whose `wal_start` bounds the WAL any remaining one needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneReport {
    /// The data directory whose snapshots were considered; null for a repository's images
    /// (they may come from several data directories of the cluster).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pgdata: Option<PathBuf>,
    /// The storage backend: zfs, btrfs or copy; "image" for a repository's images.
    pub backend: String,
    /// The snapshot store (btrfs and copy snapshots, and the lock of every backend); null for
    /// a repository.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub store: Option<PathBuf>,
    /// The repository whose images were considered (--repo); null for local snapshots.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub repository: Option<String>,
    /// For a repository: the pieces (objects) no remaining image references, removed; null
    /// for local snapshots.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub objects: Option<SweptObjects>,
    /// Nothing was destroyed: "destroyed" lists what would have been. A reader of this
    /// document (`wal-archive prune -`) is then a dry run too.
    pub dry_run: bool,
    /// The snapshots kept, newest first, each with the rules that keep it.
    pub kept: Vec<KeptSnapshot>,
    /// The snapshots destroyed (with --dry-run: that would be), oldest first.
    pub destroyed: Vec<SnapshotRef>,
    /// Snapshots the policy would destroy but a clone depends on.
    pub skipped: Vec<SkippedSnapshot>,
    /// The oldest snap-take snapshot that remains (of any label) and is not dated in the
    /// future, unless only such snapshots remain; null when none does.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub oldest_kept: Option<OldestKept>,
    /// What needs a human: snapshots dated in the future (a clock that jumped), kept and
    /// counted by no rule. Empty when all is well.
    pub problems: Vec<String>,
    /// What snap-take runs killed before they could clean up (SIGKILL, OOM, a timeout) had
    /// left: unfinished btrfs snapshots and partial copies (`STORE/.NAME.partial`, paths), ZFS
    /// snapshots without pgdr:meta (`DATASET@NAME`) and the clones snap-take reads them
    /// through (`POOL/pgdr-read-*`). Removed (with --dry-run: that would be, unless a run
    /// holding the store's lock is making it right now). Empty for a repository.
    #[serde(default)]
    pub removed_leftovers: Vec<PathBuf>,
}

impl pgdr_core::Document for PruneReport {
    const PRODUCERS: &'static [&'static str] = &["snap-prune"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// A snapshot named in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotRef {
    /// Its name, pgdr-YYYYmmddTHHMMSSZ[-LABEL].
    pub snapshot: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// Its label, if any.
    pub label: Option<String>,
}

/// A kept snapshot and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeptSnapshot {
    /// Its name.
    pub snapshot: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// Its label, if any.
    pub label: Option<String>,
    /// The rules that keep it: "newest", "last snapshot", "hourly snapshot", "oldest daily
    /// snapshot", "within 2d", "in the 7d PITR window", "base of the 7d PITR window", "dated
    /// in the future", …
    pub reasons: Vec<String>,
}

/// A snapshot the policy would destroy but must not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkippedSnapshot {
    /// Its name.
    pub snapshot: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// Its label, if any.
    pub label: Option<String>,
    /// Why it was not destroyed ("a clone depends on it").
    pub reason: String,
}

/// The oldest snapshot left after pruning.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OldestKept {
    /// Its name.
    pub snapshot: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// The oldest WAL file a recovery from it needs: `wal-archive prune -` keeps it and
    /// everything after it.
    pub wal_start: String,
    /// Its timeline.
    pub timeline: u32,
}

/// What pruning a repository's images did to the pieces they are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SweptObjects {
    /// Pieces no remaining image references: removed (with --dry-run: that would be).
    pub removed: u64,
    /// Their size as stored.
    pub removed_stored_bytes: u64,
    /// Pieces that stay (every remaining image's, whatever its label).
    pub kept: u64,
    /// Temporary files of uploads that never finished (older than a day), removed.
    pub leftovers_removed: u64,
}

/// snap-take --to's document: a snapshot stored as an image in a repository.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ImageReport {
    /// The image's name (the snapshot's).
    pub image: String,
    /// The repository, as given with --to.
    pub repository: String,
    /// True when the repository held this image already: nothing was sent.
    pub already_stored: bool,
    /// Files in the image.
    pub files: u64,
    /// Their original bytes.
    pub bytes: u64,
    /// Distinct pieces (objects of up to 8 MiB) the image references; pieces are shared by
    /// the images of a repository.
    pub objects: u64,
    /// Their size as stored.
    pub stored_bytes: u64,
    /// Pieces this run sent.
    pub objects_sent: u64,
    /// Their original bytes.
    pub bytes_sent: u64,
    /// Their size as stored.
    pub stored_bytes_sent: u64,
    /// Pieces the repository held already (from an earlier image, or an interrupted run of
    /// this one) that the image references instead of sending them again.
    pub objects_reused: u64,
    /// Files not read: the repository's newest earlier image of the same data directory
    /// holds them with the same inode, change time, modification time and size, changed
    /// more than a second before that snapshot (FORMAT.md, "Images"). 0 with --read-all.
    pub files_unchanged: u64,
    /// That earlier image, or null (no such image, or --read-all: every file was read).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub stamps_from: Option<String>,
    /// Concurrent transfers (--parallel).
    pub parallel: u32,
    /// How long the run took, in seconds.
    pub seconds: f64,
    /// The snapshot the image is of (snap-take's document of it).
    pub snapshot: SnapshotMeta,
}

impl pgdr_core::Document for ImageReport {
    const PRODUCERS: &'static [&'static str] = &["snap-take"];
}

/// snap-take --list's document: local snapshots and a repository's images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotList {
    /// The data directory whose snapshots are listed (--pgdata), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pgdata: Option<PathBuf>,
    /// The repository whose images are listed and whose WAL gives the windows (--repo), or
    /// null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub repository: Option<String>,
    /// Snapshots and images, oldest first.
    pub snapshots: Vec<ListedSnapshot>,
}

impl pgdr_core::Document for SnapshotList {
    const PRODUCERS: &'static [&'static str] = &["snap-take"];
}

/// A snapshot or an image in the list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListedSnapshot {
    /// Its name.
    pub snapshot: String,
    /// "snapshot" (on this host's storage) or "image" (in the repository).
    pub kind: String,
    /// zfs, btrfs or copy for a snapshot; "image" for an image.
    pub backend: String,
    /// zfs: pool/dataset@name; btrfs and copy: its directory; an image: its manifest.
    pub location: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// Its label, if any.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub label: Option<String>,
    /// The data directory it was taken of.
    pub pgdata: PathBuf,
    /// The database system.
    pub system_identifier: String,
    /// Its timeline.
    pub timeline: u32,
    /// The oldest WAL file a recovery from it needs.
    pub wal_start: String,
    /// The first moment a clone of it can stop at (RFC 3339, UTC).
    pub consistent_at: DateTime<Utc>,
    /// The first LSN a clone of it can stop at.
    pub consistent_lsn: Lsn,
    /// An image's original bytes; null for a snapshot.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub bytes: Option<u64>,
    /// What a clone of it can reach with the repository's WAL; null without --repo, or when
    /// the repository does not hold continuous WAL from wal_start past the consistent point.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub window: Option<Window>,
}

/// The recovery window of a snapshot or image: from its consistent point to the end of the
/// continuous WAL the repository holds from its wal_start (following timeline switches).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Window {
    /// The earliest moment (its consistent point; RFC 3339, UTC).
    pub from: DateTime<Utc>,
    /// The earliest LSN.
    pub from_lsn: Lsn,
    /// The last WAL file of the continuous run.
    pub to_wal: String,
    /// Where that file ends, or the snapshot's own WAL (wal_end) when it runs further: no LSN
    /// after it can be reached.
    pub to_lsn: Lsn,
    /// When that file was archived (RFC 3339, UTC): no commit after it can be reached.
    pub to_archived: DateTime<Utc>,
}
