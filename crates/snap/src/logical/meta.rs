//! What a logical snapshot carries ([`LogicalSnapshot`], snap-take --logical's document and
//! the manifest stored with the dump), read leniently when stored (keys a newer pgdr added
//! are ignored, as [`crate::meta::SnapshotMeta::from_stored`] does) and strictly on stdin.

use super::tools::Program;
use chrono::{DateTime, Utc};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::PathBuf;

/// The value of [`LogicalSnapshot::kind`].
pub const KIND: &str = "logical";

/// A logical snapshot: one database (or some of its tables) dumped by pg_dump in directory
/// format from one exported snapshot, every file stored compressed with its SHA-256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogicalSnapshot {
    /// The snapshot's name, pgdr-YYYYmmddTHHMMSSZ[-LABEL] (milliseconds for a second one in
    /// the same second), as physical snapshots are named.
    pub snapshot: String,
    /// Always "logical".
    pub kind: String,
    /// When snap-take started it (RFC 3339, UTC, milliseconds).
    pub created: DateTime<Utc>,
    /// The label given with --label, or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub label: Option<String>,
    /// The database dumped.
    pub database: String,
    /// Every table in the dump, as schema.table (names as PostgreSQL stores them).
    pub tables: Vec<String>,
    /// The --table patterns (empty: the whole database).
    pub table_patterns: Vec<String>,
    /// The --exclude-table patterns.
    pub exclude_table_patterns: Vec<String>,
    /// The server's version (server_version, e.g. "17.6").
    pub server_version: String,
    /// The server's major version.
    pub pg_version: u32,
    /// The database system (pg_control_system()), as text; null when the role may not read
    /// it.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub system_identifier: Option<String>,
    /// Whether it was dumped from a standby.
    pub from_standby: bool,
    /// The moment of the dump's snapshot (clock_timestamp() in the transaction that exported
    /// it; RFC 3339, UTC, microseconds): every table shows exactly the transactions committed
    /// before it.
    pub consistent_at: DateTime<Utc>,
    /// The WAL position at that moment (pg_current_wal_lsn(), on a standby
    /// pg_last_wal_replay_lsn()).
    pub lsn: Lsn,
    /// The pg_dump that made it.
    pub pg_dump: Program,
    /// pg_dump's parallel jobs (--jobs).
    pub jobs: u32,
    /// The snapshot directory it is stored in (--snapshot-dir), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub snapshot_dir: Option<PathBuf>,
    /// The repository it is stored in (--to), or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub repository: Option<String>,
    /// Where: its directory, or its prefix in the repository (dumps/NAME).
    pub location: String,
    /// pg_dump's files, each stored compressed with the SHA-256 of its bytes.
    pub files: Vec<DumpedFile>,
    /// Their original size.
    pub bytes: u64,
    /// Their size as stored (headers included).
    pub stored_bytes: u64,
    /// How long taking it took, in seconds.
    pub seconds: f64,
    /// The pgdr version that took it.
    pub tool_version: String,
    /// What snap-take --logical runs killed before they could clean up (SIGKILL, OOM, a
    /// timeout) had left, removed by this run before it dumped: staging directories
    /// (`DIR/.NAME.pgdr-tmp.PID`), pg_dump's plaintext scratch copies
    /// (`$TMPDIR/pgdr-dump-XXXXXX`), a repository's dump files without a manifest
    /// (`dumps/NAME`). Only in the document of the run that removed them (absent when none
    /// were), never stored with the snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_leftovers: Vec<String>,
}

impl pgdr_core::Document for LogicalSnapshot {
    const PRODUCERS: &'static [&'static str] = &["snap-take"];
}

/// One file of pg_dump's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DumpedFile {
    /// Its name in pg_dump's directory (toc.dat, 3345.dat, …).
    pub file: String,
    /// Its size.
    pub bytes: u64,
    /// Its size as stored.
    pub stored_bytes: u64,
    /// The SHA-256 of its bytes, in hex.
    pub sha256: String,
}

impl LogicalSnapshot {
    /// Reads the stored metadata, ignoring keys this pgdr does not know.
    ///
    /// # Errors
    /// Not JSON, not a logical snapshot, or a field this version needs is missing.
    pub fn from_stored(text: &str) -> std::result::Result<LogicalSnapshot, String> {
        let mut v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let schema = serde_json::to_value(schemars::schema_for!(LogicalSnapshot))
            .expect("a schema serializes");
        crate::meta::keep_known(&mut v, &schema, &schema);
        let m: LogicalSnapshot = serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            format!("at {path}: {}", e.into_inner())
        })?;
        if m.kind != KIND {
            return Err(format!("kind {:?}, not {KIND:?}", m.kind));
        }
        Ok(m)
    }

    /// The metadata as stored: pretty JSON with a final newline.
    pub fn to_stored(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("metadata serializes");
        s.push('\n');
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn sample() -> LogicalSnapshot {
        LogicalSnapshot {
            snapshot: "pgdr-20260321T092837Z".into(),
            kind: KIND.into(),
            created: "2026-03-21T09:28:37Z".parse().unwrap(),
            label: None,
            database: "app".into(),
            tables: vec!["public.job_info".into()],
            table_patterns: vec![],
            exclude_table_patterns: vec![],
            server_version: "17.6".into(),
            pg_version: 17,
            system_identifier: Some("7361234567890123456".into()),
            from_standby: false,
            consistent_at: "2026-03-21T09:28:37.123456Z".parse().unwrap(),
            lsn: "0/1000028".parse().unwrap(),
            pg_dump: Program {
                path: "/usr/bin/pg_dump".into(),
                version: "18.6".into(),
            },
            jobs: 2,
            snapshot_dir: Some("/backup".into()),
            repository: None,
            location: "/backup/pgdr-20260321T092837Z".into(),
            files: vec![],
            bytes: 1,
            stored_bytes: 2,
            seconds: 0.5,
            tool_version: "0.1.0".into(),
            removed_leftovers: Vec::new(),
        }
    }

    #[test]
    fn stored_metadata_is_lenient_and_must_be_logical() {
        let m = sample();
        let mut v = serde_json::to_value(&m).unwrap();
        v["added_later"] = 1.into();
        assert_eq!(LogicalSnapshot::from_stored(&v.to_string()).unwrap(), m);
        v["kind"] = "physical".into();
        assert!(LogicalSnapshot::from_stored(&v.to_string())
            .unwrap_err()
            .contains("physical"));
        assert_eq!(
            LogicalSnapshot::from_stored(&m.to_stored()).unwrap(),
            m,
            "microseconds survive"
        );
    }
}
