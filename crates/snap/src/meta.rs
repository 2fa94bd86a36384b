//! What every snapshot carries ([`SnapshotMeta`], snap-take's document), and snapshot names
//! `pgdr-YYYYmmddTHHMMSS[.mmm]Z[-LABEL]`.
//!
//! The same type is stored with the snapshot (the ZFS user property `pgdr:meta`, or a JSON
//! sidecar beside a btrfs or copy snapshot) and printed by snap-take. The two are read
//! differently on purpose:
//!
//! - the document on stdin (`snap-prune -`, `snap-clone -`) is strict: an unknown key is a
//!   usage error naming it (`deny_unknown_fields`), so a renamed field breaks the build;
//! - the stored metadata is read leniently ([`SnapshotMeta::from_stored`]): keys this pgdr does
//!   not know are ignored. A snapshot outlives the pgdr that took it and travels to other
//!   hosts (zfs send, a DR host with an older pgdr); a newer pgdr's added fields must not make
//!   an older one unable to list, prune or clone it in an incident. Every field this version
//!   needs is still required, so a snapshot missing one is refused, never guessed at.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use pgdr_core::{Error, Result};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::{Component, Path, PathBuf};

/// Snapshot names start with this; the rest is the UTC time and an optional label.
pub const PREFIX: &str = "pgdr-";

/// The metadata stored with a snapshot and printed by snap-take. snap-clone reads it to
/// restore; snap-prune to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotMeta {
    /// The snapshot's name, pgdr-YYYYmmddTHHMMSSZ[-LABEL]; a second snapshot in the same
    /// second gets milliseconds, pgdr-YYYYmmddTHHMMSS.mmmZ[-LABEL].
    pub snapshot: String,
    /// When it was taken (RFC 3339, UTC, milliseconds).
    pub created: DateTime<Utc>,
    /// The label given with --label, or null.
    #[serde(deserialize_with = "pgdr_core::doc::required")]
    pub label: Option<String>,
    /// The data directory it was taken of (canonical path).
    pub pgdata: PathBuf,
    /// The storage backend: zfs, btrfs or copy.
    pub backend: String,
    /// zfs: pool/dataset@name; btrfs and copy: the snapshot's directory.
    pub location: String,
    /// Where PGDATA sits inside the snapshot's root ("" when PGDATA is the root).
    pub pgdata_rel: String,
    /// zfs: every dataset in the set, with its mountpoint relative to the root's (absent for
    /// one dataset, btrfs and copy).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// Tablespaces (pg_tblspc symlinks) and where their targets are inside the snapshot
    /// (absent when there are none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tablespaces: Vec<Tablespace>,
    /// PostgreSQL major version (PG_VERSION).
    pub pg_version: u32,
    /// pg_control's system identifier, as text: a 64-bit number does not survive JSON parsers
    /// that use doubles.
    pub system_identifier: String,
    /// The timeline of the latest checkpoint in the snapshot's pg_control.
    pub timeline: u32,
    /// The latest checkpoint's LSN (pg_control).
    pub checkpoint_lsn: Lsn,
    /// The latest checkpoint's redo LSN (pg_control).
    pub redo_lsn: Lsn,
    /// The latest checkpoint's time (pg_control; RFC 3339, UTC).
    pub checkpoint_time: DateTime<Utc>,
    /// The oldest WAL file a recovery from this snapshot needs: the redo LSN's file, or the
    /// backup label's START WAL LOCATION file.
    pub wal_start: String,
    /// The WAL segment size in bytes (pg_control).
    pub wal_segment_size: u64,
    /// "atomic" (a crash-consistent image) or "backup" (pg_backup_start/stop around it).
    pub method: String,
    /// The minimum recovery point from the snapshot's pg_control when set (a standby's);
    /// absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_recovery_point: Option<Lsn>,
    /// An atomic snapshot of a primary (pg_control in production, no minimum recovery point):
    /// where the WAL in its pg_wal ends, read from the page headers of the live pg_wal right
    /// after the snapshot (crate::wal_end; an upper bound, at most a page past the last record
    /// then). Crash recovery replays to it before the copy is consistent. Absent for standbys,
    /// backups and snapshots taken before pgdr recorded it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wal_end: Option<Lsn>,
    /// With -d: what pg_backup_stop returned; absent for an atomic snapshot.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupInfo>,
    /// The pgdr version that took it.
    pub tool_version: String,
    /// When the snapshot (and, in backup mode, pg_backup_stop) had completed: no commit in
    /// its WAL is younger. snap-clone refuses time targets before it (RFC 3339, UTC).
    pub consistent_at: DateTime<Utc>,
    /// What runs killed before they could clean up (SIGKILL, OOM, a timeout) had left,
    /// removed by this run before it took the snapshot: unfinished btrfs snapshots and
    /// partial copies (`STORE/.NAME.partial`, paths), ZFS snapshots without pgdr:meta
    /// (`DATASET@NAME`) and the clones snap-take reads them through (`POOL/pgdr-read-*`), and
    /// the btrfs views a killed `--to` read its snapshot through (`STORE/.view-PID-NAME`).
    /// Only in the document of the run that removed them (absent when none were), never
    /// stored with the snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_leftovers: Vec<PathBuf>,
}

impl pgdr_core::Document for SnapshotMeta {
    const PRODUCERS: &'static [&'static str] = &["snap-take"];
}

/// A dataset of a ZFS snapshot set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The dataset's name (pool/dataset).
    pub dataset: String,
    /// Its mountpoint relative to the root dataset's ("" for the root itself).
    pub rel: String,
}

/// A tablespace symlink and where its target lies inside the snapshot root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Tablespace {
    /// The tablespace's OID (the pg_tblspc entry's name).
    pub oid: String,
    /// The symlink's target on the source system.
    pub target: PathBuf,
    /// The target relative to the snapshot root (a clone relinks to CLONE_ROOT/REL).
    pub rel: String,
}

/// What a backup-mode snapshot needs at restore time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupInfo {
    /// The backup_label contents, byte for byte, to write into a restored copy.
    pub backup_label: String,
    /// The tablespace_map contents, when there are tablespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablespace_map: Option<String>,
    /// The backup's start LSN (the label's START WAL LOCATION).
    pub start_lsn: Lsn,
    /// pg_backup_stop's LSN: recovery must reach it before the copy is consistent.
    pub stop_lsn: Lsn,
    /// Whether the backup was taken on a standby (the label's BACKUP FROM).
    pub from_standby: bool,
}

impl SnapshotMeta {
    /// Reads the metadata stored with a snapshot (a ZFS property value or a sidecar file),
    /// ignoring keys this pgdr does not know (see the module documentation).
    ///
    /// # Errors
    /// The text is not JSON, or a field this version needs is missing or mistyped.
    pub fn from_stored(text: &str) -> std::result::Result<SnapshotMeta, String> {
        let mut v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let schema =
            serde_json::to_value(schemars::schema_for!(SnapshotMeta)).expect("a schema serializes");
        keep_known(&mut v, &schema, &schema);
        serde_path_to_error::deserialize(v).map_err(|e| {
            let path = e.path().to_string();
            format!("at {path}: {}", e.into_inner())
        })
    }

    /// The lowest LSN a recovery from this snapshot can stop at: before it the copy is not
    /// consistent yet: the checkpoint, a standby's minimum recovery point, a backup's stop
    /// LSN, an atomic snapshot's end of WAL ([`SnapshotMeta::wal_end`]), whichever is last.
    /// (Without wal_end, as in older metadata, a crash image of a primary is consistent only
    /// later than this says; snap-clone reads the clone's pg_wal before it starts.)
    pub fn consistent_lsn(&self) -> Lsn {
        let mut l = self.checkpoint_lsn;
        if let Some(m) = self.min_recovery_point {
            l = l.max(m);
        }
        if let Some(b) = &self.backup {
            l = l.max(b.stop_lsn);
        }
        if let Some(e) = self.wal_end {
            l = l.max(e);
        }
        l
    }

    /// The metadata as stored: compact JSON.
    pub fn to_stored(&self) -> String {
        serde_json::to_string(self).expect("metadata serializes")
    }
}

/// Drops, recursively, the object keys `schema` does not list (following `$ref`, `anyOf`
/// and array `items`), so a strict type reads what a newer writer added without failing.
pub(crate) fn keep_known(v: &mut Value, schema: &Value, root: &Value) {
    let schema = resolve(schema, root);
    if let Some(alts) = schema.get("anyOf").and_then(Value::as_array) {
        for alt in alts {
            keep_known(v, alt, root);
        }
        return;
    }
    match v {
        Value::Object(map) => {
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                map.retain(|k, _| props.contains_key(k));
                for (k, child) in map.iter_mut() {
                    keep_known(child, &props[k], root);
                }
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = schema.get("items") {
                for item in items {
                    keep_known(item, item_schema, root);
                }
            }
        }
        _ => {}
    }
}

/// Follows a local `$ref` (`#/$defs/Name`).
fn resolve<'a>(schema: &'a Value, root: &'a Value) -> &'a Value {
    match schema.get("$ref").and_then(Value::as_str) {
        Some(r) => r
            .strip_prefix("#/")
            .map(|p| p.split('/').fold(root, |node, key| &node[key]))
            .unwrap_or(schema),
        None => schema,
    }
}

/// `a/b/../c` → `a/c`, without touching the filesystem.
fn normalize(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::ParentDir => {
                out.pop();
            }
            Component::CurDir => {}
            c => out.push(c.as_os_str()),
        }
    }
    out
}

/// Where a symlink of the snapshot's source must point in a copy of the snapshot (a clone, a
/// view an image is read from): its target (relative to `link_dir` on the source) mapped from
/// the source's snapshot root to the copy's root, or None when it points outside the snapshot
/// (a clone would write into production).
pub fn relink(
    target: &Path,
    link_dir: &Path,
    src_root: &Path,
    clone_root: &Path,
) -> Option<PathBuf> {
    let abs = normalize(&if target.is_absolute() {
        target.to_path_buf()
    } else {
        link_dir.join(target)
    });
    let rel = abs.strip_prefix(src_root).ok()?;
    Some(clone_root.join(rel))
}

/// The snapshot's root on the source: PGDATA without `pgdata_rel`.
pub fn source_root(meta: &SnapshotMeta) -> PathBuf {
    let mut root = meta.pgdata.clone();
    for _ in Path::new(&meta.pgdata_rel).components() {
        root.pop();
    }
    root
}

/// A valid snapshot label (also used for clone names): 1–64 of `[A-Za-z0-9._]` and `-` (not
/// first), so names stay one shell word and one ZFS snapshot component.
///
/// # Errors
/// The reason, naming the label.
pub fn check_snapshot_label(label: &str) -> std::result::Result<(), String> {
    let ok = !label.is_empty()
        && label.len() <= 64
        && !label.starts_with('-')
        && label
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid label {label:?}: use 1 to 64 letters, digits, '.', '_' or '-' (not first)"
        ))
    }
}

/// [`check_snapshot_label`] as a usage error for `flag`.
///
/// # Errors
/// A usage error (exit 2).
pub fn check_label_arg(flag: &str, label: &str) -> Result<()> {
    check_snapshot_label(label)
        .map_err(|e| Error::usage(format!("invalid {flag} {label:?}")).because(e))
}

/// `pgdr-20260321T092837Z[-label]`, or with `millis` `pgdr-20260321T092837.482Z[-label]`.
pub fn snapshot_name(at: DateTime<Utc>, label: Option<&str>, millis: bool) -> String {
    let stamp = if millis {
        "%Y%m%dT%H%M%S%.3fZ"
    } else {
        "%Y%m%dT%H%M%SZ"
    };
    let mut s = format!("{PREFIX}{}", at.format(stamp));
    if let Some(l) = label {
        s.push('-');
        s.push_str(l);
    }
    s
}

/// The time and label of a name made by [`snapshot_name`] (either precision), or None for
/// any other name.
pub fn parse_name(name: &str) -> Option<(DateTime<Utc>, Option<String>)> {
    let rest = name.strip_prefix(PREFIX)?;
    let z = rest.find('Z')?;
    let (stamp, tail) = (&rest[..z], &rest[z + 1..]);
    let fmt = match stamp.len() {
        15 => "%Y%m%dT%H%M%S",
        19 if stamp.as_bytes()[15] == b'.' => "%Y%m%dT%H%M%S%.3f",
        _ => return None,
    };
    let t = NaiveDateTime::parse_from_str(stamp, fmt).ok()?;
    let label = match tail {
        "" => None,
        t => {
            let l = t.strip_prefix('-')?;
            check_snapshot_label(l).ok()?;
            Some(l.to_string())
        }
    };
    Some((Utc.from_utc_datetime(&t), label))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let t = Utc.with_ymd_and_hms(2026, 3, 21, 9, 28, 37).unwrap();
        assert_eq!(snapshot_name(t, None, false), "pgdr-20260321T092837Z");
        assert_eq!(
            snapshot_name(t, Some("nightly"), false),
            "pgdr-20260321T092837Z-nightly"
        );
        assert_eq!(
            parse_name("pgdr-20260321T092837Z-nightly"),
            Some((t, Some("nightly".into())))
        );
        assert_eq!(parse_name("pgdr-20260321T092837Z"), Some((t, None)));
        assert_eq!(parse_name("pgdr-20260321T092837"), None);
        assert_eq!(parse_name("pgdr-20260321T092837Zx"), None);
        assert_eq!(parse_name("autosnap_2026"), None);
        assert!(check_snapshot_label("a b").is_err());
        assert!(check_snapshot_label("-x").is_err());
        assert!(check_snapshot_label("x@y").is_err());
        assert!(check_snapshot_label("nightly-1.2_x").is_ok());
        // Milliseconds, for a second snapshot in the same second.
        let ms = t + chrono::Duration::milliseconds(482);
        let n = snapshot_name(ms, Some("a"), true);
        assert_eq!(n, "pgdr-20260321T092837.482Z-a");
        assert_eq!(parse_name(&n), Some((ms, Some("a".into()))));
        assert_eq!(parse_name("pgdr-20260321T092837.48Z"), None);
    }

    fn stored() -> Value {
        serde_json::json!({
            "snapshot": "pgdr-20260321T092837Z", "created": "2026-03-21T09:28:37Z",
            "label": null, "pgdata": "/tank/pg/data", "backend": "zfs",
            "location": "tank/pg@pgdr-20260321T092837Z", "pgdata_rel": "data",
            "pg_version": 15, "system_identifier": "1", "timeline": 1,
            "checkpoint_lsn": "0/1000028", "redo_lsn": "0/1000028",
            "checkpoint_time": "2026-03-21T09:28:00Z", "wal_start": "000000010000000000000001",
            "wal_segment_size": 16777216, "method": "atomic", "tool_version": "0.1.0",
            "consistent_at": "2026-03-21T09:28:38Z",
            "tablespaces": [{"oid": "16384", "target": "/t", "rel": "t"}]
        })
    }

    #[test]
    fn stored_metadata_of_a_newer_pgdr_is_read_and_a_document_is_strict() {
        let mut v = stored();
        v["added_later"] = serde_json::json!({"x": 1});
        v["tablespaces"][0]["added_later"] = serde_json::json!(true);
        v["backup"] = serde_json::json!({"backup_label": "L", "start_lsn": "0/1",
            "stop_lsn": "0/2", "from_standby": false, "added_later": 1});
        let m = SnapshotMeta::from_stored(&v.to_string()).unwrap();
        assert_eq!(m.tablespaces[0].oid, "16384");
        assert_eq!(m.backup.as_ref().unwrap().backup_label, "L");
        // What this version needs stays required.
        let mut missing = stored();
        missing.as_object_mut().unwrap().remove("wal_start");
        let e = SnapshotMeta::from_stored(&missing.to_string()).unwrap_err();
        assert!(e.contains("wal_start"), "{e}");
        // On stdin, snap-take's document is strict.
        v["tool"] = "snap-take".into();
        let e = pgdr_core::doc::parse::<SnapshotMeta>(&v.to_string()).unwrap_err();
        assert!(e.to_string().contains("added_later"), "{e}");
        let mut ok = stored();
        ok["tool"] = "snap-take".into();
        assert_eq!(
            pgdr_core::doc::parse::<SnapshotMeta>(&ok.to_string()).unwrap(),
            SnapshotMeta::from_stored(&stored().to_string()).unwrap()
        );
    }
}
