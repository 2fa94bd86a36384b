//! An image's manifest (FORMAT.md, "Images"): what the image is (the snapshot's metadata, as
//! the snapshot tools store it) and every entry of its tree with its pieces. Stored as one
//! object of kind "image manifest" (JSON, compressed and checksummed like every object) at
//! `images/manifests/NAME`, published after every piece it names: a manifest that exists
//! describes a complete image.

use super::{manifest_key, name_of, valid_name, MANIFEST_PREFIX, PIECE};
use crate::file::RestoreError;
use crate::object::{self, Put};
use crate::repo::Repo;
use crate::stored::{Compression, ObjectKind};
use chrono::{DateTime, Utc};
use pgdr_core::{Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Component, Path};

/// The manifest format this build writes and reads.
pub const FORMAT: &str = "pgdr-image";
pub const VERSION: u32 = 1;

/// What an entry of the tree is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntryKind {
    Dir,
    File,
    Symlink,
}

/// One entry of the image's tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Relative to the image's root (the data directory), `/`-separated; never empty, never
    /// absolute, never with `..`.
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits (the low 12 bits of st_mode).
    pub mode: u32,
    /// A file's size in bytes (0 for directories and symlinks).
    #[serde(default)]
    pub size: u64,
    /// A file's pieces in order: the SHA-256 (hex) of each [`PIECE`]-sized slice of its
    /// content, the last one shorter; the key of each is [`super::data_key`]. Together they
    /// are the file's checksum.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pieces: Vec<String>,
    /// A symlink's target, as it was read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// A file's inode and change times as the snapshot had them: what lets the next image of
    /// the same data directory take this entry's pieces without reading the file (see
    /// [`Stamp`]). Absent in images stored before stamps were kept, and for other entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<Stamp>,
}

/// A file's identity and last change in a snapshot: inode number, status-change time
/// (ctime, which every write, truncate or chmod sets and no user can set back) and
/// modification time, in nanoseconds since the Unix epoch (stat(2)).
///
/// Two snapshots of one file system that show a path with the same stamp and size hold the
/// same bytes there, unless a write after the first snapshot fell in the same tick of the
/// kernel's coarse clock as the one before it (timestamps are taken from a clock that
/// advances once a tick, a few milliseconds). [`Stamp::trusted`] rules those out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stamp {
    pub ino: u64,
    pub ctime_ns: i64,
    pub mtime_ns: i64,
}

impl Stamp {
    /// Whether an image's stamp can stand for its file's content in a later snapshot: its
    /// change time is more than a second before `bound`, the earlier of the image's newest
    /// change time and the moment its snapshot was named. Every write the snapshot holds
    /// happened before it was taken, so a later write with the same coarse timestamp can
    /// only be one to a file changed within a tick of the snapshot, and such files (changed
    /// within a second of the newest change, or of the snapshot) are read again. The newest
    /// change time bounds it when the snapshot's name time is later than the file system's
    /// clock; the name time when a file's times are ahead of the clock.
    pub fn trusted(&self, bound_ns: i64) -> bool {
        self.ctime_ns < bound_ns.saturating_sub(1_000_000_000)
    }
}

/// An image's manifest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`].
    pub version: u32,
    /// The image's name (the snapshot's).
    pub image: String,
    /// The database system (pg_control), as a string.
    pub system_identifier: String,
    /// When the snapshot was taken: the time retention sorts images by.
    pub created: DateTime<Utc>,
    /// When the image was completed.
    pub stored: DateTime<Utc>,
    /// The piece size the files were cut with.
    pub piece_size: u64,
    /// The name of the user that owned the data directory (a restore as root gives the tree
    /// to that user).
    pub owner: String,
    /// The snapshot's metadata as the snapshot tools store it (snap-take's document).
    pub snapshot: serde_json::Value,
    /// Original bytes of every file.
    pub bytes: u64,
    /// Distinct pieces referenced, and their size as stored (shared with other images).
    pub objects: u64,
    pub stored_bytes: u64,
    /// The tree, parents before children.
    pub files: Vec<Entry>,
    /// Which file system the snapshot was of (`BACKEND:PGDATA`): only an image of the same
    /// source lends its pieces by [`Stamp`]. Absent in images stored before stamps were kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

fn bad(name: &str, why: String) -> Error {
    Error::failed(format!("image {name} cannot be used")).because(why)
}

/// Whether `p` is a safe relative path (no root, no `..`, no `.`, not empty).
fn safe_path(p: &str) -> bool {
    !p.is_empty()
        && !p.ends_with('/')
        && Path::new(p)
            .components()
            .all(|c| matches!(c, Component::Normal(_)))
}

impl Manifest {
    /// The bound [`Stamp::trusted`] compares this image's stamps with: the earlier of its
    /// newest file change time and the moment its snapshot was named, in nanoseconds since
    /// the Unix epoch. None when it has no stamps.
    pub fn stamp_bound(&self) -> Option<i64> {
        let newest = self
            .files
            .iter()
            .filter_map(|e| e.stamp.map(|s| s.ctime_ns))
            .max()?;
        let named = self.created.timestamp_nanos_opt().unwrap_or(i64::MAX);
        Some(newest.min(named))
    }

    /// Checks what a restore relies on: format, name, safe paths, parents before children,
    /// and pieces that add up to each file's size.
    ///
    /// # Errors
    /// Why it cannot be used.
    pub fn check(&self, name: &str) -> Result<()> {
        if self.format != FORMAT || self.version != VERSION {
            return Err(bad(
                name,
                format!(
                    "its manifest is {} version {}; this pgdr reads {FORMAT} version {VERSION}",
                    self.format, self.version
                ),
            )
            .hint("use the pgdr release that stored it"));
        }
        if self.image != name {
            return Err(bad(
                name,
                format!("its manifest names image {}", self.image),
            ));
        }
        if self.piece_size == 0 || self.piece_size > 1 << 30 {
            return Err(bad(name, format!("piece size {}", self.piece_size)));
        }
        let mut dirs = std::collections::HashSet::new();
        for e in &self.files {
            if !safe_path(&e.path) {
                return Err(bad(
                    name,
                    format!("unsafe path {:?} in its manifest", e.path),
                ));
            }
            if let Some((parent, _)) = e.path.rsplit_once('/') {
                if !dirs.contains(parent) {
                    return Err(bad(
                        name,
                        format!("{} comes before its directory in its manifest", e.path),
                    ));
                }
            }
            match e.kind {
                EntryKind::Dir => {
                    dirs.insert(e.path.as_str());
                }
                EntryKind::Symlink if e.target.is_none() => {
                    return Err(bad(name, format!("symlink {} has no target", e.path)));
                }
                EntryKind::Symlink => {}
                EntryKind::File => {
                    let want = e.size.div_ceil(self.piece_size);
                    let hex_ok = e.pieces.iter().all(|p| {
                        p.len() == 64
                            && p.bytes()
                                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
                    });
                    if e.pieces.len() as u64 != want || !hex_ok {
                        return Err(bad(
                            name,
                            format!(
                                "{} has {} bytes but {} pieces in its manifest",
                                e.path,
                                e.size,
                                e.pieces.len()
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// A new manifest with the standard piece size.
    pub fn new(
        image: &str,
        system_identifier: u64,
        created: DateTime<Utc>,
        snapshot: serde_json::Value,
    ) -> Manifest {
        Manifest {
            format: FORMAT.into(),
            version: VERSION,
            image: image.into(),
            system_identifier: system_identifier.to_string(),
            created,
            stored: Utc::now(),
            piece_size: PIECE,
            owner: String::new(),
            snapshot,
            bytes: 0,
            objects: 0,
            stored_bytes: 0,
            files: Vec::new(),
            source: None,
        }
    }
}

/// Publishes a manifest (create-if-absent: never replaced).
///
/// # Errors
/// It cannot be written.
pub fn write(repo: &Repo, m: &Manifest, compression: Compression, level: i32) -> Result<Put> {
    let text = serde_json::to_vec(m).expect("a manifest serializes");
    object::put(
        repo,
        &manifest_key(&m.image),
        ObjectKind::ImageManifest,
        &mut &text[..],
        compression,
        level,
    )
}

/// Reads and checks an image's manifest; `None` when the repository has no such image.
///
/// # Errors
/// It exists but cannot be read, is damaged, or cannot be used.
pub fn read(repo: &Repo, name: &str) -> Result<Option<Manifest>> {
    valid_name(name).map_err(Error::usage)?;
    let mut text = Vec::new();
    match object::get(
        repo,
        &manifest_key(name),
        ObjectKind::ImageManifest,
        &mut text,
    ) {
        Ok(_) => {}
        Err(RestoreError::Missing) => return Ok(None),
        Err(e) => {
            return Err(Error::failed(format!(
                "cannot read the manifest of image {name} in {}",
                repo.location()
            ))
            .because(object::explain(e)))
        }
    }
    let m: Manifest = serde_json::from_slice(&text).map_err(|e| {
        bad(
            name,
            format!("its manifest is malformed or from a newer pgdr: {e}"),
        )
    })?;
    m.check(name)?;
    Ok(Some(m))
}

/// The names of every image in the repository, sorted.
///
/// # Errors
/// The repository cannot be listed.
pub fn names(repo: &Repo) -> Result<Vec<String>> {
    let listing = repo.store().list(MANIFEST_PREFIX)?;
    let mut v: Vec<String> = listing
        .objects
        .iter()
        .filter_map(|o| name_of(&o.key).map(str::to_string))
        .collect();
    v.sort();
    Ok(v)
}

/// Every image's manifest, oldest first (by the snapshot's time, then name).
///
/// # Errors
/// The repository cannot be listed, or a manifest cannot be read (an unreadable manifest is
/// an error, never skipped: retention would otherwise misjudge what is newest).
pub fn all(repo: &Repo) -> Result<Vec<Manifest>> {
    let mut v = Vec::new();
    for n in names(repo)? {
        if let Some(m) = read(repo, &n)? {
            v.push(m);
        }
    }
    v.sort_by(|a, b| {
        a.created
            .cmp(&b.created)
            .then_with(|| a.image.cmp(&b.image))
    });
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m() -> Manifest {
        let mut m = Manifest::new("img", 7, Utc::now(), serde_json::json!({}));
        let dir = |p: &str| Entry {
            path: p.into(),
            kind: EntryKind::Dir,
            mode: 0o700,
            size: 0,
            pieces: vec![],
            target: None,
            stamp: None,
        };
        m.files = vec![
            dir("base"),
            Entry {
                path: "base/1".into(),
                kind: EntryKind::File,
                mode: 0o600,
                size: PIECE + 1,
                pieces: vec!["a".repeat(64), "b".repeat(64)],
                target: None,
                stamp: None,
            },
        ];
        m
    }

    #[test]
    fn only_safe_complete_manifests_pass() {
        m().check("img").unwrap();
        assert!(m().check("other").is_err());
        let mut x = m();
        x.files[1].pieces.pop();
        assert!(x.check("img").unwrap_err().to_string().contains("pieces"));
        for p in ["../etc", "/etc", "base/../x", "base/./x", "", "base/"] {
            let mut x = m();
            x.files[1].path = p.into();
            assert!(x.check("img").is_err(), "{p}");
        }
        let mut x = m();
        x.files.swap(0, 1);
        assert!(x.check("img").is_err());
        let mut x = m();
        x.version = 2;
        assert!(x
            .check("img")
            .unwrap_err()
            .to_string()
            .contains("version 2"));
    }
}
