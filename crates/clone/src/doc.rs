//! The documents snap-clone prints: a clone made ([`CloneReport`]), the clone list
//! ([`CloneList`]), a clone destroyed ([`DestroyReport`]) and a restore drill
//! ([`DrillReport`]).

use chrono::{DateTime, Utc};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
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
    /// The replay settings the recovering server was started with, name → value as given on
    /// its command line (postgres -c), never written into its configuration: shared_buffers
    /// (when raised), and from PostgreSQL 15 recovery_prefetch, maintenance_io_concurrency and
    /// wal_decode_buffer_size (see REPLAY SETTINGS). Empty with --replay-settings off or
    /// without --start.
    pub replay_settings: BTreeMap<String, String>,
    /// Whether the running server has the snapshot's own settings again: true when there
    /// were no replay settings, or a promoted clone was restarted without them; false while
    /// it runs with them (paused: until its next start, which has the snapshot's settings).
    pub settings_handed_back: bool,
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
    /// creating (being set up, or --into's temporary clone while its run lasts; a killed
    /// run's is removed by the next run that makes a clone) or ready.
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

/// A restore drill (--drill): the newest snapshot or image cloned, recovered, checked with
/// amcheck and destroyed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DrillReport {
    /// Whether the drill passed: the clone recovered to its target, amcheck found no
    /// corruption (or was unavailable) and nothing of the clone is left. The exit code is 0
    /// exactly then (with --format json).
    pub success: bool,
    /// Where the snapshot came from: "pgdata" (a snapshot of a data directory on this host) or
    /// "repo" (an image in a repository).
    pub source: String,
    /// The data directory (as given, or the one whose snapshot was cloned) or the
    /// repository's location; empty when neither is known.
    pub location: String,
    /// The snapshot or image cloned; null when the drill failed before one was cloned.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub snapshot: Option<String>,
    /// The temporary clone's name (gone when the drill ends).
    pub clone: String,
    /// The recovery target, and where recovery stopped: reached_lsn is
    /// pg_last_wal_replay_lsn(), reached_time pg_last_xact_replay_timestamp(); null when the
    /// clone did not come up.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub recovery: Option<Recovery>,
    /// How the data was checked: "pg_amcheck" (pg_amcheck --all --heapallindexed of the
    /// clone's major), "functions" (the server's bt_index_check with heapallindexed for every
    /// B-tree index and, from PostgreSQL 14, verify_heapam for every table, in every
    /// database), "unavailable" (the server's contrib has no amcheck: nothing was checked, and
    /// that does not fail the drill), or "not_run" (the clone did not come up, or the check
    /// could not run: see error).
    pub amcheck: String,
    /// The pg_amcheck program run; null otherwise.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub amcheck_program: Option<PathBuf>,
    /// The corruption amcheck reported, one entry per relation (and block and offset, for a
    /// table) as pg_amcheck names them; empty when clean.
    pub corruption: Vec<Corruption>,
    /// What failed, as one line (choosing, restoring, recovering, checking, destroying);
    /// null when every step ran (corruption alone is in corruption).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub error: Option<String>,
    /// Whether nothing of the clone is left: no server, no clone storage, no registry record.
    pub cleaned_up: bool,
    /// When the drill ended (RFC 3339, UTC).
    pub finished: DateTime<Utc>,
    /// How long the drill took, in seconds.
    pub seconds: f64,
}

impl pgdr_core::Document for DrillReport {
    const PRODUCERS: &'static [&'static str] = &["snap-clone"];
}

/// One complaint of amcheck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Corruption {
    /// What is corrupt, as pg_amcheck words it: `btree index "DB.SCHEMA.NAME"` or
    /// `heap table "DB.SCHEMA.NAME", block B, offset O[, attribute A]`.
    pub relation: String,
    /// amcheck's message (the error and its detail, or verify_heapam's msg).
    pub message: String,
}
