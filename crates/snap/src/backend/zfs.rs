//! ZFS: the dataset whose mountpoint holds PGDATA, snapshotted with its descendants in one
//! atomic `zfs snapshot -r`. Works with zfs-fuse's older CLI (no `list -p`, no `clones`
//! property, no `.zfs` directory, one snapshot argument) and OpenZFS 2.x: only commands both
//! understand are used, and the flavour (found with `zfs version`) only decides how a file
//! inside a snapshot is read.

use super::CloneInfo;
use crate::meta::{Member, SnapshotMeta, Tablespace};
use crate::sys::{self, Layout};
use pgdr_core::{Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The metadata property (compact JSON of [`SnapshotMeta`]).
pub const PROP_META: &str = "pgdr:meta";
/// Set at creation, so a snapshot interrupted before its metadata is still recognisable.
pub const PROP_TOOL: &str = "pgdr:tool";
/// On clones: the snapshot they were made from.
pub const PROP_CLONE: &str = "pgdr:clone";

#[derive(Debug, Clone)]
pub struct Zfs {
    pub pgdata: PathBuf,
    /// The dataset holding PGDATA.
    pub dataset: String,
    pub mountpoint: PathBuf,
    pub pgdata_rel: String,
    /// The dataset and its descendants, with mountpoints relative to its own.
    pub members: Vec<Member>,
    /// OpenZFS 2.x (has `zfs version` and `.zfs/snapshot`), else zfs-fuse's older CLI.
    pub openzfs: bool,
}

/// (name, mountpoint) of every filesystem dataset.
fn datasets() -> Result<Vec<(String, String)>> {
    let out = sys::run(
        "zfs",
        &["list", "-H", "-o", "name,mountpoint", "-t", "filesystem"],
    )?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (n, m) = l.split_once('\t')?;
            Some((n.to_string(), m.to_string()))
        })
        .collect())
}

/// The dataset whose mountpoint is the longest prefix of `path`.
fn owning(all: &[(String, String)], path: &Path) -> Option<(String, PathBuf)> {
    all.iter()
        .filter(|(_, m)| m.starts_with('/'))
        .filter(|(_, m)| path.starts_with(m))
        .max_by_key(|(_, m)| m.len())
        .map(|(n, m)| (n.clone(), PathBuf::from(m)))
}

fn retry_busy(args: &[&str]) -> Result<String> {
    let mut last = None;
    for _ in 0..20 {
        match sys::run("zfs", args) {
            Ok(s) => return Ok(s),
            Err(e) if e.why.as_deref().is_some_and(|w| w.contains("busy")) => {
                last = Some(e);
                std::thread::sleep(Duration::from_millis(250));
            }
            Err(e) => return Err(e),
        }
    }
    Err(last.expect("at least one attempt"))
}

impl Zfs {
    /// The dataset holding `pgdata`, or None when it is not on a mounted ZFS dataset.
    pub fn detect(pgdata: &Path) -> Result<Option<Zfs>> {
        let all = datasets()?;
        let Some((dataset, mountpoint)) = owning(&all, pgdata) else {
            return Ok(None);
        };
        let mounted = sys::run("zfs", &["get", "-H", "-o", "value", "mounted", &dataset])?;
        if mounted.trim() != "yes" {
            return Ok(None);
        }
        let prefix = format!("{dataset}/");
        let mut members = vec![Member {
            dataset: dataset.clone(),
            rel: String::new(),
        }];
        for (n, m) in &all {
            if n.starts_with(&prefix) {
                let rel = sys::rel_to(Path::new(m), &mountpoint).ok_or_else(|| {
                    Error::failed(format!("cannot snapshot {dataset} with its descendants"))
                        .because(format!(
                            "{n} is mounted at {m}, outside {}",
                            mountpoint.display()
                        ))
                        .hint("mount child datasets below their parent")
                })?;
                members.push(Member {
                    dataset: n.clone(),
                    rel,
                });
            }
        }
        let openzfs = sys::run("zfs", &["version"]).is_ok();
        Ok(Some(Zfs {
            pgdata: pgdata.to_path_buf(),
            pgdata_rel: sys::rel_to(pgdata, &mountpoint).unwrap_or_default(),
            dataset,
            mountpoint,
            members,
            openzfs,
        }))
    }

    /// pg_wal and tablespaces must be on this dataset or its descendants (one atomic
    /// recursive snapshot); anywhere else one instant cannot cover them.
    pub fn check_layout(&self, layout: &Layout) -> Result<Vec<Tablespace>> {
        let all = datasets()?;
        let check = |what: &str, p: &Path| -> Result<String> {
            let inside = p.starts_with(&self.mountpoint)
                && owning(&all, p).is_some_and(|(d, _)| {
                    d == self.dataset || d.starts_with(&format!("{}/", self.dataset))
                });
            if !inside {
                let on = owning(&all, p)
                    .map(|(d, _)| format!("dataset {d}"))
                    .unwrap_or_else(|| "storage that is not ZFS".into());
                return Err(Error::failed(format!(
                    "cannot take one atomic snapshot of {}",
                    self.pgdata.display()
                ))
                .because(format!(
                    "{what} is at {} on {on}, not on {} or a dataset below it",
                    p.display(),
                    self.dataset
                ))
                .hint("put pg_wal and tablespaces in child datasets of the PGDATA dataset"));
            }
            Ok(sys::rel_to(p, &self.mountpoint).unwrap_or_default())
        };
        layout.check_each(check)
    }

    fn snap(&self, name: &str) -> String {
        format!("{}@{name}", self.dataset)
    }

    pub fn exists(&self, name: &str) -> Result<bool> {
        Ok(sys::run(
            "zfs",
            &[
                "list",
                "-H",
                "-o",
                "name",
                "-t",
                "snapshot",
                &self.snap(name),
            ],
        )
        .is_ok())
    }

    /// One `zfs snapshot [-r]`: every member in the same instant.
    pub fn create(&self, name: &str) -> Result<String> {
        let s = self.snap(name);
        let tool = format!("{PROP_TOOL}=snap-take");
        let mut args = vec!["snapshot", "-o", &tool];
        if self.members.len() > 1 {
            args.push("-r");
        }
        args.push(&s);
        sys::run("zfs", &args).map_err(|e| {
            Error::failed(format!("cannot snapshot {}", self.dataset))
                .because(e.why.unwrap_or_default())
        })?;
        Ok(s)
    }

    /// `.zfs/snapshot/NAME` on OpenZFS; None on zfs-fuse, which has no such directory.
    pub fn snapshot_dir(&self, name: &str) -> Option<PathBuf> {
        let d = self.mountpoint.join(".zfs/snapshot").join(name);
        (self.openzfs && d.is_dir()).then_some(d)
    }

    /// Reads a file of the snapshot through a short-lived clone.
    pub fn read_via_clone(&self, name: &str, rel: &str) -> Result<Vec<u8>> {
        let pool = self.dataset.split('/').next().unwrap_or(&self.dataset);
        let tmp_ds = format!("{pool}/pgdr-read-{}-{name}", std::process::id());
        let dir = tempfile_dir()?;
        let mp = format!("mountpoint={}", dir.display());
        sys::run(
            "zfs",
            &[
                "clone",
                "-o",
                &mp,
                "-o",
                "readonly=on",
                &self.snap(name),
                &tmp_ds,
            ],
        )?;
        let r = pgdr_core::fsx::read_bytes(&sys::join_rel(&dir, &self.pgdata_rel).join(rel));
        let d = retry_busy(&["destroy", &tmp_ds]);
        let _ = std::fs::remove_dir(&dir);
        let bytes = r?;
        d?;
        Ok(bytes)
    }

    pub fn set_meta(&self, meta: &SnapshotMeta) -> Result<()> {
        let json = serde_json::to_string(meta).expect("metadata serializes");
        if json.len() > 8000 {
            return Err(
                Error::failed("cannot store the snapshot metadata").because(format!(
                    "it is {} bytes; ZFS user properties hold 8000",
                    json.len()
                )),
            );
        }
        sys::run(
            "zfs",
            &[
                "set",
                &format!("{PROP_META}={json}"),
                &self.snap(&meta.snapshot),
            ],
        )?;
        Ok(())
    }

    pub fn list(&self) -> Result<Vec<SnapshotMeta>> {
        let out = sys::run(
            "zfs",
            &[
                "get",
                "-H",
                "-o",
                "name,value",
                "-r",
                "-d",
                "1",
                PROP_META,
                &self.dataset,
            ],
        )?;
        let prefix = format!("{}@", self.dataset);
        let mut v = Vec::new();
        for line in out.lines() {
            let Some((name, value)) = line.split_once('\t') else {
                continue;
            };
            if !name.starts_with(&prefix) || value == "-" {
                continue;
            }
            let meta: SnapshotMeta = serde_json::from_str(value).map_err(|e| {
                Error::failed(format!("cannot read the metadata of {name}")).because(e)
            })?;
            v.push(meta);
        }
        Ok(v)
    }

    pub fn destroy(&self, meta: &SnapshotMeta) -> Result<()> {
        let s = self.snap(&meta.snapshot);
        // -r on a snapshot destroys the same-named snapshots of the descendants: the set.
        if meta.members.len() > 1 {
            retry_busy(&["destroy", "-r", &s])?;
        } else {
            retry_busy(&["destroy", &s])?;
        }
        Ok(())
    }

    fn clone_parent(&self) -> String {
        let pool = self.dataset.split('/').next().unwrap_or(&self.dataset);
        format!("{pool}/pgdr-clones")
    }

    pub fn clone_snapshot(
        &self,
        meta: &SnapshotMeta,
        clone: &str,
        target: Option<&Path>,
    ) -> Result<CloneInfo> {
        let parent = self.clone_parent();
        if sys::run("zfs", &["list", "-H", "-o", "name", &parent]).is_err() {
            sys::run("zfs", &["create", "-p", &parent])?;
        }
        let root_ds = format!("{parent}/{clone}");
        let tag = format!("{PROP_CLONE}={}", meta.snapshot);
        let mut args: Vec<String> = vec!["clone".into(), "-o".into(), tag.clone()];
        if let Some(t) = target {
            args.push("-o".into());
            args.push(format!("mountpoint={}", t.display()));
        }
        args.push(self.snap(&meta.snapshot));
        args.push(root_ds.clone());
        let a: Vec<&str> = args.iter().map(String::as_str).collect();
        sys::run("zfs", &a)?;
        let done = || -> Result<PathBuf> {
            let mp = sys::run("zfs", &["get", "-H", "-o", "value", "mountpoint", &root_ds])?;
            let root = PathBuf::from(mp.trim());
            for m in meta.members.iter().filter(|m| !m.rel.is_empty()) {
                let suffix = m
                    .dataset
                    .strip_prefix(&format!("{}/", self.dataset))
                    .unwrap_or(&m.rel);
                let child = format!("{root_ds}/{suffix}");
                let mpo = format!("mountpoint={}", root.join(&m.rel).display());
                sys::run(
                    "zfs",
                    &[
                        "clone",
                        "-o",
                        &tag,
                        "-o",
                        &mpo,
                        &format!("{}@{}", m.dataset, meta.snapshot),
                        &child,
                    ],
                )?;
            }
            Ok(root)
        };
        match done() {
            Ok(root) => Ok(CloneInfo {
                clone: clone.to_string(),
                snapshot: meta.snapshot.clone(),
                location: root_ds,
                pgdata: sys::join_rel(&root, &meta.pgdata_rel),
                root,
            }),
            Err(e) => {
                let _ = retry_busy(&["destroy", "-r", &root_ds]);
                Err(e)
            }
        }
    }

    pub fn destroy_clone(&self, info: &CloneInfo) -> Result<()> {
        // Only datasets carrying pgdr:clone reach here (see clones()).
        retry_busy(&["destroy", "-r", &info.location])?;
        Ok(())
    }

    /// Clones of this dataset's snapshots that snap-clone made (they carry pgdr:clone).
    pub fn clones(&self) -> Result<Vec<CloneInfo>> {
        let out = sys::run(
            "zfs",
            &[
                "list",
                "-H",
                "-o",
                &format!("name,origin,mountpoint,{PROP_CLONE}"),
                "-t",
                "filesystem",
            ],
        )?;
        let prefix = format!("{}@", self.dataset);
        let mut v = Vec::new();
        for line in out.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() < 4 || f[3] == "-" || !f[1].starts_with(&prefix) {
                continue;
            }
            let root = PathBuf::from(f[2]);
            v.push(CloneInfo {
                clone: f[0].rsplit('/').next().unwrap_or(f[0]).to_string(),
                snapshot: f[3].to_string(),
                location: f[0].to_string(),
                pgdata: sys::join_rel(&root, &self.pgdata_rel),
                root,
            });
        }
        Ok(v)
    }

    /// Whether any dataset (made by snap-clone or not) is a clone of this snapshot or of a
    /// member's snapshot of the same name.
    pub fn has_any_clone(&self, name: &str) -> Result<bool> {
        let out = sys::run("zfs", &["list", "-H", "-o", "origin", "-t", "filesystem"])?;
        let origins: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}@{name}", m.dataset))
            .collect();
        Ok(out.lines().any(|o| origins.iter().any(|x| x == o.trim())))
    }
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "pgdr-read-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    super::ensure_private_dir(&d)?;
    Ok(d)
}
