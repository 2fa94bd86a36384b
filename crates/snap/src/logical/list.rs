//! snap-take --list for logical snapshots: what a snapshot directory or a repository holds,
//! each with the moment it shows. (A list of physical snapshots and images can take these
//! entries as one more field: [`collect`].)

use super::place::Place;
use chrono::{DateTime, Utc};
use pgdr_core::Result;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// snap-take --list's document for logical snapshots.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogicalList {
    /// The snapshot directory listed (--snapshot-dir), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub snapshot_dir: Option<PathBuf>,
    /// The repository listed (--repo), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub repository: Option<String>,
    /// The database listed (--database), or null for all.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub database: Option<String>,
    /// Logical snapshots, oldest first.
    pub logical: Vec<ListedLogical>,
}

impl pgdr_core::Document for LogicalList {
    const PRODUCERS: &'static [&'static str] = &["snap-take"];
}

/// One logical snapshot in a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListedLogical {
    /// Its name.
    pub snapshot: String,
    /// Always "logical".
    pub kind: String,
    /// Its database.
    pub database: String,
    /// When it was taken (RFC 3339, UTC).
    pub created: DateTime<Utc>,
    /// Its label, if any.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub label: Option<String>,
    /// The moment its tables show (RFC 3339, UTC): a restore from it gives the rows committed
    /// before then.
    pub consistent_at: DateTime<Utc>,
    /// Its tables, as schema.table.
    pub tables: Vec<String>,
    /// The server's major version.
    pub pg_version: u32,
    /// The database system, or null when the role could not read it.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub system_identifier: Option<String>,
    /// Where it is: its directory, or dumps/NAME in the repository.
    pub location: String,
    /// Original bytes of pg_dump's files.
    pub bytes: u64,
    /// Their size as stored.
    pub stored_bytes: u64,
}

/// The logical snapshots of `place` (of `database` only when given), oldest first.
///
/// # Errors
/// The place cannot be read.
pub fn collect(place: &Place, database: Option<&str>) -> Result<Vec<ListedLogical>> {
    Ok(place
        .list()?
        .into_iter()
        .filter(|m| database.is_none_or(|d| d == m.database))
        .map(|m| ListedLogical {
            snapshot: m.snapshot,
            kind: m.kind,
            database: m.database,
            created: m.created,
            label: m.label,
            consistent_at: m.consistent_at,
            tables: m.tables,
            pg_version: m.pg_version,
            system_identifier: m.system_identifier,
            location: m.location,
            bytes: m.bytes,
            stored_bytes: m.stored_bytes,
        })
        .collect())
}

/// The list document for a snapshot directory and/or a repository.
///
/// # Errors
/// A place cannot be opened or read.
pub fn run(
    dir: Option<&std::path::Path>,
    repo: Option<&std::path::Path>,
    database: Option<&str>,
) -> Result<LogicalList> {
    if dir.is_none() && repo.is_none() {
        return Err(pgdr_core::Error::usage("nothing to list")
            .hint("give --snapshot-dir DIR and/or --repo REPO"));
    }
    let mut logical = Vec::new();
    let mut snapshot_dir = None;
    let mut repository = None;
    if let Some(d) = dir {
        let p = Place::dir(d)?;
        logical.extend(collect(&p, database)?);
        snapshot_dir = p.names().0;
    }
    if let Some(r) = repo {
        let p = Place::repo(r)?;
        logical.extend(collect(&p, database)?);
        repository = p.names().1;
    }
    logical.sort_by(|a, b| a.created.cmp(&b.created).then(a.snapshot.cmp(&b.snapshot)));
    Ok(LogicalList {
        snapshot_dir,
        repository,
        database: database.map(str::to_string),
        logical,
    })
}
