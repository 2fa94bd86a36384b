//! What every snapshot carries, and snapshot names `pgdr-YYYYmmddTHHMMSSZ[-LABEL]`.

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use pgdr_pgformat::Lsn;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// Snapshot names start with this; the rest is the UTC time and an optional label.
pub const PREFIX: &str = "pgdr-";

/// The metadata stored with a snapshot (a ZFS user property, or a JSON sidecar) and printed
/// by snap-take. snap-clone reads it to restore; snap-prune to decide.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotMeta {
    /// The snapshot's name, `pgdr-YYYYmmddTHHMMSSZ[-LABEL]`.
    pub snapshot: String,
    /// When it was taken (UTC, whole seconds).
    pub created: DateTime<Utc>,
    pub label: Option<String>,
    /// The data directory it was taken of (canonical path).
    pub pgdata: PathBuf,
    /// "zfs", "btrfs" or "copy".
    pub backend: String,
    /// zfs: `pool/ds@name`; btrfs and copy: the snapshot's directory.
    pub location: String,
    /// Where PGDATA sits inside the snapshot's root ("" when PGDATA is the root).
    pub pgdata_rel: String,
    /// zfs: every dataset in the set, with its mountpoint relative to the root's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<Member>,
    /// Tablespaces (pg_tblspc symlinks) and where their targets are inside the snapshot.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tablespaces: Vec<Tablespace>,
    /// PostgreSQL major version (PG_VERSION).
    pub pg_version: u32,
    /// As text: a 64-bit number does not survive JSON parsers that use doubles.
    pub system_identifier: String,
    pub timeline: u32,
    pub checkpoint_lsn: Lsn,
    pub redo_lsn: Lsn,
    pub checkpoint_time: DateTime<Utc>,
    /// The oldest WAL file a recovery from this snapshot needs.
    pub wal_start: String,
    pub wal_segment_size: u64,
    /// "atomic" (crash-consistent image) or "backup" (pg_backup_start/stop around it).
    pub method: String,
    /// From the snapshot's pg_control when set (a standby's), else absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_recovery_point: Option<Lsn>,
    /// With `-d`: what pg_backup_stop returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<BackupInfo>,
    /// The pgdr version that took it.
    pub tool_version: String,
    /// When the snapshot (and, in backup mode, pg_backup_stop) had completed: no commit in
    /// its WAL is younger. snap-clone refuses recovery targets before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consistent_at: Option<DateTime<Utc>>,
}

/// A dataset of a ZFS snapshot set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub dataset: String,
    /// Its mountpoint relative to the root dataset's ("" for the root itself).
    pub rel: String,
}

/// A tablespace symlink and where its target lies inside the snapshot root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tablespace {
    pub oid: String,
    /// The symlink's target on the source system.
    pub target: PathBuf,
    /// The target relative to the snapshot root (a clone relinks to `<clone root>/<rel>`).
    pub rel: String,
}

/// What a backup-mode snapshot needs at restore time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// The `backup_label` contents, byte for byte, to write into a restored copy.
    pub backup_label: String,
    /// The `tablespace_map` contents, when there are tablespaces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tablespace_map: Option<String>,
    pub start_lsn: Lsn,
    /// pg_backup_stop's LSN: recovery must reach it before the copy is consistent.
    pub stop_lsn: Lsn,
    pub from_standby: bool,
}

impl SnapshotMeta {
    /// The point in time a restore from this snapshot is consistent at, at the latest: when
    /// it had completed (`created` is truncated to the second and taken before the snapshot,
    /// so older metadata without `consistent_at` gets two seconds of margin).
    pub fn consistent_time(&self) -> DateTime<Utc> {
        self.consistent_at
            .unwrap_or(self.created + chrono::Duration::seconds(2))
    }
}

/// A valid label: 1–64 of `[A-Za-z0-9._]` and `-` (not first), so names stay one shell word
/// and one ZFS snapshot component.
pub fn check_label(label: &str) -> Result<(), String> {
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

/// `pgdr-20260321T092837Z[-label]`.
pub fn snapshot_name(at: DateTime<Utc>, label: Option<&str>) -> String {
    let mut s = format!("{PREFIX}{}", at.format("%Y%m%dT%H%M%SZ"));
    if let Some(l) = label {
        s.push('-');
        s.push_str(l);
    }
    s
}

/// The time and label of a name made by [`snapshot_name`], or None for any other name.
pub fn parse_name(name: &str) -> Option<(DateTime<Utc>, Option<String>)> {
    let rest = name.strip_prefix(PREFIX)?;
    if rest.len() < 16 || !rest.is_char_boundary(16) {
        return None;
    }
    let (stamp, tail) = rest.split_at(16);
    let t = NaiveDateTime::parse_from_str(stamp, "%Y%m%dT%H%M%SZ").ok()?;
    let label = match tail {
        "" => None,
        t => {
            let l = t.strip_prefix('-')?;
            check_label(l).ok()?;
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
        assert_eq!(snapshot_name(t, None), "pgdr-20260321T092837Z");
        assert_eq!(
            snapshot_name(t, Some("nightly")),
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
        assert!(check_label("a b").is_err());
        assert!(check_label("-x").is_err());
        assert!(check_label("x@y").is_err());
        assert!(check_label("nightly-1.2_x").is_ok());
    }
}
