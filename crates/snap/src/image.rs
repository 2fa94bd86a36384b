//! A snapshot as an image's tree: the entries of its data directory as the snapshot has them
//! (read from a [`crate::backend::view::View`], never from the live directory), with pg_wal
//! and tablespaces stored as directories whatever links they are, and what PostgreSQL's base
//! backups leave out left out too (src/backend/backup/basebackup.c, excludeDirContents and
//! excludeFiles): it describes the running server or is rebuilt at startup. Of pg_wal, only
//! the segments a recovery from the snapshot can read are kept: none before its wal_start
//! (recovery begins at the redo point), none that is not the segment its name says (a
//! recycled segment waiting for reuse, a preallocated one; xlogrecovery.c ends the WAL at
//! such a page). Those are most of pg_wal on a busy server, and all in the archive or useless.

use crate::meta::{relink, source_root, SnapshotMeta};
use pgdr_core::{Context, Error, Result};
use pgdr_pgformat::page_header;
use pgdr_pgformat::wal_name::{Kind, WalName};
use pgdr_repo::image::manifest::{EntryKind, Manifest, Stamp};
use pgdr_repo::image::upload::SourceEntry;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// Directories whose contents are left out (basebackup.c, excludeDirContents).
const SKIP_CONTENTS: &[&str] = &[
    "pg_stat_tmp",
    "pg_replslot",
    "pg_dynshmem",
    "pg_notify",
    "pg_serial",
    "pg_snapshots",
    "pg_subtrans",
];

/// Files of the data directory's top level that are left out (basebackup.c, excludeFiles:
/// the running server's; a snapshot's backup label travels in its metadata).
const SKIP_FILES: &[&str] = &[
    "postmaster.pid",
    "postmaster.opts",
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
];

/// Whether a name anywhere is left out: temporary files (PG_TEMP_FILE_PREFIX) and relation
/// cache init files (RELCACHE_INIT_FILENAME), which the server rebuilds.
fn skipped_anywhere(name: &str) -> bool {
    name.starts_with("pgsql_tmp") || name == "pg_internal.init"
}

/// The image tree of a snapshot whose root is `view_root`: every entry below its data
/// directory, parents first, in name order.
///
/// # Errors
/// An entry cannot be read, or pg_wal or a tablespace links outside the snapshot.
pub fn entries(view_root: &Path, meta: &SnapshotMeta) -> Result<Vec<SourceEntry>> {
    let pgdata = crate::backend::join_rel(view_root, &meta.pgdata_rel);
    let mut out = Vec::new();
    walk(&pgdata, "", view_root, meta, &mut out)?;
    Ok(out)
}

fn walk(
    dir: &Path,
    rel: &str,
    view_root: &Path,
    meta: &SnapshotMeta,
    out: &mut Vec<SourceEntry>,
) -> Result<()> {
    if SKIP_CONTENTS.contains(&rel) {
        return Ok(());
    }
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .context(|| format!("cannot read {}", dir.display()))?
        .map(|e| e.map(|e| e.file_name()))
        .collect::<std::io::Result<_>>()
        .context(|| format!("cannot read {}", dir.display()))?;
    names.sort();
    for name in names {
        let n = name.to_string_lossy().into_owned();
        if skipped_anywhere(&n) || (rel.is_empty() && SKIP_FILES.contains(&n.as_str())) {
            continue;
        }
        let child_rel = if rel.is_empty() {
            n.clone()
        } else {
            format!("{rel}/{n}")
        };
        let mut p = dir.join(&name);
        let mut m =
            std::fs::symlink_metadata(&p).context(|| format!("cannot read {}", p.display()))?;
        if m.file_type().is_symlink() && followed(&child_rel) {
            p = resolve(&p, &child_rel, view_root, meta)?;
            m = std::fs::metadata(&p).context(|| format!("cannot read {}", p.display()))?;
        }
        let mode = m.mode() & 0o7777;
        let ft = m.file_type();
        if ft.is_dir() {
            out.push(SourceEntry {
                path: child_rel.clone(),
                kind: EntryKind::Dir,
                mode,
                size: 0,
                target: None,
                source: p.clone(),
                stamp: None,
            });
            walk(&p, &child_rel, view_root, meta, out)?;
        } else if ft.is_file() {
            if rel == "pg_wal" && unread_segment(&n, &p, meta)? {
                continue;
            }
            out.push(SourceEntry {
                path: child_rel,
                kind: EntryKind::File,
                mode,
                size: m.len(),
                target: None,
                source: p,
                stamp: Some(Stamp {
                    ino: m.ino(),
                    ctime_ns: m.ctime() * 1_000_000_000 + m.ctime_nsec(),
                    mtime_ns: m.mtime() * 1_000_000_000 + m.mtime_nsec(),
                }),
            });
        } else if ft.is_symlink() {
            let t = std::fs::read_link(&p).context(|| format!("cannot read {}", p.display()))?;
            out.push(SourceEntry {
                path: child_rel,
                kind: EntryKind::Symlink,
                mode,
                size: 0,
                target: Some(t.to_string_lossy().into_owned()),
                source: p,
                stamp: None,
            });
        }
        // Sockets and fifos are not data.
    }
    Ok(())
}

/// Whether `name` in pg_wal is a segment no recovery from the snapshot reads: before its
/// wal_start, or not holding its own pages (recycled or preallocated).
///
/// # Errors
/// It cannot be read.
fn unread_segment(name: &str, path: &Path, meta: &SnapshotMeta) -> Result<bool> {
    let Some(w) = WalName::parse(name).filter(|w| w.kind == Kind::Segment) else {
        return Ok(false);
    };
    let size = meta.wal_segment_size;
    match WalName::parse(&meta.wal_start) {
        Some(start) if w.fits(size) && w.segno(size) < start.segno(size) => return Ok(true),
        _ => {}
    }
    let mut first = Vec::with_capacity(page_header::LONG_HEADER_LEN);
    std::fs::File::open(path)
        .and_then(|f| {
            f.take(page_header::LONG_HEADER_LEN as u64)
                .read_to_end(&mut first)
        })
        .context(|| format!("cannot read {}", path.display()))?;
    Ok(page_header::parse(&first)
        .and_then(|h| page_header::check_against_name(&h, &w))
        .is_err())
}

/// pg_wal and the tablespace links are followed: the image holds their contents.
fn followed(rel: &str) -> bool {
    rel == "pg_wal"
        || rel
            .strip_prefix("pg_tblspc/")
            .is_some_and(|oid| !oid.contains('/'))
}

/// Where a followed link of the source points inside the view.
fn resolve(link: &Path, rel: &str, view_root: &Path, meta: &SnapshotMeta) -> Result<PathBuf> {
    let target = std::fs::read_link(link).context(|| format!("cannot read {}", link.display()))?;
    let link_dir = match rel.rsplit_once('/') {
        Some((parent, _)) => meta.pgdata.join(parent),
        None => meta.pgdata.clone(),
    };
    relink(&target, &link_dir, &source_root(meta), view_root)
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            Error::failed(format!(
                "cannot store {rel} of {} in an image",
                meta.snapshot
            ))
            .because(format!(
                "it points to {}, which is not in the snapshot",
                target.display()
            ))
        })
}

/// The user that owns the data directory as the snapshot has it (a restore as root gives the
/// tree to that user).
pub fn owner(view_root: &Path, meta: &SnapshotMeta) -> String {
    let pgdata = crate::backend::join_rel(view_root, &meta.pgdata_rel);
    std::fs::metadata(&pgdata)
        .ok()
        .map(|m| pgdr_core::owner::user_by_uid(m.uid()).map_or(m.uid().to_string(), |u| u.name))
        .unwrap_or_default()
}

/// The snapshot an image is of, from its manifest.
///
/// # Errors
/// The manifest's snapshot metadata cannot be read.
pub fn meta_of(m: &Manifest) -> Result<SnapshotMeta> {
    SnapshotMeta::from_stored(&m.snapshot.to_string()).map_err(|e| {
        Error::failed(format!("image {} cannot be used", m.image))
            .because(format!("its snapshot metadata is not usable: {e}"))
    })
}

/// Whether an image found under a snapshot's name is an image of that snapshot.
///
/// # Errors
/// Why it is another one.
pub fn is_image_of(m: &Manifest, meta: &SnapshotMeta) -> std::result::Result<(), String> {
    let theirs = meta_of(m).map_err(|e| e.to_string())?;
    let same = theirs.snapshot == meta.snapshot
        && theirs.system_identifier == meta.system_identifier
        && theirs.pgdata == meta.pgdata
        && theirs.created == meta.created
        && theirs.checkpoint_lsn == meta.checkpoint_lsn;
    if same {
        Ok(())
    } else {
        Err(format!(
            "it is an image of the snapshot of {} taken {} (checkpoint {}), not of {} taken {} (checkpoint {})",
            theirs.pgdata.display(),
            theirs.created.to_rfc3339(),
            theirs.checkpoint_lsn,
            meta.pgdata.display(),
            meta.created.to_rfc3339(),
            meta.checkpoint_lsn
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The first bytes of a PostgreSQL 15 segment whose first page is at `pageaddr`.
    fn segment_start(pageaddr: u64) -> Vec<u8> {
        let mut b = vec![0u8; 64];
        b[0..2].copy_from_slice(&0xD110u16.to_le_bytes());
        b[2..4].copy_from_slice(&2u16.to_le_bytes());
        b[4..8].copy_from_slice(&1u32.to_le_bytes());
        b[8..16].copy_from_slice(&pageaddr.to_le_bytes());
        b[32..36].copy_from_slice(&(16u32 << 20).to_le_bytes());
        b[36..40].copy_from_slice(&8192u32.to_le_bytes());
        b
    }

    #[test]
    fn links_followed_and_contents_left_out() {
        assert!(followed("pg_wal") && followed("pg_tblspc/16384"));
        assert!(!followed("pg_tblspc/16384/PG_15_1") && !followed("base/pg_wal"));
        let d = tempfile::tempdir().unwrap();
        let root = d.path().join("snap");
        let data = root.join("data");
        for p in ["base/1", "pg_stat_tmp", "pg_replslot/s", "global", "wal"] {
            std::fs::create_dir_all(data.join(p)).unwrap();
        }
        std::fs::create_dir_all(root.join("wal")).unwrap();
        let seg = |n: u64| format!("wal/0000000100000000000000{n:02X}");
        // Before wal_start; wal_start itself; recycled (segment 1's pages); preallocated.
        std::fs::write(root.join(seg(1)), segment_start(1 << 24)).unwrap();
        std::fs::write(root.join(seg(2)), segment_start(2 << 24)).unwrap();
        std::fs::write(root.join(seg(3)), segment_start(1 << 24)).unwrap();
        std::fs::write(root.join(seg(4)), vec![0u8; 64]).unwrap();
        std::fs::write(root.join("wal/00000002.history"), b"1\t0/2000000\tx\n").unwrap();
        std::fs::write(data.join("base/1/1259"), b"rel").unwrap();
        std::fs::write(data.join("base/1/pg_internal.init"), b"x").unwrap();
        std::fs::write(data.join("pg_replslot/s/state"), b"x").unwrap();
        std::fs::write(data.join("postmaster.pid"), b"1").unwrap();
        std::fs::remove_dir(data.join("wal")).unwrap();
        std::os::unix::fs::symlink("/src/pg/wal", data.join("pg_wal")).unwrap();
        let meta = serde_json::json!({
            "snapshot": "pgdr-20260321T092837Z", "created": "2026-03-21T09:28:37Z",
            "label": null, "pgdata": "/src/pg/data", "backend": "btrfs",
            "location": "/s", "pgdata_rel": "data",
            "pg_version": 15, "system_identifier": "1", "timeline": 1,
            "checkpoint_lsn": "0/1000028", "redo_lsn": "0/1000028",
            "checkpoint_time": "2026-03-21T09:28:00Z", "wal_start": "000000010000000000000002",
            "wal_segment_size": 16777216, "method": "atomic", "tool_version": "0.1.0",
            "consistent_at": "2026-03-21T09:28:38Z"
        });
        let meta = SnapshotMeta::from_stored(&meta.to_string()).unwrap();
        let e = entries(&root, &meta).unwrap();
        let paths: Vec<&str> = e.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(
            paths,
            [
                "base",
                "base/1",
                "base/1/1259",
                "global",
                "pg_replslot",
                "pg_stat_tmp",
                "pg_wal",
                "pg_wal/000000010000000000000002",
                "pg_wal/00000002.history"
            ]
        );
        assert_eq!(e[6].kind, EntryKind::Dir);
        // A link out of the snapshot is refused.
        std::fs::remove_file(data.join("pg_wal")).unwrap();
        std::os::unix::fs::symlink("/elsewhere/wal", data.join("pg_wal")).unwrap();
        let err = entries(&root, &meta).unwrap_err();
        assert!(err.to_string().contains("not in the snapshot"), "{err}");
    }
}
