//! The documents snap-clone prints: a clone made ([`CloneReport`]), the clone list
//! ([`CloneList`]) and a clone destroyed ([`DestroyReport`]).

use chrono::{DateTime, Utc};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// A clone made (and, with --start, recovered to its target).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneReport {
    /// The clone's name.
    pub clone: String,
    /// Its data directory.
    pub path: PathBuf,
    /// Its port.
    pub port: u16,
    /// The snapshot (or image) it was made from.
    pub snapshot: String,
    /// The storage backend: zfs, btrfs or copy; "image" for an image restored from a
    /// repository.
    pub backend: String,
    /// zfs: the clone's dataset; btrfs, copy and image: its root directory.
    pub location: String,
    /// Its Unix socket directory (connect with host=SOCKET_DIR).
    pub socket_dir: PathBuf,
    /// The server log --start writes.
    pub log: PathBuf,
    /// Whether the server was started (--start).
    pub started: bool,
    /// Where recovery was asked to stop, and where it did.
    pub recovery: Recovery,
    /// How long the whole run took, in seconds.
    pub seconds: f64,
}

/// A clone's recovery.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Recovery {
    /// The recovery target: an RFC 3339 time, an LSN, "immediate" or "latest".
    pub target: String,
    /// time, lsn, immediate or latest.
    pub target_type: String,
    /// pause or promote.
    pub action: String,
    /// pg_last_wal_replay_lsn() once reached; null without --start.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub reached_lsn: Option<Lsn>,
    /// pg_last_xact_replay_timestamp() once reached (RFC 3339, UTC); null without --start or
    /// when no transaction was replayed.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub reached_time: Option<DateTime<Utc>>,
    /// paused, promoted, or configured (without --start).
    pub state: String,
}

impl pgdr_core::Document for CloneReport {
    const PRODUCERS: &'static [&'static str] = &["snap-clone"];
}

/// Every clone of the host's clone registry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CloneList {
    /// The clones, by name.
    pub clones: Vec<ListedClone>,
}

impl pgdr_core::Document for CloneList {
    const PRODUCERS: &'static [&'static str] = &["snap-clone"];
}

/// One clone of the list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListedClone {
    /// The clone's name.
    pub clone: String,
    /// The snapshot it was made from.
    pub snapshot: String,
    /// The data directory the snapshot was taken of.
    pub source_pgdata: PathBuf,
    /// The storage backend: zfs, btrfs or copy; "image" for an image restored from a
    /// repository.
    pub backend: String,
    /// zfs: the clone's dataset; btrfs, copy and image: its root directory.
    pub location: String,
    /// Its data directory.
    pub path: PathBuf,
    /// Its port; null for a clone made without a server (by the library).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub port: Option<u16>,
    /// Its socket directory; null like port.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub socket_dir: Option<PathBuf>,
    /// Whether its postmaster runs.
    pub running: bool,
    /// The postmaster's pid when it runs.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pid: Option<i32>,
    /// Whether its data directory exists.
    pub exists: bool,
    /// creating (being set up, or its run was killed) or ready.
    pub state: String,
    /// When it was made (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// Its recovery settings; null like port.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub recovery: Option<ListedRecovery>,
}

/// A listed clone's recovery settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListedRecovery {
    /// The recovery target: an RFC 3339 time, an LSN, "immediate" or "latest".
    pub target: String,
    /// time, lsn, immediate or latest.
    pub target_type: String,
    /// pause or promote.
    pub action: String,
}

/// A clone destroyed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DestroyReport {
    /// The clone's name.
    pub destroyed: String,
    /// The snapshot it was made from.
    pub snapshot: String,
    /// Its data directory.
    pub path: PathBuf,
    /// zfs: its dataset; btrfs and copy: its root directory.
    pub location: String,
    /// Whether its server was running and was stopped.
    pub stopped: bool,
    /// Whether its storage still existed (false: only the record was left).
    pub existed: bool,
}

impl pgdr_core::Document for DestroyReport {
    const PRODUCERS: &'static [&'static str] = &["snap-clone"];
}
