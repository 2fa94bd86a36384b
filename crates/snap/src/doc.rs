//! The documents snap-prune prints, read back by `wal-archive prune -` (and by snap-prune
//! itself). snap-take's document is the snapshot's [`crate::SnapshotMeta`].
//!
//! Times are RFC 3339 in UTC, with milliseconds where a snapshot has them.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// snap-prune's report: what the policy kept, destroyed and had to skip, and the oldest
/// snapshot left, whose `wal_start` bounds the WAL any remaining snapshot needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PruneReport {
    /// The data directory whose snapshots were considered.
    pub pgdata: PathBuf,
    /// The storage backend: zfs, btrfs or copy.
    pub backend: String,
    /// The snapshot store (btrfs and copy snapshots, and the lock of every backend).
    pub store: PathBuf,
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
