//! ZFS: the dataset whose mountpoint holds PGDATA, snapshotted with its descendants in one
//! atomic `zfs snapshot -r`. Works with zfs-fuse's older CLI (no `list -p`, no `clones`
//! property, no `.zfs` directory, one snapshot argument) and OpenZFS 2.x: only commands both
//! understand are used, and the flavour (found with `zfs version`) only decides how a file
//! inside a snapshot is read.

use super::run::run;
use super::{join_rel, rel_to};
use crate::datadir::Layout;
use crate::meta::{Member, SnapshotMeta, Tablespace};
use crate::registry::CloneRecord;
use pgdr_core::{Context, Error, Result};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The metadata property (compact JSON of [`SnapshotMeta`]).
pub const PROP_META: &str = "pgdr:meta";
/// Set at creation, so a snapshot interrupted before its metadata is still recognisable.
pub const PROP_TOOL: &str = "pgdr:tool";
/// Set at creation on snapshots and the clones snap-take reads them through: the run that
/// made it (its lock holder line as compact JSON, [`pgdr_core::holder::Holder`]), so one left
/// by a killed run is told from one a live run is still finishing.
pub const PROP_TAKER: &str = "pgdr:taker";
/// Clones snap-take reads a snapshot through (zfs-fuse) are `POOL/pgdr-read-PID-NAME`.
pub(crate) const READ_PREFIX: &str = "pgdr-read-";
/// On clones: the snapshot they were made from.
pub const PROP_CLONE: &str = "pgdr:clone";
/// Read-only views of a snapshot set (an image is read from one) are `POOL/pgdr-view-PID-NAME`.
pub(crate) const VIEW_PREFIX: &str = "pgdr-view-";

/// The dataset holding a data directory.
#[derive(Debug, Clone)]
pub struct Zfs {
    pub pgdata: PathBuf,
    /// The snapshot store (`.pgdr-snapshots/NAME` beside the dataset's mountpoint): only the
    /// lock lives there (the snapshots are the dataset's).
    pub store: PathBuf,
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
    let out = run(
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
        match run("zfs", args) {
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
    ///
    /// # Errors
    /// The zfs command is missing or does not work, or a child dataset is mounted outside.
    pub fn detect(pgdata: &Path, store: Option<&Path>) -> Result<Option<Zfs>> {
        let all = datasets()?;
        let Some((dataset, mountpoint)) = owning(&all, pgdata) else {
            return Ok(None);
        };
        let mounted = run("zfs", &["get", "-H", "-o", "value", "mounted", &dataset])?;
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
                let rel = rel_to(Path::new(m), &mountpoint).ok_or_else(|| {
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
        let openzfs = run("zfs", &["version"]).is_ok();
        // Beside the dataset, as btrfs's beside its subvolume: inside it, the lock would be
        // in every snapshot and clone.
        let store = match store {
            Some(s) => s.to_path_buf(),
            None => super::default_store(&mountpoint)?,
        };
        Ok(Some(Zfs {
            pgdata: pgdata.to_path_buf(),
            store,
            pgdata_rel: rel_to(pgdata, &mountpoint).unwrap_or_default(),
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
            Ok(rel_to(p, &self.mountpoint).unwrap_or_default())
        };
        layout.check_each(check)
    }

    fn snap(&self, name: &str) -> String {
        format!("{}@{name}", self.dataset)
    }

    pub fn exists(&self, name: &str) -> Result<bool> {
        Ok(run(
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
        let taker = taker_prop();
        let mut args = vec!["snapshot", "-o", &tool, "-o", &taker];
        if self.members.len() > 1 {
            args.push("-r");
        }
        args.push(&s);
        run("zfs", &args).map_err(|e| {
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
        let tmp_ds = format!("{}/{READ_PREFIX}{}-{name}", self.pool(), std::process::id());
        let dir = tempfile_dir()?;
        let mp = format!("mountpoint={}", dir.display());
        let tool = format!("{PROP_TOOL}=snap-take");
        let taker = taker_prop();
        run(
            "zfs",
            &[
                "clone",
                "-o",
                &mp,
                "-o",
                "readonly=on",
                "-o",
                &tool,
                "-o",
                &taker,
                &self.snap(name),
                &tmp_ds,
            ],
        )?;
        let r = pgdr_core::fsx::read_bytes(&join_rel(&dir, &self.pgdata_rel).join(rel));
        let d = retry_busy(&["destroy", &tmp_ds]);
        let _ = std::fs::remove_dir(&dir);
        let bytes = r?;
        d?;
        Ok(bytes)
    }

    pub fn set_meta(&self, meta: &SnapshotMeta) -> Result<()> {
        let json = meta.to_stored();
        if json.len() > 8000 {
            return Err(
                Error::failed("cannot store the snapshot metadata").because(format!(
                    "it is {} bytes; ZFS user properties hold 8000",
                    json.len()
                )),
            );
        }
        run(
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
        let out = run(
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
            let meta = SnapshotMeta::from_stored(value).map_err(|e| {
                Error::failed(format!("cannot read the metadata of {name}")).because(e)
            })?;
            v.push(meta);
        }
        Ok(v)
    }

    /// Destroys a snapshot, with `recursive` the same-named snapshots of the descendants
    /// (the set) too. A snapshot that is already gone is fine.
    ///
    /// # Errors
    /// zfs refused (a dependent clone, a hold).
    pub fn destroy(&self, name: &str, recursive: bool) -> Result<()> {
        if !self.exists(name)? {
            return Ok(());
        }
        let s = self.snap(name);
        if recursive {
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

    /// Clones the snapshot set as `POOL/pgdr-clones/CLONE` (and its children), tagged with
    /// pgdr:clone, mounted at `target` or where the pool puts it. Returns (dataset,
    /// mountpoint).
    ///
    /// # Errors
    /// zfs refused; what was made is destroyed again.
    pub fn clone_to(
        &self,
        meta: &SnapshotMeta,
        clone: &str,
        target: Option<&Path>,
    ) -> Result<(String, PathBuf)> {
        let parent = self.clone_parent();
        if run("zfs", &["list", "-H", "-o", "name", &parent]).is_err() {
            run("zfs", &["create", "-p", &parent])?;
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
        run("zfs", &a)?;
        let done = || -> Result<PathBuf> {
            let mp = run("zfs", &["get", "-H", "-o", "value", "mountpoint", &root_ds])?;
            let root = PathBuf::from(mp.trim());
            for m in meta.members.iter().filter(|m| !m.rel.is_empty()) {
                let suffix = m
                    .dataset
                    .strip_prefix(&format!("{}/", self.dataset))
                    .unwrap_or(&m.rel);
                let child = format!("{root_ds}/{suffix}");
                let mpo = format!("mountpoint={}", root.join(&m.rel).display());
                run(
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
            Ok(root) => Ok((root_ds, root)),
            Err(e) => {
                let _ = retry_busy(&["destroy", "-r", &root_ds]);
                Err(e)
            }
        }
    }

    /// Destroys a clone's datasets, only when they carry pgdr:clone of its snapshot: a
    /// record naming another dataset is refused. A clone already gone is fine.
    ///
    /// # Errors
    /// Not snap-clone's dataset, or zfs refused.
    pub fn destroy_clone(&self, rec: &CloneRecord) -> Result<()> {
        let tag = match run(
            "zfs",
            &["get", "-H", "-o", "value", PROP_CLONE, &rec.location],
        ) {
            Ok(t) => t.trim().to_string(),
            Err(_) if !rec.root.exists() => return Ok(()),
            Err(e) => return Err(e),
        };
        if tag != rec.snapshot {
            return Err(Error::failed(format!("cannot destroy clone {}", rec.clone))
                .because(format!(
                    "the dataset {} was not made by snap-clone from {} ({PROP_CLONE} is {tag:?})",
                    rec.location, rec.snapshot
                ))
                .hint("remove it by hand if it is yours"));
        }
        retry_busy(&["destroy", "-r", &rec.location])?;
        Ok(())
    }

    /// The pool (the first component of the dataset).
    pub(crate) fn pool(&self) -> &str {
        self.dataset.split('/').next().unwrap_or(&self.dataset)
    }

    /// A read-only clone of the snapshot set, mounted at `mountpoint` (an empty directory):
    /// the snapshot's files for as long as it exists, and, as a clone, it keeps snap-prune
    /// from destroying the snapshot meanwhile. Returns its dataset.
    ///
    /// # Errors
    /// zfs refused; what was made is destroyed again.
    pub fn open_view(&self, meta: &SnapshotMeta, mountpoint: &Path) -> Result<String> {
        let ds = format!(
            "{}/{VIEW_PREFIX}{}-{}",
            self.pool(),
            std::process::id(),
            meta.snapshot
        );
        let clone = |snap: String, target: &str, mp: &Path, props: &[&str]| {
            let mpo = format!("mountpoint={}", mp.display());
            let mut args = vec!["clone", "-o", "readonly=on", "-o", &mpo];
            for p in props {
                args.extend(["-o", p]);
            }
            args.extend([snap.as_str(), target]);
            run("zfs", &args)
        };
        // Marked as the read clones are: a view whose taker is provably gone is a killed
        // run's, removed by the next run under the store's lock (backend::leftovers).
        let (tool, taker) = (format!("{PROP_TOOL}=snap-take"), taker_prop());
        clone(self.snap(&meta.snapshot), &ds, mountpoint, &[&tool, &taker])?;
        let members = || -> Result<()> {
            for m in meta.members.iter().filter(|m| !m.rel.is_empty()) {
                let suffix = m
                    .dataset
                    .strip_prefix(&format!("{}/", self.dataset))
                    .unwrap_or(&m.rel);
                clone(
                    format!("{}@{}", m.dataset, meta.snapshot),
                    &format!("{ds}/{suffix}"),
                    &mountpoint.join(&m.rel),
                    &[],
                )?;
            }
            Ok(())
        };
        match members() {
            Ok(()) => Ok(ds),
            Err(e) => {
                let _ = retry_busy(&["destroy", "-r", &ds]);
                Err(e)
            }
        }
    }

    /// Destroys a view made by [`Zfs::open_view`].
    ///
    /// # Errors
    /// zfs refused.
    pub fn close_view(dataset: &str) -> Result<()> {
        retry_busy(&["destroy", "-r", dataset]).map(drop)
    }

    /// The views (dataset, mountpoint) of this pool made by a pgdr before views carried
    /// pgdr:taker (those are backend::leftovers' to judge) whose process is gone, judged by
    /// the PID in the name as then.
    ///
    /// # Errors
    /// zfs cannot list the datasets.
    pub fn stale_views(&self) -> Result<Vec<(String, PathBuf)>> {
        let prefix = format!("{}/{VIEW_PREFIX}", self.pool());
        let out = run(
            "zfs",
            &[
                "list",
                "-H",
                "-o",
                &format!("name,mountpoint,{PROP_TAKER}"),
                "-t",
                "filesystem",
            ],
        )?;
        Ok(out
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.splitn(3, '\t').collect();
                let [n, m, taker] = f[..] else {
                    return None;
                };
                let rest = n.strip_prefix(&prefix)?;
                let pid: i32 = rest.split('-').next()?.parse().ok()?;
                (taker == "-" && !rest.contains('/') && !super::view::alive(pid))
                    .then(|| (n.to_string(), PathBuf::from(m)))
            })
            .collect())
    }

    /// Destroys one leftover: a read clone (with its children), or one snapshot.
    ///
    /// # Errors
    /// zfs refused.
    pub fn destroy_leftover(name: &str) -> Result<()> {
        if name.contains('@') {
            retry_busy(&["destroy", name]).map(drop)
        } else {
            retry_busy(&["destroy", "-r", name]).map(drop)
        }
    }

    /// Whether any dataset (made by snap-clone or not) is a clone of this snapshot or of a
    /// member's snapshot of the same name.
    pub fn has_any_clone(&self, name: &str) -> Result<bool> {
        let out = run("zfs", &["list", "-H", "-o", "origin", "-t", "filesystem"])?;
        let origins: Vec<String> = self
            .members
            .iter()
            .map(|m| format!("{}@{name}", m.dataset))
            .collect();
        Ok(out.lines().any(|o| origins.iter().any(|x| x == o.trim())))
    }
}

/// `pgdr:taker=` this run.
fn taker_prop() -> String {
    let line = pgdr_core::holder::Holder::me().to_line();
    format!("{PROP_TAKER}={}", line.trim_end())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!(
        "{READ_PREFIX}{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0)
    ));
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .mode(0o700)
        .create(&d)
        .context(|| format!("cannot create {}", d.display()))?;
    Ok(d)
}
