//! Finding snap-take's snapshots without knowing their data directory (snap-clone without
//! --pgdata). ZFS snapshots carry their metadata as a user property, so one `zfs list` over
//! every imported pool finds them all. A btrfs snapshot is a subvolume named like a snapshot
//! with its JSON sidecar beside it, so `btrfs subvolume list` on every mounted btrfs
//! filesystem finds them wherever the store is. Copy snapshots are plain directories in a
//! store beside their data directory (or wherever --snapshot-dir put them): there is no
//! system-wide place to look, so only a given store is read.

use super::run::{have, run};
use super::zfs::PROP_META;
use super::BackendKind;
use crate::meta::SnapshotMeta;
use pgdr_core::Result;
use std::path::{Path, PathBuf};

/// A snapshot found, with what [`super::Backend::detect`] needs to open its storage.
#[derive(Debug, Clone)]
pub struct Found {
    pub meta: SnapshotMeta,
    pub kind: BackendKind,
    /// btrfs and copy: the store holding it.
    pub store: Option<PathBuf>,
}

/// Every snapshot found, and why a place could not be searched (for the error message when
/// nothing serves).
#[derive(Debug, Default)]
pub struct Discovery {
    pub found: Vec<Found>,
    pub notes: Vec<String>,
}

/// Searches ZFS (every imported pool), btrfs (every mounted filesystem) and, when given, the
/// store `store` (btrfs or copy sidecars).
pub fn discover(store: Option<&Path>) -> Result<Discovery> {
    let mut d = Discovery::default();
    if let Some(s) = store {
        for meta in super::read_sidecars(s, |n| s.join(n))? {
            let Some(kind) = BackendKind::parse(&meta.backend) else {
                continue;
            };
            d.found.push(Found {
                meta,
                kind,
                store: Some(s.to_path_buf()),
            });
        }
        return Ok(d);
    }
    if have("zfs") {
        match zfs_snapshots() {
            Ok(v) => d.found.extend(v),
            // The error names the command already ("zfs list failed: …").
            Err(e) => d.notes.push(e.to_string()),
        }
    }
    let btrfs_mounts = std::fs::read_to_string("/proc/self/mountinfo")
        .map(|t| btrfs_mounts(&t))
        .unwrap_or_default();
    if !btrfs_mounts.is_empty() {
        if !have("btrfs") {
            d.notes
                .push("btrfs is mounted but the btrfs command is not installed".into());
        } else if !pgdr_core::owner::is_root() {
            d.notes.push("listing btrfs subvolumes needs root".into());
        } else {
            for m in &btrfs_mounts {
                match btrfs_snapshots(m) {
                    Ok(v) => d.found.extend(v),
                    Err(e) => d.notes.push(format!(
                        "cannot list the subvolumes of {}: {e}",
                        m.mountpoint.display()
                    )),
                }
            }
        }
    }
    // The same btrfs snapshot can be reached through two mounts.
    d.found
        .sort_by(|a, b| a.meta.location.cmp(&b.meta.location));
    d.found.dedup_by(|a, b| a.meta.location == b.meta.location);
    Ok(d)
}

/// `NAME<TAB>pgdr:meta` lines of `zfs list -t snapshot` (zfs-fuse's `get` has no `-t`; both
/// CLIs print `-` for an unset property).
pub fn parse_zfs_list(out: &str) -> Vec<SnapshotMeta> {
    out.lines()
        .filter_map(|l| {
            let (name, value) = l.split_once('\t')?;
            if value == "-" {
                return None;
            }
            let meta = SnapshotMeta::from_stored(value).ok()?;
            // Only the set's root carries the metadata, under the name it was taken as.
            (meta.location == name).then_some(meta)
        })
        .collect()
}

fn zfs_snapshots() -> Result<Vec<Found>> {
    let out = run(
        "zfs",
        &[
            "list",
            "-H",
            "-t",
            "snapshot",
            "-o",
            &format!("name,{PROP_META}"),
        ],
    )?;
    Ok(parse_zfs_list(&out)
        .into_iter()
        .map(|meta| Found {
            meta,
            kind: BackendKind::Zfs,
            store: None,
        })
        .collect())
}

/// A mounted btrfs filesystem: its device, the subvolume path mounted (`root`, relative to
/// the top level) and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BtrfsMount {
    pub dev: String,
    pub root: String,
    pub mountpoint: PathBuf,
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
pub(crate) fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(u8::is_ascii_digit) {
            if let Ok(v) = u8::from_str_radix(&s[i + 1..i + 4], 8) {
                out.push(v);
                i += 4;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// One entry per btrfs device (the mount of the highest subvolume, which sees the most).
pub fn btrfs_mounts(mountinfo: &str) -> Vec<BtrfsMount> {
    let mut v: Vec<BtrfsMount> = Vec::new();
    for line in mountinfo.lines() {
        let f: Vec<&str> = line.split(' ').collect();
        let Some(sep) = f.iter().position(|x| *x == "-") else {
            continue;
        };
        if f.len() < 5 || f.get(sep + 1) != Some(&"btrfs") {
            continue;
        }
        let m = BtrfsMount {
            dev: f[2].to_string(),
            root: unescape(f[3]),
            mountpoint: PathBuf::from(unescape(f[4])),
        };
        match v.iter_mut().find(|x| x.dev == m.dev) {
            Some(x) if m.root.len() < x.root.len() => *x = m,
            Some(_) => {}
            None => v.push(m),
        }
    }
    v
}

/// Where a subvolume path from `btrfs subvolume list` (relative to the top level) is visible
/// through `m`, or None when it is outside the mounted subvolume.
pub fn btrfs_path(m: &BtrfsMount, subvol: &str) -> Option<PathBuf> {
    let subvol = subvol.strip_prefix("<FS_TREE>/").unwrap_or(subvol);
    let root = m.root.trim_matches('/');
    let rel = if root.is_empty() {
        subvol
    } else {
        subvol.strip_prefix(root)?.strip_prefix('/')?
    };
    Some(m.mountpoint.join(rel))
}

fn btrfs_snapshots(m: &BtrfsMount) -> Result<Vec<Found>> {
    let out = run(
        "btrfs",
        &["subvolume", "list", &m.mountpoint.to_string_lossy()],
    )?;
    let mut v = Vec::new();
    for line in out.lines() {
        let Some((_, subvol)) = line.split_once(" path ") else {
            continue;
        };
        let Some(path) = btrfs_path(m, subvol) else {
            continue;
        };
        let (Some(name), Some(store)) = (
            path.file_name().map(|n| n.to_string_lossy().into_owned()),
            path.parent(),
        ) else {
            continue;
        };
        if crate::meta::parse_name(&name).is_none() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(super::sidecar_path(store, &name)) else {
            continue;
        };
        let Ok(meta) = SnapshotMeta::from_stored(&text) else {
            continue;
        };
        if meta.backend != "btrfs" || meta.snapshot != name {
            continue;
        }
        v.push(Found {
            meta,
            kind: BackendKind::Btrfs,
            store: Some(store.to_path_buf()),
        });
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zfs_list_lines() {
        let meta = serde_json::json!({
            "snapshot": "pgdr-20260321T092837Z", "created": "2026-03-21T09:28:37Z",
            "label": null, "pgdata": "/tank/pg/data", "backend": "zfs",
            "location": "tank/pg@pgdr-20260321T092837Z", "pgdata_rel": "data",
            "pg_version": 15, "system_identifier": "1", "timeline": 1,
            "checkpoint_lsn": "0/1000028", "redo_lsn": "0/1000028",
            "checkpoint_time": "2026-03-21T09:28:00Z", "wal_start": "000000010000000000000001",
            "wal_segment_size": 16777216, "method": "atomic", "tool_version": "0.1.0",
            "consistent_at": "2026-03-21T09:28:38Z"
        })
        .to_string();
        let out = format!(
            "tank/pg@pgdr-20260321T092837Z\t{meta}\n\
             tank/pg@hourly\t-\n\
             tank/pg/wal@pgdr-20260321T092837Z\t-\n\
             backup/pg@pgdr-20260321T092837Z\t{meta}\n\
             tank/pg@pgdr-20260321T100000Z\tnot json\n"
        );
        let v = parse_zfs_list(&out);
        // A received copy elsewhere carries the same metadata under another name: skipped.
        assert_eq!(v.len(), 1);
        assert_eq!(v[0].pgdata, PathBuf::from("/tank/pg/data"));
    }

    #[test]
    fn mountinfo_btrfs_entries() {
        let mi = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:45 /pg /srv/pg rw shared:2 - btrfs /dev/loop0 rw,subvol=/pg
41 22 0:45 / /mnt/with\\040space rw shared:3 - btrfs /dev/loop0 rw,subvol=/
42 22 0:46 /a/b /data rw - btrfs /dev/loop1 rw
";
        let m = btrfs_mounts(mi);
        assert_eq!(
            m,
            vec![
                BtrfsMount {
                    dev: "0:45".into(),
                    root: "/".into(),
                    mountpoint: "/mnt/with space".into()
                },
                BtrfsMount {
                    dev: "0:46".into(),
                    root: "/a/b".into(),
                    mountpoint: "/data".into()
                },
            ]
        );
        assert_eq!(
            btrfs_path(&m[0], ".pgdr-snapshots/pg/pgdr-20260321T092837Z"),
            Some(PathBuf::from(
                "/mnt/with space/.pgdr-snapshots/pg/pgdr-20260321T092837Z"
            ))
        );
        assert_eq!(
            btrfs_path(&m[1], "<FS_TREE>/a/b/s/pgdr-x"),
            Some(PathBuf::from("/data/s/pgdr-x"))
        );
        assert_eq!(btrfs_path(&m[1], "a/bc/pgdr-x"), None);
        assert_eq!(btrfs_path(&m[1], "other/pgdr-x"), None);
    }
}
