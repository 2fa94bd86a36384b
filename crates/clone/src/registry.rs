//! The durable record of every clone snap-clone made: one JSON file per clone in the
//! registry directory, `$PGDR_CLONE_DIR`, else `/var/lib/pgdr/clones` for root and
//! `${XDG_STATE_HOME:-~/.local/state}/pgdr/clones` for anyone else. `<name>.lock` beside
//! it is the per-clone lock. A record is written right after the clone exists (state
//! `creating`), so even a clone whose run was killed can be found and destroyed.

use chrono::{DateTime, Utc};
use pgdr_core::fsx::{self, WriteOptions};
use pgdr_core::{Context, Error, Result};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// One clone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    pub clone: String,
    pub snapshot: String,
    /// The data directory the snapshot was taken of.
    pub source_pgdata: PathBuf,
    /// "zfs", "btrfs" or "copy".
    pub backend: String,
    /// Where the btrfs or copy snapshots (and the backend's own clone registry) live.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<PathBuf>,
    /// zfs: the clone's dataset; btrfs and copy: its root directory.
    pub location: String,
    /// The clone's root (its dataset mountpoint or directory).
    pub root: PathBuf,
    /// The clone's data directory.
    pub path: PathBuf,
    pub port: u16,
    pub socket_dir: PathBuf,
    /// The server log snap-clone starts it with.
    pub log: PathBuf,
    pub pg_version: u32,
    pub created: DateTime<Utc>,
    /// "time", "lsn" or "immediate", and the value.
    pub target_type: String,
    pub target: String,
    pub action: String,
    /// "creating" while snap-clone sets it up, then "ready".
    pub state: String,
}

/// The registry directory.
pub fn dir() -> PathBuf {
    if let Some(d) = std::env::var_os("PGDR_CLONE_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if pgdr_core::owner::is_root() {
        return PathBuf::from("/var/lib/pgdr/clones");
    }
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")))
        .unwrap_or_else(std::env::temp_dir);
    state.join("pgdr/clones")
}

fn ensure_dir(d: &Path) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(d)
        .context(|| format!("cannot create the clone registry {}", d.display()))
}

fn record_path(d: &Path, name: &str) -> PathBuf {
    d.join(format!("{name}.json"))
}

/// The lock of one clone name: held for a whole create or destroy.
pub fn lock(name: &str, wait: Option<Duration>) -> Result<pgdr_core::lock::LockGuard> {
    let d = dir();
    ensure_dir(&d)?;
    pgdr_core::lock::acquire(
        &d.join(format!("{name}.lock")),
        &format!("clone {name}"),
        wait,
    )
}

pub fn read(name: &str) -> Result<Option<Record>> {
    let p = record_path(&dir(), name);
    if !p.exists() {
        return Ok(None);
    }
    let text = fsx::read_text(&p)?;
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| Error::failed(format!("cannot read clone record {}", p.display())).because(e))
}

pub fn write(rec: &Record) -> Result<()> {
    let d = dir();
    ensure_dir(&d)?;
    let mut text = serde_json::to_string_pretty(rec).expect("record serializes");
    text.push('\n');
    fsx::write_atomic(
        &record_path(&d, &rec.clone),
        text.as_bytes(),
        &WriteOptions {
            backup: false,
            new_mode: Some(0o600),
        },
    )?;
    Ok(())
}

pub fn remove(name: &str) -> Result<()> {
    let d = dir();
    let p = record_path(&d, name);
    match std::fs::remove_file(&p) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(e).context(|| format!("cannot remove {}", p.display()))
        }
        _ => {
            let _ = fsx::fsync_dir(&d);
            Ok(())
        }
    }
}

/// Every record, by name. An unreadable record is an error, not a silent omission.
pub fn list() -> Result<Vec<Record>> {
    let d = dir();
    let mut out = Vec::new();
    let rd = match std::fs::read_dir(&d) {
        Ok(rd) => rd,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
        Err(e) => return Err(e).context(|| format!("cannot list {}", d.display())),
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(clone) = name.strip_suffix(".json") else {
            continue;
        };
        if let Some(r) = read(clone)? {
            out.push(r);
        }
    }
    out.sort_by(|a, b| a.clone.cmp(&b.clone));
    Ok(out)
}
