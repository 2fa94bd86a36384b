//! snap-clone --into's document: what was restored into the target database, under which
//! names, and what was checked first.

use chrono::{DateTime, Utc};
use pgdr_snap::logical::tools::Program;
use serde::{Deserialize, Serialize};

/// Tables restored into an existing database (or, with --dry-run, the plan).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoreReport {
    /// The snapshot the tables come from.
    pub snapshot: String,
    /// "logical" (a logical snapshot, restored with pg_restore) or "physical" (a temporary
    /// clone recovered to the target, its tables dumped and restored).
    pub kind: String,
    /// Where the snapshot is: a logical snapshot's directory or repository; for a physical
    /// one, the temporary clone's location (dataset or directory), or the repository of an
    /// image.
    pub source: String,
    /// The moment the restored rows are of (RFC 3339, UTC): a logical snapshot's
    /// consistent_at, or the physical clone's recovery target (the point it reached for an
    /// immediate target).
    pub as_of: DateTime<Utc>,
    /// The target database, as host, port, user and dbname (never a password).
    pub into: String,
    /// The target server's version.
    pub server_version: String,
    /// rename, fail or replace (--on-conflict).
    pub on_conflict: String,
    /// Nothing was changed: the precheck and the plan only.
    pub dry_run: bool,
    /// What was checked before anything changed: the connection, CREATE on each schema,
    /// ownership of each table replaced and of each table whose foreign keys are kept.
    pub checks: Vec<String>,
    /// The tables asked for (every table of the snapshot without --table), each with its
    /// partitions.
    pub tables: Vec<RestoredTable>,
    /// Every object created, renamed or replaced, with its name in the target.
    pub objects: Vec<RestoredObject>,
    /// Objects of the snapshot not restored, and why (a foreign key to a table not
    /// restored, a function the target has already, …).
    pub skipped: Vec<SkippedObject>,
    /// Foreign keys other tables hold on a replaced table: dropped and created again (and so
    /// validated against the new rows) in the same transaction.
    pub foreign_keys: Vec<KeptForeignKey>,
    /// The pg_restore that read the archive.
    pub pg_restore: Program,
    /// Physical: the pg_dump that dumped the tables from the clone; null for logical.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub pg_dump: Option<Program>,
    /// Physical: the temporary clone; null for logical.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub clone: Option<TempClone>,
    /// How long the run took, in seconds.
    pub seconds: f64,
}

impl pgdr_core::Document for RestoreReport {
    const PRODUCERS: &'static [&'static str] = &["snap-clone"];
    fn dry_run(&self) -> bool {
        self.dry_run
    }
}

/// A table restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoredTable {
    /// Its name in the snapshot, schema.table.
    pub table: String,
    /// Its name in the target (schema.table_pgdr_YYYYmmddHHMMSS when renamed).
    pub restored_as: String,
    /// created (no such table in the target), renamed (restored beside the existing one) or
    /// replaced.
    pub action: String,
    /// Rows restored (every partition's); null on a dry run.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub rows: Option<u64>,
    /// Its partitions, as schema.table in the target.
    pub partitions: Vec<String>,
}

/// An object created, renamed or replaced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RestoredObject {
    /// table, sequence, index, constraint, trigger, policy, rule, statistics, function,
    /// type, schema, …
    pub kind: String,
    /// Its schema.
    pub schema: String,
    /// Its name in the snapshot.
    pub name: String,
    /// For a constraint, trigger, policy or rule: its table (schema.table, in the target).
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub table: Option<String>,
    /// Its name in the target.
    pub restored_as: String,
    /// created, renamed or replaced.
    pub action: String,
    /// The new name would have been longer than PostgreSQL's 63 bytes and was shortened
    /// (the first bytes of the name, 8 hex digits of its SHA-256, then _pgdr_ and the time).
    pub shortened: bool,
}

/// An object of the snapshot that was not restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SkippedObject {
    /// Its kind, as pg_dump names it (FK CONSTRAINT, FUNCTION, …).
    pub kind: String,
    /// Its name (schema.name, or "table name" for a constraint).
    pub name: String,
    /// Why.
    pub reason: String,
}

/// A foreign key another table holds on a replaced table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KeptForeignKey {
    /// The table that holds it (schema.table).
    pub table: String,
    /// The constraint's name.
    pub constraint: String,
    /// The replaced table it references.
    pub references: String,
    /// Whether it was created validated (every row checked); a key that was NOT VALID before
    /// stays so.
    pub validated: bool,
}

/// The temporary clone a physical restore dumped from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TempClone {
    /// Its name (in snap-clone --list while it exists).
    pub clone: String,
    /// The recovery target it was brought to.
    pub recovery_target: String,
    /// pg_last_xact_replay_timestamp() there (RFC 3339, UTC), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub reached_time: Option<DateTime<Utc>>,
    /// Whether it was kept (--keep-clone); otherwise it was destroyed.
    pub kept: bool,
    /// Its port while it runs.
    pub port: u16,
    /// Its socket directory.
    pub socket_dir: String,
}
